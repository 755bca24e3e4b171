import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { DeadLetter } from "../src/Batch.js"
import * as Batch from "../src/Batch.js"
import * as DeadLetterWriter from "../src/DeadLetterWriter.js"
import { ProductImage } from "../src/ProductImage.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-dlq-"))

const readLines = (file: string): Array<Record<string, unknown>> =>
  fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))

const record = (imageId: string, over: Partial<ConstructorParameters<typeof ProductImage>[0]> = {}) =>
  ProductImage.unchecked({
    source: "shop",
    productId: "p1",
    imageId,
    position: 1,
    url: "https://cdn.example/a.jpg",
    filename: "a.jpg",
    width: null,
    height: 10,
    alt: null,
    contentHash: null,
    createdAt: new Date("2024-03-01T12:00:00Z"),
    updatedAt: null,
    extra: {},
    ...over
  })

const entry = (error: string, extra: Partial<DeadLetter> = {}): DeadLetter => ({ source: "shop", stage: "validate", error, ...extra })

/** Makes a writer in its own scope, so a test can drop it without closing it (a simulated kill). */
const open = (options: DeadLetterWriter.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return yield* DeadLetterWriter.make(options).pipe(Scope.extend(scope))
  })

layer(NodeFileSystem.layer)("DeadLetterWriter", (it) => {
  describe("lines", () => {
    it.scoped("writes one JSON line per entry with its source, stage, error, record, payload, checkpoint and time", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "dlq", "dead.jsonl")
        const w = yield* open({ path: file, runId: "r1", committed: Option.none() })
        yield* TestClock.adjust("90 seconds")
        const circular: Record<string, unknown> = { a: 1 }
        circular.self = circular
        yield* w.write(
          Chunk.make(
            entry("width: expected an integer", { record: record("i1", { bytes: new Uint8Array([1, 2, 3]), extra: { big: 12n } }) }),
            entry("not an object", {
              stage: "source",
              payload: { id: 9007199254740993n, raw: new Uint8Array([104, 105]), loop: circular, when: new Date(0), f: () => 1 }
            })
          ),
          Option.some(Batch.position({ page: 4 }))
        )
        yield* w.write(Chunk.make(entry("no checkpoint")), Option.none())
        yield* w.write(Chunk.empty(), Option.none())
        yield* w.commit
        yield* w.finish

        const lines = readLines(file)
        expect(lines).toHaveLength(3)
        expect(lines[0]).toEqual({
          source: "shop",
          stage: "validate",
          error: "width: expected an integer",
          record: {
            source: "shop",
            productId: "p1",
            imageId: "i1",
            position: 1,
            url: "https://cdn.example/a.jpg",
            filename: "a.jpg",
            width: null,
            height: 10,
            alt: null,
            contentHash: null,
            createdAt: "2024-03-01T12:00:00.000Z",
            updatedAt: null,
            extra: { big: "12" }
          },
          checkpoint: { kind: "position", value: { page: 4 } },
          at: "1970-01-01T00:01:30.000Z"
        })
        expect(Object.keys(lines[0]!)).toEqual(["source", "stage", "error", "record", "checkpoint", "at"])
        expect(lines[1]).toEqual({
          source: "shop",
          stage: "source",
          error: "not an object",
          payload: { id: "9007199254740993", raw: "aGk=", loop: { a: 1, self: "[Circular]" }, when: "1970-01-01T00:00:00.000Z" },
          checkpoint: { kind: "position", value: { page: 4 } },
          at: "1970-01-01T00:01:30.000Z"
        })
        expect(lines[2]).toMatchObject({ error: "no checkpoint", checkpoint: null })
        expect("record" in lines[2]! || "payload" in lines[2]!).toBe(false)
      }))

    it.scoped("a record too malformed for toJson is still written", () =>
      Effect.sync(() => {
        const broken = record("i2", { createdAt: "yesterday" as unknown as Date, bytes: new Uint8Array([1]) })
        const parsed = JSON.parse(DeadLetterWriter.line(entry("bad date", { record: broken }), Option.none(), new Date(0)))
        expect(parsed.record.createdAt).toBe("yesterday")
        expect(parsed.record.imageId).toBe("i2")
        expect("bytes" in parsed.record).toBe(false)
      }))

    it.scoped("jsonSafe keeps shared (non-circular) references and drops what JSON cannot hold", () =>
      Effect.sync(() => {
        const shared = { x: 1 }
        expect(DeadLetterWriter.jsonSafe({ a: shared, b: shared, n: NaN, u: undefined, m: new Map([["k", 1n]]), s: new Set([1]) }))
          .toEqual({ a: { x: 1 }, b: { x: 1 }, n: null, m: [["k", "1"]], s: [1] })
        expect(DeadLetterWriter.jsonSafe([1, undefined, new Error("boom")])).toEqual([1, null, { name: "Error", message: "boom" }])
      }))
  })

  describe("commit protocol", () => {
    it.scoped("a resumed writer keeps what was saved, drops what came after, and publishes atomically", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "dead.jsonl")
        fs.writeFileSync(file, "previous\n")
        const first = yield* open({ path: file, runId: "r1", committed: Option.none() })
        yield* first.write(Chunk.make(entry("e1")), Option.some(Batch.position(1)))
        const saved = yield* first.commit
        yield* first.write(Chunk.make(entry("e2")), Option.some(Batch.position(2)))
        yield* first.commit // not saved in state: the kill came first
        yield* first.write(Chunk.make(entry("e3")), Option.some(Batch.position(3)))
        expect(fs.readFileSync(file, "utf8")).toBe("previous\n")

        const second = yield* open({ path: file, runId: "r1", committed: Option.some(saved) })
        yield* second.write(Chunk.make(entry("e2"), entry("e3")), Option.some(Batch.position(3)))
        yield* second.commit
        expect(fs.readFileSync(file, "utf8")).toBe("previous\n")
        yield* second.finish
        yield* second.finish
        expect(readLines(file).map((l) => l.error)).toEqual(["e1", "e2", "e3"])
        yield* second.cleanup
        expect(fs.readdirSync(path.dirname(file))).toEqual(["dead.jsonl"])
      }))
  })
})

