import { describe, expect, layer } from "@effect/vitest"
import { ProductImage } from "@effetl/core"
import { columns, csv, plugins } from "@effetl/sink-files"
import { parse } from "csv-parse/sync"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import CsvDefault from "../src/Csv.js"
import { list, openSink, record, records, services, tempDir } from "./support.js"

const info = { productComplete: true }

const readCsv = (file: string, delimiter = ","): Array<Array<string>> => parse(fs.readFileSync(file, "utf8"), { delimiter })

const expectedRow = (r: ProductImage): Array<string> => [
  r.source,
  r.productId,
  r.imageId,
  String(r.position),
  r.url ?? "",
  r.filename ?? "",
  r.width === null ? "" : String(r.width),
  r.height === null ? "" : String(r.height),
  r.contentHash ?? "",
  r.alt ?? "",
  r.createdAt === null ? "" : r.createdAt.toISOString(),
  r.updatedAt === null ? "" : r.updatedAt.toISOString()
]

/** Values that need quoting or are easy to mangle. */
const tricky = [
  record(1, { alt: "He said \"hello\", then left", filename: "a,b.jpg" }),
  record(2, { alt: "line one\nline two\r\nline three", url: null, width: null, height: null }),
  record(3, { alt: "Ünïcödé 中文 ελληνικά עברית", filename: "😀🎉👨‍👩‍👧.png" }),
  record(4, { alt: "", contentHash: "sha256:" + "ab".repeat(32), createdAt: null, updatedAt: new Date("2024-06-30T23:59:59.999-05:00") }),
  record(5, { alt: "  leading and trailing spaces  ", filename: "\"quoted\"" })
]

const formulaLooking = [
  record(10, { alt: "=HYPERLINK(\"http://evil\",\"x\")", filename: "+1.jpg", url: "-2+3", imageId: "@SUM(A1)", position: -1 }),
  record(11, { alt: "a=b", filename: "safe+name.jpg" })
]

