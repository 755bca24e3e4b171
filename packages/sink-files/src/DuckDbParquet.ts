/**
 * The `duckdb` Parquet engine: DuckDB's own Parquet writer, through `@duckdb/node-api`.
 *
 * - Rows go through DuckDB's appender, a whole data chunk (2,048 rows) at a time, into one staging
 *   table shared by the open parts, each row tagged with its part: strings `VARCHAR`, int32
 *   `INTEGER`, timestamps as epoch milliseconds. The chunk's columns are filled in JavaScript typed
 *   arrays and copied into its vectors in one call each (`@duckdb/node-bindings`, the C API under
 *   `@duckdb/node-api`); a column's strings longer than DuckDB's 12 inline bytes go over as one
 *   block of UTF-8 per chunk (see `LongStrings`).
 * - `COPY … TO` writes a part (its rows of the table) as a complete Parquet file with the output's
 *   compression and row-group size, timestamps as `TIMESTAMPTZ`.
 * - Merging committed parts into one published file: a lone part with this writer's columns and
 *   compression is copied as it is; parts whose row groups average at least half of
 *   min(rowGroupSize, `keepRowGroups`) rows are joined by their row groups, bytes as they are, under
 *   one new footer (`ParquetConcat`); others are read by DuckDB (`read_parquet([...])`, in order)
 *   into one `COPY`.
 *
 * One in-memory DuckDB instance per output, with `memory_limit` set. The staging table holds at
 * most `spillRows` rows: when it fills, the open parts' rows in it go to spill files (small row
 * groups) in a private temp directory (removed on close) and a new table begins, so memory does not
 * grow with a part; a committed part is its spill files and last rows joined (see `spillRows`). A table is
 * also replaced, without spilling, once a quarter full and no open part has rows in it. DuckDB's
 * external file cache is off (a part is read once).
 * Extensions are never installed or auto-loaded (Parquet is built in). `@duckdb/node-api` is
 * imported on first use only.
 *
 * One data chunk and its vectors are reused for every part: they, and each part's appender, are
 * native memory that JavaScript's collector does not see, so they are kept few.
 */
import type * as DuckDB from "@duckdb/node-api"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as ParquetConcat from "./ParquetConcat.js"
import type * as ParquetEngine from "./ParquetEngine.js"

/** The `@duckdb/node-api` module. */
export type Module = typeof DuckDB

/** How to write. */
export interface Options {
  readonly columns: ReadonlyArray<ParquetEngine.Column>
  readonly compression: ParquetEngine.Compression
  /** DuckDB's target rows per row group (filled 2,048-row vectors at a time). */
  readonly rowGroupSize: number
  /** DuckDB's `memory_limit` (e.g. `256MB`). */
  readonly memoryLimit: string
  /** DuckDB's worker threads (default: DuckDB's, one per core). */
  readonly threads?: number
  /** The most part files one `COPY` of a merge reads (default {@link mergeFanIn}). */
  readonly mergeFanIn?: number
  /** The most rows the staging table holds (default {@link spillRows}). */
  readonly spillRows?: number
}

/**
 * The most rows the staging table holds. Beyond them (a run that commits rarely, such as the merge
 * phase of product regrouping) the open parts' rows are written to spill files in the instance's
 * temp directory (the output's compression, row groups of min(rowGroupSize, `keepRowGroups`) rows,
 * cheap to hold while writing) and a new table begins; a commit writes the part's last rows to one
 * more and joins them as they are (`ParquetConcat`), or, when they are small (several open parts
 * shared the table), reads them into one `COPY`. DuckDB's buffer manager could spill a big table
 * itself, but it would fill `memoryLimit` first and then need as much again to write it.
 *
 * The rows held cost twice (the appender's buffer, then the table), and a process keeps much of
 * what DuckDB frees, so this is what sets the sink's memory: a regrouped `effetl run` of 1M records
 * into Parquet peaked at 229–230 MiB with 16,384 rows, 242 with 32,768 and 257–266 with 65,536, and
 * with a commit every 10,000 records at 221–222 against 232–234 MiB.
 */
export const spillRows = 16_384

/**
 * The most part files one merge `COPY` reads. DuckDB keeps a little memory per file it reads until
 * the `COPY` ends (about 10 MB per 1,000 files), so more parts are merged in passes: each
 * `mergeFanIn` consecutive parts into one temp file next to them (`.merge-<pass>-<n>.parquet.tmp`,
 * in small row groups, cheap to read back), until few enough are left. A pass writes every row
 * once more, so passes are for runs of very many commits only.
 */
