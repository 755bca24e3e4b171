/**
 * A faithful fake of the Shoplazza OpenAPI (2022-01) product and product-image endpoints on a
 * loopback address, for the source's tests, `npm run demo`, `effetl simulate shoplazza` and
 * benchmarks.
 *
 * It serves a deterministic catalogue (from a seed) under `/openapi/2022-01/`:
 * - `GET products?limit=&cursor=`: cursor pagination, `{products, cursor, has_more}`;
 * - `GET products/{product_id}/images`: `{images:[...]}` with protocol-relative `src` values;
 * - the image bytes themselves under `/cdn/` (no auth, no budget, like a CDN).
 * It checks the `access-token` header (401 `{"error":"..."}`), answers 422 `{"errors":[...]}` for an
 * invalid or unknown product id, keeps the leaky bucket of the real API (40 requests per token,
 * leaking 2/s; 429 `{"errors":["Too Many Requests"]}` with no Retry-After when it overflows), puts a
 * `Request-Id` on every response, and injects core's seeded faults (5xx, 429, resets, truncated
 * bodies, latency). Test controls: delete a product mid-run, let "another app" drain the bucket,
 * count the 429s the bucket answered.
 *
 * Serving, faults, the PRNG and the image encoders are core's simulator kit (`@effetl/core/simulator`).
 */
import { createHash, randomUUID } from "node:crypto"
import type * as http from "node:http"
import { Faults, Images, Prng, Server } from "@effetl/core/simulator"
import { Effect, type Scope } from "effect"

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** The fault kinds the simulator can inject. */
export type FaultKind = Faults.FaultKind

/** Which faults to inject, how often, and how (all repeatable from `seed`). */
export type FaultOptions = Faults.FaultOptions

/** The leaky bucket of one access token: `capacity` requests, leaking `leakPerSecond`. */
export interface BucketOptions {
  /** default 40 */
  readonly capacity?: number
  /** default 2 */
  readonly leakPerSecond?: number
}

/** How to start a simulator: where to listen, the shop and token it accepts, the catalogue, the bucket and faults. */
export interface SimulatorOptions {
  /** TCP port; 0 (default) picks an ephemeral port */
  readonly port?: number
  /** default "127.0.0.1"; anything that is not a loopback address is refused */
  readonly host?: string
  /** the shop's subdomain it pretends to be (informative: a loopback server has no subdomains); default "sim-shop" */
  readonly shop?: string
  /** default "sim-token"; requests must send "access-token: <token>" */
  readonly accessToken?: string
  /** number of products in the catalogue; default 30 */
  readonly products?: number
  /** catalogue seed; default 7 */
  readonly seed?: number
  /** the leaky bucket (default: Shoplazza's 40 leaking 2/s); `false` turns it off */
  readonly bucket?: BucketOptions | false
  /** faults to inject; none by default */
  readonly faults?: FaultOptions
}

/** The API version the simulator serves; any other version in the path is a 404. */
export const version = "2022-01"

/** The largest `limit` of the product list. */
export const maxLimit = 250

/** The `limit` of the product list when none is sent. */
export const defaultLimit = 10

/** One image of the simulated catalogue: its wire fields, exactly as served, and its bytes. */
export interface CatalogueImage {
  readonly id: string
  readonly product_id: string
  readonly position: number
  /** protocol-relative, exactly as served: `//127.0.0.1:<port>/cdn/<md5>.png` */
  readonly src: string
  readonly width: number
  readonly height: number
  /** often `""` (no alt text), as the API sends it */
  readonly alt: string
  /** ISO-8601 UTC, `2024-04-08T07:13:28Z` */
  readonly created_at: string
  readonly updated_at: string
  /** the path of `src` on the simulator, `/cdn/<md5>.<ext>` */
  readonly path: string
  readonly bytes: Uint8Array
  /** hex sha256 of `bytes` */
  readonly sha256: string
}

