/**
 * `npm run demo` and `examples/library.ts` run as they are, and their output is right. The demo reads
 * all four simulators into every kind of sink; each sink is read back with an independent reader:
 * - CSV and JSONL: one row per unique image per product of every source, positions 1..n, and sha256
 *   hashes equal to the sha256 of the bytes each simulator serves (computed from its catalogue);
 * - Parquet (partitioned by source): DuckDB reads it with the documented types and the same rows;
 * - the image store: every file is named by the sha256 of its bytes, one file per distinct content;
 * - SQLite: the table holds exactly the deduplicated images (and the pipeline's state).
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { describe, expect, it } from "@effect/vitest"
import { startAcceoSimulator } from "@effetl/source-acceo/simulator"
import { startBigCommerceSimulator } from "@effetl/source-bigcommerce/simulator"
import { startChannelSimulator } from "@effetl/source-channel/simulator"
import { startShoplazzaSimulator } from "@effetl/source-shoplazza/simulator"
import Database from "better-sqlite3"
import { parse } from "csv-parse/sync"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { root, tempDir } from "./helpers.js"

const run = (cmd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, FORCE_COLOR: "0", ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("exit", (code) => resolve({ code, stdout, stderr }))
  })

type Row = Record<string, string>
/** `source/product` → the set of `sha256:` hashes of its images. */
type Expected = Map<string, Set<string>>

