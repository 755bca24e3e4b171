/**
 * The runner's run semantics with in-memory sources and a staged-file sink: checkpoints of both kinds,
 * restart and full refresh, failed runs, merged sources, dead letters, global dedupe across runs,
 * trials (limit) and dry runs.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Deferred from "effect/Deferred"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Batch from "../src/Batch.js"
import { ApiError } from "../src/Errors.js"
import * as Pipeline from "../src/Pipeline.js"
import { ProductImage, toJson } from "../src/ProductImage.js"
import * as RunLock from "../src/RunLock.js"
import * as Runner from "../src/Runner.js"
import * as Sink from "../src/Sink.js"
import * as Source from "../src/Source.js"
import * as StagedParts from "../src/StagedParts.js"
import { dedupeByHash } from "../src/transforms/DedupeByHash.js"
import { normaliseSequence } from "../src/transforms/NormaliseSequence.js"
import { validate } from "../src/transforms/Validate.js"

const img = (source: string, productId: string, imageId: string, position: number, hash: string | null = `sha256:${productId}-${imageId}`) =>
  ProductImage.unchecked({
    source, productId, imageId, position, url: null, filename: null, width: null, height: null, alt: null,
    contentHash: hash, createdAt: null, updatedAt: null, extra: {}
  })

/** A JSONL sink on StagedParts: what the real file sinks do. */
const jsonl = Sink.define({
  name: "test-jsonl",
  description: "test sink",
  config: Schema.Struct({ path: Schema.String }),
  make: (config, ctx) =>
    Effect.gen(function*() {
      const parts = yield* StagedParts.make({ name: ctx.name, path: config.path, mode: "overwrite", runId: ctx.runId, ext: "jsonl", committed: ctx.committed })
      return {
        write: (records) => parts.write(Chunk.toReadonlyArray(records).map((r) => JSON.stringify(toJson(r)) + "\n").join("")),
        commit: parts.commit,
        finish: parts.finish,
        cleanup: parts.cleanup
      }
    })
})

interface Feed {
  /** batches of one run; a checkpoint value is the index of the batch */
  readonly batches: ReadonlyArray<ReadonlyArray<ProductImage>>
  readonly kind: "position" | "cursor"
  readonly productComplete?: boolean
  /** fail after emitting this many batches */
  readonly failAfter?: number
  readonly seen: Array<Option.Option<Batch.Checkpoint>>
  readonly checked?: { count: number }
}

/** A source over in-memory batches, resuming after the checkpoint's batch index. */
const memory = (name: string, feed: Feed) =>
  Source.define({
    name,
    description: "in-memory test source",
    config: Schema.Struct({}),
    make: (_config, ctx) =>
      Effect.sync(() => {
        feed.seen.push(ctx.checkpoint)
        const from = Option.match(ctx.checkpoint, { onNone: () => 0, onSome: (cp) => (cp.value as number) + 1 })
        const indexed = feed.batches.map((records, i) => [records, i] as const).slice(from)
        let stream: Stream.Stream<Batch.Batch, ApiError> = Stream.fromIterable(indexed).pipe(
          Stream.map(([records, i]) =>
            Batch.make(records.map((r) => r.with({ source: ctx.name })), Option.some(feed.kind === "cursor" ? Batch.cursor(i) : Batch.position(i)))
          )
        )
        if (feed.failAfter !== undefined) {
          stream = Stream.concat(
            Stream.take(stream, Math.max(0, feed.failAfter - from)),
            Stream.fail(new ApiError({ source: ctx.name, message: `source '${ctx.name}': the API broke (HTTP 500)`, status: 500 }))
          )
        }
        return {
          productComplete: feed.productComplete ?? true,
          stream,
          check: Effect.sync(() => {
            if (feed.checked) feed.checked.count++
          })
        }
      })
  })

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-runner-"))
const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)) : [])
const state = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")).pipelines

const make = (dir: string, sources: Record<string, Feed>, transforms: Pipeline.PipelineSpec["transforms"] = [], extra: Partial<Pipeline.PipelineSpec> = {}) =>
  Pipeline.make({
    name: "p",
    statePath: path.join(dir, "state.json"),
    deadLetterPath: path.join(dir, "dead.jsonl"),
    everyRecords: 1,
    sources: Object.fromEntries(Object.entries(sources).map(([n, f]) => [n, { use: memory(n, f) }])),
    transforms,
    sinks: { out: { use: jsonl, with: { path: path.join(dir, "out.jsonl") } } },
    ...extra
  })

