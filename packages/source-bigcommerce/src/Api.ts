/**
 * The BigCommerce V2 catalog API (products and product images): wire schemas, endpoints and the
 * mapping to `ProductImage`. This module is the only place where the vendor's quirks live.
 *
 * Base: `{baseUrl}/stores/{storeHash}/v2`, auth header `X-Auth-Token`, `Accept: application/json`.
 * - `GET /products?min_id=&max_id=&min_date_modified=&include=&limit=` lists products sorted by id
 *   (default sort); `GET /products/{id}/images?page=&limit=` lists a product's images sorted by id.
 *   `limit` is at most 250 (above it the API answers **413**), default 50. A page past the end is
 *   **HTTP 204 with an empty body**: the end of the list, and the normal answer for a product with
 *   no images.
 * - `GET /products/count` (same filters) and `GET /products/images/count` are `{"count": N}`.
 * - Dates are RFC 2822 (`Mon, 24 Sep 2012 01:14:30 +0000`); some stores send ISO-8601, which is
 *   accepted too. Products carry `date_modified` (images have only `date_created`).
 * - `include=` names the product fields to return; `id`, `name`, `date_modified` and
 *   `primary_image` always come.
 * - Errors are `[{"status": 404, "message": "The requested resource was not found."}]`.
 * - Every response carries `X-Rate-Limit-Requests-Quota`, `-Requests-Left`, `-Time-Window-Ms` and
 *   `-Time-Reset-Ms` (a fixed window per store, shared by every app). A 429 carries
 *   `X-Rate-Limit-Time-Reset-Ms` (milliseconds) and may carry `X-Retry-After` (seconds).
 */
import { Batch, type Http, ProductImage } from "@effetl/core"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/** The API's default host. */
export const defaultBaseUrl = "https://api.bigcommerce.com"

/** The path of a store's V2 API, the base every endpoint path is relative to. */
export const storePath = (storeHash: string): string => `/stores/${storeHash}/v2`

/** The endpoint paths, relative to the store's V2 base. */
export const paths = {
  products: "products",
  productCount: "products/count",
  imageCount: "products/images/count",
  images: (productId: string): string => `products/${productId}/images`
} as const

/** The most results a list page may have (`limit`). */
export const maxPageSize = 250

/** The budget headers every response carries. */
export const rateHeaders = {
  quota: "X-Rate-Limit-Requests-Quota",
  left: "X-Rate-Limit-Requests-Left",
  window: "X-Rate-Limit-Time-Window-Ms",
  reset: "X-Rate-Limit-Time-Reset-Ms",
  /** Seconds to wait, sent on some 429s (the longer of it and the reset is waited). */
  retryAfter: "X-Retry-After"
} as const

/**
 * Reads the store's quota from a response's `X-Rate-Limit-*` headers: the rate limiter's budget
 * reader (a fixed window: requests left, milliseconds to the reset, quota, window length). A 429
 * carries only the reset; a header that is not a number is not read.
 */
export const readQuota: Http.RateLimit.BudgetReader = (headers) => {
  const get = (name: string): number | undefined => {
    const raw = headers[name.toLowerCase()]?.trim()
    const n = raw === undefined || raw === "" ? Number.NaN : Number(raw)
    return Number.isFinite(n) && n >= 0 ? n : undefined
  }
  const remaining = get(rateHeaders.left)
  const resetMillis = get(rateHeaders.reset)
  const quota = get(rateHeaders.quota)
  const windowMillis = get(rateHeaders.window)
  return {
    ...(remaining !== undefined ? { remaining } : {}),
    ...(resetMillis !== undefined ? { resetMillis } : {}),
    ...(quota !== undefined ? { quota } : {}),
    ...(windowMillis !== undefined ? { windowMillis } : {})
  }
}

/** The product fields a sync asks for (`include=`); the API always adds `name` and `primary_image`. */
export const productFields = "id,date_modified" as const

/** The image URL variants V2 sends, by the config's name for them. */
export const urlFields = {
  zoom: "zoom_url",
  standard: "standard_url",
  thumbnail: "thumbnail_url",
  tiny: "tiny_url"
} as const
export type ImageUrl = keyof typeof urlFields

/** A product as the list sends it: its id and `date_modified` are read (the other fields are ignored). */
export const WireProduct = Schema.Struct({
  id: Schema.Int.pipe(Schema.positive()),
  date_modified: Schema.optional(Schema.NullOr(Schema.String))
})
export type WireProduct = typeof WireProduct.Type

/** `GET /products/count` and `GET /products/images/count`. */
export const WireCount = Schema.Struct({ count: Schema.Int.pipe(Schema.nonNegative()) })

/** One product image as the API sends it (the fields of the vendor's page). */
export const WireImage = Schema.Struct({
  id: Schema.Int,
  product_id: Schema.Int,
  image_file: Schema.String,
  zoom_url: Schema.optional(Schema.NullOr(Schema.String)),
  standard_url: Schema.optional(Schema.NullOr(Schema.String)),
  thumbnail_url: Schema.optional(Schema.NullOr(Schema.String)),
  tiny_url: Schema.optional(Schema.NullOr(Schema.String)),
  is_thumbnail: Schema.Boolean,
  sort_order: Schema.Int,
  description: Schema.optional(Schema.NullOr(Schema.String)),
  date_created: Schema.String
})
export type WireImage = typeof WireImage.Type

/** The outcome of mapping one wire item. */
export type Mapped = Either.Either<ProductImage, Batch.Rejection>

const decodeImage = Batch.decodeItem(WireImage, "product image")

/**
 * Maps one wire image of product `productId` to a `ProductImage` (built unchecked; `validate`
 * checks it). An item of the wrong shape, of another product, or with a date that is neither strict
 * RFC 2822 nor ISO-8601 is a `Left` with the reason and the raw item (a dead letter).
 */
