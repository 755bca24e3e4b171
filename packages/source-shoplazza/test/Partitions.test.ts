/**
 * Partitions (distributed runs): `partitions(config)` lists the shop's product ids once
 * (`fields=id,updated_at`, no images) and splits them into chunks of `partitionSize`; `make` with a
 * partition lists only its products (the list's `ids` filter). The union of every partition's
 * records is a full sync's, no product is in two partitions, and a small shop is one partition.
 */
import { Pipeline } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Simulator from "../src/Simulator.js"
import { type Partition, shoplazza } from "../src/Source.js"
import { expectedOf, fastBucket, imageRequests, listPath, live, plain, run, simConfig } from "./Harness.js"

/** The plugin's partitions for a `with:` block, decoded as a pipeline file's is. */
const partitionsOf = (input: Record<string, unknown>) =>
  Effect.gen(function*() {
    const config = yield* Pipeline.decodeConfig(shoplazza.config, input, "sources.shoplazza.with")
    return (yield* shoplazza.partitions!(config, { name: "shoplazza" })) as ReadonlyArray<Partition>
  })

describe("shoplazza source: partitions", () => {
  it.live("chunks of at most partitionSize product ids from one listing pass; their union is a full sync, no product twice", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 23, bucket: fastBucket })
      const config = simConfig(sim, { partitionSize: 5 })
      const partitions = yield* partitionsOf(config)
      // One list request (23 products fit a page of 250), no images asked for.
      expect(sim.requests().byPath).toEqual({ [listPath]: 1 })
      expect(partitions.map((p) => p.ids?.length)).toEqual([5, 5, 5, 5, 3])
      const ids = partitions.flatMap((p) => p.ids ?? [])
      expect(ids).toEqual(sim.catalogue.map((p) => p.id))

      const runs = yield* Effect.forEach(partitions, (partition) => run(config, { partition }))
      for (const [i, r] of runs.entries()) {
        const mine = new Set(partitions[i]!.ids)
        expect(r.records.every((rec) => mine.has(rec.productId))).toBe(true)
      }
      expect(runs.flatMap((r) => r.records.map(plain))).toEqual(expectedOf(sim.catalogue))
      // Each partition listed its own products, with their images inline.
      expect(imageRequests(sim.requests().byPath)).toBe(0)
    })))

  it.live("a shop of at most partitionSize products is one partition (the whole shop); so is an empty one", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 8, bucket: fastBucket })
      const partitions = yield* partitionsOf(simConfig(sim, { partitionSize: 8 }))
      expect(partitions).toEqual([{ ids: null }])
      const whole = yield* run(simConfig(sim), { partition: partitions[0]! })
      expect(whole.records.map(plain)).toEqual(expectedOf(sim.catalogue))
      const empty = yield* Simulator.make({ products: 0, bucket: fastBucket })
      expect(yield* partitionsOf(simConfig(empty, { partitionSize: 1 }))).toEqual([{ ids: null }])
    })))

  it.live("named products (productIds) split into chunks; each partition fetches only its own", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 12, bucket: fastBucket })
      const named = sim.catalogue.slice(2, 9).map((p) => p.id)
      const config = simConfig(sim, { partitionSize: 3, productIds: named })
      const partitions = yield* partitionsOf(config)
      expect(partitions).toEqual([{ ids: named.slice(0, 3) }, { ids: named.slice(3, 6) }, { ids: named.slice(6) }])
      // No list request to plan named products.
      expect(sim.requests().total).toBe(0)
      const runs = yield* Effect.forEach(partitions, (partition) => run(config, { partition }))
      expect(runs.flatMap((r) => r.records.map(plain))).toEqual(expectedOf(sim.catalogue.slice(2, 9)))
      expect(imageRequests(sim.requests().byPath)).toBe(named.length)
    })))

  it.live("a partition this source did not make is a config error", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 2, bucket: fastBucket })
      const result = yield* Effect.either(run(simConfig(sim), { partition: { minId: 1, maxId: null } }))
      expect(result._tag).toBe("Left")
      expect(String((result as { left: { message: string } }).left.message)).toContain("is not one this source made ({ ids })")
    })))
})
