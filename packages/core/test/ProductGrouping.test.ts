import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as NodePath from "node:path"
import * as Batch from "../src/Batch.js"
import { TransformError } from "../src/Errors.js"
import { groupByProduct, type GroupingOptions } from "../src/ProductGrouping.js"
import { fromJson, type ProductImage, ProductImageJson, productKey } from "../src/ProductImage.js"
import { byProduct, canon, image, multiset, services, spreadSource } from "./transforms/ProductFixtures.js"
import * as Schema from "effect/Schema"

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "effetl-group-" }))

const group = (batches: ReadonlyArray<Batch.Batch>, options: GroupingOptions) =>
  Stream.fromIterable(batches).pipe(groupByProduct(options), Stream.runCollect, Effect.map(Chunk.toArray))

const recordsOf = (batches: ReadonlyArray<Batch.Batch>): Array<ProductImage> => batches.flatMap((b) => [...b.records])

const segmentFiles = (dir: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readDirectory(dir)).pipe(
    Effect.map((names) => names.filter((n) => /^\d+\.jsonl$/.test(n)).sort((a, b) => parseInt(a) - parseInt(b)))
  )

const decodeLine = Schema.decodeUnknownSync(Schema.parseJson(ProductImageJson))

/** The records in segments `0..n-1` of `dir`, read straight from disk. */
const segmentRecords = (dir: string, n: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const out: Array<ProductImage> = []
    for (let i = 0; i < n; i++) {
      const text = yield* fs.readFileString(NodePath.join(dir, `${i}.jsonl`))
      for (const line of text.split("\n")) if (line !== "") out.push(fromJson(decodeLine(line)))
    }
    return out
  })

/** The `value` of a batch's checkpoint (a batch index in these tests). */
const cpIndex = (b: Batch.Batch): number => Option.getOrThrow(b.checkpoint).value as number

