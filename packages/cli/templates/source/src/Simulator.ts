/**
 * A faithful fake of the __plugin__ API on 127.0.0.1, for the tests, the example pipeline and trying
 * the source without the real API. Built on core's `Server.serve`: loopback only, request counters,
 * seeded faults (5xx, 429, connection resets, truncated bodies, latency) on request.
 *
 * It serves `GET /v1/images` (see Api.ts) over a seeded catalogue, and each image's bytes (a real
 * PNG or JPEG) at the image's `url`.
 */
import { type Faults, Images, Prng, Server } from "@effetl/core/simulator"
import { imagesPath, maxPageSize, type WireImage } from "./Api.js"

/** How to start the simulator. */
export interface SimulatorOptions {
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number
  /** How many images the catalogue holds (default 42, over 12 products). */
  readonly images?: number
  /** The token the API accepts (default `sim-token`). */
  readonly token?: string
  /** Faults to inject (none by default). */
  readonly faults?: Faults.FaultOptions
  /** The catalogue's seed (default 1): the same seed, the same catalogue. */
  readonly seed?: number
}

/** A running simulator. */
export interface __Ident__Simulator {
  /** `http://127.0.0.1:<port>`: the source's `baseUrl`. */
  readonly url: string
  readonly token: string
  /** Every image it serves, in list order. */
  readonly catalogue: ReadonlyArray<WireImage>
  /** The requests it received so far. */
  readonly requests: () => Server.RequestStats
  /** Sets or clears faults while it runs. */
  readonly setFaults: (faults: Faults.FaultOptions | undefined) => void
  readonly close: () => Promise<void>
}

/** Starts the simulator. */
export const start__Ident__Simulator = async (options: SimulatorOptions = {}): Promise<__Ident__Simulator> => {
  const token = options.token ?? "sim-token"
  const rng = new Prng(options.seed ?? 1)
  const count = options.images ?? 42
  const bytes = new Map<number, { readonly type: string; readonly body: Uint8Array }>()
  let origin = ""
  const catalogue: Array<WireImage> = []
  for (let i = 0; i < count; i++) {
    const id = 1000 + i
    const image = Images.randomImage(rng)
    bytes.set(id, { type: image.kind === "png" ? "image/png" : "image/jpeg", body: image.bytes })
    catalogue.push({
      id,
      product_id: 500 + Math.floor(i / 3.5),
      position: (i % 4) + 1,
      url: `/media/${id}.${image.kind === "png" ? "png" : "jpg"}`,
      alt: rng.chance(0.7) ? `image ${id}` : null,
      width: image.width,
      height: image.height,
      updated_at: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString()
    })
  }
  const absolute = (image: WireImage): WireImage => ({ ...image, url: image.url === null ? null : origin + image.url })

  const served = await Server.serve({
    name: "__plugin__",
    port: options.port ?? 0,
    ...(options.faults !== undefined ? { faults: options.faults } : {}),
    respond: (req, own) => {
      const url = new URL(req.url ?? "/", own)
      const media = /^\/media\/(\d+)\.(png|jpg)$/.exec(url.pathname)
      if (media !== null) {
        const found = bytes.get(Number(media[1]))
        return found === undefined
          ? Server.json(404, { error: "not found" })
          : { status: 200, headers: { "Content-Type": found.type }, body: found.body }
      }
      if (req.headers.authorization !== `Bearer ${token}`) return Server.json(401, { error: "invalid or missing token" })
      if (url.pathname !== imagesPath) return Server.json(404, { error: "not found" })
      const limit = Number(url.searchParams.get("limit") ?? "50")
      if (!Number.isInteger(limit) || limit < 1 || limit > maxPageSize) return Server.json(400, { error: `limit must be 1..${maxPageSize}` })
      const cursor = url.searchParams.get("cursor")
      const offset = cursor === null ? 0 : decodeCursor(cursor)
      if (offset === undefined || offset > catalogue.length) return Server.json(400, { error: "invalid cursor" })
      const end = Math.min(offset + limit, catalogue.length)
      const more = end < catalogue.length
      return Server.json(200, {
        images: catalogue.slice(offset, end).map(absolute),
        next_cursor: more ? encodeCursor(end) : null,
        has_more: more
      })
    },
    serverErrors: [Server.json(503, { error: "service unavailable" }), Server.json(500, { error: "internal error" })],
    throttled: (fault) => Server.json(429, { error: "too many requests" }, { "Retry-After": String(fault.retryAfterSeconds) })
  })
  origin = served.origin
  return {
    url: served.origin,
    token,
    catalogue: catalogue.map(absolute),
    requests: served.requests,
    setFaults: served.setFaults,
    close: served.close
  }
}

/** Cursors are opaque to clients: here, the offset in base64url. */
const encodeCursor = (offset: number): string => Buffer.from(`o:${offset}`, "utf8").toString("base64url")

const decodeCursor = (cursor: string): number | undefined => {
  const m = /^o:(\d+)$/.exec(Buffer.from(cursor, "base64url").toString("utf8"))
  return m === null ? undefined : Number(m[1])
}
