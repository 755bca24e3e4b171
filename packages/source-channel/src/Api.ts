/**
 * The Akinon Omnitron sales channel product-image API: wire schemas, endpoints and the mapping to
 * `ProductImage`. This module is the only place where the vendor's quirks live.
 *
 * Base: `{baseUrl}/api/v1/channel/{channelId}/product_images/` (Django REST Framework).
 * - Pagination: `page` (from 1) and `limit`; `{count, next, previous, results}`; a page past the end is
 *   404 `{"detail":"Invalid page."}`.
 * - The plain list has no image URL; the `detailed` variants do (field `image`, an assumption: the
 *   public docs do not name it, so the source lets you configure it).
 */
import { Batch, ProductImage } from "@effetl/core"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/**
 * The read modes and their endpoint paths, relative to the channel (`/api/v1/channel/{channelId}/`).
 * Every path keeps Django's trailing slash: without it the API answers a 301 (`APPEND_SLASH`).
 */
export const modePaths = {
  list: "product_images/",
  detailed: "product_images/detailed/",
  inserts: "product_images/inserts/",
  updates: "product_images/updates/",
  inserts_or_updates: "product_images/inserts_or_updates/"
} as const
export type Mode = keyof typeof modePaths

/** The path of a channel, the base every endpoint path is relative to. */
export const channelPath = (channelId: number): string => `/api/v1/channel/${channelId}`

/** The path of one image (`product_images/{id}/` or `product_images/{id}/detailed/`), relative to the channel. */
export const imagePath = (id: number, detailed: boolean): string => `product_images/${id}/${detailed ? "detailed/" : ""}`

/** One product image as the API sends it (fields per the vendor page; `image`/`alt` on detailed variants). */
export const WireImage = Schema.Struct({
  pk: Schema.Int,
  product: Schema.Int,
  source: Schema.optional(Schema.NullOr(Schema.String)),
  modified_date: Schema.optional(Schema.NullOr(Schema.String)),
  created_date: Schema.optional(Schema.NullOr(Schema.String)),
  height: Schema.optional(Schema.NullOr(Schema.Int)),
  width: Schema.optional(Schema.NullOr(Schema.Int)),
  hash: Schema.optional(Schema.NullOr(Schema.String)),
  status: Schema.optional(Schema.NullOr(Schema.String)),
  is_active: Schema.optional(Schema.NullOr(Schema.Boolean)),
  order: Schema.optional(Schema.NullOr(Schema.Int)),
  object_id: Schema.optional(Schema.NullOr(Schema.Int)),
  content_type: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Int)))
})
export type WireImage = typeof WireImage.Type

/** A DRF page. Results are decoded one by one, so one bad item is a dead letter, not a failed page. */
export const WirePage = Schema.Struct({
  count: Schema.Int,
  next: Schema.NullOr(Schema.String),
  previous: Schema.optional(Schema.NullOr(Schema.String)),
  results: Schema.Array(Schema.Unknown)
})
export type WirePage = typeof WirePage.Type

/** Where the detailed variants keep the URL and alt text (assumptions, configurable). */
export interface FieldNames {
  readonly url: string
  readonly alt: string
}

/** The outcome of mapping one wire item. */
export type Mapped = Either.Either<ProductImage, Batch.Rejection>

const decodeImage = Batch.decodeItem(WireImage, "product image")

/**
 * Maps one wire item to a `ProductImage` (built unchecked; the `validate` transform checks it).
 * `baseUrl` resolves a relative image path; anything that is not http(s) after that is kept as data
 * but never fetched (hash-content checks the scheme).
 */
export const toProductImage = (source: string, item: unknown, fields: FieldNames, baseUrl: string): Mapped => {
  const decoded = decodeImage(item)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const w = decoded.right
  const raw = item as Record<string, unknown>
  const url = urlOf(raw[fields.url], baseUrl)
  const altValue = raw[fields.alt]
  const extra: Record<string, unknown> = {
    status: w.status ?? null,
    isActive: w.is_active ?? null,
    vendorHash: w.hash ? `vendor:${w.hash}` : null,
    imageSource: w.source ?? null,
    objectId: w.object_id ?? null,
    contentType: w.content_type ?? null
  }
  return Either.right(
    ProductImage.unchecked({
      source,
      productId: String(w.product),
      imageId: String(w.pk),
      position: w.order ?? 0,
      url,
      filename: url ? fileNameOf(url) : null,
      width: w.width ?? null,
      height: w.height ?? null,
      alt: typeof altValue === "string" ? altValue : null,
      contentHash: null,
      createdAt: dateOf(w.created_date),
      updatedAt: dateOf(w.modified_date),
      extra
    })
  )
}

/** Whether an image counts as active (status `active` and `is_active` not false). */
export const isActive = (r: ProductImage): boolean => r.extra.isActive !== false && (r.extra.status ?? "active") === "active"

const urlOf = (value: unknown, baseUrl: string): string | null => {
  if (typeof value !== "string" || value.trim() === "") return null
  const v = value.trim()
  if (v.startsWith("//")) return `https:${v}`
  if (/^[a-z][a-z0-9+.-]*:/i.test(v)) return v // absolute (the scheme is checked before any fetch)
  try {
    return new URL(v, baseUrl.endsWith("/") ? baseUrl : baseUrl + "/").href
  } catch {
    return v
  }
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

const dateOf = (s: string | null | undefined): Date | null => {
  if (!s) return null
  // An unparseable date stays an Invalid Date, so `validate` sends the record to the dead-letter output
  // with the reason rather than quietly blanking the field.
  return new Date(s)
}