describe("groupByProduct", () => {
  it.scoped("emits whole products, each in its input order, and exactly the input records", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { batches, records } = spreadSource({ products: 40, batchSize: 5, seed: 1 })
      const out = yield* group(batches, { dir, maxBuffered: 10_000, resume: Option.none(), outputBatchSize: 8 })

      assert.deepStrictEqual(multiset(recordsOf(out)), multiset(records))
      // No product spans two batches, and each product's records keep their input order.
      const input = byProduct(records)
      const owner = new Map<string, number>()
      out.forEach((b, i) => {
        for (const r of b.records) {
          const key = productKey(r)
          assert.strictEqual(owner.get(key) ?? i, i, `product ${key} is split over batches`)
          owner.set(key, i)
        }
        const products = byProduct(b.records)
        for (const [key, list] of products) assert.deepStrictEqual(list.map(canon), input.get(key)!.map(canon))
        assert.isTrue(b.records.length <= 8 || products.size === 1, "batch larger than outputBatchSize")
      })
      assert.strictEqual(owner.size, input.size)
      // Only the last batch carries a checkpoint: the last one of the input, with no spill.
      assert.isTrue(out.slice(0, -1).every((b) => Option.isNone(b.checkpoint)))
      assert.deepStrictEqual(out.at(-1)!.checkpoint, Option.some({ ...Batch.position(batches.length - 1), spill: 0 }))
    }).pipe(Effect.provide(services)))

  it.scoped("spills many segments with a small maxBuffered and gives the same output as in memory", () =>
    Effect.gen(function*() {
      const { batches, records } = spreadSource({ products: 60, batchSize: 4, seed: 2 })
      const bigDir = yield* tempDir
      const smallDir = yield* tempDir
      const inMemory = yield* group(batches, { dir: bigDir, maxBuffered: 10_000, resume: Option.none(), outputBatchSize: 10 })
      const spilled = yield* group(batches, { dir: smallDir, maxBuffered: 7, resume: Option.none(), outputBatchSize: 10 })

      const segments = yield* segmentFiles(smallDir)
      assert.isAbove(segments.length, 20)
      assert.deepStrictEqual(yield* segmentFiles(bigDir), [])
      const recordBatches = (bs: ReadonlyArray<Batch.Batch>) => bs.filter((b) => b.records.length > 0).map((b) => [...b.records].map(canon))
      assert.deepStrictEqual(recordBatches(spilled), recordBatches(inMemory))
      assert.deepStrictEqual(multiset(recordsOf(spilled)), multiset(records))
      assert.deepStrictEqual(
        spilled.at(-1)!.checkpoint,
        Option.some({ ...Batch.position(batches.length - 1), spill: segments.length })
      )
    }).pipe(Effect.provide(services)))

  it.scoped("merges more segments than the fan-in in passes: the exact ordered output, the segments kept, the pass files removed", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const { batches, records } = spreadSource({ products: 80, batchSize: 4, seed: 5 })
      const bigDir = yield* tempDir
      const smallDir = yield* tempDir
      const inMemory = yield* group(batches, { dir: bigDir, maxBuffered: 10_000, resume: Option.none(), outputBatchSize: 10 })
      // A segment about every batch: 66 segments, so fan-in 3 needs several passes (and fan-in 2 more).
      for (const fanIn of [2, 3, 32, 100]) {
        const dir = NodePath.join(smallDir, `fan-in-${fanIn}`)
        // A merge file left by a killed run is removed, not read.
        yield* fs.makeDirectory(dir, { recursive: true })
        yield* fs.writeFileString(NodePath.join(dir, "merge-1-0.jsonl"), "stale\n")
        const seen: Array<Array<string>> = []
        const spilled = yield* Stream.fromIterable(batches).pipe(
          groupByProduct({ dir, maxBuffered: 3, resume: Option.none(), outputBatchSize: 10, fanIn }),
          Stream.tap(() => Effect.map(fs.readDirectory(dir), (names) => void seen.push(names.filter((n) => n.startsWith("merge-"))))),
          Stream.runCollect,
          Effect.map(Chunk.toArray)
        )
        const segments = yield* segmentFiles(dir)
        assert.isAbove(segments.length, 60)
        const recordBatches = (bs: ReadonlyArray<Batch.Batch>) => bs.filter((b) => b.records.length > 0).map((b) => [...b.records].map(canon))
        assert.deepStrictEqual(recordBatches(spilled), recordBatches(inMemory), `fan-in ${fanIn}`)
        assert.deepStrictEqual(multiset(recordsOf(spilled)), multiset(records))
        assert.deepStrictEqual(spilled.at(-1)!.checkpoint, Option.some({ ...Batch.position(batches.length - 1), spill: segments.length }))
        // While the last merge ran, at most `fanIn` files of the last pass were on disk (the earlier passes' were removed).
        const during = seen.filter((names) => names.length > 0)
        if (fanIn < 100) {
          assert.isAbove(during.length, 0, `fan-in ${fanIn} made merge passes`)
          for (const names of during) assert.isAtMost(names.length, fanIn - 1, `fan-in ${fanIn}: ${names.join(" ")}`)
        } else {
          assert.deepStrictEqual(during, [])
        }
        assert.deepStrictEqual((yield* fs.readDirectory(dir)).filter((n) => n.startsWith("merge-")), [])
      }
    }).pipe(Effect.provide(services)))

  it.scoped("never emits a checkpoint ahead of the records held in durable segments", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // Every other batch has no checkpoint: a spill right after one must not emit the earlier checkpoint.
      const { batches, records } = spreadSource({ products: 50, batchSize: 3, seed: 3, checkpointEvery: 2 })
      let emitted: Array<ProductImage> = []
      let spillCheckpoints = 0
      let finalSeen = false
      yield* Stream.fromIterable(batches).pipe(
        groupByProduct({ dir, maxBuffered: 7, resume: Option.none(), outputBatchSize: 5 }),
        Stream.runForEach((b) =>
          Effect.gen(function*() {
            emitted = emitted.concat([...b.records])
            if (Option.isNone(b.checkpoint)) return
            const cp = Option.getOrThrow(b.checkpoint)
            const readSoFar = recordsOf(batches.slice(0, cpIndex(b) + 1))
            const onDisk = yield* segmentRecords(dir, cp.spill!)
            if (b.records.length === 0 && emitted.length === 0) {
              // While reading: the segments hold exactly the records before the checkpoint.
              spillCheckpoints++
              assert.deepStrictEqual(multiset(onDisk), multiset(readSoFar))
            } else {
              // The final checkpoint: every record before it has been emitted.
              finalSeen = true
              const lastWithCheckpoint = batches.findLastIndex((x) => Option.isSome(x.checkpoint))
              assert.strictEqual(cpIndex(b), lastWithCheckpoint)
              assert.deepStrictEqual(multiset(emitted), multiset(records))
            }
          })
        )
      )
      assert.isAbove(spillCheckpoints, 5)
      assert.isTrue(finalSeen)
    }).pipe(Effect.provide(services)))

  it.scoped("resumes from a checkpoint's segments, deletes later ones, and ends as an uninterrupted run", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const { batches } = spreadSource({ products: 60, batchSize: 4, seed: 4 })
      const options = { maxBuffered: 7, outputBatchSize: 6 }
      const reference = yield* group(batches, { ...options, dir: yield* tempDir, resume: Option.none() })

      /** A run killed after its third saved checkpoint; it resumes from the second. */
      const interrupted = (dir: string) =>
        Effect.gen(function*() {
          let seen = 0
          const out = yield* Stream.fromIterable(batches).pipe(
            groupByProduct({ ...options, dir, resume: Option.none() }),
            Stream.takeUntil((b) => Option.isSome(b.checkpoint) && ++seen === 3),
            Stream.runCollect,
            Effect.map(Chunk.toArray)
          )
          const checkpoints = out.filter((b) => Option.isSome(b.checkpoint))
          assert.strictEqual(checkpoints.length, 3)
          assert.deepStrictEqual(recordsOf(out), [], "records escaped before the source ended")
          // A half-written segment left by the kill.
          yield* fs.writeFileString(NodePath.join(dir, "99.jsonl.tmp"), "{\"trunc")
          return Option.getOrThrow(checkpoints[1]!.checkpoint)
        })

      // Same settings after the resume: identical output, checkpoints included.
      const dirA = yield* tempDir
      const cpA = yield* interrupted(dirA)
      const n = cpA.spill!
      assert.isAbove((yield* segmentFiles(dirA)).length, n)
      const resumedA = yield* group(batches.slice((cpA.value as number) + 1), {
        ...options,
        dir: dirA,
        resume: Option.some(cpA)
      })
      // The uninterrupted run also emitted the checkpoints up to cpA, before the kill point.
      const at = reference.findIndex((b) => Option.isSome(b.checkpoint) && Option.getOrThrow(b.checkpoint).spill === n)
      assert.deepStrictEqual(reference[at]!.checkpoint, Option.some(cpA))
      assert.deepStrictEqual(resumedA.map(show), reference.slice(at + 1).map(show))

      // A bigger buffer after the resume writes no new segment: only segments 0..n-1 remain.
      const dirB = yield* tempDir
      const cpB = yield* interrupted(dirB)
      assert.deepStrictEqual(cpB, cpA)
      const resumedB = yield* group(batches.slice((cpB.value as number) + 1), {
        ...options,
        maxBuffered: 10_000,
        dir: dirB,
        resume: Option.some(cpB)
      })
      assert.deepStrictEqual(
        (yield* fs.readDirectory(dirB)).sort(),
        Array.from({ length: n }, (_, i) => `${i}.jsonl`).sort()
      )
      const recordBatches = (bs: ReadonlyArray<Batch.Batch>) => bs.filter((b) => b.records.length > 0).map((b) => [...b.records].map(canon))
      assert.deepStrictEqual(recordBatches(resumedB), recordBatches(reference))
      assert.deepStrictEqual(resumedB.at(-1)!.checkpoint, Option.some({ ...Batch.position(batches.length - 1), spill: n }))
    }).pipe(Effect.provide(services)))

  it.scoped("fails with a TransformError when a segment of the saved checkpoint is missing", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const error = yield* group([], { dir, maxBuffered: 7, resume: Option.some({ ...Batch.position(3), spill: 2 }) }).pipe(Effect.flip)
      assert.instanceOf(error, TransformError)
      assert.include(error.message, "0.jsonl")
      assert.include(error.message, "--restart")
    }).pipe(Effect.provide(services)))

  it.scoped("keeps bytes, text and dates intact through the segment files (lines longer than a read or a write)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // Two images bigger than a read of a segment (readChunk) and one bigger than a write (1 MiB),
      // and multi-byte text that falls across reads.
      const size = (i: number) => (i === 5 ? 300_000 : i === 7 ? 1_500_000 : 64 + i)
      const records = Array.from({ length: 12 }, (_, i) =>
        image({
          productId: `P${i % 3}`,
          imageId: String(i),
          alt: i % 4 === 1 ? `${i}é😀ü`.repeat(20_000 + i) : null,
          bytes: Uint8Array.from({ length: size(i) }, (_, j) => (j * 37 + i) % 256),
          createdAt: new Date(Date.UTC(2024, 1, 29, 12, 30, i, 123)),
          updatedAt: i % 2 === 0 ? null : new Date(Date.UTC(2025, 0, 1, 0, 0, 0, i)),
          extra: { nested: { list: [1, "two", null] }, i }
        }))
      const batches = [0, 4, 8].map((s, i) => Batch.make(records.slice(s, s + 4), Option.some(Batch.position(i))))
      const out = yield* group(batches, { dir, maxBuffered: 3, resume: Option.none() })
      assert.isAbove((yield* segmentFiles(dir)).length, 2)
      const got = new Map(recordsOf(out).map((r) => [r.imageId, r]))
      assert.strictEqual(got.size, records.length)
      for (const r of records) {
        const g = got.get(r.imageId)!
        assert.deepStrictEqual(g.bytes, r.bytes)
        assert.instanceOf(g.bytes, Uint8Array)
        assert.strictEqual(g.createdAt!.getTime(), r.createdAt!.getTime())
        assert.strictEqual(g.updatedAt?.getTime(), r.updatedAt?.getTime())
        assert.deepStrictEqual(g.extra, r.extra)
        assert.strictEqual(g.alt, r.alt)
      }
    }).pipe(Effect.provide(services)))

  it.scoped("passes rejected entries through at once, without a checkpoint", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const dead = { source: "shop", stage: "source", error: "bad page", payload: { id: 7 } }
      const batches = [
        Batch.make([image({ productId: "A", imageId: "1" })], Option.some(Batch.position(0))),
        Batch.make([image({ productId: "B", imageId: "2" })], Option.some(Batch.position(1)), [dead]),
        Batch.make([image({ productId: "A", imageId: "3" })], Option.some(Batch.position(2)))
      ]
      const out = yield* group(batches, { dir, maxBuffered: 100, resume: Option.none() })
      assert.deepStrictEqual([...out[0]!.rejected], [dead])
      assert.strictEqual(out[0]!.records.length, 0)
      assert.isTrue(Option.isNone(out[0]!.checkpoint))
      assert.isTrue(out.slice(1).every((b) => b.rejected.length === 0))
      assert.deepStrictEqual(recordsOf(out).map((r) => r.imageId), ["1", "3", "2"])
    }).pipe(Effect.provide(services)))

  it.scoped("emits no checkpoint when the input has none, and puts a big product in a batch of its own", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const big = Array.from({ length: 7 }, (_, i) => image({ productId: "BIG", imageId: String(i) }))
      const small = [image({ productId: "A", imageId: "a" }), image({ productId: "C", imageId: "c" })]
      const batches = [Batch.make([small[0]!, ...big.slice(0, 3)]), Batch.make([...big.slice(3), small[1]!])]
      const out = yield* group(batches, { dir, maxBuffered: 2, resume: Option.none(), outputBatchSize: 3 })
      assert.isTrue(out.every((b) => Option.isNone(b.checkpoint)))
      assert.deepStrictEqual(out.map((b) => [...b.records].map((r) => r.imageId)), [["a"], ["0", "1", "2", "3", "4", "5", "6"], ["c"]])
    }).pipe(Effect.provide(services)))

  it.scoped("a corrupt spill segment fails the resume naming the file and what is wrong; a record whose extra is not JSON cannot spill", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const { batches } = spreadSource({ products: 30, batchSize: 4, seed: 9 })
      const options = { maxBuffered: 5, outputBatchSize: 6 }
      /** Spills until the first saved checkpoint, then `damage` segment 0 and resume from it. */
      const resumeAfter = (damage: (text: string) => string) =>
        Effect.gen(function*() {
          const dir = yield* tempDir
          const out = yield* Stream.fromIterable(batches).pipe(
            groupByProduct({ ...options, dir, resume: Option.none() }),
            Stream.takeUntil((b) => Option.isSome(b.checkpoint)),
            Stream.runCollect,
            Effect.map(Chunk.toArray)
          )
          const cp = Option.getOrThrow(out.at(-1)!.checkpoint)
          const segment = NodePath.join(dir, "0.jsonl")
          yield* fs.writeFileString(segment, damage(yield* fs.readFileString(segment)))
          const error = yield* group(batches.slice((cp.value as number) + 1), { ...options, dir, resume: Option.some(cp) }).pipe(Effect.flip)
          return { error, segment }
        })
      // A line cut short, as by a disk that lost its tail.
      const cut = yield* resumeAfter((text) => text.slice(0, text.indexOf("\n") + 20))
      assert.instanceOf(cut.error, TransformError)
      assert.include(cut.error.message, `Spill segment ${cut.segment} is corrupt: `)
      // Valid JSON of the wrong shape: Schema's message says which field.
      const shape = yield* resumeAfter((text) => text.replace(/"position":\d+/, `"position":"first"`))
      assert.include(shape.error.message, `Spill segment ${shape.segment} is corrupt: `)
      assert.include(shape.error.message, "position")

      const odd = image({ productId: "Z", imageId: "1" }).with({ extra: { big: 1n } })
      const spillFails = yield* group([Batch.make([odd, image({ productId: "Y", imageId: "2" })])], {
        dir: yield* tempDir,
        maxBuffered: 1,
        resume: Option.none()
      }).pipe(Effect.flip)
      assert.include(spillFails.message, `Cannot spill record ${odd.source}/Z/1: its 'extra' is not JSON`)
    }).pipe(Effect.provide(services)))
})

/** A batch's content as plain data, for comparing whole outputs. */
const show = (b: Batch.Batch) => ({
  records: [...b.records].map(canon),
  rejected: [...b.rejected],
  checkpoint: Option.getOrNull(b.checkpoint)
})
