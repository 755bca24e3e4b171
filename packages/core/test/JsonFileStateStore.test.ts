import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Batch from "../src/Batch.js"
import * as JsonFileStateStore from "../src/JsonFileStateStore.js"
import * as Pipeline from "../src/Pipeline.js"
import { ProductImage } from "../src/ProductImage.js"
import * as Runner from "../src/Runner.js"
import * as Sink from "../src/Sink.js"
import * as Source from "../src/Source.js"
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

  it.effect("a truncated file is one line naming it, what is wrong and how to recover; saves never overwrite it", () =>
    Effect.gen(function*() {
      const file = path.join(tempDir(), "state.json")
      const truncated = "{ \"version\": 1, \"pipelines\": { \"p\": "
      fs.writeFileSync(file, truncated)
      const loadError = yield* Effect.flip(withStore(file, (store) => store.load("p")))
      expect(loadError).toMatchObject({ _tag: "StateError", path: file, corrupt: true })
      expect(loadError.message).toBe(
        `the state file ${file} is corrupt: it ends in the middle of the JSON, as after an interrupted write. It was left as it was. To start over, run 'effetl state reset <pipeline file>' (it keeps the corrupt file as state.json.corrupt-<time>), or restore a backup of ${file}`
      )

      const saveError = yield* Effect.flip(withStore(file, (store) => store.save("p", stateA)))
      expect(saveError).toMatchObject({ _tag: "StateError", corrupt: true })
      expect(fs.readFileSync(file, "utf8")).toBe(truncated)
    }))

  it.effect("not JSON, empty, the wrong version or the wrong shape: each one line saying what is wrong", () =>
    Effect.gen(function*() {
      const file = path.join(tempDir(), "state.json")
      const cases: ReadonlyArray<[string, string]> = [
        ["", "is corrupt: it is empty."],
        ["   \n", "is corrupt: it is empty."],
        ["state: yes\n", "is corrupt: it is not JSON (Unexpected token 's', \"state: yes \" is not valid JSON)."],
        ["\u001b[2J{", "is corrupt: it is not JSON (Unexpected token '\\x1b', \"\\x1b[2J{\" is not valid JSON)."],
        [JSON.stringify({ version: 2, pipelines: {} }), "is corrupt: it is not an effetl state file of version 1: at version Expected 1, actual 2."],
        [
          JSON.stringify({ version: 1, pipelines: { p: { run: null, sources: { s: { done: "no" } } } } }),
          "is corrupt: it is not an effetl state file of version 1: at pipelines.p.sources.s.checkpoint is missing."
        ],
        ["[1, 2]", "is corrupt: it is not an effetl state file of version 1: Expected { readonly version: 1; readonly pipelines: { readonly [x: string]: { readonly run:"]
      ]
      for (const [content, what] of cases) {
        fs.writeFileSync(file, content)
        const e = yield* Effect.flip(withStore(file, (store) => store.load("p")))
        expect(e).toMatchObject({ _tag: "StateError", corrupt: true })
        expect(e.message).toContain(`the state file ${file} ${what}`)
        expect(e.message).not.toMatch(/[\n\u001b]/)
        expect(e.message).toContain("effetl state reset")
        expect(fs.readFileSync(file, "utf8")).toBe(content)
      }
    }))

  it.effect("reset starts over from a corrupt file: it is kept as <file>.corrupt-<time>, and the next load is empty", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = path.join(dir, "state.json")
      fs.writeFileSync(file, "{ \"version\": 1, ")
      yield* withStore(file, (store) => store.reset("p"))
      const kept = fs.readdirSync(dir).filter((f) => f.startsWith("state.json.corrupt-"))
      expect(kept.length).toBe(1)
      expect(kept[0]).toMatch(/^state\.json\.corrupt-\d{8}T\d{6}Z$/)
      expect(fs.readFileSync(path.join(dir, kept[0]!), "utf8")).toBe("{ \"version\": 1, ")
      expect(fs.existsSync(file)).toBe(false)
      expect(yield* withStore(file, (store) => store.load("p"))).toEqual(empty)
    }))

  it.effect("a run on a corrupt state file fails with that one line before anything is written, and leaves the file as it was", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = path.join(dir, "state.json")
      const corrupt = "{\"version\":1,\"pipelines\":{\"p\":{\"run\":{\"id\":\"r1\",\"sta"
      fs.writeFileSync(file, corrupt)
      const before = fs.statSync(file).mtimeMs
      let read = 0
      const source = Source.define({
        name: "one",
        description: "one record",
        config: Schema.Struct({}),
        make: (_config, ctx) =>
          Effect.sync(() => ({
            productComplete: true,
            stream: Stream.suspend(() => {
              read++
              return Stream.make(Batch.make([ProductImage.unchecked({
                source: ctx.name, productId: "1", imageId: "a", position: 1, url: null, filename: null, width: null, height: null,
                alt: null, contentHash: null, createdAt: null, updatedAt: null, extra: {}
              })], Option.some(Batch.position(0))))
            }),
            check: Effect.void
          }))
      })
      const out = path.join(dir, "out.jsonl")
      const sink = Sink.define({
        name: "file",
        description: "writes a line per record",
        config: Schema.Struct({}),
        make: () =>
          Effect.succeed({
            write: (records) => Effect.sync(() => fs.appendFileSync(out, `${records.length}\n`)),
            commit: Effect.succeed(null),
            finish: Effect.void,
            cleanup: Effect.void
          })
      })
      const pipeline = yield* Pipeline.make({
        name: "p",
        statePath: file,
        deadLetterPath: path.join(dir, "dead.jsonl"),
        sources: { s: { use: source } },
        sinks: { out: { use: sink } }
      })
      const error = yield* Effect.flip(Runner.runNode(pipeline))
      expect(error).toMatchObject({ _tag: "StateError", corrupt: true, path: file })
      expect(error.message).toMatch(/^the state file .* is corrupt: it ends in the middle of the JSON, as after an interrupted write\. It was left as it was\./)
      expect(fs.readFileSync(file, "utf8")).toBe(corrupt)
      expect(fs.statSync(file).mtimeMs).toBe(before)
      expect(read).toBe(0)
      expect(fs.existsSync(out)).toBe(false)
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
