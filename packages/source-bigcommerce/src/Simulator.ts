/**
 * A faithful fake of the BigCommerce V2 catalog API (products and product images) on a loopback
 * address, for the source's tests, `npm run demo`, `effetl simulate bigcommerce` and benchmarks.
 *
 * It serves a deterministic catalogue (from a seed) under `/stores/{storeHash}/v2/` with
 * `X-Auth-Token` auth, in the shape of BigCommerce's published examples
 * (`../shared/vendor-examples/bigcommerce/`): product records with every documented field and
 * `date_modified`, the product list's filters (`min_id`, `max_id`, `min_date_modified`,
 * `max_date_modified`, `include`, `exclude`) sorted by id, page/limit pagination (limit default 50;
 * **413** above 250) that answers **204 with an empty body** past the end of every list (and for a
 * product with no images), images sorted by id with `sort_order` ties, RFC 2822 dates (or ISO-8601,
 * as some stores send), `GET /products/count` and `/products/images/count`, BigCommerce's error
 * shape (`[{"status":404,"message":"..."}]`), and its **fixed-window quota**: every API response
 * carries `X-Rate-Limit-Requests-Quota`, `-Requests-Left`, `-Time-Window-Ms` and `-Time-Reset-Ms`;
 * a request made when the window's quota is spent gets the documented 429, whose only quota header
 * is `X-Rate-Limit-Time-Reset-Ms` (with `X-Retry-After` in seconds). The image bytes are served
 * under `/s-{storeHash}/products/...` like a CDN (outside the quota). Test controls change products
 * between runs, add and delete products mid-run, spend quota as "another app" would, and count the
 * 429s and the retries that came before an `X-Retry-After` ran out.
 *
 * The module has three parts: the public API (below), the catalogue, and the HTTP layer.
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

/** How a simulator writes dates: RFC 2822 as documented, or ISO-8601 as some V2 stores do. */
export type DateStyle = "rfc2822" | "iso8601"

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
  /** how dates are written; default "rfc2822" */
  readonly dates?: DateStyle
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
  /** `date_modified` exactly as served */
  readonly date_modified: string
  /** the UTC instant of `date_modified`, epoch milliseconds (whole seconds) */
  readonly modified: number
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
  /** exactly as served: RFC 2822 (`Mon, 24 Sep 2012 01:14:30 +0000`) or ISO-8601 with `dates: "iso8601"` */
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
  /** every image as it is now (deleted products' too), by product id, then image id */
  readonly catalogue: ReadonlyArray<CatalogueImage>
  /** every product as it is now (deleted ones too), ordered by id */
  readonly products: ReadonlyArray<CatalogueProduct>
  /** a snapshot of the request counters */
  readonly requests: () => RequestStats
  /** the path and query of every API request answered without an injected fault, in order (e.g. `/stores/h/v2/products?min_id=1&limit=250`) */
  readonly requestLog: () => ReadonlyArray<string>
  /** how many 429s were answered because the window's quota was spent (429 faults are counted in `requests().faults`) */
  readonly throttled: () => number
  /** the lowest `X-Rate-Limit-Requests-Left` sent in answer to a request that counted (quota when none did) */
  readonly lowestLeft: () => number
  /**
   * How many requests came before the `X-Retry-After` of the last 429 fault that carried one had run
   * out (each was answered 429 again). Meaningful for a client making one request at a time.
   */
  readonly early: () => number
  /** deletes a product: it leaves the list and the counts, and its images endpoint answers 404 */
  readonly deleteProduct: (id: number) => void
  /**
   * Changes `n` products (chosen from the seed among those not deleted, or the given ids): each gets
   * one new image and `date_modified` = now (whole seconds). Returns their ids, ascending.
   */
  readonly touchProducts: (n: number | ReadonlyArray<number>) => ReadonlyArray<number>
  /** Adds `n` products after the highest id, each with 1 to 3 images and `date_modified` = now. Returns their ids. */
  readonly addProducts: (n: number) => ReadonlyArray<number>
  /** another app on the store spends `n` requests of the current window (opening one if none is open) */
  readonly consume: (n: number) => void
  /** set or clear faults while running (restarts the fault PRNG from its seed) */
  readonly setFaults: (faults: FaultOptions | undefined) => void
  /** holds back the answers `match` picks until released (core's `Server.hold`: a test's fixed point, whatever the machine's speed) */
  readonly hold: Server.Served["hold"]
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
  const dates = options.dates ?? "rfc2822"
  if (!/^[a-z0-9]+$/.test(storeHash)) throw new RangeError(`Simulator storeHash must be lowercase letters and digits, got "${storeHash}"`)
  if (accessToken.length === 0 || /\s/.test(accessToken)) throw new RangeError("Simulator accessToken must be non-empty and contain no whitespace")
  if (!Number.isSafeInteger(productCount) || productCount < 0) throw new RangeError(`Simulator products must be a non-negative integer, got ${productCount}`)
  if (!Number.isSafeInteger(quota) || quota < 1) throw new RangeError(`Simulator quota must be a positive integer, got ${quota}`)
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) throw new RangeError(`Simulator windowMs must be a positive integer, got ${windowMs}`)
  if (dates !== "rfc2822" && dates !== "iso8601") throw new RangeError(`Simulator dates must be "rfc2822" or "iso8601", got "${String(dates)}"`)

  const catalogue = generateCatalogue(productCount, seed, storeHash)
  const budget = new Budget(quota, windowMs)
  const state: State = { catalogue, storeHash, accessToken, budget, dates, deleted: new Set(), throttles: 0, notBefore: 0, early: 0, log: [] }
  const served = await Server.serve({
    name: "bigcommerce",
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.faults !== undefined ? { faults: options.faults } : {}),
    respond: (req, origin) => respond(req, state, origin),
    serverErrors,
    // A 429 fault stands for a throttle the quota does not explain (another app's burst, say). It has
    // the documented 429's one header; every other one (the first, third, ...) also carries X-Retry-After, in seconds.
    throttled: (fault) => {
      const now = Date.now()
      const withRetryAfter = state.throttles++ % 2 === 0
      if (withRetryAfter) state.notBefore = Math.max(state.notBefore, now + fault.retryAfterSeconds * 1000)
      return throttle(budget.resetMs(now), withRetryAfter ? fault.retryAfterSeconds : undefined)
    }
  })

  const origin = served.origin
  const random = new Prng(seed ^ 0x7a11ed)
  const now = () => Math.floor(Date.now() / 1000) * 1000
  let cachedImages: { version: number; list: ReadonlyArray<CatalogueImage> } | undefined
  let cachedProducts: { version: number; list: ReadonlyArray<CatalogueProduct> } | undefined
  return {
    url: origin,
    port: served.port,
    storeHash,
    accessToken,
    quota,
    windowMs,
    get catalogue() {
      if (cachedImages?.version !== catalogue.version) {
        cachedImages = { version: catalogue.version, list: catalogue.images.map((image) => catalogueImage(image, origin, dates)) }
      }
      return cachedImages.list
    },
    get products() {
      if (cachedProducts?.version !== catalogue.version) {
        cachedProducts = {
          version: catalogue.version,
          list: catalogue.products.map((product) => ({
            id: product.id,
            name: product.name,
            sku: product.sku,
            images: (catalogue.imagesByProduct.get(product.id) ?? []).map((i) => i.id),
            date_modified: formatDate(product.modified, dates),
            modified: product.modified
          }))
        }
      }
      return cachedProducts.list
    },
    requests: served.requests,
    requestLog: () => [...state.log],
    throttled: () => budget.throttled,
    lowestLeft: () => budget.lowest,
    early: () => state.early,
    deleteProduct: (id) => void state.deleted.add(id),
    touchProducts: (n) => {
      const live = catalogue.products.filter((p) => !state.deleted.has(p.id)).map((p) => p.id)
      const chosen = typeof n === "number" ? random.shuffle(live).slice(0, Math.max(0, Math.floor(n))) : n.filter((id) => live.includes(id))
      const at = now()
      for (const id of chosen) addImage(catalogue, random, catalogue.productsById.get(id)!, at, storeHash)
      return [...chosen].sort((a, b) => a - b)
    },
    addProducts: (n) => {
      const at = now()
      const added: Array<number> = []
      for (let i = 0; i < n; i++) {
        const id = (catalogue.products.at(-1)?.id ?? 100) + 1 + random.int(3)
        const product: MutableProduct = { id, name: `New ${random.pick(nouns)}`, sku: `SKU-${id}`, created: at, modified: at }
        catalogue.products.push(product)
        catalogue.productsById.set(id, product)
        catalogue.imagesByProduct.set(id, [])
        for (let j = 1 + random.int(3); j > 0; j--) addImage(catalogue, random, product, at, storeHash)
        catalogue.version++
        added.push(id)
      }
      return added
    },
    consume: (n) => budget.consume(Date.now(), n),
    setFaults: served.setFaults,
    hold: served.hold,
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

  /** Milliseconds until the window resets (a whole window when none is open). */
  resetMs(now: number): number {
    return now < this.windowEnd ? Math.ceil(this.windowEnd - now) : this.windowMs
  }

  /** The four headers as they stand now. */
  headers(now: number): Record<string, string> {
    const open = now < this.windowEnd
    return {
      "X-Rate-Limit-Requests-Quota": String(this.quota),
      "X-Rate-Limit-Requests-Left": String(open ? this.quota - this.used : this.quota),
      "X-Rate-Limit-Time-Window-Ms": String(this.windowMs),
      "X-Rate-Limit-Time-Reset-Ms": String(this.resetMs(now))
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
// The catalogue
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
  /** epoch milliseconds of `date_created` (whole seconds) */
  readonly created: number
  readonly bytes: Uint8Array
  readonly sha256: string
}

/** A product's own fields (its images are in `imagesByProduct`). */
interface MutableProduct {
  readonly id: number
  readonly name: string
  readonly sku: string
  readonly created: number
  modified: number
}

/** The catalogue as it stands; `touchProducts` and `addProducts` change it (and bump `version`). */
interface Catalogue {
  version: number
  /** by product id, then image id */
  readonly images: Array<GeneratedImage>
  /** ordered by id */
  readonly products: Array<MutableProduct>
  readonly productsById: Map<number, MutableProduct>
  /** each product's images, by image id */
  readonly imagesByProduct: Map<number, Array<GeneratedImage>>
  /** CDN path (without query) → image */
  readonly byPath: Map<string, GeneratedImage>
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
  const names: Array<string> = []
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
        created: createdSeconds * 1000,
        bytes: content.bytes,
        sha256: createHash("sha256").update(content.bytes).digest("hex")
      }
    })
    images.push(...drafts)
    imagesByProduct.set(productId, drafts)
    names.push(`${capitalise(colour)} ${noun}`)
  })
  ensureVariety(images, imagesByProduct)

  // Products' dates come from their own PRNG, so the images stay what the seed always gave.
  const dates = new Prng(seed ^ 0x0d47e5)
  const products: Array<MutableProduct> = ids.map((id, p) => {
    const created = base + dates.int(6 * 365 * 86_400)
    return { id, name: names[p]!, sku: `SKU-${id}`, created: created * 1000, modified: (created + 1 + dates.int(6 * 365 * 86_400)) * 1000 }
  })

  const byPath = new Map<string, GeneratedImage>()
  for (const image of images) register(byPath, image)
  return {
    version: 0,
    images,
    products,
    productsById: new Map(products.map((product) => [product.id, product])),
    imagesByProduct,
    byPath
  }
}

