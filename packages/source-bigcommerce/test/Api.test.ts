import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Headers from "@effect/platform/Headers"
import { formatRfc2822, parseDate, parseIso8601, parseRfc2822, readQuota, toProductImage } from "../src/Api.js"

const item = (more: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 247,
  product_id: 32,
  image_file: "sample_images/foglinenbeigestripetowel1b.jpg",
  zoom_url: "https://cdn.example.com/products/32/images/247/towel.1431020870.1280.1280.jpg?c=2",
  standard_url: "https://cdn.example.com/products/32/images/247/towel.1431020870.386.513.jpg?c=2",
  thumbnail_url: "https://cdn.example.com/products/32/images/247/towel.1431020870.220.290.jpg?c=2",
  tiny_url: "https://cdn.example.com/products/32/images/247/towel.1431020870.44.58.jpg?c=2",
  is_thumbnail: true,
  sort_order: 0,
  description: "Beige towel",
  date_created: "Thu, 07 May 2015 17:47:48 +0000",
  ...more
})

describe("parseRfc2822", () => {
  it.each([
    ["Mon, 24 Sep 2012 01:14:30 +0000", "2012-09-24T01:14:30.000Z"],
    ["24 Sep 2012 01:14:30 +0000", "2012-09-24T01:14:30.000Z"],
    ["Mon, 24 Sep 2012 03:14:30 +0200", "2012-09-24T01:14:30.000Z"],
    ["Sun, 23 Sep 2012 20:44:30 -0430", "2012-09-24T01:14:30.000Z"],
    ["Mon, 24 Sep 2012 01:14 GMT", "2012-09-24T01:14:00.000Z"],
    ["Thu, 1 Mar 2012 00:00:00 UT", "2012-03-01T00:00:00.000Z"],
    ["Wed, 29 Feb 2012 23:59:59 +0000", "2012-02-29T23:59:59.000Z"]
  ])("%s is %s", (text, iso) => {
    expect(parseRfc2822(text)?.toISOString()).toBe(iso)
  })

  it.each([
    "Tue, 24 Sep 2012 01:14:30 +0000", // 24 Sep 2012 was a Monday
    "Mon, 31 Sep 2012 01:14:30 +0000", // no 31 September
    "Thu, 29 Feb 2013 01:14:30 +0000", // 2013 is no leap year
    "Mon, 24 Sep 2012 24:00:00 +0000",
    "Mon, 24 Sep 2012 01:60:00 +0000",
    "Mon, 24 Sep 2012 01:14:60 +0000",
    "Mon, 24 Sep 2012 01:14:30 +2460",
    "Mon, 24 Sep 2012 01:14:30", // no zone
    "Mon, 24 Sep 2012 01:14:30 EST", // obsolete zones are not accepted
    "2012-09-24T01:14:30Z",
    "Mon, 24 September 2012 01:14:30 +0000",
    "Mon 24 Sep 2012 01:14:30 +0000",
    ""
  ])("%j is not a date", (text) => {
    expect(parseRfc2822(text)).toBeUndefined()
  })
})

describe("parseIso8601 and parseDate", () => {
  it.each([
    ["2012-09-24T01:14:30Z", "2012-09-24T01:14:30.000Z"],
    ["2012-09-24T01:14:30+00:00", "2012-09-24T01:14:30.000Z"],
    ["2012-09-24T03:14:30+02:00", "2012-09-24T01:14:30.000Z"],
    ["2012-09-23T20:44:30-0430", "2012-09-24T01:14:30.000Z"],
    ["2012-09-24 01:14:30.250Z", "2012-09-24T01:14:30.250Z"],
    ["2012-09-24T01:14Z", "2012-09-24T01:14:00.000Z"],
    ["2012-02-29T23:59:59Z", "2012-02-29T23:59:59.000Z"]
  ])("%s is %s", (text, iso) => {
    expect(parseIso8601(text)?.toISOString()).toBe(iso)
    expect(parseDate(text)?.toISOString()).toBe(iso)
  })

  it.each([
    "2012-09-24T01:14:30", // no zone: which one?
    "2012-09-24",
    "2013-02-29T00:00:00Z",
    "2012-13-01T00:00:00Z",
    "2012-09-24T24:00:00Z",
    "2012-09-24T01:14:30+25:00",
    "24/09/2012"
  ])("%j is not a date", (text) => {
    expect(parseIso8601(text)).toBeUndefined()
    expect(parseDate(text)).toBeUndefined()
  })

  it("parseDate takes RFC 2822 first; formatRfc2822 writes what parseRfc2822 reads back", () => {
    expect(parseDate("Mon, 24 Sep 2012 01:14:30 +0000")?.toISOString()).toBe("2012-09-24T01:14:30.000Z")
    const at = new Date(Date.UTC(2024, 1, 29, 7, 5, 9))
    expect(formatRfc2822(at)).toBe("Thu, 29 Feb 2024 07:05:09 +0000")
    expect(parseRfc2822(formatRfc2822(at))?.getTime()).toBe(at.getTime())
  })
})

