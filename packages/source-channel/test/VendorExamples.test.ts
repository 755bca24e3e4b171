/**
 * Contract tests from Akinon's own published examples (test/fixtures/vendor-examples/, copies of
 * ../shared/vendor-examples/akinon/): each is served as it is by a replay route on 127.0.0.1 shaped
 * like the vendor's endpoint and read by the real source through core's SourceHarness, and the
 * simulator is checked to answer in the same shape.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { SourceHarness } from "@effetl/core/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { toProductImage } from "../src/Api.js"
import * as Simulator from "../src/Simulator.js"
import { fastRetry, type Handler, plain, run, sendJson, tinyServer } from "./Harness.js"
import { WireShape } from "@effetl/core/testing"

const fixtures = path.join(import.meta.dirname, "fixtures/vendor-examples")
const shared = path.resolve(import.meta.dirname, "../../../../shared/vendor-examples/akinon")
const exampleFiles = ["pim-product-image-list.json", "saleschannel-product-image-retrieve.json", "saleschannel-product-images-list.json"]

/** A committed example, as text (served byte for byte) and parsed. */
const example = (name: string): { readonly text: string; readonly json: Record<string, unknown> } => {
  const text = fs.readFileSync(path.join(fixtures, name), "utf8")
  return { text, json: JSON.parse(text) as Record<string, unknown> }
}

const list = example("saleschannel-product-images-list.json")
const retrieve = example("saleschannel-product-image-retrieve.json")
const pim = example("pim-product-image-list.json")

const channelId = 5
const token = "replay-token"

/**
 * The vendor's endpoints, answering with the examples as they are: the DRF list (`product_images/`
 * and `detailed/`, page 1 only, 404 `Invalid page.` past it), one image (`{id}/` and `{id}/detailed/`,
 * the retrieve example for its own pk, 404 `Not found.` for others), the PIM media list, and DRF's 401
 * without the token.
 */
const replay: Handler = (req, res, origin) => {
  const url = new URL(req.url ?? "/", origin)
  const serve = (text: string): void => {
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(text)) })
    res.end(text)
  }
  if (req.headers.authorization !== `Token ${token}`) return sendJson(res, 401, { detail: "Authentication credentials were not provided." })
  if (url.pathname === "/api/v1/product_image/") return serve(pim.text)
  const route = /^\/api\/v1\/channel\/(\d+)\/product_images\/(?:(detailed\/)|(\d+)\/(detailed\/)?)?$/.exec(url.pathname)
  if (route === null || Number(route[1]) !== channelId) return sendJson(res, 404, { detail: "Not found." })
  if (route[3] !== undefined) return Number(route[3]) === retrieve.json.pk ? serve(retrieve.text) : sendJson(res, 404, { detail: "Not found." })
  const page = url.searchParams.get("page") ?? "1"
  return page === "1" ? serve(list.text) : sendJson(res, 404, { detail: "Invalid page." })
}

/** The `with:` block pointing at the replay server. */
const replayConfig = (origin: string, more: Record<string, unknown> = {}) => ({ baseUrl: origin, channelId, token, retry: fastRetry, ...more })

/** The one record both sales-channel examples describe (pk 1 of product 1), written out by hand. */
const exampleRecord = {
  source: "channel",
  productId: "1",
  imageId: "1",
  position: 1,
  // Neither example has a URL field (the `{id}/detailed/` example is the same as `{id}/`).
  url: null,
  filename: null,
  width: 1,
  height: 1,
  alt: null,
  contentHash: null,
  createdAt: Date.UTC(2025, 5, 27, 8, 53, 13, 894),
  updatedAt: Date.UTC(2025, 5, 27, 8, 53, 13, 894),
  extra: { status: "active", isActive: true, vendorHash: "vendor:text", imageSource: "unified", objectId: 1, contentType: "text" }
}

const live = SourceHarness.live

describe("Akinon's examples: the committed copies", () => {
  it("are every file of ../shared/vendor-examples/akinon/, byte for byte, when ../shared is present", () => {
    const committed = fs.readdirSync(fixtures).filter((f) => f.endsWith(".json")).sort()
    expect(committed).toEqual(exampleFiles)
    const origin = fs.readFileSync(path.join(fixtures, "ORIGIN.md"), "utf8")
    for (const file of committed) expect(origin).toContain(`\`${file}\``)
    if (!fs.existsSync(shared)) {
      console.info(`${shared} is not here: the committed copies are used as they are`)
      return
    }
    expect(fs.readdirSync(shared).filter((f) => f.endsWith(".json")).sort()).toEqual(committed)
    for (const file of committed) expect(fs.readFileSync(path.join(fixtures, file), "utf8"), file).toBe(fs.readFileSync(path.join(shared, file), "utf8"))
  })
})

