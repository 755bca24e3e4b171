import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Batch from "../src/Batch.js"
import { drfEnvelope } from "../src/http/Paginate.js"
import { ProductImageJson } from "../src/ProductImage.js"

describe("Batch.decodeItem", () => {
  const decode = Batch.decodeItem(Schema.Struct({ id: Schema.Int, tags: Schema.Array(Schema.String) }), "product image")

  it("decodes an item of the wire shape", () => {
    expect(decode({ id: 7, tags: ["a"] })).toEqual(Either.right({ id: 7, tags: ["a"] }))
  })

  it("rejects another shape with every issue and its path, keeping the raw item for the dead letter", () => {
    const item = { id: "7", tags: ["a", 2] }
    const rejected = decode(item)
    expect(Either.isLeft(rejected) && rejected.left.payload).toBe(item)
    expect(Either.isLeft(rejected) && rejected.left.error).toMatch(/^unexpected product image shape: id: Expected number, actual "7"; tags\[1\]: Expected string, actual 2$/)
    const notAnObject = decode(null)
    expect(Either.isLeft(notAnObject) && notAnObject.left.error).toMatch(/^unexpected product image shape: \(item\): /)
  })
})

describe("Batch.plainDecoder", () => {
  /** The wire shapes sources decode item by item (the channel's, Shoplazza's listed product, a nested one). */
  const channelLike = Schema.Struct({
    pk: Schema.Int,
    product: Schema.Int,
    source: Schema.optional(Schema.NullOr(Schema.Literal("unified", "integration"))),
    modified_date: Schema.optional(Schema.NullOr(Schema.String)),
    height: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.nonNegative()))),
    is_active: Schema.optional(Schema.NullOr(Schema.Boolean)),
    content_type: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Int)))
  })
  const listed = Schema.Struct({
    id: Schema.String.pipe(Schema.minLength(1)),
    images: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown))),
    tags: Schema.Array(Schema.String)
  })
  const nested = Schema.Struct({
    id: Schema.Number,
    meta: Schema.Struct({ a: Schema.optional(Schema.String), b: Schema.Null }),
    extra: Schema.Unknown,
    either: Schema.Union(Schema.Struct({ x: Schema.Int }), Schema.Null, Schema.Literal(0))
  })
  /** A page as ApiClient.requestJson decodes it (its plain decoder is tried first there too). */
  const page = drfEnvelope(Schema.Unknown)
  /** A record's JSON form as product grouping reads it back from its spill files (`extra`: any object). */
  const spilled = ProductImageJson
  const schemas = [channelLike, listed, nested, page, spilled] as const

  it("decodes the plain wire shapes without Schema's parser, and leaves other shapes to it", () => {
    for (const schema of schemas) expect(Batch.plainDecoder(schema as Schema.Schema<unknown, unknown>)).toBeDefined()
    const others = [
      Schema.Struct({ n: Schema.NumberFromString }),
      Schema.Struct({ d: Schema.DateFromSelf }),
      Schema.Record({ key: Schema.String, value: Schema.String }),
      Schema.Struct({ a: Schema.String }, Schema.Record({ key: Schema.String, value: Schema.Unknown })),
      Schema.Struct({ a: Schema.String }).annotations({ parseOptions: { onExcessProperty: "error" } }),
      Schema.Union(Schema.Struct({ a: Schema.String }), Schema.Struct({ b: Schema.String })),
      Schema.Struct({ a: Schema.optionalWith(Schema.String, { default: () => "x" }) })
    ]
    for (const schema of others) expect(Batch.plainDecoder(schema as Schema.Schema<unknown, any>)).toBeUndefined()
    const plain = Batch.plainDecoder(channelLike)!
    expect(plain({ pk: 1, product: 2, height: 3, ignored: "x" })).toEqual(Option.some({ pk: 1, product: 2, height: 3 }))
    expect(Option.isNone(plain({ pk: 1.5, product: 2 }))).toBe(true)
  })

  it("generates no code from a field's name or a literal's value (they are data, whatever they hold)", () => {
    const tricky = [`"); throw new Error("injected"); ("`, "a\u2028b", "`${x}`", "\\", "constructor", "toString"]
    const schema = Schema.Struct(Object.fromEntries(tricky.map((name) => [name, Schema.optional(Schema.Literal(name, 1))])))
    const plain = Batch.plainDecoder(schema)!
    const item = Object.fromEntries(tricky.map((name, i) => [name, i % 2 === 0 ? name : 1]))
    expect(plain(item)).toEqual(Option.some(item))
    expect(Option.isNone(plain({ ...item, [tricky[0]!]: "other" }))).toBe(true)
    expect(plain({})).toEqual(Option.some({}))
    // A field named __proto__ is assigned as Schema assigns it (a string does not become the prototype).
    const proto = Schema.Struct({ ["__proto__"]: Schema.String, a: Schema.String })
    const input = JSON.parse(`{"__proto__":"x","a":"y"}`)
    const expected = Either.getOrThrow(Schema.decodeUnknownEither(proto)(input))
    for (const generated of [true, false]) {
      const got = Option.getOrThrow(Batch.plainDecoderWith(proto, generated)!(input))
      expect(Object.getOwnPropertyNames(got)).toEqual(Object.getOwnPropertyNames(expected))
      expect(Object.getPrototypeOf(got)).toBe(Object.getPrototypeOf(expected))
    }
  })

  // Generated checks (the default), and the closures alone (where code cannot be generated).
  it.each([true, false])("gives exactly what Schema's decode gives (values and key order), and leaves every item Schema refuses (generated: %s)", (generated) => {
    const keysDeep = (u: unknown): unknown =>
      Array.isArray(u) ? u.map(keysDeep) : typeof u === "object" && u !== null ? Object.entries(u).map(([k, v]) => [k, keysDeep(v)]) : u
    const junk: ReadonlyArray<unknown> = [null, undefined, 0, -1, 1.5, Number.NaN, "", "x", true, [], {}, [1, "a"], { x: 1 }]
    const rng = (() => {
      let s = 12345
      return (n: number) => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n
    })()
    let plainlyDecoded = 0
    for (const schema of schemas) {
      const s = schema as unknown as Schema.Schema<unknown, unknown>
      const reference = Schema.decodeUnknownEither(s, { errors: "all" })
      const plain = Batch.plainDecoderWith(s, generated)!
      const decode = Batch.decodeItem(s, "item")
      const valid = FastCheck.sample(Arbitrary.make(s), { numRuns: 200, seed: 42 })
      const inputs: Array<unknown> = [...valid, ...junk]
      for (const v of valid) {
        if (typeof v !== "object" || v === null) continue
        const keys = Object.keys(v)
        for (let k = 0; k < 3; k++) {
          const mutated: Record<string, unknown> = { ...(v as Record<string, unknown>), excess: junk[rng(junk.length)] }
          const key = keys[rng(keys.length)]
          if (key !== undefined) {
            if (rng(2) === 0) delete mutated[key]
            else mutated[key] = junk[rng(junk.length)]
          }
          inputs.push(mutated)
        }
      }
      for (const input of inputs) {
        const expected = reference(input)
        const fast = plain(input)
        if (Option.isSome(fast)) {
          plainlyDecoded++
          expect(Either.isRight(expected)).toBe(true)
          expect(keysDeep(fast.value)).toEqual(keysDeep(Either.getOrThrow(expected)))
          expect(fast.value).not.toBe(input)
        }
        const got = decode(input)
        expect(Either.isRight(got)).toBe(Either.isRight(expected))
        if (Either.isRight(got)) expect(keysDeep(got.right)).toEqual(keysDeep(Either.getOrThrow(expected)))
      }
    }
    expect(plainlyDecoded).toBeGreaterThan(600)
  })
})
