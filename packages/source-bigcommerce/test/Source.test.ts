import * as fs from "node:fs"
import * as http from "node:http"
import type * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Batch } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Simulator from "../src/Simulator.js"
import {
  check,
  expected,
  expectedAll,
  expectedOf,
  fastQuota,
  fastRetry,
  live,
  plain,
  productsByBatch,
  run,
  runUntil,
  simConfig
} from "./Harness.js"

/** The images-endpoint path of a product on a simulator. */
const imagesPath = (sim: Simulator.BigCommerceSimulator, id: number) => `/stores/${sim.storeHash}/v2/products/${id}/images`

/** The ids of the products that have images, in order. */
const withImages = (sim: Simulator.BigCommerceSimulator) => sim.products.filter((p) => p.images.length > 0).map((p) => p.id)

describe("bigcommerce source: a full sync", () => {
  it.live("the catalogue has the awkward cases the mapping must handle", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const byProduct = sim.products.map((p) => sim.catalogue.filter((i) => i.product_id === p.id))
      expect(sim.products.some((p) => p.images.length === 0)).toBe(true)
      expect(sim.products.some((p) => p.images.length > 8)).toBe(true)
      expect(byProduct.some((images) => new Set(images.map((i) => i.sort_order)).size < images.length)).toBe(true)
      expect(byProduct.some((images) => images.some((i, j) => j > 0 && i.sort_order < images[j - 1]!.sort_order))).toBe(true)
      expect(sim.catalogue.some((i) => i.description === null)).toBe(true)
      expect(sim.catalogue.some((i) => i.description === "")).toBe(true)
      expect(sim.catalogue.some((i) => i.image_file.startsWith("../"))).toBe(true)
      expect(sim.catalogue.every((i) => /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/.test(i.date_created))).toBe(true)
    })))

  it.live("every image of every product, one product-complete batch per product, total from the image count", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const result = yield* run(simConfig(sim))
      expect(result.records.map(plain)).toEqual(expectedAll(sim))
      expect(result.rejected).toEqual([])
      expect(result.totals).toEqual([sim.catalogue.length])
      // One batch per product (a product with no images is a batch with no records), in product order,
      // then the finished scan's cursor.
      expect(result.batches.length).toBe(sim.products.length + 1)
      expect(Chunk.isEmpty(result.batches.at(-1)!.records)).toBe(true)
      expect(result.last).toMatchObject(Option.some({ kind: "cursor", value: { scope: "every product", complete: true } }))
      expect(productsByBatch(result.batches)).toEqual(withImages(sim).map(String))
      for (const batch of result.batches) expect(new Set(Chunk.toArray(batch.records).map((r) => r.productId)).size).toBeLessThanOrEqual(1)
      // The count, one products page (40 < 250: a short page ends the list) and one request per product.
      // The list is read by id range: min_id, the fields a sync needs, the page size; no page number.
      expect(sim.requests().byPath).toBeDefined()
      const byPath = sim.requests().byPath
      expect(byPath[`/stores/${sim.storeHash}/v2/products/images/count`]).toBe(1)
      expect(byPath[`/stores/${sim.storeHash}/v2/products`]).toBe(1)
      for (const p of sim.products) expect(byPath[imagesPath(sim, p.id)]).toBe(1)
      expect(sim.requests().total).toBe(sim.products.length + 2)
      expect(result.pages).toBe(sim.products.length)
    })))

  it.live("a product with no images is the API's 204: no records, no dead letter, its checkpoint moves on", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const empty = sim.products.find((p) => p.images.length === 0)!
      const result = yield* run(simConfig(sim, { productIds: [empty.id] }))
      expect(result.records).toEqual([])
      expect(result.rejected).toEqual([])
      expect(result.checkpoints).toEqual([{ page: 0, done: 1, lastId: String(empty.id) }])
    })))

  it.live("pageSize 3: the product list is read by id range and a product's images by page, up to the 204 past the end", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 12 })
      const result = yield* run(simConfig(sim, { pageSize: 3 }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim))
      const byPath = sim.requests().byPath
      // 12 products in pages of 3: four full pages, then a 204.
      expect(byPath[`/stores/${sim.storeHash}/v2/products`]).toBe(5)
      for (const p of sim.products) {
        // n images in pages of 3: a short page ends the list; after a full one (or none) a 204 does.
        const n = p.images.length
        expect(byPath[imagesPath(sim, p.id)], `requests for product ${p.id} (${n} images)`).toBe(Math.floor(n / 3) + 1)
      }
      // The checkpoint is the page's min_id plus the products finished on it; the next page starts after its last id.
      const after = (i: number) => sim.products[i]!.id + 1
      expect(result.checkpoints.slice(0, 4)).toEqual([
        { page: 1, done: 1, lastId: String(sim.products[0]!.id) },
        { page: 1, done: 2, lastId: String(sim.products[1]!.id) },
        { page: after(2), done: 0 },
        { page: after(2), done: 1, lastId: String(sim.products[3]!.id) }
      ])
      expect(result.checkpoints.at(-2)).toEqual({ page: after(11), done: 0 })
      expect(result.checkpoints.at(-1)).toMatchObject({ complete: true })
    })))

  for (const imageUrl of ["standard", "thumbnail", "tiny"] as const) {
    it.live(`imageUrl: ${imageUrl} picks that URL variant (all four stay in extra)`, () =>
      live(Effect.gen(function*() {
        const sim = yield* Simulator.make({ products: 6 })
        const result = yield* run(simConfig(sim, { imageUrl }))
        expect(result.records.map(plain)).toEqual(expectedOf(sim, sim.products.map((p) => p.id), imageUrl))
      })))
  }

  it.live("the URLs point at the simulator and serve the image's bytes", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 4 })
      const result = yield* run(simConfig(sim, { productIds: [sim.products[0]!.id] }))
      expect(result.records.length).toBeGreaterThan(0)
      for (const record of result.records) {
        expect(record.url!.startsWith(`${sim.url}/`)).toBe(true)
        const bytes = yield* Effect.promise(() => fetch(record.url!).then((r) => r.arrayBuffer()))
        const image = sim.catalogue.find((i) => String(i.id) === record.imageId)!
        expect(Buffer.from(bytes).equals(Buffer.from(image.bytes))).toBe(true)
      }
    })))

  it.live("concurrency 8 keeps the batches in product order", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 30, faults: { kinds: ["latency"], rate: 0.5, latencyMs: 15, seed: 4 } })
      const result = yield* run(simConfig(sim, { concurrency: 8 }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim))
    })))
})

