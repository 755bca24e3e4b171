import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Batch from "../../src/Batch.js"
import { ConfigError } from "../../src/Errors.js"
import { groupByProduct } from "../../src/ProductGrouping.js"
import { type ProductImage, productKey } from "../../src/ProductImage.js"
import { dedupeByHash } from "../../src/transforms/DedupeByHash.js"
import { canon, countsOf, image, makeTransform, multiset, services, spreadSource } from "./ProductFixtures.js"

const ids = (b: Batch.Batch) => [...b.records].map((r) => r.imageId)

describe("dedupe-by-hash", () => {
  it.scoped("product scope, after grouping a source whose products are spread over batches", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const { batches, records } = spreadSource({ products: 50, batchSize: 4, seed: 11 })
      const grouped = yield* Stream.fromIterable(batches).pipe(
        groupByProduct({ dir, maxBuffered: 9, resume: Option.none(), outputBatchSize: 12 }),
        Stream.runCollect,
        Effect.map(Chunk.toArray)
      )
      const t = yield* makeTransform(dedupeByHash, {})
      const out = yield* Effect.forEach(grouped, t.apply)

      // Expected, worked out plainly: per product and hash, the lowest position wins, then the lowest
      // image id as a number (the fixture's ids are numeric, so "9" must beat "10").
      const winners = new Map<string, ProductImage>()
      for (const r of records) {
        if (r.contentHash === null) continue
        const key = `${productKey(r)}|${r.contentHash}`
        const w = winners.get(key)
        if (w === undefined || r.position < w.position || (r.position === w.position && Number(r.imageId) < Number(w.imageId))) {
          winners.set(key, r)
        }
      }
      const unhashed = records.filter((r) => r.contentHash === null)
      const kept = new Set([...winners.values(), ...unhashed].map(canon))
      assert.deepStrictEqual(multiset(out.flatMap((b) => [...b.records])), [...kept].sort())
      // Kept records stay in the grouped batch's order; checkpoints are kept.
      out.forEach((b, i) => {
        assert.deepStrictEqual([...b.records].map(canon), [...grouped[i]!.records].map(canon).filter((c) => kept.has(c)))
        assert.deepStrictEqual(b.checkpoint, grouped[i]!.checkpoint)
      })
      const counts = yield* countsOf("shop")
      assert.strictEqual(counts.unhashed, unhashed.length)
      assert.strictEqual(counts.deduped, records.length - unhashed.length - winners.size)
      assert.isAbove(counts.deduped, 10)
    }).pipe(Effect.provide(services)))

  it.scoped("keeps the first in display order: position, then image id in natural order", () =>
    Effect.gen(function*() {
      const t = yield* makeTransform(dedupeByHash, { scope: "product" })
      const out = yield* t.apply(Batch.make([
        image({ productId: "A", imageId: "10", position: 1, contentHash: "sha256:x" }),
        image({ productId: "A", imageId: "x-1", position: 3, contentHash: null }),
        image({ productId: "A", imageId: "9", position: 1, contentHash: "sha256:x" }),
        image({ productId: "B", imageId: "1", position: 2, contentHash: "sha256:y" }),
        image({ productId: "B", imageId: "5", position: 0, contentHash: "sha256:y" }),
        // The same hash in another product is not a duplicate in product scope.
        image({ productId: "B", imageId: "7", position: 4, contentHash: "sha256:x" }),
        // Nor in another source with the same product id.
        image({ source: "other", productId: "A", imageId: "1", position: 9, contentHash: "sha256:x" })
      ], Option.some(Batch.position(4))))
      assert.deepStrictEqual(ids(out), ["x-1", "9", "5", "7", "1"])
      assert.deepStrictEqual(out.checkpoint, Option.some(Batch.position(4)))
      assert.deepStrictEqual([(yield* countsOf("shop")).deduped, (yield* countsOf("shop")).unhashed], [2, 1])
      assert.strictEqual((yield* countsOf("other")).deduped, 0)

      // Product scope remembers nothing across batches.
      const again = yield* t.apply(Batch.make([image({ productId: "A", imageId: "3", contentHash: "sha256:x" })]))
      assert.deepStrictEqual(ids(again), ["3"])
      assert.isUndefined(t.persist)
    }).pipe(Effect.provide(services)))

  it.scoped("global scope: first seen in the run; within a batch, product order then display order", () =>
    Effect.gen(function*() {
      const t = yield* makeTransform(dedupeByHash, { scope: "global" })
      const first = yield* t.apply(Batch.make([
        image({ productId: "Y", imageId: "a", position: 5, contentHash: "sha256:h" }),
        image({ productId: "X", imageId: "b", position: 0, contentHash: "sha256:h" }),
        image({ productId: "Y", imageId: "c", position: 1, contentHash: "sha256:h" }),
        image({ source: "other", productId: "Z", imageId: "d", position: 0, contentHash: "sha256:k" })
      ]))
      assert.deepStrictEqual(ids(first), ["c", "d"])
      const second = yield* t.apply(Batch.make([
        image({ source: "other", productId: "W", imageId: "e", contentHash: "sha256:h" }),
        image({ productId: "V", imageId: "f", contentHash: "sha256:new" })
      ]))
      assert.deepStrictEqual(ids(second), ["f"])
      assert.strictEqual((yield* countsOf("shop")).deduped, 2)
      assert.strictEqual((yield* countsOf("other")).deduped, 1)
    }).pipe(Effect.provide(services)))

  it.scoped("global scope carries the hashes of written records into the next run", () =>
    Effect.gen(function*() {
      // Run 1: batch 1 is written, batch 2 is kept but the run dies before the sinks write it.
      const run1 = yield* makeTransform(dedupeByHash, { scope: "global" })
      const written = yield* run1.apply(Batch.make([
        image({ productId: "A", imageId: "1", contentHash: "sha256:h1" }),
        image({ productId: "A", imageId: "2", contentHash: "sha256:h2" }),
        image({ productId: "B", imageId: "3", contentHash: "sha256:h1" }),
        image({ productId: "B", imageId: "4", contentHash: null })
      ]))
      yield* run1.persist!.written(written)
      const inFlight = yield* run1.apply(Batch.make([image({ productId: "C", imageId: "5", contentHash: "sha256:h3" })]))
      assert.deepStrictEqual(ids(inFlight), ["5"])
      // Seen in this run, so a duplicate now, even though not written yet.
      assert.deepStrictEqual(ids(yield* run1.apply(Batch.make([image({ productId: "D", imageId: "6", contentHash: "sha256:h3" })]))), [])
      const saved = yield* run1.persist!.snapshot
      assert.deepStrictEqual([...(saved as { hashes: Array<string> }).hashes].sort(), ["sha256:h1", "sha256:h2"])

      // Run 2 loads what was saved (through JSON, as the state file does).
      const run2 = yield* makeTransform(dedupeByHash, { scope: "global" }, Option.some(JSON.parse(JSON.stringify(saved))))
      const out = yield* run2.apply(Batch.make([
        image({ productId: "A", imageId: "1", contentHash: "sha256:h1" }),
        image({ productId: "C", imageId: "5", contentHash: "sha256:h3" }),
        image({ productId: "E", imageId: "7", contentHash: "sha256:h2" })
      ]))
      assert.deepStrictEqual(ids(out), ["5"])
      // Before anything of run 2 is written, its snapshot is what it loaded.
      assert.deepStrictEqual([...((yield* run2.persist!.snapshot) as { hashes: Array<string> }).hashes].sort(), ["sha256:h1", "sha256:h2"])
      yield* run2.persist!.written(out)
      assert.deepStrictEqual(
        [...((yield* run2.persist!.snapshot) as { hashes: Array<string> }).hashes].sort(),
        ["sha256:h1", "sha256:h2", "sha256:h3"]
      )
      assert.strictEqual((yield* countsOf("shop")).deduped, 4)
      assert.strictEqual((yield* countsOf("shop")).unhashed, 1)
    }).pipe(Effect.provide(services)))

  it.scoped("refuses a saved state that is not a list of hashes, with a ConfigError", () =>
    Effect.gen(function*() {
      const error = yield* makeTransform(dedupeByHash, { scope: "global" }, Option.some({ seen: 3 })).pipe(Effect.flip)
      assert.instanceOf(error, ConfigError)
      assert.include(error.message, "dedupe-by-hash")
    }).pipe(Effect.provide(services)))

  it("validates its config with a default scope", () => {
    assert.deepStrictEqual(Schema.decodeUnknownSync(dedupeByHash.config)({}), { scope: "product" })
    assert.throws(() => Schema.decodeUnknownSync(dedupeByHash.config)({ scope: "everywhere" }))
    assert.isTrue(dedupeByHash.productScoped)
  })
})
