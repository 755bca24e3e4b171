import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as DuckDbParquet from "../src/DuckDbParquet.js"
import * as ParquetConcat from "../src/ParquetConcat.js"
import type * as ParquetEngine from "../src/ParquetEngine.js"
import { lit, query } from "./Duck.js"
import { tempDir } from "./support.js"

const columns: ReadonlyArray<ParquetEngine.Column> = [
  { name: "id", type: "int32" },
  { name: "colour", type: "string" },
  { name: "name", type: "string" },
  { name: "taken_at", type: "timestamp" }
]
const colours = ["red", "green", "blue — dark", "çivit mavisi", null] as const
const row = (i: number): ParquetEngine.Row => [
  i,
  colours[i % colours.length]!,
  i % 7 === 0 ? null : `image ${i} of a product with a long enough name`,
  i % 5 === 0 ? null : new Date(Date.UTC(2024, 0, 1) + i * 1000)
]

const writer = (options: Partial<DuckDbParquet.Options> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () =>
      DuckDbParquet.open({ columns, compression: "snappy", rowGroupSize: 1000, memoryLimit: "64MB", threads: 1, ...options }, await DuckDbParquet.load())
    ),
    (w) => Effect.promise(() => w.close())
  )

/** Writes consecutive parts of the given sizes into `dir`; returns their files in order. */
const writeParts = (w: DuckDbParquet.Writer, dir: string, sizes: ReadonlyArray<number>, name = "part") =>
  Effect.promise(async () => {
    const files: Array<string> = []
    let next = 0
    for (const [k, size] of sizes.entries()) {
      const part = await w.openPart()
      await part.append(Array.from({ length: size }, (_, i) => row(next + i)))
      next += size
      const file = path.join(dir, `${name}-${k}.parquet`)
      await part.copyTo(file)
      files.push(file)
    }
    return files
  })

const groups = (file: string) =>
  Effect.map(
    query(`SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata(${lit(file)}) ORDER BY row_group_id`),
    (rows) => rows.map((r) => Number(r.row_group_num_rows))
  )
/** Each column chunk's sizes, codec, encodings and statistics, row group by row group. */
const chunks = (files: ReadonlyArray<string>) =>
  Effect.map(
    query(
      `SELECT path_in_schema, compression, encodings, total_compressed_size, total_uncompressed_size, num_values, stats_min, stats_max, stats_null_count, bloom_filter_length ` +
        `FROM parquet_metadata([${files.map(lit).join(", ")}]) ORDER BY file_name, row_group_id, column_id`
    ),
    (rows) => rows
  )
const footerLength = (file: string) => {
  const bytes = fs.readFileSync(file)
  return bytes.readUInt32LE(bytes.length - 8)
}
const expectSnappy = { codec: ParquetConcat.codecNumber.snappy, minAverageRows: 1000 }

