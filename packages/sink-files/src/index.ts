/**
 * @effetl/sink-files: the `csv`, `jsonl`, `parquet` and `images` sinks. Durable part files on every
 * commit; the complete run published atomically (overwrite) or one part file per commit (append).
 */
import type { Sink } from "@effetl/core"
import { csv } from "./Csv.js"
import { images } from "./ImageStore.js"
import { jsonl } from "./Jsonl.js"
import { parquet } from "./Parquet.js"

export { columns, csv, CsvConfig } from "./Csv.js"
export * as FileOutput from "./FileOutput.js"
export { extensionOf, images, ImageStoreConfig, type ManifestRow, manifestColumns, storePath } from "./ImageStore.js"
export { jsonl, JsonlConfig } from "./Jsonl.js"
export { parquet, ParquetConfig } from "./Parquet.js"
export * as ParquetEngine from "./ParquetEngine.js"
export * as ParquetOutput from "./ParquetOutput.js"

/** The sink plugins of this package. */
export const plugins: ReadonlyArray<Sink.SinkPlugin> = [csv, jsonl, parquet, images]
