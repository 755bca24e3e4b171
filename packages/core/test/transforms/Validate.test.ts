import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Batch from "../../src/Batch.js"
import { ProductImage } from "../../src/ProductImage.js"
import { check, plainlyValid, validate } from "../../src/transforms/Validate.js"
import { countsOf, image, makeTransform, services } from "./ProductFixtures.js"

describe("validate", () => {
  it.scoped("moves records that break the schema to rejected with a reason naming the field", () =>
    Effect.gen(function*() {
      const t = yield* makeTransform(validate, {})
      const good = image({ productId: "P1", imageId: "1", contentHash: "sha256:abc", createdAt: new Date(0) })
      const fractional = image({ productId: "P1", imageId: "2", position: 1.5 })
      const several = image({
        source: "other",
        productId: "",
        imageId: "3",
        width: -4,
        contentHash: "not-a-hash",
        createdAt: new Date("not a date")
      })
      const earlier = { source: "shop", stage: "source", error: "undecodable page", payload: "<html>" }
      const input = Batch.make([good, fractional, several], Option.some(Batch.cursor("token-9")), [earlier])

      const out = yield* t.apply(input)

      assert.deepStrictEqual([...out.records], [good])
      assert.deepStrictEqual(out.checkpoint, Option.some(Batch.cursor("token-9")))
      const rejected = Chunk.toReadonlyArray(out.rejected)
      assert.strictEqual(rejected.length, 3)
      assert.deepStrictEqual(rejected[0], earlier)
      assert.strictEqual(rejected[1]!.stage, "validate")
      assert.strictEqual(rejected[1]!.source, "shop")
      assert.strictEqual(rejected[1]!.record, fractional)
      assert.strictEqual(rejected[1]!.error, "position: expected an integer, got 1.5")
      const reason = rejected[2]!.error
      assert.strictEqual(rejected[2]!.source, "other")
      assert.include(reason, "productId: must not be empty")
      assert.include(reason, "width: expected a non-negative number, got -4")
      assert.include(reason, "contentHash: must look like '<algorithm>:<value>'")
      assert.include(reason, "createdAt: expected a valid Date instance, got Invalid Date")
      assert.notInclude(reason, "expected null")

      // dead letters are counted as `invalid` by the runner, once, whatever step made them
      assert.strictEqual((yield* countsOf("shop")).invalid, 0)
    }).pipe(Effect.provide(services)))

  it.scoped("names wrong types and leaves a valid batch as it is", () =>
    Effect.gen(function*() {
      const t = yield* makeTransform(validate, {})
      const wrongTypes = image({ productId: "P", imageId: "1", url: 42 as unknown as string, bytes: "abc" as unknown as Uint8Array })
      const out = yield* t.apply(Batch.make([wrongTypes]))
      const reason = Chunk.unsafeGet(out.rejected, 0).error
      assert.include(reason, "url: expected string, got 42")
      assert.include(reason, "bytes: expected Uint8ArrayFromSelf")

      const valid = Batch.make([image({ productId: "P", imageId: "2" })], Option.some(Batch.position(3)))
      assert.strictEqual(yield* t.apply(valid), valid)
    }).pipe(Effect.provide(services)))

  it("decides every record as the ProductImage schema does (the per-record fast path is never more lenient)", () => {
    const schemaAccepts = Schema.is(Schema.Struct(ProductImage.fields))
    const values: Record<string, ReadonlyArray<unknown>> = {
      source: ["shop", "", 3, null, undefined],
      productId: ["P1", "", 7, null],
      imageId: ["1", "", 1, undefined],
      position: [0, -3, 2, 1.5, Number.NaN, Infinity, 2 ** 60, "1", null],
      url: [null, "https://x/y.jpg", "", 42, undefined],
      filename: [null, "a.jpg", {}, undefined],
      alt: [null, "", "Red", 5],
      width: [null, 0, 800, -1, 1.5, "800", undefined],
      height: [null, 600, -0, Number.NaN],
      contentHash: [null, "sha256:abc", "vendor:x", "not-a-hash", "SHA:x", "sha256:", "sha256:a\n", 5, undefined],
      createdAt: [null, new Date(0), new Date("not a date"), "2024-01-01", 0, undefined],
      updatedAt: [null, new Date(1), new Date(Number.NaN)],
      bytes: [undefined, new Uint8Array(2), Buffer.from("x"), "abc", [1, 2], null],
      extra: [{}, { a: 1 }, [], null, "x", Object.create(null), undefined]
    }
    const base = image({ productId: "P1", imageId: "1" })
    let checked = 0
    for (const [field, options] of Object.entries(values)) {
      for (const [k, value] of options.entries()) {
        const record = ProductImage.unchecked({ ...base, [field]: value } as ConstructorParameters<typeof ProductImage>[0])
        const accepted = schemaAccepts(record)
        if (plainlyValid(record)) assert.isTrue(accepted, `${field} value ${k} passed the fast path but not the schema`)
        assert.strictEqual(check(record)._tag === "Right", accepted, `${field} value ${k}`)
        checked++
      }
    }
    assert.isAbove(checked, 70)
    assert.isTrue(plainlyValid(base))
  })

  it("has an empty config schema that rejects nothing", () => {
    assert.deepStrictEqual(Schema.decodeUnknownSync(validate.config)({}), {})
    assert.isFalse(validate.productScoped)
    assert.strictEqual(validate.name, "validate")
  })
})
