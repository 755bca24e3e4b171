/**
 * The run history through real runs on the JSON state store: an entry per finished or failed run
 * written with the run's end, counts per source, a resumed run merged into its entry, the history
 * bounded, a run discarded by --restart recorded as interrupted, and a killed run listed as
 * interrupted; plus the pure merging and listing rules.
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
import { ApiError } from "../src/Errors.js"
import * as JsonFileStateStore from "../src/JsonFileStateStore.js"
import * as Pipeline from "../src/Pipeline.js"
import * as PipelineFile from "../src/PipelineFile.js"
import { ProductImage } from "../src/ProductImage.js"
import * as RunHistory from "../src/RunHistory.js"
import * as Registry from "../src/Registry.js"
import * as Runner from "../src/Runner.js"
import * as Sink from "../src/Sink.js"
import * as Source from "../src/Source.js"
import * as StateStore from "../src/StateStore.js"

const img = (productId: string) =>
  ProductImage.unchecked({
    source: "s", productId, imageId: "a", position: 1, url: null, filename: null, width: null, height: null, alt: null,
    contentHash: null, createdAt: null, updatedAt: null, extra: {}
  })

/** A source of `n` one-record batches that fails after `failAfter` of them when set. */
const counting = (n: number, control: { failAfter?: number }) =>
  Source.define({
    name: "counting",
    description: "test source",
    config: Schema.Struct({}),
    make: (_c, ctx) =>
      Effect.sync(() => {
        const from = Option.match(ctx.checkpoint, { onNone: () => 0, onSome: (cp) => (cp.value as number) + 1 })
        const all = Stream.fromIterable(Array.from({ length: n }, (_, i) => i).slice(from)).pipe(
          Stream.map((i) => Batch.make([img(String(i)).with({ source: ctx.name })], Option.some(Batch.position(i))))
        )
        const stream = control.failAfter === undefined
          ? all
          : Stream.concat(Stream.take(all, control.failAfter - from), Stream.fail(new ApiError({ source: ctx.name, message: "the API broke (HTTP 500)", status: 500 })))
        return { productComplete: true, stream, check: Effect.void }
      })
  })

/** A sink that keeps nothing. */
const nowhere = Sink.define({
  name: "nowhere",
  description: "test sink",
  config: Schema.Struct({}),
  make: () => Effect.succeed({ write: (r: Chunk.Chunk<ProductImage>) => Effect.as(Effect.void, void r), commit: Effect.succeed(null), finish: Effect.void, cleanup: Effect.void })
})

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-history-"))

const pipeline = (dir: string, n: number, control: { failAfter?: number } = {}, history?: number) =>
  Pipeline.make({
    name: "p",
    statePath: path.join(dir, "state.json"),
    deadLetterPath: path.join(dir, "dead.jsonl"),
    everyRecords: 1,
    ...(history !== undefined ? { history } : {}),
    sources: { shop: { use: counting(n, control) } },
    sinks: { out: { use: nowhere } }
  })

const load = (dir: string) => Effect.flatMap(JsonFileStateStore.make(path.join(dir, "state.json")), (s) => s.load("p"))

