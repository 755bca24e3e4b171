/**
 * Contract tests from Acceo's own help page sample (test/fixtures/vendor-examples/, copies of
 * ../shared/vendor-examples/acceo/ and of the XML sample on the seed page): served as it is by a
 * replay route on 127.0.0.1 shaped like the vendor's endpoints, read by the real source through core's
 * SourceHarness, and the simulator checked to answer in the same shape.
 */
import * as fs from "node:fs"
import type * as http from "node:http"
import * as path from "node:path"
import { ApiError } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { decodeEnvelope, mapProduct, parseBody, parseXml } from "../src/Api.js"
import * as Simulator from "../src/Simulator.js"
import { fastRetry, live, runUntil, tinyServer } from "./Harness.js"
import { WireShape } from "@effetl/core/testing"

const fixtures = path.join(import.meta.dirname, "fixtures/vendor-examples")
const sharedRoot = path.resolve(import.meta.dirname, "../../../../shared")
const sampleJson = fs.readFileSync(path.join(fixtures, "helppage-products-images-sample.json"), "utf8")
const sampleXml = fs.readFileSync(path.join(fixtures, "helppage-products-images-sample.xml"), "utf8")
const apiKey = "replay-key"

/** The parsed JSON sample (its integers are all small). */
const sample = JSON.parse(sampleJson) as { product: Array<Record<string, unknown>> } & Record<string, unknown>

/**
 * The vendor's routes, every one answering with the help page's sample as it is (JSON or XML by
 * `Accept`, as ASP.NET Web API negotiates), 401 without the key, 404 for any other path.
 */
const replay = (url: URL, _seen: number, headers: http.IncomingHttpHeaders) => {
  if (headers.authorization !== `Bearer ${apiKey}`) {
    return { status: 401, body: JSON.stringify({ Message: "Authorization has been denied for this request." }) }
  }
  if (!/^\/products\/images(?:\/(?:URL\/)?\d+)?$/.test(url.pathname)) {
    return { status: 404, body: JSON.stringify({ Message: `No HTTP resource was found that matches the request URI '${url.href}'.` }) }
  }
  return (headers.accept ?? "").includes("xml")
    ? { type: "application/xml; charset=utf-8", body: sampleXml }
    : { type: "application/json; charset=utf-8", body: sampleJson }
}

describe("Acceo's help page sample: the committed copies", () => {
  it("equal ../shared's JSON sample and the seed page's XML sample, when ../shared is present", () => {
    const origin = fs.readFileSync(path.join(fixtures, "ORIGIN.md"), "utf8")
    const committed = fs.readdirSync(fixtures).filter((f) => f !== "ORIGIN.md").sort()
    expect(committed).toEqual(["helppage-products-images-sample.json", "helppage-products-images-sample.xml"])
    for (const file of committed) expect(origin).toContain(`\`${file}\``)
    if (!fs.existsSync(sharedRoot)) {
      console.info(`${sharedRoot} is not here: the committed copies are used as they are`)
      return
    }
    const examples = path.join(sharedRoot, "vendor-examples/acceo")
    expect(fs.readdirSync(examples)).toEqual(["helppage-products-images-sample.json"])
    expect(sampleJson).toBe(fs.readFileSync(path.join(examples, "helppage-products-images-sample.json"), "utf8"))
    const seed = fs.readFileSync(path.join(sharedRoot, "seeds/000_dfbbdad4d97d5c36.txt"), "utf8")
    const from = seed.indexOf("<result ")
    expect(`${seed.slice(from, seed.indexOf("</result>", from) + "</result>".length)}\n`).toBe(sampleXml)
  })
})

