import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Batch } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Simulator from "../src/Simulator.js"
import { FaultProxy } from "@effetl/core/simulator"
import {
  check,
  cursorOf,
  envelopeJson,
  expectedFeed,
  expectedProduct,
  fastRetry,
  live,
  lotsOf,
  plain,
  productOf,
  run,
  runUntil,
  simConfig,
  tinyServer
} from "./Harness.js"

const twoTo53 = 2n ** 53n

describe("acceo source: the change feed", () => {
  it.live("reads every lot until queuecount is 0: one batch per lot, the lot's token as a cursor checkpoint", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const feed = sim.feed()
      const result = yield* run(simConfig(sim, { count: 5 }))
      expect(result.records.map(plain)).toEqual(expectedFeed(sim))
      expect(result.rejected).toEqual([])
      const lots = lotsOf(feed, 5)
      expect(result.batches.length).toBe(lots.length)
      expect(result.checkpoints).toEqual(lots.map((lot) => cursorOf(lot[lot.length - 1]!.token)))
      // One request per lot, the last one said queuecount 0.
      expect(sim.requests().byPath).toEqual({ "/products/images": lots.length })
      // Tokens are above 2^53 and kept digit for digit.
      for (const cp of result.checkpoints) expect(BigInt((cp!.value as { token: string }).token) > twoTo53).toBe(true)
      // The feed re-sends some products later in the cycle, so a product can span lots: core must regroup.
      expect(new Set(feed.map((e) => e.productId)).size).toBeLessThan(feed.length)
      expect(result.productComplete).toBe(false)
      expect(result.pages).toBe(lots.length)
      expect(result.totals.at(-1)).toBe(result.records.length)
    })))

  it.live("product ids above 2^53 come through exactly, in JSON (bare numbers) and XML", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const big = sim.catalogue.filter((p) => BigInt(p.product_id) > twoTo53 && p.images.length > 0)
      expect(big.length).toBeGreaterThan(0)
      for (const format of ["json", "xml"]) {
        const result = yield* run(simConfig(sim, { format }))
        for (const p of big) expect(result.records.filter((r) => r.productId === p.product_id).length).toBeGreaterThan(0)
      }
    })))

  it.live("JSON and XML, binary and URL images: the same records (URL mode has the image's URL instead of its bytes)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const binaryJson = yield* run(simConfig(sim, { format: "json", images: "binary", count: 4 }))
      const binaryXml = yield* run(simConfig(sim, { format: "xml", images: "binary", count: 4 }))
      const urlJson = yield* run(simConfig(sim, { format: "json", images: "url", count: 4 }))
      const urlXml = yield* run(simConfig(sim, { format: "xml", images: "url", count: 4 }))
      expect(binaryJson.records.map(plain)).toEqual(expectedFeed(sim, "binary"))
      expect(binaryXml.records.map(plain)).toEqual(expectedFeed(sim, "binary"))
      expect(urlJson.records.map(plain)).toEqual(expectedFeed(sim, "url"))
      expect(urlXml.records.map(plain)).toEqual(expectedFeed(sim, "url"))
      // The bytes themselves, not only their hash, are equal.
      expect(binaryXml.records.map((r) => Buffer.from(r.bytes!).toString("hex"))).toEqual(
        binaryJson.records.map((r) => Buffer.from(r.bytes!).toString("hex"))
      )
      expect(binaryJson.checkpoints).toEqual(binaryXml.checkpoints)
      // The hostile names are data: kept exactly (newlines, backslashes, unicode, leading spaces).
      const names = new Set(binaryXml.records.map((r) => r.filename))
      for (const name of Simulator.hostileNames.filter((n) => n !== "")) expect(names.has(name)).toBe(true)
    })))

  it.live("an empty imagefilename falls back to the sequence as imageId, with no filename", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const owner = sim.catalogue.find((p) => p.images.some((i) => i.imagefilename === ""))!
      const image = owner.images.find((i) => i.imagefilename === "")!
      const result = yield* run(simConfig(sim, { format: "xml" }))
      const record = result.records.find((r) => r.productId === owner.product_id && r.position === image.sequence)!
      expect([record.imageId, record.filename]).toEqual([String(image.sequence), null])
    })))

  it.live("a second run from the saved token with nothing new reads one empty lot and emits no records", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const first = yield* run(simConfig(sim))
      const saved = first.batches.at(-1)!.checkpoint
      const before = sim.requests().total
      const second = yield* run(simConfig(sim), { checkpoint: saved })
      expect(sim.requests().total - before).toBe(1)
      expect(second.records).toEqual([])
      expect(second.batches.length).toBe(1)
      expect(second.batches[0]!.checkpoint).toEqual(saved)
    })))

  it.live("changes after a run: the next run from the saved token reads exactly those products", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const first = yield* run(simConfig(sim))
      const saved = first.batches.at(-1)!.checkpoint
      const changed = [sim.catalogue[0]!.product_id, sim.catalogue[3]!.product_id]
      const entries = sim.change(changed, { addImage: true })
      const second = yield* run(simConfig(sim), { checkpoint: saved })
      expect(second.records.map(plain)).toEqual(changed.flatMap((id) => expectedProduct(sim, productOf(sim, id))))
      expect(second.checkpoints.at(-1)).toEqual(cursorOf(entries.at(-1)!.token))
      // The added images are there.
      expect(second.records.filter((r) => r.filename!.startsWith("added-")).length).toBe(2)
    })))

  it.live("resuming from a saved token mid-feed reads only the rest, each lot exactly once", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const config = simConfig(sim, { count: 3 })
      const first = yield* run(config, { take: 2 })
      const saved = first.batches[1]!.checkpoint
      const token = (Option.getOrThrow(saved).value as { token: string }).token
      expect(token).toBe(sim.feed()[5]!.token)
      const before = sim.requests().total
      const rest = yield* run(config, { checkpoint: saved })
      expect(rest.records.map(plain)).toEqual(expectedFeed(sim, "binary", token))
      expect([...first.records, ...rest.records].map(plain)).toEqual(expectedFeed(sim))
      expect(sim.requests().total - before).toBe(Math.ceil((sim.feed().length - 6) / 3))
    })))

  it.live("startToken: the first run starts there", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const from = sim.feed()[9]!.token
      const result = yield* run(simConfig(sim, { startToken: from }))
      expect(result.records.map(plain)).toEqual(expectedFeed(sim, "binary", from))
    })))

  it.live("warnings: every one is counted under the source and logged", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const warned = sim.feed().filter((e) => productOf(sim, e.productId).warning !== null)
      expect(warned.length).toBeGreaterThan(1)
      sim.warnNext(["Lot truncated to 4 MB", "Second warning"])
      const result = yield* run(simConfig(sim, { count: 4 }))
      expect(result.warnings).toBe(warned.length + 2)
      const logged = result.logs.filter((l) => l.startsWith("WARN ") && l.includes("the API warned"))
      expect(logged.length).toBe(warned.length + 2)
      expect(logged.some((l) => l.includes("Lot truncated to 4 MB"))).toBe(true)
      // The run still reads everything.
      expect(result.records.map(plain)).toEqual(expectedFeed(sim))
    })))

  it.live("a returncode other than 0 under HTTP 200 is an ApiError with the code and message; nothing after it is read", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      sim.failNext(12, "Invalid session identifier")
      const { error, result } = yield* runUntil(simConfig(sim))
      const failure = Option.getOrThrow(error)
      expect(failure).toMatchObject({ _tag: "ApiError", status: 200, code: "12", vendorMessage: "Invalid session identifier", source: "acceo" })
      expect(failure.message).toContain("source 'acceo'")
      expect(failure.message).toContain("returncode 12 (Invalid session identifier)")
      expect(failure.message).not.toContain(sim.apiKey)
      expect(result.batches).toEqual([])
      expect(sim.requests().total).toBe(1)
    })))

  it.live("session: a new unique value per run, or the configured one; at most 100 characters", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      yield* run(simConfig(sim, { count: 8 }))
      yield* run(simConfig(sim, { count: 8 }))
      const generated = sim.sessions()
      expect(generated.length).toBe(2)
      expect(generated.every((s) => s.length > 0 && s.length <= 100)).toBe(true)
      yield* run(simConfig(sim, { session: "nightly-sync" }))
      expect(sim.sessions()).toEqual([...generated, "nightly-sync"])
      const tooLong = yield* Effect.flip(run(simConfig(sim, { session: "x".repeat(101) })))
      // what a pipeline file gets: a config error naming the option
      expect(tooLong._tag).toBe("ConfigError")
      expect(tooLong.message).toContain("sources.acceo.with.session")
    })))

  it.live("faults (5xx, 429, resets, truncated bodies, latency): every lot exactly once, retries counted", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({
        faults: { kinds: ["5xx", "429", "reset", "truncate", "latency"], rate: 0.4, retryAfterSeconds: 0, latencyMs: 5, seed: 11 }
      })
      for (const format of ["json", "xml"]) {
        const result = yield* run(simConfig(sim, { count: 2, format }))
        expect(result.records.map(plain)).toEqual(expectedFeed(sim))
        expect(result.retries).toBeGreaterThan(0)
      }
      expect(sim.requests().faults).toBeGreaterThan(0)
    })))

  it.live("the runner's limit caps count", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const result = yield* run(simConfig(sim, { count: 50 }), { limit: 2, take: 1 })
      expect(result.checkpoints).toEqual([cursorOf(sim.feed()[1]!.token)])
    })))

  it.live("regroup: false streams lot by lot and says the batches are product-complete", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const result = yield* run(simConfig(sim, { regroup: false }))
      expect(result.productComplete).toBe(true)
      expect(result.records.map(plain)).toEqual(expectedFeed(sim))
    })))
})

