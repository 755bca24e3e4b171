/**
 * Parquet output under the commit protocol, generic over the rows it writes (the `parquet` sink's
 * image rows, the image store's manifest rows).
 *
 * Each commit closes a complete Parquet part file (footer written) and hands it to core's
 * `StagedParts`, which fsyncs it, renames it to `part-<runId>-<seq>.parquet` and fsyncs the
 * directory; the commit token says how many parts there are, and on resume the parts after it are
 * removed. Parquet files cannot be appended to one another as bytes, so in `overwrite` mode the
 * published file is made from the committed parts: with `duckdb`, their row groups joined as they
 * are under one new footer when they are big enough, else one DuckDB `COPY` reading them (see
 * `DuckDbParquet.merge`); with the JavaScript engines, streaming their row groups back (hyparquet) into the
 * encoder, holding at most one row group of each in memory.
 *
 * With `duckdb` a part is rows of a DuckDB table until its commit writes them whole (`COPY … TO` the part's
 * temp file, then `StagedParts.commitFile`); the JavaScript engines stream encoded row groups into
 * the part file as they fill. `duckdb` falls back to `hyparquet-writer`, with a logged warning, when
 * its native binding cannot be loaded.
 *
 * Partitioned (Hive-style `source=<value>/`) outputs are a directory in both modes: one
 * `StagedParts` per partition directory, and a token `{ partitions: { "source=<value>": seq } }`.
 * In `overwrite` mode the partitions are staged in `<dir>/.<name>.effetl-staging/<runId>/` and at
 * the end each is merged into one file of a new directory that replaces the target by rename.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import { SinkError, StagedParts } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { FileHandle } from "node:fs/promises"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as DuckDbParquet from "./DuckDbParquet.js"
import * as ParquetEngine from "./ParquetEngine.js"

/** What a Parquet output writes: its columns, and how a value becomes a row. */
export interface Table<A> {
  readonly columns: ReadonlyArray<ParquetEngine.Column>
  readonly row: (a: A) => ParquetEngine.Row
  /**
   * Optional: writes a value's row into `out` from index `at` (what `row` gives, without an array
   * per row). With `duckdb`, a batch's rows then go as one flat array of cells, reused batch after
   * batch.
   */
  readonly cells?: (a: A, out: Array<ParquetEngine.Value>, at: number) => void
  /** Partitioned outputs only: the partition key (`source`) and a value's partition value. */
  readonly partition?: { readonly key: string; readonly value: (a: A) => string }
}

/** Where and how to write. */
export interface Options {
  /** The sink's name, for messages. */
  readonly name: string
  /** A file (overwrite, not partitioned) or a directory (append, or partitioned). */
  readonly path: string
  readonly mode: StagedParts.Mode
  readonly runId: string
  readonly committed: Option.Option<unknown>
  readonly engine: ParquetEngine.Engine
  readonly compression: ParquetEngine.Compression
  readonly rowGroupSize: number
  /** `duckdb` only: the DuckDB instance's `memory_limit` (default `256MB`). */
  readonly memoryLimit?: string
  /** `duckdb` only: DuckDB's worker threads (default: one per core). */
  readonly threads?: number
  /** `duckdb` only: how `@duckdb/node-api` is imported (default `DuckDbParquet.load`). */
  readonly loadDuckDb?: () => Promise<DuckDbParquet.Module>
}

/** The DuckDB instance's memory limit when none is given. */
export const defaultMemoryLimit = "256MB"

/** A Parquet output: the sink operations over values of `A`. */
export interface ParquetOutput<A> {
  /** The absolute target path. */
  readonly target: string
  /** Appends values to the current parts (a part per partition is opened on demand). */
  readonly write: (values: Iterable<A>) => Effect.Effect<void, SinkError>
  /** Closes the open parts as complete Parquet files and makes them durable; returns the token. */
  readonly commit: Effect.Effect<unknown, SinkError>
  /** Publishes the run (overwrite: atomically). Idempotent. */
  readonly finish: Effect.Effect<void, SinkError>
  /** Removes this run's staging. */
  readonly cleanup: Effect.Effect<void, SinkError>
}

