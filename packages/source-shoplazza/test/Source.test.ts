import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Batch } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Simulator from "../src/Simulator.js"
import { endpoint } from "../src/Source.js"
import { check, expectedOf, fastBucket, imagesPathOf, listPath, live, plain, run, runUntil, simConfig } from "./Harness.js"

/** The product ids of a run's batches, one entry per batch (a product with no images is an empty batch). */
const productsOf = (batches: ReadonlyArray<Batch.Batch>) =>
  batches.map((b) => [...new Set(Chunk.toArray(b.records).map((r) => r.productId))])

describe("shoplazza source: full sync", () => {
  it.live("every image of every product, one product-complete batch per product, in list order", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      expect(sim.catalogue.some((p) => p.images.length === 0)).toBe(true)
      expect(sim.catalogue.some((p) => p.images.length >= 12)).toBe(true)
      const result = yield* run(simConfig(sim, { limit: 7, concurrency: 4 }))
      expect(result.productComplete).toBe(true)
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue))
      expect(result.rejected).toEqual([])
      // One batch per product, each holding that product's images only (an empty one for a product with none).
      expect(result.batches.length).toBe(sim.catalogue.length)
      expect(productsOf(result.batches)).toEqual(sim.catalogue.map((p) => (p.images.length === 0 ? [] : [p.id])))
      // Every batch carries a position checkpoint; the last one points past the last product.
      expect(result.batches.every((b) => Option.isSome(b.checkpoint) && b.checkpoint.value.kind === "position")).toBe(true)
      expect(result.checkpoints.at(-1)).toMatchObject({ done: 2, lastId: sim.catalogue.at(-1)!.id })
      // Each product's images asked for exactly once, and the list page by page.
      const byPath = sim.requests().byPath
      for (const p of sim.catalogue) expect(byPath[imagesPathOf(p.id)]).toBe(1)
      expect(byPath[listPath]).toBe(Math.ceil(sim.catalogue.length / 7))
      expect(result.pages).toBe(sim.catalogue.length)
    })))

  it.live("a protocol-relative src becomes https: by default", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 6, bucket: fastBucket })
      expect(sim.catalogue.flatMap((p) => p.images).every((i) => i.src.startsWith("//127.0.0.1:"))).toBe(true)
      const { protocolRelativeScheme: _http, ...config } = simConfig(sim)
      const result = yield* run(config)
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue, "https"))
      expect(result.records.every((r) => r.url!.startsWith("https://127.0.0.1:"))).toBe(true)
    })))

  it.live("with protocolRelativeScheme http the URLs serve exactly the images' bytes", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 8, bucket: fastBucket })
      const product = sim.catalogue.find((p) => p.images.length >= 2)!
      const result = yield* run(simConfig(sim, { productIds: [product.id] }))
      expect(result.records.length).toBe(product.images.length)
      for (const record of result.records) {
        const bytes = yield* Effect.promise(() => fetch(record.url!).then((r) => r.arrayBuffer()))
        const image = product.images.find((i) => i.id === record.imageId)!
        expect(createHash("sha256").update(new Uint8Array(bytes)).digest("hex")).toBe(image.sha256)
      }
    })))

  it.live("alt text is kept exactly as sent: an empty alt stays \"\"", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const images = sim.catalogue.flatMap((p) => p.images)
      expect(images.some((i) => i.alt === "")).toBe(true)
      expect(images.some((i) => i.alt.includes("\n"))).toBe(true)
      const result = yield* run(simConfig(sim))
      expect(result.records.map((r) => r.alt)).toEqual(images.map((i) => i.alt))
    })))
})