/** One product of the simulated catalogue, with its images in the order served. */
export interface CatalogueProduct {
  readonly id: string
  readonly title: string
  readonly handle: string
  readonly created_at: string
  readonly updated_at: string
  readonly images: ReadonlyArray<CatalogueImage>
}

/** Counters of the requests a simulator has received. */
export type RequestStats = Server.RequestStats

/** A running simulator. */
export interface ShoplazzaSimulator {
  /** "http://127.0.0.1:<port>" (what a user puts in baseUrl; the source adds /openapi/2022-01) */
  readonly url: string
  readonly port: number
  readonly shop: string
  readonly accessToken: string
  /** every product as started, in list order (deleted ones included) */
  readonly catalogue: ReadonlyArray<CatalogueProduct>
  /** the products still there, in list order */
  readonly products: () => ReadonlyArray<CatalogueProduct>
  /** deletes a product: it leaves the list and its images answer 422 "Record not found"; false if there was none */
  readonly deleteProduct: (id: string) => boolean
  /** another app on the same token spends `n` requests of the bucket (it fills up to its capacity) */
  readonly consume: (n: number) => void
  /** how many 429s the bucket has answered (injected 429 faults are counted in `requests().faults`) */
  readonly rateLimited: () => number
  /** a snapshot of the request counters */
  readonly requests: () => RequestStats
  /** set or clear faults while running (restarts the fault PRNG from its seed) */
  readonly setFaults: (faults: FaultOptions | undefined) => void
  /** stops listening and drops every open connection */
  readonly close: () => Promise<void>
}

/** Starts a simulator on a loopback address; rejects for a non-loopback host or bad options. */
export const startShoplazzaSimulator = async (options: SimulatorOptions = {}): Promise<ShoplazzaSimulator> => {
  Server.loopbackHost(options.host ?? "127.0.0.1", "shoplazza")
  const shop = options.shop ?? "sim-shop"
  const accessToken = options.accessToken ?? "sim-token"
  const productCount = options.products ?? 30
  const seed = options.seed ?? 7
  if (!Number.isSafeInteger(productCount) || productCount < 0) throw new RangeError(`Simulator products must be a non-negative integer, got ${productCount}`)
  if (accessToken.length === 0 || /\s/.test(accessToken)) throw new RangeError("Simulator accessToken must be non-empty and contain no whitespace")
  const bucket = options.bucket === false ? undefined : new LeakyBucket(options.bucket?.capacity ?? 40, options.bucket?.leakPerSecond ?? 2)

  const drafts = generateCatalogue(productCount, seed)
  const state: State = { drafts, deleted: new Set(), byPath: mediaIndex(drafts), bucket, rateLimited: 0, accessToken }
  const served = await Server.serve({
    name: "shoplazza",
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.faults !== undefined ? { faults: options.faults } : {}),
    respond: (req, origin) => respond(req, state, origin),
    serverErrors,
    throttled: () => tooManyRequests,
    everyReply: () => ({ "Request-Id": randomUUID() })
  })
  const host = served.origin.replace(/^http:/, "")
  const catalogue = drafts.map((p) => withSrc(p, host))

  return {
    url: served.origin,
    port: served.port,
    shop,
    accessToken,
    catalogue,
    products: () => catalogue.filter((p) => !state.deleted.has(p.id)),
    deleteProduct: (id) => {
      if (!drafts.some((p) => p.id === id) || state.deleted.has(id)) return false
      state.deleted.add(id)
      return true
    },
    consume: (n) => bucket?.fill(n),
    rateLimited: () => state.rateLimited,
    requests: served.requests,
    setFaults: served.setFaults,
    close: served.close
  }
}

/** Effect wrapper: starts a simulator on acquire and closes it on release (start failures are defects). */
export const make = (options?: SimulatorOptions): Effect.Effect<ShoplazzaSimulator, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startShoplazzaSimulator(options)),
    (simulator) => Effect.promise(() => simulator.close())
  )

// ---------------------------------------------------------------------------------------------
// The leaky bucket
// ---------------------------------------------------------------------------------------------

