/**
 * The Shoplazza OpenAPI (version 2022-01): wire schemas, endpoints and the mapping to
 * `ProductImage`. This module is the only place where the vendor's quirks live.
 *
 * Base: `https://{shop}.myshoplaza.com/openapi/{version}`, auth header `access-token: <token>`,
 * a `Request-Id` header on every response. From the published 2022-01 OpenAPI:
 * - `GET products?per_page=&cursor=&fields=&updated_at_min=`: `{cursor, pre_cursor, products}`,
 *   every product carrying its `images[]` (no `has_more`; `per_page` defaults to 1);
 * - `GET products/count` (the same filters): `{count}`;
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

/** The product count (same filters as the list), relative to the version path. */
export const productsCountPath = "products/count"

/** The images of one product, relative to the version path. */
export const imagesPath = (productId: string): string => `products/${encodeURIComponent(productId)}/images`

/** The largest `per_page` the source sends (an assumption: the OpenAPI documents the default, 1, and no maximum). */
export const maxPerPage = 250

/** The product fields a sync needs from the list (`fields=`): the id, the incremental cursor and the images. */
export const listFields = "id,updated_at,images"

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether a string is a UUID (the form of every Shoplazza product and image id). */
export const isUuid = (s: string): boolean => uuidPattern.test(s)

/**
 * A page of the product list. Products are decoded one by one ({@link WireListedProduct}); `has_more`
 * is not in 2022-01 but newer versions send it, and `false` ends the list.
 */
export const WireProductsPage = Schema.Struct({
  cursor: Schema.optional(Schema.NullOr(Schema.String)),
  pre_cursor: Schema.optional(Schema.NullOr(Schema.String)),
  products: Schema.Array(Schema.Unknown),
  has_more: Schema.optional(Schema.NullOr(Schema.Boolean))
})
export type WireProductsPage = typeof WireProductsPage.Type

/**
 * One product of the list, as far as the sync reads it: its id, `updated_at` (the incremental cursor)
 * and its images. A product listed without an `images` key (a shop or version that leaves them out)
 * has its images asked for on their own.
 */
export const WireListedProduct = Schema.Struct({
  id: Schema.String,
  updated_at: Schema.optional(Schema.NullOr(Schema.String)),
  images: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown)))
})
export type WireListedProduct = typeof WireListedProduct.Type

/** `GET products/count`. */
export const WireCount = Schema.Struct({ count: Schema.Int.pipe(Schema.nonNegative()) })

/** The images of a product. Images are decoded one by one, so one bad image is a dead letter, not a failed product. */
export const WireImages = Schema.Struct({ images: Schema.Array(Schema.Unknown) })
export type WireImages = typeof WireImages.Type

/**
 * One product image as the API sends it (fields per the vendor's "Get Product Image List" page).
 * `product_id` is optional: the API reference's image-properties example leaves it out, and the
 * product is known from where the image was read.
 */
export const WireImage = Schema.Struct({
  id: Schema.String,
  product_id: Schema.optional(Schema.NullOr(Schema.String)),
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

/** Decodes one entry of the product list; an entry without a string `id` is a `Left` with the reason. */
export const decodeListedProduct = Batch.decodeItem(WireListedProduct, "product")

/**
 * Maps one wire image of product `productId` to a `ProductImage` (built unchecked; the `validate`
 * transform checks it). An image without `product_id` belongs to `productId`; one that names another
 * product is a `Left` (a batch holds whole products only). `alt` is kept exactly as sent (the API's
 * "no alt text" is `""`, and stays `""`); it is null only when the field is missing or null.
 */
export const toProductImage = (source: string, productId: string, item: unknown, scheme: Scheme): Mapped => {
  const decoded = decodeImage(item)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const w = decoded.right
  if (w.product_id !== undefined && w.product_id !== null && w.product_id !== productId) {
    return Either.left({ error: `image ${w.id} says it belongs to product ${w.product_id}`, payload: item })
  }
  const url = urlOf(w.src, scheme)
  return Either.right(
    ProductImage.unchecked({
      source,
      productId,
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

/** The instant of an ISO-8601 `updated_at` in epoch milliseconds, or undefined when it is missing or not a date. */
export const instantOf = (s: string | null | undefined): number | undefined => {
  if (s === null || s === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(s)) return undefined
  const ms = Date.parse(s)
  return Number.isFinite(ms) ? ms : undefined
}

/** An `updated_at_min` value: the instant, rounded down to the second, as `2024-04-08T07:13:27Z`. */
export const filterTime = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, "Z")

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