describe("RunHistory through the runner", () => {
  it.effect("a finished run is recorded with its counts per source, in the same save as its end", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const summary = yield* Runner.runNode(yield* pipeline(dir, 3))
      const state = yield* load(dir)
      expect(state.run?.status).toBe("finished")
      expect(state.history).toHaveLength(1)
      const [entry] = state.history!
      expect(entry).toMatchObject({ id: summary.runId, status: "finished", attempts: 1, startedAt: state.run!.startedAt, endedAt: state.run!.finishedAt })
      expect(entry!.sources.shop!.counts).toMatchObject({ read: 3, written: 3, retries: 0 })
      expect(entry!.seconds).toBeGreaterThanOrEqual(0)
    }))

  it.effect("a failed run is recorded with its error; resumed to the end, its entry becomes finished, counts summed over both attempts", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const control: { failAfter?: number } = { failAfter: 2 }
      const failed = yield* Effect.flip(Runner.runNode(yield* pipeline(dir, 5, control)))
      expect(failed.message).toContain("the API broke")
      let state = yield* load(dir)
      expect(state.history).toHaveLength(1)
      expect(state.history![0]).toMatchObject({ status: "failed", error: "the API broke (HTTP 500)", attempts: 1 })
      expect(state.history![0]!.sources.shop!.counts.written).toBe(2)
      delete control.failAfter
      const resumed = yield* Runner.runNode(yield* pipeline(dir, 5, control))
      expect(resumed.resumed).toBe(true)
      state = yield* load(dir)
      expect(state.history).toHaveLength(1)
      expect(state.history![0]).toMatchObject({ id: resumed.runId, status: "finished", attempts: 2 })
      expect(state.history![0]!.error).toBeUndefined()
      expect(state.history![0]!.sources.shop!.counts.written).toBe(5)
    }))

  it.effect("the history keeps the newest runs only (state.history), newest first", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const ids: Array<string> = []
      for (let i = 0; i < 4; i++) ids.push((yield* Runner.runNode(yield* pipeline(dir, 1, {}, 3))).runId)
      const state = yield* load(dir)
      expect(state.history!.map((r) => r.id)).toEqual(ids.slice(1).reverse())
    }))

  it.effect("the default bound is 50", () =>
    Effect.sync(() => {
      let state: StateStore.PipelineState = StateStore.empty
      for (let i = 0; i < 60; i++) state = RunHistory.record(state, { id: `r${i}`, status: "finished", startedAt: `2026-01-01T00:00:${String(i).padStart(2, "0")}Z`, sources: {} })
      expect(state.history).toHaveLength(RunHistory.defaultLimit)
      expect(state.history![0]!.id).toBe("r59")
      expect(state.history!.at(-1)!.id).toBe("r10")
    }))

  it.effect("a killed run (running in the state, no lock held) is listed as interrupted, and recorded so when --restart discards it", () =>
    Effect.gen(function*() {
      const dir = tmp()
      yield* Runner.runNode(yield* pipeline(dir, 1))
      const store = yield* JsonFileStateStore.make(path.join(dir, "state.json"))
      const before = yield* store.load("p")
      // What a SIGKILL leaves: the run saved as running at its start, nothing more.
      yield* store.save("p", { ...before, run: { id: "killed-run", status: "running", startedAt: "2026-01-01T00:00:00.000Z", read: 7 } })
      const listed = RunHistory.list(yield* store.load("p"), false)
      expect(listed[0]).toMatchObject({ id: "killed-run", status: "interrupted", read: 7 })
      expect(RunHistory.list(yield* store.load("p"), true)[0]!.status).toBe("running")
      expect(listed[1]!.status).toBe("finished")
      const next = yield* Runner.runNode(yield* pipeline(dir, 1), { restart: true })
      const after = yield* store.load("p")
      expect(after.history!.map((r) => [r.id, r.status])).toEqual([[next.runId, "finished"], ["killed-run", "interrupted"], [before.run!.id, "finished"]])
    }))

  it.effect("a trial and a dry run leave the history as it was", () =>
    Effect.gen(function*() {
      const dir = tmp()
      yield* Runner.runNode(yield* pipeline(dir, 2))
      yield* Runner.runNode(yield* pipeline(dir, 2), { limit: 1 })
      yield* Runner.runNode(yield* pipeline(dir, 2), { dryRun: true })
      expect((yield* load(dir)).history).toHaveLength(1)
    }))
})

describe("RunHistory.list", () => {
  it("lists a state saved before histories were kept by its current run alone", () => {
    const state: StateStore.PipelineState = {
      ...StateStore.empty,
      run: { id: "old", status: "finished", startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:01:00Z", read: 4 }
    }
    expect(RunHistory.list(state, false)).toEqual([
      { id: "old", status: "finished", startedAt: "2026-01-01T00:00:00Z", endedAt: "2026-01-01T00:01:00Z", read: 4, sources: {} }
    ])
  })

  it("a decoded state with a history round-trips through the state schema", () => {
    const state = RunHistory.record(StateStore.empty, {
      id: "r", status: "failed", startedAt: "2026-01-01T00:00:00Z", error: "boom", sources: { a: { counts: { read: 1 }, dropped: { "too small": 1 } } }
    })
    expect(Schema.decodeUnknownSync(StateStore.PipelineState)(Schema.encodeSync(StateStore.PipelineState)(state))).toEqual(state)
  })
})

describe("state.history in a pipeline file", () => {
  const file = (history: string) => `version: 1
name: p
state: { path: s.json${history} }
sources: { a: { use: counting } }
sinks: { b: { use: nowhere } }
`
  const registry = Registry.make({ sources: [counting(1, {})], transforms: [], sinks: [nowhere] })

  it.effect("sets how many runs the history keeps, read by run and by peek; an integer of at least 1", () =>
    Effect.gen(function*() {
      expect((yield* PipelineFile.parse(file(", history: 5"), { registry, env: {} })).history).toBe(5)
      expect((yield* PipelineFile.parse(file(""), { registry, env: {} })).history).toBeUndefined()
      const dir = tmp()
      fs.writeFileSync(path.join(dir, "p.yaml"), file(", history: 7"))
      expect((yield* PipelineFile.peek(path.join(dir, "p.yaml"))).history).toBe(7)
      const bad = yield* Effect.flip(PipelineFile.parse(file(", history: 0"), { registry, env: {} }))
      expect(bad.message).toContain("state.history: expected an integer ≥ 1")
      expect((yield* Effect.flip(Pipeline.make({ name: "p", history: 1.5, sources: {}, sinks: {} }))).message).toContain("history: expected an integer ≥ 1")
    }))
})
