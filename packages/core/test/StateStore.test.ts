/**
 * State store plugins and the transactional commit: a store chosen by `state: { use, with }` (resolved
 * through the registry, like every plugin), and a store that offers a `transaction` so that sinks on
 * its database commit in the same transaction as the state save.
 *
 * The store here is an in-memory "database" with real transaction semantics (a copy committed on
 * success, dropped on failure): the runner under test cannot tell it from a SQL store.
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
import * as Config from "../src/Config.js"
import { SinkError, StateError } from "../src/Errors.js"
import * as Pipeline from "../src/Pipeline.js"
import * as PipelineFile from "../src/PipelineFile.js"
import { ProductImage } from "../src/ProductImage.js"
import * as Registry from "../src/Registry.js"
import * as Runner from "../src/Runner.js"
import * as Sink from "../src/Sink.js"
import * as Source from "../src/Source.js"
import * as StateStore from "../src/StateStore.js"

const img = (productId: string, imageId: string) =>
  ProductImage.unchecked({
    source: "s", productId, imageId, position: 1, url: null, filename: null, width: null, height: null, alt: null,
    contentHash: null, createdAt: null, updatedAt: null, extra: {}
  })

/** A transactional in-memory database holding sink rows and pipeline states. */
class MemoryDb {
  committed = { rows: [] as Array<string>, states: new Map<string, StateStore.PipelineState>() }
  open: { rows: Array<string>; states: Map<string, StateStore.PipelineState> } | undefined
  readonly log: Array<string> = []
  /** Fail the n-th save (1-based), or the n-th transaction commit. */
  failSave = 0
  failCommit = 0
  saves = 0
  commits = 0
  get current() {
    return this.open ?? this.committed
  }
}

const store = (db: MemoryDb, key: string | undefined): StateStore.StateStore["Type"] =>
  StateStore.StateStore.of({
    location: "memory",
    load: (pipeline) => Effect.sync(() => db.current.states.get(pipeline) ?? StateStore.empty),
    save: (pipeline, state) =>
      Effect.suspend(() => {
        db.log.push(db.open ? "save (in transaction)" : "save")
        if (++db.saves === db.failSave) return Effect.fail(new StateError({ message: "disk full (test)" }))
        db.current.states.set(pipeline, state)
        return Effect.void
      }),
    reset: (pipeline) => Effect.sync(() => void db.current.states.delete(pipeline)),
    ...(key === undefined
      ? {}
      : {
        transaction: {
          database: key,
          run: (effect) =>
            Effect.gen(function*() {
              db.log.push("begin")
              db.open = { rows: [...db.committed.rows], states: new Map(db.committed.states) }
              const result = yield* effect.pipe(Effect.tapErrorCause(() => Effect.sync(() => (db.open = undefined))))
              if (++db.commits === db.failCommit) {
                db.open = undefined
                db.log.push("rollback")
                return yield* new StateError({ message: "commit failed (test)" })
              }
              db.committed = db.open!
              db.open = undefined
              db.log.push("commit")
              return result
            })
        }
      })
  })

/** A sink writing rows into the memory database at commit; `database` makes it a TransactionalSink. */
const dbSink = (db: MemoryDb) =>
  Sink.define({
    name: "memory-db",
    description: "test sink",
    config: Schema.Struct({ database: Schema.optional(Schema.String) }),
    make: (config, ctx) =>
      Effect.sync(() => {
        let buffer: Array<string> = []
        let commits = Option.getOrElse(ctx.committed as Option.Option<number>, () => 0)
        const instance: Sink.SinkInstance = {
          write: (records) => Effect.sync(() => void buffer.push(...Chunk.toReadonlyArray(records).map((r) => `${r.productId}/${r.imageId}`))),
          commit: Effect.sync(() => {
            db.log.push(`${ctx.name} commit${db.open ? " (in transaction)" : ""}`)
            db.current.rows.push(...buffer)
            buffer = []
            return ++commits
          }),
          finish: Effect.void,
          cleanup: Effect.void
        }
        return config.database === undefined ? instance : ({ ...instance, database: config.database } satisfies StateStore.TransactionalSink)
      })
  })

/** A source of one-image batches with position checkpoints. */
const feed = (batches: number) =>
  Source.define({
    name: "feed",
    description: "test source",
    config: Schema.Struct({}),
    make: (_config, ctx) =>
      Effect.sync(() => {
        const from = Option.match(ctx.checkpoint, { onNone: () => 0, onSome: (cp) => (cp.value as number) + 1 })
        return {
          productComplete: true,
          check: Effect.void,
          stream: Stream.range(from, batches - 1).pipe(
            Stream.map((i) => Batch.make([img(String(i), "a")], Option.some(Batch.position(i))))
          )
        }
      })
  })

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-state-store-"))