describe("shoplazza source: productIds", () => {
  it.live("productIds limits the run to those products, in the order given, without reading the list", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const chosen = [sim.catalogue[5]!, sim.catalogue.find((p) => p.images.length === 0)!, sim.catalogue[2]!]
      const result = yield* run(simConfig(sim, { productIds: chosen.map((p) => p.id), concurrency: 2 }))
      expect(result.records.map(plain)).toEqual(expectedOf(chosen))
      expect(result.rejected).toEqual([])
      expect(result.batches.length).toBe(3)
      expect(sim.requests().byPath).toEqual(Object.fromEntries(chosen.map((p) => [imagesPathOf(p.id), 1])))
      expect(result.checkpoints.at(-1)).toMatchObject({ page: 0, done: 3, lastId: chosen[2]!.id })
    })))

  it.live("an id the shop does not know is a dead letter (422 Record not found); the others are read", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const unknown = "00000000-0000-4000-8000-000000000000"
      const known = sim.catalogue.find((p) => p.images.length > 0)!
      const result = yield* run(simConfig(sim, { productIds: [unknown, known.id] }))
      expect(result.records.map(plain)).toEqual(expectedOf([known]))
      expect(result.rejected.length).toBe(1)
      expect(result.rejected[0]).toMatchObject({ source: "shoplazza", stage: "source", payload: { product_id: unknown } })
      expect(result.rejected[0]!.error).toContain("HTTP 422 (Record not found)")
      expect(result.rejected[0]!.error).toMatch(/\[request id [0-9a-f-]{36}\]/)
    })))

  it.live("productIdsFile: one id per line, comments and blank lines skipped", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoplazza-ids-"))
      const file = path.join(dir, "ids.txt")
      const chosen = sim.catalogue.slice(3, 6)
      fs.writeFileSync(file, `# products to sync\n${chosen[0]!.id}\n\n  ${chosen[1]!.id}  \n${chosen[2]!.id}\n`)
      const result = yield* run(simConfig(sim, { productIdsFile: file }))
      expect(result.records.map(plain)).toEqual(expectedOf(chosen))
      fs.rmSync(dir, { recursive: true, force: true })
    })))

  it.live("an id that is not a UUID is a config error naming it, before any request", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const error = yield* Effect.flip(run(simConfig(sim, { productIds: [sim.catalogue[0]!.id, "12345"] })))
      expect(error._tag).toBe("ConfigError")
      expect(error.message).toContain("productIds[1]")
      expect(error.message).toContain("expected a UUID")
      expect(sim.requests().total).toBe(0)
    })))
})

describe("shoplazza source: where the shop is", () => {
  it("shop gives https://{shop}.myshoplaza.com/openapi/{version}; baseUrl replaces the origin", () => {
    expect(endpoint({ shop: "acme", version: "2022-01" }, "s")).toEqual(
      Either.right({ apiBase: "https://acme.myshoplaza.com/openapi/2022-01", shopLabel: "shop 'acme' (https://acme.myshoplaza.com)" })
    )
    expect(endpoint({ baseUrl: "http://127.0.0.1:8080/", version: "2025-06" }, "s")).toEqual(
      Either.right({ apiBase: "http://127.0.0.1:8080/openapi/2025-06", shopLabel: "the shop at http://127.0.0.1:8080" })
    )
  })

  it.live("shop and baseUrl together, or neither, is a config error", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 1 })
      const both = yield* Effect.flip(run(simConfig(sim, { shop: "acme" })))
      expect(both).toMatchObject({ _tag: "ConfigError", path: "sources.shoplazza.with.baseUrl" })
      expect(both.message).toContain("not both")
      const { baseUrl: _b, ...none } = simConfig(sim)
      const neither = yield* Effect.flip(run(none))
      expect(neither).toMatchObject({ _tag: "ConfigError", path: "sources.shoplazza.with.shop" })
      expect(sim.requests().total).toBe(0)
    })))

  it.live("a shop that is not a subdomain is refused by the schema", () =>
    live(Effect.gen(function*() {
      const error = yield* Effect.flip(run({ shop: "acme.myshoplaza.com/x", accessToken: "t" }))
      expect(String(error)).toContain("expected the shop's subdomain")
    })))
})

