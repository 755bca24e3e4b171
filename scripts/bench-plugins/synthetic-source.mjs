// Bench only: a source plugin that makes `records` synthetic product images in memory, in batches,
// with a position checkpoint after each batch (no I/O, so a run measures the framework and the sinks).
// Used by `npm run bench -- --case run-memory` through `use: <this file>` in a pipeline file.
//
// productComplete: true  - product p's images are records 4p..4p+3, never split over two batches.
// productComplete: false - product p's images are spread over the whole run (record i belongs to
//                          product i mod (records / 4)), so a product-scoped transform makes the
//                          runner regroup (and spill to disk) before it.
import { Batch, Config, ProductImage, Source } from "@effetl/core"
import { Effect, Option, Schema, Stream } from "effect"

const alts = ["Red sneaker, side view", 'Bag "Classic" – 30 × 20 cm', "Çanta — deri", null, "white shirt; front"]

export default Source.define({
  name: "synthetic",
  description: "Bench only: synthetic product images made in memory, a checkpoint after each batch.",
  config: Schema.Struct({
    records: Config.required(Config.intAtLeast(1), { description: "How many images.", examples: [1000000] }),
    batchSize: Config.withDefault(Config.intAtLeast(1), 1000, { description: "Images per batch.", examples: [1000] }),
    productComplete: Config.withDefault(Schema.Boolean, true, {
      description: "false: a product's images are spread over the whole run (forces regrouping).",
      examples: [true, false]
    })
  }),
  make: (config, ctx) =>
    Effect.sync(() => {
      const products = Math.max(1, Math.floor(config.records / 4))
      const from = Option.match(ctx.checkpoint, { onNone: () => 0, onSome: (cp) => Number(cp.value) })
      const image = (n) => {
        const product = config.productComplete ? Math.floor(n / 4) : n % products
        const hex = ((n * 2654435761) >>> 0).toString(16).padStart(8, "0")
        return ProductImage.unchecked({
          source: ctx.name,
          productId: String(1001 + product),
          imageId: String(n + 1),
          position: config.productComplete ? (n % 4) + 1 : Math.floor(n / products) + 1,
          url: `https://cdn.example.com/media/products/2024/03/${(n % 28) + 1}/${hex}${hex}.jpg`,
          filename: `${hex}${hex}.jpg`,
          width: 1200,
          height: 1600,
          alt: alts[n % alts.length],
          contentHash: `sha256:${hex.repeat(8)}`,
          createdAt: new Date(Date.UTC(2023, 0, 1) + n * 60_000),
          updatedAt: new Date(Date.UTC(2024, 0, 1) + n * 60_000),
          extra: { status: "active", isActive: true }
        })
      }
      // One batch per pull (Stream.fromIterable would map a whole chunk of 4,096 batches at once).
      return {
        productComplete: config.productComplete,
        check: Effect.void,
        stream: Stream.unfold(from, (start) => {
          if (start >= config.records) return Option.none()
          const end = Math.min(config.records, start + config.batchSize)
          const records = []
          for (let n = start; n < end; n++) records.push(image(n))
          return Option.some([Batch.make(records, Option.some(Batch.position(end))), end])
        })
      }
    })
})
