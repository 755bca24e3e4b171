/**
 * A faithful fake of the Akinon Omnitron sales-channel product image API (Django REST Framework)
 * on a loopback address, for the source's tests, `npm run demo`, `effetl simulate channel` and
 * benchmarks.
 *
 * It serves a deterministic catalogue (from a seed) under `/api/v1/channel/{channelId}/product_images/`
 * with DRF's token auth, page-number pagination, django-filter filters and error bodies, serves the
 * image bytes under `/media/`, and can inject faults (5xx, 429, connection resets, truncated bodies,
 * latency) from a seeded PRNG so that failing runs are repeatable.
 *
 * The module has three parts: the public API (below), the catalogue generator, and the HTTP layer
 * (routing, pagination, filters). Serving, faults, the PRNG and the image encoders are core's
 * simulator kit (`@effetl/core/simulator`), shared by every simulator.
 */
import { createHash } from "node:crypto"
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

/** How to start a simulator: where to listen, the credentials it accepts, the catalogue and faults. */
export interface SimulatorOptions {
  /** TCP port; 0 (default) picks an ephemeral port */
  readonly port?: number
  /** default "127.0.0.1"; anything that is not a loopback address is refused */
  readonly host?: string
  /** the sales channel id in the URL; default 5 */
  readonly channelId?: number
  /** default "sim-token"; requests must send "Authorization: Token <token>" */
  readonly token?: string
  /** number of products in the catalogue; default 40 */
  readonly products?: number
  /** catalogue seed; default 7 */
  readonly seed?: number
  /** faults to inject; none by default */
  readonly faults?: FaultOptions
}

/** The product types the `product_type` filter accepts (the catalogue uses the first five). */
export const productTypes = ["simple", "pack", "bundle", "grouped", "product_meta", "offer", "miscellaneous"] as const

/** A product type accepted by the `product_type` filter. */
export type ProductType = (typeof productTypes)[number]

/** One product of the simulated catalogue, with the attributes the list filters look at. */
export interface CatalogueProduct {
  readonly id: number
  readonly product_type: ProductType
  readonly is_seller_product: boolean
  /** pks of this product's images, ascending */
  readonly images: ReadonlyArray<number>
}

/** The values of an image's `source` (the vendor's enum; the field is nullable). */
export const imageSources = ["unified", "integration", "seller_center"] as const

/** An image's `source`. */
export type ImageSource = (typeof imageSources)[number]

/** One image of the simulated catalogue: its wire fields, its bytes and their sha256. */
export interface CatalogueImage {
  readonly pk: number
  readonly product: number
  readonly order: number
  /** the vendor's enum: `unified`, `integration`, `seller_center`, or null */
  readonly source: ImageSource | null
  /** the vendor's enum: `active` or `disabled` (and `is_active` matches it) */
  readonly status: "active" | "disabled"
  readonly is_active: boolean
  /** the vendor's content hash (md5 hex of `bytes`), or null */
  readonly hash: string | null
  readonly width: number | null
  readonly height: number | null
  /** ISO-8601 with a `Z` or `+03:00` offset, exactly as served */
  readonly created_date: string
  /** ISO-8601 with a `Z` or `+03:00` offset, exactly as served */
  readonly modified_date: string
  readonly object_id: number
  readonly content_type: string
  /** served only by the `detailed` endpoints */
  readonly alt: string | null
  /** media path, `/media/products/...`; the detailed `image` field is the simulator's `url` + `path` */
  readonly path: string
  readonly bytes: Uint8Array
  /** hex sha256 of `bytes` */
  readonly sha256: string
}

/** Counters of the requests a simulator has received. */
export type RequestStats = Server.RequestStats

