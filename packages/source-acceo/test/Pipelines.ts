/**
 * Pipelines for the end-to-end tests: the demo's transforms into the csv and jsonl sinks of
 * `@effetl/sink-files` in a scratch directory, and readers of what they wrote. Used by
 * `Pipeline.test.ts` and by `fixtures/runPipeline.ts` (a pipeline run in a child process that can be
 * SIGKILLed).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { builtinTransforms, Pipeline, type Transform } from "@effetl/core"
import { csv, jsonl } from "@effetl/sink-files"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { acceo } from "../src/Source.js"
import { fastRetry } from "./Harness.js"

/** A built-in transform by name. */
export const transform = (name: string): Transform.TransformPlugin => builtinTransforms.find((t) => t.name === name)!

/** The demo's transforms: validate, hash-content, dedupe-by-hash (product), normalise-sequence. */
export const demoTransforms = [
  { use: transform("validate") },
  { use: transform("hash-content") },
  { use: transform("dedupe-by-hash"), with: { scope: "product" } },
  { use: transform("normalise-sequence"), with: { start: 1 } }
]

/** The runner's logs are not what these tests look at. */
export const quiet = Logger.minimumLogLevel(LogLevel.Error)

/** A fresh temp directory. */
export const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "acceo-pipeline-"))

/**
 * A pipeline reading the simulator into `dir/out/acceo-images.{csv,jsonl}`, state in `dir/.effetl`.
 * The file sinks are `overwrite` (one file per run, what the tests read back), since the feed reads
 * incrementally and a file sink would otherwise default to a directory of parts.
 */
export const pipelineIn = (dir: string, sim: { readonly url: string; readonly apiKey: string }, options: {
  readonly with?: Record<string, unknown>
  readonly transforms?: typeof demoTransforms
  readonly everyRecords?: number
} = {}) =>
  Pipeline.make({
    name: "acceo",
    statePath: path.join(dir, ".effetl", "state.json"),
    deadLetterPath: path.join(dir, "out", "dead-letter.jsonl"),
    everyRecords: options.everyRecords ?? 4,
    sources: { acceo: { use: acceo, with: { baseUrl: sim.url, apiKey: sim.apiKey, retry: fastRetry, count: 3, ...options.with } } },
    transforms: options.transforms ?? demoTransforms,
    sinks: {
      images_csv: { use: csv, with: { path: path.join(dir, "out", "acceo-images.csv"), mode: "overwrite" } },
      images_jsonl: { use: jsonl, with: { path: path.join(dir, "out", "acceo-images.jsonl"), mode: "overwrite" } }
    }
  })

/** The JSONL output as objects. */
export const jsonlRows = (dir: string): Array<Record<string, unknown>> => {
  const file = path.join(dir, "out", "acceo-images.jsonl")
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** A minimal RFC 4180 reader (quoted fields, doubled quotes, line breaks inside quotes). */
export const csvRows = (dir: string): Array<Record<string, string>> => {
  const text = fs.readFileSync(path.join(dir, "out", "acceo-images.csv"), "utf8")
  const rows: Array<Array<string>> = []
  let row: Array<string> = []
  let field = ""
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === "\"" && text[i + 1] === "\"") (field += "\"", i++)
      else if (c === "\"") quoted = false
      else field += c
    } else if (c === "\"") quoted = true
    else if (c === ",") (row.push(field), (field = ""))
    else if (c === "\n") (row.push(field), rows.push(row), (row = []), (field = ""))
    else field += c
  }
  const [header, ...body] = rows
  return body.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])))
}

/** What a row says, for comparing outputs. */
export const key = (r: Record<string, unknown>) =>
  JSON.stringify([r.productId, r.imageId, r.position, r.filename, r.contentHash, (r.extra as Record<string, unknown>)?.originalPosition])

