import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Batch from "../../src/Batch.js"
import * as Config from "../../src/Config.js"
import { ApiError } from "../../src/Errors.js"
import * as RunStats from "../../src/RunStats.js"
import * as Source from "../../src/Source.js"
import { SourceHarness } from "../../src/testing/index.js"
import { image } from "../transforms/ProductFixtures.js"

/** A source of `products` one-image batches, resumable by index, that fails at `failAt` if set. */
const counting = Source.define({
  name: "counting",
  description: "Counts products (a test source).",
  config: Schema.Struct({
    products: Config.required(Config.intAtLeast(0), { description: "How many.", examples: [3] }),
    failAt: Config.optional(Config.intAtLeast(0), { description: "Fail here; leave it out to never fail.", examples: [2] })
  }),
  make: (config, ctx) =>
    Effect.gen(function*() {
      const from = Option.match(ctx.checkpoint, { onNone: () => 0, onSome: (c) => (c.value as { next: number }).next })
      yield* ctx.progress.total(config.products)
      yield* Effect.logWarning(`starting at ${from}`)
      yield* RunStats.add(ctx.name, "warnings")
      return {
        productComplete: true,
        check: Effect.void,
        stream: Stream.range(from, config.products - 1).pipe(
          Stream.mapEffect((i) =>
            i === config.failAt
              ? Effect.fail(new ApiError({ source: ctx.name, message: `source '${ctx.name}': product ${i} broke` }))
              : Effect.as(ctx.progress.page(), Batch.make([image({ productId: String(i), imageId: "a", source: ctx.name })], Option.some(Batch.position({ next: i + 1 }))))
          )
        )
      }
    })
})

describe("SourceHarness", () => {
  it.live("runs a source as the runner does: batches, checkpoints, progress, counters and logs under its pipeline name", () =>
    SourceHarness.live(Effect.gen(function*() {
      const run = yield* SourceHarness.run(counting, { products: 3 }, { name: "shop" })
      expect(run.productComplete).toBe(true)
      expect(run.records.map((r) => [r.source, r.productId])).toEqual([["shop", "0"], ["shop", "1"], ["shop", "2"]])
      expect(run.checkpoints.map((c) => Option.getOrThrow(c).value)).toEqual([{ next: 1 }, { next: 2 }, { next: 3 }])
      expect(run.totals).toEqual([3])
      expect(run.pages).toBe(3)
      expect(run.counts.warnings).toBe(1)
      expect(run.logs).toEqual(["WARN starting at 0"])
    })))

  it.live("resumes from a checkpoint, stops after `take` batches, and keeps what came before a failure", () =>
    SourceHarness.live(Effect.gen(function*() {
      const resumed = yield* SourceHarness.run(counting, { products: 4 }, { checkpoint: Option.some(Batch.position({ next: 2 })) })
      expect(resumed.records.map((r) => r.productId)).toEqual(["2", "3"])
      const taken = yield* SourceHarness.run(counting, { products: 4 }, { take: 1 })
      expect(taken.records.map((r) => r.productId)).toEqual(["0"])
      const { error, run } = yield* SourceHarness.runUntil(counting, { products: 4, failAt: 2 })
      expect(run.records.map((r) => r.productId)).toEqual(["0", "1"])
      expect(Option.getOrThrow(error).message).toBe("source 'counting': product 2 broke")
    })))

  it.live("a bad `with:` block is the ConfigError a pipeline file gets, naming the path", () =>
    SourceHarness.live(Effect.gen(function*() {
      const typo = yield* Effect.flip(SourceHarness.run(counting, { product: 3 }, { name: "shop" }))
      expect(typo._tag).toBe("ConfigError")
      expect(typo.message).toContain("sources.shop.with")
      const wrong = yield* Effect.flip(SourceHarness.check(counting, { products: -1 }))
      expect(wrong.message).toContain("sources.counting.with.products: expected an integer ≥ 0")
    })))

  it.live("bind gives runUntil, run and check in the test's own result shape", () =>
    SourceHarness.live(Effect.gen(function*() {
      const harness = SourceHarness.bind(counting, (run) => run.records.map((r) => r.productId))
      expect(yield* harness.run({ products: 2 })).toEqual(["0", "1"])
      const { error, result } = yield* harness.runUntil({ products: 3, failAt: 1 })
      expect(result).toEqual(["0"])
      expect(Option.isSome(error)).toBe(true)
      yield* harness.check({ products: 1 })
    })))

  it("plain shows a record's dates as epoch ms (NaN for an invalid one) and its bytes as their sha256", () => {
    const withBytes = image({ productId: "p", imageId: "i", createdAt: new Date(Date.UTC(2024, 3, 8)), updatedAt: new Date(Number.NaN), bytes: new TextEncoder().encode("abc") })
    expect(SourceHarness.plain(withBytes)).toMatchObject({
      createdAt: Date.UTC(2024, 3, 8),
      updatedAt: Number.NaN,
      bytes: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    })
    expect("bytes" in SourceHarness.plain(image({ productId: "p", imageId: "i" }))).toBe(false)
  })
})
