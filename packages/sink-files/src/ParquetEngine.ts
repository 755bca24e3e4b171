/// <reference path="./types/parquetjs-lite.d.ts" />
/**
 * Parquet engines: the maintained libraries that encode Parquet for the `parquet` sink and the image
 * store's manifest, and the reader (hyparquet) that streams a written file back one row group at a
 * time (used to merge committed parts into one published file with the JavaScript engines).
 *
 * - `duckdb` (the default when its native binding loads): DuckDB's own writer, see
 *   `DuckDbParquet.ts`; it writes whole files from a path, not bytes, so it has its own interface.
 * - `hyparquet-writer`: explicit schema, dictionary encoding and statistics chosen by the
 *   library; timestamps carry the TIMESTAMP logical type (isAdjustedToUTC=true, MILLIS) as well as
 *   the legacy TIMESTAMP_MILLIS converted type.
 * - `parquetjs-lite`: the same columns; it only writes converted types, so timestamps are
 *   TIMESTAMP_MILLIS (the Parquet spec defines that as UTC-adjusted millis; DuckDB shows it as
 *   TIMESTAMP rather than TIMESTAMP WITH TIME ZONE).
 *
 * A JavaScript engine's encoder buffers at most one row group of rows. When `rowGroupSize` rows are
 * buffered it encodes them as a row group; the bytes wait in the encoder until `take` hands them to
 * the caller, who writes them to disk. `close` encodes the last (partial) row group and the footer.
 *
 * Every library is imported on first use, so a pipeline without Parquet loads none of them.
 */
import type { FieldDefinition } from "parquetjs-lite"
import { Writable } from "node:stream"
import * as zlib from "node:zlib"

/** The engines on offer. */
export const engines = ["duckdb", "hyparquet-writer", "parquetjs-lite"] as const
export type Engine = (typeof engines)[number]

/** The engines that encode bytes in JavaScript (through `open`). */
export type ByteEngine = Exclude<Engine, "duckdb">

/** The compressions on offer. */
export const compressions = ["snappy", "gzip", "none"] as const
export type Compression = (typeof compressions)[number]

/** A column's type: UTF8 string, INT32, or a UTC millisecond timestamp. Every column is nullable. */
export type ColumnType = "string" | "int32" | "timestamp"

/** A column of a table. */
export interface Column {
  readonly name: string
  readonly type: ColumnType
}

/** A cell: a string, an integer, a date, or null. */
export type Value = string | number | Date | null

/** A row: one value per column, in column order. */
export type Row = ReadonlyArray<Value>

/** How to encode one file. */
export interface EncoderOptions {
  readonly columns: ReadonlyArray<Column>
  readonly compression: Compression
  /** The most rows in one row group (and buffered in memory). */
  readonly rowGroupSize: number
}

/** One Parquet file being encoded. */
export interface Encoder {
  /** Rows appended so far. */
  readonly rows: number
  /** Appends rows; a full row group is encoded as soon as it fills. */
  readonly append: (rows: ReadonlyArray<Row>) => Promise<void>
  /** Encodes the rows still buffered and the footer. The file is complete once its bytes are taken. */
  readonly close: () => Promise<void>
  /** Hands over the bytes encoded since the last call (the caller writes them, in order). */
  readonly take: () => Array<Uint8Array>
}

/** Opens an encoder for one file with a JavaScript engine. */
export const open = (engine: ByteEngine, options: EncoderOptions): Promise<Encoder> =>
  engine === "hyparquet-writer" ? hyparquetEncoder(options) : parquetjsEncoder(options)

/** Reads a Parquet file back one row group at a time, as rows of the given columns. */
export async function* readRowGroups(file: string, columns: ReadonlyArray<Column>): AsyncGenerator<Array<Row>> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = await import("hyparquet")
  const buffer = await asyncBufferFromFile(file)
  const metadata = await parquetMetadataAsync(buffer)
  const names = columns.map((c) => c.name)
  let start = 0
  for (const group of metadata.row_groups) {
    const count = Number(group.num_rows)
    if (count === 0) continue
    const objects = await parquetReadObjects({
      file: buffer,
      metadata,
      columns: names,
      rowStart: start,
      rowEnd: start + count,
      compressors: { GZIP: (input: Uint8Array) => zlib.gunzipSync(input) }
    })
    start += count
    yield objects.map((o) => columns.map((c) => cell(c, o[c.name])))
  }
}

