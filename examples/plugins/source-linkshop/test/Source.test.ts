/**
 * The linkshop source, run as the runner runs it (core's `SourceHarness`) over real HTTP against its
 * simulator: every product across Link-header pages, the rate limit's headers respected, incremental
 * runs, a resume after a kill, a bad product as a dead letter, a refused token.
 */
import * as Headers from "@effect/platform/Headers"
import { describe, expect, it } from "@effect/vitest"
import { SourceHarness } from "@effetl/core/testing"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { readBudget } from "../src/Api.js"
import * as Simulator from "../src/Simulator.js"
import { linkshop } from "../src/index.js"

/** Starts the simulator for the test's scope. */
const simulator = (options: Simulator.Options = {}) =>
  Effect.acquireRelease(Effect.promise(() => Simulator.start(options)), (sim) => Effect.promise(() => sim.close()))

/** The `with:` block of a pipeline file pointing at the simulator. */
const withBlock = (sim: Simulator.LinkShopSimulator, more: Record<string, unknown> = {}) => ({
  baseUrl: sim.url,
  token: sim.token,
  pageSize: 5,
  retry: SourceHarness.fastRetry,
  ...more
})

/** The image ids a catalogue should give, in list order. */
const imageIds = (products: ReadonlyArray<Simulator.Product>) => products.flatMap((p) => p.images.map((i) => String(i.id)))

describe("linkshop source", () => {
  it.effect("reads every product's images, page by page through the Link headers", () =>
    SourceHarness.live(Effect.gen(function*() {
      const sim = yield* simulator({ products: 12 })
      const run = yield* SourceHarness.run(linkshop, withBlock(sim), { name: "shop" })
      expect(run.records.map((r) => r.imageId)).toEqual(imageIds(sim.catalogue))
      expect(run.records[0]).toMatchObject({ source: "shop", productId: "1002", imageId: "5010", position: 1, width: 640 })
      expect(run.batches).toHaveLength(3) // 12 products, 5 a page
      expect(run.pages).toBe(3)
      expect(run.productComplete).toBe(true)
      const last = run.checkpoints.at(-1)
      expect(Option.map(last ?? Option.none(), (c) => c.value)).toEqual(
        Option.some({ next: null, since: null, mark: sim.catalogue.at(-1)!.updatedAt.toISOString() })
      )
    })))

  // it.live: the limiter waits on the real clock (it.effect's TestClock would never move).
  it.live("paces itself by the rate-limit headers: a small quota is never exceeded", () =>
    SourceHarness.live(Effect.gen(function*() {
      const sim = yield* simulator({ products: 24, quota: 5, windowMs: 1000 })
      const run = yield* SourceHarness.run(linkshop, withBlock(sim, { pageSize: 2 }))
      expect(run.records.map((r) => r.imageId)).toEqual(imageIds(sim.catalogue))
      expect(sim.requests().throttled).toBe(0)
      expect(sim.requests().lowestRemaining).toBeGreaterThanOrEqual(1) // the reserve is never spent
      expect(run.counts.retries).toBe(0)
    })))

  it.effect("the next run reads only what changed since the last run's high-water mark", () =>
    SourceHarness.live(Effect.gen(function*() {
      const sim = yield* simulator({ products: 12 })
      const first = yield* SourceHarness.run(linkshop, withBlock(sim))
      sim.touch(1003)
      const second = yield* SourceHarness.run(linkshop, withBlock(sim), { checkpoint: first.checkpoints.at(-1)!, resumed: false })
      // The product at the mark is read again (updated_since is inclusive), then the touched one.
      expect([...new Set(second.records.map((r) => r.productId))]).toEqual(["1012", "1003"])
      const full = yield* SourceHarness.run(linkshop, withBlock(sim, { incremental: false }), { checkpoint: first.checkpoints.at(-1)!, resumed: false })
      expect(full.records).toHaveLength(first.records.length)
    })))

  it.effect("a killed run resumes at the next page it saved", () =>
    SourceHarness.live(Effect.gen(function*() {
      const sim = yield* simulator({ products: 12 })
      const killed = yield* SourceHarness.run(linkshop, withBlock(sim), { take: 1 })
      const resumed = yield* SourceHarness.run(linkshop, withBlock(sim), { checkpoint: killed.checkpoints[0]! })
      expect([...killed.records, ...resumed.records].map((r) => r.imageId)).toEqual(imageIds(sim.catalogue))
    })))

  it.effect("a product of the wrong shape is a dead letter; the run goes on", () =>
    SourceHarness.live(Effect.gen(function*() {
      const sim = yield* simulator({ products: 12 })
      sim.catalogue[5]!.broken = { id: "not a number", images: [] }
      const run = yield* SourceHarness.run(linkshop, withBlock(sim))
      expect(run.rejected).toHaveLength(1)
      expect(run.rejected[0]!.error).toContain("unexpected product shape")
      expect(run.records.map((r) => r.imageId)).toEqual(imageIds(sim.catalogue.filter((p) => p.id !== 1006)))
    })))

  it.effect("a refused token ends the run with Unauthorized (runUntil's error is an Option)", () =>
    SourceHarness.live(Effect.gen(function*() {
      const sim = yield* simulator()
      const { error, run } = yield* SourceHarness.runUntil(linkshop, withBlock(sim, { token: "wrong" }))
      expect(Option.map(error, (e) => e._tag)).toEqual(Option.some("Unauthorized"))
      expect(run.records).toEqual([])
    })))

  it.effect("an unknown option is a config error naming its path", () =>
    SourceHarness.live(Effect.gen(function*() {
      const sim = yield* simulator()
      const error = yield* Effect.flip(SourceHarness.run(linkshop, withBlock(sim, { pagesize: 5 })))
      expect(error.message).toContain("sources.linkshop.with")
    })))
})

describe("readBudget (the rate limiter's reader of LinkShop's headers)", () => {
  it("reads the quota, what is left, and the reset from epoch seconds to milliseconds from now", () => {
    const headers = Headers.fromInput({ "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "1767225610" })
    expect(readBudget(() => 1767225600_000)(headers)).toEqual({ quota: 100, remaining: 7, resetMillis: 10_000 })
    expect(readBudget()(Headers.empty)).toEqual({})
  })
})
