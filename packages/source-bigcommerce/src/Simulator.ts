/**
 * A faithful fake of the BigCommerce V2 catalog API (products and product images) on a loopback
 * address, for the source's tests, `npm run demo`, `effetl simulate bigcommerce` and benchmarks.
 *
 * It serves a deterministic catalogue (from a seed) under `/stores/{storeHash}/v2/` with
 * `X-Auth-Token` auth, page/limit pagination (limit default 50, at most 250) that answers **204 with
 * an empty body** past the end of every list (and for a product with no images), images sorted by
 * id with `sort_order` ties, RFC 2822 `date_created`, `GET /products/images/count`, BigCommerce's
 * error shape (`[{"status":404,"message":"..."}]`), and its **fixed-window quota**: every API
 * response carries `X-Rate-Limit-Requests-Quota`, `-Requests-Left`, `-Time-Window-Ms` and
 * `-Time-Reset-Ms`, and a request made when the window's quota is spent gets a 429 (with the same
 * headers). The image bytes are served under `/s-{storeHash}/products/...` like a CDN (outside the
 * quota). Test controls delete a product mid-run, spend quota as "another app" would, and count
 * the 429s.
 *
 * The module has three parts: the public API (below), the catalogue generator, and the HTTP layer.
 * Serving, faults, the PRNG and the image encoders are core's simulator kit (`@effetl/core/simulator`).
 */
import { createHash } from "node:crypto"
import type * as http from "node:http"
import { type Faults, Images, Prng, Server } from "@effetl/core/simulator"
import { Effect, type Scope } from "effect"

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** The fault kinds the simulator can inject. */
export type FaultKind = Faults.FaultKind

/** Which faults to inject, how often, and how (all repeatable from `seed`). */
export type FaultOptions = Faults.FaultOptions

/** How to start a simulator: where to listen, the store and credentials, the catalogue, quota and faults. */
export interface SimulatorOptions {
  /** TCP port; 0 (default) picks an ephemeral port */
  readonly port?: number
  /** default "127.0.0.1"; anything that is not a loopback address is refused */
  readonly host?: string
  /** the store hash in the URL; default "s1mst0re" */
  readonly storeHash?: string
  /** default "sim-token"; requests must send it as `X-Auth-Token` */
  readonly accessToken?: string
  /** number of products in the catalogue; default 40 */
  readonly products?: number
  /** catalogue seed; default 7 */
  readonly seed?: number
  /** requests per window (`X-Rate-Limit-Requests-Quota`); default 150, a Standard plan */
  readonly quota?: number
  /** the window's length in milliseconds (`X-Rate-Limit-Time-Window-Ms`); default 30000 */
  readonly windowMs?: number
  /** faults to inject; none by default */
  readonly faults?: FaultOptions
}

/** One product of the simulated catalogue. */
export interface CatalogueProduct {
  readonly id: number
  readonly name: string
  readonly sku: string
  /** ids of this product's images, ascending (the API's order) */
  readonly images: ReadonlyArray<number>
}

/** One image of the simulated catalogue: its wire fields, the instant behind its date, its bytes. */
export interface CatalogueImage {
  readonly id: number
  readonly product_id: number
  /** the vendor's relative path, e.g. `k/042/blue_shirt_front__12345.jpg` (data, never a path to use) */
  readonly image_file: string
  readonly zoom_url: string
  readonly standard_url: string
  readonly thumbnail_url: string
  readonly tiny_url: string
  readonly is_thumbnail: boolean
  /** display order; ties happen (break them by id) */
  readonly sort_order: number
  /** nullable; often "" */
  readonly description: string | null
  /** RFC 2822, exactly as served, e.g. `Mon, 24 Sep 2012 01:14:30 +0000` */
  readonly date_created: string
  /** the UTC instant of `date_created`, epoch milliseconds */
  readonly created: number
  /** the bytes every URL variant of the image serves */
  readonly bytes: Uint8Array
  /** hex sha256 of `bytes` */
  readonly sha256: string
}

/** Counters of the requests a simulator has received. */
export type RequestStats = Server.RequestStats

