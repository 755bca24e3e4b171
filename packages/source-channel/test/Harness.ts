/**
 * Test harness for the `channel` source: runs the plugin the way the runner does (config decoded
 * from a plain object, a source context with a recording progress), over real HTTP on 127.0.0.1,
 * and builds the records the simulator's catalogue should turn into, independently of `Api.ts`.
 */
import * as http from "node:http"
import type * as net from "node:net"
import { type Batch, type ProductImage } from "@effetl/core"
import { SourceHarness } from "@effetl/core/testing"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { CatalogueImage, ChannelSimulator } from "../src/Simulator.js"
import { channel } from "../src/Source.js"

/** The services the runner gives a source: real HTTP (undici), file system, path and fresh counters. */
export const env = SourceHarness.nodeServices

/** Fast retries, so fault tests take milliseconds of backoff. */
export const fastRetry = SourceHarness.fastRetry

/** The `with:` block of a pipeline file pointing at a simulator. */
export const simConfig = (sim: ChannelSimulator, more: Record<string, unknown> = {}): Record<string, unknown> => ({
  baseUrl: sim.url,
  channelId: sim.channelId,
  token: sim.token,
  retry: fastRetry,
  ...more
})

/** What one run produced. */
export interface RunResult {
  readonly batches: ReadonlyArray<Batch.Batch>
  readonly records: ReadonlyArray<ProductImage>
  readonly rejected: ReadonlyArray<Batch.DeadLetter>
  /** The checkpoint values of the batches, in order. */
  readonly checkpoints: ReadonlyArray<unknown>
  /** The checkpoint values as the source made them. */
  readonly raw: ReadonlyArray<unknown>
  /** Every `progress.total` call. */
  readonly totals: ReadonlyArray<number>
  /** How many times `progress.page` was called. */
  readonly pages: number
  /** The `retries` counter of the source in `RunStats`. */
  readonly retries: number
}

/** How to run the source (core's `SourceHarness.Options`). */
export type RunOptions = SourceHarness.Options

/** The run's result in this package's shape. */
const toResult = (run: SourceHarness.Run): RunResult => {
  const values = run.checkpoints.map((c) => Option.getOrUndefined(Option.map(c, (cp) => cp.value)))
  return {
    batches: run.batches,
    records: run.records,
    rejected: run.rejected,
    // positions without `reading` (the settings signature; its own tests look at it directly)
    checkpoints: values.map((v) => (v === undefined ? undefined : withoutReading(v))),
    raw: values,
    totals: run.totals,
    pages: run.pages,
    retries: run.counts.retries
  }
}

/**
 * Decodes `input` as a pipeline file would (unknown options are errors), makes the source and reads
 * its stream until it ends, fails or `take` batches came (core's `SourceHarness`): `runUntil` keeps
 * the batches read before a failure, `run` fails with it, `check` runs the dry-run check.
 */
export const { check, run, runUntil } = SourceHarness.bind(channel, toResult)

// ---------------------------------------------------------------------------------------------
// Expected records
// ---------------------------------------------------------------------------------------------

/**
 * The UTC instant of a DRF date (`2023-04-05T06:07:08.123456+03:00` or `...Z`), computed by hand
 * rather than by `Date.parse`, truncated to milliseconds.
 */
export const utcMillis = (wire: string): number => {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(wire)
  if (m === null) throw new Error(`not a DRF date: ${wire}`)
  const fraction = Math.floor(Number((m[7] ?? "0").padEnd(6, "0")) / 1000)
  const local = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), fraction)
  const offset = m[8] === "Z" ? 0 : (m[9] === "-" ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11])) * 60_000
  return local - offset
}

/** A record as plain data (dates as epoch ms, bytes as their sha256): what tests compare. */
export const plain = SourceHarness.plain

