/**
 * The BigCommerce V2 catalog API (products and product images): wire schemas, endpoints and the
 * mapping to `ProductImage`. This module is the only place where the vendor's quirks live.
 *
 * Base: `{baseUrl}/stores/{storeHash}/v2`, auth header `X-Auth-Token`, `Accept: application/json`.
 * - `GET /products?page=&limit=` and `GET /products/{id}/images?page=&limit=` (limit at most 250,
 *   default 50; images sorted by id). A page past the end is **HTTP 204 with an empty body**: the
 *   end of the list, and the normal answer for a product with no images.
 * - `GET /products/images/count` is `{"count": N}`.
 * - `date_created` is RFC 2822 (`Mon, 24 Sep 2012 01:14:30 +0000`); V2 has no modified date.
 * - Errors are `[{"status": 404, "message": "The requested resource was not found."}]`.
 * - Every response carries `X-Rate-Limit-Requests-Quota`, `-Requests-Left`, `-Time-Window-Ms` and
 *   `-Time-Reset-Ms` (a fixed window per store, shared by every app).
 */
import { Batch, ProductImage } from "@effetl/core"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/** The API's default host. */
export const defaultBaseUrl = "https://api.bigcommerce.com"

/** The path of a store's V2 API, the base every endpoint path is relative to. */
export const storePath = (storeHash: string): string => `/stores/${storeHash}/v2`

/** The endpoint paths, relative to the store's V2 base. */
export const paths = {
  products: "products",
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
  reset: "X-Rate-Limit-Time-Reset-Ms"
} as const

/** The image URL variants V2 sends, by the config's name for them. */
export const urlFields = {
  zoom: "zoom_url",
  standard: "standard_url",
  thumbnail: "thumbnail_url",
  tiny: "tiny_url"
} as const
export type ImageUrl = keyof typeof urlFields

/** A product as the list sends it: only its id is read (the other fields are ignored). */
export const WireProduct = Schema.Struct({ id: Schema.Int.pipe(Schema.positive()) })
export type WireProduct = typeof WireProduct.Type

/** `GET /products/images/count`. */
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
 * checks it). An item of the wrong shape, of another product, or with a date that is not strict
 * RFC 2822 is a `Left` with the reason and the raw item (a dead letter).
 */
export const toProductImage = (source: string, productId: string, item: unknown, imageUrl: ImageUrl): Mapped => {
  const decoded = decodeImage(item)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const w = decoded.right
  if (String(w.product_id) !== productId) {
    return Either.left({ error: `image ${w.id} says it belongs to product ${w.product_id}, but was listed for product ${productId}`, payload: item })
  }
  const createdAt = parseRfc2822(w.date_created)
  if (createdAt === undefined) {
    return Either.left({ error: `image ${w.id}: date_created ${JSON.stringify(w.date_created)} is not an RFC 2822 date`, payload: item })
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
// RFC 2822 dates
// ---------------------------------------------------------------------------------------------

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