/** A running simulator. */
export interface ChannelSimulator {
  /** "http://127.0.0.1:<port>" (what a user puts in baseUrl) */
  readonly url: string
  readonly port: number
  readonly channelId: number
  readonly token: string
  /** every image, ordered by pk */
  readonly catalogue: ReadonlyArray<CatalogueImage>
  /** every product, ordered by id */
  readonly products: ReadonlyArray<CatalogueProduct>
  /** pks in each pending-change queue, ascending */
  readonly queues: { readonly inserts: ReadonlyArray<number>; readonly updates: ReadonlyArray<number> }
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
export const startChannelSimulator = async (options: SimulatorOptions = {}): Promise<ChannelSimulator> => {
  Server.loopbackHost(options.host ?? "127.0.0.1", "channel")
  const port = options.port ?? 0
  const channelId = options.channelId ?? 5
  const token = options.token ?? "sim-token"
  const productCount = options.products ?? 40
  const seed = options.seed ?? 7
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`Simulator port must be 0..65535, got ${port}`)
  if (!Number.isSafeInteger(channelId) || channelId < 1) throw new RangeError(`Simulator channelId must be a positive integer, got ${channelId}`)
  if (!Number.isSafeInteger(productCount) || productCount < 0) throw new RangeError(`Simulator products must be a non-negative integer, got ${productCount}`)
  if (token.length === 0 || /\s/.test(token)) throw new RangeError("Simulator token must be non-empty and contain no whitespace")

  const catalogue = generateCatalogue(productCount, seed)
  const served = await Server.serve({
    name: "channel",
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.faults !== undefined ? { faults: options.faults } : {}),
    respond: (req, origin) => respond(req, { catalogue, channelId, token, origin }),
    serverErrors,
    throttled: (fault) => throttled(fault.retryAfterSeconds)
  })

  return {
    url: served.origin,
    port: served.port,
    channelId,
    token,
    catalogue: catalogue.images,
    products: catalogue.products,
    queues: { inserts: catalogue.inserts, updates: catalogue.updates },
    requests: served.requests,
    setFaults: served.setFaults,
    hold: served.hold,
    close: served.close
  }
}

/** Effect wrapper: starts a simulator on acquire and closes it on release (start failures are defects). */
export const make = (options?: SimulatorOptions): Effect.Effect<ChannelSimulator, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startChannelSimulator(options)),
    (simulator) => Effect.promise(() => simulator.close())
  )

// ---------------------------------------------------------------------------------------------
// Catalogue generation
// ---------------------------------------------------------------------------------------------

interface Catalogue {
  readonly images: ReadonlyArray<CatalogueImage>
  readonly byPk: ReadonlyMap<number, CatalogueImage>
  readonly byMediaPath: ReadonlyMap<string, CatalogueImage>
  readonly products: ReadonlyArray<CatalogueProduct>
  readonly productsById: ReadonlyMap<number, CatalogueProduct>
  readonly inserts: ReadonlyArray<number>
  readonly updates: ReadonlyArray<number>
  readonly insertsOrUpdates: ReadonlyArray<number>
}

/** One distinct image file content; several catalogue images may share it. */
interface Content {
  readonly kind: "png" | "jpeg"
  readonly width: number
  readonly height: number
  readonly bytes: Uint8Array
  readonly sha256: string
  readonly md5: string
}

/** An image before pks and attributes are assigned. */
interface Draft {
  readonly product: number
  content: Content
  order: number
  stem: string
}

/** The product types the generated catalogue uses. */
const catalogueTypes: ReadonlyArray<ProductType> = ["simple", "pack", "bundle", "grouped", "product_meta"]

/** Alt texts that trip careless CSV, JSON and SQL writers; each is used at least once when there are enough images. */
const awkwardAlts: ReadonlyArray<string> = [
  "Sneaker \"Classic\" – side view",
  "Bag, leather, brown, 30 × 20 cm",
  "First line\nsecond line",
  "Çanta — deri, kahverengi (İstanbul)",
  "Кроссовки белые",
  "白色运动鞋，侧面",
  "حذاء رياضي أبيض",
  "👟 Sneaker 🔥 limited",
  "O'Brien's 'quoted'\ttab; semi;colon",
  "  padded with spaces  ",
  ""
]