describe("DeadLetterWriter.safeJson", () => {
  it("writes what JSON.stringify(jsonSafe(value)) writes, with or without its copy", () => {
    const circular: Record<string, unknown> = { a: 1 }
    circular.self = circular
    const nullProto = Object.assign(Object.create(null) as object, { k: "v", n: [1, null, undefined] })
    const getter = { get boom(): string { throw new Error("no") } }
    const sparse = [1, , 3] // eslint-disable-line no-sparse-arrays
    const values: Array<unknown> = [
      {},
      { status: "active", isActive: true, n: 1.5, none: null, gone: undefined, list: [1, "two", [3], { four: 4 }] },
      { nan: NaN, inf: -Infinity },
      { big: 12n },
      { at: new Date(Date.UTC(2024, 0, 1)), bad: new Date(NaN) },
      { bytes: new Uint8Array([1, 2, 3]), map: new Map([["k", 1]]), set: new Set([1]) },
      { withToJSON: { toJSON: () => "custom" } },
      { error: new Error("boom") },
      { fn: () => 1, sym: Symbol("s") },
      circular,
      nullProto,
      getter,
      sparse,
      [undefined, () => 1],
      { deep: { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } } },
      // A record's JSON form, as the JSON Lines sink writes it.
      { source: "shop", productId: "p1", position: 1, width: null, createdAt: "2024-03-01T12:00:00.000Z", extra: { status: "a" } },
      "text",
      7,
      null
    ]
    for (const v of values) expect(DeadLetterWriter.safeJson(v)).toEqual(JSON.stringify(DeadLetterWriter.jsonSafe(v)))
  })
})