/** A leaky bucket on the wall clock: each request adds one, it drains at `leakPerSecond`, a request that would overflow it is refused. */
class LeakyBucket {
  private level = 0
  private at = performance.now()

  constructor(readonly capacity: number, readonly leakPerSecond: number) {
    if (!(capacity >= 1)) throw new RangeError(`Simulator bucket capacity must be >= 1, got ${capacity}`)
    if (!(leakPerSecond > 0)) throw new RangeError(`Simulator bucket leakPerSecond must be > 0, got ${leakPerSecond}`)
  }

  /** Takes room for one request; false when the bucket is full (a 429). */
  take(): boolean {
    this.leak()
    if (this.level + 1 > this.capacity) return false
    this.level += 1
    return true
  }

  /** Another app's `n` requests: the bucket fills by `n`, up to its capacity. */
  fill(n: number): void {
    this.leak()
    this.level = Math.min(this.capacity, this.level + Math.max(0, n))
  }

  private leak(): void {
    const now = performance.now()
    this.level = Math.max(0, this.level - ((now - this.at) / 1000) * this.leakPerSecond)
    this.at = now
  }
}

// ---------------------------------------------------------------------------------------------
// Catalogue generation
// ---------------------------------------------------------------------------------------------

/** An image before the server's address is known (its `src` needs the host and port). */
type DraftImage = Omit<CatalogueImage, "src">
type DraftProduct = Omit<CatalogueProduct, "images"> & { readonly images: ReadonlyArray<DraftImage> }

/** One distinct image file; several catalogue images may share it. */
interface Content {
  readonly path: string
  readonly width: number
  readonly height: number
  readonly bytes: Uint8Array
  readonly sha256: string
}

const nouns = ["Sneaker", "Jacket", "Tote bag", "Dress", "Watch", "Scarf", "Boot", "Shirt", "Lamp", "Mug"]
const colours = ["Red", "Blue", "Black", "White", "Green", "Beige", "Navy", "Grey"]
const views = ["front", "back", "side view", "detail", "on model", "packshot"]

/** Alt texts that trip careless CSV, JSON and SQL writers. */
const awkwardAlts = [
  "Sneaker \"Classic\" – side view",
  "Bag, leather, brown, 30 × 20 cm",
  "First line\nsecond line",
  "白色运动鞋，侧面",
  "👟 limited; O'Brien's\ttab",
  "  padded with spaces  "
]

/** A UUID (version 4 layout) from the PRNG, so the same seed gives the same ids. */
const uuid = (rng: Prng): string =>
  `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-${rng.pick(["8", "9", "a", "b"])}${rng.hex(3)}-${rng.hex(12)}`

/** A timestamp the way the API writes it: `2024-04-08T07:13:28Z`. */
const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z")

