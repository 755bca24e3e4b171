/**
 * Partitions: `partitions(config)` splits the store into product id ranges (from counts of id ranges,
 * or from the productIds list), and `make` with a partition reads only its range. The union of every
 * partition's records is a full scan's, and no product is in two partitions.
 */
import { Pipeline } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { bigcommerce, type Partition } from "../src/Source.js"
import * as Simulator from "../src/Simulator.js"
import { expectedAll, expectedOf, live, plain, productsByBatch, run, simConfig } from "./Harness.js"

/** The plugin's partitions for a `with:` block, decoded as a pipeline file's is. */
const partitionsOf = (input: Record<string, unknown>) =>
  Effect.gen(function*() {
    const config = yield* Pipeline.decodeConfig(bigcommerce.config, input, "sources.bigcommerce.with")
    return (yield* bigcommerce.partitions!(config, { name: "bigcommerce" })) as ReadonlyArray<Partition>
  })

/** Every partition read on its own, in order. */
const readAll = (input: Record<string, unknown>, partitions: ReadonlyArray<Partition>) =>
  Effect.forEach(partitions, (partition) => run(input, { partition }))

/** Checks that ranges are contiguous from id 1 with an open end. */
const expectContiguous = (partitions: ReadonlyArray<Partition>) => {
  expect(partitions[0]!.minId).toBe(1)
  expect(partitions.at(-1)!.maxId).toBeNull()
  for (let i = 1; i < partitions.length; i++) expect(partitions[i]!.minId).toBe(partitions[i - 1]!.maxId! + 1)
}

const countPath = (sim: Simulator.BigCommerceSimulator) => `/stores/${sim.storeHash}/v2/products/count`

describe("bigcommerce source: partitions", () => {
  it.live("id ranges of at most partitionSize products from /products/count; their union is a full scan, no product twice", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 60 })
      const config = simConfig(sim, { partitionSize: 7 })
      const partitions = yield* partitionsOf(config)
      expectContiguous(partitions)
      // Only counts were asked for: no product list, no images.
      expect(Object.keys(sim.requests().byPath)).toEqual([countPath(sim)])
      const ids = sim.products.map((p) => p.id)
      const sizes = partitions.map((p) => ids.filter((id) => id >= p.minId && (p.maxId === null || id <= p.maxId)).length)
      expect(sizes.every((n) => n <= 7)).toBe(true)
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(60)
      expect(partitions.length).toBeGreaterThanOrEqual(9)

      const runs = yield* readAll(config, partitions)
      const products = runs.flatMap((r) => productsByBatch(r.batches))
      expect(new Set(products).size).toBe(products.length)
      expect(runs.flatMap((r) => r.records.map(plain))).toEqual(expectedAll(sim))
      // Each partition listed its own range only (max_id sent when it has one).
      for (const [i, r] of runs.entries()) {
        const p = partitions[i]!
        expect(r.records.every((rec) => Number(rec.productId) >= p.minId && (p.maxId === null || Number(rec.productId) <= p.maxId))).toBe(true)
      }
      const lists = sim.requestLog().filter((l) => l.startsWith(`/stores/${sim.storeHash}/v2/products?`))
      expect(lists.filter((l) => l.includes("max_id=")).length).toBeGreaterThanOrEqual(partitions.length - 1)
    })))

  it.live("a store smaller than partitionSize is one partition; an empty store too", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 10 })
      expect(yield* partitionsOf(simConfig(sim))).toEqual([{ minId: 1, maxId: null }])
      const empty = yield* Simulator.make({ products: 0 })
      expect(yield* partitionsOf(simConfig(empty, { partitionSize: 1 }))).toEqual([{ minId: 1, maxId: null }])
    })))

  it.live("a product added after planning lands in the open last partition; one deleted is simply not listed", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 20 })
      const config = simConfig(sim, { partitionSize: 6 })
      const partitions = yield* partitionsOf(config)
      const added = sim.addProducts(1)
      sim.deleteProduct(sim.products[3]!.id)
      const runs = yield* readAll(config, partitions)
      const all = sim.products.map((p) => p.id).filter((id) => id !== sim.products[3]!.id)
      expect(runs.flatMap((r) => r.records.map(plain))).toEqual(expectedOf(sim, all))
      expect(runs.at(-1)!.records.some((r) => r.productId === String(added[0]))).toBe(true)
    })))

  it.live("with productIds: ranges of at most partitionSize ids; each partition reads its own ids, in the given order", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 30 })
      const chosen = [sim.products[20]!.id, sim.products[2]!.id, sim.products[11]!.id, sim.products[5]!.id, sim.products[27]!.id]
      const config = simConfig(sim, { productIds: chosen, partitionSize: 2 })
      const partitions = yield* partitionsOf(config)
      expectContiguous(partitions)
      expect(partitions.length).toBe(3)
      expect(sim.requests().total).toBe(0) // planned from the list alone
      const runs = yield* readAll(config, partitions)
      const read = runs.map((r) => productsByBatch(r.batches))
      expect(read.flat().sort()).toEqual(chosen.filter((id) => sim.catalogue.some((i) => i.product_id === id)).map(String).sort())
      expect(new Set(read.flat()).size).toBe(read.flat().length)
    })))

  it.live("a partition the source did not make is a ConfigError", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 2 })
      const failure = yield* Effect.flip(run(simConfig(sim), { partition: { from: 3 } }))
      expect(failure._tag).toBe("ConfigError")
      expect(failure.message).toContain("is not one this source made")
      expect(sim.requests().total).toBe(0)
    })))
})
