/**
 * A faithful fake of the Shoplazza OpenAPI (2022-01) product endpoints on a loopback address, for
 * the source's tests, `npm run demo`, `effetl simulate shoplazza` and benchmarks.
 *
 * It serves a deterministic catalogue (from a seed) under `/openapi/2022-01/`, in the shape of the
 * vendor's published OpenAPI (`test/fixtures/vendor-examples/`):
 * - `GET products?per_page=&cursor=&fields=&updated_at_min=&updated_at_max=&ids=`: `{cursor, pre_cursor,
 *   products}`, every product with its `images[]` and main `image` (no `has_more`, no `limit`;
 *   `per_page` defaults to 1, as documented);
 * - `GET products/count` (the same filters): `{count}`;
 * - `GET products/{product_id}/images`: `{images:[...]}` with protocol-relative `src` values, and
 *   `GET products/{product_id}/images/count`: `{count}`;
 * - the image bytes themselves under `/cdn/` (no auth, no budget, like a CDN).
 * It checks the `access-token` header (401 `{"error":"..."}`), answers 422 `{"errors":[...]}` for an
 * invalid or unknown product id or a bad parameter, keeps the leaky bucket of the real API (40
 * requests per token, leaking 2/s; 429 `{"errors":["Too Many Requests"]}` with no Retry-After when it
 * overflows), puts a `Request-Id` and a `Date` (its own clock) on every response, and injects core's
 * seeded faults (5xx, 429, resets, truncated bodies, latency). Test controls: change products between
 * (or during) runs, delete a product, leave images out of the list, let "another app" drain the
 * bucket, count the 429s the bucket answered.
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
  /** whether the product list carries each product's `images` (default true, as 2022-01 does) */
  readonly listImages?: boolean
}

/** The API version the simulator serves; any other version in the path is a 404. */
export const version = "2022-01"

/** The largest `per_page` of the product list (an assumption: the OpenAPI documents no maximum). */
export const maxPerPage = 250

/** The `per_page` of the product list when none is sent (the OpenAPI's documented default). */
export const defaultPerPage = 1

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

/** How {@link ShoplazzaSimulator.touchProducts} changes products. */
export interface TouchOptions {
  /**
   * Move the changed products to the end of the list, as a list sorted by `updated_at` would: a
   * listing in progress meets them a second time. Default false (the list order stays).
   */
  readonly reorder?: boolean
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
  /** every product as it is now, in list order (deleted ones included) */
  readonly catalogue: ReadonlyArray<CatalogueProduct>
  /** the products still there, in list order */
  readonly products: () => ReadonlyArray<CatalogueProduct>
  /**
   * Changes products as a merchant would: the shop's clock moves on a minute, and each product gets
   * that `updated_at`, its first image a new alt text, its last image removed (when it has two or
   * more) and one new image (new bytes) at the end. `which`: how many products (spread over the
   * list), or their ids. Returns the changed products.
   */
  readonly touchProducts: (which: number | ReadonlyArray<string>, options?: TouchOptions) => ReadonlyArray<CatalogueProduct>
  /** deletes a product: it leaves the list and its images answer 422 "Record not found"; false if there was none */
  readonly deleteProduct: (id: string) => boolean
  /** whether the list carries `images`: for every product (true), none (false), or all but these ids */
  readonly setListImages: (which: boolean | ReadonlyArray<string>) => void
  /** the shop's clock (what its `Date` header says), in epoch milliseconds */
  readonly now: () => number
  /** another app on the same token spends `n` requests of the bucket (it fills up to its capacity) */
  readonly consume: (n: number) => void
  /** how many 429s the bucket has answered (injected 429 faults are counted in `requests().faults`) */
  readonly rateLimited: () => number
  /** a snapshot of the request counters */
  readonly requests: () => RequestStats
  /** set or clear faults while running (restarts the fault PRNG from its seed) */
  readonly setFaults: (faults: FaultOptions | undefined) => void
  /** holds back the answers `match` picks until released (core's `Server.hold`: a test's fixed point, whatever the machine's speed) */
  readonly hold: Server.Served["hold"]
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

