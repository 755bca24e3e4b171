/**
 * `examples/acceo.yaml` runs as it is: loaded as the CLI loads it (YAML, ${ENV} interpolation, every
 * plugin's options), run nightly against the simulator in a scratch working directory. It keeps an
 * up-to-date copy: the first run loads every product, a run with nothing new reads one empty lot and
 * changes nothing, and a run after a change loads exactly that change. The SQLite copy is read with
 * an independent reader (better-sqlite3), the image store by hashing its files.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { builtinTransforms, PipelineFile, Registry, Runner } from "@effetl/core"
import { plugins as fileSinks } from "@effetl/sink-files"
import { plugins as sqlPlugins } from "@effetl/sink-sql"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Simulator from "../src/Simulator.js"
import { acceo } from "../src/Source.js"

const example = path.resolve(import.meta.dirname, "..", "..", "..", "examples", "acceo.yaml")
const registry = Registry.make({
  sources: [acceo],
  transforms: builtinTransforms,
  sinks: [...fileSinks, ...sqlPlugins.sinks],
  stateStores: sqlPlugins.stateStores
})

type Row = { product_id: string; image_id: string; content_hash: string; loaded_at: string }
const sha = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`

/** product id → the set of its images' hashes, as the simulator serves them now. */
const galleries = (sim: Simulator.AcceoSimulator) =>
  new Map(sim.catalogue.filter((p) => p.images.length > 0).map((p) => [p.product_id, new Set(p.images.map((i) => sha(i.bytes)))]))

/** The copy in out/acceo.db, as product id → hashes, and every row. */
const copy = () => {
  const db = new Database("out/acceo.db", { readonly: true })
  try {
    const rows = db.prepare("SELECT product_id, image_id, content_hash, loaded_at FROM product_images ORDER BY 1, 2").all() as Array<Row>
    const byProduct = new Map<string, Set<string>>()
    for (const r of rows) byProduct.set(r.product_id, (byProduct.get(r.product_id) ?? new Set()).add(r.content_hash))
    return { rows, byProduct }
  } finally {
    db.close()
  }
}

/** The image store's files (relative paths), each checked to be named by the sha256 of its bytes. */
const storeFiles = () => {
  const out: Array<string> = []
  for (const d of fs.readdirSync("out/acceo-images")) {
    if (d === "manifest") continue
    for (const f of fs.readdirSync(path.join("out/acceo-images", d))) {
      const hex = sha(fs.readFileSync(path.join("out/acceo-images", d, f))).slice(7)
      expect(`${d}/${f}`).toMatch(new RegExp(`^${hex.slice(0, 2)}/${hex}\\.`))
      out.push(`${d}/${f}`)
    }
  }
  return out.sort()
}

const changeParts = () => fs.readdirSync("out/acceo-changes").filter((f) => f.endsWith(".jsonl")).sort()

describe("examples/acceo.yaml", () => {
  it.live("keeps an up-to-date copy: everything once, then nothing when nothing changed, then exactly the change", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "acceo-example-"))
      const cwd = process.cwd()
      process.chdir(dir)
      try {
        const env = { ACCEO_BASE_URL: sim.url, ACCEO_API_KEY: sim.apiKey }
        const load = () => PipelineFile.load(example, { registry, env })
        const pipeline = yield* load()
        expect(pipeline.sources.map((s) => s.plugin.name)).toEqual(["acceo"])
        expect(pipeline.transforms.map((t) => t.plugin.name)).toEqual(["validate", "hash-content", "dedupe-by-hash", "normalise-sequence"])
        expect(pipeline.sinks.map((s) => s.plugin.name)).toEqual(["sqlite", "images", "jsonl"])

        // The first night: every product, each image once (re-sent products are deduplicated).
        const first = yield* Runner.runNode(pipeline)
        expect(first.status).toBe("finished")
        const afterFirst = copy()
        expect(afterFirst.byProduct).toEqual(galleries(sim))
        expect(new Set(afterFirst.rows.map((r) => `${r.product_id}/${r.image_id}`)).size).toBe(afterFirst.rows.length)
        const files = storeFiles()
        expect(files.length).toBe(new Set(afterFirst.rows.map((r) => r.content_hash)).size)
        const parts = changeParts()
        const logged = parts.flatMap((f) => fs.readFileSync(path.join("out/acceo-changes", f), "utf8").split("\n").filter((l) => l !== ""))
        expect(logged.length).toBe(afterFirst.rows.length)

        // Nothing new: one empty lot, nothing written, the copy as it was.
        const before = sim.requests().total
        const second = yield* Runner.runNode(yield* load())
        expect(second.sources[0]!.counts.read).toBe(0)
        expect(sim.requests().total - before).toBe(1)
        expect(copy().rows).toEqual(afterFirst.rows)
        expect(storeFiles()).toEqual(files)
        expect(changeParts()).toEqual(parts)

        // A product changes (one new image): the next run reads that product only and updates the copy.
        const changed = sim.catalogue.find((p) => p.images.length > 0)!.product_id
        sim.change([changed], { addImage: true })
        const third = yield* Runner.runNode(yield* load())
        expect(third.sources[0]!.counts.written).toBe(galleries(sim).get(changed)!.size)
        const afterThird = copy()
        expect(afterThird.byProduct).toEqual(galleries(sim))
        expect(afterThird.rows.length).toBe(afterFirst.rows.length + 1)
        expect(storeFiles().length).toBe(files.length + 1)
        const newParts = changeParts().filter((f) => !parts.includes(f))
        const changes = newParts.flatMap((f) => fs.readFileSync(path.join("out/acceo-changes", f), "utf8").split("\n").filter((l) => l !== "")).map((l) => JSON.parse(l))
        expect(new Set(changes.map((c) => c.productId))).toEqual(new Set([changed]))

        // A missing variable is a config error naming it.
        const missing = yield* Effect.flip(PipelineFile.load(example, { registry, env: { ACCEO_BASE_URL: sim.url } }))
        expect(missing.message).toContain("ACCEO_API_KEY")
      } finally {
        process.chdir(cwd)
        fs.rmSync(dir, { recursive: true })
      }
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Error))))
})