/** A running simulator. */
export interface BigCommerceSimulator {
  /** "http://127.0.0.1:<port>" (what a user puts in baseUrl) */
  readonly url: string
  readonly port: number
  readonly storeHash: string
  readonly accessToken: string
  /** requests per window */
  readonly quota: number
  /** the window's length in milliseconds */
  readonly windowMs: number
  /** every image as generated (deleted products' too), by product id, then image id */
  readonly catalogue: ReadonlyArray<CatalogueImage>
  /** every product as generated, ordered by id */
  readonly products: ReadonlyArray<CatalogueProduct>
  /** a snapshot of the request counters */
  readonly requests: () => RequestStats
  /** how many 429s were answered because the window's quota was spent (429 faults are counted in `requests().faults`) */
  readonly throttled: () => number
  /** the lowest `X-Rate-Limit-Requests-Left` sent in answer to a request that counted (quota when none did) */
  readonly lowestLeft: () => number
  /** deletes a product: it leaves the list and the counts, and its images endpoint answers 404 */
  readonly deleteProduct: (id: number) => void
  /** another app on the store spends `n` requests of the current window (opening one if none is open) */
  readonly consume: (n: number) => void
  /** set or clear faults while running (restarts the fault PRNG from its seed) */
  readonly setFaults: (faults: FaultOptions | undefined) => void
  /** stops listening and drops every open connection */
  readonly close: () => Promise<void>
}

/** Starts a simulator on a loopback address; rejects for a non-loopback host or bad options. */
export const startBigCommerceSimulator = async (options: SimulatorOptions = {}): Promise<BigCommerceSimulator> => {
  Server.loopbackHost(options.host ?? "127.0.0.1", "bigcommerce")
  const storeHash = options.storeHash ?? "s1mst0re"
  const accessToken = options.accessToken ?? "sim-token"
  const productCount = options.products ?? 40
  const seed = options.seed ?? 7
  const quota = options.quota ?? 150
  const windowMs = options.windowMs ?? 30_000
  if (!/^[a-z0-9]+$/.test(storeHash)) throw new RangeError(`Simulator storeHash must be lowercase letters and digits, got "${storeHash}"`)
  if (accessToken.length === 0 || /\s/.test(accessToken)) throw new RangeError("Simulator accessToken must be non-empty and contain no whitespace")
  if (!Number.isSafeInteger(productCount) || productCount < 0) throw new RangeError(`Simulator products must be a non-negative integer, got ${productCount}`)
  if (!Number.isSafeInteger(quota) || quota < 1) throw new RangeError(`Simulator quota must be a positive integer, got ${quota}`)
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) throw new RangeError(`Simulator windowMs must be a positive integer, got ${windowMs}`)

  const catalogue = generateCatalogue(productCount, seed, storeHash)
  const budget = new Budget(quota, windowMs)
  const state: State = { catalogue, storeHash, accessToken, budget, deleted: new Set() }
  const served = await Server.serve({
    name: "bigcommerce",
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.faults !== undefined ? { faults: options.faults } : {}),
    respond: (req, origin) => respond(req, state, origin),
    serverErrors,
    // A 429 fault stands for a throttle the quota does not explain; it carries the quota headers as every answer does.
    throttled: () => errors(429, "Too many requests. Please wait before retrying.", budget.headers(Date.now()))
  })

  const origin = served.origin
  return {
    url: origin,
    port: served.port,
    storeHash,
    accessToken,
    quota,
    windowMs,
    catalogue: catalogue.images.map((image) => ({
      id: image.id,
      product_id: image.product_id,
      image_file: image.image_file,
      ...urls(image, origin),
      is_thumbnail: image.is_thumbnail,
      sort_order: image.sort_order,
      description: image.description,
      date_created: image.date_created,
      created: image.created,
      bytes: image.bytes,
      sha256: image.sha256
    })),
    products: catalogue.products,
    requests: served.requests,
    throttled: () => budget.throttled,
    lowestLeft: () => budget.lowest,
    deleteProduct: (id) => void state.deleted.add(id),
    consume: (n) => budget.consume(Date.now(), n),
    setFaults: served.setFaults,
    close: served.close
  }
}

/** Effect wrapper: starts a simulator on acquire and closes it on release (start failures are defects). */
export const make = (options?: SimulatorOptions): Effect.Effect<BigCommerceSimulator, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startBigCommerceSimulator(options)),
    (simulator) => Effect.promise(() => simulator.close())
  )

