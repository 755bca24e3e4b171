/**
 * Planning: the units of a pipeline. The channel source splits into chunks of product ids found by a
 * listing pass (over real HTTP against its simulator), a source that declares no partitions is one
 * unit, and every product lands in exactly one unit.
 */
import { Pipeline, Runner, Sink, Source } from "@effetl/core"
import { channel } from "@effetl/source-channel"
import { startChannelSimulator } from "@effetl/source-channel/simulator"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { describe, expect, it } from "vitest"
import * as Plan from "../src/Plan.js"

const whole = Source.define({
  name: "whole",
  description: "a source that does not split",
  config: Schema.Struct({}),
  make: () => Effect.succeed({ productComplete: true, stream: Stream.empty, check: Effect.void })
})
const sink = Sink.define({
  name: "nothing",
  description: "drops everything",
  config: Schema.Struct({}),
  make: () => Effect.succeed({ write: () => Effect.void, commit: Effect.succeed(null), finish: Effect.void, cleanup: Effect.void })
})

describe("Plan", () => {
  it("splits the channel into product-id chunks and keeps a source without partitions whole", async () => {
    const sim = await startChannelSimulator({ products: 45, seed: 3 })
    try {
      const pipeline = await Effect.runPromise(
        Pipeline.make({
          name: "plan",
          sources: {
            eu: { use: channel, with: { baseUrl: sim.url, channelId: sim.channelId, token: sim.token, partitionSize: 10 } },
            feed: { use: whole }
          },
          sinks: { out: { use: sink } }
        })
      )
      const units = await Effect.runPromise(Plan.plan(pipeline).pipe(Effect.scoped, Effect.provide(Runner.platformLayer)))
      const eu = units.filter((u) => u.source === "eu")
      // The products that have images (the listing finds those), 10 per unit.
      const withImages = sim.products.filter((p) => p.images.length > 0).map((p) => p.id).sort((a, b) => a - b)
      const chunks = Math.ceil(withImages.length / 10)
      expect(chunks).toBeGreaterThan(2)
      expect(eu.map((u) => u.key)).toEqual(Array.from({ length: chunks }, (_, i) => `eu.${String(i).padStart(4, "0")}`))
      expect(eu.every((u) => u.partitioned)).toBe(true)
      // Every product in exactly one unit.
      const products = eu.flatMap((u) => (u.spec as { products: ReadonlyArray<number> }).products)
      expect(new Set(products).size).toBe(products.length)
      expect([...products].sort((a, b) => a - b)).toEqual(withImages)
      expect(units.filter((u) => u.source === "feed")).toEqual([{ key: "feed.0000", source: "feed", ordinal: chunks, spec: null, partitioned: false }])
      expect(units.map((u) => u.ordinal)).toEqual(Array.from({ length: chunks + 1 }, (_, i) => i))
    } finally {
      await sim.close()
    }
  }, 60_000)
})
