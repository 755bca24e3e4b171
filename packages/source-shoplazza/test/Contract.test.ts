/**
 * Contract tests from Shoplazza's own published examples (`test/fixtures/vendor-examples/`, copies of
 * `../shared/vendor-examples/shoplazza/`): each file is served as it is by a replay route on
 * 127.0.0.1 shaped like the vendor's endpoint and read by the real source, which must give the rows
 * its content implies; and the simulator must answer in the same shape (the same keys and types).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Server } from "@effetl/core/simulator"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Simulator from "../src/Simulator.js"
import { fastRetry, imageRequests, live, plain, run, runUntil } from "./Harness.js"

const fixtures = path.join(import.meta.dirname, "fixtures", "vendor-examples")
const shared = path.resolve(import.meta.dirname, "../../../../shared/vendor-examples/shoplazza")

const productsList = "openapi-2022-01-products-list.json"
const imagesList = "openapi-2022-01-product-images-list.json"
const imageProperties = "reference-image-properties-example.json"

/** A fixture's bytes, exactly as published. */
const bytes = (file: string): Buffer => fs.readFileSync(path.join(fixtures, file))
/** A fixture, parsed. */
const example = (file: string): unknown => JSON.parse(bytes(file).toString("utf8"))

/** A JSON reply whose body is exactly these bytes. */
const raw = (body: Uint8Array | string, status = 200): Server.Reply => ({
  status,
  headers: { "Content-Type": "application/json; charset=utf-8" },
  body: typeof body === "string" ? Buffer.from(body, "utf8") : body
})

/** A replay server: `route(path, query)` answers each request (undefined: 404 in the vendor's `{"errors":[...]}` shape). */
const replay = (route: (path: string, query: URLSearchParams) => Server.Reply | undefined): Effect.Effect<Server.Served, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      Server.serve({
        name: "shoplazza replay",
        respond: (req, origin) => {
          const url = new URL(req.url ?? "/", origin)
          return route(url.pathname, url.searchParams) ?? Server.json(404, { errors: ["Not Found"] })
        },
        serverErrors: [Server.json(500, { errors: ["Internal Server Error"] })],
        throttled: () => Server.json(429, { errors: ["Too Many Requests"] })
      })
    ),
    (served) => Effect.promise(() => served.close())
  )

const config = (served: Server.Served, more: Record<string, unknown> = {}) => ({
  baseUrl: served.origin,
  accessToken: "replay-token",
  retry: fastRetry,
  rateLimit: false,
  ...more
})

const api = "/openapi/2022-01"

/** A UTC instant as `plain` shows it. */
const at = (iso: string): number => Date.parse(iso)

describe("the vendor examples: the committed copies", () => {
  it("every shared example has a committed copy, byte for byte (when ../shared is there)", () => {
    const committed = fs.readdirSync(fixtures).filter((f) => f.endsWith(".json")).sort()
    expect(committed).toEqual([imagesList, productsList, imageProperties])
    if (!fs.existsSync(shared)) return
    const originals = fs.readdirSync(shared).filter((f) => !f.startsWith(".")).sort()
    expect(originals.filter((f) => f !== "ORIGIN.md")).toEqual(committed)
    for (const file of committed) expect(bytes(file).equals(fs.readFileSync(path.join(shared, file)))).toBe(true)
  })
})

