/**
 * The shared seen set of a distributed global dedupe, on real PostgreSQL: two partitions never both
 * keep one content hash; a partition that runs again keeps what it kept; a hash seen in an earlier run
 * is a duplicate unless the run is a full refresh; a discarded run's claims are forgotten.
 */
import { Batch, ProductImage, RunStats, Runner } from "@effetl/core"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { afterEach, describe, expect, it } from "vitest"
import * as ClusterStore from "../src/ClusterStore.js"
import * as SharedDedupe from "../src/SharedDedupe.js"
import { dropAll, pgUrl, uniqueName } from "./support/Cluster.js"

const prefixes: Array<string> = []
afterEach(async () => {
  for (const prefix of prefixes.splice(0)) await dropAll({ prefix })
})

const img = (productId: string, imageId: string, position: number, contentHash: string | null) =>
  ProductImage.unchecked({
    source: "shop", productId, imageId, position, url: null, filename: null, width: null, height: null, alt: null,
    contentHash, createdAt: null, updatedAt: null, extra: {}
  })

/** The images a fresh transform of run `runId` keeps from one batch, and its counters. */
const keep = (store: ClusterStore.ClusterStore, runId: string, records: ReadonlyArray<ProductImage>, fullRefresh = false) =>
  Effect.gen(function*() {
    const transform = yield* SharedDedupe.plugin({ store, runId, fullRefresh }).make({ scope: "global" }, { key: "0:dedupe-by-hash", state: Option.none() })
    const out = yield* transform.apply(Batch.make(records, Option.none()))
    const stats = yield* RunStats.RunStats
    const counts = (yield* stats.snapshot).get("shop")
    return { kept: Chunk.toReadonlyArray(out.records).map((r) => `${r.productId}/${r.imageId}`), deduped: counts?.deduped ?? 0, unhashed: counts?.unhashed ?? 0 }
  }).pipe(Effect.provide(RunStats.layer))

describe("SharedDedupe", () => {
  it("keeps each hash once across partitions, runs and re-runs", async () => {
    const prefix = uniqueName("effetl_h")
    prefixes.push(prefix)
    const r = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          const store = yield* ClusterStore.make({ postgres: Redacted.make(pgUrl), prefix })
          // Partition 1: product 1 shows h1 twice (the first in display order wins) and h2; an image with no hash passes.
          const p1 = yield* keep(store, "run1", [img("1", "b", 2, "h1"), img("1", "a", 1, "h1"), img("1", "c", 3, "h2"), img("1", "d", 4, null)])
          // Partition 2 of the same run: h2 was claimed by partition 1, h3 is new.
          const p2 = yield* keep(store, "run1", [img("2", "a", 1, "h2"), img("2", "b", 2, "h3")])
          // Partition 1 run again (a worker died): it keeps exactly what it kept.
          const again = yield* keep(store, "run1", [img("1", "b", 2, "h1"), img("1", "a", 1, "h1"), img("1", "c", 3, "h2"), img("1", "d", 4, null)])
          // The next run: everything seen before is a duplicate, a new hash is kept.
          const next = yield* keep(store, "run2", [img("1", "a", 1, "h1"), img("3", "a", 1, "h4")])
          // A full refresh takes earlier runs' claims over (once: a second partition of that run does not).
          const full = yield* keep(store, "run3", [img("1", "a", 1, "h1")], true)
          const fullOther = yield* keep(store, "run3", [img("9", "z", 1, "h1")], true)
          // A discarded run's claims go: h5 is free again for the run after it.
          yield* keep(store, "run4", [img("5", "a", 1, "h5")])
          yield* store.discardRun("run4")
          const afterDiscard = yield* keep(store, "run5", [img("6", "a", 1, "h5")])
          return { p1, p2, again, next, full, fullOther, afterDiscard }
        }).pipe(Effect.provide(Runner.platformLayer))
      )
    )
    expect(r.p1).toEqual({ kept: ["1/a", "1/c", "1/d"], deduped: 1, unhashed: 1 })
    expect(r.p2).toEqual({ kept: ["2/b"], deduped: 1, unhashed: 0 })
    expect(r.again.kept).toEqual(r.p1.kept)
    expect(r.next).toEqual({ kept: ["3/a"], deduped: 1, unhashed: 0 })
    expect(r.full.kept).toEqual(["1/a"])
    expect(r.fullOther.kept).toEqual([])
    expect(r.afterDiscard.kept).toEqual(["6/a"])
  }, 60_000)

  it("replaces only a global dedupe-by-hash", () => {
    expect(SharedDedupe.isGlobalDedupe({ plugin: { name: "dedupe-by-hash" }, config: { scope: "global" } })).toBe(true)
    expect(SharedDedupe.isGlobalDedupe({ plugin: { name: "dedupe-by-hash" }, config: { scope: "product" } })).toBe(false)
    expect(SharedDedupe.isGlobalDedupe({ plugin: { name: "hash-content" }, config: { scope: "global" } })).toBe(false)
  })
})