/** Builds the deterministic catalogue for `productCount` products from `seed`. */
const generateCatalogue = (productCount: number, seed: number): ReadonlyArray<DraftProduct> => {
  const rng = new Prng(seed)
  const contents = new Map<string, Content>()
  const newContent = (): Content => {
    for (;;) {
      const image = Images.randomImage(rng)
      const md5 = createHash("md5").update(image.bytes).digest("hex")
      const path = `/cdn/${md5}.${image.kind === "png" ? "png" : "jpg"}`
      if (contents.has(path)) continue
      const content = { path, width: image.width, height: image.height, bytes: image.bytes, sha256: createHash("sha256").update(image.bytes).digest("hex") }
      contents.set(path, content)
      return content
    }
  }
  // Image counts: a few products with none, most with 1..6, some with many.
  const counts = Array.from({ length: productCount }, () => (rng.chance(0.12) ? 0 : rng.chance(0.1) ? 12 + rng.int(19) : 1 + rng.int(6)))
  if (productCount >= 3) {
    if (!counts.includes(0)) counts[1] = 0
    if (!counts.some((n) => n >= 12)) counts[productCount - 1] = 20
  }
  const base = Date.UTC(2023, 0, 1)
  const earlier: Array<Content> = []
  let awkward = 0
  return counts.map((count, i) => {
    const id = uuid(rng)
    const created = base + rng.int(500 * 86_400) * 1000
    const noun = rng.pick(nouns)
    const product = { id, title: `${rng.pick(colours)} ${noun} ${i + 1}`, handle: `${noun.toLowerCase().replace(/\s+/g, "-")}-${i + 1}` }
    const images: Array<DraftImage> = []
    for (let position = 1; position <= count; position++) {
      // Now and then the same bytes twice within a product, or bytes another product has too.
      const content = position > 1 && rng.chance(0.12)
        ? contents.get(rng.pick(images).path)!
        : earlier.length > 0 && rng.chance(0.06)
        ? rng.pick(earlier)
        : newContent()
      earlier.push(content)
      const imageCreated = created + rng.int(30 * 86_400) * 1000
      const alt = awkward < awkwardAlts.length && rng.chance(0.3)
        ? awkwardAlts[awkward++]!
        : rng.chance(0.45)
        ? ""
        : `${product.title}, ${rng.pick(views)}`
      images.push({
        id: uuid(rng),
        product_id: id,
        position,
        width: content.width,
        height: content.height,
        alt,
        created_at: isoSeconds(imageCreated),
        updated_at: isoSeconds(rng.chance(0.3) ? imageCreated : imageCreated + rng.int(90 * 86_400) * 1000),
        path: content.path,
        bytes: content.bytes,
        sha256: content.sha256
      })
    }
    return { ...product, created_at: isoSeconds(created), updated_at: isoSeconds(created + rng.int(100 * 86_400) * 1000), images }
  })
}

const mediaIndex = (products: ReadonlyArray<DraftProduct>): ReadonlyMap<string, DraftImage> =>
  new Map(products.flatMap((p) => p.images.map((image) => [image.path, image] as const)))

/** A product with the `src` of each image, protocol-relative on `//host:port`. */
const withSrc = (product: DraftProduct, host: string): CatalogueProduct => ({
  ...product,
  images: product.images.map((image) => ({ ...image, src: `${host}${image.path}` }))
})

// ---------------------------------------------------------------------------------------------
// HTTP: routing, auth, the bucket, pagination
// ---------------------------------------------------------------------------------------------

type Reply = Server.Reply

interface State {
  readonly drafts: ReadonlyArray<DraftProduct>
  readonly deleted: Set<string>
  readonly byPath: ReadonlyMap<string, DraftImage>
  readonly bucket: LeakyBucket | undefined
  rateLimited: number
  readonly accessToken: string
}

const apiPath = /^\/openapi\/([^/]+)\/(.*?)(?:\.json)?$/
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Answers one request (no faults): the API under `/openapi/`, image bytes under `/cdn/`, 404 elsewhere. */
const respond = (req: http.IncomingMessage, state: State, origin: string): Reply => {
  const url = new URL(req.url ?? "/", origin)
  const path = url.pathname
  const method = req.method ?? "GET"
  if (path.startsWith("/cdn/")) return media(method, state, path)

  const match = apiPath.exec(path)
  if (match === null) return errors(404, "Not Found")
  const token = req.headers["access-token"]
  if (typeof token !== "string" || token !== state.accessToken) return Server.json(401, { error: "Unauthorized" })
  if (state.bucket !== undefined && !state.bucket.take()) {
    state.rateLimited++
    return tooManyRequests
  }
  if (match[1] !== version) return errors(404, "Not Found")
  if (method !== "GET") return errors(405, "Method Not Allowed")

  const route = match[2]!
  if (route === "products") return productList(state, url.searchParams, origin)
  const images = /^products\/([^/]+)\/images$/.exec(route)
  if (images !== null) return productImages(state, decodeURIComponent(images[1]!), origin)
  return errors(404, "Not Found")
}