describe("bigcommerce source: productIds", () => {
  it.live("productIds limits the run to those products, in the given order, with no product list", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const chosen = [withImages(sim)[5]!, withImages(sim)[1]!, withImages(sim)[9]!]
      const result = yield* run(simConfig(sim, { productIds: chosen.map(String) }))
      expect(result.records.map(plain)).toEqual(expectedOf(sim, chosen))
      expect(result.totals).toEqual([])
      const byPath = sim.requests().byPath
      expect(byPath[`/stores/${sim.storeHash}/v2/products`]).toBeUndefined()
      expect(Object.keys(byPath).sort()).toEqual(
        [`/stores/${sim.storeHash}/v2/products/images/count`, ...chosen.map((id) => imagesPath(sim, id))].sort()
      )
    })))

  it.live("an id that does not exist is a dead letter naming it; the others are read", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const known = withImages(sim)[0]!
      const result = yield* run(simConfig(sim, { productIds: [999_999, known] }))
      expect(result.records.map(plain)).toEqual(expectedOf(sim, [known]))
      expect(result.rejected).toEqual([{
        source: "bigcommerce",
        stage: "source",
        error: "product 999999 was not found (HTTP 404: The requested resource was not found.); it was deleted, or never existed",
        payload: { product_id: 999_999 }
      }])
    })))

  it.live("productIdsFile: one id per line, comments and blanks skipped", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const chosen = withImages(sim).slice(2, 4)
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "effetl-bc-")), "ids.txt")
      fs.writeFileSync(file, `# refresh these\n${chosen[0]}\n\n  ${chosen[1]}  \n`)
      const result = yield* run(simConfig(sim, { productIdsFile: file }))
      expect(result.records.map(plain)).toEqual(expectedOf(sim, chosen))
    })))

  it.live("an id that is not a positive integer is a ConfigError naming the field, before any request", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const error = yield* Effect.flip(run(simConfig(sim, { productIds: ["12", "abc"] })))
      expect(error).toMatchObject({ _tag: "ConfigError", path: "sources.bigcommerce.with.productIds" })
      expect(error.message).toContain("productIds[1]: product id \"abc\": expected a positive integer")
      expect(sim.requests().total).toBe(0)
    })))
})

