/**
 * Contract tests from BigCommerce's own published examples (test/fixtures/vendor-examples/, copies of
 * ../shared/vendor-examples/bigcommerce/):
 * - each file is served as it is by a replay route on 127.0.0.1 shaped like the vendor's endpoint and
 *   read by the real source through SourceHarness, giving the rows its content implies;
 * - the simulator answers in the same shape: the same keys, with values of the same JSON types,
 *   recursively;
 * - the committed copies equal the shared ones whenever ../shared exists.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { toProductImage } from "../src/Api.js"
import * as Simulator from "../src/Simulator.js"
import { live, plain, run } from "./Harness.js"
import { raw, startReplay } from "./Replay.js"

const fixtures = path.join(import.meta.dirname, "fixtures", "vendor-examples")
const shared = path.resolve(import.meta.dirname, "..", "..", "..", "..", "shared", "vendor-examples", "bigcommerce")

const bytes = (name: string): Uint8Array => fs.readFileSync(path.join(fixtures, name))
const parsed = (name: string): any => JSON.parse(fs.readFileSync(path.join(fixtures, name), "utf8"))

/** The same file's bytes inside a JSON array: a one-item list endpoint answer whose item is the file as it is. */
const asList = (name: string): Uint8Array => Buffer.concat([Buffer.from("["), bytes(name), Buffer.from("]")])

/** The record BigCommerce's image `wire` of product `productId` stands for (zoom URL), built from the example's own fields. */
const implied = (wire: Record<string, any>, source = "bigcommerce"): Record<string, unknown> => ({
  source,
  productId: String(wire.product_id),
  imageId: String(wire.id),
  position: wire.sort_order,
  url: wire.zoom_url ?? null,
  filename: wire.image_file,
  width: null,
  height: null,
  alt: wire.description,
  contentHash: null,
  createdAt: Date.parse(wire.date_created),
  updatedAt: null,
  extra: {
    isThumbnail: wire.is_thumbnail,
    zoomUrl: wire.zoom_url ?? null,
    standardUrl: wire.standard_url ?? null,
    thumbnailUrl: wire.thumbnail_url ?? null,
    tinyUrl: wire.tiny_url ?? null
  }
})

const config = (url: string, more: Record<string, unknown> = {}) => ({ baseUrl: url, storeHash: "abc123", accessToken: "t0ken-abc", ...more })

