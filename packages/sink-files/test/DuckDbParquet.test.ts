import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as DuckDbParquet from "../src/DuckDbParquet.js"
import type * as ParquetEngine from "../src/ParquetEngine.js"
import { lit, query } from "./Duck.js"
import { tempDir } from "./support.js"

const columns: ReadonlyArray<ParquetEngine.Column> = [
  { name: "id", type: "int32" },
  { name: "name", type: "string" },
  { name: "taken_at", type: "timestamp" }
]

const row = (i: number): ParquetEngine.Row => [i, i % 7 === 0 ? null : `row ${i}`, i % 5 === 0 ? null : new Date(Date.UTC(2024, 0, 1) + i * 1000)]

/** Opens a writer for a test, closed when the test's scope closes. */
const writer = (options: Partial<DuckDbParquet.Options> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () =>
      DuckDbParquet.open({ columns, compression: "snappy", rowGroupSize: 1000, memoryLimit: "64MB", threads: 1, ...options }, await DuckDbParquet.load())
    ),
    (w) => Effect.promise(() => w.close())
  )

/** Writes `parts` parts of `size` rows each into `dir` (part-<n>.parquet), interleaving two open parts. */
const writeParts = (w: DuckDbParquet.Writer, dir: string, parts: number, size: number) =>
  Effect.promise(async () => {
    const files: Array<string> = []
    for (let p = 0; p < parts; p += 2) {
      const a = await w.openPart()
      const b = p + 1 < parts ? await w.openPart() : undefined
      for (let i = 0; i < size; i += 100) {
        await a.append(Array.from({ length: Math.min(100, size - i) }, (_, k) => row(p * size + i + k)))
        await b?.append(Array.from({ length: Math.min(100, size - i) }, (_, k) => row((p + 1) * size + i + k)))
      }
      for (const [k, part] of [a, b].entries()) {
        if (part === undefined) continue
        const file = path.join(dir, `part-${p + k}.parquet`)
        await part.copyTo(file)
        files.push(file)
      }
    }
    return files.sort((x, y) => Number(/(\d+)\.parquet$/.exec(x)![1]) - Number(/(\d+)\.parquet$/.exec(y)![1]))
  })

const ids = (file: string) =>
  Effect.map(query(`SELECT id FROM read_parquet(${lit(file)}, file_row_number = true) ORDER BY file_row_number`), (rows) => rows.map((r) => r.id))