describe("shoplazza source: resume", () => {
  it.live("a killed run resumes at the first unfinished product: nothing lost, nothing twice, no finished product refetched", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const config = simConfig(sim, { limit: 7, concurrency: 4 })
      const first = yield* run(config, { take: 10 })
      const last = first.batches[9]!.checkpoint
      expect(Option.getOrThrow(last).value).toMatchObject({ done: 3, lastId: sim.catalogue[9]!.id, reading: "products limit=7" })
      // The rerun talks to a fresh simulator with the same seed (the same catalogue), so its counters
      // are not blurred by the first run's prefetches that were in flight when it was cut.
      const again = yield* Simulator.make({ bucket: fastBucket })
      expect(again.catalogue.map((p) => p.id)).toEqual(sim.catalogue.map((p) => p.id))
      const second = yield* run({ ...config, baseUrl: again.url }, { checkpoint: last })
      expect(first.records.map(plain)).toEqual(expectedOf(sim.catalogue.slice(0, 10)))
      expect(second.records.map(plain)).toEqual(expectedOf(again.catalogue.slice(10)))
      const ids = [...first.records, ...second.records].map((r) => r.imageId)
      expect(new Set(ids).size).toBe(sim.catalogue.reduce((n, p) => n + p.images.length, 0))
      expect(ids.length).toBe(new Set(ids).size)
      // Only the products after the tenth were asked for, each once; the list from its second page on.
      const byPath = again.requests().byPath
      for (const p of again.catalogue.slice(0, 10)) expect(byPath[imagesPathOf(p.id)]).toBeUndefined()
      for (const p of again.catalogue.slice(10)) expect(byPath[imagesPathOf(p.id)]).toBe(1)
      expect(byPath[listPath]).toBe(Math.ceil(sim.catalogue.length / 7) - 1)
    })))

  it.live("productIds resume after the last id done", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const ids = sim.catalogue.slice(0, 8).map((p) => p.id)
      const first = yield* run(simConfig(sim, { productIds: ids, concurrency: 1 }), { take: 3 })
      const again = yield* Simulator.make({ bucket: fastBucket })
      const second = yield* run(simConfig(again, { productIds: ids, concurrency: 1 }), { checkpoint: first.batches[2]!.checkpoint })
      expect(second.records.map(plain)).toEqual(expectedOf(again.catalogue.slice(3, 8)))
      expect(Object.keys(again.requests().byPath).sort()).toEqual(ids.slice(3).map(imagesPathOf).sort())
    })))

  it.live("a checkpoint at the very end reads nothing more", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 9, bucket: fastBucket })
      const config = simConfig(sim, { limit: 4 })
      const full = yield* run(config)
      const again = yield* Simulator.make({ products: 9, bucket: fastBucket })
      const rest = yield* run({ ...config, baseUrl: again.url }, { checkpoint: full.batches.at(-1)!.checkpoint })
      expect(rest.records).toEqual([])
      // Only the last page is asked for again (to find where the last product was); no images.
      expect(again.requests().byPath).toEqual({ [listPath]: 1 })
    })))

  it.live("a resume under other settings is refused, not read from the wrong place", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const first = yield* run(simConfig(sim, { limit: 7 }), { take: 4 })
      const checkpoint = first.batches[3]!.checkpoint
      for (const other of [{ limit: 5 }, { productIds: [sim.catalogue[0]!.id] }]) {
        const error = yield* Effect.flip(run(simConfig(sim, other), { checkpoint }))
        expect(error._tag).toBe("ConfigError")
        expect(error.message).toContain("--restart")
      }
      const foreign = yield* Effect.flip(run(simConfig(sim), { checkpoint: Option.some(Batch.position({ page: 3 })) }))
      expect(foreign._tag).toBe("ConfigError")
    })))
})

describe("shoplazza source: the rate limit", () => {
  // A small, fast bucket (5 requests, leaking 20/s) stands in for Shoplazza's 40 leaking 2/s, and the
  // source is configured the way the default is: the leak rate, with a burst below the bucket.
  const bucket = { capacity: 5, leakPerSecond: 20 }
  const retry = { maxRetries: 10, baseDelay: "50 millis", maxDelay: "400 millis" }

  it.live("paced at the leak rate, the source never pushes the bucket into more than a handful of 429s and finishes", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 20, bucket })
      const result = yield* run(simConfig(sim, { limit: 8, concurrency: 4, retry, rateLimit: { requestsPerSecond: 20, burst: 2 } }))
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue))
      expect(sim.rateLimited()).toBeLessThanOrEqual(3)
    })))

  it.live("without pacing the same run is answered many 429s (what the pacing prevents)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 20, bucket })
      yield* runUntil(simConfig(sim, { limit: 8, concurrency: 8, retry, rateLimit: false }))
      expect(sim.rateLimited()).toBeGreaterThan(5)
    })))

  it.live("a 429 caused by another app (the bucket drained before and during the run) is backed off and survived", () =>
    live(Effect.gen(function*() {
      // A slower leak (one slot per 200 ms), so the full bucket is still full when the next request
      // comes, however busy the machine is.
      const slow = { capacity: 5, leakPerSecond: 5 }
      const sim = yield* Simulator.make({ products: 10, bucket: slow })
      sim.consume(slow.capacity)
      const result = yield* run(simConfig(sim, { limit: 8, concurrency: 4, retry, rateLimit: { requestsPerSecond: 5, burst: 2 } }), {
        onBatch: (_, index) => {
          if (index === 4) sim.consume(slow.capacity)
        }
      })
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue))
      expect(result.rejected).toEqual([])
      expect(sim.rateLimited()).toBeGreaterThanOrEqual(2)
      expect(result.retries).toBeGreaterThanOrEqual(sim.rateLimited())
    })))
})

