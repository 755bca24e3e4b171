import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as JsonFileStateStore from "../src/JsonFileStateStore.js"
import { empty, type PipelineState, StateStore } from "../src/StateStore.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-state-"))

const stateA: PipelineState = {
  run: { id: "20250101T000000Z-abc", status: "running", startedAt: "2025-01-01T00:00:00.000Z" },
  sources: {
    shop: { checkpoint: { kind: "position", value: { page: 3, cursor: "a\"b" } }, done: false },
    feed: { checkpoint: { kind: "cursor", value: "tok-17", spill: 2 }, done: true },
    other: { checkpoint: null, done: false }
  },
  sinks: { out: { seq: 4 } },
  transforms: { dedupe: ["sha256:aa", "sha256:bb"] },
  deadLetter: { seq: 1 }
}

const stateB: PipelineState = { ...empty, sources: { s: { checkpoint: { kind: "position", value: 1 }, done: false } } }

/** Runs an effect with a store on `file`. */
const withStore = <A, E>(file: string, f: (store: StateStore["Type"]) => Effect.Effect<A, E>) =>
  Effect.flatMap(StateStore, f).pipe(Effect.provide(JsonFileStateStore.layer(file)))

describe("JsonFileStateStore", () => {
  it.effect("a missing file is the empty state; save creates the directories and round-trips", () =>
    Effect.gen(function*() {
      const file = path.join(tempDir(), "deep", "er", "state.json")
      yield* withStore(file, (store) =>
        Effect.gen(function*() {
          expect(store.location).toBe(file)
          expect(yield* store.load("p")).toEqual(empty)
          expect(fs.existsSync(file)).toBe(false)
          yield* store.save("p", stateA)
          expect(yield* store.load("p")).toEqual(stateA)
        }))
      const onDisk = JSON.parse(fs.readFileSync(file, "utf8"))
      expect(onDisk).toEqual({ version: 1, pipelines: { p: stateA } })
      // A new store on the same file reads what was saved.
      expect(yield* withStore(file, (store) => store.load("p"))).toEqual(stateA)
      expect(fs.readdirSync(path.dirname(file))).toEqual(["state.json"])
    }))

  it.effect("keeps two pipelines in one file; reset forgets one of them", () =>
    Effect.gen(function*() {
      const file = path.join(tempDir(), "state.json")
      yield* withStore(file, (store) =>
        Effect.gen(function*() {
          yield* store.save("a", stateA)
          yield* store.save("b", stateB)
          expect(yield* store.load("a")).toEqual(stateA)
          expect(yield* store.load("b")).toEqual(stateB)
          yield* store.reset("a")
          expect(yield* store.load("a")).toEqual(empty)
          expect(yield* store.load("b")).toEqual(stateB)
        }))
      expect(Object.keys(JSON.parse(fs.readFileSync(file, "utf8")).pipelines)).toEqual(["b"])
    }))

  it.effect("concurrent saves are serialised: none is lost", () =>
    Effect.gen(function*() {
      const file = path.join(tempDir(), "state.json")
      const names = Array.from({ length: 25 }, (_, i) => `p${i}`)
      // Two store instances on the same file, saving at once.
      yield* Effect.all(
        names.map((n, i) =>
          withStore(file, (store) => store.save(n, { ...stateB, sinks: { out: { seq: i } } }))
        ),
        { concurrency: "unbounded" }
      )
      const saved = JSON.parse(fs.readFileSync(file, "utf8")).pipelines
      expect(Object.keys(saved).sort()).toEqual([...names].sort())
      expect(saved.p7.sinks.out).toEqual({ seq: 7 })
    }))

  it.effect("a corrupt file is an error naming the path, and is never overwritten", () =>
    Effect.gen(function*() {
      const file = path.join(tempDir(), "state.json")
      fs.writeFileSync(file, "{ \"version\": 1, \"pipelines\": { \"p\": ")
      const loadError = yield* Effect.flip(withStore(file, (store) => store.load("p")))
      expect(loadError._tag).toBe("StateError")
      expect(loadError.path).toBe(file)
      expect(loadError.message).toContain(file)
      expect(loadError.message).toContain("corrupt")

      const saveError = yield* Effect.flip(withStore(file, (store) => store.save("p", stateA)))
      expect(saveError._tag).toBe("StateError")
      const resetError = yield* Effect.flip(withStore(file, (store) => store.reset("p")))
      expect(resetError._tag).toBe("StateError")
      expect(fs.readFileSync(file, "utf8")).toBe("{ \"version\": 1, \"pipelines\": { \"p\": ")
    }))

  it.effect("a file of the wrong shape or version is an error", () =>
    Effect.gen(function*() {
      const file = path.join(tempDir(), "state.json")
      fs.writeFileSync(file, JSON.stringify({ version: 2, pipelines: {} }))
      const e1 = yield* Effect.flip(withStore(file, (store) => store.load("p")))
      expect(e1.message).toContain(file)
      expect(e1.message).toContain("version")

      fs.writeFileSync(file, JSON.stringify({ version: 1, pipelines: { p: { run: null, sources: { s: { done: "no" } } } } }))
      const e2 = yield* Effect.flip(withStore(file, (store) => store.load("p")))
      expect(e2._tag).toBe("StateError")

      fs.writeFileSync(file, "")
      const e3 = yield* Effect.flip(withStore(file, (store) => store.load("p")))
      expect(e3._tag).toBe("StateError")
    }))

  it.effect("an unreadable path is an error naming it", () =>
    Effect.gen(function*() {
      const dir = tempDir() // a directory where the file should be
      const e = yield* Effect.flip(withStore(dir, (store) => store.load("p")))
      expect(e._tag).toBe("StateError")
      expect(e.message).toContain(dir)
    }))

  it.effect("a save that fails leaves the old state whole; temp files left by a crash are ignored and cleaned", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = path.join(dir, "state.json")
      yield* withStore(file, (store) => store.save("p", stateA))
      const before = fs.readFileSync(file, "utf8")

      // A value that cannot be written as JSON: the save fails before touching the file.
      const unwritable: PipelineState = {
        ...stateA,
        sources: { s: { checkpoint: { kind: "position", value: 10n }, done: false } }
      }
      const e = yield* Effect.flip(withStore(file, (store) => store.save("p", unwritable)))
      expect(e._tag).toBe("StateError")
      expect(fs.readFileSync(file, "utf8")).toBe(before)
      expect(fs.readdirSync(dir)).toEqual(["state.json"])

      // A process killed mid-save left a half-written temp file; a live process has one in flight.
      const deadPid = spawnSync(process.execPath, ["-e", ""]).pid!
      const crashed = path.join(dir, `.state.json.${deadPid}.0a1b2c.tmp`)
      const inFlight = path.join(dir, `.state.json.${process.ppid}.0a1b2d.tmp`)
      fs.writeFileSync(crashed, "{ \"version\": 1, \"pipel")
      fs.writeFileSync(inFlight, "{}")
      yield* withStore(file, (store) =>
        Effect.gen(function*() {
          expect(yield* store.load("p")).toEqual(stateA)
          yield* store.save("p", stateB)
          expect(yield* store.load("p")).toEqual(stateB)
        }))
      expect(fs.existsSync(crashed)).toBe(false)
      expect(fs.existsSync(inFlight)).toBe(true)
      expect(fs.readdirSync(dir).filter((n) => n.endsWith(".tmp") && n !== path.basename(inFlight))).toEqual([])
    }))
})