/** The token of a partitioned output: each partition directory's last committed part. */
export const PartitionedToken = Schema.Struct({
  partitions: Schema.Record({ key: Schema.String, value: Schema.Int.pipe(Schema.nonNegative()) })
})
export type PartitionedToken = typeof PartitionedToken.Type

/**
 * The directory name of a partition: `<key>=<value>`, the value percent-encoded (UTF-8) except
 * for ASCII letters, digits, `_` and `-`, so it is always one safe path segment (no `/`, `\`, `.`,
 * `..`, NUL, control characters). DuckDB, Spark and pandas decode it back.
 */
export const partitionDir = (key: string, value: string): string => {
  let encoded = ""
  for (const byte of Buffer.from(value, "utf8")) {
    const c = String.fromCharCode(byte)
    encoded += /[A-Za-z0-9_-]/.test(c) ? c : "%" + byte.toString(16).toUpperCase().padStart(2, "0")
  }
  return `${key}=${encoded}`
}

/** Makes a Parquet output, cleaning up after a killed run as the token says. */
export const make = <A>(
  options: Options,
  table: Table<A>
): Effect.Effect<ParquetOutput<A>, SinkError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const { name } = options
    const fail = (message: string, cause?: unknown) =>
      new SinkError({ sink: name, message: `sink '${name}': ${message}`, ...(cause === undefined ? {} : { cause }) })
    const io = <X>(what: string, f: () => Promise<X>) =>
      Effect.tryPromise({ try: f, catch: (e) => fail(`${what}: ${errorMessage(e)}`, e) })
    const encoderOptions: ParquetEngine.EncoderOptions = {
      columns: table.columns,
      compression: options.compression,
      rowGroupSize: options.rowGroupSize
    }
    const duck = options.engine === "duckdb" ? yield* openDuckDb(options, table.columns, fail) : undefined
    const byteEngine: ParquetEngine.ByteEngine = options.engine === "duckdb" ? "hyparquet-writer" : options.engine

    /** Writes a whole Parquet file into `out` from the given parts' rows (none: an empty file with the schema). */
    const merge = async (parts: ReadonlyArray<string>, out: FileHandle): Promise<void> => {
      const encoder = await ParquetEngine.open(byteEngine, encoderOptions)
      const flush = async () => {
        for (const chunk of encoder.take()) await StagedParts.writeAll(out, chunk)
      }
      for (const part of parts) {
        for await (const rows of ParquetEngine.readRowGroups(part, table.columns)) {
          await encoder.append(rows)
          await flush()
        }
      }
      await encoder.close()
      await flush()
    }

    /** A part being written: JavaScript engines encode into the part file, DuckDB into a table. */
    interface Slot {
      readonly parts: StagedParts.StagedParts
      encoder: ParquetEngine.Encoder | undefined
      table: DuckDbParquet.Part | undefined
      seq: number
    }
    const pendingRows = (slot: Slot) => (slot.encoder?.rows ?? 0) + (slot.table?.rows ?? 0)

    /** DuckDB: writes the published file at `tmp` from a slot's committed parts (see `DuckDbParquet.merge`). */
    const publishWithDuckDb = (duck: DuckDbParquet.Writer, parts: ReadonlyArray<string>, tmp: string) => duck.merge(parts, tmp)

    /** Moves the encoder's finished bytes into its part file. */
    const drain = (slot: Slot, encoder: ParquetEngine.Encoder) =>
      Effect.forEach(encoder.take(), (chunk) => slot.parts.write(chunk), { discard: true })

    /** Closes a slot's open part (if any) and commits it. */
    const commitSlot = (slot: Slot) =>
      Effect.gen(function*() {
        const table = slot.table
        if (table !== undefined) {
          slot.table = undefined
          const token = yield* slot.parts.commitFile((tmp) => table.copyTo(tmp))
          slot.seq = token.seq
          return
        }
        const encoder = slot.encoder
        if (encoder !== undefined) {
          yield* io("could not finish a Parquet part", () => encoder.close())
          yield* drain(slot, encoder)
          slot.encoder = undefined
        }
        const token = yield* slot.parts.commit
        slot.seq = token.seq
      })

    const appendTo = (slot: Slot, batch: Rows) =>
      Effect.gen(function*() {
        if (duck !== undefined) {
          const table = slot.table ?? (slot.table = yield* io("could not start a Parquet part", () => duck.openPart()))
          return yield* io("could not append rows to DuckDB", () =>
            batch.rows === undefined ? table.appendCells(batch.cells, batch.count) : table.append(batch.rows))
        }
        if (slot.encoder === undefined) {
          slot.encoder = yield* io("could not start a Parquet part", () => ParquetEngine.open(byteEngine, encoderOptions))
        }
        const encoder = slot.encoder
        const rows = batch.rows ?? []
        yield* io("could not encode rows as Parquet", () => encoder.append(rows))
        yield* drain(slot, encoder)
      })

    const refuseUncommitted = (slots: Iterable<Slot>) =>
      Effect.suspend(() => {
        for (const slot of slots) {
          if (pendingRows(slot) > 0) {
            return Effect.fail(fail("finish was called with records written after the last commit; commit first"))
          }
        }
        return Effect.void
      })

    /** A batch of rows: row arrays, or (DuckDB with `table.cells`) the first `count` rows of a flat array of cells. */
    type Rows =
      | { readonly count: number; readonly rows: ReadonlyArray<ParquetEngine.Row>; readonly cells?: undefined }
      | { readonly count: number; readonly rows?: undefined; readonly cells: ReadonlyArray<ParquetEngine.Value> }
    const width = table.columns.length
    /** The flat cells of the batch being written (DuckDB appends them before the next batch is made). */
    const scratch: Array<ParquetEngine.Value> = []
    const cells = duck !== undefined ? table.cells : undefined

    /**
     * Maps values to rows, all of them before any is appended; a value that cannot be a row (e.g. an
     * integer beyond INT32) fails the write.
     */
    const toRows = (values: Iterable<A>) =>
      Effect.try({
        try: (): Rows => {
          if (cells !== undefined) {
            let count = 0
            for (const v of values) cells(v, scratch, count++ * width)
            return { count, cells: scratch }
          }
          const rows: Array<ParquetEngine.Row> = []
          for (const v of values) rows.push(table.row(v))
          return { count: rows.length, rows }
        },
        catch: (e) => fail(`could not encode a record as Parquet: ${errorMessage(e)}`, e)
      })

    /** Drops a slot's uncommitted part. */
    const discard = (slot: Slot) =>
      Effect.suspend(() => {
        slot.encoder = undefined
        const table = slot.table
        slot.table = undefined
        return table === undefined ? Effect.void : io("could not drop an uncommitted DuckDB part", () => table.discard())
      })

    const lock = yield* Effect.makeSemaphore(1)
    const serial = <X, E>(eff: Effect.Effect<X, E>) => lock.withPermits(1)(eff)

    // --- one file or one directory of parts ----------------------------------------------------
    if (table.partition === undefined) {
      const parts = yield* StagedParts.make({
        name,
        path: options.path,
        mode: options.mode,
        runId: options.runId,
        ext: "parquet",
        committed: options.committed,
        ...(duck !== undefined ? { publishFile: (parts, tmp) => publishWithDuckDb(duck, parts, tmp) } : { publish: merge })
      })
      const slot: Slot = { parts, encoder: undefined, table: undefined, seq: 0 }
      return {
        target: parts.target,
        write: (values) =>
          serial(
            Effect.flatMap(toRows(values), (rows) => rows.count === 0 ? Effect.void : appendTo(slot, rows))
          ),
        commit: serial(Effect.zipRight(commitSlot(slot), Effect.sync(() => ({ seq: slot.seq })))),
        finish: serial(Effect.zipRight(refuseUncommitted([slot]), parts.finish)),
        cleanup: serial(Effect.zipRight(discard(slot), parts.cleanup))
      } satisfies ParquetOutput<A>
    }

    // --- partitioned: a directory of `<key>=<value>/` directories ------------------------------
    const partition = table.partition
    if (options.path.trim() === "") return yield* fail("the output path is empty")
    const target = path.resolve(options.path)
    if (target === path.parse(target).root) return yield* fail(`${target} cannot be the output directory`)
    const targetKind = yield* io(`could not inspect ${target}`, () => kindOf(target))
    if (targetKind !== undefined && targetKind !== "directory") {
      return yield* fail(`${target} is not a directory; a partitioned output is a directory of ${partition.key}=<value>/ directories`)
    }
    const token = yield* Option.match(options.committed, {
      onNone: () => Effect.succeed<PartitionedToken>({ partitions: {} }),
      onSome: (u) =>
        Schema.decodeUnknown(PartitionedToken)(u).pipe(
          Effect.mapError((e) =>
            fail(`the saved commit token is not valid (${ParseResult.TreeFormatter.formatErrorSync(e)}); rerun with --restart`)
          )
        )
    })
    const staging = options.mode === "overwrite"
    const root = StagedParts.stagingRoot(target)
    const base = staging ? path.join(root, options.runId) : target
    const publishTmp = path.join(path.dirname(target), `.${path.basename(target)}.effetl-publish-${options.runId}.tmp`)
    const previous = path.join(path.dirname(target), `.${path.basename(target)}.effetl-previous-${options.runId}`)

    if (staging && Option.isNone(options.committed)) {
      // A fresh run starts from nothing: earlier killed runs' staging and publish leftovers go.
      yield* io(`could not remove old staging ${root}`, () => fsp.rm(root, { recursive: true, force: true }))
      yield* io(`could not remove ${publishTmp}`, () => fsp.rm(publishTmp, { recursive: true, force: true }))
    }
    yield* io(`could not create directory ${base}`, () => fsp.mkdir(base, { recursive: true }))

    const services = yield* Effect.context<FileSystem.FileSystem | Scope.Scope>()
    const slots = new Map<string, Slot>()
    const openSlot = (dir: string, committedSeq: number) =>
      Effect.provide(Effect.gen(function*() {
        const parts = yield* StagedParts.make({
          name,
          path: path.join(base, dir),
          mode: "append",
          runId: options.runId,
          ext: "parquet",
          committed: Option.some({ seq: committedSeq })
        })
        const slot: Slot = { parts, encoder: undefined, table: undefined, seq: committedSeq }
        slots.set(dir, slot)
        return slot
      }), services)

    // Resume: every existing partition directory drops this run's parts after its saved seq.
    const prefix = `${partition.key}=`
    const existing = yield* io(`could not list ${base}`, () => fsp.readdir(base, { withFileTypes: true }))
    for (const entry of existing) {
      if (entry.isDirectory() && entry.name.startsWith(prefix)) yield* openSlot(entry.name, token.partitions[entry.name] ?? 0)
    }
    for (const [dir, seq] of Object.entries(token.partitions)) {
      if (seq === 0) continue
      const slot = slots.get(dir)
      const files = slot === undefined ? [] : yield* slot.parts.committedParts
      const missing = slot === undefined
        ? path.join(base, dir)
        : (yield* Effect.filter(files, (f) => io(`could not inspect ${f}`, () => kindOf(f)).pipe(Effect.map((k) => k === undefined))))[0]
      if (missing !== undefined) {
        return yield* fail(
          `committed part ${missing} is missing, so the run cannot resume without losing records; rerun with --restart`
        )
      }
    }
    yield* io(`could not sync directory ${base}`, () => StagedParts.fsyncDirectory(base))
    yield* Effect.addFinalizer(() => Effect.sync(() => slots.clear()))

    let newDirs = false
    const write = (values: Iterable<A>) =>
      serial(
        Effect.gen(function*() {
          const byDir = new Map<string, Array<A>>()
          for (const v of values) {
            const dir = partitionDir(partition.key, partition.value(v))
            if (Buffer.byteLength(dir) > 240) {
              return yield* fail(`the partition directory for ${partition.key} ${JSON.stringify(partition.value(v).slice(0, 40))}… is too long for a file name`)
            }
            let group = byDir.get(dir)
            if (group === undefined) byDir.set(dir, (group = []))
            group.push(v)
          }
          for (const [dir, group] of byDir) {
            const rows = yield* toRows(group)
            let slot = slots.get(dir)
            if (slot === undefined) {
              slot = yield* openSlot(dir, 0)
              newDirs = true
            }
            yield* appendTo(slot, rows)
          }
        })
      )

    const commit = serial(
      Effect.gen(function*() {
        for (const slot of slots.values()) yield* commitSlot(slot)
        if (newDirs) {
          yield* io(`could not sync directory ${base}`, () => StagedParts.fsyncDirectory(base))
          newDirs = false
        }
        const partitions: Record<string, number> = {}
        for (const [dir, slot] of [...slots].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
          if (slot.seq > 0) partitions[dir] = slot.seq
        }
        return { partitions } satisfies PartitionedToken
      })
    )

    const finish = serial(
      Effect.gen(function*() {
        yield* refuseUncommitted(slots.values())
        if (!staging) return
        // Build the new directory next to the target: one merged file per partition.
        yield* io(`could not publish ${target}`, async () => {
          await fsp.rm(publishTmp, { recursive: true, force: true })
          await fsp.mkdir(publishTmp)
          for (const [dir, slot] of slots) {
            if (slot.seq === 0) continue
            const files: Array<string> = []
            for (let s = 1; s <= slot.seq; s++) files.push(path.join(base, dir, StagedParts.partName(options.runId, s, "parquet")))
            await fsp.mkdir(path.join(publishTmp, dir))
            const file = path.join(publishTmp, dir, StagedParts.partName(options.runId, 1, "parquet"))
            if (duck !== undefined) await StagedParts.writeFileAtomically(file, `${file}.tmp`, (tmp) => publishWithDuckDb(duck, files, tmp))
            else await StagedParts.writeAtomically(file, `${file}.tmp`, (out) => merge(files, out))
          }
          await StagedParts.fsyncDirectory(publishTmp)
          // Swap it in: the previous directory steps aside, the new one takes its name.
          if ((await kindOf(target)) !== undefined) {
            await fsp.rm(previous, { recursive: true, force: true })
            await fsp.rename(target, previous)
          }
          await fsp.rename(publishTmp, target)
          await StagedParts.fsyncDirectory(path.dirname(target))
          await fsp.rm(previous, { recursive: true, force: true })
        })
      })
    )

    const cleanup = serial(
      Effect.gen(function*() {
        for (const slot of slots.values()) yield* discard(slot)
        if (!staging) return
        yield* io(`could not remove staging ${base}`, () => fsp.rm(base, { recursive: true, force: true }))
        yield* io(`could not remove ${publishTmp}`, () => fsp.rm(publishTmp, { recursive: true, force: true }))
        const left = yield* io(`could not list ${root}`, () => fsp.readdir(root).catch(() => ["-"]))
        if (left.length === 0) yield* io(`could not remove staging ${root}`, () => fsp.rm(root, { recursive: true, force: true }))
      })
    )

    return { target, write, commit, finish, cleanup } satisfies ParquetOutput<A>
  })