describe("DuckDbParquet", () => {
  it.scoped("two parts written at once keep their own rows (one staging table, each row tagged with its part)", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer()
      const files = yield* writeParts(w, dir, 2, 3000) // more than one 2,048-row chunk each
      expect(yield* ids(files[0]!)).toEqual(Array.from({ length: 3000 }, (_, i) => i))
      expect(yield* ids(files[1]!)).toEqual(Array.from({ length: 3000 }, (_, i) => 3000 + i))
    }))

  it.scoped("a part bigger than spillRows goes through spill files: every row once, in order; no spill file left", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer({ spillRows: 2048 })
      const files = yield* writeParts(w, dir, 3, 7000) // two parts at once, each about 4 spill files
      for (const [p, file] of files.entries()) {
        expect(yield* ids(file)).toEqual(Array.from({ length: 7000 }, (_, i) => p * 7000 + i))
      }
      const [nulls] = yield* query(`SELECT count(*) FILTER (name IS NULL) AS names, count(*) FILTER (taken_at IS NULL) AS ats FROM read_parquet(${lit(files[0]!)})`)
      expect(nulls).toEqual({ names: 1000n, ats: 1400n })
      const temps = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith(`effetl-duckdb-${process.pid}-`))
      expect(temps.length).toBeGreaterThan(0) // this writer's, made for its spill files
      for (const t of temps) expect(fs.readdirSync(path.join(os.tmpdir(), t)).filter((f) => f.startsWith("spill-"))).toEqual([])
      // A discarded part removes its spill files too.
      const part = yield* Effect.promise(() => w.openPart())
      yield* Effect.promise(() => part.append(Array.from({ length: 5000 }, (_, i) => row(i))))
      yield* Effect.promise(() => part.discard())
      for (const t of temps) expect(fs.readdirSync(path.join(os.tmpdir(), t)).filter((f) => f.startsWith("spill-"))).toEqual([])
    }))

  it.scoped("a part that spilled is its spill files joined as they are (row groups of min(rowGroupSize, 8192)); small spill files are written anew", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const groups = (file: string) =>
        Effect.map(
          query(`SELECT DISTINCT row_group_id, row_group_num_rows AS n, compression FROM parquet_metadata(${lit(file)}) ORDER BY 1`),
          (r) => r.map((x) => [Number(x.n), x.compression])
        )
      // One part alone: its spill files hold full 8,192-row groups (DuckDB fills 2,048-row vectors).
      const alone = yield* writer({ spillRows: 16_384, rowGroupSize: 100_000, compression: "gzip" })
      const [file] = yield* writeParts(alone, dir, 1, 40_000)
      const joined = yield* groups(file!)
      expect(joined.length).toBeGreaterThan(4)
      expect(joined.every(([n, c]) => (n as number) <= 8192 + 2047 && c === "GZIP")).toBe(true)
      expect(joined.reduce((a, [n]) => a + (n as number), 0)).toBe(40_000)
      expect(yield* ids(file!)).toEqual(Array.from({ length: 40_000 }, (_, i) => i))
      // Two parts at once in a small table: each spill file holds about 1,024 rows of a part, so the
      // part is written anew into one rowGroupSize group.
      const shared = yield* writer({ spillRows: 2048, rowGroupSize: 100_000 })
      const files = yield* writeParts(shared, dir, 2, 7000)
      for (const [p, f] of files.entries()) {
        expect(yield* groups(f)).toEqual([[7000, "SNAPPY"]])
        expect(yield* ids(f)).toEqual(Array.from({ length: 7000 }, (_, i) => p * 7000 + i))
      }
    }))

  it.scoped("parts bigger than spillRows (spill row groups of 8,192 and smaller last ones) are published by joining their row groups", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      // The defaults: spillRows 16,384, rowGroupSize 65,536 (as the sink's).
      const w = yield* writer({ spillRows: DuckDbParquet.spillRows, rowGroupSize: 65_536 })
      expect(DuckDbParquet.spillRows).toBe(16_384)
      const files: Array<string> = []
      for (let p = 0; p < 3; p++) {
        const part = yield* Effect.promise(() => w.openPart())
        for (let i = 0; i < 20_000; i += 1000) {
          yield* Effect.promise(() => part.append(Array.from({ length: 1000 }, (_, k) => row(p * 20_000 + i + k))))
        }
        const file = path.join(dir, `part-${p}.parquet`)
        yield* Effect.promise(() => part.copyTo(file))
        files.push(file)
      }
      const sizes = (file: string) =>
        Effect.map(query(`SELECT DISTINCT row_group_id, row_group_num_rows AS n FROM parquet_metadata(${lit(file)}) ORDER BY 1`), (r) => r.map((x) => Number(x.n)))
      // Each part is its spill files' groups (at most 8,192 rows and a vector) and smaller last ones:
      // under 8,192 rows a group on average (merged anew by DuckDB when that was the bar), over half.
      const partGroups: Array<number> = []
      for (const f of files) {
        const g = yield* sizes(f)
        expect(g.length).toBeGreaterThan(1)
        expect(g.every((n) => n <= 8192 + 2047)).toBe(true)
        partGroups.push(...g)
      }
      expect(60_000 / partGroups.length).toBeLessThan(8192)
      expect(60_000 / partGroups.length).toBeGreaterThanOrEqual(4096)
      const out = path.join(dir, "published.parquet")
      yield* Effect.promise(() => w.merge(files, out))
      expect(yield* sizes(out)).toEqual(partGroups)
      expect(yield* ids(out)).toEqual(Array.from({ length: 60_000 }, (_, i) => i))
    }))

  it.scoped("a lone part is published as it is when this writer wrote it (renamed since) or its footer has the writer's settings; else written anew", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer()
      const [written] = yield* writeParts(w, dir, 1, 3000)
      const part = path.join(dir, "part-00001.parquet")
      fs.renameSync(written!, part) // as StagedParts moves a committed part into place
      const out = path.join(dir, "published.parquet")
      yield* Effect.promise(() => w.merge([part], out))
      expect(fs.readFileSync(out).equals(fs.readFileSync(part))).toBe(true)
      // Another writer of the same settings reads the footer and copies it too.
      const same = yield* writer()
      yield* Effect.promise(() => same.merge([part], out))
      expect(fs.readFileSync(out).equals(fs.readFileSync(part))).toBe(true)
      // A writer of other columns (a resumed run whose config changed) writes its own columns.
      const narrow = yield* writer({ columns: columns.slice(0, 2) })
      yield* Effect.promise(() => narrow.merge([part], out))
      expect((yield* query(`DESCRIBE SELECT * FROM read_parquet(${lit(out)})`)).map((c) => c.column_name)).toEqual(["id", "name"])
      expect(yield* ids(out)).toEqual(Array.from({ length: 3000 }, (_, i) => i))
      // A file that has changed since the writer wrote it is not taken for its own: it is checked.
      fs.appendFileSync(part, "x")
      const failed = yield* Effect.flip(Effect.tryPromise(() => w.merge([part], out)))
      expect(String((failed.error as Error).message)).not.toContain("\n")
    }))

  it.scoped("every value reads back as written: short strings inline or not, multi-byte text, long strings, nulls in one chunk and not the next", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer()
      // Long strings go over as one UTF-8 block per chunk, each cell pointing into it: ASCII and
      // multi-byte, at 12 and 13 bytes, and longer than the block's first size (64 KiB).
      const texts = ["", "a", "exactly12abc", "thirteen-char", "ç", "Çanta — deri", "ünïcödé-twelve", "x".repeat(300), "🙂",
        "é".repeat(6), "é".repeat(7), "🙂".repeat(40), "ab" + "€".repeat(30_000)]
      // 3 chunks: nulls everywhere in the first, none in the second and third.
      const rows: Array<ParquetEngine.Row> = Array.from({ length: 6000 }, (_, i) =>
        i < 2048 && i % 3 === 0
          ? [null, null, null]
          : [i, texts[i % texts.length]!, new Date(Date.UTC(1969, 11, 31) + i * 999)])
      const part = yield* Effect.promise(() => w.openPart())
      yield* Effect.promise(() => part.append(rows))
      const file = path.join(dir, "values.parquet")
      yield* Effect.promise(() => part.copyTo(file))
      const back = yield* query(`SELECT id, name, taken_at FROM read_parquet(${lit(file)}, file_row_number = true) ORDER BY file_row_number`)
      expect(back).toEqual(rows.map(([id, name, at]) => ({ id, name, taken_at: at })))
    }))

  it.scoped("a lone part of the writer's columns and compression is published as it is; one of another compression is encoded again", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer({ rowGroupSize: 1000 })
      const [file] = yield* writeParts(w, dir, 1, 3000)
      const out = path.join(dir, "lone.parquet")
      yield* Effect.promise(() => w.merge([file!], out))
      expect(fs.readFileSync(out).equals(fs.readFileSync(file!))).toBe(true)
      const hyparquet = yield* Effect.promise(async () => {
        const { asyncBufferFromFile, parquetReadObjects } = await import("hyparquet")
        return parquetReadObjects({ file: await asyncBufferFromFile(out) })
      })
      expect(hyparquet.map((r) => [r.id, r.name, r.taken_at === null ? null : new Date(r.taken_at as Date).getTime()]))
        .toEqual(Array.from({ length: 3000 }, (_, i) => row(i)).map(([id, name, at]) => [id, name, at === null ? null : (at as Date).getTime()]))
      const gzip = yield* writer({ rowGroupSize: 1000, compression: "gzip" })
      yield* Effect.promise(() => gzip.merge([file!], out))
      expect((yield* query(`SELECT DISTINCT compression FROM parquet_metadata(${lit(out)})`)).map((c) => c.compression)).toEqual(["GZIP"])
      expect(yield* ids(out)).toEqual(Array.from({ length: 3000 }, (_, i) => i))
    }))

  it.scoped("several parts are merged by DuckDB into row groups of rowGroupSize, with the writer's compression", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const small = yield* writer({ rowGroupSize: 100_000 })
      const files = yield* writeParts(small, dir, 4, 500)
      const out = path.join(dir, "merged.parquet")
      yield* Effect.promise(() => small.merge(files, out))
      expect(yield* query(`SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata(${lit(out)})`)).toEqual([{ n: 1n }])
      expect(yield* ids(out)).toEqual(Array.from({ length: 2000 }, (_, i) => i))
      const gzip = yield* writer({ rowGroupSize: 100, compression: "gzip" })
      yield* Effect.promise(() => gzip.merge(files, out))
      expect((yield* query(`SELECT DISTINCT compression FROM parquet_metadata(${lit(out)})`)).map((c) => c.compression)).toEqual(["GZIP"])
      expect(yield* ids(out)).toEqual(Array.from({ length: 2000 }, (_, i) => i))
    }))

  it.scoped("parts whose row groups average at least half of min(rowGroupSize, 8192) rows are joined as they are, not encoded again", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer({ rowGroupSize: 1000 })
      const files = yield* writeParts(w, dir, 3, 2500) // row groups of 833 rows on average
      const out = path.join(dir, "joined.parquet")
      const joining = yield* writer({ rowGroupSize: 800 })
      yield* Effect.promise(() => joining.merge(files, out))
      const sizes = (file: string) =>
        Effect.map(query(`SELECT DISTINCT row_group_id, row_group_num_rows AS n FROM parquet_metadata(${lit(file)}) ORDER BY 1`), (r) => r.map((x) => Number(x.n)))
      const partSizes: Array<number> = []
      for (const f of files) partSizes.push(...(yield* sizes(f)))
      expect(partSizes.length).toBeGreaterThan(3)
      expect(yield* sizes(out)).toEqual(partSizes)
      expect(yield* ids(out)).toEqual(Array.from({ length: 7500 }, (_, i) => i))
      // A writer of other columns (a resumed run whose config changed) does not join them: its
      // published file has its own columns.
      const narrow = yield* writer({ rowGroupSize: 800, columns: columns.slice(0, 2) })
      yield* Effect.promise(() => narrow.merge(files, out))
      expect((yield* query(`DESCRIBE SELECT * FROM read_parquet(${lit(out)})`)).map((c) => c.column_name)).toEqual(["id", "name"])
      expect(yield* ids(out)).toEqual(Array.from({ length: 7500 }, (_, i) => i))
      // The same parts with a bigger rowGroupSize: below the average, so DuckDB merges them anew.
      const big = yield* writer({ rowGroupSize: 7500 })
      yield* Effect.promise(() => big.merge(files, out))
      expect(yield* sizes(out)).toEqual([7500])
      expect(yield* ids(out)).toEqual(Array.from({ length: 7500 }, (_, i) => i))
    }))

  it.scoped("merges more parts than the fan-in in passes: every row once, in order; no merge file left", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer({ mergeFanIn: 3 })
      const files = yield* writeParts(w, dir, 11, 50)
      const out = path.join(dir, "merged.parquet")
      yield* Effect.promise(() => w.merge(files, out))
      expect(yield* ids(out)).toEqual(Array.from({ length: 550 }, (_, i) => i))
      const [nulls] = yield* query(`SELECT count(*) FILTER (name IS NULL) AS names, count(*) FILTER (taken_at IS NULL) AS ats FROM read_parquet(${lit(out)})`)
      expect(nulls).toEqual({ names: 79n, ats: 110n })
      expect(fs.readdirSync(dir).filter((f) => f.startsWith(".merge-"))).toEqual([])
    }))

  it.scoped("a merge that fails leaves no merge file and no output", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer({ mergeFanIn: 2 })
      const files = yield* writeParts(w, dir, 5, 10)
      fs.writeFileSync(files[4]!, "not parquet")
      const out = path.join(dir, "merged.parquet")
      const error = yield* Effect.flip(Effect.tryPromise(() => w.merge(files, out)))
      expect((error.error as Error).message).not.toContain("\n")
      expect(fs.existsSync(out)).toBe(false)
      expect(fs.readdirSync(dir).filter((f) => f.startsWith(".merge-"))).toEqual([])
    }))
})