describe("the vendor examples, served as they are, read by the source", () => {
  it.live(`${productsList}: the published list page gives its product's image, with no per-product request`, () =>
    live(Effect.gen(function*() {
      const page = example(productsList) as { cursor: string }
      const served = yield* replay((p, query) => {
        if (p === `${api}/products/count`) return Server.json(200, { count: 1 })
        if (p !== `${api}/products`) return undefined
        // The published page, then the end of the list after its cursor.
        return query.get("cursor") === null
          ? raw(bytes(productsList))
          : query.get("cursor") === page.cursor
          ? Server.json(200, { cursor: "", pre_cursor: page.cursor, products: [] })
          : undefined
      })
      const result = yield* run(config(served))
      expect(result.records.map(plain)).toEqual([{
        source: "shoplazza",
        productId: "c1d5b2a3-fab1-4e26-8582-75d3b2677042",
        imageId: "fe0ae4b6-cb7b-4d1c-a7f0-727750b73d16",
        position: 1,
        url: "https://cdn.shoplazza.com/shirt.png",
        filename: "shirt.png",
        width: 100,
        height: 100,
        alt: "",
        contentHash: null,
        createdAt: at("2022-01-10T06:11:45Z"),
        updatedAt: at("2022-01-10T06:11:45Z"),
        extra: {}
      }])
      expect(result.rejected).toEqual([])
      expect(imageRequests(served.requests().byPath)).toBe(0)
      expect(served.requests().byPath[`${api}/products`]).toBe(2)
      // The high-water mark is the product's updated_at.
      expect(Option.getOrThrow(result.last)).toEqual({
        kind: "cursor",
        value: { highWater: "2022-01-10T06:11:45.000Z", atMark: { "c1d5b2a3-fab1-4e26-8582-75d3b2677042": "2022-01-10T06:11:45.000Z" } }
      })
    })))

  it.live(`${productsList}: a shop that answers the same page whatever the cursor is an ApiError, not a loop`, () =>
    live(Effect.gen(function*() {
      const served = yield* replay((p) => (p === `${api}/products` ? raw(bytes(productsList)) : p === `${api}/products/count` ? Server.json(200, { count: 1 }) : undefined))
      const { error, result } = yield* runUntil(config(served))
      expect(Option.getOrThrow(error)).toMatchObject({ _tag: "ApiError", source: "shoplazza" })
      expect(Option.getOrThrow(error).message).toContain("gave the same cursor again")
      expect(served.requests().byPath[`${api}/products`]).toBe(2)
      // The product was emitted once, before the repeat was seen.
      expect(result.records.map((r) => r.imageId)).toEqual(["fe0ae4b6-cb7b-4d1c-a7f0-727750b73d16"].slice(0, result.records.length))
    })))

  const imagesProduct = "91d50761-949f-4917-a5d3-2c4b586708e7"
  const imagesRow = {
    source: "shoplazza",
    productId: imagesProduct,
    imageId: "df63c505-074f-47a7-ba4d-b624a281258e",
    position: 1,
    url: "https://cdn.shoplazza.com/example.png",
    filename: "example.png",
    width: 480,
    height: 360,
    alt: "Image",
    contentHash: null,
    createdAt: at("2018-10-31T17:02:19Z"),
    updatedAt: at("2018-10-31T17:02:19Z"),
    extra: {}
  }

  it.live(`${imagesList}: read by productIds`, () =>
    live(Effect.gen(function*() {
      const served = yield* replay((p) => (p === `${api}/products/${imagesProduct}/images` ? raw(bytes(imagesList)) : undefined))
      const result = yield* run(config(served, { productIds: [imagesProduct] }))
      expect(result.records.map(plain)).toEqual([imagesRow])
      expect(result.rejected).toEqual([])
    })))

  it.live(`${imagesList}: read for a product the list gives without images`, () =>
    live(Effect.gen(function*() {
      const served = yield* replay((p) => {
        if (p === `${api}/products`) return Server.json(200, { cursor: "", pre_cursor: "", products: [{ id: imagesProduct, updated_at: "2018-10-31T13:02:19-04:00" }] })
        if (p === `${api}/products/count`) return Server.json(200, { count: 1 })
        return p === `${api}/products/${imagesProduct}/images` ? raw(bytes(imagesList)) : undefined
      })
      const result = yield* run(config(served))
      expect(result.records.map(plain)).toEqual([imagesRow])
      expect(imageRequests(served.requests().byPath)).toBe(1)
      expect(Option.getOrThrow(result.last).value).toEqual({ highWater: "2018-10-31T17:02:19.000Z", atMark: { [imagesProduct]: "2018-10-31T17:02:19.000Z" } })
    })))

  it.live(`${imageProperties}: one image (no product_id) in a product's images answer belongs to that product`, () =>
    live(Effect.gen(function*() {
      const product = "636a07da-39eb-4829-bde9-b65fae1c28b0"
      // The published object, byte for byte, as the one element of the images answer.
      const body = Buffer.concat([Buffer.from("{\"images\":[", "utf8"), bytes(imageProperties), Buffer.from("]}", "utf8")])
      const served = yield* replay((p) => (p === `${api}/products/${product}/images` ? raw(body) : undefined))
      const result = yield* run(config(served, { productIds: [product] }))
      expect(result.records.map(plain)).toEqual([{
        source: "shoplazza",
        productId: product,
        imageId: "91d032e7-bbc8-47e4-8668-9ba6fe714de6",
        position: 1,
        url: "https://cdn.shoplazza.com/efd33b921cacd5311a32dd03a9bc8740.png",
        filename: "efd33b921cacd5311a32dd03a9bc8740.png",
        width: 1588,
        height: 2246,
        alt: "",
        contentHash: null,
        createdAt: at("2024-04-08T07:13:28Z"),
        updatedAt: at("2024-04-08T07:13:28Z"),
        extra: {}
      }])
    })))

  it.live("the error bodies of the API reference ({\"error\": ...} and {\"errors\": [...]}) are the message of the error", () =>
    live(Effect.gen(function*() {
      for (const body of [{ error: "store is not active" }, { errors: ["No Context"] }]) {
        const served = yield* replay(() => Server.json(400, body))
        const { error } = yield* runUntil(config(served))
        const failure = Option.getOrThrow(error)
        expect(failure).toMatchObject({ _tag: "ApiError", status: 400 })
        expect(failure.message).toContain("error" in body ? body.error : body.errors[0])
      }
    })))
})