const altColours = ["Red", "Blue", "Black", "White", "Green", "Beige", "Navy", "Grey"]
const altNouns = ["sneaker", "jacket", "bag", "dress", "watch", "scarf", "boot", "shirt"]
const altViews = ["front", "back", "side view", "detail", "on model", "packshot"]

/** Builds the deterministic catalogue for `productCount` products from `seed`. */
const generateCatalogue = (productCount: number, seed: number): Catalogue => {
  const rng = new Prng(seed)

  // Products: ids 1001.., a type each (every catalogue type appears when there are enough products).
  const typeOffset = rng.int(catalogueTypes.length)
  const productAttrs = Array.from({ length: productCount }, (_, i) => ({
    id: 1001 + i,
    product_type: i < catalogueTypes.length ? catalogueTypes[(i + typeOffset) % catalogueTypes.length]! : rng.pick(catalogueTypes),
    is_seller_product: rng.chance(0.3)
  }))
  if (productCount >= 2 && productAttrs.every((p) => p.is_seller_product === productAttrs[0]!.is_seller_product)) {
    productAttrs[productCount - 1]!.is_seller_product = !productAttrs[0]!.is_seller_product
  }

  // Image counts: 1..8, a few products with none.
  const counts = productAttrs.map(() => (rng.chance(0.12) ? 0 : 1 + rng.int(8)))
  if (productCount >= 3 && !counts.includes(0)) counts[rng.int(productCount)] = 0

  // Drafts per product: new contents, in-product duplicates, contents shared with earlier products.
  const seen = new Set<string>()
  const newContent = (): Content => {
    for (;;) {
      const content = makeContent(rng)
      if (!seen.has(content.sha256)) {
        seen.add(content.sha256)
        return content
      }
    }
  }
  const byProduct: Array<Array<Draft>> = []
  const earlier: Array<Content> = []
  productAttrs.forEach((product, i) => {
    const drafts: Array<Draft> = []
    let order = rng.pick([0, 1, 10])
    for (let j = 0; j < counts[i]!; j++) {
      if (j > 0) order = rng.chance(0.12) ? order : order + rng.pick([1, 10, 10, 20, 30])
      if (j > 0 && rng.chance(0.15)) {
        const original = rng.pick(drafts)
        drafts.push({
          product: product.id,
          content: original.content,
          order: rng.chance(0.5) ? original.order : order,
          stem: `${original.stem}_${rng.alnum(7)}`
        })
      } else if (earlier.length > 0 && rng.chance(0.08)) {
        drafts.push({ product: product.id, content: rng.pick(earlier), order, stem: rng.hex(16) })
      } else {
        drafts.push({ product: product.id, content: newContent(), order, stem: rng.hex(16) })
      }
    }
    byProduct.push(drafts)
    for (const draft of drafts) earlier.push(draft.content)
  })
  ensureAwkwardShapes(byProduct)

  // Pks: shuffle every draft so that one product's images spread over many list pages.
  const drafts = rng.shuffle(byProduct.flat())

  const images: Array<CatalogueImage> = []
  const paths = new Set<string>()
  const base = Date.UTC(2023, 0, 1)
  drafts.forEach((draft, index) => {
    const pk = index + 1
    const created = base + rng.int(540 * 86_400) * 1000
    const modified = rng.chance(0.2) ? created : created + rng.int(120 * 86_400) * 1000
    const createdMicros = rng.chance(0.1) ? 0 : rng.int(1_000_000)
    const modifiedMicros = modified === created ? createdMicros : rng.chance(0.1) ? 0 : rng.int(1_000_000)
    const createdDate = isoDate(created, createdMicros, rng.chance(0.5))
    const modifiedDate = isoDate(modified, modifiedMicros, rng.chance(0.5))
    const day = new Date(created).toISOString().slice(0, 10).replaceAll("-", "/")
    let path = `/media/products/${day}/${draft.stem}.${draft.content.kind === "png" ? "png" : "jpg"}`
    if (paths.has(path)) path = path.replace(/(\.\w+)$/, `_${pk}$1`)
    paths.add(path)
    const active = !rng.chance(0.15)
    const sized = !rng.chance(0.08)
    images.push({
      pk,
      product: draft.product,
      order: draft.order,
      // Every value of the enum, by pk (so the rest of the catalogue stays as the seed made it).
      source: rng.chance(0.2) ? null : imageSources[pk % imageSources.length]!,
      status: active ? "active" : "disabled",
      is_active: active,
      hash: rng.chance(0.06) ? null : draft.content.md5,
      width: sized ? draft.content.width : null,
      height: sized ? draft.content.height : null,
      created_date: createdDate,
      modified_date: modifiedDate,
      object_id: draft.product,
      content_type: "product",
      alt: rng.chance(0.25) ? null : `${rng.pick(altColours)} ${rng.pick(altNouns)}, ${rng.pick(altViews)}`,
      path,
      bytes: draft.content.bytes,
      sha256: draft.content.sha256
    })
  })
  ensureVariety(images, rng)

  const inserts = images.filter(() => rng.chance(0.15)).map((image) => image.pk)
  const updates = images.filter(() => rng.chance(0.2)).map((image) => image.pk)
  if (images.length >= 3) {
    if (inserts.length === 0) inserts.push(images[0]!.pk)
    if (updates.length === 0) updates.push(images[images.length - 1]!.pk)
    if (!inserts.some((pk) => updates.includes(pk))) {
      updates.push(inserts[0]!)
      updates.sort((a, b) => a - b)
    }
  }
  const insertsOrUpdates = [...new Set([...inserts, ...updates])].sort((a, b) => a - b)

  const pksByProduct = new Map<number, Array<number>>()
  for (const image of images) pksByProduct.set(image.product, [...(pksByProduct.get(image.product) ?? []), image.pk])
  const products: Array<CatalogueProduct> = productAttrs.map((product) => ({ ...product, images: pksByProduct.get(product.id) ?? [] }))
  return {
    images,
    byPk: new Map(images.map((image) => [image.pk, image])),
    byMediaPath: new Map(images.map((image) => [image.path, image])),
    products,
    productsById: new Map(products.map((product) => [product.id, product])),
    inserts,
    updates,
    insertsOrUpdates
  }
}

