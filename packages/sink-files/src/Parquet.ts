/**
 * The `parquet` sink: typed Parquet columns (the csv sink's columns, in the same order, plus
 * `extra` as JSON text), row groups of about `rowGroupSize` rows, one complete part file per
 * commit; one file published atomically (overwrite) or a dataset directory (append), optionally
 * Hive-partitioned by source.
 */
import { Config, DeadLetterWriter, type ProductImage, Sink } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { columns as csvColumns } from "./Csv.js"
import * as FileOutput from "./FileOutput.js"
import * as ParquetEngine from "./ParquetEngine.js"
import * as ParquetOutput from "./ParquetOutput.js"

/** The columns a dataset may be partitioned by. */
export const partitionKeys = ["source"] as const

/** The Parquet columns, in order: the csv columns, then `extra`. */
export const columns: ReadonlyArray<ParquetEngine.Column> = [
  ...csvColumns.map((name): ParquetEngine.Column => ({
    name,
    type: name === "position" || name === "width" || name === "height"
      ? "int32"
      : name === "created_at" || name === "updated_at"
      ? "timestamp"
      : "string"
  })),
  { name: "extra", type: "string" }
]

/** The `parquet` sink's config. */
export const ParquetConfig = Schema.Struct({
  path: Config.required(Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" })), {
    description:
      "Where to write. overwrite mode: the output file, replaced atomically at the end of the run (with " +
      "partitionBy: the output directory, replaced as a whole at the end). append mode: a dataset directory that " +
      "receives one part file per commit (part-<runId>-<seq>.parquet; with partitionBy, under source=<value>/). " +
      "Parent directories are created.",
    examples: ["out/images.parquet", "out/images"]
  }),
  mode: FileOutput.autoModeField,
  engine: Config.withDefault(Schema.Literal(...ParquetEngine.engines), "duckdb", {
    description:
      "The Parquet writer. duckdb (default): DuckDB's native writer (@duckdb/node-api), the fastest, memory bounded " +
      "by memoryLimit, timestamps TIMESTAMP (UTC, micros); when its native binding cannot load, the sink logs a " +
      "warning and uses hyparquet-writer. hyparquet-writer: pure JavaScript, TIMESTAMP logical type (UTC, millis). " +
      "parquetjs-lite: the same columns, timestamps as the legacy TIMESTAMP_MILLIS converted type.",
    examples: ["duckdb", "hyparquet-writer", "parquetjs-lite"]
  }),
  memoryLimit: Config.withDefault(
    Schema.String.pipe(
      Schema.pattern(/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, {
        message: () => "must be a size such as 256MB or 1GiB"
      })
    ),
    ParquetOutput.defaultMemoryLimit,
    {
      description:
        "engine duckdb only: the DuckDB instance's memory_limit, a cap on what DuckDB's buffer manager holds. The " +
        "open parts keep at most 16,384 rows in DuckDB; beyond them their rows go to spill files in a temp directory " +
        "(in the system temp directory, removed at the end), so memory stays bounded however much is written " +
        "between commits.",
      examples: ["256MB", "1GB"]
    }
  ),
  threads: Config.withDefault(Config.intRange(1, 256), 1, {
    description:
      "engine duckdb only: DuckDB's worker threads for writing parts and merging them. Each thread buffers a row " +
      "group of its own while writing, so more threads use more memory; merging parts in order gains little from " +
      "them.",
    examples: [1, 2]
  }),
  compression: Config.withDefault(Schema.Literal(...ParquetEngine.compressions), "snappy", {
    description: "The page compression codec.",
    examples: ["snappy", "gzip", "none"]
  }),
  rowGroupSize: Config.withDefault(Config.intRange(1, 10_000_000), 65_536, {
    description:
      "The most rows in one row group (hyparquet-writer, parquetjs-lite: at most one row group per open part is " +
      "held in memory; duckdb: writing a file holds about one row group, so the default of 65,536 keeps an " +
      "overwrite's final merge inside effetl run under 300 MB). duckdb: DuckDB's target, filled 2,048-row vectors at a time, so a row group may hold up to " +
      "2,047 rows more. A commit closes the part, so a part's last row group may be smaller; duckdb's published " +
      "file (overwrite) keeps the parts' row groups when they average at least min(rowGroupSize, 8192) rows, so " +
      "commit less often for bigger ones.",
    examples: [65536, 10000]
  }),
  partitionBy: Config.withDefault(Schema.Array(Schema.Literal(...partitionKeys)).pipe(Schema.maxItems(1)), [], {
    description:
      "Hive-style partitioning: [source] writes source=<value>/part-....parquet (the value percent-encoded into one " +
      "safe path segment), readable with read_parquet('dir/**/*.parquet', hive_partitioning=1). Only source may be a " +
      "partition key: it has few values, so few files are open at once.",
    examples: [[], ["source"]]
  }),
  includeExtra: Config.withDefault(Schema.Boolean, true, {
    description: "Write the record's extra (vendor fields) as JSON text in a last column `extra`.",
    examples: [true, false]
  })
})
export type ParquetConfig = typeof ParquetConfig.Type