describe("acceo source: a 10 % fault mix (5xx, 503 + Retry-After, resets, truncated and cut bodies, stalls)", () => {
  /** Every tenth request answered badly by a proxy in front of a clean simulator, the kinds in turn. */
  const proxied = (sim: Simulator.AcceoSimulator) =>
    FaultProxy.make({
      upstream: sim.url,
      every: 10,
      serverError: { status: 500, headers: { "Content-Type": "application/json; charset=utf-8" }, body: JSON.stringify({ Message: "An error has occurred." }) },
      unavailable: {
        status: 503,
        headers: { "Content-Type": "text/html; charset=us-ascii", "Retry-After": "1" },
        body: "<HTML><HEAD><TITLE>Service Unavailable</TITLE></HEAD><BODY><h2>Service Unavailable</h2><hr><p>HTTP Error 503. The service is unavailable.</p></BODY></HTML>"
      }
    })

  for (const format of ["json", "xml"] as const) {
    it.live(`${format}: the change feed lot by lot, every lot exactly once, every kind of fault met and retried`, () =>
      live(Effect.gen(function*() {
        const sim = yield* Simulator.make({ products: 48 })
        const proxy = yield* proxied(sim)
        // One product per lot, so the feed makes enough requests to meet every kind; a stall ends at the timeout.
        const { error, result } = yield* runUntil({ ...simConfig(sim, { count: 1, format, timeout: "2 seconds" }), baseUrl: proxy.url })
        expect(Option.getOrUndefined(error)?.message).toBeUndefined()
        expect(result.records.map(plain)).toEqual(expectedFeed(sim))
        expect(result.rejected).toEqual([])
        expect(result.checkpoints.at(-1)).toEqual(cursorOf(sim.feed().at(-1)!.token))
        expect(proxy.requests()).toBeGreaterThanOrEqual(10 * FaultProxy.faultKinds.length)
        const injected = proxy.injected()
        for (const kind of FaultProxy.faultKinds) expect(injected[kind], kind).toBeGreaterThan(0)
        // Each fault costs at least one retry (a slow machine may add timeouts of its own).
        expect(result.retries).toBeGreaterThanOrEqual(Object.values(injected).reduce((a, b) => a + b, 0))
      })))
  }

  it.live("products by id, JSON and XML: every product exactly once", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 30 })
      const proxy = yield* proxied(sim)
      const ids = sim.catalogue.map((p) => p.product_id)
      for (const format of ["json", "xml"]) {
        const { error, result } = yield* runUntil({
          ...simConfig(sim, { mode: "products", productIds: ids, format, images: "url", idsEndpoint: "url", timeout: "2 seconds" }),
          baseUrl: proxy.url
        })
        expect(Option.getOrUndefined(error)?.message).toBeUndefined()
        expect(result.records.map(plain), format).toEqual(ids.flatMap((id) => expectedProduct(sim, productOf(sim, id), "url")))
      }
      expect(Object.values(proxy.injected()).reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
    })))
})