layer(services)("csv sink", (it) => {
  describe("plugin", () => {
    it.effect("is exported by name, in plugins, and as the module default", () =>
      Effect.sync(() => {
        expect(csv.name).toBe("csv")
        expect(CsvDefault).toBe(csv)
        expect(plugins).toContain(csv)
      }))

    it.effect("config: defaults, and readable errors for bad values", () =>
      Effect.sync(() => {
        expect(Schema.decodeUnknownSync(csv.config)({ path: "out.csv" })).toEqual({
          path: "out.csv",
          mode: "auto",
          escapeFormulas: false,
          delimiter: ","
        })
        expect(Either.isLeft(Schema.decodeUnknownEither(csv.config)({ path: "out.csv", mode: "sideways" }))).toBe(true)
        expect(Either.isLeft(Schema.decodeUnknownEither(csv.config)({}))).toBe(true)
        expect(Either.isLeft(Schema.decodeUnknownEither(csv.config)({ path: "" }))).toBe(true)
      }))

    it.effect("every config field of every sink is documented: description, examples, and a default when optional", () =>
      Effect.sync(() => {
        // The one required field of each sink, and the optional fields whose absence means something (no default).
        const required: Record<string, string> = { csv: "path", jsonl: "path", parquet: "path", images: "dir" }
        const noDefault = ["images.manifestPath", "images.allowedHosts"]
        expect(plugins.map((p) => p.name).sort()).toEqual(Object.keys(required).sort())
        for (const plugin of plugins) {
          const schema = JSONSchema.make(plugin.config) as {
            required: Array<string>
            properties: Record<string, { description?: string; examples?: Array<unknown>; default?: unknown }>
          }
          expect(schema.required).toEqual([required[plugin.name]])
          for (const [field, spec] of Object.entries(schema.properties)) {
            expect(spec.description, `${plugin.name}.${field}`).toMatch(/\w{3}/)
            expect(spec.examples?.length, `${plugin.name}.${field}`).toBeGreaterThan(0)
            if (field !== required[plugin.name] && !noDefault.includes(`${plugin.name}.${field}`)) {
              expect(spec.default, `${plugin.name}.${field}`).toBeDefined()
            }
          }
        }
      }))
  })

  describe("encoding", () => {
    it.scoped("writes the header once and one RFC 4180 row per record, in column order, read back exactly", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "out", "images.csv")
        const sink = yield* openSink(csv, { path: file })
        yield* sink.write(Chunk.fromIterable(tricky.slice(0, 3)), info)
        yield* sink.commit
        yield* sink.write(Chunk.fromIterable(tricky.slice(3)), info)
        yield* sink.commit
        yield* sink.finish

        const rows = readCsv(file)
        expect(rows[0]).toEqual([
          "source", "product_id", "image_id", "position", "url", "filename",
          "width", "height", "content_hash", "alt", "created_at", "updated_at"
        ])
        expect(rows[0]).toEqual([...columns])
        expect(rows.slice(1)).toEqual(tricky.map(expectedRow))
        // Dates are ISO-8601 UTC; nulls are empty fields.
        expect(rows[4]![10]).toBe("")
        expect(rows[4]![11]).toBe("2024-07-01T04:59:59.999Z")
        expect(rows[1]![10]).toBe("2024-01-01T12:00:01.000Z")
        expect(rows[2]!.slice(4, 8)).toEqual(["", "2.jpg", "", ""])
        // Only one header row in the published file.
        expect(fs.readFileSync(file, "utf8").match(/^source,product_id/gm)).toHaveLength(1)
      }))

    it.scoped("a write effect run twice writes its rows twice (it keeps the text it encoded, not the records)", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "out", "images.csv")
        const sink = yield* openSink(csv, { path: file })
        const write = sink.write(Chunk.fromIterable(tricky.slice(0, 2)), info)
        yield* write
        yield* write
        yield* sink.commit
        yield* sink.finish
        expect(readCsv(file).slice(1)).toEqual([...tricky.slice(0, 2), ...tricky.slice(0, 2)].map(expectedRow))
      }))

    it.scoped("mode auto: one published file for a full-scan pipeline, a directory of parts for an incremental one", () =>
      Effect.gen(function*() {
        const full = path.join(tempDir(), "full.csv")
        const a = yield* openSink(csv, { path: full })
        yield* a.write(Chunk.fromIterable(records(0, 3)), info)
        yield* a.commit
        yield* a.finish
        expect(fs.statSync(full).isFile()).toBe(true)
        expect(readCsv(full).length).toBe(4)
        expect(csv.outputs!(Schema.decodeUnknownSync(csv.config)({ path: full }), { incremental: false })[0]!.kind).toBe("file")

        const changes = path.join(tempDir(), "changes.csv")
        const b = yield* openSink(csv, { path: changes }, { incremental: true })
        yield* b.write(Chunk.fromIterable(records(0, 3)), info)
        yield* b.commit
        yield* b.finish
        expect(fs.statSync(changes).isDirectory()).toBe(true)
        const parts = fs.readdirSync(changes).filter((f) => f.endsWith(".csv"))
        expect(parts.length).toBe(1)
        expect(readCsv(path.join(changes, parts[0]!)).length).toBe(4)
        expect(csv.outputs!(Schema.decodeUnknownSync(csv.config)({ path: changes }), { incremental: true })[0]!.kind).toBe("directory")
        // an explicit mode wins over auto
        const explicit = path.join(tempDir(), "explicit.csv")
        const c = yield* openSink(csv, { path: explicit, mode: "overwrite" }, { incremental: true })
        yield* c.write(Chunk.fromIterable(records(0, 2)), info)
        yield* c.commit
        yield* c.finish
        expect(fs.statSync(explicit).isFile()).toBe(true)
      }))

    it.scoped("escapeFormulas on: formula-looking text gets a ' prefix, numbers do not", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "images.csv")
        const sink = yield* openSink(csv, { path: file, escapeFormulas: true })
        yield* sink.write(Chunk.fromIterable(formulaLooking), info)
        yield* sink.commit
        yield* sink.finish
        const [, first, second] = readCsv(file)
        expect(first![2]).toBe("'@SUM(A1)")
        expect(first![3]).toBe("-1")
        expect(first![4]).toBe("'-2+3")
        expect(first![5]).toBe("'+1.jpg")
        expect(first![9]).toBe("'=HYPERLINK(\"http://evil\",\"x\")")
        expect(second).toEqual(expectedRow(formulaLooking[1]!))
      }))

    it.scoped("escapeFormulas off (default): values are written unaltered", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "images.csv")
        const sink = yield* openSink(csv, { path: file })
        yield* sink.write(Chunk.fromIterable(formulaLooking), info)
        yield* sink.commit
        yield* sink.finish
        expect(readCsv(file).slice(1)).toEqual(formulaLooking.map(expectedRow))
      }))

    it.scoped("another delimiter", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "images.csv")
        const sink = yield* openSink(csv, { path: file, delimiter: ";" })
        const rs = [record(1, { alt: "a;b,c" }), record(2)]
        yield* sink.write(Chunk.fromIterable(rs), info)
        yield* sink.commit
        yield* sink.finish
        const text = fs.readFileSync(file, "utf8")
        expect(text.split("\n")[0]).toBe(columns.join(";"))
        expect(readCsv(file, ";").slice(1)).toEqual(rs.map(expectedRow))
      }))
  })

  describe("commit protocol (overwrite)", () => {
    it.scoped("kill and resume from the saved token: no row lost, none duplicated, uncommitted rows dropped", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const file = path.join(dir, "images.csv")
        fs.writeFileSync(file, "old,contents\n")

        const first = yield* openSink(csv, { path: file })
        yield* first.write(Chunk.fromIterable(records(0, 5)), info)
        yield* first.write(Chunk.fromIterable(records(5, 8)), info)
        const saved = yield* first.commit // the runner saved this token with the checkpoint after record 7
        yield* first.write(Chunk.fromIterable(records(8, 12)), info)
        yield* first.commit // committed, but the process died before the state save
        yield* first.write(Chunk.fromIterable(records(12, 14)), info) // never committed
        // Killed: no finish. The previous output is untouched.
        expect(fs.readFileSync(file, "utf8")).toBe("old,contents\n")

        // Resume: the source re-reads from the saved checkpoint (record 8 on).
        const second = yield* openSink(csv, { path: file }, { committed: saved })
        yield* second.write(Chunk.fromIterable(records(8, 16)), info)
        const last = yield* second.commit
        expect(last).toEqual({ seq: 2 })
        expect(fs.readFileSync(file, "utf8")).toBe("old,contents\n")
        yield* second.finish
        const rows = readCsv(file)
        expect(rows[0]).toEqual([...columns])
        expect(rows.slice(1)).toEqual(records(0, 16).map(expectedRow))

        // Killed between finish and "finished": the rerun resumes with nothing to read and finishes again.
        const third = yield* openSink(csv, { path: file }, { committed: last })
        expect(yield* third.commit).toEqual(last)
        yield* third.finish
        yield* third.finish
        expect(readCsv(file).slice(1)).toEqual(records(0, 16).map(expectedRow))
        yield* third.cleanup
        expect(list(dir)).toEqual(["images.csv"])
        expect(readCsv(file).slice(1)).toEqual(records(0, 16).map(expectedRow))
      }))

    it.scoped("a fresh run (no token) discards an earlier killed run's staging", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "images.csv")
        const killed = yield* openSink(csv, { path: file }, { runId: "runA" })
        yield* killed.write(Chunk.fromIterable(records(0, 3)), info)
        yield* killed.commit

        const fresh = yield* openSink(csv, { path: file }, { runId: "runB" })
        yield* fresh.write(Chunk.fromIterable(records(100, 102)), info)
        yield* fresh.commit
        yield* fresh.finish
        expect(readCsv(file).slice(1)).toEqual(records(100, 102).map(expectedRow))
      }))

    it.scoped("an empty run publishes a file with the header only", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "images.csv")
        const sink = yield* openSink(csv, { path: file })
        yield* sink.write(Chunk.empty(), info)
        yield* sink.commit
        yield* sink.finish
        expect(fs.readFileSync(file, "utf8")).toBe(columns.join(",") + "\n")
      }))
  })

  describe("commit protocol (append)", () => {
    it.scoped("publishes each commit as a part with its own header; resume deletes only this run's parts past the token", () =>
      Effect.gen(function*() {
        const dir = path.join(tempDir(), "parts")
        fs.mkdirSync(dir)
        fs.writeFileSync(path.join(dir, "part-run0-00003.csv"), "earlier run\n")

        const first = yield* openSink(csv, { path: dir, mode: "append" })
        yield* first.write(Chunk.fromIterable(records(0, 4)), info)
        const saved = yield* first.commit
        expect(list(dir)).toEqual(["part-run0-00003.csv", "part-run1-00001.csv"])
        const part1 = readCsv(path.join(dir, "part-run1-00001.csv"))
        expect(part1).toEqual([[...columns], ...records(0, 4).map(expectedRow)])

        yield* first.write(Chunk.fromIterable(records(4, 6)), info)
        yield* first.commit // published, but not saved in state
        expect(list(dir)).toEqual(["part-run0-00003.csv", "part-run1-00001.csv", "part-run1-00002.csv"])
        yield* first.write(Chunk.fromIterable(records(6, 7)), info) // uncommitted

        const second = yield* openSink(csv, { path: dir, mode: "append" }, { committed: saved })
        expect(list(dir)).toEqual(["part-run0-00003.csv", "part-run1-00001.csv"])
        yield* second.write(Chunk.fromIterable(records(4, 9)), info)
        yield* second.commit
        yield* second.finish
        yield* second.cleanup

        expect(list(dir)).toEqual(["part-run0-00003.csv", "part-run1-00001.csv", "part-run1-00002.csv"])
        expect(fs.readFileSync(path.join(dir, "part-run0-00003.csv"), "utf8")).toBe("earlier run\n")
        const all = ["part-run1-00001.csv", "part-run1-00002.csv"].flatMap((p) => {
          const rows = readCsv(path.join(dir, p))
          expect(rows[0]).toEqual([...columns])
          return rows.slice(1)
        })
        expect(all).toEqual(records(0, 9).map(expectedRow))
      }))
  })
})