// ---------------------------------------------------------------------------------------------

const cell = (column: Column, v: unknown): Value => {
  if (v === null || v === undefined) return null
  switch (column.type) {
    case "string":
      return String(v)
    case "int32":
      return Number(v)
    case "timestamp":
      return v instanceof Date ? v : new Date(Number(v))
  }
}

const gzip = (input: Uint8Array): Uint8Array => zlib.gzipSync(input)

const hyparquetCodec = { snappy: "SNAPPY", gzip: "GZIP", none: "UNCOMPRESSED" } as const

/** The hyparquet-writer schema of a table. */
const hyparquetSchema = (columns: ReadonlyArray<Column>) => [
  { name: "root", num_children: columns.length },
  ...columns.map((c) => {
    switch (c.type) {
      case "string":
        return { name: c.name, type: "BYTE_ARRAY" as const, converted_type: "UTF8" as const, repetition_type: "OPTIONAL" as const }
      case "int32":
        return { name: c.name, type: "INT32" as const, repetition_type: "OPTIONAL" as const }
      case "timestamp":
        return {
          name: c.name,
          type: "INT64" as const,
          converted_type: "TIMESTAMP_MILLIS" as const,
          logical_type: { type: "TIMESTAMP" as const, isAdjustedToUTC: true, unit: "MILLIS" as const },
          repetition_type: "OPTIONAL" as const
        }
    }
  })
]

const hyparquetEncoder = async (options: EncoderOptions): Promise<Encoder> => {
  const { ByteWriter, ParquetWriter } = await import("hyparquet-writer")
  const { columns, rowGroupSize } = options
  const writer = new ByteWriter()
  const pq = new ParquetWriter({
    writer,
    schema: hyparquetSchema(columns),
    codec: hyparquetCodec[options.compression],
    compressors: { GZIP: gzip },
    createdBy: "effetl (hyparquet-writer)"
  })
  let buffer: Array<Array<Value>> = columns.map(() => [])
  let buffered = 0
  let rows = 0
  const out: Array<Uint8Array> = []
  const drain = () => {
    if (writer.index === 0) return
    out.push(new Uint8Array(writer.buffer, 0, writer.index).slice())
    writer.index = 0 // `offset` keeps counting: it is the position in the file
  }
  const encodeGroup = () => {
    if (buffered === 0) return
    void pq.write({
      columnData: columns.map((c, i) => ({ name: c.name, data: buffer[i]! })),
      rowGroupSize: buffered
    })
    buffer = columns.map(() => [])
    buffered = 0
    drain()
  }
  return {
    get rows() {
      return rows
    },
    append: async (batch) => {
      for (const row of batch) {
        for (let i = 0; i < columns.length; i++) buffer[i]!.push(row[i] ?? null)
        buffered++
        rows++
        if (buffered >= rowGroupSize) encodeGroup()
      }
    },
    close: async () => {
      encodeGroup()
      void pq.finish()
      drain()
    },
    take: () => out.splice(0, out.length)
  }
}

const parquetjsCodec = { snappy: "SNAPPY", gzip: "GZIP", none: "UNCOMPRESSED" } as const
const parquetjsType = { string: "UTF8", int32: "INT32", timestamp: "TIMESTAMP_MILLIS" } as const

const parquetjsEncoder = async (options: EncoderOptions): Promise<Encoder> => {
  const { columns } = options
  const fields: Record<string, FieldDefinition> = {}
  for (const c of columns) {
    fields[c.name] = { type: parquetjsType[c.type], optional: true, compression: parquetjsCodec[options.compression] }
  }
  const out: Array<Uint8Array> = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk)
      callback()
    }
  })
  const parquetjs = (await import("parquetjs-lite")).default
  const writer = await parquetjs.ParquetWriter.openStream(new parquetjs.ParquetSchema(fields), sink, {
    rowGroupSize: options.rowGroupSize
  })
  let rows = 0
  return {
    get rows() {
      return rows
    },
    append: async (batch) => {
      for (const row of batch) {
        const record: Record<string, Value> = {}
        for (let i = 0; i < columns.length; i++) record[columns[i]!.name] = row[i] ?? null
        await writer.appendRow(record)
        rows++
      }
    },
    close: () => writer.close(),
    take: () => out.splice(0, out.length)
  }
}
