import { assert, describe, it } from "@effect/vitest"
import * as Equal from "effect/Equal"
import * as Schema from "effect/Schema"
import { isoDate, isoString, naturalCompare, ProductImage, toJson } from "../src/ProductImage.js"

const fields = {
  source: "shop",
  productId: "p1",
  imageId: "7",
  position: 2,
  url: "https://cdn.example.com/a.jpg",
  filename: "a.jpg",
  width: 10,
  height: 20,
  alt: "Red shoe",
  contentHash: null,
  createdAt: new Date("2024-01-02T03:04:05Z"),
  updatedAt: null,
  extra: { status: "active" }
}

describe("ProductImage", () => {
  it("unchecked builds the same record as the class constructor without validation", () => {
    const fast = ProductImage.unchecked(fields)
    const slow = new ProductImage(fields, { disableValidation: true })
    assert.instanceOf(fast, ProductImage)
    assert.isTrue(Schema.is(ProductImage)(fast))
    assert.deepStrictEqual(Object.keys(fast), Object.keys(slow))
    assert.isTrue(Equal.equals(fast, slow))
    assert.deepStrictEqual(toJson(fast), toJson(slow))
    // what it does not do: check the fields (that is `validate`'s job)
    const bad = ProductImage.unchecked({ ...fields, position: 1.5 })
    assert.strictEqual(bad.position, 1.5)
    assert.isFalse(Schema.is(Schema.Struct(ProductImage.fields))(bad))
  })

  it("with copies the record with some fields replaced and leaves the original as it was", () => {
    const original = ProductImage.unchecked(fields)
    const bytes = new Uint8Array([1, 2, 3])
    const copy = original.with({ contentHash: "sha256:abc", bytes })
    assert.instanceOf(copy, ProductImage)
    assert.strictEqual(copy.contentHash, "sha256:abc")
    assert.strictEqual(copy.bytes, bytes)
    assert.strictEqual(copy.url, original.url)
    assert.strictEqual(original.contentHash, null)
    assert.isFalse("bytes" in original)
    assert.isTrue(
      Equal.equals(copy, new ProductImage({ ...fields, contentHash: "sha256:abc", bytes }, { disableValidation: true }))
    )
    // encoding through the class schema still works on copies
    assert.strictEqual(Schema.encodeSync(ProductImage)(copy).contentHash, "sha256:abc")
  })
})

/** The chunk-by-chunk comparison `naturalCompare` promises, written plainly, as the reference. */
const reference = (a: string, b: string): number => {
  const as = a.match(/(\d+|\D+)/g) ?? []
  const bs = b.match(/(\d+|\D+)/g) ?? []
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const x = as[i]!
    const y = bs[i]!
    if (x === y) continue
    if (/^\d/.test(x) && /^\d/.test(y)) {
      if (BigInt(x) !== BigInt(y)) return BigInt(x) < BigInt(y) ? -1 : 1
      if (x.length !== y.length) return x.length - y.length
      continue
    }
    return x < y ? -1 : 1
  }
  return as.length - bs.length
}

describe("naturalCompare", () => {
  it("orders decimal ids as numbers, then '1' before '01', and other ids chunk by chunk", () => {
    assert.isBelow(naturalCompare("9", "10"), 0)
    assert.isAbove(naturalCompare("10", "9"), 0)
    assert.isBelow(naturalCompare("1", "01"), 0)
    assert.isAbove(naturalCompare("007", "7"), 0)
    assert.strictEqual(naturalCompare("42", "42"), 0)
    assert.isBelow(naturalCompare("0", "00"), 0)
    assert.isBelow(naturalCompare("99999999999999999999", "100000000000000000000"), 0)
    assert.isBelow(naturalCompare("img2", "img10"), 0)
    assert.isBelow(naturalCompare("2", "a"), 0)
    assert.isBelow(naturalCompare("", "0"), 0)
  })

  it("gives the same sign as the chunk-by-chunk reference on many pairs", () => {
    const pieces = ["", "0", "00", "1", "01", "9", "10", "010", "123", "0123", "a", "b", "img", "-", "12345678901234567890"]
    const ids: Array<string> = []
    for (const x of pieces) for (const y of pieces) ids.push(x + y)
    for (const a of ids) {
      for (const b of ids) assert.strictEqual(Math.sign(naturalCompare(a, b)), Math.sign(reference(a, b)), `${a} vs ${b}`)
    }
  })
})

describe("toJson", () => {
  it("writes dates as ISO strings, and bytes (before extra) only when asked and present", () => {
    const r = ProductImage.unchecked({ ...fields, bytes: new Uint8Array([104, 105]) })
    const plain = toJson(r)
    assert.deepStrictEqual(Object.keys(plain), [
      "source", "productId", "imageId", "position", "url", "filename", "width", "height", "alt", "contentHash", "createdAt",
      "updatedAt", "extra"
    ])
    assert.strictEqual(plain.createdAt, "2024-01-02T03:04:05.000Z")
    assert.strictEqual(plain.updatedAt, null)
    const withBytes = toJson(r, { includeBytes: true })
    assert.deepStrictEqual(Object.keys(withBytes).slice(-2), ["bytes", "extra"])
    assert.strictEqual(withBytes.bytes, "aGk=")
    assert.notProperty(toJson(ProductImage.unchecked(fields), { includeBytes: true }), "bytes")
    assert.strictEqual(toJson(ProductImage.unchecked({ ...fields, createdAt: new Date(Number.NaN) })).createdAt, null)
  })
})

describe("isoString", () => {
  it("is exactly Date's toISOString, from 1970 to 9999 and beyond", () => {
    const edges = [
      0, 1, 999, 1000, 86399999, 86400000, // the epoch's first day
      Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(2000, 2, 1), // a leap day of a 400-year
      Date.UTC(2100, 1, 28, 12), Date.UTC(2100, 2, 1), // no leap day in 2100
      Date.UTC(2024, 1, 29), Date.UTC(2023, 11, 31, 23, 59, 59, 999), Date.UTC(2024, 0, 1),
      253402300799999, // 9999-12-31T23:59:59.999Z, the last of the fast path
      253402300800000, -1, -62198755200000, 8.64e15, -8.64e15, // ±YYYYYY and before 1970: toISOString itself
      1.5 // not a whole millisecond: toISOString itself
    ]
    for (const ms of edges) assert.strictEqual(isoString(ms), new Date(ms).toISOString(), String(ms))
    let s = 20241205
    const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0)
    for (let i = 0; i < 100_000; i++) {
      const ms = (next() * 65536 + (next() & 0xffff)) % 253402300800000
      assert.strictEqual(isoString(ms), new Date(ms).toISOString())
    }
    assert.strictEqual(isoDate(new Date(Number.NaN)), null)
    assert.strictEqual(isoDate(null), null)
    assert.strictEqual(isoDate(new Date("2024-03-01T12:00:00.5Z")), "2024-03-01T12:00:00.500Z")
  })
})
