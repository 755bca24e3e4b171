import { describe, expect, it, layer } from "@effect/vitest"
import type { ProductImage } from "@effetl/core"
import { parquet, ParquetOutput, plugins } from "@effetl/sink-files"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet"
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"
import ParquetDefault, { columns as parquetColumns, extraJson, row as parquetRow } from "../src/Parquet.js"
import { lit, query } from "./Duck.js"
import { list, openSink, record, records, services, tempDir } from "./support.js"

const info = { productComplete: true }

const columnNames = [
  "source", "product_id", "image_id", "position", "url", "filename", "width", "height",
  "content_hash", "alt", "created_at", "updated_at", "extra"
]

/** What DuckDB should read back for a record (in column order). */
const expected = (r: ProductImage) => ({
  source: r.source,
  product_id: r.productId,
  image_id: r.imageId,
  position: r.position,
  url: r.url,
  filename: r.filename,
  width: r.width,
  height: r.height,
  content_hash: r.contentHash,
  alt: r.alt,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
  extra: JSON.stringify(r.extra, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))
})

/** Every row of the given Parquet files, in order, read by hyparquet (an independent second reader). */
const readByHyparquet = (files: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const rows: Array<Record<string, unknown>> = []
    for (const file of files) {
      const objects = await parquetReadObjects({
        file: await asyncBufferFromFile(file),
        compressors: { GZIP: (input: Uint8Array) => zlib.gunzipSync(input) }
      })
      rows.push(...objects)
    }
    return rows
  })

/**
 * Every row of a file or glob, in write order (files by path, then row order), as DuckDB reads it;
 * hyparquet must read exactly the same rows.
 */
const readAll = (glob: string) =>
  Effect.gen(function*() {
    const rows = yield* query(
      `SELECT * EXCLUDE (file_path, file_row_number) FROM read_parquet(${lit(glob)}, filename = 'file_path', file_row_number = true) ` +
        `ORDER BY file_path, file_row_number`
    )
    const files = (yield* query(`SELECT file FROM glob(${lit(glob)}) ORDER BY file`)).map((f) => String(f.file))
    expect(yield* readByHyparquet(files), `hyparquet reads ${glob} as DuckDB does`).toEqual(rows)
    return rows
  })

const rowGroups = (file: string) =>
  query(`SELECT DISTINCT file_name, row_group_id, row_group_num_rows FROM parquet_metadata(${lit(file)}) ORDER BY file_name, row_group_id`).pipe(
    Effect.map((rows) => rows.map((r) => Number(r.row_group_num_rows)))
  )

const varied = [
  record(1, { extra: { tags: ["a", "b"], nested: { n: 1 } } }),
  record(2, { url: null, filename: null, width: null, height: null, alt: null, createdAt: null }),
  record(3, { alt: "Ünïcödé 中文 😀 \"quoted\", comma\nnewline", contentHash: "sha256:" + "ab".repeat(32), updatedAt: new Date("2024-06-30T23:59:59.999-05:00") }),
  record(4, { alt: "", filename: "", position: -7, width: 0, height: 2147483647, extra: { big: 2n ** 70n } }),
  record(5, { source: "other", productId: "9007199254740993", imageId: "x".repeat(300) })
]

const timestampType = {
  "duckdb": "TIMESTAMP WITH TIME ZONE",
  "hyparquet-writer": "TIMESTAMP WITH TIME ZONE",
  "parquetjs-lite": "TIMESTAMP"
} as const

/** How each engine annotates a timestamp column (converted type, and the logical type's unit when it writes one). */
const timestampAnnotation = {
  "duckdb": { converted: "TIMESTAMP_MICROS", logical: /isAdjustedToUTC=1.*MICROS=MicroSeconds/ },
  "hyparquet-writer": { converted: "TIMESTAMP_MILLIS", logical: /isAdjustedToUTC=1.*MILLIS=MilliSeconds/ },
  "parquetjs-lite": { converted: "TIMESTAMP_MILLIS", logical: undefined }
} as const