/** `GET products?limit=&cursor=`: the products after the cursor's product, `limit` of them. */
const productList = (state: State, query: URLSearchParams, origin: string): Reply => {
  const limitRaw = query.get("limit")
  const limit = limitRaw === null || limitRaw === "" ? defaultLimit : /^\d+$/.test(limitRaw) ? Number(limitRaw) : Number.NaN
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= maxLimit)) return errors(422, `limit must be an integer from 1 to ${maxLimit}`)
  const cursor = query.get("cursor")
  let from = 0
  if (cursor !== null && cursor !== "") {
    const after = decodeCursor(cursor)
    const at = after === undefined ? -1 : state.drafts.findIndex((p) => p.id === after)
    if (at < 0) return errors(422, "cursor is invalid")
    from = at + 1
  }
  // Keyset pagination over the list order: a deleted product leaves the list without shifting the pages after it.
  const rest = state.drafts.slice(from).filter((p) => !state.deleted.has(p.id))
  const page = rest.slice(0, limit)
  const hasMore = rest.length > limit
  const host = origin.replace(/^http:/, "")
  return Server.json(200, {
    products: page.map((p) => ({
      id: p.id,
      title: p.title,
      handle: p.handle,
      created_at: p.created_at,
      updated_at: p.updated_at,
      image: p.images[0] === undefined ? null : { src: `${host}${p.images[0].path}` }
    })),
    cursor: hasMore ? encodeCursor(page[page.length - 1]!.id) : "",
    has_more: hasMore
  })
}

/** `GET products/{id}/images`: the product's images; 422 for an invalid or unknown id. */
const productImages = (state: State, id: string, origin: string): Reply => {
  if (!uuidPattern.test(id)) return errors(422, "product_id has an invalid UUID")
  const product = state.drafts.find((p) => p.id === id)
  if (product === undefined || state.deleted.has(id)) return errors(422, "Record not found")
  const host = origin.replace(/^http:/, "")
  return Server.json(200, {
    images: product.images.map((image) => ({
      id: image.id,
      product_id: image.product_id,
      position: image.position,
      src: `${host}${image.path}`,
      width: image.width,
      height: image.height,
      alt: image.alt,
      created_at: image.created_at,
      updated_at: image.updated_at
    }))
  })
}

/** Serves `/cdn/...` bytes; public, like a CDN. */
const media = (method: string, state: State, path: string): Reply => {
  if (method !== "GET" && method !== "HEAD") return Server.text(405, "text/html", Server.nginxPage("405 Not Allowed"))
  const image = state.byPath.get(path)
  if (image === undefined) return Server.text(404, "text/html", Server.nginxPage("404 Not Found"))
  return {
    status: 200,
    headers: { "Content-Type": path.endsWith(".png") ? "image/png" : "image/jpeg", "Cache-Control": "public, max-age=31536000" },
    body: image.bytes
  }
}

/** An opaque cursor: base64 of the last product id of the page. */
const encodeCursor = (lastId: string): string => Buffer.from(JSON.stringify({ last_id: lastId }), "utf8").toString("base64")

const decodeCursor = (cursor: string): string | undefined => {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, "base64").toString("utf8"))
    return typeof value === "object" && value !== null && typeof (value as { last_id?: unknown }).last_id === "string"
      ? (value as { last_id: string }).last_id
      : undefined
  } catch {
    return undefined
  }
}

/** The `{"errors":[...]}` shape of 422, 429 and most other errors. */
const errors = (status: number, message: string): Reply => Server.json(status, { errors: [message] })

/** The bucket's (and the 429 fault's) answer: no Retry-After, as the API documents none. */
const tooManyRequests: Reply = errors(429, "Too Many Requests")

/** The 5xx answers of an API behind a gateway: a JSON 500, nginx's 502 and 504, a JSON 503. */
const serverErrors: ReadonlyArray<Reply> = [
  Server.json(500, { errors: ["Internal Server Error"] }),
  Server.text(502, "text/html", Server.nginxPage("502 Bad Gateway")),
  Server.json(503, { error: "Service Unavailable" }),
  Server.text(504, "text/html", Server.nginxPage("504 Gateway Time-out"))
]
