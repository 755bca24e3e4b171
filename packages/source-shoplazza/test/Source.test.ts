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
import { endpoint, reads, shoplazza } from "../src/Source.js"
import {
  check,
  countPath,
  expectedOf,
  fastBucket,
  imageRequests,
  imagesPathOf,
  listPath,
  live,
  merged,
  mergedOf,
  plain,
  productsRead,
  run,
  type RunResult,
  runUntil,
  simConfig
} from "./Harness.js"

/** The product ids of a run's batches, one entry per batch (a product with no images, or a checkpoint-only batch, is empty). */
const productsOf = (batches: ReadonlyArray<Batch.Batch>) =>
  batches.map((b) => [...new Set(Chunk.toArray(b.records).map((r) => r.productId))])

/** The requests a simulator answered while `body` ran, per path. */
const requestsDuring = <A, E, R>(sim: Simulator.ShoplazzaSimulator, body: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const before = sim.requests().byPath
    const value = yield* body
    const after = sim.requests().byPath
    const byPath: Record<string, number> = {}
    for (const [p, n] of Object.entries(after)) if (n !== (before[p] ?? 0)) byPath[p] = n - (before[p] ?? 0)
    return { value, byPath }
  })

/** The high-water mark of a run's last checkpoint (what the runner carries into the next run). */
const markOf = (result: RunResult): unknown => {
  const last = Option.getOrThrow(result.last)
  expect(last.kind).toBe("cursor")
  expect(["highWater", "highWater,atMark"]).toContain(Object.keys(last.value as object).join(","))
  return (last.value as { highWater: unknown }).highWater
}

/** The highest `updated_at` of some products, as the checkpoint writes it. */
const highest = (products: ReadonlyArray<Simulator.CatalogueProduct>): string =>
  new Date(Math.max(...products.map((p) => Date.parse(p.updated_at)))).toISOString()

/** The products a finished run names as read at its mark (skipped by the next run while unchanged). */
const atMarkOf = (result: RunResult): Record<string, string> =>
  ((Option.getOrThrow(result.last).value as { atMark?: Record<string, string> }).atMark) ?? {}

/** The products an incremental run with `overlap` lists after a run whose mark was `mark`. */
const overlapOf = (products: ReadonlyArray<Simulator.CatalogueProduct>, mark: string, overlapMs = 1000) =>
  products.filter((p) => Date.parse(p.updated_at) >= Math.floor((Date.parse(mark) - overlapMs) / 1000) * 1000)