layer(services)("parquet sink", (it) => {
  describe("plugin", () => {
    it.effect("is exported by name, in plugins and as the module default; config defaults and errors", () =>
      Effect.sync(() => {
        expect(parquet.name).toBe("parquet")
        expect(ParquetDefault).toBe(parquet)
        expect(plugins).toContain(parquet)
        expect(Schema.decodeUnknownSync(parquet.config)({ path: "o.parquet" })).toEqual({
          path: "o.parquet",
          mode: "auto",
          engine: "duckdb",
          memoryLimit: "256MB",
          threads: 1,
          compression: "snappy",
          rowGroupSize: 65536,
          partitionBy: [],
          includeExtra: true
        })
        expect(Schema.decodeUnknownSync(parquet.config)({ path: "o", memoryLimit: "1.5 GiB" }).memoryLimit).toBe("1.5 GiB")
        const bad = [
          { path: "" },
          { path: "o", engine: "polars" },
          { path: "o", memoryLimit: "lots" },
          { path: "o", memoryLimit: "256" },
          { path: "o", memoryLimit: "256MB; SET x=1" },
          { path: "o", threads: 0 },
          { path: "o", compression: "zstd" },
          { path: "o", rowGroupSize: 0 },
          { path: "o", partitionBy: ["product_id"] },
          { path: "o", partitionBy: ["../x"] },
          { path: "o", partitionBy: ["source", "source"] }
        ]
        for (const raw of bad) expect(Either.isLeft(Schema.decodeUnknownEither(parquet.config)(raw)), JSON.stringify(raw)).toBe(true)
      }))

    it.effect("partition directories are one safe, percent-encoded path segment", () =>
      Effect.sync(() => {
        expect(ParquetOutput.partitionDir("source", "shop_1-a")).toBe("source=shop_1-a")
        expect(ParquetOutput.partitionDir("source", "../a/b\\c")).toBe("source=%2E%2E%2Fa%2Fb%5Cc")
        expect(ParquetOutput.partitionDir("source", "x\u0000y\nz")).toBe("source=x%00y%0Az")
        expect(ParquetOutput.partitionDir("source", "ü")).toBe("source=%C3%BC")
        expect(decodeURIComponent(ParquetOutput.partitionDir("source", "ünï/../CON").slice(7))).toBe("ünï/../CON")
      }))
  })

  describe.each(["duckdb", "hyparquet-writer", "parquetjs-lite"] as const)("engine %s", (engine) => {
    it.scoped("typed columns in csv order plus extra; values and nulls read back exactly by DuckDB", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "out", "images.parquet")
        const sink = yield* openSink(parquet, { path: file, engine })
        yield* sink.write(Chunk.fromIterable(varied.slice(0, 2)), info)
        yield* sink.commit
        yield* sink.write(Chunk.fromIterable(varied.slice(2)), info)
        yield* sink.commit
        yield* sink.finish

        const described = yield* query(`DESCRIBE SELECT * FROM read_parquet(${lit(file)})`)
        expect(described.map((d) => d.column_name)).toEqual(columnNames)
        const types = Object.fromEntries(described.map((d) => [d.column_name, d.column_type]))
        for (const c of ["source", "product_id", "image_id", "url", "filename", "content_hash", "alt", "extra"]) expect(types[c], c).toBe("VARCHAR")
        for (const c of ["position", "width", "height"]) expect(types[c], c).toBe("INTEGER")
        for (const c of ["created_at", "updated_at"]) expect(types[c], c).toBe(timestampType[engine])

        const schema = yield* query(`SELECT name, type, converted_type, logical_type, repetition_type FROM parquet_schema(${lit(file)}) WHERE num_children IS NULL`)
        expect(schema.map((s) => s.name)).toEqual(columnNames)
        for (const s of schema) {
          expect(s.repetition_type, String(s.name)).toBe("OPTIONAL")
          if (s.name === "created_at" || s.name === "updated_at") {
            expect(s.type).toBe("INT64")
            const annotation = timestampAnnotation[engine]
            expect(s.converted_type).toBe(annotation.converted)
            if (annotation.logical !== undefined) expect(String(s.logical_type)).toMatch(annotation.logical)
          } else if (s.type === "BYTE_ARRAY") {
            expect(s.converted_type, String(s.name)).toBe("UTF8")
          } else {
            expect(s.type, String(s.name)).toBe("INT32")
          }
        }

        const rows = yield* readAll(file)
        expect(rows).toEqual(varied.map(expected))
        expect(rows[3]!.extra).toBe("{\"big\":\"1180591620717411303424\"}")
        expect(rows[2]!.updated_at).toEqual(new Date("2024-07-01T04:59:59.999Z"))

        // Nulls are nulls, never empty strings; the empty string stays an empty string.
        const [counts] = yield* query(
          `SELECT count(*) AS n, count(*) FILTER (url IS NULL) AS url, count(*) FILTER (filename IS NULL) AS filename, ` +
            `count(*) FILTER (filename = '') AS empty_filename, count(*) FILTER (width IS NULL) AS width, ` +
            `count(*) FILTER (created_at IS NULL) AS created_at, count(*) FILTER (updated_at IS NULL) AS updated_at, ` +
            `count(*) FILTER (content_hash IS NULL) AS content_hash FROM read_parquet(${lit(file)})`
        )
        expect(counts).toEqual({ n: 5n, url: 1n, filename: 1n, empty_filename: 1n, width: 1n, created_at: 1n, updated_at: 4n, content_hash: 4n })
        const stats = yield* query(`SELECT path_in_schema, sum(stats_null_count) AS nulls FROM parquet_metadata(${lit(file)}) GROUP BY 1 ORDER BY 1`)
        expect(Object.fromEntries(stats.map((s) => [s.path_in_schema, Number(s.nulls)]))).toMatchObject({ url: 1, alt: 1, width: 1, updated_at: 4 })
      }))

    it.scoped("each compression is used and reads back the same rows; includeExtra: false leaves extra out", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        for (const [compression, codec] of [["snappy", "SNAPPY"], ["gzip", "GZIP"], ["none", "UNCOMPRESSED"]] as const) {
          const file = path.join(dir, `${compression}.parquet`)
          const sink = yield* openSink(parquet, { path: file, engine, compression, includeExtra: compression !== "none" })
          yield* sink.write(Chunk.fromIterable(records(0, 40)), info)
          yield* sink.commit
          yield* sink.write(Chunk.fromIterable(records(40, 60)), info)
          yield* sink.commit
          yield* sink.finish
          const codecs = yield* query(`SELECT DISTINCT compression FROM parquet_metadata(${lit(file)})`)
          expect(codecs.map((c) => c.compression), compression).toEqual([codec])
          const rows = yield* readAll(file)
          const want = records(0, 60).map(expected)
          expect(rows, compression).toEqual(compression === "none" ? want.map(({ extra: _e, ...rest }) => rest) : want)
        }
      }))

    it.scoped("row groups are bounded by rowGroupSize in the parts and in the merged file", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const appendDir = path.join(dir, "dataset")
        const file = path.join(dir, "merged.parquet")
        const appended = yield* openSink(parquet, { path: appendDir, mode: "append", engine, rowGroupSize: 7 })
        const merged = yield* openSink(parquet, { path: file, engine, rowGroupSize: 7 })
        for (const sink of [appended, merged]) {
          for (let b = 0; b < 5; b++) {
            yield* sink.write(Chunk.fromIterable(records(b * 10, b * 10 + 10)), info)
            if (b % 2 === 1) yield* sink.commit // parts of 20, 20 and 10 rows
          }
          yield* sink.commit
          yield* sink.finish
        }
        expect(list(appendDir)).toEqual(["part-run1-00001.parquet", "part-run1-00002.parquet", "part-run1-00003.parquet"])
        const partGroups = yield* rowGroups(path.join(appendDir, "*.parquet"))
        const mergedGroups = yield* rowGroups(file)
        if (engine === "duckdb") {
          // DuckDB fills row groups a 2,048-row vector at a time: these small parts are one group each.
          expect(partGroups).toEqual([20, 20, 10])
          expect(mergedGroups.reduce((a, b) => a + b, 0)).toBe(50)
          expect(Math.max(...mergedGroups)).toBeLessThanOrEqual(7 + 2047)
        } else {
          expect(partGroups).toEqual([7, 7, 6, 7, 7, 6, 7, 3])
          expect(mergedGroups).toEqual([7, 7, 7, 7, 7, 7, 7, 1])
        }
        expect(yield* readAll(file)).toEqual(records(0, 50).map(expected))
        expect(yield* readAll(path.join(appendDir, "*.parquet"))).toEqual(records(0, 50).map(expected))
      }))

    it.scoped("overwrite: kill and resume from the saved token loses and duplicates nothing; publish is atomic and idempotent", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const file = path.join(dir, "images.parquet")
        fs.writeFileSync(file, "previous output")
        const first = yield* openSink(parquet, { path: file, engine, rowGroupSize: 4 })
        yield* first.write(Chunk.fromIterable(records(0, 10)), info)
        const saved = yield* first.commit
        expect(saved).toEqual({ seq: 1 })
        yield* first.write(Chunk.fromIterable(records(10, 20)), info)
        yield* first.commit // committed, but the state save never happened
        yield* first.write(Chunk.fromIterable(records(20, 25)), info) // never committed
        expect(fs.readFileSync(file, "utf8")).toBe("previous output")

        const second = yield* openSink(parquet, { path: file, engine, rowGroupSize: 4 }, { committed: saved })
        yield* second.write(Chunk.fromIterable(records(10, 20)), info)
        yield* second.commit
        yield* second.write(Chunk.fromIterable(records(20, 30)), info)
        const last = yield* second.commit
        expect(last).toEqual({ seq: 3 })
        expect(fs.readFileSync(file, "utf8")).toBe("previous output")
        yield* second.finish
        expect(yield* readAll(file)).toEqual(records(0, 30).map(expected))

        // Killed between finish and "finished": the rerun publishes the same file again.
        const third = yield* openSink(parquet, { path: file, engine, rowGroupSize: 4 }, { committed: last })
        yield* third.finish
        yield* third.finish
        expect(yield* readAll(file)).toEqual(records(0, 30).map(expected))
        yield* third.cleanup
        expect(list(dir)).toEqual(["images.parquet"])
      }))

    it.scoped("overwrite: finish refuses uncommitted rows; an empty run publishes an empty file with the schema", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const file = path.join(dir, "images.parquet")
        const sink = yield* openSink(parquet, { path: file, engine })
        yield* sink.write(Chunk.fromIterable(records(0, 2)), info)
        const refused = yield* Effect.flip(sink.finish)
        expect(refused._tag).toBe("SinkError")
        expect(refused.message).toMatch(/sink 'out'.*commit first/)

        const empty = path.join(dir, "empty.parquet")
        const none = yield* openSink(parquet, { path: empty, engine })
        yield* none.write(Chunk.empty(), info)
        expect(yield* none.commit).toEqual({ seq: 0 })
        yield* none.finish
        expect(yield* query(`SELECT count(*) AS n FROM read_parquet(${lit(empty)})`)).toEqual([{ n: 0n }])
        const described = yield* query(`DESCRIBE SELECT * FROM read_parquet(${lit(empty)})`)
        expect(described.map((d) => d.column_name)).toEqual(columnNames)
      }))

    it.scoped("append: one part per commit, published at once; resume drops only this run's parts past the token", () =>
      Effect.gen(function*() {
        const dir = path.join(tempDir(), "dataset")
        const first = yield* openSink(parquet, { path: dir, mode: "append", engine }, { runId: "r7" })
        yield* first.write(Chunk.fromIterable(records(0, 5)), info)
        const saved = yield* first.commit
        expect(list(dir)).toEqual(["part-r7-00001.parquet"])
        yield* first.write(Chunk.fromIterable(records(5, 8)), info)
        yield* first.commit // published, not saved
        yield* first.write(Chunk.fromIterable(records(8, 9)), info) // uncommitted

        const other = yield* openSink(parquet, { path: dir, mode: "append", engine }, { runId: "r6" })
        yield* other.write(Chunk.fromIterable(records(50, 52)), info)
        yield* other.commit

        const second = yield* openSink(parquet, { path: dir, mode: "append", engine }, { runId: "r7", committed: saved })
        expect(list(dir)).toEqual(["part-r6-00001.parquet", "part-r7-00001.parquet"])
        yield* second.write(Chunk.fromIterable(records(5, 12)), info)
        yield* second.commit
        yield* second.finish
        yield* second.cleanup
        expect(list(dir)).toEqual(["part-r6-00001.parquet", "part-r7-00001.parquet", "part-r7-00002.parquet"])
        expect(yield* readAll(path.join(dir, "part-r7-*.parquet"))).toEqual(records(0, 12).map(expected))
        expect(yield* readAll(path.join(dir, "part-r6-*.parquet"))).toEqual(records(50, 52).map(expected))
      }))

    describe("partitionBy [source]", () => {
      const hostile = ["shop", "../escape", "a/b\\c", "nul\u0000byte", "CON", ".", "ünï 中"]
      const mixed = (from: number, to: number) => records(from, to).map((r, i) => r.with({ source: hostile[(from + i) % hostile.length]! }))
      const hive = (dir: string) =>
        query(
          `SELECT * EXCLUDE (file_path, file_row_number) FROM read_parquet(${lit(path.join(dir, "**", "*.parquet"))}, hive_partitioning = 1, filename = 'file_path', file_row_number = true) ORDER BY image_id`
        )
      /** Every row under a partitioned directory, read file by file by hyparquet, by image id. */
      const hiveByHyparquet = (dir: string) =>
        Effect.map(
          readByHyparquet(tree(dir).map((f) => path.join(dir, f))),
          (rows) => rows.sort((a, b) => (String(a.image_id) < String(b.image_id) ? -1 : 1))
        )
      const byImageId = (rs: Array<ProductImage>) => [...rs].sort((a, b) => (a.imageId < b.imageId ? -1 : 1)).map(expected)
      /** Every file under `dir`, relative, with its directory. */
      const tree = (dir: string): Array<string> =>
        (fs.readdirSync(dir, { recursive: true, encoding: "utf8" }) as Array<string>).filter((p) => fs.statSync(path.join(dir, p)).isFile()).sort()

      it.scoped("append: Hive directories, one safe segment per value, read back by DuckDB with hive_partitioning; resume is exact", () =>
        Effect.gen(function*() {
          const root = tempDir()
          const dir = path.join(root, "dataset")
          const config = { path: dir, mode: "append", engine, partitionBy: ["source"] }
          const first = yield* openSink(parquet, config)
          yield* first.write(Chunk.fromIterable(mixed(0, 14)), info)
          const saved = yield* first.commit
          yield* first.write(Chunk.fromIterable(mixed(14, 21)), info)
          yield* first.commit // not saved
          yield* first.write(Chunk.fromIterable(mixed(21, 22)), info)

          const second = yield* openSink(parquet, config, { committed: saved })
          yield* second.write(Chunk.fromIterable(mixed(14, 28)), info)
          const last = yield* second.commit
          yield* second.finish
          expect(Object.keys((last as ParquetOutput.PartitionedToken).partitions)).toHaveLength(hostile.length)

          // Nothing outside the dataset directory; every file is <one partition dir>/part-run1-<seq>.parquet.
          expect(fs.readdirSync(root)).toEqual(["dataset"])
          const files = tree(dir)
          expect(files).toHaveLength(hostile.length * 2)
          for (const f of files) expect(f).toMatch(/^source=[A-Za-z0-9_%-]+\/part-run1-0000[12]\.parquet$/)
          expect(new Set(files.map((f) => path.dirname(f)))).toEqual(new Set(hostile.map((s) => ParquetOutput.partitionDir("source", s))))

          const rows = yield* hive(dir)
          expect(rows).toEqual(byImageId(mixed(0, 28)))
          expect(yield* hiveByHyparquet(dir)).toEqual(byImageId(mixed(0, 28)))
        }))

      it.scoped("overwrite: the directory is built in staging and swapped in whole at the end; kill and resume are exact", () =>
        Effect.gen(function*() {
          const root = tempDir()
          const dir = path.join(root, "dataset")
          fs.mkdirSync(path.join(dir, "source=old"), { recursive: true })
          fs.writeFileSync(path.join(dir, "source=old", "previous.parquet"), "previous")
          const config = { path: dir, engine, partitionBy: ["source"], rowGroupSize: 3 }
          const first = yield* openSink(parquet, config)
          yield* first.write(Chunk.fromIterable(mixed(0, 10)), info)
          const saved = yield* first.commit
          yield* first.write(Chunk.fromIterable(mixed(10, 20)), info)
          yield* first.commit // not saved
          expect(tree(dir)).toEqual(["source=old/previous.parquet"])

          const second = yield* openSink(parquet, config, { committed: saved })
          yield* second.write(Chunk.fromIterable(mixed(10, 20)), info)
          yield* second.commit
          yield* second.write(Chunk.fromIterable(mixed(20, 30)), info)
          const last = yield* second.commit
          expect(tree(dir)).toEqual(["source=old/previous.parquet"])
          yield* second.finish

          const files = tree(dir)
          expect(files).toEqual(hostile.map((s) => `${ParquetOutput.partitionDir("source", s)}/part-run1-00001.parquet`).sort())
          expect(yield* hive(dir)).toEqual(byImageId(mixed(0, 30)))
          expect(yield* hiveByHyparquet(dir)).toEqual(byImageId(mixed(0, 30)))
          const groups = yield* rowGroups(path.join(dir, "**", "*.parquet"))
          expect(Math.max(...groups)).toBeLessThanOrEqual(engine === "duckdb" ? 3 + 2047 : 3)

          const third = yield* openSink(parquet, config, { committed: last })
          yield* third.finish
          expect(yield* hive(dir)).toEqual(byImageId(mixed(0, 30)))
          yield* third.cleanup
          expect(fs.readdirSync(root)).toEqual(["dataset"])
        }))
    })
  })

  describe("engine duckdb", () => {
    it.scoped("every engine writes the same rows from the same records, read back by DuckDB and by hyparquet", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const input = [...varied, ...records(10, 40)]
        const read: Array<Array<Record<string, unknown>>> = []
        for (const engine of ["duckdb", "hyparquet-writer", "parquetjs-lite"]) {
          const file = path.join(dir, `${engine}.parquet`)
          const sink = yield* openSink(parquet, { path: file, engine })
          yield* sink.write(Chunk.fromIterable(input.slice(0, 12)), info)
          yield* sink.commit
          yield* sink.write(Chunk.fromIterable(input.slice(12)), info)
          yield* sink.commit
          yield* sink.finish
          read.push(yield* readAll(file))
        }
        expect(read[0]).toEqual(input.map(expected))
        expect(read[1]).toEqual(read[0])
        expect(read[2]).toEqual(read[0])
      }))

    it.scoped("many parts merge in order, small and large", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const file = path.join(dir, "many.parquet")
        const sink = yield* openSink(parquet, { path: file, rowGroupSize: 10000 })
        for (let p = 0; p < 40; p++) {
          yield* sink.write(Chunk.fromIterable(records(p * 25, p * 25 + 25)), info)
          yield* sink.commit
        }
        for (let b = 0; b < 5; b++) yield* sink.write(Chunk.fromIterable(records(1000 + b * 10000, 1000 + (b + 1) * 10000)), info)
        expect(yield* sink.commit).toEqual({ seq: 41 })
        yield* sink.finish
        const [summary] = yield* query(
          `SELECT count(*) AS n, count(DISTINCT image_id) AS ids, bool_and(image_id = 'img-' || (file_row_number)::VARCHAR) AS ordered ` +
            `FROM read_parquet(${lit(file)}, file_row_number = true)`
        )
        expect(summary).toEqual({ n: 51000n, ids: 51000n, ordered: true })
        const groups = yield* rowGroups(file)
        expect(Math.max(...groups)).toBeLessThanOrEqual(10000 + 2047)
        expect(yield* query(`SELECT * EXCLUDE (file_row_number) FROM read_parquet(${lit(file)}, file_row_number = true) WHERE file_row_number IN (0, 999, 1000, 50999) ORDER BY file_row_number`))
          .toEqual([record(0), record(999), record(1000), record(50999)].map(expected))
      }))

    it.scoped("a run of one commit publishes its part as it is; a part from before a resume is written anew with the settings of now", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const file = path.join(dir, "one.parquet")
        const part = path.join(dir, ".one.parquet.effetl-staging", "run1", "part-run1-00001.parquet")
        const first = yield* openSink(parquet, { path: file })
        yield* first.write(Chunk.fromIterable(records(0, 30)), info)
        const token = yield* first.commit
        yield* first.finish
        expect(fs.readFileSync(file).equals(fs.readFileSync(part))).toBe(true)
        expect(yield* readAll(file)).toEqual(records(0, 30).map(expected))

        // Killed before the run was recorded as finished; resumed with another compression.
        const second = yield* openSink(parquet, { path: file, compression: "gzip" }, { committed: token })
        yield* second.finish
        expect(fs.readFileSync(file).equals(fs.readFileSync(part))).toBe(false)
        expect((yield* query(`SELECT DISTINCT compression FROM parquet_metadata(${lit(file)})`)).map((c) => c.compression)).toEqual(["GZIP"])
        expect(yield* readAll(file)).toEqual(records(0, 30).map(expected))
      }))

    it.scoped("the memory limit is DuckDB's: one too small fails the commit with a SinkError, not the process", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "small.parquet")
        const failed = yield* Effect.flip(Effect.gen(function*() {
          const sink = yield* openSink(parquet, { path: file, memoryLimit: "1MB" })
          yield* sink.write(Chunk.fromIterable(records(0, 20000)), info)
          yield* sink.commit
        }))
        expect(failed._tag).toBe("SinkError")
        expect(failed.message).toMatch(/^sink 'out': .*(Out of Memory|could not allocate).*\(raise the sink's memoryLimit\)$/)
        expect(failed.message).not.toContain("\n")
        expect(fs.existsSync(file)).toBe(false)
      }))

    it.scoped("when DuckDB cannot be loaded, the output logs a warning and writes with hyparquet-writer", () =>
      Effect.gen(function*() {
        const file = path.join(tempDir(), "fallback.parquet")
        const logs: Array<string> = []
        const logger = Logger.make(({ logLevel, message }) => {
          logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
        })
        const out = yield* ParquetOutput.make<ProductImage>(
          {
            name: "pq",
            path: file,
            mode: "overwrite",
            runId: "run1",
            committed: Option.none(),
            engine: "duckdb",
            compression: "snappy",
            rowGroupSize: 100,
            loadDuckDb: () => Promise.reject(new Error("the native binding is missing"))
          },
          { columns: parquetColumns, row: (r) => parquetRow(r, true) }
        ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
        expect(logs).toEqual([
          "WARN sink 'pq': DuckDB could not be loaded (the native binding is missing); writing Parquet with hyparquet-writer instead"
        ])
        yield* out.write(records(0, 5))
        yield* out.commit
        yield* out.finish
        expect(yield* readAll(file)).toEqual(records(0, 5).map(expected))
        const [meta] = yield* query(`SELECT created_by FROM parquet_file_metadata(${lit(file)})`)
        expect(String(meta!.created_by)).toContain("hyparquet-writer")
      }))
  })
})

describe("parquet extraJson", () => {
  // The text itself is DeadLetterWriter.safeJson's (its test in core holds it to jsonSafe).
  it("writes extra as JSON text, values JSON cannot hold made safe", () => {
    expect(extraJson({ status: "active", n: 1.5, gone: undefined })).toBe(`{"status":"active","n":1.5}`)
    expect(extraJson({ big: 12n, at: new Date(Date.UTC(2024, 0, 1)) })).toBe(`{"big":"12","at":"2024-01-01T00:00:00.000Z"}`)
  })
})