describe("acceo source: binary images", () => {
  it.live("invalid base64 is a dead letter for that image; its product's other images and the run go on", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const product = sim.catalogue.find((p) => p.images.length >= 2)!
      const [bad, worse] = product.images
      sim.overrideBinary(product.product_id, bad!.sequence, "iVBORw0K!!!garbage==")
      sim.overrideBinary(product.product_id, worse!.sequence, "QUJD") // fine base64... of the wrong bytes
      for (const format of ["json", "xml"]) {
        const result = yield* run(simConfig(sim, { format }))
        const rejected = result.rejected
        expect(rejected.length).toBe(sim.feed().filter((e) => e.productId === product.product_id).length)
        for (const entry of rejected) {
          expect(entry).toMatchObject({ source: "acceo", stage: "source" })
          expect(entry.error).toContain(`product ${product.product_id}`)
          expect(entry.error).toContain("not valid base64")
        }
        const kept = result.records.filter((r) => r.productId === product.product_id)
        expect(kept.map((r) => r.position)).toEqual(
          sim.feed().filter((e) => e.productId === product.product_id).flatMap(() => product.images.slice(1).map((i) => i.sequence))
        )
        expect(Buffer.from(kept[0]!.bytes!).toString()).toBe("ABC")
        expect(result.records.length).toBe(expectedFeed(sim).length - rejected.length)
      }
    })))

  it.live("an image over maxImageBytes is a dead letter, checked before decoding", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const all = expectedFeed(sim)
      const sizes = sim.catalogue.flatMap((p) => p.images.map((i) => i.bytes.length)).sort((a, b) => a - b)
      const cap = sizes[Math.floor(sizes.length / 2)]!
      const result = yield* run(simConfig(sim, { maxImageBytes: cap }))
      const over = sim.feed().flatMap((e) => productOf(sim, e.productId).images.filter((i) => i.bytes.length > cap))
      expect(over.length).toBeGreaterThan(0)
      expect(result.rejected.length).toBe(over.length)
      expect(result.rejected.every((d) => d.error.includes("over maxImageBytes"))).toBe(true)
      expect(result.records.length).toBe(all.length - over.length)
      expect(result.records.every((r) => r.bytes!.length <= cap)).toBe(true)
    })))
})

