/**
 * examples/bigcommerce.yaml runs as it is: loaded from the file (env interpolation, plugin lookup,
 * every option decoded), run by core's runner against the simulator, into the CSV and JSONL sinks.
 * The expected rows are computed from the simulator's catalogue, not from the source.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { builtinTransforms, PipelineFile, Registry, Runner } from "@effetl/core"
import { csv, jsonl } from "@effetl/sink-files"
import { describe, expect, it } from "@effect/vitest"
import { parse } from "csv-parse/sync"
import * as Effect from "effect/Effect"
import * as Simulator from "../src/Simulator.js"
import { bigcommerce } from "../src/Source.js"

const example = path.join(import.meta.dirname, "../../../examples/bigcommerce.yaml")
const registry = Registry.make({ sources: [bigcommerce], transforms: builtinTransforms, sinks: [csv, jsonl] })

/** Per product (in id order): images by sort_order then id, the first of each content kept, renumbered 1..n. */
const expectedRows = (sim: Simulator.BigCommerceSimulator, deleted: ReadonlySet<number>) =>
  sim.products.filter((p) => !deleted.has(p.id)).flatMap((p) => {
    const images = sim.catalogue.filter((i) => i.product_id === p.id).sort((a, b) => a.sort_order - b.sort_order || a.id - b.id)
    const seen = new Set<string>()
    return images
      .filter((i) => (seen.has(i.sha256) ? false : (seen.add(i.sha256), true)))
      .map((i, n) => [String(p.id), String(i.id), String(n + 1), `sha256:${i.sha256}`, i.zoom_url, i.image_file, new Date(i.created).toISOString()])
  })

describe("examples/bigcommerce.yaml", () => {
  it.live("runs against the simulator: every product's images, hashed, deduplicated per product and renumbered, to CSV and JSONL", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 25 })
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effetl-bc-example-"))
      const cwd = process.cwd()
      process.chdir(dir) // the pipeline's paths are relative to where it runs
      yield* Effect.addFinalizer(() => Effect.sync(() => process.chdir(cwd)))
      const pipeline = yield* PipelineFile.load(example, {
        registry,
        env: { BIGCOMMERCE_BASE_URL: sim.url, BIGCOMMERCE_STORE_HASH: sim.storeHash, BIGCOMMERCE_TOKEN: sim.accessToken }
      })
      const summary = yield* Runner.runNode(pipeline)
      const counts = summary.sources[0]!.counts
      expect(counts.read).toBe(sim.catalogue.length)
      expect(counts.invalid).toBe(0)
      const want = expectedRows(sim, new Set())
      expect(counts.deduped).toBe(sim.catalogue.length - want.length)
      expect(counts.deduped).toBeGreaterThan(0)

      const rows = parse(fs.readFileSync(path.join(dir, "out/bigcommerce-images.csv")), { columns: true }) as Array<Record<string, string>>
      expect(rows.map((r) => [r.product_id, r.image_id, r.position, r.content_hash, r.url, r.filename, r.created_at])).toEqual(want)
      expect(rows.every((r) => r.source === "bigcommerce" && r.updated_at === "")).toBe(true)
      const lines = fs.readFileSync(path.join(dir, "out/bigcommerce-images.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(lines.map((l) => [l.productId, l.imageId])).toEqual(want.map((w) => [w[0], w[1]]))
      // normalise-sequence keeps the vendor's sort_order in extra.originalPosition, next to the source's own extras.
      const byId = new Map(sim.catalogue.map((i) => [String(i.id), i]))
      for (const l of lines) {
        const extra = l.extra as Record<string, unknown>
        expect(extra.originalPosition).toBe(byId.get(l.imageId as string)!.sort_order)
        expect(extra.isThumbnail).toBe(byId.get(l.imageId as string)!.is_thumbnail)
      }
      // The hashes are of the bytes the URLs serve.
      const first = rows[0]!
      const bytes = yield* Effect.promise(() => fetch(first.url!).then((r) => r.arrayBuffer()))
      expect(`sha256:${createHash("sha256").update(new Uint8Array(bytes)).digest("hex")}`).toBe(first.content_hash)
      // Image downloads are outside the API quota: only the sync's own requests count.
      expect(sim.requests().byPath[`/stores/${sim.storeHash}/v2/products`]).toBe(1)
    }).pipe(Effect.scoped))

  it.live("through the runner, the next runs are incremental: nothing changed, one list request; 5 products changed, exactly their images; --full-refresh, all", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 25 })
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effetl-bc-example-"))
      const cwd = process.cwd()
      process.chdir(dir)
      yield* Effect.addFinalizer(() => Effect.sync(() => process.chdir(cwd)))
      const pipeline = yield* PipelineFile.load(example, {
        registry,
        env: { BIGCOMMERCE_BASE_URL: sim.url, BIGCOMMERCE_STORE_HASH: sim.storeHash, BIGCOMMERCE_TOKEN: sim.accessToken }
      })
      const read = (summary: { readonly sources: ReadonlyArray<{ readonly counts: { readonly read: number } }> }) => summary.sources[0]!.counts.read
      expect(read(yield* Runner.runNode(pipeline))).toBe(sim.catalogue.length)

      let seen = sim.requestLog().length
      expect(read(yield* Runner.runNode(pipeline))).toBe(0)
      const quiet = sim.requestLog().slice(seen)
      expect(quiet.length).toBe(1)
      expect(new URL(quiet[0]!, "http://x").searchParams.get("min_date_modified")).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/)

      const touched = sim.touchProducts(5)
      seen = sim.requestLog().length
      const images = sim.catalogue.filter((i) => touched.includes(i.product_id)).length
      expect(read(yield* Runner.runNode(pipeline))).toBe(images)
      expect(sim.requestLog().slice(seen).filter((l) => l.includes("/images")).length).toBe(5)

      expect(read(yield* Runner.runNode(pipeline, { fullRefresh: true }))).toBe(sim.catalogue.length)
    }).pipe(Effect.scoped), 120_000)
})
