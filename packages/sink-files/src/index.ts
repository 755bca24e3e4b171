/**
 * @effetl/sink-files: the `csv` and `jsonl` sinks. Durable part files on every commit; the complete
 * run published atomically (overwrite) or one part file per commit (append).
 */
import type { Sink } from "@effetl/core"
import { csv } from "./Csv.js"
import { jsonl } from "./Jsonl.js"

export { columns, csv, CsvConfig } from "./Csv.js"
export * as FileOutput from "./FileOutput.js"
export { jsonl, JsonlConfig } from "./Jsonl.js"

/** The sink plugins of this package. */
export const plugins: ReadonlyArray<Sink.SinkPlugin> = [csv, jsonl]
