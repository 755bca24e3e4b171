/**
 * Records a transform leaves out are counted: with the reason it gives (`Transform.keep`,
 * `Transform.dropped`), or as "no reason given" when it says nothing; dedupe's drops stay `deduped`;
 * the reporter hears every counter as it moves.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Batch from "../src/Batch.js"
import * as JsonFileStateStore from "../src/JsonFileStateStore.js"
import * as Pipeline from "../src/Pipeline.js"
import { ProductImage } from "../src/ProductImage.js"
import * as Runner from "../src/Runner.js"
import * as Sink from "../src/Sink.js"
import * as Source from "../src/Source.js"
import * as Transform from "../src/Transform.js"
import { dedupeByHash } from "../src/transforms/DedupeByHash.js"

const img = (productId: string, width: number, hash: string) =>
  ProductImage.unchecked({
    source: "s", productId, imageId: "a", position: 1, url: null, filename: null, width, height: null, alt: null,
    contentHash: hash, createdAt: null, updatedAt: null, extra: {}
  })

/** Ten records in two batches: widths 0..9, products 0..9, the hash of 8 and 9 the same as 0 and 1. */
const ten = Source.define({
  name: "ten",
  description: "test source",
  config: Schema.Struct({}),
  make: (_c, ctx) =>
    Effect.succeed({
      productComplete: true,
      check: Effect.void,
      stream: Stream.fromIterable([0, 1]).pipe(
        Stream.map((b) =>
          Batch.make(
            Array.from({ length: 5 }, (_, i) => b * 5 + i).map((n) => img(String(n), n, `sha256:${n % 8}`).with({ source: ctx.name })),
            Option.some(Batch.position(b))
          )
        )
      )
    })
})

const written: Array<string> = []
const memorySink = Sink.define({
  name: "memory",
  description: "test sink",
  config: Schema.Struct({}),
  make: () =>
    Effect.succeed({
      write: (records: Chunk.Chunk<ProductImage>) => Effect.sync(() => void written.push(...Chunk.toReadonlyArray(records).map((r) => r.productId))),
      commit: Effect.succeed(null),
      finish: Effect.void,
      cleanup: Effect.void
    })
})

/** A user's transform that keeps wide images and says why it drops the others. */
const wideOnly = Transform.define({
  name: "wide-only",
  description: "keeps images at least 3 wide",
  config: Schema.Struct({}),
  productScoped: false,
  make: () => Effect.succeed({ apply: (batch) => Transform.keep(batch, (r) => (r.width ?? 0) >= 3, "narrower than 3 px") })
})

/** A user's transform that drops product 5 and says nothing. */
const silent = Transform.define({
  name: "silent-filter",
  description: "drops product 5 without a word",
  config: Schema.Struct({}),
  productScoped: false,
  make: () => Effect.succeed({ apply: (batch) => Effect.succeed({ ...batch, records: Chunk.filter(batch.records, (r) => r.productId !== "5") }) })
})

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-dropped-"))

describe("records dropped by transforms", () => {
  it.effect("are counted per reason in the summary and the run history; dedupe's stay deduped; the reporter hears each counter", () =>
    Effect.gen(function*() {
      const dir = tmp()
      written.length = 0
      const heard: Array<[string, string, number]> = []
      const pipeline = yield* Pipeline.make({
        name: "p",
        statePath: path.join(dir, "state.json"),
        deadLetterPath: path.join(dir, "dead.jsonl"),
        sources: { shop: { use: ten } },
        transforms: [{ use: wideOnly }, { use: silent }, { use: dedupeByHash, with: { scope: "global" } }],
        sinks: { out: { use: memorySink } }
      })
      const summary = yield* Runner.runNode(pipeline, { reporter: { counted: (s, c, n) => void heard.push([s, c, n]) } })
      // 0, 1, 2 too narrow; 5 dropped without a word; 8 and 9 share a hash with 0 and 1, which were dropped before the dedupe
      expect(written).toEqual(["3", "4", "6", "7", "8", "9"])
      const shop = summary.sources[0]!
      expect(shop.counts).toMatchObject({ read: 10, written: 6, dropped: 4, deduped: 0 })
      expect(shop.dropped).toEqual({ "narrower than 3 px": 3, [Transform.unexplained("silent-filter")]: 1 })
      const history = (yield* Effect.flatMap(JsonFileStateStore.make(pipeline.statePath), (s) => s.load("p"))).history!
      expect(history[0]!.sources.shop!.dropped).toEqual(shop.dropped)
      expect(heard.filter(([, c]) => c === "dropped").reduce((n, [, , k]) => n + k, 0)).toBe(4)
      expect(heard.filter(([, c]) => c === "read").reduce((n, [, , k]) => n + k, 0)).toBe(10)
    }))

  it.effect("a dedupe's drops are not counted twice", () =>
    Effect.gen(function*() {
      const dir = tmp()
      written.length = 0
      const pipeline = yield* Pipeline.make({
        name: "p",
        statePath: path.join(dir, "state.json"),
        deadLetterPath: path.join(dir, "dead.jsonl"),
        sources: { shop: { use: ten } },
        transforms: [{ use: dedupeByHash, with: { scope: "global" } }],
        sinks: { out: { use: memorySink } }
      })
      const summary = yield* Runner.runNode(pipeline)
      expect(summary.sources[0]!.counts).toMatchObject({ read: 10, written: 8, deduped: 2, dropped: 0 })
      expect(summary.sources[0]!.dropped).toBeUndefined()
    }))
})