export const mergeFanIn = 2048

/**
 * Committed parts whose row groups average at least half of min(rowGroupSize, this) rows are
 * published by joining their row groups as they are (`ParquetConcat`: bytes copied, one new footer),
 * not read and encoded again; smaller ones are merged by DuckDB into row groups of rowGroupSize.
 * Half, since a part bigger than `spillRows` is its spill files' groups of this many rows and a
 * smaller last one.
 */
export const keepRowGroups = 8192

/** A DuckDB instance writing one output's Parquet files. Calls must not overlap. */
export interface Writer {
  /** Opens a part: rows appended to it are its own until it is written or discarded. */
  readonly openPart: () => Promise<Part>
  /**
   * Writes one Parquet file at `file` holding the rows of `parts`, in order (none: the schema only):
   * a lone part of this writer's settings copied as it is, parts with big enough row groups joined
   * as they are (`ParquetConcat`), else DuckDB reading them into one `COPY`.
   */
  readonly merge: (parts: ReadonlyArray<string>, file: string) => Promise<void>
  /** Closes the instance and removes its temp directory. Idempotent. */
  readonly close: () => Promise<void>
}

/** One part being written. */
export interface Part {
  /** Rows appended so far. */
  readonly rows: number
  /** Appends rows (in column order). */
  readonly append: (rows: ReadonlyArray<ParquetEngine.Row>) => Promise<void>
  /** Appends `count` rows given as one flat array of cells, row after row (each row in column order). */
  readonly appendCells: (cells: ReadonlyArray<ParquetEngine.Value>, count: number) => Promise<void>
  /** Writes the part's rows as a complete Parquet file at `file` (which must not exist). */
  readonly copyTo: (file: string) => Promise<void>
  /** Drops the part's rows without writing them. */
  readonly discard: () => Promise<void>
}

/** Imports `@duckdb/node-api` (rejects when its native binding cannot load on this platform). */
export const load = (): Promise<Module> => import("@duckdb/node-api")