describe("ParquetConcat", () => {
  it.scoped("joins parts by their row groups: their bytes as they are, every row in order, statistics and bloom filters still right", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer()
      const parts = yield* writeParts(w, dir, [2500, 4096, 1500])
      const out = path.join(dir, "joined.parquet")
      expect(yield* Effect.promise(() => ParquetConcat.concatenate(parts, out, expectSnappy))).toBe(true)

      // The row groups are the parts' own, one after another, and their bytes are copied verbatim.
      const partGroups: Array<number> = []
      for (const p of parts) partGroups.push(...(yield* groups(p)))
      expect(yield* groups(out)).toEqual(partGroups)
      expect(yield* chunks([out])).toEqual(yield* chunks(parts))
      const joined = fs.readFileSync(out)
      let at = 4
      for (const p of parts) {
        const bytes = fs.readFileSync(p)
        const body = bytes.subarray(4, bytes.length - 8 - footerLength(p))
        expect(joined.subarray(at, at + body.length).equals(body)).toBe(true)
        at += body.length
      }
      expect(joined.length - 8 - footerLength(out)).toBe(at)

      // Read back whole by DuckDB and by hyparquet.
      const all = Array.from({ length: 8096 }, (_, i) => row(i))
      const back = yield* query(`SELECT id, colour, name, taken_at FROM read_parquet(${lit(out)}, file_row_number = true) ORDER BY file_row_number`)
      expect(back).toEqual(all.map(([id, colour, name, at]) => ({ id, colour, name, taken_at: at })))
      const hyparquet = yield* Effect.promise(async () => {
        const { asyncBufferFromFile, parquetReadObjects } = await import("hyparquet")
        return parquetReadObjects({ file: await asyncBufferFromFile(out) })
      })
      expect(hyparquet.map((r) => [r.id, r.colour, r.name, r.taken_at === null ? null : new Date(r.taken_at as Date).getTime()]))
        .toEqual(all.map(([id, colour, name, at]) => [id, colour, name, at === null ? null : (at as Date).getTime()]))

      // Filters DuckDB prunes by statistics, and bloom filters read at their moved offsets.
      expect(yield* query(`SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM read_parquet(${lit(out)}) WHERE id BETWEEN 6000 AND 6999`))
        .toEqual([{ n: 1000n, lo: 6000, hi: 6999 }])
      expect(yield* query(`SELECT count(*) AS n FROM read_parquet(${lit(out)}) WHERE colour = 'çivit mavisi'`)).toEqual([{ n: 1619n }])
      const blooms = yield* query(`SELECT count(*) AS n FROM parquet_metadata(${lit(out)}) WHERE path_in_schema = 'colour' AND bloom_filter_offset IS NOT NULL`)
      expect(blooms).toEqual([{ n: BigInt(partGroups.length) }])
      const probe = (value: string) =>
        Effect.map(query(`SELECT bloom_filter_excludes AS no FROM parquet_bloom_probe(${lit(out)}, 'colour', ${lit(value)}) ORDER BY row_group_id`), (r) => r.map((x) => x.no))
      expect(yield* probe("blue — dark")).toEqual(partGroups.map(() => false))
      expect(yield* probe("purple")).toEqual(partGroups.map(() => true))
    }))

  it.scoped("says no and writes nothing when the parts cannot be joined as they are", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const w = yield* writer()
      const parts = yield* writeParts(w, dir, [2500, 2500])
      const out = path.join(dir, "joined.parquet")
      const no = (files: ReadonlyArray<string>, expect: ParquetConcat.Expect = expectSnappy) =>
        Effect.promise(() => ParquetConcat.concatenate(files, out, expect))
      // Row groups smaller on average than asked for.
      expect(yield* no(parts, { ...expectSnappy, minAverageRows: 3000 })).toBe(false)
      // Another compression.
      expect(yield* no(parts, { ...expectSnappy, codec: ParquetConcat.codecNumber.gzip })).toBe(false)
      // Another schema.
      const other = yield* Effect.acquireRelease(
        Effect.promise(async () =>
          DuckDbParquet.open({ columns: columns.slice(0, 3), compression: "snappy", rowGroupSize: 1000, memoryLimit: "64MB", threads: 1 }, await DuckDbParquet.load())
        ),
        (o) => Effect.promise(() => o.close())
      )
      const narrow = yield* Effect.promise(async () => {
        const part = await other.openPart()
        await part.append(Array.from({ length: 2000 }, (_, i) => row(i).slice(0, 3)))
        const file = path.join(dir, "narrow.parquet")
        await part.copyTo(file)
        return file
      })
      expect(yield* no([parts[0]!, narrow])).toBe(false)
      // Not Parquet at all, or cut short.
      const junk = path.join(dir, "junk.parquet")
      fs.writeFileSync(junk, "PAR1 this is not a parquet file PAR1")
      expect(yield* no([parts[0]!, junk])).toBe(false)
      const cut = path.join(dir, "cut.parquet")
      fs.writeFileSync(cut, fs.readFileSync(parts[1]!).subarray(0, 1000))
      expect(yield* no([parts[0]!, cut])).toBe(false)
      // An offset index holds page offsets inside the file's bytes, which joining would not move:
      // the same file written without one is joined.
      const written = (offsetIndex: boolean) =>
        Effect.promise(async () => {
          const { parquetWriteBuffer } = await import("hyparquet-writer")
          const { parquetMetadata } = await import("hyparquet")
          const file = path.join(dir, `ids-${offsetIndex}.parquet`)
          const ids = Array.from({ length: 20_000 }, (_, i) => i)
          const bytes = parquetWriteBuffer({ columnData: [{ name: "id", data: ids, type: "INT32", offsetIndex }], rowGroupSize: 20_000, pageSize: 4096 })
          fs.writeFileSync(file, Buffer.from(bytes))
          const indexed = parquetMetadata(bytes).row_groups[0]!.columns[0]!.offset_index_offset !== undefined
          return { file, indexed }
        })
      const indexed = yield* written(true)
      const plain = yield* written(false)
      expect([indexed.indexed, plain.indexed]).toEqual([true, false])
      const any = { codec: ParquetConcat.codecNumber.snappy, minAverageRows: 1 }
      expect(yield* no([indexed.file, indexed.file], any)).toBe(false)
      expect(fs.existsSync(out)).toBe(false)
      expect(yield* no([plain.file, plain.file], any)).toBe(true)
      expect(yield* query(`SELECT count(*) AS n, sum(id) AS s FROM read_parquet(${lit(out)})`)).toEqual([{ n: 40_000n, s: 2n * 199_990_000n }])
      fs.rmSync(out)
      expect(fs.existsSync(out)).toBe(false)
    }))
})
