/**
 * Incremental runs and keyset enumeration: a finished run leaves a cursor (the scan's mark and the
 * highest date_modified seen); the next run lists only the products modified since (min_date_modified
 * = mark − overlap); a resume goes on under the same filter; products added or deleted mid-scan
 * shift nothing. All against the simulator over real HTTP.
 */
import type { ProductImage } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { formatRfc2822 } from "../src/Api.js"
import * as Simulator from "../src/Simulator.js"
import { expectedAll, expectedOf, live, plain, productsByBatch, run, runUntil, simConfig } from "./Harness.js"
import { startReplay } from "./Replay.js"

/** The records of several runs merged as a sink with keys merges them: (source, productId, imageId), the later run wins; sorted. */
const merged = (...runs: ReadonlyArray<ReadonlyArray<ProductImage>>): Array<Record<string, unknown>> => {
  const byKey = new Map<string, Record<string, unknown>>()
  for (const records of runs) for (const r of records) byKey.set(`${r.source}\u0000${r.productId}\u0000${r.imageId}`, plain(r))
  return sorted([...byKey.values()])
}

const sorted = (records: ReadonlyArray<Record<string, unknown>>) =>
  [...records].sort((a, b) => Number(a.productId) - Number(b.productId) || Number(a.imageId) - Number(b.imageId))

/** The product-list requests a simulator answered since `from` (an index into its log), as query maps. */
const listQueries = (sim: Simulator.BigCommerceSimulator, from = 0) =>
  sim.requestLog().slice(from).filter((line) => line.startsWith(`/stores/${sim.storeHash}/v2/products?`)).map((line) =>
    Object.fromEntries(new URL(line, "http://x").searchParams)
  )

/** The value of a run's last checkpoint. */
const lastValue = (result: { readonly last: Option.Option<{ readonly kind: string; readonly value: unknown }> }) => {
  const last = Option.getOrThrow(result.last)
  expect(last.kind).toBe("cursor")
  return last.value as Record<string, unknown>
}