describe("shoplazza source: errors", () => {
  it.live("a product deleted mid-run is a dead-letter entry and the run goes on", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 12, bucket: fastBucket })
      const victim = sim.catalogue[7]!
      const result = yield* run(simConfig(sim, { limit: 10, concurrency: 1 }), {
        onBatch: (_, index) => {
          // The first page (10 products, the victim among them) has been listed; its images not yet asked for.
          if (index === 0) expect(sim.deleteProduct(victim.id)).toBe(true)
        }
      })
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue.filter((p) => p.id !== victim.id)))
      expect(result.rejected.length).toBe(1)
      expect(result.rejected[0]).toMatchObject({ source: "shoplazza", stage: "source", payload: { product_id: victim.id } })
      expect(result.rejected[0]!.error).toContain("Record not found")
      expect(result.rejected[0]!.error).toContain("deleted")
      // Its batch still carries its checkpoint, and the products after it were read.
      const batch = result.batches[7]!
      expect(Chunk.size(batch.rejected)).toBe(1)
      expect(Option.getOrThrow(batch.checkpoint).value).toMatchObject({ done: 8, lastId: victim.id })
      expect(result.batches.length).toBe(12)
    })))

  it.live("a refused token fails fast with Unauthorized naming the shop, never the token", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const token = "wrong-token-0123456789abcdef"
      const { error, result } = yield* runUntil(simConfig(sim, { accessToken: token }))
      expect(result.batches).toEqual([])
      const failure = Option.getOrThrow(error)
      expect(failure).toMatchObject({ _tag: "Unauthorized", status: 401, source: "shoplazza" })
      expect(failure.message).toContain(`the shop at ${sim.url} refused the access token`)
      expect(failure.message).toContain("HTTP 401: Unauthorized")
      expect(failure.message).toMatch(/\[request id [0-9a-f-]{36}\]/)
      expect(failure.message).not.toContain(token)
      expect(JSON.stringify(failure)).not.toContain(token)
      expect(sim.requests().total).toBe(1)
      expect(result.retries).toBe(0)
    })))

  it.live("5xx, 429, resets, truncated bodies and latency lose nothing and repeat nothing", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({
        bucket: fastBucket,
        faults: { kinds: ["5xx", "429", "reset", "truncate", "latency"], rate: 0.3, latencyMs: 5, seed: 11 }
      })
      const result = yield* run(simConfig(sim, { limit: 7, concurrency: 4 }))
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue))
      expect(result.rejected).toEqual([])
      expect(result.batches.length).toBe(sim.catalogue.length)
      expect(sim.requests().faults).toBeGreaterThan(0)
      expect(result.retries).toBeGreaterThan(0)
    })))
})

describe("shoplazza source: request ids in the logs", () => {
  it.live("every retried error and every dead letter is logged with the Request-Id of the answer", () => {
    const logs: Array<{ readonly message: string; readonly annotations: Record<string, unknown> }> = []
    const capture = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ annotations, message }) => {
        logs.push({ message: Array.isArray(message) ? message.join(" ") : String(message), annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
      })
    )
    return live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket, faults: { kinds: ["5xx", "429"], rate: 0.3, seed: 5 } })
      sim.deleteProduct(sim.catalogue[4]!.id)
      const ids = sim.catalogue.slice(0, 10).map((p) => p.id)
      const result = yield* run(simConfig(sim, { productIds: ids }))
      expect(result.rejected.length).toBe(1)
      const retried = logs.filter((l) => typeof l.annotations["delayMillis"] === "number")
      const deadLetters = logs.filter((l) => l.message.includes("dead-letter"))
      expect(retried.length).toBeGreaterThan(0)
      expect(deadLetters.length).toBe(1)
      for (const l of [...retried, ...deadLetters]) {
        expect(l.annotations["requestId"]).toMatch(/^[0-9a-f-]{36}$/)
        expect(l.message).toContain(`[request id ${String(l.annotations["requestId"])}]`)
      }
    }).pipe(Effect.provide(capture), Logger.withMinimumLogLevel(LogLevel.All)))
  })
})

describe("shoplazza source: check (dry run)", () => {
  it.live("one request for one product proves the URL, version and token", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      yield* check(simConfig(sim))
      expect(sim.requests().byPath).toEqual({ [listPath]: 1 })
    })))

  it.live("fails with Unauthorized naming the shop for a wrong token", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const error = yield* Effect.flip(check(simConfig(sim, { accessToken: "nope-nope" })))
      expect(error).toMatchObject({ _tag: "Unauthorized", status: 401 })
      expect(error.message).toContain(`the shop at ${sim.url}`)
    })))

  it.live("an API version the shop does not serve fails with the API's 404", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const error = yield* Effect.flip(check(simConfig(sim, { version: "2019-07" })))
      expect(error).toMatchObject({ _tag: "ApiError", status: 404 })
    })))
})