describe("Akinon's examples read by the source (replay server on 127.0.0.1)", () => {
  for (const mode of ["list", "detailed"] as const) {
    it.live(`the sales-channel list example, mode ${mode}: its one image, every field mapped, one request with the token`, () =>
      live(Effect.gen(function*() {
        const server = yield* tinyServer(replay)
        const result = yield* run(replayConfig(server.url, { mode }))
        expect(result.records.map(plain)).toEqual([exampleRecord])
        expect(result.rejected).toEqual([])
        // `count` is 1 and the page held it: the placeholder `next` ("text") is not followed.
        expect(result.totals).toEqual([1])
        expect(server.requests.map((r) => r.url)).toEqual([
          `/api/v1/channel/5/product_images/${mode === "detailed" ? "detailed/" : ""}?page=1&limit=100`
        ])
        expect(server.requests.every((r) => r.authorization === `Token ${token}`)).toBe(true)
      })))
  }

  it.live("the list example with activeOnly: its image is active (status active, is_active true), so it stays", () =>
    live(Effect.gen(function*() {
      const server = yield* tinyServer(replay)
      const result = yield* run(replayConfig(server.url, { activeOnly: true }))
      expect(result.records.map(plain)).toEqual([exampleRecord])
    })))

  for (const mode of ["list", "detailed"] as const) {
    const route = mode === "list" ? "{id}/" : "{id}/detailed/"
    it.live(`the retrieve example at ${route} (ids + idLookup, mode ${mode}): the same image; an id it does not have is a dead letter`, () =>
      live(Effect.gen(function*() {
        const server = yield* tinyServer(replay)
        const result = yield* run(replayConfig(server.url, { mode, ids: [1, 2], idLookup: true, concurrency: 1 }))
        expect(result.records.map(plain)).toEqual([exampleRecord])
        expect(result.rejected.map((r) => r.error)).toEqual(["image 2 not found (HTTP 404)"])
        const suffix = mode === "list" ? "" : "detailed/"
        expect(server.requests.map((r) => r.url)).toEqual([
          `/api/v1/channel/5/product_images/1/${suffix}`,
          `/api/v1/channel/5/product_images/2/${suffix}`
        ])
      })))
  }

  it("the PIM media list (GET /api/v1/product_image/, an endpoint the source has no mode for): each record decodes with the channel's wire schema; product, pk, order, image URL, source and dates map", () => {
    const results = pim.json.results as ReadonlyArray<unknown>
    const mapped = results.map((item) => toProductImage("channel", item, { url: "image", alt: "alt" }, "https://omnitron.example.com"))
    expect(mapped.every(Either.isRight)).toBe(true)
    const records = mapped.flatMap((m) => (Either.isRight(m) ? [plain(m.right)] : []))
    const created = Date.UTC(2022, 10, 25, 12, 6, 42, 954)
    expect(records).toEqual([491, 493].map((pk, i) => ({
      source: "channel",
      productId: "16201",
      imageId: String(pk),
      position: i,
      // The URL is kept as published (its host is the docs' placeholder); the file name is its last segment.
      url: (results[i] as { image: string }).image,
      filename: ["7ab3a475-d208-4650-bb14-053acf955daa.jpg", "2906fa81-8c3e-41fa-9884-904ca431cd5e.jpg"][i],
      width: null,
      height: null,
      alt: null,
      contentHash: null,
      createdAt: created,
      updatedAt: created,
      extra: { status: null, isActive: null, vendorHash: null, imageSource: "integration", objectId: null, contentType: null }
    })))
  })
})

describe("the simulator answers in the examples' shape", () => {
  // The vendor's schema makes these nullable; `next`/`previous` are null at the ends of a list.
  const nullable = ["next", "previous", "results[].source", "results[].height", "results[].width", "results[].hash"]
  const itemNullable = ["source", "height", "width", "hash"]
  // The detailed variants' URL and alt text: the simulator's documented assumption (`urlField`, `altField`).
  const detailedExtra = { "results[].image": Schema.String, "results[].alt": Schema.NullOr(Schema.String) }
  const listShape = WireShape.infer(list.json, { nullable })
  const detailedListShape = WireShape.infer(list.json, { nullable, extra: detailedExtra })
  const retrieveShape = WireShape.infer(retrieve.json, { nullable: itemNullable })
  const detailedShape = WireShape.infer(retrieve.json, { nullable: itemNullable, extra: { image: Schema.String, alt: Schema.NullOr(Schema.String) } })

  const get = (sim: Simulator.ChannelSimulator, rest: string) =>
    Effect.promise(() =>
      fetch(`${sim.url}/api/v1/channel/${sim.channelId}/product_images/${rest}`, { headers: { Authorization: `Token ${sim.token}` } })
        .then((r) => r.json() as Promise<unknown>)
    )

  it.live("every list page and queue page has the list example's keys and types, and the detailed pages add only image and alt", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      for (const rest of ["?limit=1000", "?limit=7&page=2", "inserts/?limit=1000", "updates/?limit=3", "inserts_or_updates/?limit=1000"]) {
        expect(WireShape.mismatches(listShape, yield* get(sim, rest)), rest).toEqual([])
      }
      for (const rest of ["detailed/?limit=1000", "detailed/?limit=7&page=3"]) {
        expect(WireShape.mismatches(detailedListShape, yield* get(sim, rest)), rest).toEqual([])
      }
      // And not by luck: the plain list has no image field, so the detailed shape refuses it.
      expect(WireShape.mismatches(detailedListShape, yield* get(sim, "?limit=2")).length).toBeGreaterThan(0)
    })))

  it.live("every image at {id}/ has the retrieve example's keys and types, at {id}/detailed/ plus image and alt; status and source stay in the vendor's enums", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      for (const image of sim.catalogue) {
        const one = (yield* get(sim, `${image.pk}/`)) as Record<string, unknown>
        expect(WireShape.mismatches(retrieveShape, one), `pk ${image.pk}`).toEqual([])
        expect(WireShape.mismatches(detailedShape, yield* get(sim, `${image.pk}/detailed/`)), `pk ${image.pk} detailed`).toEqual([])
        expect(["active", "disabled"]).toContain(one.status)
        expect([null, "unified", "integration", "seller_center"]).toContain(one.source)
      }
    })))
})