describe("bigcommerce source: incremental runs", () => {
  it.live("a finished run leaves a cursor: the scan's mark (the server's clock when it began) and the highest date_modified seen", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const before = Math.floor(Date.now() / 1000) * 1000 - 1000
      const result = yield* run(simConfig(sim))
      const cursor = lastValue(result)
      const highest = Math.max(...sim.products.map((p) => p.modified))
      expect(cursor).toEqual({ scope: "every product", complete: true, mark: expect.any(String), highWater: new Date(highest).toISOString() })
      const mark = Date.parse(cursor.mark as string)
      expect(mark).toBeGreaterThanOrEqual(before - 60_000) // the server's Date less the request's time, whole seconds
      expect(mark).toBeLessThanOrEqual(Date.now())
      // A full scan sends no date filter.
      expect(listQueries(sim).map((q) => q.min_date_modified)).toEqual([undefined])
    })))

  it.live("a second run right after a finished one makes only the list request its filter needs and reads nothing", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const first = yield* run(simConfig(sim))
      const cursor = lastValue(first)
      const seen = sim.requestLog().length
      const second = yield* run(simConfig(sim), { checkpoint: first.last, resumed: false })
      expect(second.records).toEqual([])
      expect(second.rejected).toEqual([])
      // One request: the list under the filter (a 204), no count, no product.
      const log = sim.requestLog().slice(seen)
      expect(log.length).toBe(1)
      expect(listQueries(sim, seen)).toEqual([{
        min_id: "1",
        min_date_modified: formatRfc2822(new Date(Date.parse(cursor.mark as string) - 1000)),
        include: "id,date_modified",
        limit: "250"
      }])
      // Its cursor moves the mark on and keeps the highest date seen.
      const again = lastValue(second)
      expect(again).toMatchObject({ scope: "every product", complete: true, highWater: cursor.highWater })
      expect(Date.parse(again.mark as string)).toBeGreaterThanOrEqual(Date.parse(cursor.mark as string))
    })))

  it.live("after the store changes 5 products, the next run reads exactly those; the merged output equals a full refresh", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const first = yield* run(simConfig(sim))
      const touched = sim.touchProducts(5)
      expect(touched.length).toBe(5)
      const seen = sim.requestLog().length
      const second = yield* run(simConfig(sim), { checkpoint: first.last, resumed: false })
      expect(productsByBatch(second.batches)).toEqual(touched.map(String))
      expect(second.records.map(plain)).toEqual(expectedOf(sim, touched))
      // The list request and one images request per changed product: nothing else.
      const log = sim.requestLog().slice(seen).map((line) => line.split("?")[0])
      expect(log.sort()).toEqual([
        `/stores/${sim.storeHash}/v2/products`,
        ...touched.map((id) => `/stores/${sim.storeHash}/v2/products/${id}/images`)
      ].sort())
      // --full-refresh passes no checkpoint: everything is read, and equals the two runs merged.
      const refresh = yield* run(simConfig(sim))
      expect(refresh.records.map(plain)).toEqual(expectedAll(sim))
      expect(merged(first.records, second.records)).toEqual(sorted(refresh.records.map(plain)))
      // The highest date seen is now the change's.
      expect(lastValue(second).highWater).toBe(new Date(Math.max(...sim.products.map((p) => p.modified))).toISOString())
    })))

  it.live("overlap: the filter starts that long before the mark", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 5 })
      const first = yield* run(simConfig(sim))
      const mark = Date.parse(lastValue(first).mark as string)
      const seen = sim.requestLog().length
      yield* run(simConfig(sim, { overlap: "5 minutes" }), { checkpoint: first.last, resumed: false })
      expect(listQueries(sim, seen).map((q) => q.min_date_modified)).toEqual([formatRfc2822(new Date(mark - 300_000))])
    })))

  it.live("a resumed incremental run goes on after its last finished product under the same filter", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const first = yield* run(simConfig(sim))
      const touched = sim.touchProducts(6)
      const config = simConfig(sim, { pageSize: 2, concurrency: 1 })
      const killed = yield* run(config, { checkpoint: first.last, resumed: false, take: 3 })
      const saved = killed.batches[2]!.checkpoint
      const filter = listQueries(sim)[1]!.min_date_modified
      expect(filter).toBeDefined()
      const seen = sim.requestLog().length
      const resumed = yield* run(config, { checkpoint: saved, resumed: true })
      const queries = listQueries(sim, seen)
      expect(queries[0]).toMatchObject({ min_id: String(touched[2]! + 1), min_date_modified: filter })
      expect(queries.every((q) => q.min_date_modified === filter)).toBe(true)
      expect([...killed.records, ...resumed.records].map(plain)).toEqual(expectedOf(sim, touched))
      expect(lastValue(resumed)).toMatchObject({ complete: true })
    })))

  it.live("a run that starts over from an unfinished scan (--restart) reads under that scan's filter from the first id", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const first = yield* run(simConfig(sim))
      const touched = sim.touchProducts(4)
      const killed = yield* run(simConfig(sim, { pageSize: 2 }), { checkpoint: first.last, resumed: false, take: 2 })
      const filter = listQueries(sim)[1]!.min_date_modified
      const seen = sim.requestLog().length
      const restarted = yield* run(simConfig(sim), { checkpoint: killed.batches[1]!.checkpoint, resumed: false })
      expect(listQueries(sim, seen)).toEqual([{ min_id: "1", min_date_modified: filter!, include: "id,date_modified", limit: "250" }])
      expect(restarted.records.map(plain)).toEqual(expectedOf(sim, touched))
    })))

  it.live("a resumed run whose saved cursor is a finished scan reads the changes since its mark (nothing is lost before the first commit)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const first = yield* run(simConfig(sim))
      const touched = sim.touchProducts(3)
      // The runner resumes a run that committed nothing with the cursor it carried in.
      const second = yield* run(simConfig(sim), { checkpoint: first.last, resumed: true })
      expect(second.records.map(plain)).toEqual(expectedOf(sim, touched))
    })))

  it.live("a resumed scan whose checkpoint has no start time (no Date header then) ends with the highest date seen as its mark, never a later time", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 12 })
      const killed = yield* run(simConfig(sim, { pageSize: 4 }), { take: 3 })
      const { startedAt: _startedAt, ...withoutStart } = Option.getOrThrow(killed.batches[2]!.checkpoint).value as Record<string, unknown>
      const resumed = yield* run(simConfig(sim, { pageSize: 4 }), { checkpoint: Option.some({ kind: "cursor", value: withoutStart }), resumed: true })
      const highest = new Date(Math.max(...sim.products.map((p) => p.modified))).toISOString()
      expect(lastValue(resumed)).toEqual({ scope: "every product", complete: true, mark: highest, highWater: highest })
    })))

  it.live("a date_modified that is neither RFC 2822 nor ISO-8601: the product is read, a warning names it, the high-water mark ignores it", () =>
    live(Effect.gen(function*() {
      const image = (id: number, product: number) => ({
        id,
        product_id: product,
        image_file: `a/${id}.jpg`,
        is_thumbnail: true,
        sort_order: 0,
        description: null,
        date_created: "Mon, 24 Sep 2012 01:14:30 +0000"
      })
      const server = yield* startReplay({
        "/products/images/count": () => ({ count: 2 }),
        "/products": (q) => (q.get("min_id") === "1" ? [{ id: 5, date_modified: "yesterday" }, { id: 6, date_modified: "Mon, 24 Sep 2012 01:34:57 +0000" }] : undefined),
        "/products/5/images": (q) => (q.get("page") === "1" ? [image(1, 5)] : undefined),
        "/products/6/images": (q) => (q.get("page") === "1" ? [image(2, 6)] : undefined)
      })
      const result = yield* run({ baseUrl: server.url, storeHash: "abc123", accessToken: "t0ken" })
      expect(result.records.map((r) => r.imageId)).toEqual(["1", "2"])
      expect(result.warnings).toBe(1)
      expect(result.logs.some((l) => l.startsWith("WARN") && l.includes("product 5: \"yesterday\""))).toBe(true)
      expect(lastValue(result)).toMatchObject({ highWater: "2012-09-24T01:34:57.000Z" })
    })))

  it.live("a cursor for other products (another partition) is not applied: every product of this run's range is read, with a warning", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 12 })
      const first = yield* run(simConfig(sim))
      const partition = { minId: sim.products[3]!.id, maxId: sim.products[8]!.id }
      const { error, result } = yield* runUntil(simConfig(sim), { checkpoint: first.last, resumed: false, partition })
      expect(Option.isNone(error)).toBe(true)
      expect(result.logs.some((l) => l.includes("the last run's cursor was for [every product]") && l.includes("reading every product"))).toBe(true)
      expect(result.records.map(plain)).toEqual(expectedOf(sim, sim.products.slice(3, 9).map((p) => p.id)))
      expect(lastValue(result).scope).toBe(`every product, ids ${partition.minId}..${partition.maxId}`)
    })))

  it.live("ISO-8601 dates are accepted as well as RFC 2822: the same records, and incremental runs work", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ dates: "iso8601", products: 10 })
      expect(sim.catalogue[0]!.date_created).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/)
      const first = yield* run(simConfig(sim))
      expect(first.rejected).toEqual([])
      expect(first.records.map(plain)).toEqual(expectedAll(sim))
      expect(lastValue(first).highWater).toBe(new Date(Math.max(...sim.products.map((p) => p.modified))).toISOString())
      const touched = sim.touchProducts(2)
      const second = yield* run(simConfig(sim), { checkpoint: first.last, resumed: false })
      expect(second.records.map(plain)).toEqual(expectedOf(sim, touched))
    })))
})