describe("bigcommerce source: kill and resume", () => {
  for (const concurrency of [1, 4]) {
    it.live(`a killed run resumed from its last checkpoint loses nothing, repeats nothing and refetches no finished product (concurrency ${concurrency})`, () =>
      live(Effect.gen(function*() {
        const sim = yield* Simulator.make()
        const config = simConfig(sim, { pageSize: 7, concurrency })
        const first = yield* run(config, { take: 10 })
        const saved = first.batches[9]!.checkpoint
        expect(Option.getOrThrow(saved).value).toMatchObject({
          page: sim.products[6]!.id + 1,
          done: 3,
          lastId: String(sim.products[9]!.id),
          scope: "every product"
        })
        // The rerun talks to a fresh simulator with the same seed (the same catalogue), so its request
        // counts are not blurred by the first run's fetches that were in flight when it was cut.
        const again = yield* Simulator.make()
        const second = yield* run({ ...config, baseUrl: again.url }, { checkpoint: saved })
        const byPath = again.requests().byPath
        for (const p of sim.products.slice(0, 10)) expect(byPath[imagesPath(again, p.id)]).toBeUndefined()
        for (const p of sim.products.slice(10)) expect(byPath[imagesPath(again, p.id)]).toBe(1)
        const resumed = second.records.map((r) => plain(r))
        const rebased = resumed.map((r) => JSON.parse(JSON.stringify(r).replaceAll(again.url, sim.url)) as Record<string, unknown>)
        expect([...first.records.map(plain), ...rebased]).toEqual(expectedAll(sim))
        // It goes on after the last finished id, whatever page that was on.
        expect(second.checkpoints[0]).toEqual({ page: sim.products[9]!.id + 1, done: 1, lastId: String(sim.products[10]!.id) })
      })))
  }

  it.live("a resume after a product before the saved one was deleted skips exactly the finished ones", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const config = simConfig(sim, { pageSize: 7 })
      const first = yield* run(config, { take: 4 })
      sim.deleteProduct(sim.products[1]!.id)
      const second = yield* run(config, { checkpoint: first.batches[3]!.checkpoint })
      expect([...first.records, ...second.records].map(plain)).toEqual(expectedAll(sim))
    })))

  it.live("a resume with another page size goes on after the last finished id (keyset paging does not depend on it)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const first = yield* run(simConfig(sim, { pageSize: 7 }), { take: 9 })
      const second = yield* run(simConfig(sim, { pageSize: 5 }), { checkpoint: first.batches[8]!.checkpoint })
      expect([...first.records, ...second.records].map(plain)).toEqual(expectedAll(sim))
    })))

  it.live("a resume over other products is refused, not read from the wrong place", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const first = yield* run(simConfig(sim, { pageSize: 7 }), { take: 2 })
      const saved = first.batches[1]!.checkpoint
      const failure = yield* Effect.flip(run(simConfig(sim, { productIds: [sim.products[0]!.id] }), { checkpoint: saved }))
      expect(failure._tag).toBe("ConfigError")
      expect(failure.message).toContain("the unfinished run was reading [every product]")
      expect(failure.message).toContain("--restart")
      const byIds = yield* run(simConfig(sim, { productIds: [sim.products[0]!.id, sim.products[2]!.id] }), { take: 1 })
      const back = yield* Effect.flip(run(simConfig(sim), { checkpoint: byIds.batches[0]!.checkpoint }))
      expect(back.message).toContain("the unfinished run was reading [productIds (2, sha256:")
      const foreign = yield* Effect.flip(run(simConfig(sim), { checkpoint: Option.some(Batch.position({ page: "x" })) }))
      expect(foreign.message).toContain("not one this version of the source wrote")
      // The page-number checkpoint of an older version is refused the same way.
      const old = yield* Effect.flip(run(simConfig(sim), { checkpoint: Option.some(Batch.position({ page: 2, done: 1, lastId: "108", reading: "every product, pageSize=7" })) }))
      expect(old.message).toContain("not one this version of the source wrote")
    })))

  it.live("productIds resume by offset in the list", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const ids = withImages(sim).slice(0, 5)
      const first = yield* run(simConfig(sim, { productIds: ids }), { take: 2 })
      const second = yield* run(simConfig(sim, { productIds: ids }), { checkpoint: first.batches[1]!.checkpoint })
      expect(productsByBatch(second.batches)).toEqual(ids.slice(2).map(String))
      expect([...first.records, ...second.records].map(plain)).toEqual(expectedOf(sim, ids))
    })))
})