describe("bigcommerce source: the vendor's published examples, replayed", () => {
  it.live("List Products + List Product Images + the image count: a full sync gives product 32's two images, total 105, highWater of the list", () =>
    live(Effect.gen(function*() {
      const server = yield* startReplay({
        "/products/images/count": () => raw(bytes("v2-product-images-count.json")),
        "/products": (q) => (q.get("min_id") === "1" ? raw(bytes("v2-products-list.json")) : undefined),
        "/products/32/images": (q) => (q.get("page") === "1" ? raw(bytes("v2-product-images-list.json")) : undefined),
        "/products/33/images": () => undefined // no published list for product 33: BigCommerce's 204
      })
      const result = yield* run(config(server.url))
      const images = parsed("v2-product-images-list.json") as Array<Record<string, any>>
      expect(result.records.map(plain)).toEqual(images.map((w) => implied(w)))
      // Spelled out: what the content says.
      expect(result.records.map((r) => [r.productId, r.imageId, r.position, r.alt, r.createdAt?.toISOString(), r.extra.isThumbnail])).toEqual([
        ["32", "247", 0, null, "2012-09-24T01:14:30.000Z", true],
        ["32", "248", 1, null, "2012-09-24T01:17:14.000Z", false]
      ])
      expect(result.records[0]!.url).toBe(images[0]!.zoom_url)
      expect(result.rejected).toEqual([])
      expect(result.totals).toEqual([105])
      const cursor = Option.getOrThrow(result.last)
      expect(cursor).toEqual({
        kind: "cursor",
        value: { scope: "every product", complete: true, mark: expect.any(String), highWater: "2012-09-24T05:28:02.000Z" }
      })
      const prefix = "/stores/abc123/v2"
      expect(server.log()).toEqual([
        `${prefix}/products/images/count`,
        `${prefix}/products?min_id=1&include=id%2Cdate_modified&limit=250`,
        `${prefix}/products/32/images?page=1&limit=250`,
        `${prefix}/products/33/images?page=1&limit=250`
      ])
    })))

  it.live("List Products as the incremental answer: min_date_modified is sent, both products are read, the highest date_modified is kept", () =>
    live(Effect.gen(function*() {
      const server = yield* startReplay({
        "/products": (q) => (q.get("min_id") === "1" && q.get("min_date_modified") !== null ? raw(bytes("v2-products-list.json")) : undefined),
        "/products/32/images": (q) => (q.get("page") === "1" ? raw(bytes("v2-product-images-list.json")) : undefined),
        "/products/33/images": () => undefined
      })
      const previous = { scope: "every product", complete: true, mark: "2012-09-24T00:00:00.000Z", highWater: "2012-09-23T23:59:00.000Z" }
      const result = yield* run(config(server.url), { checkpoint: Option.some({ kind: "cursor", value: previous }), resumed: false })
      expect(result.records.map((r) => r.imageId)).toEqual(["247", "248"])
      expect(server.log()[0]).toBe(
        "/stores/abc123/v2/products?min_id=1&min_date_modified=Sun%2C+23+Sep+2012+23%3A59%3A59+%2B0000&include=id%2Cdate_modified&limit=250"
      )
      expect(Option.getOrThrow(result.last).value).toMatchObject({ highWater: "2012-09-24T05:28:02.000Z" })
    })))

  it.live("Get a Product Image, served as the only item of product 32's list: one row with the cdn.bcapp.dev zoom URL", () =>
    live(Effect.gen(function*() {
      const server = yield* startReplay({
        "/products/images/count": () => raw(bytes("v2-product-images-count.json")),
        "/products/32/images": (q) => (q.get("page") === "1" ? raw(asList("v2-product-image-get.json")) : undefined)
      })
      const result = yield* run(config(server.url, { productIds: [32] }))
      expect(result.records.map(plain)).toEqual([implied(parsed("v2-product-image-get.json"))])
      expect(result.records[0]!.url).toMatch(/^https:\/\/cdn\.bcapp\.dev\/.*\.1280\.1280\.jpg\?c=1$/)
    })))

  it.live("Create a Product Image's answer, decoded by the image schema: one row with no URL (the example has none)", () =>
    live(Effect.gen(function*() {
      const created = parsed("v2-product-image-create.json")
      const mapped = toProductImage("bigcommerce", "29", created, "zoom")
      expect(Either.isRight(mapped)).toBe(true)
      const server = yield* startReplay({
        "/products/images/count": () => raw(bytes("v2-product-images-count.json")),
        "/products/29/images": (q) => (q.get("page") === "1" ? raw(asList("v2-product-image-create.json")) : undefined)
      })
      const result = yield* run(config(server.url, { productIds: [29] }))
      expect(result.records.map(plain)).toEqual([implied(created)])
      expect(result.records.map((r) => [r.imageId, r.url, r.filename, r.alt, r.createdAt?.toISOString()])).toEqual([
        ["116", null, "p/022/astonishing-x-men-1-100k__36562.jpg", "", "2012-12-21T18:54:04.000Z"]
      ])
    })))
})

// ---------------------------------------------------------------------------------------------
// The simulator against the examples: keys and JSON types, recursively
// ---------------------------------------------------------------------------------------------

/** A JSON value's shape: for objects their keys' shapes, for arrays their items' shape, else the set of types seen. */
type Shape = { readonly types: Set<string>; readonly keys?: Map<string, Shape>; readonly items?: Shape }

const typeOf = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v)

/** The shape of several example values, merged (a key's types are every type its examples had). */
const shapeOf = (values: ReadonlyArray<unknown>): Shape => {
  const types = new Set(values.map(typeOf))
  const objects = values.filter((v): v is Record<string, unknown> => typeOf(v) === "object")
  const arrays = values.filter((v): v is Array<unknown> => Array.isArray(v))
  const shape: { types: Set<string>; keys?: Map<string, Shape>; items?: Shape } = { types }
  if (objects.length > 0) {
    const names = new Set(objects.flatMap((o) => Object.keys(o)))
    shape.keys = new Map([...names].map((k) => [k, shapeOf(objects.filter((o) => k in o).map((o) => o[k]))]))
  }
  if (arrays.length > 0 && arrays.some((a) => a.length > 0)) shape.items = shapeOf(arrays.flat())
  return shape
}

/** Where a value departs from a shape: missing or extra keys, or a type the examples never had. */
const mismatches = (shape: Shape, value: unknown, at = "$"): Array<string> => {
  const type = typeOf(value)
  if (!shape.types.has(type)) return [`${at}: ${type}, the examples have ${[...shape.types].join(" | ")}`]
  const out: Array<string> = []
  if (type === "object" && shape.keys !== undefined) {
    const obj = value as Record<string, unknown>
    for (const key of shape.keys.keys()) if (!(key in obj)) out.push(`${at}.${key}: missing`)
    for (const key of Object.keys(obj)) {
      const sub = shape.keys.get(key)
      if (sub === undefined) out.push(`${at}.${key}: not in the examples`)
      else out.push(...mismatches(sub, obj[key], `${at}.${key}`))
    }
  }
  if (type === "array" && shape.items !== undefined) (value as Array<unknown>).forEach((item, i) => out.push(...mismatches(shape.items!, item, `${at}[${i}]`)))
  return out
}