describe("bigcommerce source: keyset enumeration (min_id after the last id)", () => {
  it.live("a product deleted behind the scan and one added ahead of it shift nothing: every product exactly once", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const original = sim.products.map((p) => p.id)
      let added: ReadonlyArray<number> = []
      const result = yield* run(simConfig(sim, { pageSize: 7, concurrency: 1 }), {
        onBatch: (_b, i) => {
          if (i !== 10) return
          sim.deleteProduct(original[2]!) // already read, on the first page
          added = sim.addProducts(1)
        }
      })
      expect(added.length).toBe(1)
      // With page numbers the deletion would have moved a product of the next page onto an already-read one.
      expect(result.records.map(plain)).toEqual(expectedOf(sim, [...original, ...added]))
      expect(result.rejected).toEqual([])
      expect(productsByBatch(result.batches)).toEqual(
        [...original, ...added].filter((id) => sim.catalogue.some((i) => i.product_id === id)).map(String)
      )
    })))

  it.live("a product list that is not sorted by id is an ApiError (keyset paging would skip products), never a silent gap", () =>
    live(Effect.gen(function*() {
      const server = yield* startReplay({
        "/products": (q) => (q.get("min_id") === "1" ? [{ id: 9, date_modified: "Mon, 24 Sep 2012 01:34:57 +0000" }, { id: 4 }] : undefined),
        "/products/images/count": () => ({ count: 2 })
      })
      const failure = yield* Effect.flip(run({ baseUrl: server.url, storeHash: "abc123", accessToken: "t0ken", pageSize: 2 }))
      expect(failure._tag).toBe("ApiError")
      expect(failure.message).toContain("answered min_id=1 with product 4 after 9")
    })))
})