// ---------------------------------------------------------------------------------------------
// The quota: a fixed window per store
// ---------------------------------------------------------------------------------------------

/**
 * The store's request budget: a window opens with the first request after the previous one ended
 * and lasts `windowMs`; it allows `quota` requests, whoever makes them.
 */
class Budget {
  private windowEnd = 0
  private used = 0
  throttled = 0
  lowest: number

  constructor(readonly quota: number, readonly windowMs: number) {
    this.lowest = quota
  }

  /** Counts one request; false when the window's quota is already spent. */
  count(now: number): boolean {
    this.open(now)
    if (this.used >= this.quota) {
      this.throttled++
      return false
    }
    this.used++
    this.lowest = Math.min(this.lowest, this.quota - this.used)
    return true
  }

  /** Another app spends `n` requests. */
  consume(now: number, n: number): void {
    this.open(now)
    this.used = Math.min(this.quota, this.used + Math.max(0, Math.floor(n)))
  }

  /** The four headers as they stand now. */
  headers(now: number): Record<string, string> {
    const open = now < this.windowEnd
    return {
      "X-Rate-Limit-Requests-Quota": String(this.quota),
      "X-Rate-Limit-Requests-Left": String(open ? this.quota - this.used : this.quota),
      "X-Rate-Limit-Time-Window-Ms": String(this.windowMs),
      "X-Rate-Limit-Time-Reset-Ms": String(open ? Math.ceil(this.windowEnd - now) : this.windowMs)
    }
  }