/** Makes sure the catalogue has an in-product duplicate, bytes shared across products, and an order tie. */
const ensureAwkwardShapes = (byProduct: Array<Array<Draft>>): void => {
  const withImages = byProduct.filter((drafts) => drafts.length > 0)
  const multi = byProduct.filter((drafts) => drafts.length >= 2)
  const hasDuplicate = multi.some((drafts) => new Set(drafts.map((d) => d.content)).size < drafts.length)
  if (!hasDuplicate && multi.length > 0) {
    const drafts = multi[0]!
    const last = drafts[drafts.length - 1]!
    last.content = drafts[0]!.content
    last.stem = `${drafts[0]!.stem}_dup0001`
  }
  const owners = new Map<Content, Set<number>>()
  for (const draft of byProduct.flat()) owners.set(draft.content, (owners.get(draft.content) ?? new Set()).add(draft.product))
  const shared = [...owners.values()].some((set) => set.size > 1)
  if (!shared && withImages.length >= 2) {
    const target = withImages[withImages.length - 1]!
    target[target.length - 1]!.content = withImages[0]![0]!.content
  }
  const hasTie = multi.some((drafts) => new Set(drafts.map((d) => d.order)).size < drafts.length)
  if (!hasTie && multi.length > 0) {
    const drafts = multi[multi.length - 1]!
    drafts[1]!.order = drafts[0]!.order
  }
}