/** Makes every URL variant of an image servable. */
const register = (byPath: Map<string, GeneratedImage>, image: GeneratedImage): void => {
  for (const size of Object.values(variants)) byPath.set(`${image.stem}.${size}.${image.extension}`, image)
}

/** Gives a product one new image (the next id in the store, created `at`) and marks it modified `at`. */
const addImage = (catalogue: Catalogue, rng: Prng, product: MutableProduct, at: number, storeHash: string): void => {
  const content = Images.randomImage(rng)
  const id = Math.max(200, ...catalogue.images.map((i) => i.id)) + 1
  const extension = content.kind === "png" ? "png" : "jpg"
  const name = `${rng.pick(colours)}_${rng.pick(nouns)}_${rng.pick(views)}`
  const number = 10_000 + rng.int(90_000)
  const own = catalogue.imagesByProduct.get(product.id) ?? []
  const image: GeneratedImage = {
    id,
    product_id: product.id,
    image_file: `${name[0]}/${String(rng.int(1000)).padStart(3, "0")}/${name}__${number}.${extension}`,
    stem: `/s-${storeHash}/products/${product.id}/images/${id}/${name}__${number}.${at / 1000}`,
    extension,
    is_thumbnail: own.length === 0,
    sort_order: own.length,
    description: `Added ${name.replaceAll("_", " ")}`,
    created: at,
    bytes: content.bytes,
    sha256: createHash("sha256").update(content.bytes).digest("hex")
  }
  catalogue.imagesByProduct.set(product.id, [...own, image])
  // Keep `images` by product id, then image id.
  const after = catalogue.images.findIndex((i) => i.product_id > product.id)
  catalogue.images.splice(after < 0 ? catalogue.images.length : after, 0, image)
  register(catalogue.byPath, image)
  product.modified = at
  catalogue.version++
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

/** A date the way the store writes it: RFC 2822 in UTC (`Mon, 24 Sep 2012 01:14:30 +0000`), or ISO-8601. */
const formatDate = (epochMs: number, style: DateStyle): string => {
  const d = new Date(epochMs)
  if (style === "iso8601") return d.toISOString().replace(/\.\d{3}Z$/, "+00:00")
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

/** An image as the public `catalogue` shows it. */
const catalogueImage = (image: GeneratedImage, origin: string, dates: DateStyle): CatalogueImage => ({
  id: image.id,
  product_id: image.product_id,
  image_file: image.image_file,
  ...urls(image, origin),
  is_thumbnail: image.is_thumbnail,
  sort_order: image.sort_order,
  description: image.description,
  date_created: formatDate(image.created, dates),
  created: image.created,
  bytes: image.bytes,
  sha256: image.sha256
})

// ---------------------------------------------------------------------------------------------
// HTTP: routing, auth, the quota, filters and pagination
// ---------------------------------------------------------------------------------------------

/** A complete HTTP answer, built before it is sent (so faults can delay or cut it). */
type Reply = Server.Reply

interface State {
  readonly catalogue: Catalogue
  readonly storeHash: string
  readonly accessToken: string
  readonly budget: Budget
  readonly dates: DateStyle
  readonly deleted: Set<number>
  /** 429 faults answered so far */
  throttles: number
  /** the end of the last X-Retry-After sent with a 429 fault (epoch ms) */
  notBefore: number
  /** requests that came before `notBefore` */
  early: number
  /** path and query of the API requests answered without a fault */
  readonly log: Array<string>
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
  state.log.push(`${path}${url.search}`)
  if (api === null || api[1] !== state.storeHash) return errors(404, "The requested resource was not found.", state.budget.headers(now))

  // Unauthenticated requests are refused before they count against the store's quota.
  if (req.headers["x-auth-token"] !== state.accessToken) {
    return errors(401, "You are not authorized to access this resource. Check the X-Auth-Token header.", state.budget.headers(now))
  }
  // A retry before the X-Retry-After of a 429 ran out is throttled again.
  if (now < state.notBefore) {
    state.early++
    return throttle(state.notBefore - now, Math.ceil((state.notBefore - now) / 1000))
  }
  if (!state.budget.count(now)) {
    const resetMs = state.budget.resetMs(now)
    return throttle(resetMs, Math.ceil(resetMs / 1000))
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
  if (rest === "/products" || rest === "/products/count") {
    const filtered = filterProducts(live(), query)
    if (typeof filtered === "string") return errors(400, filtered, headers)
    if (rest === "/products/count") return json(200, { count: filtered.length }, headers)
    const fields = fieldFilter(query)
    return page(filtered, query, headers, (product) => fields(productRecord(product, state, origin)))
  }
  if (rest === "/products/images/count") {
    return json(200, { count: live().reduce((n, p) => n + (state.catalogue.imagesByProduct.get(p.id)?.length ?? 0), 0) }, headers)
  }
  const one = /^\/products\/(\d+)$/.exec(rest)
  if (one !== null) {
    const product = found(state, Number(one[1]))
    return product === undefined ? notFound(headers) : json(200, fieldFilter(query)(productRecord(product, state, origin)), headers)
  }
  const list = /^\/products\/(\d+)\/images$/.exec(rest)
  if (list !== null) {
    const product = found(state, Number(list[1]))
    if (product === undefined) return notFound(headers)
    return page(state.catalogue.imagesByProduct.get(product.id) ?? [], query, headers, (image) => imageRecord(image, origin, state.dates))
  }
  const single = /^\/products\/(\d+)\/images\/(\d+)$/.exec(rest)
  if (single !== null) {
    const product = found(state, Number(single[1]))
    const image = product === undefined ? undefined : state.catalogue.imagesByProduct.get(product.id)?.find((i) => i.id === Number(single[2]))
    return image === undefined ? notFound(headers) : json(200, imageRecord(image, origin, state.dates), headers)
  }
  return notFound(headers)
}

/** A product that exists and was not deleted. */
const found = (state: State, id: number): MutableProduct | undefined =>
  state.deleted.has(id) ? undefined : state.catalogue.productsById.get(id)

/** The list's documented filters this simulator knows (`min_id`, `max_id`, `min_date_modified`, `max_date_modified`); a bad value is a message. */
const filterProducts = (products: ReadonlyArray<MutableProduct>, query: URLSearchParams): ReadonlyArray<MutableProduct> | string => {
  const ids = (name: string): number | undefined | string => {
    const text = query.get(name)
    if (text === null) return undefined
    return /^\d{1,16}$/.test(text) ? Number(text) : `The field '${name}' is invalid: expected an integer.`
  }
  const dates = (name: string): number | undefined | string => {
    const text = query.get(name)
    if (text === null) return undefined
    const ms = parseFilterDate(text)
    return ms === undefined ? `The field '${name}' is invalid: expected an RFC 2822 or ISO-8601 date.` : ms
  }
  const bounds = [ids("min_id"), ids("max_id"), dates("min_date_modified"), dates("max_date_modified")]
  const bad = bounds.find((b): b is string => typeof b === "string")
  if (bad !== undefined) return bad
  const [minId, maxId, minModified, maxModified] = bounds as Array<number | undefined>
  return products.filter((p) =>
    (minId === undefined || p.id >= minId) &&
    (maxId === undefined || p.id <= maxId) &&
    (minModified === undefined || p.modified >= minModified) &&
    (maxModified === undefined || p.modified <= maxModified)
  )
}

/** A filter date: RFC 2822 (`Mon, 24 Sep 2012 01:14:30 +0000`), an ISO-8601 date-time with a zone, or an ISO date (UTC midnight). */
const parseFilterDate = (text: string): number | undefined => {
  const rfc = /^(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}(?::\d{2})? (?:[+-]\d{4}|GMT|UT)$/
  const iso = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}))?$/i
  if (!rfc.test(text) && !iso.test(text)) return undefined
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text)
  return Number.isNaN(ms) ? undefined : ms
}