/** The record a catalogue image must become; `detailed` when it came from a detailed endpoint. */
export const expected = (sim: ChannelSimulator, image: CatalogueImage, detailed: boolean): Record<string, unknown> => ({
  source: "channel",
  productId: String(image.product),
  imageId: String(image.pk),
  position: image.order,
  url: detailed ? `${sim.url}${image.path}` : null,
  filename: detailed ? image.path.split("/").pop() : null,
  width: image.width,
  height: image.height,
  alt: detailed ? image.alt : null,
  contentHash: null,
  createdAt: utcMillis(image.created_date),
  updatedAt: utcMillis(image.modified_date),
  extra: {
    status: image.status,
    isActive: image.is_active,
    vendorHash: image.hash === null ? null : `vendor:${image.hash}`,
    imageSource: image.source,
    objectId: image.object_id,
    contentType: image.content_type
  }
})

/** The expected records of some catalogue images, in pk order. */
export const expectedAll = (sim: ChannelSimulator, images: ReadonlyArray<CatalogueImage>, detailed: boolean) =>
  [...images].sort((a, b) => a.pk - b.pk).map((image) => expected(sim, image, detailed))

/** The catalogue images with these pks. */
export const byPks = (sim: ChannelSimulator, pks: Iterable<number>): ReadonlyArray<CatalogueImage> => {
  const wanted = new Set(pks)
  return sim.catalogue.filter((image) => wanted.has(image.pk))
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP server for answers the simulator never gives
// ---------------------------------------------------------------------------------------------

/** A request the tiny server received. */
export interface Seen {
  readonly method: string
  readonly url: string
  readonly authorization: string | undefined
}

/** A running tiny server. */
export interface TinyServer {
  readonly url: string
  readonly port: number
  readonly requests: Array<Seen>
}

/** A handler of the tiny server: `url` is its own origin. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: string) => void

/** Starts a `node:http` server on 127.0.0.1 for the scope. */
export const tinyServer = (handler: Handler): Effect.Effect<TinyServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; info: TinyServer }>((resume) => {
      const requests: Array<Seen> = []
      let origin = ""
      const server = http.createServer((req, res) => {
        requests.push({ method: req.method ?? "GET", url: req.url ?? "/", authorization: req.headers.authorization })
        handler(req, res, origin)
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        origin = `http://127.0.0.1:${port}`
        resume(Effect.succeed({ server, info: { url: origin, port, requests } }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(Effect.map(({ info }) => info))

/** Writes a JSON answer. */
export const sendJson = (res: http.ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(text)) })
  res.end(text)
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
export const closedPort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A plain wire item as the API sends it, for tiny-server pages. */
export const wireItem = (pk: number, more: Record<string, unknown> = {}): Record<string, unknown> => ({
  pk,
  product: 5000 + pk,
  source: "unified",
  modified_date: "2024-02-03T04:05:06.789012+03:00",
  created_date: "2024-01-02T03:04:05Z",
  height: 10,
  width: 20,
  hash: null,
  status: "active",
  is_active: true,
  order: pk * 10,
  object_id: 5000 + pk,
  content_type: "product",
  ...more
})

/**
 * A handler serving `items` as a DRF list on every path, paginated by `page` and `limit` (default 10),
 * with an optional `maxPageSize` that silently caps `limit`, as DRF's `max_page_size` does.
 */
export const drfList = (items: ReadonlyArray<unknown>, options: { readonly maxPageSize?: number } = {}): Handler =>
(req, res, origin) => {
  const url = new URL(req.url ?? "/", origin)
  const asked = Number(url.searchParams.get("limit") ?? "10")
  const limit = Math.min(asked > 0 ? asked : 10, options.maxPageSize ?? Number.POSITIVE_INFINITY)
  const pages = Math.max(1, Math.ceil(items.length / limit))
  const page = Number(url.searchParams.get("page") ?? "1")
  if (!(Number.isInteger(page) && page >= 1 && page <= pages)) return sendJson(res, 404, { detail: "Invalid page." })
  const link = (n: number) => {
    const next = new URL(url.href)
    next.searchParams.set("page", String(n))
    return next.href
  }
  sendJson(res, 200, {
    count: items.length,
    next: page < pages ? link(page + 1) : null,
    previous: page > 1 ? link(page - 1) : null,
    results: items.slice((page - 1) * limit, page * limit)
  })
}

const withoutReading = (value: unknown): unknown => {
  if (typeof value !== "object" || value === null) return value
  const { reading: _reading, ...rest } = value as Record<string, unknown>
  return rest
}