/** Makes sure there are disabled images, null hashes, null sizes and every awkward alt (when there are enough images). */
const ensureVariety = (images: Array<CatalogueImage>, rng: Prng): void => {
  if (images.length < awkwardAlts.length + 4) return
  const patch = (index: number, change: Partial<CatalogueImage>): void => {
    images[index] = { ...images[index]!, ...change }
  }
  const slots = rng.shuffle(images.map((_, i) => i))
  awkwardAlts.forEach((alt, i) => patch(slots[i]!, { alt }))
  if (images.every((image) => image.is_active)) patch(slots[awkwardAlts.length]!, { is_active: false, status: "disabled" })
  if (images.every((image) => image.is_active === false)) patch(slots[awkwardAlts.length]!, { is_active: true, status: "active" })
  if (images.every((image) => image.hash !== null)) patch(slots[awkwardAlts.length + 1]!, { hash: null })
  if (images.every((image) => image.width !== null)) patch(slots[awkwardAlts.length + 2]!, { width: null, height: null })
  if (images.every((image) => image.alt !== null)) patch(slots[awkwardAlts.length + 3]!, { alt: null })
}

/** Formats a UTC instant the way DRF renders a datetime: microseconds when non-zero, `Z` or the `+03:00` local time. */
const isoDate = (utcMs: number, micros: number, istanbul: boolean): string => {
  const local = new Date(utcMs + (istanbul ? 3 * 3_600_000 : 0)).toISOString().slice(0, 19)
  const fraction = micros === 0 ? "" : `.${String(micros).padStart(6, "0")}`
  return `${local}${fraction}${istanbul ? "+03:00" : "Z"}`
}

/** Makes one new image file: mostly a small two-colour PNG, sometimes a solid-colour JPEG. */
const makeContent = (rng: Prng): Content => {
  const image = Images.randomImage(rng)
  return withHashes(image.kind, image.width, image.height, image.bytes)
}

const withHashes = (kind: Content["kind"], width: number, height: number, bytes: Uint8Array): Content => ({
  kind,
  width,
  height,
  bytes,
  sha256: createHash("sha256").update(bytes).digest("hex"),
  md5: createHash("md5").update(bytes).digest("hex")
})

// ---------------------------------------------------------------------------------------------
// HTTP: routing, auth, pagination and filters
// ---------------------------------------------------------------------------------------------

/** A complete HTTP answer, built before it is sent (so faults can delay or cut it). */
type Reply = Server.Reply

interface Context {
  readonly catalogue: Catalogue
  readonly channelId: number
  readonly token: string
  /** the simulator's own origin, for the media URLs in detailed records */
  readonly origin: string
}

type Route =
  | { readonly kind: "list"; readonly detailed: boolean; readonly queue: "inserts" | "updates" | "inserts_or_updates" | undefined }
  | { readonly kind: "detail"; readonly detailed: boolean; readonly id: string }

const apiPath = /^\/api\/v1\/channel\/(\d+)\/product_images\/(.*)$/
const allowedMethods = "GET, HEAD, OPTIONS"
const maxPageSize = 1000
const defaultPageSize = 10
const validHost = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

