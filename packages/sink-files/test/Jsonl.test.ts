import { describe, expect, layer } from "@effect/vitest"
import { fromJson, type ProductImage, toJson } from "@effetl/core"
import { jsonl, plugins } from "@effetl/sink-files"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import JsonlDefault from "../src/Jsonl.js"
import { list, openSink, record, records, services, tempDir } from "./support.js"

const info = { productComplete: true }

const readLines = (file: string): Array<Record<string, unknown>> => {
  const text = fs.readFileSync(file, "utf8")
  expect(text === "" || text.endsWith("\n")).toBe(true)
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
}

const json = (r: ProductImage) => JSON.parse(JSON.stringify(toJson(r)))

const varied = [
  record(1, { extra: { tags: ["a", "b"], nested: { n: 1, ok: true, none: null } } }),
  record(2, { alt: "quote \" newline \n tab \t emoji 😀 中文", url: null, createdAt: null, width: null }),
  record(3, { contentHash: "sha256:" + "0f".repeat(32), updatedAt: new Date("2024-02-29T10:00:00+09:00") })
]

layer(services)("jsonl sink", (it) => {
  describe("plugin", () => {
    it.effect("is exported by name, in plugins, and as the module default; config defaults", () =>
      Effect.sync(() => {
        expect(jsonl.name).toBe("jsonl")
        expect(JsonlDefault).toBe(jsonl)
        expect(plugins.map((p) => p.name)).toEqual(["csv", "jsonl", "parquet", "images"])
        expect(Schema.decodeUnknownSync(jsonl.config)({ path: "o.jsonl" })).toEqual({
          path: "o.jsonl",
          mode: "auto",
          includeBytes: false
        })
      }))
  })

  describe("encoding", () => {
    it.scoped("one toJson object per line, read back into the same records", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "deep", "images.jsonl")
        const sink = yield* openSink(jsonl, { path: file })
        yield* sink.write(Chunk.fromIterable(varied), info)
        yield* sink.commit
        yield* sink.finish
        const lines = readLines(file)
        expect(lines).toEqual(varied.map(json))
        expect(lines[2]!.updatedAt).toBe("2024-02-29T01:00:00.000Z")
        const back = lines.map((l) => toJson(fromJson(l as never)))
        expect(back).toEqual(varied.map((r) => toJson(r)))
      }))

    it.scoped("bytes are left out by default and base64 with includeBytes", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const bytes = new Uint8Array([0, 1, 2, 250, 255])
        const withBytes = [record(1, { bytes }), record(2)]
        for (const includeBytes of [false, true]) {
          const file = path.join(dir, `${includeBytes}.jsonl`)
          const sink = yield* openSink(jsonl, { path: file, includeBytes })
          yield* sink.write(Chunk.fromIterable(withBytes), info)
          yield* sink.commit
          yield* sink.finish
          const [first, second] = readLines(file)
          expect("bytes" in second!).toBe(false)
          if (includeBytes) {
            expect(first!.bytes).toBe(Buffer.from(bytes).toString("base64"))
            expect(fromJson(first as never).bytes).toEqual(bytes)
          } else {
            expect("bytes" in first!).toBe(false)
          }
        }
      }))

    it.scoped("values in extra that JSON cannot hold do not stop the sink", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "images.jsonl")
        const sink = yield* openSink(jsonl, { path: file })
        yield* sink.write(Chunk.of(record(1, { extra: { big: 2n ** 70n } })), info)
        yield* sink.commit
        yield* sink.finish
        expect(readLines(file)[0]!.extra).toEqual({ big: "1180591620717411303424" })
      }))
  })

  describe("commit protocol", () => {
    it.scoped("overwrite: kill and resume from the saved token loses nothing and duplicates nothing; finish is atomic and idempotent", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const file = path.join(dir, "images.jsonl")
        fs.writeFileSync(file, "{\"old\":true}\n")

        const first = yield* openSink(jsonl, { path: file })
        yield* first.write(Chunk.fromIterable(records(0, 10)), info)
        const saved = yield* first.commit
        yield* first.write(Chunk.fromIterable(records(10, 20)), info)
        yield* first.commit // not saved
        yield* first.write(Chunk.fromIterable(records(20, 25)), info) // uncommitted

        const second = yield* openSink(jsonl, { path: file }, { committed: saved })
        yield* second.write(Chunk.fromIterable(records(10, 20)), info)
        yield* second.commit
        yield* second.write(Chunk.fromIterable(records(20, 30)), info)
        const last = yield* second.commit
        expect(readLines(file)).toEqual([{ old: true }])
        yield* second.finish
        expect(readLines(file)).toEqual(records(0, 30).map(json))

        const third = yield* openSink(jsonl, { path: file }, { committed: last })
        yield* third.finish
        expect(readLines(file)).toEqual(records(0, 30).map(json))
        yield* third.cleanup
        expect(list(dir)).toEqual(["images.jsonl"])
      }))

    it.scoped("append: each commit is published at once; resume drops only this run's parts past the token", () =>
      Effect.gen(function*() {
        const dir = path.join(tempDir(), "out")
        const first = yield* openSink(jsonl, { path: dir, mode: "append" }, { runId: "r7" })
        yield* first.write(Chunk.fromIterable(records(0, 2)), info)
        yield* first.commit
        yield* first.write(Chunk.fromIterable(records(2, 4)), info)
        const saved = yield* first.commit
        expect(list(dir)).toEqual(["part-r7-00001.jsonl", "part-r7-00002.jsonl"])
        expect(readLines(path.join(dir, "part-r7-00002.jsonl"))).toEqual(records(2, 4).map(json))
        yield* first.write(Chunk.fromIterable(records(4, 6)), info)
        yield* first.commit // not saved

        const other = yield* openSink(jsonl, { path: dir, mode: "append" }, { runId: "r6" })
        yield* other.write(Chunk.fromIterable(records(50, 51)), info)
        yield* other.commit

        const second = yield* openSink(jsonl, { path: dir, mode: "append" }, { runId: "r7", committed: saved })
        expect(list(dir)).toEqual(["part-r6-00001.jsonl", "part-r7-00001.jsonl", "part-r7-00002.jsonl"])
        yield* second.write(Chunk.fromIterable(records(4, 7)), info)
        yield* second.commit
        yield* second.finish
        const ours = list(dir).filter((n) => n.startsWith("part-r7-")).flatMap((n) => readLines(path.join(dir, n)))
        expect(ours).toEqual(records(0, 7).map(json))
        expect(readLines(path.join(dir, "part-r6-00001.jsonl"))).toEqual(records(50, 51).map(json))
      }))
  })
})