describe("acceo source: products by id", () => {
  it.live("reads each listed product; an unknown id is a dead letter; position checkpoints per product", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const ids = [sim.catalogue[3]!.product_id, "424242", sim.catalogue[0]!.product_id, sim.catalogue[1]!.product_id]
      const result = yield* run(simConfig(sim, { mode: "products", productIds: ids, concurrency: 3 }))
      expect(result.productComplete).toBe(true)
      expect(result.records.map(plain)).toEqual([ids[0]!, ids[2]!, ids[3]!].flatMap((id) => expectedProduct(sim, productOf(sim, id))))
      expect(result.rejected).toEqual([
        { source: "acceo", stage: "source", error: "product 424242 not found (returncode 2: Product 424242 not found)", payload: { product_id: "424242" } }
      ])
      expect(result.checkpoints.map((cp) => cp?.kind)).toEqual(["position", "position", "position", "position"])
      expect(result.checkpoints.map((cp) => (cp!.value as { done: number }).done)).toEqual([1, 2, 3, 4])
      expect(Object.keys(sim.requests().byPath).sort()).toEqual(ids.map((id) => `/products/images/${id}`).sort())
    })))

  it.live("XML and URL images by id; ids from productIdsFile", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "acceo-ids-"))
      const file = path.join(dir, "ids.txt")
      const ids = sim.catalogue.slice(0, 4).map((p) => p.product_id)
      fs.writeFileSync(file, `# products\n${ids.join("\n")}\n\n`)
      const result = yield* run(simConfig(sim, { mode: "products", productIdsFile: file, format: "xml", images: "url" }))
      expect(result.records.map(plain)).toEqual(ids.flatMap((id) => expectedProduct(sim, productOf(sim, id), "url")))
      fs.rmSync(dir, { recursive: true })
    })))

  it.live("idsEndpoint: url reads products/images/URL/{id} (URLs in images.image[].imageURL), JSON and XML: the same records as the images route with URL images", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const ids = [sim.catalogue[0]!.product_id, sim.catalogue[3]!.product_id, "424242", sim.catalogue[5]!.product_id]
      const want = [ids[0]!, ids[1]!, ids[3]!].flatMap((id) => expectedProduct(sim, productOf(sim, id), "url"))
      expect(want.length).toBeGreaterThan(0)
      for (const format of ["json", "xml"]) {
        const before = sim.requests().total
        const result = yield* run(simConfig(sim, { mode: "products", productIds: ids, idsEndpoint: "url", images: "url", format, concurrency: 2 }))
        expect(result.records.map(plain), format).toEqual(want)
        expect(result.rejected.map((r) => r.error)).toEqual(["product 424242 not found (returncode 2: Product 424242 not found)"])
        expect(sim.requests().total - before).toBe(ids.length)
      }
      expect(Object.keys(sim.requests().byPath).sort()).toEqual(ids.map((id) => `/products/images/URL/${id}`).sort())
      const viaImages = yield* run(simConfig(sim, { mode: "products", productIds: ids, images: "url" }))
      expect(viaImages.records.map(plain)).toEqual(want)
    })))

  it.live("idsEndpoint: url sends the session only (the route itself says URL); the images route sends options=URL", () =>
    live(Effect.gen(function*() {
      const server = yield* tinyServer(() => ({ body: envelopeJson({ product: '[{"product_id":7,"images":{"image":[{"sequence":1,"imagefilename":"a.png","imageURL":"https://cdn.example/a.png"}]}}]', count: 1 }) }))
      const base = { baseUrl: server.url, apiKey: "k", retry: fastRetry, mode: "products", productIds: ["7"], images: "url", session: "s1" }
      const viaUrl = yield* run({ ...base, idsEndpoint: "url" })
      expect(viaUrl.records.map((r) => [r.productId, r.imageId, r.url])).toEqual([["7", "a.png", "https://cdn.example/a.png"]])
      yield* run(base)
      expect(server.requests.map((r) => r.url)).toEqual(["/products/images/URL/7?session=s1", "/products/images/7?session=s1&options=URL"])
    })))

  it.live("idsEndpoint: url needs images: url and mode: products (config errors, no request)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const binary = yield* Effect.flip(run(simConfig(sim, { mode: "products", productIds: ["1001"], idsEndpoint: "url" })))
      expect(binary.message).toBe("source 'acceo': idsEndpoint: url answers download URLs only; set images: url (hash-content then fetches the bytes)")
      const feed = yield* Effect.flip(run(simConfig(sim, { idsEndpoint: "url", images: "url" })))
      expect(feed.message).toContain("idsEndpoint: url is a route for mode: products")
      expect(sim.requests().total).toBe(0)
    })))

  it.live("a killed by-id run resumes after the last product it finished", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const ids = sim.catalogue.slice(0, 6).map((p) => p.product_id)
      const config = simConfig(sim, { mode: "products", productIds: ids, concurrency: 1 })
      const first = yield* run(config, { take: 2 })
      const rest = yield* run(config, { checkpoint: first.batches[1]!.checkpoint })
      expect([...first.records, ...rest.records].map(plain)).toEqual(ids.flatMap((id) => expectedProduct(sim, productOf(sim, id))))
      expect(rest.batches.length).toBe(4)
      // Another id list cannot resume that position.
      const other = yield* Effect.flip(run({ ...config, productIds: ids.slice(1) }, { checkpoint: first.batches[1]!.checkpoint }))
      expect(other._tag).toBe("ConfigError")
      expect(other.message).toContain("--restart")
    })))

  it.live("a saved feed token is never replaced by a by-id run, and a by-id position never read as a token", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const token = Option.some(cursorOf(sim.feed()[2]!.token))
      const byId = yield* Effect.flip(run(simConfig(sim, { mode: "products", productIds: ["1001"] }), { checkpoint: token }))
      expect(byId._tag).toBe("ConfigError")
      expect(byId.message).toContain("own source name")
      const position = Option.some(Batch.position({ mode: "products", page: 0, done: 1, reading: "products n=1" }))
      const feed = yield* Effect.flip(run(simConfig(sim), { checkpoint: position }))
      expect(feed._tag).toBe("ConfigError")
      expect(feed.message).toContain("mode: products")
      expect(sim.requests().total).toBe(0)
    })))

  it.live("config errors: products without ids, ids with the feed, a non-numeric id", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const none = yield* Effect.flip(run(simConfig(sim, { mode: "products" })))
      expect(none.message).toBe("source 'acceo': mode: products needs productIds or productIdsFile")
      const feed = yield* Effect.flip(run(simConfig(sim, { productIds: ["1001"] })))
      expect(feed.message).toContain("are for mode: products")
      const bad = yield* Effect.flip(run(simConfig(sim, { mode: "products", productIds: ["10x1"] })))
      expect(bad.message).toContain("expected a decimal integer")
      expect(sim.requests().total).toBe(0)
    })))
})

