/**
 * The Shoplazza OpenAPI (version 2022-01): wire schemas, endpoints and the mapping to
 * `ProductImage`. This module is the only place where the vendor's quirks live.
 *
 * Base: `https://{shop}.myshoplaza.com/openapi/{version}`, auth header `access-token: <token>`,
 * a `Request-Id` header on every response.
 * - `GET products?limit=&cursor=`: `{products:[{id, ...}], cursor, has_more}` (cursor pagination
 *   since 2022-01; the envelope's field names other than `cursor`/`has_more` are an assumption,
 *   see the README).
 * - `GET products/{product_id}/images`: `{images:[...]}`; 422 `{"errors":["Record not found"]}` for a
 *   product that does not exist (or no longer does).
 * - Image `src` is protocol-relative (`//cdn.shoplazza.com/...`).
 */
import { Batch, ProductImage } from "@effetl/core"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/** The API version the wire schemas describe (and the default of the `version` option). */
export const defaultVersion = "2022-01"

/** The path of an API version, the base every endpoint path is relative to. */
export const versionPath = (version: string): string => `/openapi/${version}`

/** The origin of a shop: `https://{shop}.myshoplaza.com`. */
export const shopOrigin = (shop: string): string => `https://${shop}.myshoplaza.com`

/** The product list, relative to the version path. */
export const productsPath = "products"

/** The images of one product, relative to the version path. */
export const imagesPath = (productId: string): string => `products/${encodeURIComponent(productId)}/images`

/** The largest page of the product list (an assumption: Shopify-style APIs cap `limit` at 250). */
export const maxLimit = 250

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether a string is a UUID (the form of every Shoplazza product and image id). */
export const isUuid = (s: string): boolean => uuidPattern.test(s)

/** One product of the list: only its `id` is used (other fields are ignored). */
export const WireProduct = Schema.Struct({ id: Schema.String })

/** A page of the product list. */
export const WireProductsPage = Schema.Struct({
  products: Schema.Array(WireProduct),
  cursor: Schema.optional(Schema.NullOr(Schema.String)),
  has_more: Schema.Boolean
})
export type WireProductsPage = typeof WireProductsPage.Type

/** The images of a product. Images are decoded one by one, so one bad image is a dead letter, not a failed product. */
export const WireImages = Schema.Struct({ images: Schema.Array(Schema.Unknown) })
export type WireImages = typeof WireImages.Type

/** One product image as the API sends it (fields per the vendor's "Get Product Image List" page). */
export const WireImage = Schema.Struct({
  id: Schema.String,
  product_id: Schema.String,
  position: Schema.optional(Schema.NullOr(Schema.Int)),
  src: Schema.optional(Schema.NullOr(Schema.String)),
  width: Schema.optional(Schema.NullOr(Schema.Int)),
  height: Schema.optional(Schema.NullOr(Schema.Int)),
  alt: Schema.optional(Schema.NullOr(Schema.String)),
  created_at: Schema.optional(Schema.NullOr(Schema.String)),
  updated_at: Schema.optional(Schema.NullOr(Schema.String))
})
export type WireImage = typeof WireImage.Type

/** The scheme a protocol-relative `src` (`//host/path`) gets. */
export type Scheme = "https" | "http"

/** The outcome of mapping one wire image. */
export type Mapped = Either.Either<ProductImage, Batch.Rejection>

const decodeImage = Batch.decodeItem(WireImage, "product image")

/**
 * Maps one wire image to a `ProductImage` (built unchecked; the `validate` transform checks it).
 * `alt` is kept exactly as sent (the API's "no alt text" is `""`, and stays `""`); it is null only
 * when the field is missing or null.
 */
export const toProductImage = (source: string, item: unknown, scheme: Scheme): Mapped => {
  const decoded = decodeImage(item)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const w = decoded.right
  const url = urlOf(w.src, scheme)
  return Either.right(
    ProductImage.unchecked({
      source,
      productId: w.product_id,
      imageId: w.id,
      position: w.position ?? 0,
      url,
      filename: url === null ? null : fileNameOf(url),
      width: w.width ?? null,
      height: w.height ?? null,
      alt: w.alt ?? null,
      contentHash: null,
      createdAt: dateOf(w.created_at),
      updatedAt: dateOf(w.updated_at),
      extra: {}
    })
  )
}

/** The image URL: a protocol-relative `//host/path` gets `scheme:`; anything else is kept as sent (null when empty). */
export const urlOf = (src: string | null | undefined, scheme: Scheme): string | null => {
  if (src === null || src === undefined || src.trim() === "") return null
  const v = src.trim()
  return v.startsWith("//") ? `${scheme}:${v}` : v
}

/** The last path segment of a URL, decoded: data only, never used as a path. */
const fileNameOf = (url: string): string | null => {
  try {
    const seg = new URL(url).pathname.split("/").filter((s) => s.length > 0).pop()
    return seg ? decodeURIComponent(seg) : null
  } catch {
    return null
  }
}

/**
 * An ISO-8601 timestamp as a UTC instant. An unparseable one stays an Invalid Date, so `validate`
 * sends the record to the dead-letter output with the reason rather than quietly blanking it.
 */
const dateOf = (s: string | null | undefined): Date | null => (s === null || s === undefined || s === "" ? null : new Date(s))
