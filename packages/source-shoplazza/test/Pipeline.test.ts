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

/** The rows of the part files of an append sink's directory, in part order (`parse` reads one part). */
const partsOf = <A>(dir: string, parse: (text: string) => ReadonlyArray<A>): ReadonlyArray<{ readonly file: string; readonly rows: ReadonlyArray<A> }> =>
  fs.readdirSync(dir).filter((f) => f.startsWith("part-")).sort().map((file) => ({ file, rows: parse(fs.readFileSync(path.join(dir, file), "utf8")) }))

const jsonLines = (text: string) => text.trim().split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>)

describe("examples/shoplazza.yaml", () => {
  it.live("runs against the simulator: one row per distinct image per product, hashed, renumbered 1..n; the next run adds only what changed", () =>
    Effect.gen(function*() {
      // The simulator's real bucket (40, leaking 2/s): 12 products are one list page.
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
      const load = PipelineFile.load(example, {
        registry,
        env: { SHOPLAZZA_BASE_URL: sim.url, SHOPLAZZA_TOKEN: sim.accessToken, SHOPLAZZA_SRC_SCHEME: "http" }
      })
      yield* Runner.runNode(yield* load)

      // Expected from the catalogue: per product, the first image of each distinct content, renumbered.
      const want = (products: ReadonlyArray<Simulator.CatalogueProduct>) =>
        products.flatMap((p) => {
          const seen = new Set<string>()
          return p.images.filter((i) => !seen.has(i.sha256) && seen.add(i.sha256) !== undefined)
            .map((i, k) => ({ productId: p.id, imageId: i.id, position: k + 1, contentHash: `sha256:${i.sha256}`, url: `http:${i.src}` }))
        })
      const pick = (r: Record<string, unknown>) => ({ productId: r.productId, imageId: r.imageId, position: r.position, contentHash: r.contentHash, url: r.url })
      const first = partsOf(path.join(dir, "out/shoplazza-jsonl"), jsonLines)
      expect(want(sim.catalogue).length).toBeLessThan(sim.catalogue.reduce((n, p) => n + p.images.length, 0))
      expect(first.flatMap((p) => p.rows).map(pick)).toEqual(want(sim.catalogue))
      const csvParts = partsOf(path.join(dir, "out/shoplazza-csv"), (text) => text.split("\n"))
      expect(csvParts.length).toBeGreaterThan(0)
      for (const part of csvParts) {
        expect(part.rows[0]).toBe("source,product_id,image_id,position,url,filename,width,height,content_hash,alt,created_at,updated_at")
      }
      const csv = csvParts.map((p) => p.rows.join("\n")).join("\n")
      for (const row of want(sim.catalogue)) expect(csv).toContain(`,${row.imageId},`)
      // Listed with their images: one list page and the count, no request per product.
      const api = () => Object.fromEntries(Object.entries(sim.requests().byPath).filter(([p]) => p.startsWith("/openapi/")))
      expect(api()).toEqual({ "/openapi/2022-01/products": 1, "/openapi/2022-01/products/count": 1 })
      expect(sim.rateLimited()).toBe(0)

      // The next run reads the changed products only, and adds them in a part of their own.
      const touched = sim.touchProducts(3)
      yield* Runner.runNode(yield* load)
      const second = partsOf(path.join(dir, "out/shoplazza-jsonl"), jsonLines).filter((p) => !first.some((f) => f.file === p.file))
      expect(second.flatMap((p) => p.rows).map(pick)).toEqual(want(sim.catalogue.filter((p) => touched.some((t) => t.id === p.id))))
    }).pipe(Effect.scoped))
})