describe("bigcommerce source: the quota", () => {
  it.live("a fast window (20 per second): the sync paces itself, never drives Requests-Left to 0, gets no 429", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ ...fastQuota, products: 50 })
      const result = yield* run(simConfig(sim, { concurrency: 6 }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim))
      // 52 requests under a quota of 20: it had to wait for at least two window resets.
      expect(sim.requests().total).toBe(52)
      expect(sim.throttled()).toBe(0)
      expect(sim.lowestLeft()).toBeGreaterThanOrEqual(1)
    })))

  it.live("a bigger reserve leaves more of every window to the other apps", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ ...fastQuota, products: 30 })
      const result = yield* run(simConfig(sim, { concurrency: 4, rateLimit: { reserve: 8 } }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim))
      expect(sim.throttled()).toBe(0)
      expect(sim.lowestLeft()).toBeGreaterThanOrEqual(8)
    })))

  it.live("another app spends the window's quota mid-run: the 429 is waited out (the reset header) and the sync finishes", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ ...fastQuota, products: 30 })
      const result = yield* run(simConfig(sim, { concurrency: 2 }), { onBatch: (_b, i) => (i === 3 ? sim.consume(fastQuota.quota) : undefined) })
      expect(result.records.map(plain)).toEqual(expectedAll(sim))
      expect(sim.throttled()).toBeGreaterThanOrEqual(1)
      expect(sim.throttled()).toBeLessThanOrEqual(4)
      expect(result.retries).toBe(sim.throttled())
    })))
})

