/**
 * The `csv` sink: one row per image, in a fixed column order, quoted per RFC 4180 by `csv-stringify`.
 */
import { Config, isoDate, type ProductImage, Sink } from "@effetl/core"
import { stringify } from "csv-stringify/sync"
import type * as Chunk from "effect/Chunk"
import * as Schema from "effect/Schema"
import * as FileOutput from "./FileOutput.js"

/** The CSV columns, in order. */
export const columns = [
  "source",
  "product_id",
  "image_id",
  "position",
  "url",
  "filename",
  "width",
  "height",
  "content_hash",
  "alt",
  "created_at",
  "updated_at"
] as const

/** The field delimiters on offer. */
const Delimiter = Schema.Literal(",", ";", "\t", "|")
type Delimiter = typeof Delimiter.Type

/** The `csv` sink's config. */
export const CsvConfig = Schema.Struct({
  path: FileOutput.pathField("out/images.csv"),
  mode: FileOutput.autoModeField,
  escapeFormulas: Config.withDefault(Schema.Boolean, false, {
    description:
      "Protect spreadsheet users from formula injection: a text value beginning with =, +, -, @ (or a tab, a " +
      "carriage return or their full-width forms) is written with a ' prefix. Off: values are written unaltered.",
    examples: [true, false]
  }),
  delimiter: Config.withDefault<Delimiter, Delimiter>(Delimiter, ",", {
    description: "The field delimiter.",
    examples: [",", ";", "\t"]
  })
})
export type CsvConfig = typeof CsvConfig.Type

/** One record's row: strings and numbers, null for an empty field; dates ISO-8601 UTC (as in its JSON form). */
export const row = (r: ProductImage): Array<string | number | null> => [
  r.source,
  r.productId,
  r.imageId,
  r.position,
  r.url,
  r.filename,
  r.width,
  r.height,
  r.contentHash,
  r.alt,
  isoDate(r.createdAt),
  isoDate(r.updatedAt)
]

/** Writes product images as CSV. */
export const csv = Sink.define<CsvConfig>({
  name: "csv",
  description:
    "Writes one CSV row per image (columns: " + columns.join(", ") + "), with a header row. Commits are " +
    "durable part files; overwrite mode publishes the complete run atomically at the end, append mode " +
    "publishes one part file per commit.",
  config: CsvConfig,
  outputs: (config, context) => [
    { option: "path", path: FileOutput.outputPath(config, context), kind: FileOutput.resolveMode(config.mode, context.incremental) === "append" ? "directory" : "file" }
  ],
  make: (config, context) => {
    const options = { delimiter: config.delimiter, escape_formulas: config.escapeFormulas, eof: true }
    const header = stringify([[...columns]], { delimiter: config.delimiter, eof: true })
    return FileOutput.make(config, context, {
      ext: "csv",
      header: () => header,
      encode: (records: Chunk.Chunk<ProductImage>) => {
        const rows: Array<Array<string | number | null>> = []
        for (const r of records) rows.push(row(r))
        return stringify(rows, options)
      }
    })
  }
})

export default csv