describe("shoplazza source: full sync", () => {
  for (const [products, pageSize] of [[30, 7], [40, 20], [30, undefined]] as const) {
    it.live(`${products} products, pageSize ${pageSize ?? "default (250)"}: ceil(N / pageSize) list requests, no per-product request`, () =>
      live(Effect.gen(function*() {
        const sim = yield* Simulator.make({ products, bucket: fastBucket })
        expect(sim.catalogue.some((p) => p.images.length === 0)).toBe(true)
        expect(sim.catalogue.some((p) => p.images.length >= 12)).toBe(true)
        const result = yield* run(simConfig(sim, pageSize === undefined ? {} : { pageSize }))
        expect(result.productComplete).toBe(true)
        expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue))
        expect(result.rejected).toEqual([])
        // The list pages, the count, and nothing else: the images came with the list.
        const pages = Math.ceil(products / (pageSize ?? 250))
        expect(sim.requests().byPath).toEqual({ [listPath]: pages, [countPath]: 1 })
        expect(imageRequests(sim.requests().byPath)).toBe(0)
        expect(result.pages).toBe(pages)
        // One batch per product, each holding that product's images only, then the new high-water mark.
        expect(result.batches.length).toBe(products + 1)
        expect(productsOf(result.batches)).toEqual([...sim.catalogue.map((p) => (p.images.length === 0 ? [] : [p.id])), []])
        expect(result.batches.every((b) => Option.isSome(b.checkpoint) && b.checkpoint.value.kind === "cursor")).toBe(true)
        expect(result.checkpoints.at(-2)).toMatchObject({ highWater: null, listing: { done: products - (pages - 1) * (pageSize ?? 250), lastId: sim.catalogue.at(-1)!.id } })
        expect(markOf(result)).toBe(highest(sim.catalogue))
        // The progress total ends at the number of records.
        expect(result.totals.at(-1)).toBe(result.records.length)
      })))
  }

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
      const result = yield* run(simConfig(sim))
      expect(result.records.length).toBeGreaterThan(4)
      for (const record of result.records) {
        const bytes = yield* Effect.promise(() => fetch(record.url!).then((r) => r.arrayBuffer()))
        const image = sim.catalogue.flatMap((p) => p.images).find((i) => i.id === record.imageId)!
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

  it.live("a product listed without an images key has them asked for on its own; the others still come from the list", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const without = [sim.catalogue[2]!, sim.catalogue[11]!, sim.catalogue.find((p) => p.images.length === 0)!]
      sim.setListImages(without.map((p) => p.id))
      const result = yield* run(simConfig(sim, { pageSize: 8, concurrency: 2 }))
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue))
      expect(sim.requests().byPath).toEqual({
        [listPath]: 4,
        [countPath]: 1,
        ...Object.fromEntries(without.map((p) => [imagesPathOf(p.id), 1]))
      })
      expect(productsOf(result.batches).slice(0, -1)).toEqual(sim.catalogue.map((p) => (p.images.length === 0 ? [] : [p.id])))
    })))

  it.live("a shop whose list carries no images at all: one images request per product, batches still in list order", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket, listImages: false })
      const result = yield* run(simConfig(sim, { pageSize: 7, concurrency: 4 }))
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue))
      const byPath = sim.requests().byPath
      for (const p of sim.catalogue) expect(byPath[imagesPathOf(p.id)]).toBe(1)
      expect(byPath[listPath]).toBe(5)
      expect(markOf(result)).toBe(highest(sim.catalogue))
    })))

  it("says how it reads (effetl plugins shoplazza)", () => {
    expect(shoplazza.reads).toBe(reads)
    expect(reads.fullScan).toContain("GET /products?per_page=&cursor=&fields=id,updated_at,images")
    expect(reads.incremental).toContain("updated_at_min")
    expect(reads.byId).toContain("productIds")
  })
})