const pipeline = (dir: string, db: MemoryDb, sinks: Record<string, string | undefined>, batches = 3) =>
  Pipeline.make({
    name: "p",
    statePath: path.join(dir, "state.json"),
    deadLetterPath: path.join(dir, "dead.jsonl"),
    everyRecords: 1,
    sources: { s: { use: feed(batches) } },
    sinks: Object.fromEntries(
      Object.entries(sinks).map(([name, database]) => [name, { use: dbSink(db), with: database === undefined ? {} : { database } }])
    )
  })

const runWith = (db: MemoryDb, key: string | undefined, p: Pipeline.Pipeline) =>
  Runner.run(p).pipe(Effect.provide(Runner.platformLayer), Effect.provideService(StateStore.StateStore, store(db, key)))

describe("Runner: a state store's transaction", () => {
  it.effect("a sink on the store's database commits inside the transaction, after the other sinks, with the save", () =>
    Effect.gen(function*() {
      const db = new MemoryDb()
      const summary = yield* runWith(db, "db:1", yield* pipeline(tmp(), db, { same: "db:1", other: "db:2", plain: undefined }))
      expect(summary.status).toBe("finished")
      // One commit of the interval (each batch is one record, everyRecords: 1).
      const first = db.log.indexOf("begin")
      expect(db.log.slice(first - 2, first + 4).sort()).toEqual(
        ["begin", "commit", "other commit", "plain commit", "same commit (in transaction)", "save (in transaction)"].sort()
      )
      expect(db.log.slice(first, first + 4)).toEqual(["begin", "same commit (in transaction)", "save (in transaction)", "commit"])
      expect(db.log).not.toContain("other commit (in transaction)")
      expect(db.log).not.toContain("plain commit (in transaction)")
      // The sinks wrote every record once; the final state has each sink's token.
      expect(db.committed.rows.filter((r) => r === "0/a")).toHaveLength(3)
      const saved = db.committed.states.get("p")!
      expect(saved.run?.status).toBe("finished")
      expect(saved.sinks).toEqual({ same: 4, other: 4, plain: 4 })
    }))

  it.effect("a failed save rolls back the joined sink's rows: data and state never disagree; the rerun resumes", () =>
    Effect.gen(function*() {
      const db = new MemoryDb()
      const dir = tmp()
      // save 1 records the run start; saves 2.. are the commits: fail the second commit's save.
      db.failSave = 3
      const failed = yield* Effect.flip(runWith(db, "db:1", yield* pipeline(dir, db, { same: "db:1" })))
      expect(failed.message).toContain("disk full")
      // Only the first commit is in the database, rows and state alike.
      expect(db.committed.rows).toEqual(["0/a"])
      expect(db.committed.states.get("p")!.sources.s!.checkpoint).toEqual(Batch.position(0))
      db.failSave = 0
      const rerun = yield* runWith(db, "db:1", yield* pipeline(dir, db, { same: "db:1" }))
      expect(rerun.resumed).toBe(true)
      expect(db.committed.rows).toEqual(["0/a", "1/a", "2/a"])
    }))

  it.effect("when the transaction's commit fails, the run's in-memory state does not move on", () =>
    Effect.gen(function*() {
      const db = new MemoryDb()
      const dir = tmp()
      db.failCommit = 2
      const failed = yield* Effect.flip(runWith(db, "db:1", yield* pipeline(dir, db, { same: "db:1" })))
      expect(failed.message).toContain("commit failed")
      // The failed run is recorded (outside the transaction) with the last *committed* checkpoint.
      const saved = db.committed.states.get("p")!
      expect(saved.run?.status).toBe("failed")
      expect(saved.sources.s!.checkpoint).toEqual(Batch.position(0))
      expect(saved.sinks).toEqual({ same: 1 })
      expect(db.committed.rows).toEqual(["0/a"])
    }))

  it.effect("a store without a transaction: every sink commits before the save, as before", () =>
    Effect.gen(function*() {
      const db = new MemoryDb()
      yield* runWith(db, undefined, yield* pipeline(tmp(), db, { same: "db:1" }))
      expect(db.log).not.toContain("begin")
      expect(db.log.slice(1, 3)).toEqual(["same commit", "save"])
    }))

  it.effect("a sink error inside the transaction rolls back the state save too", () =>
    Effect.gen(function*() {
      const db = new MemoryDb()
      let commits = 0
      const flaky = Sink.define({
        name: "flaky",
        description: "test sink",
        config: Schema.Struct({}),
        make: () =>
          Effect.succeed({
            database: "db:1",
            write: () => Effect.void,
            commit: Effect.suspend(() => ++commits === 2 ? Effect.fail(new SinkError({ sink: "f", message: "constraint (test)" })) : Effect.succeed(commits)),
            finish: Effect.void,
            cleanup: Effect.void
          } satisfies StateStore.TransactionalSink)
      })
      const p = yield* Pipeline.make({
        name: "p",
        statePath: path.join(tmp(), "state.json"),
        deadLetterPath: path.join(tmp(), "dead.jsonl"),
        everyRecords: 1,
        sources: { s: { use: feed(3) } },
        sinks: { f: { use: flaky } }
      })
      const failed = yield* Effect.flip(runWith(db, "db:1", p))
      expect(failed.message).toContain("constraint")
      const saved = db.committed.states.get("p")!
      expect(saved.sources.s!.checkpoint).toEqual(Batch.position(0))
      expect(db.log.filter((l) => l === "save (in transaction)")).toHaveLength(1)
    }))
})

