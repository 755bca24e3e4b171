/**
 * Partitions of the channel source: chunks of the product ids a listing pass finds, each read with
 * `product__pk__in`. The union of the partitions is a full read, and no product is in two.
 */
import { Pipeline, type Source } from "@effetl/core"
import { SourceHarness } from "@effetl/core/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Simulator from "../src/Simulator.js"
import { channel } from "../src/Source.js"
import { byPks, expectedAll, plain, run, runUntil, simConfig } from "./Harness.js"

const live = SourceHarness.live

/** The partitions of a `with:` block, decoded as a pipeline file's is. */
const partitionsOf = (input: Record<string, unknown>) =>
  Effect.gen(function*() {
    const config = yield* Pipeline.decodeConfig(channel.config, input, "sources.channel.with")
    return yield* channel.partitions!(config, { name: "channel" })
  })

/** Reads every partition and returns the records of each. */
const readAll = (input: Record<string, unknown>, partitions: ReadonlyArray<Source.PartitionSpec>) =>
  Effect.forEach(partitions, (partition) => Effect.map(run(input, { partition }), (r) => r.records.map(plain)))

/** The products of some records. */
const productsOf = (records: ReadonlyArray<Record<string, unknown>>): Set<unknown> => new Set(records.map((r) => r.productId))

const byImageId = (a: Record<string, unknown>, b: Record<string, unknown>) => Number(a.imageId) - Number(b.imageId)

describe("channel source: partitions", () => {
  it.live("chunks of partitionSize product ids from one listing pass; their union is a full read and no product is in two", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const input = simConfig(sim, { partitionSize: 7, pageSize: 5 })
      const partitions = yield* partitionsOf(input)
      const withImages = sim.products.filter((p) => p.images.length > 0).map((p) => p.id)
      // Every product with images, in order, 7 at a time (a product without images is in no listing).
      expect(partitions).toEqual(
        Array.from({ length: Math.ceil(withImages.length / 7) }, (_, i) => ({ products: withImages.slice(i * 7, i * 7 + 7) }))
      )
      // The listing pass reads the plain list (no URLs), 1000 to a page.
      expect(sim.requests().byPath).toEqual({ [`/api/v1/channel/${sim.channelId}/product_images/`]: 1 })

      const parts = yield* readAll(input, partitions)
      const full = yield* run(input)
      expect(parts.flat().sort(byImageId)).toEqual(full.records.map(plain))
      expect(full.records.map(plain)).toEqual(expectedAll(sim, sim.catalogue, true))
      const seen = new Map<unknown, number>()
      parts.forEach((records, i) => {
        for (const product of productsOf(records)) {
          expect(seen.has(product), `product ${String(product)} in partitions ${seen.get(product)} and ${i}`).toBe(false)
          seen.set(product, i)
        }
      })
      expect(seen.size).toBe(withImages.length)
    })))

  it.live("a partition is read with product__pk__in; its checkpoints name the partition, so a resume under another partition is refused", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const input = simConfig(sim, { partitionSize: 5, pageSize: 4 })
      const [first, second] = yield* partitionsOf(input)
      const ids = (first as { products: ReadonlyArray<number> }).products
      const one = yield* run(input, { partition: first! })
      expect(one.records.map(plain)).toEqual(expectedAll(sim, sim.catalogue.filter((i) => ids.includes(i.product)), true))
      expect(one.totals).toEqual([sim.catalogue.filter((i) => ids.includes(i.product)).length])
      // Stopped after one page and resumed under the other partition: refused, not read from the wrong place.
      const stopped = yield* run(input, { partition: first!, take: 1 })
      const resumed = yield* runUntil(input, { partition: second!, checkpoint: stopped.batches[0]!.checkpoint })
      expect(Option.getOrThrow(resumed.error).message).toMatch(/the unfinished run was reading \[.*partition=5@.*\] and the config now says/)
      // Resumed under the same partition: the rest of it, exactly once.
      const rest = yield* run(input, { partition: first!, checkpoint: stopped.batches[0]!.checkpoint })
      expect([...stopped.records, ...rest.records].map(plain)).toEqual(one.records.map(plain))
    })))

  it.live("filters and queues: the listing applies them, so the partitions of a queue read exactly the queue", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const input = simConfig(sim, { mode: "updates", productType: ["simple", "pack"], partitionSize: 3 })
      const partitions = yield* partitionsOf(input)
      expect(partitions.length).toBeGreaterThan(1)
      const parts = yield* readAll(input, partitions)
      const full = yield* run(input)
      expect(parts.flat().sort(byImageId)).toEqual(full.records.map(plain))
      const types = new Map(sim.products.map((p) => [p.id, p.product_type]))
      const want = byPks(sim, sim.queues.updates).filter((i) => ["simple", "pack"].includes(types.get(i.product)!))
      expect(full.records.map(plain)).toEqual(expectedAll(sim, want, false))
      expect(sim.requests().byPath[`/api/v1/channel/${sim.channelId}/product_images/updates/`]).toBeGreaterThan(0)
    })))

  it.live("id lookups are one partition (\"all\"); an empty channel has none; a partition of the wrong shape is a config error", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      expect(yield* partitionsOf(simConfig(sim, { ids: [1, 2, 3], idLookup: true }))).toEqual(["all"])
      const all = yield* run(simConfig(sim, { ids: [1, 2, 3], idLookup: true }), { partition: "all" })
      expect(all.records.map(plain)).toEqual(expectedAll(sim, byPks(sim, [1, 2, 3]), true))
      const empty = yield* Simulator.make({ products: 0 })
      expect(yield* partitionsOf(simConfig(empty))).toEqual([])
      for (const partition of [{ products: [] }, { ids: [1] }, 7] as ReadonlyArray<Source.PartitionSpec>) {
        const refused = yield* runUntil(simConfig(sim), { partition })
        expect(Option.getOrThrow(refused.error)._tag).toBe("ConfigError")
      }
      const lookups = yield* runUntil(simConfig(sim, { ids: [1], idLookup: true }), { partition: { products: [1001] } })
      expect(Option.getOrThrow(lookups.error).message).toMatch(/is not one this config splits into/)
      expect(channel.reads?.fullScan).toMatch(/product__pk__in/)
    })))
})