describe("shoplazza source: incremental", () => {
  it.live("a second run right after a finished one: one list request for the overlap, and nothing read", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const config = simConfig(sim, { pageSize: 7 })
      const first = yield* run(config)
      const mark = markOf(first)
      expect(mark).toBe(highest(sim.catalogue))
      const { value: second, byPath } = yield* requestsDuring(sim, run(config, { checkpoint: first.last, resumed: false }))
      // The filter lets through only the products at the mark (the overlap): one list page.
      expect(byPath).toEqual({ [listPath]: 1, [countPath]: 1 })
      const again = overlapOf(sim.catalogue, mark as string)
      expect(again.length).toBeGreaterThanOrEqual(1)
      expect(again.length).toBeLessThan(7)
      // The first run named them as read at its mark; unchanged, they are skipped: nothing is read.
      expect(Object.keys(atMarkOf(first)).sort()).toEqual(again.map((p) => p.id).sort())
      expect(second.records).toEqual([])
      expect(second.rejected).toEqual([])
      expect(merged(first, second)).toEqual(merged(first))
      expect(merged(first)).toEqual(mergedOf(sim.catalogue))
      expect(second.checkpoints[0]).toMatchObject({ highWater: mark, listing: { reading: `products per_page=7 updated_at_min=${isoSecondsBefore(mark as string, 1000)}` } })
      expect(markOf(second)).toBe(mark)
      expect(atMarkOf(second)).toEqual(atMarkOf(first))
    })))

  it.live("after the simulator changes 5 products, the next run reads exactly those, and the merged result equals a full refresh", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 60, bucket: fastBucket })
      const config = simConfig(sim, { pageSize: 10 })
      const first = yield* run(config)
      expect(markOf(first)).toBe(highest(sim.catalogue))
      const touched = sim.touchProducts(5)
      expect(touched.length).toBe(5)
      const { value: second, byPath } = yield* requestsDuring(sim, run(config, { checkpoint: first.last, resumed: false }))
      expect(byPath).toEqual({ [listPath]: 1, [countPath]: 1 })
      const changed = new Set(touched.map((p) => p.id))
      expect(productsRead(second)).toEqual(sim.catalogue.filter((p) => changed.has(p.id)).map((p) => p.id))
      expect(markOf(second)).toBe(new Date(sim.now()).toISOString())
      // --full-refresh: the runner passes no checkpoint, and everything is read.
      const { value: refresh, byPath: refreshed } = yield* requestsDuring(sim, run(config))
      expect(refreshed).toEqual({ [listPath]: 6, [countPath]: 1 })
      expect(merged(first, second)).toEqual(merged(refresh))
      expect(merged(refresh)).toEqual(mergedOf(sim.catalogue))
      expect(merged(first, second)).not.toEqual(merged(first))
      // And a third run lists the changed ones again (they are at the new mark), and reads none of them.
      expect(Object.keys(atMarkOf(second)).sort()).toEqual([...changed].sort())
      const { value: third, byPath: listedAgain } = yield* requestsDuring(sim, run(config, { checkpoint: second.last, resumed: false }))
      expect(listedAgain).toEqual({ [listPath]: 1, [countPath]: 1 })
      expect(third.records).toEqual([])
    })))

  it.live("the overlap is configurable: updated_at_min = mark - overlap", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const first = yield* run(simConfig(sim))
      const mark = markOf(first) as string
      const second = yield* run(simConfig(sim, { overlap: "720 hours" }), { checkpoint: first.last, resumed: false })
      expect(second.checkpoints[0]).toMatchObject({ listing: { reading: `products per_page=250 updated_at_min=${isoSecondsBefore(mark, 30 * 86_400_000)}` } })
      const again = overlapOf(sim.catalogue, mark, 30 * 86_400_000).filter((p) => !(p.id in atMarkOf(first)))
      expect(again.filter((p) => p.images.length > 0).length).toBeGreaterThan(1)
      expect(productsRead(second)).toEqual(again.filter((p) => p.images.length > 0).map((p) => p.id))
    })))

  it.live("a product changed during the run behind the cursor is read by the next run (the mark is held at the shop's clock when the listing began)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const config = simConfig(sim, { pageSize: 5 })
      const began = sim.now()
      const behind = sim.catalogue.slice(0, 3).find((p) => p.images.length > 0)!
      const ahead = sim.catalogue[25]!
      const first = yield* run(config, {
        onBatch: (_, index) => {
          if (index !== 3) return
          sim.touchProducts([behind.id]) // already read: this run keeps its old version
          sim.touchProducts([ahead.id]) // not listed yet: this run reads its new version, with a later updated_at
        }
      })
      expect(merged(first)[behind.id]).not.toEqual(mergedOf([sim.catalogue.find((p) => p.id === behind.id)!])[behind.id])
      expect(merged(first)[ahead.id]).toEqual(mergedOf([sim.catalogue[25]!])[ahead.id])
      // The highest updated_at listed is the ahead product's; the mark stays at the clock when the listing began.
      expect(markOf(first)).toBe(new Date(began).toISOString())
      const second = yield* run(config, { checkpoint: first.last, resumed: false })
      expect(productsRead(second)).toEqual([behind.id, ahead.id])
      expect(merged(first, second)).toEqual(mergedOf(sim.catalogue))
    })))

  it.live("a product listed twice in one run (the list shifted under the cursor) is emitted once, with a warning; the next run reads its new version", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const config = simConfig(sim, { pageSize: 5 })
      const moved = sim.catalogue.slice(0, 3).find((p) => p.images.length > 0)!
      const first = yield* run(config, {
        onBatch: (_, index) => {
          // Changed after it was read, and moved to the end of the list: the listing meets it again.
          if (index === 3) sim.touchProducts([moved.id], { reorder: true })
        }
      })
      expect(sim.catalogue.at(-1)!.id).toBe(moved.id)
      const ids = productsRead(first)
      expect(ids.filter((id) => id === moved.id).length).toBe(1)
      expect(new Set(ids).size).toBe(ids.length)
      expect(first.records.length).toBe(new Set(first.records.map((r) => r.imageId)).size)
      expect(first.warnings).toBe(1)
      expect(first.logs.filter((l) => l.includes(`product ${moved.id} was listed a second time`))).toHaveLength(1)
      const second = yield* run(config, { checkpoint: first.last, resumed: false })
      expect(productsRead(second)).toContain(moved.id)
      expect(merged(first, second)).toEqual(mergedOf(sim.catalogue))
    })))

  it.live("productIds read the named products and keep the high-water mark as it was", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const first = yield* run(simConfig(sim))
      const chosen = sim.catalogue.slice(3, 6)
      const named = yield* run(simConfig(sim, { productIds: chosen.map((p) => p.id) }), { checkpoint: first.last, resumed: false })
      expect(named.records.map(plain)).toEqual(expectedOf(chosen))
      expect(markOf(named)).toBe(markOf(first))
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
      expect(result.batches.length).toBe(4)
      expect(sim.requests().byPath).toEqual(Object.fromEntries(chosen.map((p) => [imagesPathOf(p.id), 1])))
      expect(result.checkpoints.at(-2)).toMatchObject({ highWater: null, listing: { page: 0, done: 3, lastId: chosen[2]!.id } })
      expect(markOf(result)).toBeNull()
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
  it.live("a killed run resumes at the first unfinished product: nothing lost, nothing twice, no finished page listed again", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket, listImages: false })
      const config = simConfig(sim, { pageSize: 7, concurrency: 4 })
      const first = yield* run(config, { take: 10 })
      const last = first.batches[9]!.checkpoint
      expect(Option.getOrThrow(last)).toMatchObject({
        kind: "cursor",
        value: { highWater: null, listing: { done: 3, lastId: sim.catalogue[9]!.id, reading: "products per_page=7 updated_at_min=none" } }
      })
      // The rerun talks to a fresh simulator with the same seed (the same catalogue), so its counters
      // are not blurred by the first run's prefetches that were in flight when it was cut.
      const again = yield* Simulator.make({ bucket: fastBucket, listImages: false })
      expect(again.catalogue.map((p) => p.id)).toEqual(sim.catalogue.map((p) => p.id))
      const second = yield* run({ ...config, baseUrl: again.url }, { checkpoint: last, resumed: true })
      expect(first.records.map(plain)).toEqual(expectedOf(sim.catalogue.slice(0, 10)))
      expect(second.records.map(plain)).toEqual(expectedOf(again.catalogue.slice(10)))
      const ids = [...first.records, ...second.records].map((r) => r.imageId)
      expect(ids.length).toBe(sim.catalogue.reduce((n, p) => n + p.images.length, 0))
      expect(ids.length).toBe(new Set(ids).size)
      // Only the products after the tenth were asked for, each once; the list from its second page on.
      const byPath = again.requests().byPath
      for (const p of again.catalogue.slice(0, 10)) expect(byPath[imagesPathOf(p.id)]).toBeUndefined()
      for (const p of again.catalogue.slice(10)) expect(byPath[imagesPathOf(p.id)]).toBe(1)
      expect(byPath[listPath]).toBe(Math.ceil(sim.catalogue.length / 7) - 1)
      // The mark is the one an uninterrupted run would have set.
      expect(markOf(second)).toBe(highest(sim.catalogue))
    })))

  it.live("a position saved in a run that a new run carries over (--restart) starts a new listing from the mark", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const config = simConfig(sim, { pageSize: 2 })
      const first = yield* run(config)
      sim.touchProducts(5)
      const cut = yield* run(config, { checkpoint: first.last, resumed: false, take: 1 })
      const carried = cut.batches[0]!.checkpoint
      expect(Option.getOrThrow(carried).value).toMatchObject({ highWater: markOf(first), listing: { page: null, done: 1 } })
      const complete = yield* run(config, { checkpoint: first.last, resumed: false })
      const restarted = yield* run(config, { checkpoint: carried, resumed: false })
      expect(restarted.records.map(plain)).toEqual(complete.records.map(plain))
      expect(markOf(restarted)).toBe(markOf(complete))
      // Resumed in the same run, the same checkpoint goes on after the first product.
      const resumed = yield* run(config, { checkpoint: carried, resumed: true })
      expect(productsOf(resumed.batches)).toEqual(productsOf(complete.batches).slice(1))
    })))

  it.live("a run killed before its first commit resumes with the carried mark: a new incremental listing", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const first = yield* run(simConfig(sim))
      const touched = sim.touchProducts(2)
      const resumed = yield* run(simConfig(sim), { checkpoint: first.last, resumed: true })
      expect(productsRead(resumed)).toEqual(expect.arrayContaining(touched.map((p) => p.id)))
      expect(merged(first, resumed)).toEqual(mergedOf(sim.catalogue))
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

  it.live("a checkpoint after the last product reads nothing more, and sets the same mark", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 9, bucket: fastBucket })
      const config = simConfig(sim, { pageSize: 4 })
      const full = yield* run(config)
      const again = yield* Simulator.make({ products: 9, bucket: fastBucket })
      const rest = yield* run({ ...config, baseUrl: again.url }, { checkpoint: full.batches.at(-2)!.checkpoint })
      expect(rest.records).toEqual([])
      // Only the last page is asked for again (to find where the last product was); no images.
      expect(again.requests().byPath).toEqual({ [listPath]: 1, [countPath]: 1 })
      expect(markOf(rest)).toBe(markOf(full))
    })))

  it.live("a resume under other settings is refused, not read from the wrong place", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ bucket: fastBucket })
      const first = yield* run(simConfig(sim, { pageSize: 7 }), { take: 4 })
      const checkpoint = first.batches[3]!.checkpoint
      for (const other of [{ pageSize: 5 }, { productIds: [sim.catalogue[0]!.id] }]) {
        const error = yield* Effect.flip(run(simConfig(sim, other), { checkpoint }))
        expect(error._tag).toBe("ConfigError")
        expect(error.message).toContain("--restart")
      }
      for (const foreign of [Batch.position({ page: 3 }), Batch.cursor({ page: null, done: 1, reading: "products limit=100" })]) {
        const error = yield* Effect.flip(run(simConfig(sim), { checkpoint: Option.some(foreign) }))
        expect(error._tag).toBe("ConfigError")
        expect(error.message).toContain("not one this source wrote")
      }
    })))
})