describe("Runner: a state store's lock", () => {
  it.effect("is held for the run after the lock file, and a store that refuses it stops the run before anything is written", () =>
    Effect.gen(function*() {
      const db = new MemoryDb()
      const events: Array<string> = []
      let refuse = false
      const locking = (inner: StateStore.StateStore["Type"]): StateStore.StateStore["Type"] => ({
        ...inner,
        lock: (pipeline) =>
          refuse
            ? Effect.fail(new StateError({ message: `pipeline '${pipeline}' is already running elsewhere (test)` }))
            : Effect.acquireRelease(Effect.sync(() => events.push(`lock ${pipeline}`)), () => Effect.sync(() => events.push(`unlock ${pipeline}`)))
      })
      const dir = tmp()
      const run = (p: Pipeline.Pipeline) =>
        Runner.run(p).pipe(Effect.provide(Runner.platformLayer), Effect.provideService(StateStore.StateStore, locking(store(db, undefined))))
      yield* run(yield* pipeline(dir, db, { out: undefined }))
      expect(events).toEqual(["lock p", "unlock p"])
      expect(db.committed.rows).toHaveLength(3)
      refuse = true
      const e = yield* Effect.flip(run(yield* pipeline(dir, db, { out: undefined })))
      expect(e.message).toContain("already running elsewhere")
      expect(db.committed.rows).toHaveLength(3)
      expect(db.committed.states.get("p")!.run?.status).toBe("finished")
      // the lock file was released too: a run can start again
      refuse = false
      yield* run(yield* pipeline(dir, db, { out: undefined }))
      expect(events).toEqual(["lock p", "unlock p", "lock p", "unlock p"])
    }))
})

// --- state store plugins in pipeline files --------------------------------------------------

/** A state store plugin keeping states in a map per `name` (so tests can look inside). */
const memories = new Map<string, Map<string, StateStore.PipelineState>>()
const memoryStore = StateStore.define({
  name: "memory",
  description: "test state store",
  config: Schema.Struct({
    name: Config.required(Schema.String, { description: "which map" }),
    slots: Config.withDefault(Config.intRange(1, 9), 1, { description: "unused" })
  }),
  make: (config) =>
    Effect.sync(() => {
      const states = memories.get(config.name) ?? new Map<string, StateStore.PipelineState>()
      memories.set(config.name, states)
      return StateStore.StateStore.of({
        location: `memory:${config.name}`,
        load: (p) => Effect.sync(() => states.get(p) ?? StateStore.empty),
        save: (p, s) => Effect.sync(() => void states.set(p, s)),
        reset: (p) => Effect.sync(() => void states.delete(p))
      })
    })
})

const sink = Sink.define({
  name: "nowhere",
  description: "test sink",
  config: Schema.Struct({}),
  make: () => Effect.succeed({ write: () => Effect.void, commit: Effect.succeed(null), finish: Effect.void, cleanup: Effect.void })
})
const registry = Registry.make({ sources: [feed(2)], transforms: [], sinks: [sink], stateStores: [memoryStore] })
const file = path.join(import.meta.dirname, "fixtures", "pipeline.yaml")
const yaml = (state: string) => `version: 1
name: t
${state}
sources:
  s: { use: feed }
sinks:
  out: { use: nowhere }
`