/** Answers one request (no faults): the API under `/api/v1/`, media under `/media/`, 404 elsewhere. */
const respond = (req: http.IncomingMessage, ctx: Context): Reply => {
  const target = req.url ?? "/"
  const queryAt = target.indexOf("?")
  const rawPath = queryAt === -1 ? target : target.slice(0, queryAt)
  const rawQuery = queryAt === -1 ? "" : target.slice(queryAt + 1)
  const path = safeDecode(rawPath)
  if (path === undefined) return json(400, { detail: "Malformed request path." })

  if (path.startsWith("/media/")) return media(req, ctx, path)

  const hostHeader = req.headers.host
  if (hostHeader !== undefined && !validHost.test(hostHeader)) return html(400, "<h1>Bad Request (400)</h1>")
  const host = hostHeader ?? ctx.origin.replace(/^http:\/\//, "")

  const match = apiPath.exec(path) ?? (path.endsWith("/") ? null : apiPath.exec(`${path}/`))
  const route = match === null ? undefined : parseRoute(match[2]!)
  if (match === null || route === undefined) return json(404, { detail: "Not found." })
  // Django's APPEND_SLASH: a GET without the trailing slash is redirected to the URL with it.
  if (!path.endsWith("/")) {
    return { status: 301, headers: { Location: `${rawPath}/${queryAt === -1 ? "" : `?${rawQuery}`}` }, body: new Uint8Array(0) }
  }

  const denied = authenticate(req.headers.authorization, ctx.token)
  if (denied !== undefined) return denied
  const method = req.method ?? "GET"
  if (method === "OPTIONS") return json(200, { name: "Product Image", description: "", renders: ["application/json"], parses: ["application/json"] })
  if (method !== "GET" && method !== "HEAD") return json(405, { detail: `Method "${method}" not allowed.` })
  if (Number(match[1]) !== ctx.channelId) return json(404, { detail: "Not found." })

  const query = new URLSearchParams(rawQuery)
  const filtered = applyFilters(ctx.catalogue, query)
  if ("errors" in filtered) return json(400, filtered.errors)

  if (route.kind === "detail") {
    const id = /^[+-]?\d+$/.test(route.id) ? Number(route.id) : Number.NaN
    const image = ctx.catalogue.byPk.get(id)
    // Like DRF's get_object, the lookup runs on the filtered queryset.
    const visible = image !== undefined && (filtered.images === ctx.catalogue.images || filtered.images.includes(image))
    if (!visible) return json(404, { detail: "Not found." })
    return json(200, route.detailed ? detailedRecord(image, ctx.origin) : plainRecord(image))
  }

  const scope = route.queue === undefined ? filtered.images : inQueue(filtered.images, ctx.catalogue, route.queue)
  return paginate(scope, query, `http://${host}${rawPath}`, rawQuery, (image) =>
    route.detailed ? detailedRecord(image, ctx.origin) : plainRecord(image)
  )
}

/** Maps the part of the path after `product_images/` to a route, or undefined for no route. */
const parseRoute = (rest: string): Route | undefined => {
  if (rest === "") return { kind: "list", detailed: false, queue: undefined }
  if (rest === "detailed/") return { kind: "list", detailed: true, queue: undefined }
  if (rest === "inserts/") return { kind: "list", detailed: false, queue: "inserts" }
  if (rest === "updates/") return { kind: "list", detailed: false, queue: "updates" }
  if (rest === "inserts_or_updates/") return { kind: "list", detailed: false, queue: "inserts_or_updates" }
  // DRF router lookups match `[^/.]+`; a non-numeric id then 404s at the lookup.
  const detail = /^([^/.]+)\/(detailed\/)?$/.exec(rest)
  if (detail !== null) return { kind: "detail", detailed: detail[2] !== undefined, id: detail[1]! }
  return undefined
}

/** DRF TokenAuthentication: undefined when the header carries the right token, else the 401 reply. */
const authenticate = (header: string | undefined, token: string): Reply | undefined => {
  const parts = (header ?? "").split(/\s+/).filter((part) => part.length > 0)
  const deny = (detail: string): Reply => json(401, { detail }, { "WWW-Authenticate": "Token" })
  if (parts.length === 0 || parts[0]!.toLowerCase() !== "token") return deny("Authentication credentials were not provided.")
  if (parts.length === 1) return deny("Invalid token header. No credentials provided.")
  if (parts.length > 2) return deny("Invalid token header. Token string should not contain spaces.")
  if (parts[1] !== token) return deny("Invalid token.")
  return undefined
}

/** Serves `/media/...` bytes; media is public, like a CDN. */
const media = (req: http.IncomingMessage, ctx: Context, path: string): Reply => {
  const method = req.method ?? "GET"
  if (method !== "GET" && method !== "HEAD") return html(405, nginxPage("405 Not Allowed"))
  const image = ctx.catalogue.byMediaPath.get(path)
  if (image === undefined) return html(404, nginxPage("404 Not Found"))
  return {
    status: 200,
    headers: {
      "Content-Type": path.endsWith(".png") ? "image/png" : "image/jpeg",
      ETag: `"${image.sha256.slice(0, 32)}"`,
      "Cache-Control": "public, max-age=31536000"
    },
    body: image.bytes
  }
}

/** The plain record: exactly the fields of the vendor's schema. */
const plainRecord = (image: CatalogueImage) => ({
  pk: image.pk,
  product: image.product,
  source: image.source,
  modified_date: image.modified_date,
  created_date: image.created_date,
  height: image.height,
  width: image.width,
  hash: image.hash,
  status: image.status,
  is_active: image.is_active,
  order: image.order,
  object_id: image.object_id,
  content_type: image.content_type
})

/** The detailed record: the plain fields plus `image` (absolute media URL) and `alt`. */
const detailedRecord = (image: CatalogueImage, origin: string) => ({
  ...plainRecord(image),
  image: `${origin}${image.path}`,
  alt: image.alt
})

/** Keeps the images that are in the given pending-change queue. */
const inQueue = (
  images: ReadonlyArray<CatalogueImage>,
  catalogue: Catalogue,
  queue: "inserts" | "updates" | "inserts_or_updates"
): ReadonlyArray<CatalogueImage> => {
  const pks = new Set(queue === "inserts" ? catalogue.inserts : queue === "updates" ? catalogue.updates : catalogue.insertsOrUpdates)
  return images.filter((image) => pks.has(image.pk))
}

/** django-filter semantics: the last value of a parameter wins, an empty value means no filter. */
const lastValue = (query: URLSearchParams, name: string): string | undefined => {
  const values = query.getAll(name)
  const value = values[values.length - 1]
  return value === undefined || value.trim() === "" ? undefined : value
}

/** Applies the list filters (ordered by pk), or returns DRF's 400 body for invalid values. */
const applyFilters = (
  catalogue: Catalogue,
  query: URLSearchParams
): { readonly images: ReadonlyArray<CatalogueImage> } | { readonly errors: Record<string, Array<string>> } => {
  const errors: Record<string, Array<string>> = {}
  const integers = (name: string, csv: boolean): ReadonlySet<number> | undefined => {
    const value = lastValue(query, name)
    if (value === undefined) return undefined
    const items = csv ? value.split(",") : [value]
    if (!items.every((item) => /^\s*[+-]?\d+\s*$/.test(item))) {
      errors[name] = ["Enter a whole number."]
      return undefined
    }
    return new Set(items.map(Number))
  }
  const product = integers("product", false)
  const productIn = integers("product__pk__in", true)
  const idIn = integers("id__in", true)

  // BooleanWidget: "true"/"1" and "false"/"0" in any case; anything else leaves the filter unset.
  const sellerRaw = lastValue(query, "is_seller_product")?.trim().toLowerCase()
  const seller = sellerRaw === "true" || sellerRaw === "1" ? true : sellerRaw === "false" || sellerRaw === "0" ? false : undefined

  const types = query
    .getAll("product_type")
    .flatMap((value) => value.split(","))
    .map((value) => value.trim())
    .filter((value) => value.length > 0)
  const unknownType = types.find((value) => !(productTypes as ReadonlyArray<string>).includes(value))
  if (unknownType !== undefined) errors.product_type = [`Select a valid choice. ${unknownType} is not one of the available choices.`]

  if (Object.keys(errors).length > 0) return { errors }
  const typeSet = types.length === 0 ? undefined : new Set(types)
  if (product === undefined && productIn === undefined && idIn === undefined && seller === undefined && typeSet === undefined) {
    return { images: catalogue.images }
  }
  return {
    images: catalogue.images.filter((image) => {
      const owner = catalogue.productsById.get(image.product)!
      return (
        (product === undefined || product.has(image.product)) &&
        (productIn === undefined || productIn.has(image.product)) &&
        (idIn === undefined || idIn.has(image.pk)) &&
        (seller === undefined || owner.is_seller_product === seller) &&
        (typeSet === undefined || typeSet.has(owner.product_type))
      )
    })
  }
}

/** DRF PageNumberPagination with `limit` as the page size parameter (default 10, at most 1000). */
const paginate = (
  items: ReadonlyArray<CatalogueImage>,
  query: URLSearchParams,
  absolutePath: string,
  rawQuery: string,
  render: (image: CatalogueImage) => unknown
): Reply => {
  const limitRaw = query.getAll("limit").at(-1)
  const limitValue = limitRaw !== undefined && /^\s*\+?\d+\s*$/.test(limitRaw) ? Number(limitRaw) : 0
  const limit = limitValue > 0 ? Math.min(limitValue, maxPageSize) : defaultPageSize
  const pages = items.length === 0 ? 1 : Math.ceil(items.length / limit)

  const pageRaw = query.getAll("page").at(-1)
  const page = pageRaw === undefined ? 1 : pageRaw === "last" ? pages : /^\s*[+-]?\d+\s*$/.test(pageRaw) ? Number(pageRaw) : Number.NaN
  if (!(page >= 1 && page <= pages)) return json(404, { detail: "Invalid page." })

  const pairs = [...new URLSearchParams(rawQuery)]
  const link = (n: number | undefined): string => {
    const kept = pairs.filter(([key]) => key !== "page")
    if (n !== undefined) kept.push(["page", String(n)])
    const query = pythonUrlencode(kept)
    return query === "" ? absolutePath : `${absolutePath}?${query}`
  }
  return json(200, {
    count: items.length,
    next: page < pages ? link(page + 1) : null,
    previous: page > 1 ? link(page === 2 ? undefined : page - 1) : null,
    results: items.slice((page - 1) * limit, page * limit).map(render)
  })
}

/** Python's `urlencode(sorted(parse_qs(q).items()), doseq=True)`, as DRF's `replace_query_param` does. */
const pythonUrlencode = (pairs: ReadonlyArray<readonly [string, string]>): string => {
  const grouped = new Map<string, Array<string>>()
  for (const [key, value] of pairs) grouped.set(key, [...(grouped.get(key) ?? []), value])
  const quote = (s: string): string =>
    encodeURIComponent(s)
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
      .replace(/%20/g, "+")
  return [...grouped.keys()]
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap((key) => grouped.get(key)!.map((value) => `${quote(key)}=${quote(value)}`))
    .join("&")
}

const safeDecode = (path: string): string | undefined => {
  try {
    return decodeURIComponent(path)
  } catch {
    return undefined
  }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { "Content-Type": "application/json", Vary: "Accept", Allow: allowedMethods, ...headers },
  body: Buffer.from(JSON.stringify(body), "utf8")
})

const html = (status: number, body: string): Reply => ({
  status,
  headers: { "Content-Type": "text/html; charset=utf-8" },
  body: Buffer.from(body, "utf8")
})

const nginxPage = Server.nginxPage

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/** The 5xx answers a Django app behind nginx gives: Django's and DRF's 500, nginx's 502, a JSON 503. */
const serverErrors: ReadonlyArray<Reply> = [
  html(500, "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"),
  json(500, { detail: "A server error occurred." }),
  html(502, nginxPage("502 Bad Gateway")),
  json(503, { detail: "Service temporarily unavailable, try again later." })
]

/** DRF's Throttled answer, with Retry-After. */
const throttled = (seconds: number): Reply =>
  json(
    429,
    { detail: `Request was throttled. Expected available in ${seconds} second${seconds === 1 ? "" : "s"}.` },
    { "Retry-After": String(seconds) }
  )
