import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Batch from "../../src/Batch.js"
import { groupByProduct } from "../../src/ProductGrouping.js"
import { productKey } from "../../src/ProductImage.js"
import { normaliseSequence } from "../../src/transforms/NormaliseSequence.js"
import { byProduct, canon, image, makeTransform, multiset, services, spreadSource } from "./ProductFixtures.js"

const view = (b: Batch.Batch) => [...b.records].map((r) => `${r.productId}/${r.imageId}@${r.position}`)

describe("normalise-sequence", () => {
  it.scoped("renumbers products spread over batches once grouped, keeping the vendor's position", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const { batches, records } = spreadSource({ products: 40, batchSize: 3, seed: 21 })
      const t = yield* makeTransform(normaliseSequence, {})
      const out = yield* Stream.fromIterable(batches).pipe(
        groupByProduct({ dir, maxBuffered: 8, resume: Option.none(), outputBatchSize: 10 }),
        Stream.mapEffect(t.apply),
        Stream.runCollect,
        Effect.map(Chunk.toArray)
      )
      const input = byProduct(records)
      const output = byProduct(out.flatMap((b) => [...b.records]))
      assert.strictEqual(output.size, input.size)
      for (const [key, got] of output) {
        // Expected order, worked out plainly: by vendor position, then by numeric image id.
        const expected = input.get(key)!.slice().sort((a, b) => a.position - b.position || Number(a.imageId) - Number(b.imageId))
        assert.deepStrictEqual(got.map((r) => r.imageId), expected.map((r) => r.imageId), key)
        assert.deepStrictEqual(got.map((r) => r.position), expected.map((_, i) => i + 1), key)
        assert.deepStrictEqual(got.map((r) => r.extra.originalPosition), expected.map((r) => r.position), key)
      }
      // Nothing else changed.
      assert.deepStrictEqual(
        multiset(out.flatMap((b) => [...b.records]).map((r) => r.with({ position: r.extra.originalPosition as number, extra: {} }))),
        multiset(records)
      )
      assert.deepStrictEqual(out.at(-1)!.checkpoint.pipe(Option.map((c) => c.value)), Option.some(batches.length - 1))
    }).pipe(Effect.provide(services)))

  it.scoped("orders ties by image id in natural order, products in first-appearance order", () =>
    Effect.gen(function*() {
      const t = yield* makeTransform(normaliseSequence, { start: 0 })
      const out = yield* t.apply(Batch.make([
        image({ productId: "B", imageId: "10", position: 2 }),
        image({ productId: "A", imageId: "img10", position: 7 }),
        image({ productId: "B", imageId: "9", position: 2 }),
        image({ productId: "A", imageId: "img2", position: 7 }),
        image({ productId: "B", imageId: "100", position: -3 }),
        image({ source: "other", productId: "B", imageId: "1", position: 50 })
      ], Option.some(Batch.cursor("t"))))
      assert.deepStrictEqual(view(out), ["B/100@0", "B/9@1", "B/10@2", "A/img2@0", "A/img10@1", "B/1@0"])
      assert.deepStrictEqual([...out.records].map((r) => r.extra.originalPosition), [-3, 2, 2, 7, 7, 50])
      assert.deepStrictEqual([...out.records].map(productKey).at(-1), productKey({ source: "other", productId: "B" }))
      assert.deepStrictEqual(out.checkpoint, Option.some(Batch.cursor("t")))
    }).pipe(Effect.provide(services)))

  it.scoped("is idempotent and keeps an existing extra.originalPosition", () =>
    Effect.gen(function*() {
      const t = yield* makeTransform(normaliseSequence, {})
      const input = Batch.make([
        image({ productId: "A", imageId: "3", position: 30, extra: { originalPosition: 4, color: "red" } }),
        image({ productId: "A", imageId: "1", position: 10, extra: { color: "blue" } }),
        image({ productId: "A", imageId: "2", position: 20 })
      ])
      const once = yield* t.apply(input)
      assert.deepStrictEqual(view(once), ["A/1@1", "A/2@2", "A/3@3"])
      assert.deepStrictEqual([...once.records].map((r) => r.extra), [
        { color: "blue", originalPosition: 10 },
        { originalPosition: 20 },
        { originalPosition: 4, color: "red" }
      ])
      const twice = yield* t.apply(once)
      assert.deepStrictEqual([...twice.records].map(canon), [...once.records].map(canon))
    }).pipe(Effect.provide(services)))

  it("validates its config with a default start of 1", () => {
    assert.deepStrictEqual(Schema.decodeUnknownSync(normaliseSequence.config)({}), { start: 1 })
    assert.deepStrictEqual(Schema.decodeUnknownSync(normaliseSequence.config)({ start: 0 }), { start: 0 })
    assert.throws(() => Schema.decodeUnknownSync(normaliseSequence.config)({ start: 1.5 }))
    assert.isTrue(normaliseSequence.productScoped)
  })
})
