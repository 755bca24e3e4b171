/**
 * The `normalise-sequence` transform: renumbers each product's images `start, start+1, ...` in
 * display order, keeping the vendor's position in `extra.originalPosition`.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Batch } from "../Batch.js"
import * as Config from "../Config.js"
import { displayOrder, type ProductImage, productKey } from "../ProductImage.js"
import * as Transform from "../Transform.js"

/** The config of `normalise-sequence`. */
export const NormaliseSequenceConfig = Schema.Struct({
  start: Config.withDefault(Schema.Int, 1, {
    description: "The position given to the first image of each product.",
    examples: [1, 0]
  })
}).annotations({ title: "normalise-sequence" })
export type NormaliseSequenceConfig = typeof NormaliseSequenceConfig.Type

/** Renumbers the images of each product `start, start+1, ...` in display order. */
export const normaliseSequence = Transform.define<NormaliseSequenceConfig>({
  name: "normalise-sequence",
  description:
    "Renumbers each product's images start, start+1, ... in display order (position, then imageId in natural " +
    "order), so positions have no gaps or ties. The vendor's position is kept in extra.originalPosition (an " +
    "existing extra.originalPosition is left as it is, so running it twice changes nothing). Output: products in " +
    "the order they first appear in the batch, each product's images in display order.",
  config: NormaliseSequenceConfig,
  productScoped: true,
  make: (config) => Effect.succeed({ apply: (batch: Batch) => Effect.sync(() => renumber(batch, config.start)) })
})

/** Renumbers one product-complete batch (see the plugin description). */
export const renumber = (batch: Batch, start: number): Batch => {
  const products = new Map<string, Array<ProductImage>>()
  for (const r of batch.records) {
    const key = productKey(r)
    const list = products.get(key)
    if (list === undefined) products.set(key, [r])
    else list.push(r)
  }
  const out: Array<ProductImage> = []
  for (const records of products.values()) {
    records.sort(displayOrder) // Array.prototype.sort is stable
    records.forEach((r, i) => {
      const position = start + i
      const hasOriginal = Object.prototype.hasOwnProperty.call(r.extra, "originalPosition")
      if (hasOriginal && r.position === position) out.push(r)
      else {
        out.push(r.with({
          position,
          extra: hasOriginal ? r.extra : { ...r.extra, originalPosition: r.position }
        }))
      }
    })
  }
  return { ...batch, records: Chunk.fromIterable(out) }
}