  private open(now: number): void {
    if (now >= this.windowEnd) {
      this.windowEnd = now + this.windowMs
      this.used = 0
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Catalogue generation
// ---------------------------------------------------------------------------------------------

/** An image as generated: URL paths instead of absolute URLs (the origin is known once listening). */
interface GeneratedImage {
  readonly id: number
  readonly product_id: number
  readonly image_file: string
  /** the CDN path of the zoom variant without its size suffix, e.g. `/s-hash/products/101/images/7/stem__12345.1431020870` */
  readonly stem: string
  readonly extension: "jpg" | "png"
  readonly is_thumbnail: boolean
  readonly sort_order: number
  readonly description: string | null
  readonly date_created: string
  readonly created: number
  readonly bytes: Uint8Array
  readonly sha256: string
}

interface Catalogue {
  /** by product id, then image id */
  readonly images: ReadonlyArray<GeneratedImage>
  readonly products: ReadonlyArray<CatalogueProduct>
  readonly productsById: ReadonlyMap<number, CatalogueProduct>
  readonly imagesByProduct: ReadonlyMap<number, ReadonlyArray<GeneratedImage>>
  /** CDN path (without query) → image */
  readonly byPath: ReadonlyMap<string, GeneratedImage>
}

/** The size suffixes of the four URL variants (BigCommerce's CDN names renditions this way). */
const variants = {
  zoom_url: "1280.1280",
  standard_url: "386.513",
  thumbnail_url: "220.290",
  tiny_url: "44.58"
} as const

/** Descriptions (alt texts) that trip careless writers; each is used once when there are enough images. */
const awkwardDescriptions: ReadonlyArray<string> = [
  "Sneaker \"Classic\" – side view",
  "Bag, leather, brown, 30 × 20 cm",
  "First line\nsecond line",
  "Кроссовки белые",
  "白色运动鞋，侧面",
  "👟 Sneaker 🔥 limited",
  "O'Brien's 'quoted'\ttab; semi;colon"
]

const colours = ["red", "blue", "black", "white", "green", "beige", "navy", "grey"]
const nouns = ["sneaker", "jacket", "bag", "dress", "watch", "scarf", "boot", "shirt"]
const views = ["front", "back", "side", "detail", "model", "packshot"]
const weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

/** Builds the deterministic catalogue for `productCount` products from `seed`. */
const generateCatalogue = (productCount: number, seed: number, storeHash: string): Catalogue => {
  const rng = new Prng(seed)

  // Product ids ascend with gaps (products deleted long ago), like a real store's.
  const ids: Array<number> = []
  let next = 101
  for (let i = 0; i < productCount; i++) {
    ids.push(next)
    next += 1 + (rng.chance(0.2) ? 1 + rng.int(3) : 0)
  }

  // Image counts: 1..6, a few products with none, and one with more (for image pagination).
  const counts = ids.map(() => (rng.chance(0.12) ? 0 : 1 + rng.int(6)))
  if (productCount >= 3 && !counts.includes(0)) counts[1 + rng.int(productCount - 1)] = 0
  if (productCount >= 2) counts[0] = Math.max(counts[0]!, 9)

  // Image ids are store-wide and interleave across products (images were added over time).
  const total = counts.reduce((a, b) => a + b, 0)
  let lastImageId = 200
  const imageIds = rng.shuffle(Array.from({ length: total }, () => (lastImageId += 1 + (rng.chance(0.2) ? 1 + rng.int(4) : 0))))

  const images: Array<GeneratedImage> = []
  const products: Array<CatalogueProduct> = []
  const imagesByProduct = new Map<number, Array<GeneratedImage>>()
  let taken = 0
  const base = Date.UTC(2012, 0, 1) / 1000
  ids.forEach((productId, p) => {
    const colour = rng.pick(colours)
    const noun = rng.pick(nouns)
    const mine = imageIds.slice(taken, taken + counts[p]!).sort((a, b) => a - b)
    taken += counts[p]!
    // Display orders: usually 0, 1, 2...; sometimes shuffled, sometimes tied.
    const orders = mine.map((_, j) => j)
    if (rng.chance(0.3)) rng.shuffle(orders).forEach((o, j) => (orders[j] = o))
    for (let j = 1; j < orders.length; j++) if (rng.chance(0.15)) orders[j] = orders[j - 1]!
    const thumbnailAt = orders.indexOf(Math.min(...orders))
    const contents: Array<Images.GeneratedImage> = []
    const drafts: Array<GeneratedImage> = mine.map((id, j) => {
      const content = j > 0 && rng.chance(0.1) ? rng.pick(contents) : Images.randomImage(rng)
      contents.push(content)
      const extension = content.kind === "png" ? "png" : "jpg"
      const name = `${colour}_${noun}_${rng.pick(views)}`
      const number = 10_000 + rng.int(90_000)
      const createdSeconds = base + rng.int(12 * 365 * 86_400)
      const description = rng.chance(0.2) ? null : rng.chance(0.25) ? "" : `${capitalise(colour)} ${noun}, ${rng.pick(views)}`
      return {
        id,
        product_id: productId,
        image_file: `${name[0]}/${String(rng.int(1000)).padStart(3, "0")}/${name}__${number}.${extension}`,
        stem: `/s-${storeHash}/products/${productId}/images/${id}/${name}__${number}.${createdSeconds}`,
        extension,
        is_thumbnail: j === thumbnailAt,
        sort_order: orders[j]!,
        description,
        date_created: rfc2822(createdSeconds),
        created: createdSeconds * 1000,
        bytes: content.bytes,
        sha256: createHash("sha256").update(content.bytes).digest("hex")
      }
    })
    images.push(...drafts)
    imagesByProduct.set(productId, drafts)
    products.push({ id: productId, name: `${capitalise(colour)} ${noun}`, sku: `SKU-${productId}`, images: mine })
  })
  ensureVariety(images, imagesByProduct)

  const byPath = new Map<string, GeneratedImage>()
  for (const image of images) {
    for (const size of Object.values(variants)) byPath.set(`${image.stem}.${size}.${image.extension}`, image)
  }
  return {
    images,
    products,
    productsById: new Map(products.map((product) => [product.id, product])),
    imagesByProduct,
    byPath
  }
}

/** Makes sure the catalogue has a sort_order tie, awkward descriptions and a file name that looks like a path escape. */
const ensureVariety = (images: Array<GeneratedImage>, byProduct: Map<number, Array<GeneratedImage>>): void => {
  const patch = (at: number, fields: Partial<GeneratedImage>): void => {
    const before = images[at]!
    const after = { ...before, ...fields }
    images[at] = after
    const list = byProduct.get(before.product_id)!
    list[list.indexOf(before)] = after
  }
  // A tie whose ids are in the opposite order of the images' other orders.
  const multi = [...byProduct.values()].find((list) => list.length >= 3)
  if (multi !== undefined && !multi.some((a, i) => multi.some((b, j) => i !== j && a.sort_order === b.sort_order))) {
    patch(images.indexOf(multi[2]!), { sort_order: multi[1]!.sort_order })
  }
  awkwardDescriptions.forEach((description, i) => {
    const at = 3 + i * 5
    if (at < images.length) patch(at, { description })
  })
  if (images.length > 50) patch(50, { image_file: "../../etc/passwd__00001.jpg" })
}

/** An RFC 2822 date in UTC, the way BigCommerce V2 writes `date_created`. */
const rfc2822 = (epochSeconds: number): string => {
  const d = new Date(epochSeconds * 1000)
  const two = (n: number) => String(n).padStart(2, "0")
  return `${weekdays[d.getUTCDay()]}, ${two(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`
}

const capitalise = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1)

/** The four absolute URLs of an image. */
const urls = (image: GeneratedImage, origin: string) => ({
  zoom_url: `${origin}${image.stem}.${variants.zoom_url}.${image.extension}?c=2`,
  standard_url: `${origin}${image.stem}.${variants.standard_url}.${image.extension}?c=2`,
  thumbnail_url: `${origin}${image.stem}.${variants.thumbnail_url}.${image.extension}?c=2`,
  tiny_url: `${origin}${image.stem}.${variants.tiny_url}.${image.extension}?c=2`
})

// ---------------------------------------------------------------------------------------------
// HTTP: routing, auth, the quota and pagination
// ---------------------------------------------------------------------------------------------

/** A complete HTTP answer, built before it is sent (so faults can delay or cut it). */
type Reply = Server.Reply

interface State {
  readonly catalogue: Catalogue
  readonly storeHash: string
  readonly accessToken: string
  readonly budget: Budget
  readonly deleted: Set<number>
}

const maxLimit = 250
const defaultLimit = 50

/** Answers one request (no faults): the API under `/stores/{hash}/v2/`, image bytes under `/s-{hash}/`. */
const respond = (req: http.IncomingMessage, state: State, origin: string): Reply => {
  const url = new URL(req.url ?? "/", "http://simulator")
  const path = url.pathname
  if (path.startsWith(`/s-${state.storeHash}/`)) return media(req, state, path)

  const now = Date.now()
  const api = /^\/stores\/([^/]+)\/v2(\/.*)?$/.exec(path)
  if (api === null || api[1] !== state.storeHash) return errors(404, "The requested resource was not found.", state.budget.headers(now))

  // Unauthenticated requests are refused before they count against the store's quota.
  if (req.headers["x-auth-token"] !== state.accessToken) {
    return errors(401, "You are not authorized to access this resource. Check the X-Auth-Token header.", state.budget.headers(now))
  }
  if (!state.budget.count(now)) {
    const headers = state.budget.headers(now)
    return errors(429, `Too many requests: the quota of this store's window is spent. It resets in ${headers["X-Rate-Limit-Time-Reset-Ms"]} ms.`, headers)
  }
  const headers = state.budget.headers(now)
  const accept = req.headers.accept
  if (accept !== undefined && !/application\/json|\*\/\*/i.test(accept)) {
    return errors(406, "The requested content type is not supported by this resource.", headers)
  }
  const method = req.method ?? "GET"
  if (method !== "GET" && method !== "HEAD") return errors(405, `The ${method} method is not supported by this simulator.`, headers)

  const rest = api[2] ?? "/"
  const query = url.searchParams
  const live = () => state.catalogue.products.filter((p) => !state.deleted.has(p.id))
  if (rest === "/products") return page(live(), query, headers, (product) => productRecord(product, origin, state.storeHash))
  if (rest === "/products/count") return json(200, { count: live().length }, headers)
  if (rest === "/products/images/count") {
    return json(200, { count: live().reduce((n, p) => n + p.images.length, 0) }, headers)
  }
  const one = /^\/products\/(\d+)$/.exec(rest)
  if (one !== null) {
    const product = found(state, Number(one[1]))
    return product === undefined ? notFound(headers) : json(200, productRecord(product, origin, state.storeHash), headers)
  }
  const list = /^\/products\/(\d+)\/images$/.exec(rest)
  if (list !== null) {
    const product = found(state, Number(list[1]))
    if (product === undefined) return notFound(headers)
    return page(state.catalogue.imagesByProduct.get(product.id) ?? [], query, headers, (image) => imageRecord(image, origin))
  }
  const single = /^\/products\/(\d+)\/images\/(\d+)$/.exec(rest)
  if (single !== null) {
    const product = found(state, Number(single[1]))
    const image = product === undefined ? undefined : state.catalogue.imagesByProduct.get(product.id)?.find((i) => i.id === Number(single[2]))
    return image === undefined ? notFound(headers) : json(200, imageRecord(image, origin), headers)
  }
  return notFound(headers)
}

/** A product that exists and was not deleted. */
const found = (state: State, id: number): CatalogueProduct | undefined =>
  state.deleted.has(id) ? undefined : state.catalogue.productsById.get(id)

/** One page of a list: `limit` default 50, at most 250; past the end (or an empty list) a 204 with no body. */
const page = <A>(items: ReadonlyArray<A>, query: URLSearchParams, headers: Record<string, string>, render: (item: A) => unknown): Reply => {
  const limitValue = Number(query.get("limit") ?? "")
  const limit = Number.isInteger(limitValue) && limitValue >= 1 ? Math.min(limitValue, maxLimit) : defaultLimit
  const pageValue = Number(query.get("page") ?? "")
  const pageNumber = Number.isInteger(pageValue) && pageValue >= 1 ? pageValue : 1
  const slice = items.slice((pageNumber - 1) * limit, pageNumber * limit)
  if (slice.length === 0) return { status: 204, headers, body: new Uint8Array(0) }
  return json(200, slice.map(render), headers)
}

/** A V2 product record (the fields a catalogue sync reads, plus a few of the usual ones). */
const productRecord = (product: CatalogueProduct, origin: string, storeHash: string) => ({
  id: product.id,
  name: product.name,
  type: "physical",
  sku: product.sku,
  price: `${(product.id % 90) + 9}.0000`,
  is_visible: true,
  images: {
    url: `${origin}/stores/${storeHash}/v2/products/${product.id}/images.json`,
    resource: `/products/${product.id}/images`
  }
})

/** A V2 product image record: exactly the fields of the vendor's page. */
const imageRecord = (image: GeneratedImage, origin: string) => ({
  id: image.id,
  product_id: image.product_id,
  image_file: image.image_file,
  ...urls(image, origin),
  is_thumbnail: image.is_thumbnail,
  sort_order: image.sort_order,
  description: image.description,
  date_created: image.date_created
})

/** Serves image bytes like a CDN: public, outside the API quota; the query (`?c=2`) is ignored. */
const media = (req: http.IncomingMessage, state: State, path: string): Reply => {
  const method = req.method ?? "GET"
  if (method !== "GET" && method !== "HEAD") return Server.text(405, "text/html", Server.nginxPage("405 Not Allowed"))
  const image = state.catalogue.byPath.get(path)
  if (image === undefined) return Server.text(404, "text/html", Server.nginxPage("404 Not Found"))
  return {
    status: 200,
    headers: {
      "Content-Type": image.extension === "png" ? "image/png" : "image/jpeg",
      ETag: `"${image.sha256.slice(0, 32)}"`,
      "Cache-Control": "public, max-age=31536000"
    },
    body: image.bytes
  }
}

/** BigCommerce's error shape: a JSON array of `{status, message}`. */
const errors = (status: number, message: string, headers: Record<string, string> = {}): Reply =>
  json(status, [{ status, message }], headers)

const notFound = (headers: Record<string, string>): Reply => errors(404, "The requested resource was not found.", headers)

const json = (status: number, body: unknown, headers: Record<string, string>): Reply => Server.json(status, body, headers)

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/** The 5xx answers: the API's own 500 and 503 (its error shape) and a proxy's 502. */
const serverErrors: ReadonlyArray<Reply> = [
  errors(500, "Internal Server Error"),
  Server.text(502, "text/html", Server.nginxPage("502 Bad Gateway")),
  errors(503, "The service is temporarily unavailable. Please try again later.")
]
