import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { filterTime, imagesPath, instantOf, isUuid, toProductImage, urlOf } from "../src/Api.js"

/** The image of the vendor's own example response. */
const vendorExample = {
  id: "91d032e7-bbc8-47e4-8668-9ba6fe714de6",
  product_id: "636a07da-39eb-4829-bde9-b65fae1c28b0",
  position: 1,
  src: "//cdn.shoplazza.com/efd33b921cacd5311a32dd03a9bc8740.png",
  width: 1588,
  height: 2246,
  alt: "",
  created_at: "2024-04-08T07:13:28Z",
  updated_at: "2024-04-08T07:13:28Z"
}

describe("Api.toProductImage", () => {
  it("maps the vendor's example image", () => {
    const record = Either.getOrThrow(toProductImage("shop", vendorExample.product_id, vendorExample, "https"))
    expect(record).toMatchObject({
      source: "shop",
      productId: "636a07da-39eb-4829-bde9-b65fae1c28b0",
      imageId: "91d032e7-bbc8-47e4-8668-9ba6fe714de6",
      position: 1,
      url: "https://cdn.shoplazza.com/efd33b921cacd5311a32dd03a9bc8740.png",
      filename: "efd33b921cacd5311a32dd03a9bc8740.png",
      width: 1588,
      height: 2246,
      alt: "",
      contentHash: null,
      extra: {}
    })
    expect(record.createdAt!.toISOString()).toBe("2024-04-08T07:13:28.000Z")
    expect(record.updatedAt!.toISOString()).toBe("2024-04-08T07:13:28.000Z")
  })

  it("dates with an offset are UTC instants", () => {
    const record = Either.getOrThrow(toProductImage("s", vendorExample.product_id, { ...vendorExample, created_at: "2024-04-08T10:13:28+03:00" }, "https"))
    expect(record.createdAt!.toISOString()).toBe("2024-04-08T07:13:28.000Z")
  })

  it("missing optional fields are null; position defaults to 0", () => {
    const record = Either.getOrThrow(toProductImage("s", "p", { id: "a", product_id: "p" }, "https"))
    expect(record).toMatchObject({ position: 0, url: null, filename: null, width: null, height: null, alt: null, createdAt: null, updatedAt: null })
  })

  it("an image of the wrong shape is a Left with the path and the raw payload", () => {
    const bad = { ...vendorExample, position: "first" }
    const mapped = toProductImage("s", bad.product_id, bad, "https")
    expect(Either.isLeft(mapped)).toBe(true)
    const left = Either.getLeft(mapped)
    expect(left._tag === "Some" && left.value.error).toContain("position")
    expect(left._tag === "Some" && left.value.payload).toBe(bad)
  })
})

describe("Api.toProductImage: the product an image belongs to", () => {
  it("an image without product_id belongs to the product it was read from", () => {
    const { product_id: _p, ...withoutProduct } = vendorExample
    const record = Either.getOrThrow(toProductImage("s", "636a07da-39eb-4829-bde9-b65fae1c28b0", withoutProduct, "https"))
    expect(record.productId).toBe("636a07da-39eb-4829-bde9-b65fae1c28b0")
    expect(Either.isRight(toProductImage("s", "636a07da-39eb-4829-bde9-b65fae1c28b0", { ...withoutProduct, product_id: null }, "https"))).toBe(true)
  })

  it("an image that names another product is a Left naming both", () => {
    const mapped = toProductImage("s", "11111111-1111-4111-8111-111111111111", vendorExample, "https")
    expect(Either.isLeft(mapped)).toBe(true)
    const left = Either.getLeft(mapped)
    expect(left._tag === "Some" && left.value.error).toBe(`image ${vendorExample.id} says it belongs to product ${vendorExample.product_id}`)
  })
})

describe("Api.instantOf and filterTime", () => {
  it("reads ISO-8601 updated_at values (an offset is honoured) and refuses anything else", () => {
    expect(instantOf("2024-04-08T07:13:28Z")).toBe(Date.UTC(2024, 3, 8, 7, 13, 28))
    expect(instantOf("2018-10-31T13:02:19-04:00")).toBe(Date.UTC(2018, 9, 31, 17, 2, 19))
    for (const bad of [undefined, null, "", "yesterday", "1712560408", "2024-13-45T99:99:99Z"]) expect(instantOf(bad)).toBeUndefined()
  })

  it("writes updated_at_min to the second, rounded down", () => {
    expect(filterTime(Date.UTC(2024, 3, 8, 7, 13, 28, 999))).toBe("2024-04-08T07:13:28Z")
    expect(filterTime(Date.UTC(2024, 3, 8, 7, 13, 28) - 1000)).toBe("2024-04-08T07:13:27Z")
  })
})

describe("Api.urlOf", () => {
  it("gives a protocol-relative src the configured scheme and keeps absolute URLs as sent", () => {
    expect(urlOf("//cdn.shoplazza.com/a.png", "https")).toBe("https://cdn.shoplazza.com/a.png")
    expect(urlOf("//127.0.0.1:8080/cdn/a.png", "http")).toBe("http://127.0.0.1:8080/cdn/a.png")
    expect(urlOf("https://img.example.com/a.png", "http")).toBe("https://img.example.com/a.png")
    expect(urlOf("", "https")).toBeNull()
    expect(urlOf(null, "https")).toBeNull()
  })
})

describe("Api ids and paths", () => {
  it("checks UUIDs and escapes ids in paths", () => {
    expect(isUuid("9fb9f3c6-2300-42c1-8593-d9008d7cfc09")).toBe(true)
    expect(isUuid("9FB9F3C6-2300-42C1-8593-D9008D7CFC09")).toBe(true)
    expect(isUuid("12345")).toBe(false)
    expect(imagesPath("a/b")).toBe("products/a%2Fb/images")
  })
})