/** The fields a product list or product always sends, whatever `include` or `exclude` say. */
const mandatoryFields = ["id", "name", "date_modified", "primary_image"]

/** The `include=@summary` fields. */
const summaryFields = ["availability", "calculated_price", "inventory_tracking", "sku", "inventory_level", "inventory_warning_level", "is_visible", "is_featured"]

/** `include=` (the mandatory fields, the named ones and `metadata: []`) or `exclude=` (all but the named ones, mandatory fields kept). */
const fieldFilter = (query: URLSearchParams) => (record: Record<string, unknown>): Record<string, unknown> => {
  const names = (text: string) => text.split(",").map((s) => s.trim()).filter((s) => s !== "")
  const include = query.get("include")
  if (include !== null) {
    const wanted = new Set([...mandatoryFields, ...names(include).flatMap((n) => (n === "@summary" ? summaryFields : [n]))])
    return { ...Object.fromEntries(Object.entries(record).filter(([key]) => wanted.has(key))), metadata: [] }
  }
  const exclude = query.get("exclude")
  if (exclude !== null) {
    const dropped = new Set(names(exclude).filter((n) => !mandatoryFields.includes(n)))
    return Object.fromEntries(Object.entries(record).filter(([key]) => !dropped.has(key)))
  }
  return record
}