describe("toProductImage", () => {
  it("maps the V2 fields: id, sort_order, the zoom URL, image_file, description, is_thumbnail, date_created", () => {
    const mapped = toProductImage("bc", "32", item(), "zoom")
    expect(Either.isRight(mapped)).toBe(true)
    const r = Either.getOrThrow(mapped)
    expect({ ...r, createdAt: r.createdAt?.toISOString() }).toEqual({
      source: "bc",
      productId: "32",
      imageId: "247",
      position: 0,
      url: "https://cdn.example.com/products/32/images/247/towel.1431020870.1280.1280.jpg?c=2",
      filename: "sample_images/foglinenbeigestripetowel1b.jpg",
      width: null,
      height: null,
      alt: "Beige towel",
      contentHash: null,
      createdAt: "2015-05-07T17:47:48.000Z",
      updatedAt: null,
      extra: {
        isThumbnail: true,
        zoomUrl: "https://cdn.example.com/products/32/images/247/towel.1431020870.1280.1280.jpg?c=2",
        standardUrl: "https://cdn.example.com/products/32/images/247/towel.1431020870.386.513.jpg?c=2",
        thumbnailUrl: "https://cdn.example.com/products/32/images/247/towel.1431020870.220.290.jpg?c=2",
        tinyUrl: "https://cdn.example.com/products/32/images/247/towel.1431020870.44.58.jpg?c=2"
      }
    })
  })

  it("imageUrl picks the variant; a missing or empty variant is a null url", () => {
    expect(Either.getOrThrow(toProductImage("bc", "32", item(), "tiny")).url).toContain(".44.58.jpg")
    expect(Either.getOrThrow(toProductImage("bc", "32", item({ standard_url: "" }), "standard")).url).toBeNull()
    const none = { ...item() }
    delete none.thumbnail_url
    expect(Either.getOrThrow(toProductImage("bc", "32", none, "thumbnail")).url).toBeNull()
  })

  it("an ISO-8601 date_created is accepted, not a dead letter", () => {
    const mapped = toProductImage("bc", "32", item({ date_created: "2015-05-07T17:47:48+00:00" }), "zoom")
    expect(Either.getOrThrow(mapped).createdAt?.toISOString()).toBe("2015-05-07T17:47:48.000Z")
  })

  it("a null or empty description stays what it was; an image_file that looks like a path escape is kept as data", () => {
    expect(Either.getOrThrow(toProductImage("bc", "32", item({ description: null }), "zoom")).alt).toBeNull()
    expect(Either.getOrThrow(toProductImage("bc", "32", item({ description: "" }), "zoom")).alt).toBe("")
    expect(Either.getOrThrow(toProductImage("bc", "32", item({ image_file: "../../etc/passwd" }), "zoom")).filename).toBe("../../etc/passwd")
  })

  it("a bad date, a wrong shape or an image of another product is a Left with the reason and the raw item", () => {
    const badDate = item({ date_created: "24/09/2012" })
    expect(toProductImage("bc", "32", badDate, "zoom")).toEqual(
      Either.left({ error: "image 247: date_created \"24/09/2012\" is not an RFC 2822 or ISO-8601 date", payload: badDate })
    )
    const badShape = item({ id: "x", is_thumbnail: "yes" })
    const shape = toProductImage("bc", "32", badShape, "zoom")
    expect(Either.isLeft(shape) && shape.left.payload).toBe(badShape)
    expect(Either.isLeft(shape) && shape.left.error).toMatch(/^unexpected product image shape: id: .*; is_thumbnail: /)
    const other = toProductImage("bc", "33", item(), "zoom")
    expect(Either.isLeft(other) && other.left.error).toBe("image 247 says it belongs to product 32, but was listed for product 33")
    expect(Either.isLeft(toProductImage("bc", "32", "nope", "zoom"))).toBe(true)
  })
})

describe("readQuota (the rate limiter's budget reader)", () => {
  it("reads the X-Rate-Limit-* headers as a fixed window's budget", () => {
    const headers = Headers.fromInput({
      "X-Rate-Limit-Requests-Quota": "150",
      "X-Rate-Limit-Requests-Left": "37",
      "X-Rate-Limit-Time-Window-Ms": "30000",
      "X-Rate-Limit-Time-Reset-Ms": "12500"
    })
    expect(readQuota(headers)).toEqual({ remaining: 37, resetMillis: 12500, quota: 150, windowMillis: 30000 })
  })

  it("a 429 carries only the reset; a header that is not a number is not read", () => {
    expect(readQuota(Headers.fromInput({ "X-Rate-Limit-Time-Reset-Ms": "800", "X-Rate-Limit-Requests-Left": "lots" }))).toEqual({ resetMillis: 800 })
    expect(readQuota(Headers.empty)).toEqual({})
  })
})