describe("bigcommerce source: errors and faults", () => {
  it.live("a product deleted mid-run is a dead-letter entry and the run goes on", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const victim = withImages(sim)[10]!
      const result = yield* run(simConfig(sim, { concurrency: 1 }), { onBatch: (_b, i) => (i === 2 ? sim.deleteProduct(victim) : undefined) })
      expect(result.records.map(plain)).toEqual(expectedAll(sim, new Set([victim])))
      expect(result.rejected).toEqual([{
        source: "bigcommerce",
        stage: "source",
        error: `product ${victim} was not found (HTTP 404: The requested resource was not found.); it was deleted, or never existed`,
        payload: { product_id: victim }
      }])
      // Its batch carries the dead letter and the checkpoint past it.
      const at = result.batches.findIndex((b) => b.rejected.length > 0)
      expect(result.checkpoints[at]).toMatchObject({ lastId: String(victim) })
    })))

  it.live("a wrong token fails fast with Unauthorized: one request, no token in the message", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const token = "wrong-token-0123456789"
      const { error, result } = yield* runUntil(simConfig(sim, { accessToken: token }))
      expect(result.batches).toEqual([])
      const failure = Option.getOrThrow(error)
      expect(failure).toMatchObject({ _tag: "Unauthorized", status: 401, source: "bigcommerce" })
      expect(failure.message).toContain("source 'bigcommerce'")
      expect(failure.message).toContain("refused the credentials (HTTP 401")
      expect(failure.message).not.toContain(token)
      expect(JSON.stringify(failure)).not.toContain(token)
      expect(sim.requests().total).toBe(1)
      expect(result.retries).toBe(0)
    })))

  it.live("a wrong token with productIds fails fast too (never a dead letter per product)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const failure = yield* Effect.flip(run(simConfig(sim, { accessToken: "nope-nope-nope", productIds: [101, 102] })))
      expect(failure._tag).toBe("Unauthorized")
      expect(sim.requests().total).toBe(1)
    })))

  it.live("a wrong store hash fails the run with the API's 404, even with productIds", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const failure = yield* Effect.flip(run(simConfig(sim, { storeHash: "otherstore", productIds: [101] })))
      expect(failure).toMatchObject({ _tag: "ApiError", status: 404 })
      expect(failure.message).toContain("The requested resource was not found.")
      expect(sim.requests().total).toBe(1)
    })))

  it.live("5xx, 429, resets, truncated bodies and latency: every image exactly once, retries counted", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({
        windowMs: 200,
        faults: { kinds: ["5xx", "429", "reset", "truncate", "latency"], rate: 0.3, latencyMs: 5, seed: 11 }
      })
      const result = yield* run(simConfig(sim, { pageSize: 4, concurrency: 4 }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim))
      expect(result.rejected).toEqual([])
      expect(sim.requests().faults).toBeGreaterThan(0)
      expect(result.retries).toBeGreaterThan(0)
    })))
})

describe("bigcommerce source: check (dry run)", () => {
  it.live("one request against the simulator", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      yield* check(simConfig(sim))
      expect(sim.requests().byPath).toEqual({ [`/stores/${sim.storeHash}/v2/products/images/count`]: 1 })
    })))

  it.live("Unauthorized for a wrong token, without the token", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const error = yield* Effect.flip(check(simConfig(sim, { accessToken: "nope-nope-nope" })))
      expect(error._tag).toBe("Unauthorized")
      expect(error.message).not.toContain("nope-nope-nope")
    })))
})

// ---------------------------------------------------------------------------------------------
// The wire contract, against a tiny server that answers what the simulator never does
// ---------------------------------------------------------------------------------------------

interface Seen {
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
}

/** A node:http server on 127.0.0.1 for the scope. */
const tinyServer = (handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Effect.Effect<{ url: string; seen: Array<Seen> }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; url: string; seen: Array<Seen> }>((resume) => {
      const seen: Array<Seen> = []
      const server = http.createServer((req, res) => {
        seen.push({ url: req.url ?? "/", headers: req.headers })
        handler(req, res)
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({ server, url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, seen })))
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )

const send = (res: http.ServerResponse, status: number, body?: unknown): void => {
  const text = body === undefined ? "" : JSON.stringify(body)
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(text)) })
  res.end(text)
}

const wire = (id: number, more: Record<string, unknown> = {}) => ({
  id,
  product_id: 7,
  image_file: `a/001/img_${id}__1.jpg`,
  zoom_url: `https://cdn.example.com/${id}.1280.1280.jpg`,
  standard_url: `https://cdn.example.com/${id}.386.513.jpg`,
  thumbnail_url: `https://cdn.example.com/${id}.220.290.jpg`,
  tiny_url: `https://cdn.example.com/${id}.44.58.jpg`,
  is_thumbnail: id === 1,
  sort_order: id,
  description: null,
  date_created: "Mon, 24 Sep 2012 01:14:30 +0000",
  ...more
})