describe("acceo source: auth", () => {
  it.live("a wrong key fails fast with Unauthorized, one request, the key in no message", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const key = "wrong-key-0123456789abcdef"
      const { error } = yield* runUntil(simConfig(sim, { apiKey: key }))
      const failure = Option.getOrThrow(error)
      expect(failure).toMatchObject({ _tag: "Unauthorized", status: 401, source: "acceo" })
      expect(failure.message).toContain("Authorization has been denied for this request.")
      expect(JSON.stringify(failure)).not.toContain(key)
      expect(failure.message).not.toContain(key)
      expect(sim.requests().total).toBe(1)
    })))

  it.live("auth.header and auth.template: the key goes out as configured", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ authHeader: "X-Api-Key", authTemplate: "ApiKey {key}" })
      const ok = yield* run(simConfig(sim, { auth: { header: "X-Api-Key", template: "ApiKey {key}" } }))
      expect(ok.records.map(plain)).toEqual(expectedFeed(sim))
      const refused = yield* Effect.flip(run(simConfig(sim)))
      expect(refused._tag).toBe("Unauthorized")
      const server = yield* tinyServer(() => ({ body: envelopeJson({}) }))
      yield* run({ baseUrl: server.url, apiKey: "k3y", auth: { template: "Token={key}" } })
      yield* run({ baseUrl: server.url, apiKey: "k3y" })
      expect(server.requests.map((r) => r.headers.authorization)).toEqual(["Token=k3y", "Bearer k3y"])
    })))
})

