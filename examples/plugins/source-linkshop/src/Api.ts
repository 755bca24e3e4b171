/**
 * The LinkShop API (a made-up store API, the worked example of docs/guide/write-a-source.md): wire
 * schemas, endpoints, the rate-limit headers and the mapping to `ProductImage`. This module is the
 * only place where the vendor's quirks live.
 *
 * - Base `{baseUrl}/api/v1`, auth `Authorization: Bearer <token>`.
 * - `GET /products?per_page=&updated_since=` lists products by `updated_at`, then `id`, each with its
 *   images inline. The next page is in an RFC 8288 `Link: <...>; rel="next"` header; the total is in
 *   `X-Total-Count`.
 * - A fixed window per token: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, and `X-RateLimit-Reset`
 *   (the window's end, in epoch seconds). Over the limit: 429 with `Retry-After` (seconds).
 */
import { Batch, type Http, ProductImage } from "@effetl/core"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/** The API's path under the base URL. */
export const apiPath = "/api/v1"

/** The endpoints, relative to `{baseUrl}/api/v1`. */
export const paths = { products: "products" } as const

/** The largest page the API serves. */
export const maxPageSize = 250

/** One image, as the API sends it. */
export const WireImage = Schema.Struct({
  id: Schema.Number,
  src: Schema.String,
  position: Schema.Number,
  width: Schema.NullOr(Schema.Number),
  height: Schema.NullOr(Schema.Number),
  alt: Schema.NullOr(Schema.String)
})
export type WireImage = typeof WireImage.Type

/** One product, as the API sends it: its images inline. */
export const WireProduct = Schema.Struct({
  id: Schema.Number,
  updated_at: Schema.DateTimeUtc,
  images: Schema.Array(WireImage)
})
export type WireProduct = typeof WireProduct.Type

/**
 * A page of the product list: an array whose items are decoded one by one (a bad product becomes a
 * dead letter, not a failed run).
 */
export const WirePage = Schema.Array(Schema.Unknown)

/** The rate-limit headers. */
export const rateHeaders = {
  limit: "X-RateLimit-Limit",
  remaining: "X-RateLimit-Remaining",
  /** The window's end, in epoch seconds. */
  reset: "X-RateLimit-Reset"
} as const

/**
 * The rate limiter's budget reader: the window's quota, what is left, and the time to its end (the
 * API sends the end as epoch seconds; the limiter wants milliseconds from now).
 */
export const readBudget = (now: () => number = Date.now): Http.RateLimit.BudgetReader => (headers) => {
  const get = (name: string): number | undefined => {
    const n = Number(headers[name.toLowerCase()] ?? Number.NaN)
    return Number.isFinite(n) && n >= 0 ? n : undefined
  }
  const quota = get(rateHeaders.limit)
  const remaining = get(rateHeaders.remaining)
  const reset = get(rateHeaders.reset)
  return {
    ...(quota !== undefined ? { quota } : {}),
    ...(remaining !== undefined ? { remaining } : {}),
    ...(reset !== undefined ? { resetMillis: Math.max(0, reset * 1000 - now()) } : {})
  }
}

/** Decodes one product (core's `Batch.decodeItem`: a mismatch is a `Rejection`, with the raw item). */
const decodeProduct = Batch.decodeItem(WireProduct, "product")

/** One product of a page as its images' records, or why it cannot be used (a dead letter). */
export const toProductImages = (source: string, raw: unknown): Either.Either<ReadonlyArray<ProductImage>, Batch.Rejection> =>
  Either.map(decodeProduct(raw), (product) =>
    product.images.map((image) =>
      ProductImage.unchecked({
        source,
        productId: String(product.id),
        imageId: String(image.id),
        position: Math.trunc(image.position),
        url: image.src,
        filename: null,
        width: image.width,
        height: image.height,
        alt: image.alt,
        contentHash: null,
        createdAt: null,
        updatedAt: new Date(product.updated_at.epochMillis),
        extra: {}
      })
    ))
