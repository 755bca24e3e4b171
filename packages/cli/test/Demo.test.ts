/**
 * `npm run demo` and `examples/library.ts` run as they are, and their output is right: one row per
 * unique image per product, positions 1..n, and sha256 hashes equal to the sha256 of the bytes served.
 */
import { describe, expect, it } from "@effect/vitest"
import { startChannelSimulator } from "@effetl/source-channel/simulator"
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

/** What the demo must produce, computed independently from the simulator's catalogue (same default seed). */
const expectedRows = async () => {
  const sim = await startChannelSimulator()
  await sim.close()
  const byProduct = new Map<string, Set<string>>()
  for (const img of sim.catalogue) {
    const sha = `sha256:${createHash("sha256").update(img.bytes).digest("hex")}`
    const set = byProduct.get(String(img.product)) ?? new Set<string>()
    set.add(sha)
    byProduct.set(String(img.product), set)
  }
  return byProduct
}

const checkOutput = (rows: ReadonlyArray<Row>, expected: Map<string, Set<string>>) => {
  const seen = new Map<string, Array<Row>>()
  for (const r of rows) seen.set(r.product_id!, [...(seen.get(r.product_id!) ?? []), r])
  expect([...seen.keys()].sort()).toEqual([...expected.keys()].sort())
  for (const [product, productRows] of seen) {
    // one row per unique image (content) of the product
    const hashes = productRows.map((r) => r.content_hash!)
    expect(new Set(hashes).size).toBe(hashes.length)
    expect(new Set(hashes)).toEqual(expected.get(product))
    // positions renumbered 1..n
    expect(productRows.map((r) => Number(r.position)).sort((a, b) => a - b)).toEqual(productRows.map((_, i) => i + 1))
  }
  expect(rows.length).toBe([...expected.values()].reduce((n, s) => n + s.size, 0))
}

describe("the demo and the library example", () => {
  it("npm run demo writes out/images.csv with one row per unique image per product, positions 1..n, true sha256", async () => {
    const expected = await expectedRows()
    const r = await run("npm", ["run", "demo", "--silent"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/pipeline demo · run \S+ · finished in/)
    expect(r.stdout).toMatch(/channel\s+channel\s+\d+\s+\d+/)
    const rows = parse(fs.readFileSync(path.join(root, "out/images.csv")), { columns: true }) as Array<Row>
    checkOutput(rows, expected)
    const jsonl = fs.readFileSync(path.join(root, "out/images.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(jsonl.length).toBe(rows.length)
    expect(jsonl.every((j) => typeof j.extra.originalPosition === "number")).toBe(true)
  })

  it("examples/library.ts builds the same pipeline in code and writes the same rows", async () => {
    const expected = await expectedRows()
    const out = tempDir("library")
    const r = await run("npx", ["tsx", "examples/library.ts"], { OUT_DIR: out })
    expect(r.code, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!)
    const rows = parse(fs.readFileSync(path.join(out, "images.csv")), { columns: true }) as Array<Row>
    checkOutput(rows, expected)
    expect(summary.sources[0].written).toBe(rows.length)
  })
})