export const toProductImage = (source: string, productId: string, item: unknown, imageUrl: ImageUrl): Mapped => {
  const decoded = decodeImage(item)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const w = decoded.right
  if (String(w.product_id) !== productId) {
    return Either.left({ error: `image ${w.id} says it belongs to product ${w.product_id}, but was listed for product ${productId}`, payload: item })
  }
  const createdAt = parseDate(w.date_created)
  if (createdAt === undefined) {
    return Either.left({ error: `image ${w.id}: date_created ${JSON.stringify(w.date_created)} is not an RFC 2822 or ISO-8601 date`, payload: item })
  }
  return Either.right(
    ProductImage.unchecked({
      source,
      productId,
      imageId: String(w.id),
      position: w.sort_order,
      url: nonEmpty(w[urlFields[imageUrl]]),
      // The vendor's relative path, kept as data: never used as a path.
      filename: nonEmpty(w.image_file),
      width: null,
      height: null,
      alt: w.description ?? null,
      contentHash: null,
      createdAt,
      updatedAt: null,
      extra: {
        isThumbnail: w.is_thumbnail,
        zoomUrl: w.zoom_url ?? null,
        standardUrl: w.standard_url ?? null,
        thumbnailUrl: w.thumbnail_url ?? null,
        tinyUrl: w.tiny_url ?? null
      }
    })
  )
}

const nonEmpty = (s: string | null | undefined): string | null => (s === undefined || s === null || s.trim() === "" ? null : s)

// ---------------------------------------------------------------------------------------------
// Dates: RFC 2822 as documented, ISO-8601 as some stores send
// ---------------------------------------------------------------------------------------------

/** Parses a V2 date: strict RFC 2822 ({@link parseRfc2822}), else strict ISO-8601 ({@link parseIso8601}). */
export const parseDate = (text: string): Date | undefined => parseRfc2822(text) ?? parseIso8601(text)

const dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
const monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
const rfc2822 =
  /^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2})(?::(\d{2}))? ([+-]\d{4}|GMT|UT)$/

/**
 * Parses an RFC 2822 date-time (`Mon, 24 Sep 2012 01:14:30 +0000`) strictly to a UTC `Date`:
 * a numeric zone (or `GMT`/`UT`), a real calendar day, hours, minutes and seconds in range, and a
 * weekday, when given, that matches the date. Anything else is `undefined`.
 */
export const parseRfc2822 = (text: string): Date | undefined => {
  const m = rfc2822.exec(text.trim())
  if (m === null) return undefined
  const [, weekday, dayText, monthText, yearText, hourText, minuteText, secondText, zone] = m
  const day = Number(dayText)
  const month = monthNames.indexOf(monthText!)
  const year = Number(yearText)
  const hour = Number(hourText)
  const minute = Number(minuteText)
  const second = secondText === undefined ? 0 : Number(secondText)
  if (hour > 23 || minute > 59 || second > 59) return undefined
  let offsetMinutes = 0
  if (zone !== "GMT" && zone !== "UT") {
    const zh = Number(zone!.slice(1, 3))
    const zm = Number(zone!.slice(3, 5))
    if (zh > 23 || zm > 59) return undefined
    offsetMinutes = (zone!.startsWith("-") ? -1 : 1) * (zh * 60 + zm)
  }
  const local = Date.UTC(year, month, day, hour, minute, second)
  const calendar = new Date(Date.UTC(year, month, day))
  if (calendar.getUTCDate() !== day || calendar.getUTCMonth() !== month) return undefined
  if (weekday !== undefined && dayNames[calendar.getUTCDay()] !== weekday) return undefined
  return new Date(local - offsetMinutes * 60_000)
}

const iso8601 = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})$/i

/**
 * Parses an ISO-8601 date-time with a zone (`2012-09-24T01:14:30Z`, `2012-09-24T03:14:30+02:00`,
 * fractions of a second allowed) strictly to a UTC `Date`. A value without a zone, or with a day,
 * hour, minute or second out of range, is `undefined`.
 */
export const parseIso8601 = (text: string): Date | undefined => {
  const m = iso8601.exec(text.trim())
  if (m === null) return undefined
  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fraction, zone] = m
  const year = Number(yearText)
  const month = Number(monthText) - 1
  const day = Number(dayText)
  const hour = Number(hourText)
  const minute = Number(minuteText)
  const second = secondText === undefined ? 0 : Number(secondText)
  if (month < 0 || month > 11 || hour > 23 || minute > 59 || second > 59) return undefined
  const calendar = new Date(Date.UTC(year, month, day))
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month || calendar.getUTCDate() !== day) return undefined
  let offsetMinutes = 0
  if (zone!.toUpperCase() !== "Z") {
    const digits = zone!.slice(1).replace(":", "")
    const zh = Number(digits.slice(0, 2))
    const zm = Number(digits.slice(2, 4))
    if (zh > 23 || zm > 59) return undefined
    offsetMinutes = (zone!.startsWith("-") ? -1 : 1) * (zh * 60 + zm)
  }
  const millis = fraction === undefined ? 0 : Math.floor(Number(`0.${fraction}`) * 1000)
  return new Date(Date.UTC(year, month, day, hour, minute, second, millis) - offsetMinutes * 60_000)
}

/** Writes an instant as BigCommerce writes dates: RFC 2822 in UTC, whole seconds (`Mon, 24 Sep 2012 01:14:30 +0000`). */
export const formatRfc2822 = (date: Date): string => {
  const two = (n: number) => String(n).padStart(2, "0")
  return `${dayNames[date.getUTCDay()]}, ${two(date.getUTCDate())} ${monthNames[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
}
