/**
 * The `jsonl` sink: one JSON object per line, the record's JSON form (`toJson`).
 */
import { Config, DeadLetterWriter, type ProductImage, Sink, toJson } from "@effetl/core"
import type * as Chunk from "effect/Chunk"
import * as Schema from "effect/Schema"
import * as FileOutput from "./FileOutput.js"

/** The `jsonl` sink's config. */
export const JsonlConfig = Schema.Struct({
  path: FileOutput.pathField("out/images.jsonl"),
  mode: FileOutput.autoModeField,
  includeBytes: Config.withDefault(Schema.Boolean, false, {
    description: "Include the image bytes (base64, field `bytes`) of sources that deliver binary images.",
    examples: [false, true]
  })
})
export type JsonlConfig = typeof JsonlConfig.Type

/** One record's line, without the newline. Values in `extra` that JSON cannot hold are made JSON-safe. */
export const line = (r: ProductImage, includeBytes: boolean): string => DeadLetterWriter.safeJson(toJson(r, { includeBytes }))

/** Writes product images as JSON Lines. */
export const jsonl = Sink.define<JsonlConfig>({
  name: "jsonl",
  description:
    "Writes one JSON object per image per line (the record's JSON form: ISO-8601 UTC dates, `extra` as is, " +
    "bytes only with includeBytes). Commits are durable part files; overwrite mode publishes the complete " +
    "run atomically at the end, append mode publishes one part file per commit.",
  config: JsonlConfig,
  outputs: (config, context) => [
    { option: "path", path: FileOutput.outputPath(config, context), kind: FileOutput.resolveMode(config.mode, context.incremental) === "append" ? "directory" : "file" }
  ],
  make: (config, context) =>
    FileOutput.make(config, context, {
      ext: "jsonl",
      encode: (records: Chunk.Chunk<ProductImage>) => {
        let text = ""
        for (const r of records) text += line(r, config.includeBytes) + "\n"
        return text
      }
    })
})

export default jsonl