  const catalogue = generateCatalogue(productCount, seed)
  const latest = catalogue.products.reduce((t, p) => Math.max(t, Date.parse(p.updated_at)), Date.UTC(2023, 0, 1))
  const state: State = {
    ...catalogue,
    deleted: new Set(),
    bucket,
    rateLimited: 0,
    accessToken,
    // The shop's clock starts an hour after the catalogue's last change, on a whole second.
    clock: Math.ceil(latest / 1000) * 1000 + 3_600_000,
    listImages: options.listImages ?? true,
    touchRng: new Prng(seed ^ 0x5eed),
    version: 0
  }
  const served = await Server.serve({
    name: "shoplazza",
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.faults !== undefined ? { faults: options.faults } : {}),
    respond: (req, origin) => respond(req, state, origin),
    serverErrors,
    throttled: () => tooManyRequests,
    everyReply: () => ({ "Request-Id": randomUUID(), Date: new Date(state.clock).toUTCString() })
  })
  const host = served.origin.replace(/^http:/, "")
  let view: { version: number; products: ReadonlyArray<CatalogueProduct> } | undefined
  const current = (): ReadonlyArray<CatalogueProduct> => {
    if (view === undefined || view.version !== state.version) {
      view = { version: state.version, products: ordered(state).map((p) => withSrc(p, host)) }
    }
    return view.products
  }

  return {
    url: served.origin,
    port: served.port,
    shop,
    accessToken,
    get catalogue() {
      return current()
    },
    products: () => current().filter((p) => !state.deleted.has(p.id)),
    touchProducts: (which, touch = {}) => {
      const live = ordered(state).filter((p) => !state.deleted.has(p.id))
      const chosen = typeof which === "number" ? spread(live, which) : which.map((id) => {
        const p = live.find((q) => q.id === id)
        if (p === undefined) throw new RangeError(`Simulator touchProducts: no product ${id}`)
        return p
      })
      state.clock += 60_000
      for (const p of chosen) touchProduct(state, p, touch.reorder === true)
      state.version++
      const ids = new Set(chosen.map((p) => p.id))
      return current().filter((p) => ids.has(p.id))
    },
    deleteProduct: (id) => {
      if (!state.products.some((p) => p.id === id) || state.deleted.has(id)) return false
      state.deleted.add(id)
      return true
    },
    setListImages: (which) => {
      state.listImages = typeof which === "boolean" ? which : new Set(which)
    },
    now: () => state.clock,
    consume: (n) => bucket?.fill(n),
    rateLimited: () => state.rateLimited,
    requests: served.requests,
    setFaults: served.setFaults,
    hold: served.hold,
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

/** A product as the simulator keeps it (mutable: merchants change products). */
interface DraftProduct {
  readonly id: string
  readonly index: number
  readonly title: string
  readonly handle: string
  readonly created_at: string
  updated_at: string
  /** The list's sort key (the list is in ascending `(listKey, id)` order): `created_at`, or the time of a reordering change. */
  listKey: string
  images: Array<DraftImage>
  readonly published: boolean
  readonly vendor: string
  readonly price: string
}

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
const vendors = ["Acme Apparel", "Northwind", "Blue Harbour"]

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

/** A UUID derived from a name (for the option and variant ids, so they use none of the catalogue's randomness). */
const namedUuid = (name: string): string => {
  const h = createHash("sha256").update(name).digest("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/** A timestamp the way the API writes it: `2024-04-08T07:13:28Z`. */
const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z")

/** The catalogue, and the image files by path. */
interface Generated {
  readonly products: Array<DraftProduct>
  readonly byPath: Map<string, DraftImage>
  /** Makes a new distinct image file. */
  readonly newContent: (rng: Prng) => Content
}

/** Builds the deterministic catalogue for `productCount` products from `seed`, in list order (by `created_at`). */
const generateCatalogue = (productCount: number, seed: number): Generated => {
  const rng = new Prng(seed)
  const contents = new Map<string, Content>()
  const newContent = (r: Prng): Content => {
    for (;;) {
      const image = Images.randomImage(r)
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
  const products = counts.map((count, i): DraftProduct => {
    const id = uuid(rng)
    // Created in list order, a few hours apart.
    const created = base + i * 4 * 3_600_000 + rng.int(3 * 3_600) * 1000
    const noun = rng.pick(nouns)
    const title = `${rng.pick(colours)} ${noun} ${i + 1}`
    const images: Array<DraftImage> = []
    for (let position = 1; position <= count; position++) {
      // Now and then the same bytes twice within a product, or bytes another product has too.
      const content = position > 1 && rng.chance(0.12)
        ? contents.get(rng.pick(images).path)!
        : earlier.length > 0 && rng.chance(0.06)
        ? rng.pick(earlier)
        : newContent(rng)
      earlier.push(content)
      const imageCreated = created + rng.int(30 * 86_400) * 1000
      const alt = awkward < awkwardAlts.length && rng.chance(0.3)
        ? awkwardAlts[awkward++]!
        : rng.chance(0.45)
        ? ""
        : `${title}, ${rng.pick(views)}`
      images.push(draftImage(uuid(rng), id, position, content, alt, isoSeconds(imageCreated), isoSeconds(rng.chance(0.3) ? imageCreated : imageCreated + rng.int(90 * 86_400) * 1000)))
    }
    const createdAt = isoSeconds(created)
    const lastImage = images.reduce((t, image) => (image.updated_at > t ? image.updated_at : t), createdAt)
    const own = isoSeconds(created + rng.int(100 * 86_400) * 1000)
    return {
      id,
      index: i,
      title,
      handle: `${noun.toLowerCase().replace(/\s+/g, "-")}-${i + 1}`,
      created_at: createdAt,
      // A product's updated_at is never older than its images'.
      updated_at: own > lastImage ? own : lastImage,
      listKey: createdAt,
      images,
      published: i % 4 !== 3,
      vendor: vendors[i % vendors.length]!,
      price: `${(9 + (i % 90)).toFixed(0)}.${String((i * 37) % 100).padStart(2, "0")}`
    }
  })
  return { products, byPath: mediaIndex(products), newContent }
}

const draftImage = (id: string, productId: string, position: number, content: Content, alt: string, createdAt: string, updatedAt: string): DraftImage => ({
  id,
  product_id: productId,
  position,
  width: content.width,
  height: content.height,
  alt,
  created_at: createdAt,
  updated_at: updatedAt,
  path: content.path,
  bytes: content.bytes,
  sha256: content.sha256
})

const mediaIndex = (products: ReadonlyArray<DraftProduct>): Map<string, DraftImage> =>
  new Map(products.flatMap((p) => p.images.map((image) => [image.path, image] as const)))

/** A product with the `src` of each image, protocol-relative on `//host:port`. */
const withSrc = (product: DraftProduct, host: string): CatalogueProduct => ({
  id: product.id,
  title: product.title,
  handle: product.handle,
  created_at: product.created_at,
  updated_at: product.updated_at,
  images: product.images.map((image) => ({ ...image, src: `${host}${image.path}` }))
})

/** `n` products spread evenly over `products`. */
const spread = <A>(products: ReadonlyArray<A>, n: number): Array<A> => {
  if (!Number.isInteger(n) || n < 0 || n > products.length) throw new RangeError(`Simulator touchProducts: expected 0..${products.length} products, got ${n}`)
  return Array.from({ length: n }, (_, k) => products[Math.floor(((k + 0.5) * products.length) / n)]!)
}

/** One merchant's change to a product (see `touchProducts`). */
const touchProduct = (state: State, product: DraftProduct, reorder: boolean): void => {
  const at = isoSeconds(state.clock)
  const images = [...product.images]
  if (images.length >= 1) images[0] = { ...images[0]!, alt: `${product.title}, edited ${at}`, updated_at: at }
  if (images.length >= 2) images.pop()
  const content = state.newContent(state.touchRng)
  const added = draftImage(uuid(state.touchRng), product.id, images.length + 1, content, "", at, at)
  images.push(added)
  state.byPath.set(added.path, added)
  product.images = images
  product.updated_at = at
  if (reorder) product.listKey = at
}

// ---------------------------------------------------------------------------------------------
// HTTP: routing, auth, the bucket, pagination
// ---------------------------------------------------------------------------------------------

type Reply = Server.Reply

interface State extends Generated {
  readonly deleted: Set<string>
  readonly bucket: LeakyBucket | undefined
  rateLimited: number
  readonly accessToken: string
  /** The shop's clock, in epoch milliseconds (whole seconds). */
  clock: number
  /** Whether the list carries images: all, none, or all but these product ids. */
  listImages: boolean | ReadonlySet<string>
  readonly touchRng: Prng
  /** Bumped on every change, so the catalogue view is rebuilt only then. */
  version: number
}

/** Every product (deleted ones too) in list order: ascending `(listKey, id)`. */
const ordered = (state: State): Array<DraftProduct> =>
  [...state.products].sort((a, b) => compareKey([a.listKey, a.id], [b.listKey, b.id]))

const compareKey = (a: readonly [string, string], b: readonly [string, string]): number =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0

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
  const host = origin.replace(/^http:/, "")
  if (route === "products") return productList(state, url.searchParams, host)
  if (route === "products/count") {
    const filter = filterOf(url.searchParams)
    return typeof filter === "string" ? errors(422, filter) : Server.json(200, { count: listed(state, filter).length })
  }
  const images = /^products\/([^/]+)\/images(\/count)?$/.exec(route)
  if (images !== null) {
    const product = productOf(state, decodeURIComponent(images[1]!))
    if (typeof product === "string") return errors(422, product)
    return images[2] === undefined
      ? Server.json(200, { images: product.images.map((image) => wireImage(image, host)) })
      : Server.json(200, { count: product.images.length })
  }
  return errors(404, "Not Found")
}

/** The filters of the list and the count: `updated_at_min|max` as instants, or the 422 message. */
interface Filter {
  readonly min: number | undefined
  readonly max: number | undefined
  /** `ids`: only these products (comma-separated in the query). */
  readonly ids: ReadonlySet<string> | undefined
}

const filterOf = (query: URLSearchParams): Filter | string => {
  const instant = (name: string): number | undefined | string => {
    const raw = query.get(name)
    if (raw === null || raw === "") return undefined
    const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(raw) ? Date.parse(raw) : Number.NaN
    return Number.isFinite(ms) ? ms : `${name} is not a valid date`
  }
  const min = instant("updated_at_min")
  const max = instant("updated_at_max")
  if (typeof min === "string") return min
  if (typeof max === "string") return max
  const rawIds = query.get("ids")
  const ids = rawIds === null || rawIds === "" ? undefined : new Set(rawIds.split(",").map((id) => id.trim()).filter((id) => id !== ""))
  return { min, max, ids }
}

/** The products the filter lets through, in list order (deleted ones left out). */
const listed = (state: State, filter: Filter): Array<DraftProduct> =>
  ordered(state).filter((p) => {
    if (state.deleted.has(p.id)) return false
    if (filter.ids !== undefined && !filter.ids.has(p.id)) return false
    const at = Date.parse(p.updated_at)
    return (filter.min === undefined || at >= filter.min) && (filter.max === undefined || at <= filter.max)
  })

/** `GET products?per_page=&cursor=&fields=&updated_at_min=`: keyset pagination over the list order. */
const productList = (state: State, query: URLSearchParams, host: string): Reply => {
  const perPageRaw = query.get("per_page")
  const perPage = perPageRaw === null || perPageRaw === "" ? defaultPerPage : /^\d+$/.test(perPageRaw) ? Number(perPageRaw) : Number.NaN
  if (!(Number.isInteger(perPage) && perPage >= 1 && perPage <= maxPerPage)) return errors(422, `per_page must be an integer from 1 to ${maxPerPage}`)
  const filter = filterOf(query)
  if (typeof filter === "string") return errors(422, filter)
  let rest = listed(state, filter)
  const cursor = query.get("cursor")
  if (cursor !== null && cursor !== "") {
    const after = decodeCursor(cursor)
    if (after === undefined) return errors(422, "cursor is invalid")
    // Keyset: the products after the cursor's key, so a deleted or changed product never shifts the pages after it.
    rest = rest.filter((p) => compareKey([p.listKey, p.id], after) > 0)
  }
  const page = rest.slice(0, perPage)
  const fields = fieldsOf(query)
  return Server.json(200, {
    cursor: rest.length > perPage ? encodeCursor(page[page.length - 1]!) : "",
    pre_cursor: cursor === null || cursor === "" || page.length === 0 ? "" : encodeCursor(page[0]!),
    products: page.map((p) => pick(wireProduct(p, host, withImages(state, p.id)), fields))
  })
}

/** Whether the list carries the images of a product. */
const withImages = (state: State, id: string): boolean =>
  typeof state.listImages === "boolean" ? state.listImages : !state.listImages.has(id)

/** The `fields` of a list request (none: every field). */
const fieldsOf = (query: URLSearchParams): ReadonlySet<string> | undefined => {
  const raw = query.get("fields")
  if (raw === null || raw.trim() === "") return undefined
  return new Set(raw.split(",").map((f) => f.trim()).filter((f) => f.length > 0))
}

/** Only the fields asked for, in the product's own order (unknown names are ignored). */
const pick = (product: Record<string, unknown>, fields: ReadonlySet<string> | undefined): Record<string, unknown> =>
  fields === undefined ? product : Object.fromEntries(Object.entries(product).filter(([k]) => fields.has(k)))

/** A product as the 2022-01 list serves it: the keys (and their order) of the vendor's published example. */
const wireProduct = (p: DraftProduct, host: string, images: boolean): Record<string, unknown> => {
  const main = p.images[0]
  const variantId = namedUuid(`${p.id}:variant`)
  const colour = p.title.split(" ")[0]!
  return {
    id: p.id,
    title: p.title,
    brief: `${p.title}, in ${colour.toLowerCase()}`,
    description: `<p>${p.title}</p>`,
    published: p.published,
    requires_shipping: true,
    taxable: false,
    tags: "",
    vendor: p.vendor,
    vendor_url: "",
    inventory_quantity: 10 + (p.index % 50),
    published_at: p.published ? p.created_at : null,
    created_at: p.created_at,
    updated_at: p.updated_at,
    note: "",
    seo_title: p.title,
    seo_description: "",
    seo_keywords: "",
    handle: p.handle,
    has_only_default_variant: false,
    inventory_tracking: false,
    inventory_policy: "continue",
    need_variant_image: false,
    spu: `SPU-${p.index + 1}`,
    fake_sales: 0,
    display_fake_sales: false,
    image: main === undefined
      ? null
      : { src: `${host}${main.path}`, width: main.width, height: main.height, alt: main.alt, path: main.path.replace(/^\//, "") },
    ...(images ? { images: p.images.map((image) => wireImage(image, host)) } : {}),
    options: [{ id: namedUuid(`${p.id}:option`), product_id: p.id, position: 1, name: "Colour", values: [colour] }],
    variants: [{
      id: variantId,
      product_id: p.id,
      image_id: "",
      created_at: p.created_at,
      updated_at: p.updated_at,
      title: colour,
      option1: colour,
      option2: "",
      option3: "",
      image: null,
      position: 1,
      compare_at_price: "0.00",
      price: p.price,
      sku: `SKU-${p.index + 1}`,
      barcode: "",
      note: "",
      inventory_quantity: 10 + (p.index % 50),
      weight: "0.5",
      weight_unit: "kg",
      cost_price: "0.00"
    }]
  }
}

/** An image exactly as `GET products/{id}/images` (and the list) serves it. */
const wireImage = (image: DraftImage, host: string) => ({
  id: image.id,
  product_id: image.product_id,
  position: image.position,
  src: `${host}${image.path}`,
  width: image.width,
  height: image.height,
  alt: image.alt,
  created_at: image.created_at,
  updated_at: image.updated_at
})

/** A product by id, or the 422 message: an invalid UUID, or no such product (deleted ones included). */
const productOf = (state: State, id: string): DraftProduct | string => {
  if (!uuidPattern.test(id)) return "product_id has an invalid UUID"
  const product = state.products.find((p) => p.id === id)
  return product === undefined || state.deleted.has(id) ? "Record not found" : product
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

/** An opaque cursor in the vendor's form: base64 of `<sort key>#<product id>` (the published one is `2021-07-09T01:17:04Z#7bb1e015-...`). */
const encodeCursor = (p: DraftProduct): string => Buffer.from(`${p.listKey}#${p.id}`, "utf8").toString("base64")

const decodeCursor = (cursor: string): readonly [string, string] | undefined => {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(cursor)) return undefined
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)#([0-9a-f-]{36})$/.exec(Buffer.from(cursor, "base64").toString("utf8"))
  return m === null ? undefined : [m[1]!, m[2]!]
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