const three = [[img("", "1", "a", 1), img("", "1", "b", 2)], [img("", "2", "a", 1)], [img("", "3", "a", 1)]]

describe("Runner", () => {
  it.effect("a position checkpoint resumes only the current run; the next run scans again", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const feed: Feed = { batches: three, kind: "position", seen: [] }
      const first = yield* Runner.runNode(yield* make(dir, { s: feed }))
      expect(first.status).toBe("finished")
      expect(first.sources[0]!.counts.written).toBe(4)
      expect(lines(path.join(dir, "out.jsonl")).length).toBe(4)
      const second = yield* Runner.runNode(yield* make(dir, { s: feed }))
      expect(second.runId).not.toBe(first.runId)
      expect(feed.seen.map(Option.isSome)).toEqual([false, false])
      expect(lines(path.join(dir, "out.jsonl")).length).toBe(4)
    }))

  it.effect("a cursor checkpoint carries over: the next run reads only what came after it", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const feed: Feed = { batches: three, kind: "cursor", seen: [] }
      yield* Runner.runNode(yield* make(dir, { s: feed }))
      const second = yield* Runner.runNode(yield* make(dir, { s: feed }))
      expect(feed.seen[1]).toEqual(Option.some(Batch.cursor(2)))
      expect(second.sources[0]!.counts.read).toBe(0)
      // nothing new since the last run: the overwrite output is left as it was, not emptied
      expect(lines(path.join(dir, "out.jsonl")).length).toBe(4)
      expect(state(dir).p.run).toMatchObject({ status: "finished", read: 0, fromCursor: true })
      // --full-refresh ignores the cursor
      yield* Runner.runNode(yield* make(dir, { s: feed }), { fullRefresh: true })
      expect(feed.seen[2]).toEqual(Option.none())
      expect(lines(path.join(dir, "out.jsonl")).length).toBe(4)
    }))

  it.effect("a run from a carried cursor that reads something new publishes it; one that reads nothing says so and leaves every output", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const batches = [...three]
      const feed: Feed = { batches, kind: "cursor", seen: [] }
      yield* Runner.runNode(yield* make(dir, { s: feed }))
      batches.push([img("", "4", "a", 1)])
      yield* Runner.runNode(yield* make(dir, { s: feed }))
      expect(lines(path.join(dir, "out.jsonl")).map((r) => r.productId)).toEqual(["4"])
      fs.writeFileSync(path.join(dir, "dead.jsonl"), "earlier dead letters\n")
      const logs: Array<string> = []
      const logger = Logger.make(({ message }) => void logs.push(Array.isArray(message) ? message.join(" ") : String(message)))
      yield* Runner.runNode(yield* make(dir, { s: feed })).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(lines(path.join(dir, "out.jsonl")).map((r) => r.productId)).toEqual(["4"])
      expect(fs.readFileSync(path.join(dir, "dead.jsonl"), "utf8")).toBe("earlier dead letters\n")
      expect(logs.some((l) => /^the last run \S+ of pipeline 'p' finished at \d{4}-.*incremental sources read what changed since/.test(l))).toBe(true)
      expect(logs).toContain("nothing changed since the last run: every output was left as it was")
    }))

  it.effect("a resume before the source's first commit of the run is told it is not a resume (the cursor is still the carried one)", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const told: Array<[boolean, unknown]> = []
      const feed: Feed = { batches: three, kind: "cursor", seen: [] }
      const base = memory("s", feed)
      const probe = Source.define({
        ...base,
        make: (config, ctx) => Effect.tap(base.make(config, ctx), () => Effect.sync(() => void told.push([ctx.resumed, Option.getOrNull(ctx.checkpoint)?.value])))
      })
      const pipeline = () =>
        Pipeline.make({
          name: "p",
          statePath: path.join(dir, "state.json"),
          deadLetterPath: path.join(dir, "dead.jsonl"),
          everyRecords: 1,
          sources: { s: { use: probe } },
          sinks: { out: { use: jsonl, with: { path: path.join(dir, "out.jsonl") } } }
        })
      yield* Runner.runNode(yield* pipeline()) // a full first run: the cursor is 2
      // the next run carries cursor 2 in and fails before any commit of its own
      const mutable = feed as { failAfter?: number }
      mutable.failAfter = 0
      yield* Effect.flip(Runner.runNode(yield* pipeline()))
      delete mutable.failAfter
      yield* Runner.runNode(yield* pipeline()) // resumes the failed run, which committed nothing of its own
      expect(told).toEqual([[false, undefined], [false, 2], [false, 2]])
    }))

  it.effect("sinks are told whether the pipeline reads incrementally", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const told: Array<boolean> = []
      const probe = Sink.define({
        name: "probe",
        description: "records the context",
        config: Schema.Struct({}),
        make: (_config, ctx) =>
          Effect.sync(() => {
            told.push(ctx.incremental)
            return { write: () => Effect.void, commit: Effect.succeed(null), finish: Effect.void, cleanup: Effect.void }
          })
      })
      const feed: Feed = { batches: three, kind: "cursor", seen: [] }
      const full = memory("full", feed)
      const incremental = Source.define({ ...memory("inc", feed), incremental: () => true })
      for (const use of [full, incremental]) {
        yield* Runner.runNode(
          yield* Pipeline.make({
            name: `p-${use.name}`,
            statePath: path.join(dir, "state.json"),
            deadLetterPath: path.join(dir, `dead-${use.name}.jsonl`),
            sources: { s: { use } },
            sinks: { out: { use: probe } }
          })
        )
      }
      expect(told).toEqual([false, true])
    }))

  it.effect("a library run refuses outputs on one path before touching anything", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const file = path.join(dir, "out.jsonl")
      fs.writeFileSync(file, "earlier output\n")
      const onFile = Sink.define({ ...jsonl, outputs: (config: { path: string }) => [{ option: "path", path: config.path, kind: "file" as const }] })
      const pipeline = yield* Pipeline.make({
        name: "p",
        statePath: path.join(dir, "state.json"),
        deadLetterPath: path.join(dir, "dead.jsonl"),
        sources: { s: { use: memory("s", { batches: three, kind: "position", seen: [] }) } },
        sinks: { a: { use: onFile, with: { path: file } }, b: { use: onFile, with: { path: file } } }
      })
      const failed = yield* Effect.flip(Runner.runNode(pipeline))
      expect(failed._tag).toBe("ConfigError")
      expect(failed.message).toMatch(/sinks\.a\.with\.path and sinks\.b\.with\.path .*same path/)
      expect(fs.readFileSync(file, "utf8")).toBe("earlier output\n")
      expect(fs.existsSync(path.join(dir, "state.json"))).toBe(false)
    }))

  it.effect("a failed run is recorded with its error, keeps its committed checkpoint, and the next run resumes it", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const failing: Feed = { batches: three, kind: "position", failAfter: 2, seen: [] }
      const finished: Array<string> = []
      const error = yield* Runner.runNode(yield* make(dir, { s: failing }), { reporter: { sourceFinished: (s) => void finished.push(s) } }).pipe(Effect.flip)
      expect(error._tag).toBe("ApiError")
      // a source that failed is not reported as finished
      expect(finished).toEqual([])
      const saved = state(dir).p
      expect(saved.run.status).toBe("failed")
      expect(saved.run.error).toContain("the API broke")
      expect(saved.sources.s.checkpoint).toEqual({ kind: "position", value: 1 })
      const ok: Feed = { batches: three, kind: "position", seen: [] }
      const resumed = yield* Runner.runNode(yield* make(dir, { s: ok }), { reporter: { sourceFinished: (s) => void finished.push(s) } })
      expect(finished).toEqual(["s"])
      expect(resumed.resumed).toBe(true)
      expect(resumed.runId).toBe(saved.run.id)
      expect(ok.seen[0]).toEqual(Option.some(Batch.position(1)))
      // the output holds the whole run: the part committed before the failure plus the rest
      expect(lines(path.join(dir, "out.jsonl")).map((r) => `${r.productId}/${r.imageId}`)).toEqual(["1/a", "1/b", "2/a", "3/a"])
    }))

  it.effect("restart discards an unfinished run", () =>
    Effect.gen(function*() {
      const dir = tmp()
      yield* Runner.runNode(yield* make(dir, { s: { batches: three, kind: "position", failAfter: 2, seen: [] } })).pipe(Effect.flip)
      const failedId = state(dir).p.run.id
      const fresh: Feed = { batches: three, kind: "position", seen: [] }
      const r = yield* Runner.runNode(yield* make(dir, { s: fresh }), { restart: true })
      expect(r.resumed).toBe(false)
      expect(r.runId).not.toBe(failedId)
      expect(fresh.seen[0]).toEqual(Option.none())
      expect(lines(path.join(dir, "out.jsonl")).length).toBe(4)
    }))

  it.effect("counts every dead letter of a batch as invalid, under its own source", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const badA = [img("", "1", "x", 0.5), img("", "1", "y", 0.25)]
      const badB = [img("", "9", "x", 1.5), img("", "9", "z", 2.5), img("", "8", "z", 3.5)]
      const r = yield* Runner.runNode(
        yield* make(dir, {
          a: { batches: [[...badA, img("", "1", "ok", 1)]], kind: "position", seen: [] },
          b: { batches: [[badB[0]!, img("", "9", "y", 1), badB[1]!], [badB[2]!]], kind: "position", seen: [] }
        }, [{ use: validate }])
      )
      const counts = Object.fromEntries(r.sources.map((s) => [s.name, s.counts]))
      expect(counts.a).toMatchObject({ read: 3, written: 1, invalid: 2 })
      expect(counts.b).toMatchObject({ read: 4, written: 1, invalid: 3 })
      expect(r.deadLetters).toBe(5)
      expect(lines(path.join(dir, "dead.jsonl")).map((d) => d.source).sort()).toEqual(["a", "a", "b", "b", "b"])
    }))

  it.effect("merges sources, counts per source, and sends rejected records to the dead-letter file with the checkpoint", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const bad = img("", "9", "x", 1.5)
      const r = yield* Runner.runNode(
        yield* make(dir, { a: { batches: three, kind: "position", seen: [] }, b: { batches: [[bad, img("", "9", "y", 1)]], kind: "position", seen: [] } }, [
          { use: validate }
        ])
      )
      const counts = Object.fromEntries(r.sources.map((s) => [s.name, s.counts]))
      expect(counts.a).toMatchObject({ read: 4, written: 4, invalid: 0 })
      expect(counts.b).toMatchObject({ read: 2, written: 1, invalid: 1 })
      expect(r.deadLetters).toBe(1)
      const dead = lines(path.join(dir, "dead.jsonl"))
      expect(dead).toHaveLength(1)
      expect(dead[0]).toMatchObject({ source: "b", stage: "validate", checkpoint: { kind: "position", value: 0 } })
      expect(dead[0].error).toContain("position")
      expect(new Set(lines(path.join(dir, "out.jsonl")).map((x) => x.source))).toEqual(new Set(["a", "b"]))
    }))

  it.effect("global dedupe remembers hashes across runs through the state store", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const feed: Feed = { batches: [[img("", "1", "a", 1, "sha256:same"), img("", "2", "a", 1, "sha256:same")], [img("", "3", "a", 1, "sha256:other")]], kind: "position", seen: [] }
      const t = [{ use: dedupeByHash, with: { scope: "global" } }]
      const first = yield* Runner.runNode(yield* make(dir, { s: feed }, t))
      expect(first.sources[0]!.counts).toMatchObject({ written: 2, deduped: 1 })
      const second = yield* Runner.runNode(yield* make(dir, { s: feed }, t))
      expect(second.sources[0]!.counts).toMatchObject({ written: 0, deduped: 3 })
      expect(lines(path.join(dir, "out.jsonl"))).toHaveLength(0)
    }))

  it.effect("products spread over batches are regrouped before product-scoped transforms", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const spread: Feed = {
        batches: [[img("", "1", "b", 20)], [img("", "2", "a", 5), img("", "1", "a", 10)], [img("", "1", "c", 10, "sha256:1-a")]],
        kind: "position",
        productComplete: false,
        seen: []
      }
      const r = yield* Runner.runNode(
        yield* make(dir, { s: spread }, [{ use: dedupeByHash }, { use: normaliseSequence }], { maxBuffered: 1 })
      )
      expect(r.sources[0]!.counts).toMatchObject({ read: 4, written: 3, deduped: 1 })
      const out = lines(path.join(dir, "out.jsonl")).map((x) => `${x.productId}/${x.imageId}@${x.position}`)
      expect(out).toEqual(["1/a@1", "1/b@2", "2/a@1"])
      // spill segments (and the empty runs directory) are removed once the run has finished
      expect(fs.existsSync(path.join(dir, "runs", "p"))).toBe(false)
    }))

  it.effect("a limit run is a trial: truncated output, no state saved", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const r = yield* Runner.runNode(yield* make(dir, { s: { batches: three, kind: "cursor", seen: [] } }), { limit: 3 })
      expect(r.status).toBe("trial")
      expect(lines(path.join(dir, "out.jsonl"))).toHaveLength(3)
      expect(fs.existsSync(path.join(dir, "state.json")) ? state(dir).p : undefined).toBeUndefined()
    }))

  it.effect("a dry run reaches every source and writes nothing", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const checked = { count: 0 }
      const r = yield* Runner.runNode(yield* make(dir, { a: { batches: three, kind: "position", seen: [], checked }, b: { batches: three, kind: "position", seen: [], checked } }), { dryRun: true })
      expect(r.status).toBe("dry-run")
      expect(checked.count).toBe(2)
      expect(fs.readdirSync(dir)).toEqual([])
    }))

  it.effect("Pipeline.make names the path of a bad option", () =>
    Effect.gen(function*() {
      const r = yield* Pipeline.make({
        name: "p",
        sources: { s: { use: memory("m", { batches: [], kind: "position", seen: [] }), with: { nope: 1 } } },
        sinks: { out: { use: jsonl, with: { path: 3 } } }
      }).pipe(Effect.either)
      expect(Either.isLeft(r) && r.left.message).toContain("sources.s.with.nope: unknown option")
    }))

  it.effect("one run of a pipeline at a time; a lock left by a dead process is taken over", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const p = yield* make(dir, { s: { batches: three, kind: "position", seen: [] } })
      const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" })
      try {
        const lock = RunLock.lockPath(p.statePath, p.name)
        fs.writeFileSync(lock, JSON.stringify({ pid: other.pid, host: os.hostname(), since: "2026-01-01T00:00:00.000Z" }))
        const e = yield* Runner.runNode(p).pipe(Effect.flip)
        expect(e._tag).toBe("StateError")
        expect(e.message).toBe(
          `pipeline 'p' is already running (pid ${other.pid}, since 2026-01-01T00:00:00.000Z); wait for it to finish, or stop it (its work is kept and the next run resumes).`
        )
        // nothing was touched
        expect(fs.existsSync(path.join(dir, "state.json"))).toBe(false)
        other.kill("SIGKILL")
        yield* Effect.promise(() => new Promise((resolve) => other.on("exit", resolve)))
        const r = yield* Runner.runNode(p)
        expect(r.status).toBe("finished")
        expect(fs.existsSync(lock)).toBe(false) // released at the end
      } finally {
        other.kill("SIGKILL")
      }
    }))

  it.effect("by default a run commits after 10 seconds even when fewer than 10,000 records came (a slow API)", () =>
    Effect.gen(function*() {
      // One batch, then a source that waits 11 s (on the test clock) before its second batch.
      const commitsWith = (settings: Partial<Pipeline.PipelineSpec>) =>
        Effect.gen(function*() {
          const dir = tmp()
          const waiting = yield* Deferred.make<void>()
          let commits = 0
          const slow = Source.define({
            name: "slow",
            description: "a slow test source",
            config: Schema.Struct({}),
            make: (_config, ctx) =>
              Effect.succeed({
                productComplete: true,
                check: Effect.void,
                stream: Stream.concat(
                  Stream.make(Batch.make([img(ctx.name, "1", "a", 1)], Option.some(Batch.position(0)))),
                  Stream.fromEffect(
                    Effect.zipRight(
                      Effect.zipRight(Deferred.succeed(waiting, undefined), Effect.sleep("11 seconds")),
                      Effect.succeed(Batch.make([img(ctx.name, "2", "a", 1)], Option.some(Batch.position(1))))
                    )
                  )
                )
              })
          })
          const counting = Sink.define({
            name: "counting",
            description: "counts commits",
            config: Schema.Struct({}),
            make: () =>
              Effect.succeed({
                write: () => Effect.void,
                commit: Effect.sync(() => String(++commits)),
                finish: Effect.void,
                cleanup: Effect.void
              })
          })
          const pipeline = yield* Pipeline.make({
            name: "slow",
            statePath: path.join(dir, "state.json"),
            deadLetterPath: path.join(dir, "dead.jsonl"),
            sources: { s: { use: slow } },
            sinks: { out: { use: counting } },
            ...settings
          })
          const run = yield* Effect.fork(Runner.runNode(pipeline))
          yield* Deferred.await(waiting)
          yield* TestClock.adjust("11 seconds")
          const summary = yield* Fiber.join(run)
          expect(summary.sources[0]!.counts.written).toBe(2)
          return commits
        })
      // The second batch arrives 11 s after the run began: a commit for it, then the run's last one.
      expect(yield* commitsWith({})).toBe(2)
      // With a longer interval the run commits only at its end.
      expect(yield* commitsWith({ everySeconds: 60 })).toBe(1)
    }))
})