describe("shoplazza source: the rate limit", () => {
  // A small, fast bucket (5 requests, leaking 20/s) stands in for Shoplazza's 40 leaking 2/s, and the
  // source is configured the way the default is: the leak rate, with a burst below the bucket. The
  // list carries no images here, so that a sync makes many requests.
  const bucket = { capacity: 5, leakPerSecond: 20 }
  const retry = { maxRetries: 10, baseDelay: "50 millis", maxDelay: "400 millis" }

  it.live("paced at the leak rate, the source never pushes the bucket into more than a handful of 429s and finishes", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 20, bucket, listImages: false })
      const result = yield* run(simConfig(sim, { pageSize: 8, concurrency: 4, retry, rateLimit: { requestsPerSecond: 20, burst: 2 } }))
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue))
      expect(sim.rateLimited()).toBeLessThanOrEqual(3)
    })))

  it.live("without pacing a sync overruns the bucket (what the pacing prevents)", () =>
    live(Effect.gen(function*() {
      // A bucket that hardly leaks (one request per 10 s), so the count does not hang on how fast the
      // machine is: 24 requests overrun its 5, and the first request refused is refused on each of
      // its 6 attempts before the run gives up.
      const sim = yield* Simulator.make({ products: 20, bucket: { capacity: 5, leakPerSecond: 0.1 }, listImages: false })
      const { error } = yield* runUntil(simConfig(sim, { pageSize: 8, concurrency: 8, retry: { maxRetries: 5, baseDelay: "10 millis", maxDelay: "20 millis" }, rateLimit: false }))
      expect(Option.getOrThrow(error)._tag).toBe("RateLimited")
      expect(sim.rateLimited()).toBeGreaterThan(5)
    })))

  it.live("a 429 caused by another app (the bucket drained before and during the run) is backed off and survived", () =>
    live(Effect.gen(function*() {
      // A slower leak (one slot per 200 ms), so the full bucket is still full when the next request
      // comes, however busy the machine is.
      const slow = { capacity: 5, leakPerSecond: 5 }
      const sim = yield* Simulator.make({ products: 10, bucket: slow, listImages: false })
      sim.consume(slow.capacity)
      const result = yield* run(simConfig(sim, { pageSize: 8, concurrency: 4, retry, rateLimit: { requestsPerSecond: 5, burst: 2 } }), {
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
  it.live("a product deleted between its listing and its images request is a dead-letter entry and the run goes on", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 12, bucket: fastBucket, listImages: false })
      const victim = sim.catalogue[7]!
      const result = yield* run(simConfig(sim, { pageSize: 10, concurrency: 1 }), {
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
      expect(Option.getOrThrow(batch.checkpoint).value).toMatchObject({ listing: { done: 8, lastId: victim.id } })
      expect(result.batches.length).toBe(13)
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

  it.live("5xx, 429, resets, truncated bodies and latency at 30 % lose nothing and repeat nothing", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({
        bucket: fastBucket,
        faults: { kinds: ["5xx", "429", "reset", "truncate", "latency"], rate: 0.3, latencyMs: 5, seed: 11 }
      })
      sim.setListImages(sim.catalogue.filter((_, i) => i % 3 === 0).map((p) => p.id))
      const result = yield* run(simConfig(sim, { pageSize: 4, concurrency: 4 }))
      expect(result.records.map(plain)).toEqual(expectedOf(sim.catalogue))
      expect(result.rejected).toEqual([])
      expect(result.batches.length).toBe(sim.catalogue.length + 1)
      expect(sim.requests().faults).toBeGreaterThan(0)
      expect(result.retries).toBeGreaterThan(0)
    })))

  it.live("a 10 % fault mix (5xx, 429, resets, truncated bodies, stalls) gives exactly the no-fault output, full and incremental", () =>
    live(Effect.gen(function*() {
      const options = { products: 60, bucket: fastBucket } as const
      // Stalls: an answer held 3 s, past the 1 s timeout, so the attempt is cut and retried.
      const faults = { kinds: ["5xx", "429", "reset", "truncate", "latency"], rate: 0.1, latencyMs: 3_000, seed: 23, maxConsecutive: 2 } as const
      const clean = yield* Simulator.make(options)
      const faulty = yield* Simulator.make({ ...options, faults })
      const without = (sim: Simulator.ShoplazzaSimulator) => sim.catalogue.filter((_, i) => i % 7 === 0).map((p) => p.id)
      clean.setListImages(without(clean))
      faulty.setListImages(without(faulty))
      const config = (sim: Simulator.ShoplazzaSimulator) => simConfig(sim, { pageSize: 4, concurrency: 3, timeout: "1 second" })
      // The same catalogue on two ports: URLs compared without the port.
      const exact = (result: RunResult) => ({
        records: result.records.map(plain).map((r) => ({ ...r, url: String(r["url"]).replace(/127\.0\.0\.1:\d+/, "sim") })),
        rejected: result.rejected,
        batches: productsOf(result.batches),
        mark: markOf(result)
      })
      const want = yield* run(config(clean))
      const got = yield* run(config(faulty))
      expect(exact(got)).toEqual(exact(want))
      expect(faulty.requests().faults).toBeGreaterThan(0)
      // And an incremental run after 5 changes, under the same faults.
      const cleanTouched = clean.touchProducts(5)
      const faultyTouched = faulty.touchProducts(5)
      expect(faultyTouched.map((p) => p.id)).toEqual(cleanTouched.map((p) => p.id))
      const wantNext = yield* run(config(clean), { checkpoint: want.last, resumed: false })
      const gotNext = yield* run(config(faulty), { checkpoint: got.last, resumed: false })
      expect(exact(gotNext)).toEqual(exact(wantNext))
      expect(merged(got, gotNext)).toEqual(mergedOf(faulty.catalogue))
    })), 120_000)
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

/** `mark - overlapMs`, rounded down to the second, as the source sends `updated_at_min`. */
const isoSecondsBefore = (mark: string, overlapMs: number): string =>
  new Date(Math.floor((Date.parse(mark) - overlapMs) / 1000) * 1000).toISOString().replace(/\.000Z$/, "Z")