const getJson = async (sim: Simulator.BigCommerceSimulator, rest: string): Promise<unknown> => {
  const response = await fetch(`${sim.url}/stores/${sim.storeHash}/v2/${rest}`, { headers: { "X-Auth-Token": sim.accessToken, Accept: "application/json" } })
  expect(response.status).toBe(200)
  return response.json()
}

describe("the simulator answers in the shape of the vendor's examples", () => {
  it.live("GET /products: every product (with images) has the List Products example's keys and types", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const products = (yield* Effect.promise(() => getJson(sim, "products?limit=250"))) as Array<Record<string, unknown>>
      const shape = shapeOf(parsed("v2-products-list.json") as Array<unknown>)
      const withImages = products.filter((p) => p.primary_image !== null)
      expect(withImages.length).toBeGreaterThan(30)
      for (const product of withImages) expect(mismatches(shape, product), `product ${product.id}`).toEqual([])
      // The comparison itself sees a wrong type, a missing key, an extra key and a nested difference.
      const { upc: _upc, ...withoutUpc } = withImages[0]!
      expect(mismatches(shape, { ...withoutUpc, price: 89, extra: 1, brand: { url: 1, resource: "/brands/17" } })).toEqual([
        "$.upc: missing",
        "$.price: number, the examples have string",
        "$.brand.url: number, the examples have string",
        "$.extra: not in the examples"
      ])
      // The assumption for a product with no image: the same keys, primary_image null.
      const bare = products.find((p) => p.primary_image === null)!
      expect(Object.keys(bare)).toEqual(Object.keys(withImages[0]!))
      // include= keeps a subset of the example's keys (plus metadata, as the docs show).
      const trimmed = (yield* Effect.promise(() => getJson(sim, "products?include=id,date_modified"))) as Array<Record<string, unknown>>
      for (const p of trimmed) for (const key of Object.keys(p)) expect(key === "metadata" || shape.keys!.has(key), key).toBe(true)
    })))

  it.live("GET /products/{id}/images, /products/{id}/images/{id} and /products/images/count: the image and count examples' keys and types", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const imageExamples = [...(parsed("v2-product-images-list.json") as Array<unknown>), parsed("v2-product-image-get.json"), parsed("v2-product-image-create.json")]
      const listShape = shapeOf(parsed("v2-product-images-list.json") as Array<unknown>)
      const imageShape = shapeOf(imageExamples)
      // Every list example's keys, with the types any image example had (description: null or a string).
      const shape: Shape = { types: listShape.types, keys: new Map([...listShape.keys!.keys()].map((k) => [k, imageShape.keys!.get(k)!])) }
      let checked = 0
      for (const product of sim.products.filter((p) => p.images.length > 0)) {
        const list = (yield* Effect.promise(() => getJson(sim, `products/${product.id}/images?limit=250`))) as Array<unknown>
        for (const image of list) expect(mismatches(shape, image)).toEqual([])
        checked += list.length
      }
      expect(checked).toBe(sim.catalogue.length)
      // One image: the get example's keys (description typed as any image example had it: null or a string).
      const get = parsed("v2-product-image-get.json") as Record<string, unknown>
      const getShape: Shape = { types: new Set(["object"]), keys: new Map(Object.keys(get).map((k) => [k, imageShape.keys!.get(k)!])) }
      for (const one of sim.catalogue.slice(0, 10)) {
        expect(mismatches(getShape, yield* Effect.promise(() => getJson(sim, `products/${one.product_id}/images/${one.id}`)))).toEqual([])
      }
      expect(mismatches(shapeOf([parsed("v2-product-images-count.json")]), yield* Effect.promise(() => getJson(sim, "products/images/count")))).toEqual([])
      // The create example (the simulator is read-only: a POST is a 405) has the list's keys less the four URLs.
      expect(Object.keys(parsed("v2-product-image-create.json")).every((k) => listShape.keys!.has(k))).toBe(true)
    })))
})

describe("the committed copies of the examples", () => {
  it("equal ../shared/vendor-examples/bigcommerce/ file for file, byte for byte (checked whenever that folder exists)", () => {
    const ours = fs.readdirSync(fixtures).filter((f) => f.endsWith(".json")).sort()
    expect(ours).toEqual([
      "v2-product-image-create.json",
      "v2-product-image-get.json",
      "v2-product-images-count.json",
      "v2-product-images-list.json",
      "v2-products-list.json"
    ])
    expect(fs.readFileSync(path.join(fixtures, "ORIGIN.md"), "utf8")).toContain("e38de6d782fff34fad031afe1fae3886be9f05bb")
    if (!fs.existsSync(shared)) return // a checkout without ../shared: the committed copies stand
    const theirs = fs.readdirSync(shared).filter((f) => f.endsWith(".json")).sort()
    expect(theirs).toEqual(ours)
    for (const name of ours) expect(Buffer.compare(fs.readFileSync(path.join(shared, name)), bytes(name)), name).toBe(0)
  })
})