describe("acceo source: the wire contract", () => {
  it.live("GET products/images with token, count, session and options; Accept by format", () =>
    live(Effect.gen(function*() {
      const server = yield* tinyServer(() => ({ body: envelopeJson({}) }))
      yield* run({ baseUrl: `${server.url}/api`, apiKey: "k", count: 42, session: "s1", images: "url", startToken: "18446744073709551615" })
      yield* run({ baseUrl: `${server.url}/api/`, apiKey: "k", format: "xml" })
      const [first, second] = server.requests.map((r) => new URL(r.url, server.url))
      expect(first!.pathname).toBe("/api/products/images")
      expect([...first!.searchParams].sort()).toEqual([["count", "42"], ["options", "URL"], ["session", "s1"], ["token", "18446744073709551615"]])
      expect(second!.pathname).toBe("/api/products/images")
      expect(second!.searchParams.has("token")).toBe(false)
      expect(second!.searchParams.has("options")).toBe(false)
      expect(second!.searchParams.get("count")).toBe("500")
      expect(server.requests.map((r) => r.headers.accept)).toEqual(["application/json", "application/xml"])
    })))

  it.live("a token sent as a bare JSON number beyond 2^53 is kept exactly", () =>
    live(Effect.gen(function*() {
      const server = yield* tinyServer((_url, n) => ({
        body: n === 1
          ? envelopeJson({ product: `[{"product_id":12345678901234567890,"images":{"image":[{"sequence":1,"imagefilename":"a.png","binaryimage":"QUJD"}]}}]`, token: "18446744073709551615", count: 1, queuecount: 1 })
          : envelopeJson({ token: '""' })
      }))
      const result = yield* run({ baseUrl: server.url, apiKey: "k" })
      expect(result.records.map((r) => r.productId)).toEqual(["12345678901234567890"])
      expect(result.checkpoints[0]).toEqual(cursorOf("18446744073709551615"))
      expect(new URL(server.requests[1]!.url, server.url).searchParams.get("token")).toBe("18446744073709551615")
      // The empty last lot without a token keeps the one before.
      expect(result.checkpoints[1]).toEqual(cursorOf("18446744073709551615"))
    })))

  it.live("an empty lot keeps the token sent, whatever token it carries", () =>
    live(Effect.gen(function*() {
      const server = yield* tinyServer(() => ({ body: envelopeJson({ token: '"0"' }) }))
      const result = yield* run({ baseUrl: server.url, apiKey: "k", startToken: "9007199254740993" })
      expect(result.records).toEqual([])
      expect(result.checkpoints).toEqual([cursorOf("9007199254740993")])
      // With no token sent (a first run on an empty feed), the server's token is the place to start from next time.
      const fresh = yield* run({ baseUrl: server.url, apiKey: "k" })
      expect(fresh.checkpoints).toEqual([cursorOf("0")])
    })))

  it.live("a feed that does not move, or goes backwards, stops with an ApiError rather than looping or re-reading", () =>
    live(Effect.gen(function*() {
      const product = `[{"product_id":1,"images":{"image":[]}}]`
      const stuck = yield* tinyServer(() => ({ body: envelopeJson({ product, token: '"9007199254740993"', count: 1, queuecount: 5 }) }))
      const a = yield* Effect.flip(run({ baseUrl: stuck.url, apiKey: "k", startToken: "9007199254740993" }))
      expect(a._tag).toBe("ApiError")
      expect(a.message).toContain("same token")
      expect(stuck.requests.length).toBe(1)
      // 9007199254740992 < 9007199254740993, though both are the same JS number.
      const back = yield* tinyServer(() => ({ body: envelopeJson({ product, token: '"9007199254740992"', count: 1, queuecount: 5 }) }))
      const b = yield* Effect.flip(run({ baseUrl: back.url, apiKey: "k", startToken: "9007199254740993" }))
      expect(b._tag).toBe("ApiError")
      expect(b.message).toContain("went backwards")
    })))

  for (const format of ["json", "xml"] as const) {
    it.live(`${format}: a 200 whose body is cut short is retried like a reset; a body that stays unreadable is a DecodeError after the retries; one that does not fit the envelope is not retried`, () =>
      live(Effect.gen(function*() {
        const whole = format === "json"
          ? envelopeJson({ product: '[{"product_id":7,"imagesURL":[{"sequence":1,"imagefilename":"a.png","imageURL":"https://cdn.example/a.png"}]}]', token: '"15"', count: 1 })
          : `<result returncode="0" returnmsg="" version="1" token="15" count="1" queuecount="0"><product product_id="7">` +
            `<imagesURL sequence="1" imagefilename="a.png" imageURL="https://cdn.example/a.png" /></product></result>`
        const type = format === "json" ? "application/json; charset=utf-8" : "application/xml; charset=utf-8"
        // The first answer is complete as HTTP goes (its Content-Length matches) but holds half the document.
        const flaky = yield* tinyServer((_, seen) => ({ type, body: seen === 1 ? whole.slice(0, Math.floor(whole.length / 2)) : whole }))
        const result = yield* run({ baseUrl: flaky.url, apiKey: "k", retry: fastRetry, format, images: "url" })
        expect(result.records.map((r) => [r.productId, r.imageId, r.url])).toEqual([["7", "a.png", "https://cdn.example/a.png"]])
        expect(flaky.requests.length).toBe(2)
        expect(result.retries).toBe(1)
        const broken = yield* tinyServer(() => ({ type, body: whole.slice(0, Math.floor(whole.length / 2)) }))
        const failed = yield* Effect.flip(run({ baseUrl: broken.url, apiKey: "k", retry: { ...fastRetry, maxRetries: 2 }, format }))
        expect(failed._tag).toBe("DecodeError")
        expect(failed.message).toMatch(/^source 'acceo': the response to GET http:\/\/127\.0\.0\.1:\d+\/products\/images\S* could not be read: the body is not (valid JSON|well-formed XML)/)
        expect(broken.requests.length).toBe(3)
        const misshapen = yield* tinyServer(() => ({ body: `{"product":[],"returncode":"zero"}` }))
        yield* Effect.flip(run({ baseUrl: misshapen.url, apiKey: "k", retry: fastRetry }))
        expect(misshapen.requests.length).toBe(1)
      })))
  }

  it.live("a body that is neither JSON nor XML, or lacks queuecount, is a DecodeError naming the source", () =>
    live(Effect.gen(function*() {
      const html = yield* tinyServer(() => ({ type: "text/html", body: "hello" }))
      const a = yield* Effect.flip(run({ baseUrl: html.url, apiKey: "k", retry: fastRetry }))
      expect(a._tag).toBe("DecodeError")
      expect(a.message).toContain("source 'acceo'")
      expect(a.message).toContain("neither JSON nor XML")
      const shapeless = yield* tinyServer(() => ({ body: `{"product":[],"returncode":0}` }))
      const b = yield* Effect.flip(run({ baseUrl: shapeless.url, apiKey: "k" }))
      expect(b._tag).toBe("DecodeError")
      expect(b.message).toContain("has no queuecount")
      const wrong = yield* tinyServer(() => ({ body: `{"product":[],"returncode":"zero"}` }))
      const c = yield* Effect.flip(run({ baseUrl: wrong.url, apiKey: "k" }))
      expect(c._tag).toBe("DecodeError")
      expect(c.message).toContain("at returncode")
    })))

  it.live("an XML body with a DOCTYPE and an external entity is refused: nothing of the file is read", () =>
    live(Effect.gen(function*() {
      const xxe = `<?xml version="1.0"?>\n<!DOCTYPE result [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n` +
        `<result returncode="0" returnmsg="&x;" version="1" token="5" count="1" queuecount="0"><warnings>&x;</warnings>` +
        `<product product_id="1"><images><image sequence="1" imagefilename="&x;" binaryimage="QUJD"/></images></product></result>`
      const server = yield* tinyServer(() => ({ type: "application/xml", body: xxe }))
      const { error, result } = yield* runUntil({ baseUrl: server.url, apiKey: "k", format: "xml" })
      const failure = Option.getOrThrow(error)
      expect(failure._tag).toBe("DecodeError")
      expect(failure.message).toContain("DOCTYPE")
      expect(result.records).toEqual([])
      expect(JSON.stringify(failure)).not.toContain("root:")
    })))

  it.live("a billion-laughs XML body is refused at once", () =>
    live(Effect.gen(function*() {
      const levels = Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`).join("")
      const body = `<?xml version="1.0"?><!DOCTYPE result [<!ENTITY lol0 "lol">${levels}]>` +
        `<result returncode="0" returnmsg="&lol9;" version="1" token="5" count="0" queuecount="0"><warnings>&lol9;</warnings></result>`
      const server = yield* tinyServer(() => ({ type: "application/xml", body }))
      const failure = yield* Effect.flip(run({ baseUrl: server.url, apiKey: "k", format: "xml" }))
      expect(failure._tag).toBe("DecodeError")
      expect(failure.message).toContain("DOCTYPE")
    })))
})

describe("acceo source: check (dry run)", () => {
  it.live("one feed request in feed mode, one product request in products mode", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      yield* check(simConfig(sim))
      expect(sim.requests().byPath).toEqual({ "/products/images": 1 })
      yield* check(simConfig(sim, { mode: "products", productIds: ["1002", "1003"] }))
      expect(sim.requests().byPath).toEqual({ "/products/images": 1, "/products/images/1002": 1 })
      const refused = yield* Effect.flip(check(simConfig(sim, { apiKey: "nope-nope-nope" })))
      expect(refused._tag).toBe("Unauthorized")
      expect(refused.message).not.toContain("nope-nope-nope")
    })))
})