describe("PipelineFile: state stores", () => {
  it.effect("state.use resolves a state store plugin and decodes its options with its schema", () =>
    Effect.gen(function*() {
      const p = yield* PipelineFile.parse(yaml("state: { use: memory, with: { name: m1 } }"), { registry, file, env: {} })
      expect(p.stateStore?.plugin).toBe(memoryStore)
      expect(p.stateStore?.config).toEqual({ name: "m1", slots: 1 })
      expect(p.statePath).toBe(".effetl/state.json")
    }))

  it.effect("the default and `use: json` are the JSON file; --state overrides its path", () =>
    Effect.gen(function*() {
      const plain = yield* PipelineFile.parse(yaml("state: { path: a/state.json }"), { registry, file, env: {} })
      expect(plain.stateStore).toBeUndefined()
      expect(plain.statePath).toBe("a/state.json")
      const json = yield* PipelineFile.parse(yaml("state: { use: json, with: { path: b/s.json } }"), { registry, file, env: {} })
      expect(json.stateStore).toBeUndefined()
      expect(json.statePath).toBe("b/s.json")
      const cli = yield* PipelineFile.parse(yaml("state: { use: json, with: { path: b/s.json } }"), { registry, file, env: {}, statePath: "c.json" })
      expect(cli.statePath).toBe("c.json")
    }))

  it.effect("errors name the path and line: an unknown store, a bad option, options without a store, --state with a store", () =>
    Effect.gen(function*() {
      const unknown = yield* Effect.flip(PipelineFile.parse(yaml("state:\n  use: memroy"), { registry, file, env: {} }))
      expect(unknown.message).toContain("state.use: unknown state store plugin 'memroy'. Built-in state stores: json, memory")
      expect(unknown.message).toContain("line 4")
      const bad = yield* Effect.flip(PipelineFile.parse(yaml("state:\n  use: memory\n  with: { name: m, slots: 99 }"), { registry, file, env: {} }))
      expect(bad.message).toContain("state.with.slots: expected an integer from 1 to 9, got 99 (line 5)")
      const typo = yield* Effect.flip(PipelineFile.parse(yaml("state:\n  use: memory\n  with: { name: m, nmae: x }"), { registry, file, env: {} }))
      expect(typo.message).toContain("state.with.nmae: unknown option")
      const orphan = yield* Effect.flip(PipelineFile.parse(yaml("state:\n  with: { path: x }"), { registry, file, env: {} }))
      expect(orphan.message).toContain("state.with: options need a store")
      const both = yield* Effect.flip(
        PipelineFile.parse(yaml("state: { use: memory, with: { name: m } }"), { registry, file, env: {}, statePath: "x.json" })
      )
      expect(both.message).toContain("--state names a JSON state file, but this pipeline keeps its state in 'memory'")
    }))

  it.effect("peek resolves the store too, needing only the state section's env vars", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const f = path.join(dir, "p.yaml")
      fs.writeFileSync(f, yaml("state: { use: memory, with: { name: \"${M}\" } }").replace("{ use: nowhere }", "{ use: nowhere, with: { x: \"${UNSET}\" } }"))
      const peeked = yield* PipelineFile.peek(f, { registry, env: { M: "m2" } })
      expect(peeked.name).toBe("t")
      expect(peeked.stateStore?.plugin).toBe(memoryStore)
      expect(peeked.stateStore?.config).toEqual({ name: "m2", slots: 1 })
      // without the registry only core's json store is known
      const e = yield* Effect.flip(PipelineFile.peek(f, { env: { M: "m2" } }))
      expect(e.message).toContain("unknown state store plugin 'memory'")
    }))

  it.effect("Runner.runNode keeps the state in the store the pipeline names", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const p = yield* PipelineFile.parse(yaml(`state: { use: memory, with: { name: m3 }, path: ${JSON.stringify(path.join(dir, "s.json"))} }`), { registry, file, env: {} })
      const summary = yield* Runner.runNode({ ...p, deadLetterPath: path.join(dir, "dead.jsonl") })
      expect(summary.statePath).toBe("memory:m3")
      expect(memories.get("m3")!.get("t")!.run?.status).toBe("finished")
      // no JSON state file was written; the lock file next to state.path was taken and released
      expect(fs.readdirSync(dir).filter((n) => n.endsWith(".json") || n.endsWith(".lock"))).toEqual([])
    }))

  it("the JSON Schema offers the registry's state stores with their options", () => {
    const schema = JSON.stringify(PipelineFile.jsonSchema(registry))
    expect(schema).toContain("\"title\":\"memory\"")
    expect(schema).toContain("\"title\":\"json\"")
    expect(schema).toContain("\"title\":\"json file\"")
  })
})
