import { Validate } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { imagePath, isActive, modePaths, toProductImage } from "../src/Api.js"
import { plain, utcMillis, wireItem } from "./Harness.js"

const fields = { url: "image", alt: "alt" }
const base = "https://omnitron.example.com"

/** Maps an item and returns the record (failing the test on a Left). */
const map = (item: unknown, names = fields, baseUrl = base) => {
  const mapped = toProductImage("shop", item, names, baseUrl)
  if (Either.isLeft(mapped)) throw new Error(mapped.left.error)
  return mapped.right
}

describe("Api.toProductImage", () => {
  it("maps every wire field to its canonical slot or to extra", () => {
    const record = map(wireItem(7, { image: "https://cdn.example.com/p/7.jpg", alt: "Red shoe", hash: "abc123", source: null }))
    expect(plain(record)).toEqual({
      source: "shop",
      productId: "5007",
      imageId: "7",
      position: 70,
      url: "https://cdn.example.com/p/7.jpg",
      filename: "7.jpg",
      width: 20,
      height: 10,
      alt: "Red shoe",
      contentHash: null,
      createdAt: Date.UTC(2024, 0, 2, 3, 4, 5),
      updatedAt: Date.UTC(2024, 1, 3, 1, 5, 6, 789),
      extra: { status: "active", isActive: true, vendorHash: "vendor:abc123", imageSource: null, objectId: 5007, contentType: "product" }
    })
    // The record passes the pipeline's validate step.
    expect(Validate.check(record)).toEqual(Either.right(undefined))
  })

  it("reads dates with offsets and microseconds as UTC instants", () => {
    const record = map(wireItem(1, { created_date: "2023-06-30T23:30:00.999999-02:30", modified_date: "2023-07-01T00:00:00+03:00" }))
    expect(record.createdAt?.toISOString()).toBe("2023-07-01T02:00:00.999Z")
    expect(record.updatedAt?.toISOString()).toBe("2023-06-30T21:00:00.000Z")
    expect(record.createdAt?.getTime()).toBe(utcMillis("2023-06-30T23:30:00.999999-02:30"))
  })

  it("keeps an unparseable date as an Invalid Date, so validation rejects the record with the reason", () => {
    const record = map(wireItem(1, { created_date: "yesterday" }))
    expect(Number.isNaN(record.createdAt!.getTime())).toBe(true)
    const checked = Validate.check(record)
    expect(Either.isLeft(checked) && checked.left).toContain("createdAt")
  })

  it("missing or null optional fields become nulls, order 0", () => {
    const record = map({ pk: 3, product: 9 })
    expect(plain(record)).toMatchObject({
      position: 0,
      url: null,
      filename: null,
      width: null,
      height: null,
      alt: null,
      createdAt: null,
      updatedAt: null,
      extra: { status: null, isActive: null, vendorHash: null, imageSource: null, objectId: null, contentType: null }
    })
  })

  it("an empty vendor hash is no hash", () => {
    expect(map(wireItem(1, { hash: "" })).extra.vendorHash).toBe(null)
    expect(map(wireItem(1, { hash: null })).extra.vendorHash).toBe(null)
  })

  it("resolves relative and protocol-relative image URLs", () => {
    expect(map(wireItem(1, { image: "/media/a/b.png" })).url).toBe(`${base}/media/a/b.png`)
    expect(map(wireItem(1, { image: "media/a/b.png" }), fields, `${base}/`).url).toBe(`${base}/media/a/b.png`)
    expect(map(wireItem(1, { image: "//cdn.example.com/x.png" })).url).toBe("https://cdn.example.com/x.png")
    expect(map(wireItem(1, { image: "  " })).url).toBe(null)
    expect(map(wireItem(1, { image: 42 })).url).toBe(null)
  })

  it("keeps a URL with another scheme as data (it is checked before any fetch)", () => {
    const record = map(wireItem(1, { image: "javascript:alert(1)" }))
    expect(record.url).toBe("javascript:alert(1)")
  })

  it("the file name is the decoded last path segment, data only", () => {
    expect(map(wireItem(1, { image: "/media/a/red%20shoe.png?v=2" })).filename).toBe("red shoe.png")
    expect(map(wireItem(1, { image: "/media/a/..%2F..%2Fetc%2Fpasswd" })).filename).toBe("../../etc/passwd")
    expect(map(wireItem(1, { image: "/media/a/bad%E0%A4%A.png" })).filename).toBe(null)
  })

  it("takes URL and alt from the configured fields", () => {
    const record = map(wireItem(1, { image_url: "/m/1.jpg", alt_text: "Alt", image: "/wrong.jpg", alt: "wrong" }), {
      url: "image_url",
      alt: "alt_text"
    })
    expect([record.url, record.alt]).toEqual([`${base}/m/1.jpg`, "Alt"])
  })

  it("keeps alt text exactly as sent (spaces, newlines, empty)", () => {
    for (const alt of ["  padded  ", "a\nb", "", "👟 \"quoted\", comma"]) expect(map(wireItem(1, { alt })).alt).toBe(alt)
  })

  it("a malformed item is a Left with every problem and the raw payload", () => {
    const item = { ...wireItem(1), pk: "x", width: -1.5 }
    const mapped = toProductImage("shop", item, fields, base)
    expect(Either.isLeft(mapped)).toBe(true)
    if (Either.isLeft(mapped)) {
      expect(mapped.left.payload).toBe(item)
      expect(mapped.left.error).toMatch(/^unexpected product image shape: /)
      expect(mapped.left.error).toContain("pk: ")
      expect(mapped.left.error).toContain("width: ")
    }
    expect(Either.isLeft(toProductImage("shop", "not an object", fields, base))).toBe(true)
    expect(Either.isLeft(toProductImage("shop", null, fields, base))).toBe(true)
  })
})

describe("Api.isActive", () => {
  it("an image is active unless its status is disabled (or anything but active) or is_active is false", () => {
    expect(isActive(map(wireItem(1)))).toBe(true)
    expect(isActive(map(wireItem(1, { status: "disabled", is_active: false })))).toBe(false)
    expect(isActive(map(wireItem(1, { status: "disabled", is_active: true })))).toBe(false)
    expect(isActive(map(wireItem(1, { status: "active", is_active: false })))).toBe(false)
    expect(isActive(map({ pk: 1, product: 2 }))).toBe(true)
  })
})

describe("Api paths", () => {
  it("every endpoint path keeps Django's trailing slash", () => {
    expect(Object.values(modePaths).every((p) => p.startsWith("product_images/") && p.endsWith("/"))).toBe(true)
    expect(imagePath(12, false)).toBe("product_images/12/")
    expect(imagePath(12, true)).toBe("product_images/12/detailed/")
  })
})