/** Starts a DuckDB instance for one output. */
export const open = async (options: Options, duckdb: Module): Promise<Writer> => {
  const { columns } = options
  const tempDirectory = path.join(os.tmpdir(), `effetl-duckdb-${process.pid}-${Math.random().toString(36).slice(2)}`)
  const instance = await duckdb.DuckDBInstance.create(":memory:", {
    memory_limit: options.memoryLimit,
    temp_directory: tempDirectory,
    preserve_insertion_order: "true",
    // Each part is read once, by the merge: caching the files read would only hold memory.
    enable_external_file_cache: "false",
    autoinstall_known_extensions: "false",
    autoload_known_extensions: "false",
    ...(options.threads === undefined ? {} : { threads: String(options.threads) })
  })
  const connection = await instance.connect()
  const run = (sql: string) => connection.run(sql).then(() => undefined, (e: unknown) => Promise.reject(oneLine(e)))
  // The staging table: the columns, then the part each row belongs to.
  const types = [...columns.map((c) => duckdbType(duckdb, c.type)), duckdb.INTEGER]
  const ddl = [...columns.map((c) => `${ident(c.name)} ${stagingType[c.type]}`), `${partColumn} INTEGER`].join(", ")
  // The staging table to the Parquet columns: timestamps wait in the table as epoch milliseconds.
  const fromStaging = columns.map((c) =>
    c.type === "timestamp"
      ? `make_timestamptz(CAST(${ident(c.name)} AS BIGINT) * 1000) AS ${ident(c.name)}`
      : ident(c.name)
  ).join(", ")
  const copyOptions = `(FORMAT parquet, COMPRESSION ${codec[options.compression]}, ROW_GROUP_SIZE ${options.rowGroupSize}, USE_TMP_FILE false)`
  // A merge pass's file is only read by the next pass: small row groups keep reading it cheap.
  const passOptions = `(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 8192, USE_TMP_FILE false)`
  // Spill files have the output's compression and row groups of min(rowGroupSize, keepRowGroups):
  // cheap to hold while writing, and joined as they are into their part (see copyTo).
  const spillOptions = `(FORMAT parquet, COMPRESSION ${codec[options.compression]}, ROW_GROUP_SIZE ${
    Math.min(options.rowGroupSize, keepRowGroups)
  }, USE_TMP_FILE false)`
  // Files joined as they are, a part's spill files or committed parts: row groups of at least half
  // of min(rowGroupSize, keepRowGroups) rows on average, else they are written anew.
  const joinable: ParquetConcat.Expect = {
    codec: ParquetConcat.codecNumber[options.compression],
    minAverageRows: Math.max(1, Math.floor(Math.min(options.rowGroupSize, keepRowGroups) / 2))
  }
  const vectorSize = 2048
  const maxTableRows = Math.max(vectorSize, Math.floor(options.spillRows ?? spillRows))
  /** A table this full is replaced as soon as no open part has rows in it. */
  const renewRows = Math.max(vectorSize, Math.floor(maxTableRows / 4))
  let tables = 0
  let partIds = 0
  let spills = 0
  let closed = false

  // One data chunk, reused for every part: a chunk's vectors are native memory that JavaScript's
  // garbage collector does not see, so a chunk per part would pile up until the collector runs.
  const bindings = (await import("@duckdb/node-bindings")).default
  const chunk = duckdb.DuckDBDataChunk.create(types, vectorSize)
  // A one-column VARCHAR data chunk whose heap holds a string column's long strings (see LongStrings).
  const newHolder = () => duckdb.DuckDBDataChunk.create([duckdb.VARCHAR], 1).chunk
  const fillers = columns.map((c) => columnFiller(c.type, vectorSize, newHolder))
  const partIdOf = new Int32Array(vectorSize)
  let fill = 0

  /**
   * The staging table and its appender, shared by every open part (each row tagged with its
   * part). An appender holds native buffers until JavaScript's collector finalizes it, which may
   * be long after it is closed, so there is one per table, and a table is replaced only once it
   * holds `renewRows` rows and no open part has rows in it (or, at `maxTableRows`, its open parts'
   * rows go to spill files first).
   */
  let table = ""
  let appender: DuckDB.DuckDBAppender | undefined
  let tableRows = 0
  /** The open parts with rows in the table, by id. */
  const inTable = new Map<number, OpenPart>()

  interface OpenPart {
    readonly id: number
    /** Rows in the staging table. */
    tableRows: number
    /** Spill files of this part, in order. */
    readonly spilled: Array<string>
  }

  /** Appends the chunk's rows to the table and empties it. */
  const flushChunk = () => {
    if (fill === 0) return
    const current = appender!
    guard(() => {
      bindings.data_chunk_reset(chunk.chunk)
      for (let i = 0; i < fillers.length; i++) fillers[i]!.flush(bindings, bindings.data_chunk_get_vector(chunk.chunk, i), fill)
      bindings.copy_data_to_vector(bindings.data_chunk_get_vector(chunk.chunk, fillers.length), 0, partIdOf.buffer, 0, fill * 4)
      bindings.data_chunk_set_size(chunk.chunk, fill)
      current.appendDataChunk(chunk)
    })
    fill = 0
  }
  /** Makes every row appended so far visible to queries. */
  const flushTable = () => {
    flushChunk()
    guard(() => appender!.flushSync())
  }
  const newTable = async () => {
    if (appender !== undefined) {
      fill = 0
      const old = appender
      appender = undefined
      guard(() => old.closeSync())
      await run(`DROP TABLE ${ident(table)}`)
    }
    table = `staging_${++tables}`
    await run(`CREATE TABLE ${ident(table)} (${ddl})`)
    appender = await connection.createAppender(table)
    tableRows = 0
  }
  /** Writes a part's rows in the table to a file. */
  const copyPart = async (part: OpenPart, file: string, how: string) => {
    flushTable()
    // The part's rows (all of the table's, most often: then no filter).
    const where = part.tableRows === tableRows ? "" : ` WHERE ${partColumn} = ${part.id}`
    await run(`COPY (SELECT ${fromStaging} FROM ${ident(table)}${where}) TO ${lit(file)} ${how}`)
    inTable.delete(part.id)
    part.tableRows = 0
  }
  /** The table is full: the open parts' rows go to spill files, and a new table begins. */
  const spillAll = async () => {
    await fsp.mkdir(tempDirectory, { recursive: true })
    for (const part of [...inTable.values()]) {
      const file = path.join(tempDirectory, `spill-${++spills}.parquet`)
      part.spilled.push(file)
      await copyPart(part, file, spillOptions)
    }
    await newTable()
  }
  /** Replaces a table that has filled up once no open part has rows in it. */
  const renewIfDone = async () => {
    if (tableRows >= renewRows && inTable.size === 0) await newTable()
  }

  const openPart = async (): Promise<Part> => {
    if (appender === undefined) await newTable()
    const part: OpenPart = { id: ++partIds, tableRows: 0, spilled: [] }
    let rows = 0
    let done = false
    const drop = async () => {
      if (done) return
      done = true
      inTable.delete(part.id) // its rows stay in the table, unread, until the table is replaced
      await removeAll(part.spilled)
      await renewIfDone()
    }
    /** Counts rows appended; a full table goes to spill files. */
    const added = async (n: number) => {
      rows += n
      part.tableRows += n
      tableRows += n
      inTable.set(part.id, part)
      if (tableRows >= maxTableRows) await spillAll()
    }

    return {
      get rows() {
        return rows
      },
      append: async (batch) => {
        if (batch.length === 0) return
        const width = fillers.length
        for (let r = 0; r < batch.length; r++) {
          const row = batch[r]!
          for (let i = 0; i < width; i++) fillers[i]!.set(fill, row[i] ?? null)
          partIdOf[fill] = part.id
          if (++fill === vectorSize) flushChunk()
        }
        await added(batch.length)
      },
      appendCells: async (cells, count) => {
        if (count === 0) return
        const width = fillers.length
        for (let r = 0, at = 0; r < count; r++, at += width) {
          for (let i = 0; i < width; i++) fillers[i]!.set(fill, cells[at + i] ?? null)
          partIdOf[fill] = part.id
          if (++fill === vectorSize) flushChunk()
        }
        await added(count)
      },
      copyTo: async (file) => {
        done = true
        if (part.spilled.length === 0) {
          await copyPart(part, file, copyOptions)
        } else {
          if (part.tableRows > 0) {
            const last = path.join(tempDirectory, `spill-${++spills}.parquet`)
            part.spilled.push(last)
            await copyPart(part, last, spillOptions)
          }
          // The spill files joined as they are: writing the part holds no row group in memory (a
          // COPY into rowGroupSize groups would hold one, the peak of a run that commits rarely).
          // Spill files of several open parts can be small: below half a spill row group on
          // average, they are written anew into rowGroupSize groups instead.
          await fsp.rm(file, { force: true })
          if (!(await ParquetConcat.concatenate(part.spilled, file, joinable))) await copyFiles(part.spilled, file)
          await removeAll(part.spilled)
        }
        written.add(identity(await fsp.stat(file)))
        await renewIfDone()
      },
      discard: drop
    }
  }

  /** One `COPY` of the given files' rows, in order, to `file` (no files: the schema only). */
  const copyFiles = async (files: ReadonlyArray<string>, file: string, how = copyOptions): Promise<void> => {
    const select = columns.map((c) => `CAST(${ident(c.name)} AS ${sqlType[c.type]}) AS ${ident(c.name)}`).join(", ")
    const from = files.length === 0
      ? `(SELECT ${columns.map((c) => `CAST(NULL AS ${sqlType[c.type]}) AS ${ident(c.name)}`).join(", ")} WHERE false)`
      : `read_parquet([${files.map(lit).join(", ")}])`
    await fsp.rm(file, { force: true })
    await run(`COPY (SELECT ${select} FROM ${from}) TO ${lit(file)} ${how}`)
  }

  /**
   * The files this writer's parts were written to, by identity (device, inode, size, modification
   * time: a rename into place keeps them all), so that publishing knows its own parts.
   */
  const written = new Set<string>()
  const identity = (s: { dev: number; ino: number; size: number; mtimeMs: number }) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`
  const wrote = async (file: string): Promise<boolean> => {
    try {
      return written.has(identity(await fsp.stat(file)))
    } catch {
      return false
    }
  }

  /**
   * Whether a lone committed part can be published as it is (copied, not decoded and encoded
   * again): its footer, read by hyparquet, has this writer's columns (names and physical types, in
   * order) and every column chunk has the output's compression. A part written with other settings
   * (before a resume) goes through DuckDB's `COPY` like several parts do.
   */
  const copyable = async (part: string): Promise<boolean> => {
    try {
      const { asyncBufferFromFile, parquetMetadataAsync } = await import("hyparquet")
      const meta = await parquetMetadataAsync(await asyncBufferFromFile(part))
      const leaves = meta.schema.slice(1)
      if (leaves.length !== columns.length) return false
      if (leaves.some((l, i) => l.name !== columns[i]!.name || l.type !== physicalType[columns[i]!.type])) return false
      const codec = codecName[options.compression]
      return meta.row_groups.every((g) => g.columns.every((c) => c.meta_data?.codec === codec))
    } catch {
      return false
    }
  }

  const fanIn = Math.max(2, Math.floor(options.mergeFanIn ?? mergeFanIn))
  const merge = async (parts: ReadonlyArray<string>, file: string): Promise<void> => {
    // Parts of this writer's columns and compression (ParquetConcat checks that the others have
    // the first one's schema): published as they are, a lone one copied, several joined. A part
    // this writer wrote is known without reading its footer (a run's one part can have a footer of
    // megabytes, and reading it was the peak of a regrouped run's memory).
    const ours = parts.length > 0 && (await wrote(parts[0]!) || await copyable(parts[0]!))
    await fsp.rm(file, { force: true })
    if (ours && parts.length === 1) {
      await fsp.copyFile(parts[0]!, file)
      return
    }
    if (ours && (await ParquetConcat.concatenate(parts, file, joinable))) return
    let inputs = parts
    const made = new Set<string>()
    try {
      for (let pass = 1; inputs.length > fanIn; pass++) {
        const next: Array<string> = []
        for (let i = 0; i < inputs.length; i += fanIn) {
          const out = path.join(path.dirname(inputs[i]!), `.merge-${pass}-${next.length}.parquet.tmp`)
          next.push(out)
          made.add(out)
          await copyFiles(inputs.slice(i, i + fanIn), out, passOptions)
        }
        const done = inputs.filter((f) => made.delete(f))
        await removeAll(done)
        inputs = next
      }
      await copyFiles(inputs, file)
    } finally {
      await removeAll([...made])
    }
  }

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    try {
      appender?.closeSync()
    } catch {
      // closing the instance drops the table anyway
    }
    connection.closeSync()
    instance.closeSync()
    await fsp.rm(tempDirectory, { recursive: true, force: true })
  }

  return { openPart, merge, close }
}

// ---------------------------------------------------------------------------------------------

/** The bindings of `@duckdb/node-bindings` (the C API under `@duckdb/node-api`). */
type Bindings = typeof import("@duckdb/node-bindings")
type RawVector = ReturnType<Bindings["data_chunk_get_vector"]>
type RawChunk = ReturnType<Bindings["create_data_chunk"]>

/**
 * One column of the data chunk, filled in JavaScript buffers and copied into its DuckDB vector in
 * one call per 2,048 rows (the vector classes of `@duckdb/node-api` cost a BigInt per validity bit
 * and a cached item per cell). Strings of at most 12 UTF-8 bytes (ASCII) are written inline in
 * their `string_t` slot; longer ones are handed to DuckDB one by one, which copies them into the
 * vector's string heap.
 */
interface ColumnFiller {
  readonly set: (index: number, value: ParquetEngine.Value) => void
  /** Writes the first `count` rows into `vector` (of a data chunk just reset). */
  readonly flush: (bindings: Bindings, vector: RawVector, count: number) => void
}

const columnFiller = (type: ParquetEngine.ColumnType, size: number, newHolder: () => RawChunk): ColumnFiller => {
  const validity = new Uint8Array(size / 8)
  let nulls = 0
  const setValid = (index: number, valid: boolean) => {
    const bit = 1 << (index & 7)
    if (valid) validity[index >> 3]! |= bit
    else {
      validity[index >> 3]! &= ~bit
      nulls++
    }
  }
  const flushValidity = (bindings: Bindings, vector: RawVector, count: number) => {
    if (nulls === 0) return // a reset vector is all valid
    bindings.vector_ensure_validity_writable(vector)
    bindings.copy_data_to_vector_validity(vector, 0, validity.buffer, 0, Math.ceil(count / 64) * 8)
    nulls = 0
  }
  /** A column of fixed-width values (0 under a null), copied into the vector as one block of bytes. */
  const fixedWidth = (items: Int32Array<ArrayBuffer> | Float64Array<ArrayBuffer>, toNumber: (value: ParquetEngine.Value) => number): ColumnFiller => ({
    set: (index, value) => {
      if (value === null) {
        items[index] = 0
        setValid(index, false)
      } else {
        items[index] = toNumber(value)
        setValid(index, true)
      }
    },
    flush: (bindings, vector, count) => {
      bindings.copy_data_to_vector(vector, 0, items.buffer, 0, count * items.BYTES_PER_ELEMENT)
      flushValidity(bindings, vector, count)
    }
  })
  switch (type) {
    case "int32":
      return fixedWidth(new Int32Array(size), (value) => value as number)
    case "timestamp":
      // Epoch milliseconds in a DOUBLE (see stagingType).
      return fixedWidth(new Float64Array(size), (value) => (value instanceof Date ? value.getTime() : (value as number)))
    case "string": {
      // duckdb_string_t: a uint32 length, then 12 inline bytes (or a prefix and a heap pointer).
      const slots = new Uint8Array(size * 16)
      const words = new Int32Array(slots.buffer)
      const longIndex = new Int32Array(size)
      const longValue: Array<string> = new Array(size)
      let longCount = 0
      let heap: LongStrings | undefined
      return {
        set: (index, value) => {
          const w = index * 4
          words[w] = 0
          words[w + 1] = 0
          words[w + 2] = 0
          words[w + 3] = 0
          if (value === null) {
            setValid(index, false)
            return
          }
          setValid(index, true)
          const s = typeof value === "string" ? value : String(value)
          const n = s.length
          if (n <= 12) {
            const o = index * 16 + 4
            let j = 0
            for (; j < n; j++) {
              const c = s.charCodeAt(j)
              if (c > 0x7f) break
              slots[o + j] = c
            }
            if (j === n) {
              words[w] = n
              return
            }
            words[w + 1] = 0
            words[w + 2] = 0
            words[w + 3] = 0
          }
          longIndex[longCount] = index
          longValue[longCount++] = s
        },
        flush: (bindings, vector, count) => {
          if (longCount > 0 && pointersFromJs) {
            if (heap === undefined) heap = newHeap(newHolder())
            if (heap.place(bindings, longIndex, longValue, longCount, slots, words)) {
              longValue.fill("", 0, longCount)
              longCount = 0
            }
          }
          bindings.copy_data_to_vector(vector, 0, slots.buffer, 0, count * 16)
          for (let k = 0; k < longCount; k++) bindings.vector_assign_string_element(vector, longIndex[k]!, longValue[k]!)
          longValue.fill("", 0, longCount)
          longCount = 0
          flushValidity(bindings, vector, count)
        }
      }
    }
  }
}

/**
 * Where a string column's long strings (more than 12 UTF-8 bytes) go for one data chunk: their
 * UTF-8 bytes, one after another, handed to DuckDB as one string (one call, not one per string)
 * in a one-column data chunk of its own, whose heap then holds them; each long string's `string_t`
 * slot points into that heap (its length, its first 4 bytes, a pointer: `duckdb_string_t` of
 * DuckDB's C API). Appending the data chunk copies the strings into the appender's own memory, so
 * the heap only has to live until the next chunk, when its data chunk is reset.
 */
interface LongStrings {
  /**
   * Writes the slots of the `count` long strings (`value[k]` at row `index[k]`) and hands their
   * bytes to DuckDB; false, having written nothing, when they are too big for one block (1 GiB:
   * the offsets are 31-bit), and then they are handed over one by one.
   */
  readonly place: (
    bindings: Bindings,
    index: Int32Array,
    value: ReadonlyArray<string>,
    count: number,
    slots: Uint8Array,
    words: Int32Array
  ) => boolean
}

/** The most bytes of long strings one block holds (see LongStrings). */
const maxBlockBytes = 1 << 30

const newHeap = (holder: RawChunk): LongStrings => {
  let bytes = Buffer.allocUnsafe(1 << 16)
  let pointing = new Int32Array(256)
  return {
    place: (bindings, index, value, count, slots, words) => {
      let need = 0
      for (let k = 0; k < count; k++) need += value[k]!.length * 3
      if (need > maxBlockBytes) return false
      if (need > bytes.length) bytes = Buffer.allocUnsafe(Math.max(need, bytes.length * 2))
      if (count > pointing.length) pointing = new Int32Array(Math.max(count, pointing.length * 2))
      // Each string's UTF-8 bytes, its length and prefix in its slot; the pointer once the heap is known.
      let at = 0
      let pointers = 0
      for (let k = 0; k < count; k++) {
        const n = bytes.write(value[k]!, at, "utf8")
        const o = index[k]! * 16
        const w = o >> 2
        words[w] = n
        if (n <= 12) {
          // Multi-byte text of at most 12 bytes: inline, as DuckDB reads any string_t that short.
          for (let j = 0; j < n; j++) slots[o + 4 + j] = bytes[at + j]!
          continue
        }
        slots[o + 4] = bytes[at]!
        slots[o + 5] = bytes[at + 1]!
        slots[o + 6] = bytes[at + 2]!
        slots[o + 7] = bytes[at + 3]!
        words[w + 2] = at // its offset in the heap, for now
        pointing[pointers++] = w
        at += n
      }
      if (pointers === 0) return true
      bindings.data_chunk_reset(holder)
      const vector = bindings.data_chunk_get_vector(holder, 0)
      bindings.vector_assign_string_element_len(vector, 0, bytes.subarray(0, at))
      // The heap's address: the pointer in the holder's one (non-inlined) string_t, bytes 8 to 15.
      const slot = bindings.vector_get_data(vector, 16)
      const view = new DataView(slot.buffer, slot.byteOffset, 16)
      const low = view.getUint32(8, true)
      const high = view.getUint32(12, true)
      for (let k = 0; k < pointers; k++) {
        const w = pointing[k]!
        const sum = low + words[w + 2]!
        words[w + 2] = sum | 0
        words[w + 3] = sum >= 0x1_0000_0000 ? high + 1 : high
      }
      return true
    }
  }
}

/**
 * Whether strings can point into a holder's heap from JavaScript: a little-endian, 64-bit process
 * (the platforms DuckDB's Node binding is built for), where `duckdb_string_t` is a uint32 length, 4
 * bytes of prefix and an 8-byte pointer. Elsewhere each long string is handed over by itself.
 */
const pointersFromJs = os.endianness() === "LE" && (process.arch === "x64" || process.arch === "arm64")

const removeAll = (files: ReadonlyArray<string>) => Promise.all(files.map((f) => fsp.rm(f, { force: true })))

const sqlType = { string: "VARCHAR", int32: "INTEGER", timestamp: "TIMESTAMPTZ" } as const
/** The Parquet physical type DuckDB writes for each column type. */
const physicalType = { string: "BYTE_ARRAY", int32: "INT32", timestamp: "INT64" } as const
/** Parquet's codec names (as hyparquet reads them) of the sink's compressions. */
const codecName = { none: "UNCOMPRESSED", snappy: "SNAPPY", gzip: "GZIP" } as const

/**
 * A part's table column types: timestamps as epoch milliseconds in a DOUBLE (exact for any date a
 * JavaScript Date holds), so appending one allocates nothing (a TIMESTAMPTZ value would be an object
 * and a bigint per cell); the `COPY` makes them TIMESTAMPTZ.
 */
const stagingType = { string: "VARCHAR", int32: "INTEGER", timestamp: "DOUBLE" } as const

const codec = { snappy: "snappy", gzip: "gzip", none: "uncompressed" } as const

const duckdbType = (duckdb: Module, type: ParquetEngine.ColumnType): DuckDB.DuckDBType => {
  switch (type) {
    case "string":
      return duckdb.VARCHAR
    case "int32":
      return duckdb.INTEGER
    case "timestamp":
      return duckdb.DOUBLE
  }
}

/**
 * DuckDB's error as one line (its messages go on with "Possible solutions:" lines); running out of
 * memory names the option that raises the limit.
 */
const oneLine = (e: unknown): Error => {
  const message = (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim()
  const memory = /Out of Memory|could not allocate/i.test(message)
  return new Error(memory ? `${message} (raise the sink's memoryLimit)` : message, { cause: e })
}

/** Runs a synchronous DuckDB call, its error as one line. */
const guard = <A>(f: () => A): A => {
  try {
    return f()
  } catch (e) {
    throw oneLine(e)
  }
}

/** The staging table's column naming each row's part. */
const partColumn = `"__effetl_part"`

/** A SQL identifier. */
const ident = (name: string): string => `"${name.replace(/"/g, "\"\"")}"`

/** A SQL string literal (a path). */
const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`
