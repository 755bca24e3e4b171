import { describe, expect, it } from "@effect/vitest"
import { ConfigDocs } from "@effetl/core/testing"
import { CsvConfig, ImageStoreConfig, JsonlConfig, ParquetConfig, plugins } from "@effetl/sink-files"
import * as fs from "node:fs"
import * as path from "node:path"

const readme = fs.readFileSync(path.join(import.meta.dirname, "..", "README.md"), "utf8")

/** Each sink's config schema, and what its README section (`## <name>`) fails to document, given a minimal valid config. */
const sinks = [
  { name: "csv", schema: CsvConfig, gaps: () => ConfigDocs.readmeGaps(readme, CsvConfig, { path: "out/images.csv" }, "csv") },
  { name: "jsonl", schema: JsonlConfig, gaps: () => ConfigDocs.readmeGaps(readme, JsonlConfig, { path: "out/images.jsonl" }, "jsonl") },
  { name: "parquet", schema: ParquetConfig, gaps: () => ConfigDocs.readmeGaps(readme, ParquetConfig, { path: "o.parquet" }, "parquet") },
  { name: "images", schema: ImageStoreConfig, gaps: () => ConfigDocs.readmeGaps(readme, ImageStoreConfig, { dir: "out/images" }, "images") }
]

describe("README", () => {
  it("has a section for every sink of the package", () => {
    expect(sinks.map((s) => s.name).sort()).toEqual(plugins.map((p) => p.name).sort())
    for (const plugin of plugins) expect(plugin.config).toBe(sinks.find((s) => s.name === plugin.name)!.schema)
  })

  it.each(sinks)("documents every option of $name with its schema default", ({ gaps }) => {
    expect(gaps()).toEqual([])
  })
})