/** One record's row, in column order (with or without `extra`). */
export const row = (r: ProductImage, includeExtra: boolean): ParquetEngine.Row => {
  const out: Array<ParquetEngine.Value> = []
  cells(r, includeExtra, out, 0)
  return out
}

/** Writes one record's row into `out` from index `at` (see `row`). */
export const cells = (r: ProductImage, includeExtra: boolean, out: Array<ParquetEngine.Value>, at: number): void => {
  out[at] = r.source
  out[at + 1] = r.productId
  out[at + 2] = r.imageId
  out[at + 3] = int32("position", r.position)
  out[at + 4] = r.url
  out[at + 5] = r.filename
  out[at + 6] = r.width === null ? null : int32("width", r.width)
  out[at + 7] = r.height === null ? null : int32("height", r.height)
  out[at + 8] = r.contentHash
  out[at + 9] = r.alt
  out[at + 10] = validDate(r.createdAt)
  out[at + 11] = validDate(r.updatedAt)
  if (includeExtra) out[at + 12] = extraJson(r.extra)
}

/** Writes product images as typed Parquet. */
export const parquet = Sink.define<ParquetConfig>({
  name: "parquet",
  description:
    "Writes typed Parquet (" + columns.map((c) => c.name).join(", ") + "): strings UTF8, position/width/height " +
    "INT32, created_at/updated_at UTC timestamps, nulls as nulls; DuckDB's native writer by default. Each commit is a complete, durable " +
    "part file; overwrite mode merges the parts into one file published atomically at the end, append mode " +
    "publishes a part per commit; partitionBy [source] writes Hive-style source=<value>/ directories.",
  config: ParquetConfig,
  outputs: (config, context) => [{
    option: "path",
    path: FileOutput.outputPath(config, context),
    kind: FileOutput.resolveMode(config.mode, context.incremental) === "append" || config.partitionBy.length > 0 ? "directory" : "file"
  }],
  make: (config, context) => {
    const tableColumns = config.includeExtra ? columns : columns.slice(0, -1)
    return Effect.map(ParquetOutput.make<ProductImage>(
      {
        name: context.name,
        path: context.trial === true ? Sink.trialPath(config.path) : config.path,
        mode: FileOutput.resolveMode(config.mode, context.incremental),
        runId: context.runId,
        committed: context.committed,
        engine: config.engine,
        compression: config.compression,
        rowGroupSize: config.rowGroupSize,
        memoryLimit: config.memoryLimit,
        threads: config.threads
      },
      {
        columns: tableColumns,
        row: (r) => row(r, config.includeExtra),
        cells: (r, out, at) => cells(r, config.includeExtra, out, at),
        ...(config.partitionBy.length > 0 ? { partition: { key: "source", value: (r: ProductImage) => r.source } } : {})
      }
    ), (out): Sink.SinkInstance => ({
      write: (records) => out.write(records),
      commit: out.commit,
      finish: out.finish,
      cleanup: out.cleanup
    }))
  }
})

export default parquet

// ---------------------------------------------------------------------------------------------

const int32 = (field: string, n: number): number => {
  if (!Number.isInteger(n) || n < -2147483648 || n > 2147483647) {
    throw new RangeError(`${field} ${n} does not fit a Parquet INT32 column`)
  }
  return n
}

/** `extra` as JSON text: `JSON.stringify(DeadLetterWriter.jsonSafe(extra))`, without the copy where none is needed. */
export const extraJson = (extra: unknown): string => DeadLetterWriter.safeJson(extra)

const validDate = (d: Date | null): Date | null => (d === null || Number.isNaN(d.getTime()) ? null : d)