const sha = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`
const add = (into: Expected, source: string, product: string, bytes: Uint8Array) => {
  const key = `${source}/${product}`
  into.set(key, (into.get(key) ?? new Set<string>()).add(sha(bytes)))
}

/** What each simulator serves with its default options (the demo's), from its catalogue, independently of the sources. */
const expectedChannel = async (): Promise<Expected> => {
  const expected: Expected = new Map()
  const sim = await startChannelSimulator()
  await sim.close()
  for (const img of sim.catalogue) add(expected, "channel", String(img.product), img.bytes)
  return expected
}

const expectedAll = async (): Promise<Expected> => {
  const expected = await expectedChannel()
  const acceo = await startAcceoSimulator()
  const shoplazza = await startShoplazzaSimulator()
  const bigcommerce = await startBigCommerceSimulator()
  await Promise.all([acceo.close(), shoplazza.close(), bigcommerce.close()])
  for (const p of acceo.catalogue) for (const img of p.images) add(expected, "acceo", p.product_id, img.bytes)
  for (const p of shoplazza.catalogue) for (const img of p.images) add(expected, "shoplazza", p.id, img.bytes)
  for (const img of bigcommerce.catalogue) add(expected, "bigcommerce", String(img.product_id), img.bytes)
  return expected
}

const total = (expected: Expected) => [...expected.values()].reduce((n, s) => n + s.size, 0)

const checkRows = (rows: ReadonlyArray<Row>, expected: Expected) => {
  const seen = new Map<string, Array<Row>>()
  for (const r of rows) {
    const key = `${r.source}/${r.product_id}`
    seen.set(key, [...(seen.get(key) ?? []), r])
  }
  expect([...seen.keys()].sort()).toEqual([...expected.keys()].filter((k) => expected.get(k)!.size > 0).sort())
  for (const [product, productRows] of seen) {
    // one row per unique image (content) of the product
    const hashes = productRows.map((r) => r.content_hash!)
    expect(new Set(hashes).size).toBe(hashes.length)
    expect(new Set(hashes)).toEqual(expected.get(product))
    // positions renumbered 1..n
    expect(productRows.map((r) => Number(r.position)).sort((a, b) => a - b)).toEqual(productRows.map((_, i) => i + 1))
  }
  expect(rows.length).toBe(total(expected))
}

/** A row's identity and content, whatever reader produced it. */
const key = (r: Readonly<Record<string, unknown>>) =>
  `${String(r.source)}|${String(r.product_id)}|${String(r.image_id)}|${String(r.content_hash)}`

describe("the demo and the library example", () => {
  it("npm run demo reads all four APIs into CSV, JSONL, Parquet, the image store and SQLite, and every output is right", async () => {
    const expected = await expectedAll()
    // in a temp dir: the test never touches the checkout's out/
    const demoDir = tempDir("demo")
    const r = await run("npm", ["run", "demo", "--silent"], { EFFETL_DEMO_DIR: demoDir })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/pipeline demo · run \S+ · finished in/)
    for (const source of ["channel", "acceo", "shoplazza", "bigcommerce"]) {
      expect(r.stdout).toMatch(new RegExp(`\\n${source}\\s+${source}\\s+\\d+\\s+\\d+`))
    }
    // Acceo's feed warns on some lots: the summary counts them.
    const lines = r.stdout.split("\n")
    const head = lines.find((l) => l.startsWith("source "))!.trim().split(/\s+/)
    const acceoRow = lines.find((l) => /^acceo\s+acceo\s/.test(l))!.trim().split(/\s+/)
    expect(Number(acceoRow[head.indexOf("warnings")])).toBeGreaterThan(0)
    const out = path.join(demoDir, "out")
    expect(r.stdout).toContain(`The demo's output is in ${out}`)

    const rows = parse(fs.readFileSync(path.join(out, "images.csv")), { columns: true }) as Array<Row>
    checkRows(rows, expected)
    const jsonl = fs.readFileSync(path.join(out, "images.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(jsonl.length).toBe(rows.length)
    expect(jsonl.every((j) => typeof j.extra.originalPosition === "number")).toBe(true)
    const csvKeys = rows.map(key).sort()

    // Parquet, partitioned by source, read back by DuckDB with the documented types.
    const duck = await (await DuckDBInstance.create(":memory:")).connect()
    const glob = `'${path.join(out, "images.parquet").replace(/'/g, "''")}/**/*.parquet'`
    const types = Object.fromEntries(
      (await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${glob}, hive_partitioning = 1)`))
        .getRowObjectsJS()
        .map((c) => [c.column_name, c.column_type])
    )
    expect(types).toMatchObject({
      source: "VARCHAR",
      product_id: "VARCHAR",
      image_id: "VARCHAR",
      position: "INTEGER",
      width: "INTEGER",
      height: "INTEGER",
      content_hash: "VARCHAR",
      created_at: "TIMESTAMP WITH TIME ZONE",
      updated_at: "TIMESTAMP WITH TIME ZONE"
    })
    expect(fs.readdirSync(path.join(out, "images.parquet")).sort()).toEqual(
      ["source=acceo", "source=bigcommerce", "source=channel", "source=shoplazza"]
    )
    const parquetRows = (await duck.runAndReadAll(`SELECT * FROM read_parquet(${glob}, hive_partitioning = 1)`)).getRowObjectsJS()
    expect(parquetRows.map(key).sort()).toEqual(csvKeys)
    // nulls stay nulls: Acceo and BigCommerce V2 give no dimensions, Shoplazza always does
    expect(parquetRows.filter((p) => p.source === "acceo").every((p) => p.width === null)).toBe(true)
    expect(parquetRows.filter((p) => p.source === "shoplazza").every((p) => typeof p.width === "number")).toBe(true)

    // The image store: every file is named by the sha256 of its bytes; one file per distinct content.
    const store = path.join(out, "images")
    const files: Array<string> = []
    for (const dir of fs.readdirSync(store)) {
      const sub = path.join(store, dir)
      if (!fs.statSync(sub).isDirectory()) continue
      for (const f of fs.readdirSync(sub)) {
        const hex = sha(fs.readFileSync(path.join(sub, f))).slice("sha256:".length)
        expect(`${dir}/${f}`).toMatch(new RegExp(`^${hex.slice(0, 2)}/${hex}\\.(png|jpg|gif|webp|avif|bin)$`))
        files.push(`sha256:${hex}`)
      }
    }
    expect(new Set(files)).toEqual(new Set(rows.map((x) => x.content_hash)))
    const manifest = parse(fs.readFileSync(path.join(store, "manifest.csv")), { columns: true }) as Array<Row>
    expect(manifest.map(key).sort()).toEqual(csvKeys)
    expect(manifest.every((m) => m.error === "" && m.path === `${m.content_hash!.slice(7, 9)}/${m.content_hash!.slice(7)}${path.extname(m.path!)}`)).toBe(true)

    // SQLite: the deduplicated images, and the pipeline's state in the same database.
    const db = new Database(path.join(out, "images.db"), { readonly: true })
    try {
      const dbRows = db.prepare("SELECT source, product_id, image_id, content_hash FROM product_images").all() as Array<Row>
      expect(dbRows.length).toBe(total(expected))
      expect(dbRows.map(key).sort()).toEqual(csvKeys)
      const state = db.prepare("SELECT count(*) AS n FROM effetl_state").get() as { n: number }
      expect(state.n).toBeGreaterThan(0)
    } finally {
      db.close()
    }
  })

  it("examples/library.ts builds the channel pipeline in code and writes the same rows", async () => {
    const expected = await expectedChannel()
    const out = tempDir("library")
    const r = await run("npx", ["tsx", "examples/library.ts"], { OUT_DIR: out })
    expect(r.code, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!)
    const rows = parse(fs.readFileSync(path.join(out, "images.csv")), { columns: true }) as Array<Row>
    checkRows(rows, expected)
    expect(summary.sources[0].written).toBe(rows.length)
  })
})