/** One page of a list: `limit` default 50, 413 above 250; past the end (or an empty list) a 204 with no body. */
const page = <A>(items: ReadonlyArray<A>, query: URLSearchParams, headers: Record<string, string>, render: (item: A) => unknown): Reply => {
  const limitValue = Number(query.get("limit") ?? "")
  if (Number.isInteger(limitValue) && limitValue > maxLimit) {
    return errors(413, `The limit of ${limitValue} is too large: a page has at most ${maxLimit} results.`, headers)
  }
  const limit = Number.isInteger(limitValue) && limitValue >= 1 ? limitValue : defaultLimit
  const pageValue = Number(query.get("page") ?? "")
  const pageNumber = Number.isInteger(pageValue) && pageValue >= 1 ? pageValue : 1
  const slice = items.slice((pageNumber - 1) * limit, pageNumber * limit)
  if (slice.length === 0) return { status: 204, headers, body: new Uint8Array(0) }
  return json(200, slice.map(render), headers)
}

/**
 * A V2 product record with every field of the vendor's "List Products" example, in its order and
 * with its types; the catalogue's own values where it has them, the example's otherwise.
 */
const productRecord = (product: MutableProduct, state: State, origin: string): Record<string, unknown> => {
  const api = `${origin}/stores/${state.storeHash}/v2`
  const resource = (path: string) => ({ url: `${api}${path}.json`, resource: path })
  const images = state.catalogue.imagesByProduct.get(product.id) ?? []
  const primary = images.find((i) => i.is_thumbnail) ?? images[0]
  const price = `${(product.id % 90) + 9}.0000`
  return {
    id: product.id,
    keyword_filter: null,
    name: product.name,
    type: "physical",
    sku: product.sku,
    description: `${product.name}: densely packed with useful information.`,
    search_keywords: null,
    availability_description: "",
    price,
    cost_price: "0.0000",
    retail_price: "0.0000",
    sale_price: "0.0000",
    calculated_price: price,
    sort_order: 0,
    is_visible: true,
    is_featured: product.id % 3 === 0,
    related_products: "-1",
    inventory_level: 0,
    inventory_warning_level: 0,
    warranty: null,
    weight: "0.3000",
    width: "0.0000",
    height: "0.0000",
    depth: "0.0000",
    fixed_cost_shipping_price: "0.0000",
    is_free_shipping: false,
    inventory_tracking: "none",
    rating_total: 0,
    rating_count: 0,
    total_sold: 0,
    date_created: formatDate(product.created, state.dates),
    brand_id: 17,
    view_count: product.id % 13,
    page_title: "",
    meta_keywords: null,
    meta_description: null,
    layout_file: "product.html",
    is_price_hidden: false,
    price_hidden_label: "",
    categories: [14],
    date_modified: formatDate(product.modified, state.dates),
    event_date_field_name: "Delivery Date",
    event_date_type: "none",
    event_date_start: "",
    event_date_end: "",
    myob_asset_account: "",
    myob_income_account: "",
    myob_expense_account: "",
    peachtree_gl_account: "",
    condition: "New",
    is_condition_shown: false,
    preorder_release_date: "",
    is_preorder_only: false,
    preorder_message: "",
    order_quantity_minimum: 0,
    order_quantity_maximum: 0,
    open_graph_type: "product",
    open_graph_title: "",
    open_graph_description: null,
    is_open_graph_thumbnail: true,
    upc: null,
    avalara_product_tax_code: "",
    date_last_imported: "",
    option_set_id: null,
    tax_class_id: 0,
    option_set_display: "right",
    bin_picking_number: "",
    custom_url: `/${product.name.toLowerCase().replaceAll(" ", "-")}-${product.id}/`,
    // Assumption: a product with no image has a null primary_image (the examples always have one).
    primary_image: primary === undefined ? null : { id: primary.id, ...urls(primary, origin) },
    availability: "available",
    brand: resource("/brands/17"),
    images: resource(`/products/${product.id}/images`),
    discount_rules: resource(`/products/${product.id}/discountrules`),
    configurable_fields: resource(`/products/${product.id}/configurablefields`),
    custom_fields: resource(`/products/${product.id}/customfields`),
    videos: resource(`/products/${product.id}/videos`),
    skus: resource(`/products/${product.id}/skus`),
    rules: resource(`/products/${product.id}/rules`),
    option_set: null,
    options: resource(`/products/${product.id}/options`),
    tax_class: resource("/taxclasses/0")
  }
}

/** A V2 product image record: exactly the fields of the vendor's page. */
const imageRecord = (image: GeneratedImage, origin: string, dates: DateStyle) => ({
  id: image.id,
  product_id: image.product_id,
  image_file: image.image_file,
  ...urls(image, origin),
  is_thumbnail: image.is_thumbnail,
  sort_order: image.sort_order,
  description: image.description,
  date_created: formatDate(image.created, dates)
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

/** The documented 429: `X-Rate-Limit-Time-Reset-Ms` as its only quota header, and `X-Retry-After` (seconds) when given. */
const throttle = (resetMs: number, retryAfterSeconds: number | undefined): Reply =>
  errors(429, "Too many requests. Please wait before retrying.", {
    "X-Rate-Limit-Time-Reset-Ms": String(resetMs),
    ...(retryAfterSeconds === undefined ? {} : { "X-Retry-After": String(retryAfterSeconds) })
  })

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
