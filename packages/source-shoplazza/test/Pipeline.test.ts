/**
 * `examples/shoplazza.yaml` as it is, run by core's runner against the simulator: the example
 * never rots, and the source works end to end with the demo transforms and the file sinks.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { builtinTransforms, PipelineFile, Registry, Runner } from "@effetl/core"
import { plugins as fileSinks } from "@effetl/sink-files"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Simulator from "../src/Simulator.js"
import { shoplazza } from "../src/Source.js"

const example = path.resolve(import.meta.dirname, "../../../examples/shoplazza.yaml")
const registry = Registry.make({ sources: [shoplazza], transforms: builtinTransforms, sinks: fileSinks })

describe("examples/shoplazza.yaml", () => {
  it.live("runs against the simulator: one row per distinct image per product, hashed, renumbered 1..n", () =>
    Effect.gen(function*() {
      // The simulator's real bucket (40, leaking 2/s): 12 products stay inside the example's burst.
      const sim = yield* Simulator.make({ products: 12 })
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoplazza-example-"))
      const cwd = process.cwd()
      process.chdir(dir)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          process.chdir(cwd)
          fs.rmSync(dir, { recursive: true, force: true })
        })
      )
      const pipeline = yield* PipelineFile.load(example, {
        registry,
        env: { SHOPLAZZA_BASE_URL: sim.url, SHOPLAZZA_TOKEN: sim.accessToken, SHOPLAZZA_SRC_SCHEME: "http" }
      })
      yield* Runner.runNode(pipeline)

      const rows = fs.readFileSync(path.join(dir, "out/shoplazza-images.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
      // Expected from the catalogue: per product, the first image of each distinct content, renumbered.
      const want = sim.catalogue.flatMap((p) => {
        const seen = new Set<string>()
        return p.images.filter((i) => !seen.has(i.sha256) && seen.add(i.sha256) !== undefined)
          .map((i, k) => ({ productId: p.id, imageId: i.id, position: k + 1, contentHash: `sha256:${i.sha256}`, url: `http:${i.src}` }))
      })
      expect(want.length).toBeLessThan(sim.catalogue.reduce((n, p) => n + p.images.length, 0))
      expect(rows.map((r) => ({ productId: r.productId, imageId: r.imageId, position: r.position, contentHash: r.contentHash, url: r.url })))
        .toEqual(want)
      const csv = fs.readFileSync(path.join(dir, "out/shoplazza-images.csv"), "utf8")
      expect(csv.split("\n")[0]).toBe("source,product_id,image_id,position,url,filename,width,height,content_hash,alt,created_at,updated_at")
      for (const row of want) expect(csv).toContain(`,${row.imageId},`)
      expect(sim.rateLimited()).toBe(0)
    }).pipe(Effect.scoped))
})