describe("bigcommerce source: the wire contract", () => {
  it.live("sends X-Auth-Token and Accept: application/json to /stores/{hash}/v2, products by id range, images by page; bad items are dead letters", () =>
    live(Effect.gen(function*() {
      const badDate = wire(2, { date_created: "Tue, 24 Sep 2012 01:14:30 +0000" }) // 24 Sep 2012 was a Monday
      const badShape = wire(3, { sort_order: "first" })
      const server = yield* tinyServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://x")
        if (url.pathname === "/stores/abc123/v2/products/images/count") return send(res, 200, { count: 4 })
        if (url.pathname === "/stores/abc123/v2/products") {
          return url.searchParams.get("min_id") === "1" ? send(res, 200, [{ id: 7, name: "x", date_modified: "Mon, 24 Sep 2012 01:34:57 +0000" }]) : send(res, 204)
        }
        if (url.pathname === "/stores/abc123/v2/products/7/images") {
          return url.searchParams.get("page") === "1" ? send(res, 200, [wire(1), badDate, badShape, wire(4, { description: "four" })]) : send(res, 204)
        }
        send(res, 404, [{ status: 404, message: "The requested resource was not found." }])
      })
      const result = yield* run({ baseUrl: `${server.url}/`, storeHash: "abc123", accessToken: "t0ken-abc", retry: fastRetry })
      expect(result.records.map((r) => [r.imageId, r.position, r.url, r.filename, r.alt, r.createdAt?.toISOString()])).toEqual([
        ["1", 1, "https://cdn.example.com/1.1280.1280.jpg", "a/001/img_1__1.jpg", null, "2012-09-24T01:14:30.000Z"],
        ["4", 4, "https://cdn.example.com/4.1280.1280.jpg", "a/001/img_4__1.jpg", "four", "2012-09-24T01:14:30.000Z"]
      ])
      expect(result.rejected.map((d) => [d.stage, d.payload])).toEqual([["source", badDate], ["source", badShape]])
      expect(result.rejected[0]!.error).toBe("image 2: date_created \"Tue, 24 Sep 2012 01:14:30 +0000\" is not an RFC 2822 or ISO-8601 date")
      expect(result.rejected[1]!.error).toContain("sort_order")
      expect(server.seen.map((s) => s.url)).toEqual([
        "/stores/abc123/v2/products/images/count",
        "/stores/abc123/v2/products?min_id=1&include=id%2Cdate_modified&limit=250",
        "/stores/abc123/v2/products/7/images?page=1&limit=250"
      ])
      for (const s of server.seen) {
        expect(s.headers["x-auth-token"]).toBe("t0ken-abc")
        expect(s.headers["accept"]).toBe("application/json")
      }
    })))

  it.live("a product list page that is not a JSON array fails the run with a DecodeError naming the source", () =>
    live(Effect.gen(function*() {
      const server = yield* tinyServer((req, res) =>
        new URL(req.url ?? "/", "http://x").pathname.endsWith("/count") ? send(res, 200, { count: 1 }) : send(res, 200, { data: [] }))
      const error = yield* Effect.flip(run({ baseUrl: server.url, storeHash: "abc123", accessToken: "t0ken-abc", retry: fastRetry }))
      expect(error._tag).toBe("DecodeError")
      expect(error.message).toContain("source 'bigcommerce'")
    })))

  it.live("a 204 on the first product page is an empty store: no records, only the finished scan's cursor, no failure", () =>
    live(Effect.gen(function*() {
      const server = yield* tinyServer((req, res) =>
        new URL(req.url ?? "/", "http://x").pathname.endsWith("/count") ? send(res, 200, { count: 0 }) : send(res, 204))
      const result = yield* run({ baseUrl: server.url, storeHash: "abc123", accessToken: "t0ken-abc" })
      expect(result.records).toEqual([])
      expect(result.batches.map((b) => Option.getOrThrow(b.checkpoint).value)).toEqual([
        { scope: "every product", page: 1, done: 0, startedAt: expect.any(String) },
        // Nothing was listed: the next run reads what changed since this scan began (the server's Date).
        { scope: "every product", complete: true, mark: expect.any(String), highWater: null }
      ])
      expect(result.totals).toEqual([0])
    })))

  it.live("the expected records are the simulator's, independently of the mapping", () =>
    live(Effect.gen(function*() {
      // A sanity check of the harness itself: one image by hand.
      const sim = yield* Simulator.make({ products: 2 })
      const image = sim.catalogue[0]!
      expect(expected(image)).toMatchObject({ imageId: String(image.id), url: image.zoom_url, createdAt: Date.parse(image.date_created) })
    })))
})
