/**
 * `examples/acceo.yaml` runs as it is: loaded as the CLI loads it (YAML, ${ENV} interpolation, every
 * plugin's options), run twice against the simulator in a scratch working directory.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { builtinTransforms, PipelineFile, Registry, Runner } from "@effetl/core"
import { csv, jsonl } from "@effetl/sink-files"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Simulator from "../src/Simulator.js"
import { acceo } from "../src/Source.js"

const example = path.resolve(import.meta.dirname, "..", "..", "..", "examples", "acceo.yaml")
const registry = Registry.make({ sources: [acceo], transforms: builtinTransforms, sinks: [csv, jsonl] })

describe("examples/acceo.yaml", () => {
  it.live("runs against the simulator: every product once; the second run reads one empty lot", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "acceo-example-"))
      const cwd = process.cwd()
      process.chdir(dir)
      try {
        const env = { ACCEO_BASE_URL: sim.url, ACCEO_API_KEY: sim.apiKey }
        const pipeline = yield* PipelineFile.load(example, { registry, env })
        expect(pipeline.sources.map((s) => s.plugin.name)).toEqual(["acceo"])
        expect(pipeline.transforms.map((t) => t.plugin.name)).toEqual(["validate", "hash-content", "dedupe-by-hash", "normalise-sequence"])
        const first = yield* Runner.runNode(pipeline)
        expect(first.status).toBe("finished")
        const rows = fs.readFileSync("out/acceo-images.jsonl", "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
        expect(new Set(rows.map((r) => r.productId))).toEqual(new Set(sim.catalogue.filter((p) => p.images.length > 0).map((p) => p.product_id)))
        expect(new Set(rows.map((r) => `${r.productId}/${r.imageId}`)).size).toBe(rows.length)
        expect(rows.every((r) => /^sha256:[0-9a-f]{64}$/.test(r.contentHash))).toBe(true)
        expect(fs.existsSync("out/acceo-images.csv")).toBe(true)
        const before = sim.requests().total
        const second = yield* Runner.runNode(yield* PipelineFile.load(example, { registry, env }))
        expect(second.sources[0]!.counts.read).toBe(0)
        expect(sim.requests().total - before).toBe(1)
        // A missing variable is a config error naming it.
        const missing = yield* Effect.flip(PipelineFile.load(example, { registry, env: { ACCEO_BASE_URL: sim.url } }))
        expect(missing.message).toContain("ACCEO_API_KEY")
      } finally {
        process.chdir(cwd)
        fs.rmSync(dir, { recursive: true })
      }
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Error))))
})
