/**
 * The __plugin__ API: its wire schemas, its endpoint and the mapping to `ProductImage`. This module
 * is the only place where the vendor's quirks live.
 *
 * (Made by `effetl new source`: an example API, served by ./Simulator.ts. Replace it with your
 * vendor's, keeping the shape: wire schemas here, requests in Client.ts, the plugin in Source.ts.)
 *
 * - `GET /v1/images?limit=&cursor=` lists every product image, oldest first, in pages:
 *   `{ "images": [...], "next_cursor": "..." | null, "has_more": true | false }`.
 * - Auth: `Authorization: Bearer <token>`; a missing or wrong token is a 401.
 */
import { Batch, ProductImage } from "@effetl/core"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/** The list endpoint, relative to the base URL. */
export const imagesPath = "/v1/images"

/** The largest page the API serves (`limit`). */
export const maxPageSize = 100

/** One image as the API sends it. */
export const WireImage = Schema.Struct({
  id: Schema.Int,
  product_id: Schema.Int,
  position: Schema.Int,
  url: Schema.NullOr(Schema.String),
  alt: Schema.optional(Schema.NullOr(Schema.String)),
  width: Schema.optional(Schema.NullOr(Schema.Int)),
  height: Schema.optional(Schema.NullOr(Schema.Int)),
  updated_at: Schema.String
})
export type WireImage = typeof WireImage.Type

/** One page. Its items are decoded one by one (see {@link toProductImage}): a bad item is a dead letter, not a failed page. */
export const WirePage = Schema.Struct({
  images: Schema.Array(Schema.Unknown),
  next_cursor: Schema.NullOr(Schema.String),
  has_more: Schema.Boolean
})
export type WirePage = typeof WirePage.Type

const decodeImage = Batch.decodeItem(WireImage, "image")

/** Maps one wire item to a `ProductImage`, or says why it cannot (the item then goes to the dead-letter output). */
export const toProductImage = (source: string, item: unknown): Either.Either<ProductImage, Batch.Rejection> =>
  Either.map(decodeImage(item), (w) =>
    ProductImage.unchecked({
      source,
      productId: String(w.product_id),
      imageId: String(w.id),
      position: w.position,
      url: w.url,
      filename: w.url === null ? null : fileNameOf(w.url),
      width: w.width ?? null,
      height: w.height ?? null,
      alt: w.alt ?? null,
      contentHash: null,
      createdAt: null,
      // An unparseable date stays an Invalid Date: the `validate` transform sends the record to the dead letters with the reason.
      updatedAt: new Date(w.updated_at),
      extra: {}
    }))

/** The last path segment of a URL: data only, never used as a path. */
const fileNameOf = (url: string): string | null => {
  try {
    const segment = new URL(url).pathname.split("/").filter((s) => s.length > 0).pop()
    return segment === undefined ? null : decodeURIComponent(segment)
  } catch {
    return null
  }
}
