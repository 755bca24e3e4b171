// A third-party source plugin, written exactly like the built-ins: a module whose default export
// is made by Source.define. Name it in a pipeline with `use: ./plugins/static-source.mjs`.
// It serves images listed in its config, one batch per product (so batches are product-complete),
// with a position checkpoint after each product.
import { Batch, Config, ProductImage, Source } from "@effetl/core"
import { Effect, Option, Schema, Stream } from "effect"

const Image = Schema.Struct({
  id: Schema.String,
  url: Schema.String,
  position: Schema.optionalWith(Schema.Int, { default: () => 0 })
})

export default Source.define({
  name: "static",
  description: "Images listed in the pipeline file itself (an example of a third-party source plugin).",
  config: Schema.Struct({
    products: Config.required(Schema.Record({ key: Schema.String, value: Schema.Array(Image) }), {
      description: "Product id → its images ({ id, url, position }).",
      examples: [{ "1001": [{ id: "a", url: "https://cdn.example/a.png", position: 1 }] }]
    })
  }),
  make: (config, ctx) =>
    Effect.sync(() => {
      const products = Object.entries(config.products)
      // Resume after the last product a previous (killed) run committed.
      const from = Option.match(ctx.checkpoint, { onNone: () => 0, onSome: (cp) => cp.value.index + 1 })
      return {
        productComplete: true,
        check: Effect.void,
        stream: Stream.fromIterable(products.slice(from).map((entry, i) => [entry, from + i])).pipe(
          Stream.tap(() => ctx.progress.page()),
          Stream.map(([[productId, images], index]) =>
            Batch.make(
              images.map((img) =>
                ProductImage.unchecked({
                  source: ctx.name,
                  productId,
                  imageId: img.id,
                  position: img.position,
                  url: img.url,
                  filename: null,
                  width: null,
                  height: null,
                  alt: null,
                  contentHash: null,
                  createdAt: null,
                  updatedAt: null,
                  extra: {}
                })
              ),
              Option.some(Batch.position({ index }))
            )
          )
        )
      }
    })
})