// ---------------------------------------------------------------------------------------------

/**
 * Starts the output's DuckDB instance (closed with the scope). When `@duckdb/node-api` cannot be
 * loaded, logs a warning and gives none: the output then writes with `hyparquet-writer`.
 */
const openDuckDb = (
  options: Options,
  columns: ReadonlyArray<ParquetEngine.Column>,
  fail: (message: string, cause?: unknown) => SinkError
): Effect.Effect<DuckDbParquet.Writer | undefined, SinkError, Scope.Scope> =>
  Effect.tryPromise(options.loadDuckDb ?? DuckDbParquet.load).pipe(
    Effect.matchEffect({
      onFailure: (e) =>
        Effect.as(
          Effect.logWarning(
            `sink '${options.name}': DuckDB could not be loaded (${errorMessage(e.error)}); writing Parquet with hyparquet-writer instead`
          ),
          undefined
        ),
      onSuccess: (duckdb) =>
        Effect.acquireRelease(
          Effect.tryPromise({
            try: () =>
              DuckDbParquet.open({
                columns,
                compression: options.compression,
                rowGroupSize: options.rowGroupSize,
                memoryLimit: options.memoryLimit ?? defaultMemoryLimit,
                ...(options.threads === undefined ? {} : { threads: options.threads })
              }, duckdb),
            catch: (e) => fail(`could not start DuckDB: ${errorMessage(e)}`, e)
          }),
          (writer) => Effect.promise(() => writer.close().catch(() => undefined))
        )
    })
  )

const kindOf = async (p: string): Promise<"directory" | "file" | undefined> => {
  try {
    return (await fsp.stat(p)).isDirectory() ? "directory" : "file"
  } catch (e) {
    if (typeof e === "object" && e !== null && (e as { code?: unknown }).code === "ENOENT") return undefined
    throw e
  }
}

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))
