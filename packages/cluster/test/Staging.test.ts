/**
 * The part protocol in PostgreSQL: a partition's staged records are numbered parts; a resumed
 * partition drops the parts after its saved token (the source reads them again), a fresh one drops
 * them all; the finalize source reads every partition's committed records back in plan order,
 * bytes and JSON-unsafe `extra` values included.
 */
import { type Batch, ProductImage, Runner, type Sink, type Source } from "@effetl/core"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { afterEach, describe, expect, it } from "vitest"
import * as ClusterStore from "../src/ClusterStore.js"
import * as Staging from "../src/Staging.js"
import { dropAll, pgUrl, uniqueName } from "./support/Cluster.js"

const prefixes: Array<string> = []
afterEach(async () => {
  for (const prefix of prefixes.splice(0)) await dropAll({ prefix })
})

const img = (productId: string, imageId: string, fields: Partial<ConstructorParameters<typeof ProductImage>[0]> = {}) =>
  ProductImage.unchecked({
    source: "shop",
    productId,
    imageId,
    position: 1,
    url: `https://cdn.example/${productId}/${imageId}.jpg`,
    filename: null,
    width: null,
    height: null,
    alt: "a\u0000b \u{1F600}",
    contentHash: null,
    createdAt: new Date("2024-01-02T03:04:05.678Z"),
    updatedAt: null,
    extra: { n: 1, nested: { big: "12345678901234567890" } },
    ...fields
  })

const sinkContext = (committed: Option.Option<unknown>): Sink.SinkContext =>
  ({ name: Staging.sinkName, pipeline: "p", runId: "r", committed }) as Sink.SinkContext

/** Everything the staged source reads back, from a position. */
const readAll = (store: ClusterStore.ClusterStore, runId: string, checkpoint: Option.Option<Batch.Checkpoint> = Option.none()) =>
  Effect.gen(function*() {
    const source = Staging.stagedSource({ store, runId, incremental: false, pageSize: 2 })
    const instance = yield* source.make({}, {
      name: "staged",
      checkpoint,
      resumed: Option.isSome(checkpoint),
      limit: Option.none(),
      partition: Option.none(),
      progress: { total: () => Effect.void, page: () => Effect.void }
    } as Source.SourceContext)
    const batches = yield* Stream.runCollect(instance.stream)
    return Chunk.toReadonlyArray(batches)
  })

describe("Staging", () => {
  it("stages parts per partition, drops uncommitted parts on resume and reads everything back in plan order", async () => {
    const prefix = uniqueName("effetl_s")
    prefixes.push(prefix)
    const result = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          const store = yield* ClusterStore.make({ postgres: Redacted.make(pgUrl), prefix })
          const runId = "run1"
          // Partition 1 (ordinal 1) commits two parts, then writes a third that is never committed.
          const p1 = yield* Staging.stagingSink({ store, runId, partition: "shop.0001", ordinal: 1 }).make({}, sinkContext(Option.none()))
          yield* p1.write(Chunk.make(img("20", "1"), img("20", "2")), { productComplete: true })
          const t1 = yield* p1.commit
          yield* p1.write(Chunk.make(img("21", "1", { bytes: new Uint8Array([0, 1, 2, 255]) })), { productComplete: true })
          const t2 = yield* p1.commit
          yield* p1.write(Chunk.make(img("22", "1")), { productComplete: true })
          // Killed here: resumed with the saved token, the third part goes.
          const resumed = yield* Staging.stagingSink({ store, runId, partition: "shop.0001", ordinal: 1 }).make({}, sinkContext(Option.some(t2)))
          const again = yield* resumed.commit
          // Partition 0 (ordinal 0) commits one part after a fresh start that dropped a stale one.
          const stale = yield* Staging.stagingSink({ store, runId, partition: "shop.0000", ordinal: 0 }).make({}, sinkContext(Option.none()))
          yield* stale.write(Chunk.make(img("99", "9")), { productComplete: true })
          yield* stale.commit
          const p0 = yield* Staging.stagingSink({ store, runId, partition: "shop.0000", ordinal: 0 }).make({}, sinkContext(Option.none()))
          yield* p0.write(Chunk.make(img("10", "1")), { productComplete: true })
          yield* p0.commit
          const all = yield* readAll(store, runId)
          const fromMiddle = yield* readAll(store, runId, all[0]!.checkpoint)
          return { t1, t2, again, all, fromMiddle }
        }).pipe(Effect.provide(Runner.platformLayer))
      )
    )
    expect([result.t1, result.t2, result.again]).toEqual([{ seq: 1 }, { seq: 2 }, { seq: 2 }])
    const records = result.all.flatMap((b) => Chunk.toReadonlyArray(b.records))
    expect(records.map((r) => `${r.productId}/${r.imageId}`)).toEqual(["10/1", "20/1", "20/2", "21/1"])
    expect(records[0]!.alt).toBe("a\u0000b \u{1F600}")
    expect(records[0]!.extra).toEqual({ n: 1, nested: { big: "12345678901234567890" } })
    expect(records[0]!.createdAt).toEqual(new Date("2024-01-02T03:04:05.678Z"))
    expect(records[3]!.bytes).toEqual(new Uint8Array([0, 1, 2, 255]))
    expect(records[0]!.bytes).toBeUndefined()
    // Resumed after the first page (2 records), the source reads the rest only.
    expect(result.fromMiddle.flatMap((b) => Chunk.toReadonlyArray(b.records)).map((r) => `${r.productId}/${r.imageId}`)).toEqual(["20/2", "21/1"])
    expect(result.all.every((b) => Option.isSome(b.checkpoint))).toBe(true)
  }, 60_000)
})
