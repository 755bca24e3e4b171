/**
 * Partitions of the acceo source: the change feed is one partition (a token feed cannot be split);
 * by id, the id list splits into chunks of `partitionSize`. The union of the partitions is a full
 * read, and no product is in two.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Pipeline, type Source } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Simulator from "../src/Simulator.js"
import { acceo } from "../src/Source.js"
import { expectedFeed, expectedProduct, live, plain, productOf, run, runUntil, simConfig } from "./Harness.js"

/** The partitions of a `with:` block, decoded as a pipeline file's is. */
const partitionsOf = (input: Record<string, unknown>) =>
  Effect.gen(function*() {
    const config = yield* Pipeline.decodeConfig(acceo.config, input, "sources.acceo.with")
    return yield* acceo.partitions!(config, { name: "acceo" })
  })

describe("acceo source: partitions", () => {
  it.live("the change feed is one partition, \"feed\", read as a whole", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      expect(yield* partitionsOf(simConfig(sim))).toEqual(["feed"])
      const result = yield* run(simConfig(sim, { count: 5 }), { partition: "feed" })
      expect(result.records.map(plain)).toEqual(expectedFeed(sim))
      // Planning the partitions asks the API nothing.
      expect(sim.requests().total).toBe(Math.ceil(sim.feed().length / 5))
    })))

  it.live("by id: chunks of partitionSize ids (canonical, from productIds or productIdsFile); their union is a full read and no product is in two", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 14 })
      const ids = sim.catalogue.map((p) => p.product_id)
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "acceo-partitions-"))
      const file = path.join(dir, "ids.txt")
      fs.writeFileSync(file, `${ids.map((id, i) => (i === 0 ? `00${id}` : id)).join("\n")}\n`)
      for (const more of [{ productIds: ids }, { productIdsFile: file }]) {
        const input = simConfig(sim, { mode: "products", partitionSize: 4, ...more })
        const partitions = yield* partitionsOf(input)
        expect(partitions).toEqual([0, 4, 8, 12].map((at) => ({ productIds: ids.slice(at, at + 4) })))
        const parts = yield* Effect.forEach(partitions, (partition) => Effect.map(run(input, { partition }), (r) => r.records.map(plain)))
        const full = yield* run(input)
        expect(parts.flat()).toEqual(full.records.map(plain))
        expect(full.records.map(plain)).toEqual(ids.flatMap((id) => expectedProduct(sim, productOf(sim, id))))
        const owner = new Map<unknown, number>()
        parts.forEach((records, i) => {
          for (const r of records) {
            expect(owner.get(r.productId) ?? i, `product ${String(r.productId)}`).toBe(i)
            owner.set(r.productId, i)
          }
        })
      }
      fs.rmSync(dir, { recursive: true })
    })))

  it.live("a partition's position names its ids: a resume under another partition is refused; under the same one it reads the rest", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const input = simConfig(sim, { mode: "products", productIds: sim.catalogue.map((p) => p.product_id), partitionSize: 5, concurrency: 1 })
      const [first, second] = yield* partitionsOf(input)
      const whole = yield* run(input, { partition: first! })
      const stopped = yield* run(input, { partition: first!, take: 2 })
      const elsewhere = yield* runUntil(input, { partition: second!, checkpoint: stopped.batches[1]!.checkpoint })
      expect(Option.getOrThrow(elsewhere.error).message).toContain("a saved position means nothing for another id list")
      const rest = yield* run(input, { partition: first!, checkpoint: stopped.batches[1]!.checkpoint })
      expect([...stopped.records, ...rest.records].map(plain)).toEqual(whole.records.map(plain))
    })))

  it.live("a partition that does not fit the mode, or of the wrong shape, is a config error; planning checks the config as a run does", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const byId = simConfig(sim, { mode: "products", productIds: ["1001"] })
      for (const [input, partition] of [
        [simConfig(sim), { productIds: ["1001"] }],
        [byId, "feed"],
        [byId, { productIds: [] }],
        [byId, { productIds: ["x"] }]
      ] as ReadonlyArray<readonly [Record<string, unknown>, Source.PartitionSpec]>) {
        const refused = yield* runUntil(input, { partition })
        expect(Option.getOrThrow(refused.error).message).toContain("is not one this config splits into")
      }
      const none = yield* Effect.flip(partitionsOf(simConfig(sim, { mode: "products" })))
      expect(none.message).toBe("source 'acceo': mode: products needs productIds or productIdsFile")
      expect(sim.requests().total).toBe(0)
    })))
})