describe("Acceo's help page sample read by the source (replay server on 127.0.0.1)", () => {
  const cases = [
    { name: "the change feed", config: {} },
    { name: "products by id (products/images/{id})", config: { mode: "products", productIds: ["1"] } },
    { name: "products by id (products/images/URL/{id})", config: { mode: "products", productIds: ["1"], idsEndpoint: "url", images: "url" } }
  ]
  for (const format of ["json", "xml"] as const) {
    for (const { config, name } of cases) {
      it.live(`${format}, ${name}: returncode 4 fails the run as an ApiError naming the code and the message; its two warnings are counted`, () =>
        live(Effect.gen(function*() {
          const server = yield* tinyServer(replay)
          const { error, result } = yield* runUntil({ baseUrl: server.url, apiKey, retry: fastRetry, format, ...config })
          const failure = Option.getOrThrow(error)
          expect(failure).toBeInstanceOf(ApiError)
          const apiError = failure as ApiError
          expect(apiError.code).toBe("4")
          expect(apiError.vendorMessage).toBe("sample string 5")
          expect(apiError.message).toMatch(/^source 'acceo': the API answered GET http:\/\/127\.0\.0\.1:\d+\/products\/images\S* with returncode 4 \(sample string 5\)$/)
          // Nothing of an answer that is not a success is emitted, and it is asked for once (not retried).
          expect(result.records).toEqual([])
          expect(server.requests.length).toBe(1)
          expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${apiKey}`)
          expect(server.requests[0]!.headers.accept).toBe(format === "xml" ? "application/xml" : "application/json")
          expect(result.warnings).toBe(2)
          expect(result.logs.filter((l) => l.startsWith("WARN"))).toEqual([
            "WARN source 'acceo': the API warned (data may be partly lost): sample string 1",
            "WARN source 'acceo': the API warned (data may be partly lost): sample string 2"
          ])
        })))
    }
  }

  it("the sample decodes as it is, JSON and XML alike; what its entries map to in each image mode", () => {
    const [json, xml] = [sampleJson, sampleXml].map((text) => {
      const envelope = decodeEnvelope(Either.getOrThrow(parseBody(text)))
      return Either.getOrThrow(envelope)
    })
    for (const envelope of [json!, xml!]) {
      expect({ ...envelope, product: envelope.product?.length }).toEqual({
        product: 2,
        token: "sample string 1",
        count: 2,
        queuecount: 3,
        returncode: 4,
        returnmsg: "sample string 5",
        warnings: ["sample string 1", "sample string 2"],
        version: "sample string 6"
      })
      const options = { source: "acceo", maxImageBytes: 1024 }
      // URL images: every imagesURL entry (two per product).
      const urls = envelope.product!.map((entry) => mapProduct(entry, { ...options, images: "url" }))
      expect(urls.flatMap((m) => m.records.map((r) => [r.productId, r.imageId, r.position, r.filename, r.url]))).toEqual(
        Array.from({ length: 4 }, () => ["1", "sample string 2", 1, "sample string 2", "sample string 3"])
      )
      expect(urls.flatMap((m) => m.rejected)).toEqual([])
      // Binary images: "sample string 3" is not base64, so each is a dead letter saying so, not a record.
      const binary = envelope.product!.map((entry) => mapProduct(entry, { ...options, images: "binary" }))
      expect(binary.flatMap((m) => m.records)).toEqual([])
      expect(binary.flatMap((m) => m.rejected.map((r) => r.error))).toEqual(
        Array.from({ length: 4 }, () => "product 1: image \"sample string 2\": binaryimage is not valid base64 (length 15 is not a multiple of 4)")
      )
    }
  })
})

describe("the simulator answers in the sample's shape", () => {
  // The simulator writes the image list it does not fill as null (as Json.NET does with a null
  // collection): an assumption, since the sample fills both.
  const nullable = ["product[].imagesURL", "product[].images"]
  const jsonShape = WireShape.infer(sample, { nullable })
  // The URL route: the same envelope, with the URL where the other routes have binaryimage.
  const urlRouteSample = {
    ...sample,
    product: sample.product.map((p) => ({
      ...p,
      images: { image: (p.imagesURL as Array<Record<string, unknown>>).map(({ imageURL, ...rest }) => ({ ...rest, imageURL })) }
    }))
  }
  const urlRouteShape = WireShape.infer(urlRouteSample, { nullable })
  // XML: the same tree, through the source's own XML reader; an element that is not there is left out.
  const xmlTree = Either.getOrThrow(parseXml(sampleXml))
  // (A product without images is an empty <images></images>.)
  const xmlOptional = ["product", "warnings", "product[].imagesURL", "product[].images", "product[].images.image"]
  const xmlShape = WireShape.infer(xmlTree, { optional: xmlOptional })
  const urlRouteXmlShape = WireShape.infer(
    Either.getOrThrow(parseXml(sampleXml.replace(/<imagesURL [^>]*\/>\n\s*/g, "").replaceAll("binaryimage=", "imageURL="))),
    { optional: xmlOptional }
  )

  const get = (sim: Simulator.AcceoSimulator, route: string, xml: boolean) =>
    Effect.promise(() =>
      fetch(`${sim.url}${route}`, { headers: { [sim.auth.header]: sim.auth.value, Accept: xml ? "application/xml" : "application/json" } })
        .then((r) => r.text())
    )

  it.live("feed lots and products by id, binary or URL images: the sample's keys and types, JSON and XML", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const product = sim.catalogue.find((p) => p.images.length > 0)!.product_id
      const routes = [
        "/products/images?count=3",
        "/products/images?count=500",
        "/products/images?count=2&options=URL",
        `/products/images?token=${sim.feed().at(-1)!.token}`,
        `/products/images/${product}`,
        `/products/images/${product}?options=URL`,
        "/products/images/424242"
      ]
      for (const route of routes) {
        expect(WireShape.mismatches(jsonShape, JSON.parse(yield* get(sim, route, false))), route).toEqual([])
        expect(WireShape.mismatches(xmlShape, Either.getOrThrow(parseXml(yield* get(sim, route, true)))), `${route} (XML)`).toEqual([])
      }
      const urlRoute = `/products/images/URL/${product}`
      expect(WireShape.mismatches(urlRouteShape, JSON.parse(yield* get(sim, urlRoute, false)))).toEqual([])
      expect(WireShape.mismatches(urlRouteXmlShape, Either.getOrThrow(parseXml(yield* get(sim, urlRoute, true))))).toEqual([])
      // And not by luck: the URL route's answer is not the images route's shape.
      expect(WireShape.mismatches(jsonShape, JSON.parse(yield* get(sim, urlRoute, false))).length).toBeGreaterThan(0)
    })))
})
