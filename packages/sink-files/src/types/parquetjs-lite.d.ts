/**
 * The small part of parquetjs-lite (which ships no types) that the `parquet` sink uses.
 */
declare module "parquetjs-lite" {
  import type { Writable } from "node:stream"

  /** A field of a parquetjs schema. */
  export interface FieldDefinition {
    readonly type: "UTF8" | "INT32" | "INT64" | "TIMESTAMP_MILLIS" | "JSON" | "BOOLEAN" | "DOUBLE"
    readonly optional?: boolean
    readonly compression?: "UNCOMPRESSED" | "GZIP" | "SNAPPY"
    readonly encoding?: "PLAIN" | "RLE"
    readonly statistics?: boolean
  }

  /** A parquetjs schema: field name to definition. */
  export class ParquetSchema {
    constructor(fields: Record<string, FieldDefinition>)
  }

  /** Options of a parquetjs writer. */
  export interface WriterOptions {
    readonly rowGroupSize?: number
    readonly pageSize?: number
    readonly useDataPageV2?: boolean
  }

  /** A buffered Parquet writer: rows in, row groups out when `rowGroupSize` rows are buffered. */
  export class ParquetWriter {
    static openStream(schema: ParquetSchema, stream: Writable, options?: WriterOptions): Promise<ParquetWriter>
    static openFile(schema: ParquetSchema, path: string, options?: WriterOptions): Promise<ParquetWriter>
    appendRow(row: Record<string, unknown>): Promise<void>
    close(): Promise<void>
    setMetadata(key: string, value: string): void
  }

  const parquet: {
    readonly ParquetSchema: typeof ParquetSchema
    readonly ParquetWriter: typeof ParquetWriter
  }
  export default parquet
}
