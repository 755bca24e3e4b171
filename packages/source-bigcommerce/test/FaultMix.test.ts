/**
 * Faults: a 10 % mix of 5xx, 429s (X-Rate-Limit-Time-Reset-Ms, every other one with X-Retry-After),
 * connection resets, truncated bodies and stalls longer than the timeout gives exactly the output of
 * a run without faults, full and incremental; and a 429's X-Retry-After is waited out.
 */
import type { ProductImage } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Simulator from "../src/Simulator.js"
import { expectedAll, live, plain, run, simConfig } from "./Harness.js"

/**
 * The 10 % mix: every fault kind, stalls of 2 s against a 1 s timeout. Each seed below faults about
 * 5 of the first 60 requests; seed 3 hits all five kinds, every seed a truncated body and a 429
 * (the first 429 carries X-Retry-After).
 */
const mix = (seed: number): Simulator.FaultOptions => ({
  kinds: ["5xx", "429", "reset", "truncate", "latency"],
  rate: 0.1,
  seed,
  latencyMs: 2000,
  retryAfterSeconds: 1
})

/** Records as plain data with the simulator's origin taken out (two simulators, two ports). */
const rebased = (sim: Simulator.BigCommerceSimulator, records: ReadonlyArray<ProductImage>) =>
  records.map((r) => JSON.parse(JSON.stringify(plain(r)).replaceAll(sim.url, "")) as Record<string, unknown>)

/** The settings both runs use: small pages (more list requests), several products at a time, a 1 s timeout. */
const settings = { pageSize: 7, concurrency: 4, timeout: "1 second" }

describe("bigcommerce source: a 10 % fault mix", () => {
  for (const seed of [3, 17]) {
    it.live(`a full sync under faults (seed ${seed}) equals the sync without faults, exactly`, () =>
      live(Effect.gen(function*() {
        // A short quota window, so a 429's reset is short (its X-Retry-After is what makes it wait).
        const calm = yield* Simulator.make({ windowMs: 200 })
        const clean = yield* run(simConfig(calm, settings))
        expect(clean.records.map(plain)).toEqual(expectedAll(calm))

        const rough = yield* Simulator.make({ windowMs: 200, faults: mix(seed) })
        const faulty = yield* run(simConfig(rough, settings))
        expect(rough.requests().faults).toBeGreaterThan(0)
        expect(faulty.retries).toBeGreaterThan(0)
        expect(rebased(rough, faulty.records)).toEqual(rebased(calm, clean.records))
        expect(faulty.rejected).toEqual(clean.rejected)
        expect(Option.getOrThrow(faulty.last).value).toMatchObject({ complete: true, highWater: (Option.getOrThrow(clean.last).value as { highWater: string }).highWater })
      })), 180_000)
  }

  it.live("incremental under faults: full run, 5 products changed, incremental run; merged, it equals a full refresh without faults", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ windowMs: 200, faults: mix(29) })
      const first = yield* run(simConfig(sim, settings))
      const touched = sim.touchProducts(5)
      const second = yield* run(simConfig(sim, settings), { checkpoint: first.last, resumed: false })
      expect([...new Set(second.records.map((r) => Number(r.productId)))]).toEqual(touched.filter((id) => sim.products.find((p) => p.id === id)!.images.length > 0))
      sim.setFaults(undefined)
      const refresh = yield* run(simConfig(sim, settings))
      const byKey = new Map<string, Record<string, unknown>>()
      for (const r of [...first.records, ...second.records]) byKey.set(`${r.productId}/${r.imageId}`, plain(r))
      const order = (a: Record<string, unknown>, b: Record<string, unknown>) => Number(a.productId) - Number(b.productId) || Number(a.imageId) - Number(b.imageId)
      expect([...byKey.values()].sort(order)).toEqual(refresh.records.map(plain).sort(order))
    })), 180_000)
})

describe("bigcommerce source: X-Retry-After", () => {
  it.live("a 429 with X-Retry-After: 1 and a reset of a few ms is retried only after the second: no request comes early", () =>
    live(Effect.gen(function*() {
      // Every request's first try gets a 429 (the first and every other one with X-Retry-After: 1); the retry passes.
      const sim = yield* Simulator.make({ products: 3, windowMs: 50, faults: { kinds: ["429"], rate: 1, maxConsecutive: 1, retryAfterSeconds: 1 } })
      const result = yield* run(simConfig(sim, { concurrency: 1 }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim))
      const faults = sim.requests().faults
      expect(faults).toBeGreaterThanOrEqual(4) // so at least two carried X-Retry-After
      expect(sim.early()).toBe(0)
      expect(result.retries).toBe(faults)
    })), 120_000)
})