// ---------------------------------------------------------------------------------------------
// The simulator against the same examples
// ---------------------------------------------------------------------------------------------

/** What a JSON value is, for comparing shapes. */
const kind = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v)

/**
 * Where `actual` does not have the shape of `example`: the same keys (all of them, or, with `subset`,
 * at least the example's), the same JSON types, recursively (every element of an array against the
 * example's first). A path in `nullable` may be null on either side (an array element is `[]`).
 */
const shapeDiff = (example: unknown, actual: unknown, nullable: ReadonlySet<string>, subset = false, at = "$"): Array<string> => {
  if ((example === null || actual === null) && nullable.has(at)) return []
  const [e, a] = [kind(example), kind(actual)]
  if (e !== a) return [`${at}: ${e} in the example, ${a} from the simulator`]
  if (e === "array") {
    const first = (example as ReadonlyArray<unknown>)[0]
    return first === undefined ? [] : (actual as ReadonlyArray<unknown>).flatMap((item) => shapeDiff(first, item, nullable, subset, `${at}[]`))
  }
  if (e !== "object") return []
  const ex = example as Record<string, unknown>
  const ac = actual as Record<string, unknown>
  const missing = Object.keys(ex).filter((k) => !(k in ac)).map((k) => `${at}.${k}: missing from the simulator`)
  const extra = subset ? [] : Object.keys(ac).filter((k) => !(k in ex)).map((k) => `${at}.${k}: not in the example`)
  return [...missing, ...extra, ...Object.keys(ex).filter((k) => k in ac).flatMap((k) => shapeDiff(ex[k], ac[k], nullable, subset, `${at}.${k}`))]
}

/** Where the example itself says null (an unpublished product, a variant without its own image), or a product has no main image. */
const nullable = new Set(["$.products[].published_at", "$.products[].image", "$.products[].variants[].image"])

const fetchJson = (sim: Simulator.ShoplazzaSimulator, route: string) =>
  Effect.promise(() => fetch(`${sim.url}${api}/${route}`, { headers: { "access-token": sim.accessToken } }).then((r) => r.json() as Promise<unknown>))

describe("the simulator answers in the shape of the vendor examples", () => {
  it.live(`the product list has the keys and types of ${productsList}, every product and image of it`, () =>
    Effect.scoped(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: false })
      const published = example(productsList)
      for (const query of ["per_page=7", `per_page=7&cursor=${encodeURIComponent(Buffer.from(`${sim.catalogue[6]!.created_at}#${sim.catalogue[6]!.id}`).toString("base64"))}`, "per_page=250"]) {
        const page = yield* fetchJson(sim, `products?${query}`)
        expect(shapeDiff(published, page, nullable)).toEqual([])
      }
      // What the source asks for: the same keys, trimmed to the fields, with the same types.
      const trimmed = (yield* fetchJson(sim, "products?per_page=250&fields=id,updated_at,images")) as { products: Array<Record<string, unknown>> }
      const publishedProduct = (published as { products: Array<Record<string, unknown>> }).products[0]!
      const { id, updated_at, images } = publishedProduct
      expect(shapeDiff({ ...published as object, products: [{ id, updated_at, images }] }, trimmed, nullable)).toEqual([])
      // Products with no image and unpublished ones are there too, so the nullable paths were exercised.
      const all = (yield* fetchJson(sim, "products?per_page=250")) as { products: Array<Record<string, unknown>> }
      expect(all.products.some((p) => p["image"] === null)).toBe(true)
      expect(all.products.some((p) => p["published_at"] === null)).toBe(true)
      expect(all.products.some((p) => p["published_at"] !== null)).toBe(true)
    })))

  it.live(`a product's images have the keys and types of ${imagesList}, and those of ${imageProperties}`, () =>
    Effect.scoped(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: false })
      const product = sim.catalogue.find((p) => p.images.length >= 2)!
      const answer = (yield* fetchJson(sim, `products/${product.id}/images`)) as { images: Array<unknown> }
      expect(answer.images.length).toBe(product.images.length)
      expect(shapeDiff(example(imagesList), answer, nullable)).toEqual([])
      // The reference's image object leaves out product_id, which the list answer has: every key it has is there, with its type.
      for (const image of answer.images) expect(shapeDiff(example(imageProperties), image, nullable, true)).toEqual([])
    })))
})
