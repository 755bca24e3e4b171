/**
 * A vendor's file names are data, never paths: the Acceo simulator's hostile `imagefilename` values
 * (`../../etc/passwd.jpg`, `a/b\c.png`, `CON.jpg`, absolute paths, newlines, NUL-free unicode, ...)
 * go through the real CLI into every file sink and the SQLite sink. Nothing is created outside the
 * working directory, the only files inside it are the outputs the pipeline names, the image store's
 * files are named by their content's sha256, and every hostile name survives as data.
 */
import { describe, expect, it } from "@effect/vitest"
import { hostileNames, startAcceoSimulator } from "@effetl/source-acceo/simulator"
import Database from "better-sqlite3"
import { parse } from "csv-parse/sync"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { effetl, tempDir } from "./helpers.js"

/** Every file below `dir`, as paths relative to it. */
const tree = (dir: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort()

const pipeline = `
version: 1
name: hostile
state: { path: state/state.json }
checkpoint: { everyRecords: 5 }
deadLetter: { path: out/dead-letter.jsonl }
sources:
  acceo:
    use: acceo
    with:
      baseUrl: \${ACCEO_BASE_URL}
      apiKey: \${ACCEO_API_KEY}
transforms:
  - use: validate
  - use: hash-content
  - use: dedupe-by-hash
  - use: normalise-sequence
sinks:
  csv: { use: csv, with: { path: out/images.csv, mode: overwrite } }
  jsonl: { use: jsonl, with: { path: out/changes, mode: append } }
  parquet: { use: parquet, with: { path: out/images.parquet, partitionBy: [source] } }
  files: { use: images, with: { dir: out/store, mode: overwrite } }
  db: { use: sqlite, with: { path: out/images.db } }
`

describe("hostile vendor file names (Acceo simulator) through every sink", () => {
  it("create nothing outside the working directory and survive as data", async () => {
    const sim = await startAcceoSimulator()
    try {
      const served = new Set(sim.catalogue.flatMap((p) => p.images.map((i) => i.imagefilename)))
      const hostile = hostileNames.filter((n) => served.has(n) && n !== "")
      expect(hostile.length).toBeGreaterThanOrEqual(8) // the simulator really serves them
      // The working directory sits three levels down, so an escape by ../ would land in a level we watch.
      const top = tempDir("hostile")
      const work = path.join(top, "a", "b", "work")
      fs.mkdirSync(work, { recursive: true })
      fs.writeFileSync(path.join(work, "pipeline.yaml"), pipeline)
      const r = await effetl(["run", "pipeline.yaml"], { cwd: work, env: { ACCEO_BASE_URL: sim.url, ACCEO_API_KEY: sim.apiKey } })
      expect(r.code, r.stderr).toBe(0)

      // Outside the working directory: nothing at all.
      expect(tree(top).filter((f) => !f.startsWith(path.join("a", "b", "work") + path.sep))).toEqual([])
      // Inside it: only the pipeline file, the state and the outputs the pipeline names.
      const files = tree(work)
      const allowed = [
        /^pipeline\.yaml$/,
        /^state\/state\.json$/,
        /^out\/(images\.csv|dead-letter\.jsonl|images\.db(-wal|-shm)?)$/,
        /^out\/changes\/part-[\w.-]+-\d{5}\.jsonl$/,
        /^out\/images\.parquet\/source=acceo\/part-[\w.-]+\.parquet$/,
        /^out\/store\/manifest\.csv$/,
        /^out\/store\/[0-9a-f]{2}\/[0-9a-f]{64}\.(png|jpg|gif|webp|avif|bin)$/
      ]
      expect(files.filter((f) => !allowed.some((re) => re.test(f)))).toEqual([])
      for (const f of files.filter((x) => x.startsWith("out/store/") && !x.endsWith("manifest.csv"))) {
        const hex = createHash("sha256").update(fs.readFileSync(path.join(work, f))).digest("hex")
        expect(path.basename(f).startsWith(`${hex}.`), f).toBe(true)
      }

      // Every hostile name is still there, as data, in the CSV and the SQLite table, unless dedupe
      // dropped its image for another of the same product with the same bytes.
      const sha = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`
      const servedAs = sim.catalogue.flatMap((p) => p.images.map((i) => ({ product: p.product_id, name: i.imagefilename, hash: sha(i.bytes) })))
      const check = (kept: ReadonlyArray<{ product_id: string; filename: string; content_hash: string }>) => {
        const names = new Set(kept.map((x) => `${x.product_id}/${x.filename}`))
        const contents = new Set(kept.map((x) => `${x.product_id}/${x.content_hash}`))
        let asData = 0
        for (const img of servedAs.filter((i) => hostile.includes(i.name))) {
          if (names.has(`${img.product}/${img.name}`)) asData++
          else expect(contents.has(`${img.product}/${img.hash}`), `${JSON.stringify(img.name)} is neither kept nor a duplicate`).toBe(true)
        }
        expect(asData).toBeGreaterThanOrEqual(8) // most reach the sinks under their own name
      }
      check(parse(fs.readFileSync(path.join(work, "out/images.csv")), { columns: true }) as Array<{ product_id: string; filename: string; content_hash: string }>)
      const db = new Database(path.join(work, "out/images.db"), { readonly: true })
      try {
        check(db.prepare("SELECT product_id, filename, content_hash FROM product_images").all() as Array<{ product_id: string; filename: string; content_hash: string }>)
      } finally {
        db.close()
      }
    } finally {
      await sim.close()
    }
  })
})
