/**
 * Crash safety as a property of the runner: the real CLI is SIGKILLed at every step of the commit
 * protocol (core's `EFFETL_CRASH_AT` points) and at random moments, for three kinds of source (a
 * streaming one, one regrouped by product with disk spill, and an incremental cursor source), each
 * writing to every kind of sink at once (csv, jsonl, parquet, the image store, sqlite, postgres).
 * After a rerun, every output must hold exactly what an uninterrupted run's holds: no row lost,
 * none written twice.
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type AcceoSimulator, startAcceoSimulator } from "@effetl/source-acceo/simulator"
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import Database from "better-sqlite3"
import { parse } from "csv-parse/sync"
import * as fs from "node:fs"
import * as path from "node:path"
import pg from "pg"
import { effetl, tempDir } from "./helpers.js"

const pgUrl = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

let channelSim: ChannelSimulator
let acceoSim: AcceoSimulator
const schemas: Array<string> = []

beforeAll(async () => {
  channelSim = await startChannelSimulator({ products: 30, seed: 11 })
  acceoSim = await startAcceoSimulator({ products: 14, seed: 5 })
})
afterAll(async () => {
  await channelSim.close()
  await acceoSim.close()
  const client = new pg.Client({ connectionString: pgUrl })
  await client.connect()
  for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  await client.end()
})

/** Every sink kind, one of each. `${SCHEMA}` is replaced by the test's own Postgres schema. */
const sinks = `sinks:
  csv:
    use: csv
    with: { path: out/images.csv }
  jsonl:
    use: jsonl
    with: { path: out/images.jsonl }
  parquet:
    use: parquet
    with: { path: out/images.parquet }
  files:
    use: images
    with: { dir: out/store }
  lite:
    use: sqlite
    with: { path: out/images.db }
  warehouse:
    use: postgres
    with:
      url: \${PG_URL}
      schema: \${SCHEMA}
`

const retry = `retry: { maxRetries: 8, baseDelay: "5 millis", maxDelay: "20 millis" }`

/** Kinds of source: how each reads and what it does to batches. */
const kinds = {
  /** Batches go straight to the sinks; checkpoints are page positions. */
  streaming: `version: 1
name: crash
state: { path: state/state.json }
checkpoint: { everyRecords: 15 }
deadLetter: { path: out/dead.jsonl }
sources:
  channel:
    use: channel
    with:
      baseUrl: \${CHANNEL_BASE_URL}
      channelId: \${CHANNEL_ID}
      token: \${CHANNEL_TOKEN}
      mode: detailed
      pageSize: 10
      concurrency: 2
      ${retry}
transforms:
  - use: validate
  - use: hash-content
    with: { keepBytes: true }
${sinks}`,
  /** Product-scoped transforms over a source that is not product-complete: regrouped, spilling to disk. */
  grouped: `version: 1
name: crash
state: { path: state/state.json }
checkpoint: { everyRecords: 15 }
grouping: { maxBuffered: 20 }
deadLetter: { path: out/dead.jsonl }
sources:
  channel:
    use: channel
    with:
      baseUrl: \${CHANNEL_BASE_URL}
      channelId: \${CHANNEL_ID}
      token: \${CHANNEL_TOKEN}
      mode: detailed
      pageSize: 10
      concurrency: 2
      ${retry}
transforms:
  - use: validate
  - use: hash-content
    with: { keepBytes: true }
  - use: dedupe-by-hash
    with: { scope: product }
  - use: normalise-sequence
${sinks}`,
  /** Acceo's change feed: a cursor carried into the next run. */
  cursor: `version: 1
name: crash
state: { path: state/state.json }
checkpoint: { everyRecords: 10 }
deadLetter: { path: out/dead.jsonl }
sources:
  acceo:
    use: acceo
    with:
      baseUrl: \${ACCEO_BASE_URL}
      apiKey: \${ACCEO_API_KEY}
      count: 4
      ${retry}
transforms:
  - use: validate
  - use: hash-content
    with: { keepBytes: true }
${sinks}`
} as const
type Kind = keyof typeof kinds

/** Each test runs several child processes: generous, for a loaded 2-core machine (nothing asserts time). */
const timeout = 1_200_000

let counter = 0
/** A scratch directory with the pipeline file, and the Postgres schema it writes to. */
const setup = (kind: Kind) => {
  const dir = tempDir(`crash-${kind}`)
  fs.writeFileSync(path.join(dir, "p.yaml"), kinds[kind])
  const schema = `effetl_crash_${process.pid}_${++counter}`
  schemas.push(schema)
  return { dir, schema }
}

const env = (schema: string): Record<string, string> => ({
  CHANNEL_BASE_URL: channelSim.url,
  CHANNEL_TOKEN: channelSim.token,
  CHANNEL_ID: String(channelSim.channelId),
  ACCEO_BASE_URL: acceoSim.url,
  ACCEO_API_KEY: acceoSim.apiKey,
  PG_URL: pgUrl,
  SCHEMA: schema
})

// --- reading every output back, independent of how it was laid out (one file or a directory of parts) ----

/** Columns that legitimately differ between two runs. */
const runColumns = new Set(["run_id", "loaded_at"])
const clean = (row: Record<string, unknown>) =>
  JSON.stringify(Object.fromEntries(Object.entries(row).filter(([k]) => !runColumns.has(k)).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : typeof v === "bigint" ? String(v) : v])))

/** The files at `p`: the file itself, or every non-hidden file below the directory. */
const filesAt = (p: string, ext: string): Array<string> => {
  if (!fs.existsSync(p)) return []
  if (fs.statSync(p).isFile()) return [p]
  return (fs.readdirSync(p, { recursive: true }) as Array<string>)
    .filter((f) => f.endsWith(ext) && !f.split(path.sep).some((s) => s.startsWith(".")))
    .map((f) => path.join(p, f))
}

const readCsv = (p: string) => filesAt(p, ".csv").flatMap((f) => parse(fs.readFileSync(f), { columns: true }) as Array<Record<string, unknown>>)
const readJsonl = (p: string) =>
  filesAt(p, ".jsonl").flatMap((f) => fs.readFileSync(f, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>))

const readParquet = async (p: string) => {
  const files = filesAt(p, ".parquet")
  if (files.length === 0) return []
  const db = await DuckDBInstance.create(":memory:")
  const conn = await db.connect()
  const list = files.map((f) => `'${f.replace(/'/g, "''")}'`).join(", ")
  const reader = await conn.runAndReadAll(`SELECT * FROM read_parquet([${list}])`)
  const rows = reader.getRowObjectsJS() as Array<Record<string, unknown>>
  conn.closeSync()
  db.closeSync()
  return rows
}

const readSqlite = (file: string) => {
  if (!fs.existsSync(file)) return []
  const db = new Database(file, { readonly: true })
  try {
    return db.prepare(`SELECT * FROM product_images`).all() as Array<Record<string, unknown>>
  } finally {
    db.close()
  }
}

const readPostgres = async (schema: string) => {
  const client = new pg.Client({ connectionString: pgUrl })
  await client.connect()
  try {
    const exists = await client.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'product_images'`, [schema])
    if (exists.rowCount === 0) return []
    return (await client.query(`SELECT * FROM "${schema}".product_images`)).rows as Array<Record<string, unknown>>
  } finally {
    await client.end()
  }
}

/** Every output as sorted rows (and the image store as its sorted file names). */
const outputs = async (dir: string, schema: string) => {
  const out = path.join(dir, "out")
  const sorted = (rows: Array<Record<string, unknown>>) => rows.map(clean).sort()
  const store = path.join(out, "store")
  return {
    csv: sorted(readCsv(path.join(out, "images.csv"))),
    jsonl: sorted(readJsonl(path.join(out, "images.jsonl"))),
    parquet: sorted(await readParquet(path.join(out, "images.parquet"))),
    storeFiles: filesAt(store, "").filter((f) => !/manifest/.test(path.relative(store, f))).map((f) => path.relative(store, f)).sort(),
    manifest: sorted(readCsv(path.join(store, "manifest.csv")).concat(readCsv(path.join(store, "manifest")))),
    sqlite: sorted(readSqlite(path.join(out, "images.db"))),
    postgres: sorted(await readPostgres(schema))
  }
}
type Outputs = Awaited<ReturnType<typeof outputs>>

const baselines = new Map<Kind, Outputs>()
/** An uninterrupted run's outputs. */
const baseline = async (kind: Kind): Promise<Outputs> => {
  const cached = baselines.get(kind)
  if (cached) return cached
  const { dir, schema } = setup(kind)
  const r = await effetl(["run", "p.yaml"], { cwd: dir, env: env(schema), timeoutMs: 300_000 })
  expect(r.code, r.stderr).toBe(0)
  const result = await outputs(dir, schema)
  baselines.set(kind, result)
  return result
}

/** The key of a row in any output (the columns are snake_case in files and tables, camelCase in JSONL). */
const keyOf = (row: string) => {
  const r = JSON.parse(row) as Record<string, unknown>
  return `${r.source}/${r.product_id ?? r.productId}/${r.image_id ?? r.imageId}`
}

/** Every output holds what the baseline's does, with no row twice and no staging left. */
const checkOutputs = async (kind: Kind, dir: string, schema: string) => {
  const expected = await baseline(kind)
  const got = await outputs(dir, schema)
  for (const [name, rows] of Object.entries(got) as Array<[keyof Outputs, Array<string>]>) {
    if (name === "storeFiles") continue
    // A change feed may send a product again later in the same run (Acceo does): appended file outputs
    // then hold both, as the uninterrupted run's do. Tables merge by key; the full scans send each once.
    if (kind === "cursor" && !["sqlite", "postgres"].includes(name)) continue
    const keys = rows.map(keyOf)
    expect(new Set(keys).size, `${kind} ${name}: no row written twice`).toBe(keys.length)
  }
  expect(got.csv.length, "the baseline is not empty").toBeGreaterThan(0)
  expect(got).toEqual(expected)
  // Staging and spill are gone after a finished run.
  const hidden = (fs.readdirSync(path.join(dir, "out"), { recursive: true }) as Array<string>).filter((f) =>
    f.split(path.sep).some((s) => s.startsWith(".") && s.includes("effetl"))
  )
  expect(hidden).toEqual([])
}

/** Runs the pipeline, SIGKILLed at `crashAt` (or after `killAfterMs`, against a slowed API). */
const killedRun = async (dir: string, schema: string, kill: { readonly crashAt?: string; readonly killAfterMs?: number }) => {
  if (kill.killAfterMs !== undefined) {
    channelSim.setFaults({ kinds: ["latency"], rate: 0.5, latencyMs: 30 })
    acceoSim.setFaults({ kinds: ["latency"], rate: 0.5, latencyMs: 30 })
  }
  try {
    const r = await effetl(["run", "p.yaml"], {
      cwd: dir,
      env: { ...env(schema), ...(kill.crashAt ? { EFFETL_CRASH_AT: kill.crashAt } : {}) },
      timeoutMs: 300_000,
      onSpawn: (child) => {
        if (kill.killAfterMs !== undefined) setTimeout(() => child.kill("SIGKILL"), kill.killAfterMs)
      }
    })
    if (kill.crashAt) expect(r.signal, `expected a SIGKILL at ${kill.crashAt}; stderr: ${r.stderr}`).toBe("SIGKILL")
    return r
  } finally {
    channelSim.setFaults(undefined)
    acceoSim.setFaults(undefined)
  }
}

/** A clean run to the end. */
const finishingRun = async (dir: string, schema: string) => {
  const r = await effetl(["run", "p.yaml"], { cwd: dir, env: env(schema), timeoutMs: 300_000 })
  expect(r.code, r.stderr).toBe(0)
  return r
}

/**
 * Every step of the commit protocol, in the order a run reaches them. Each run of the chain is
 * killed at the next point, and resumes what the one before left: mid-read (a batch written but not
 * committed; the sinks committed but the state not saved; the state saved), at the publish, after
 * the run was recorded finished, and after its clean-up.
 */
const points = [
  "after-batch-write:2",
  "after-sink-commit:2",
  "after-state-save:2",
  "after-finish:1",
  "after-run-finished:1",
  "after-cleanup:1"
]

describe("crash safety: SIGKILL at every commit step and at random moments, every source kind × every sink kind", () => {
  it("the uninterrupted runs are complete", async () => {
    const streaming = await baseline("streaming")
    expect(streaming.csv.length).toBe(channelSim.catalogue.length)
    expect(streaming.sqlite.length).toBe(channelSim.catalogue.length)
    expect(streaming.postgres.length).toBe(channelSim.catalogue.length)
    expect(streaming.parquet.length).toBe(channelSim.catalogue.length)
    const grouped = await baseline("grouped")
    expect(grouped.csv.length).toBe(new Set(channelSim.catalogue.map((i) => `${i.product}/${i.sha256}`)).size)
    const cursor = await baseline("cursor")
    expect(cursor.csv.length).toBeGreaterThan(0)
    expect(cursor.storeFiles.length).toBeGreaterThan(0)
  }, timeout)

  for (const kind of Object.keys(kinds) as Array<Kind>) {
    it(`${kind}: killed at every commit step in turn (${points.length} kills, each run resuming the last), then rerun`, async () => {
      const { dir, schema } = setup(kind)
      for (const crashAt of points) await killedRun(dir, schema, { crashAt })
      await finishingRun(dir, schema)
      await checkOutputs(kind, dir, schema)
    }, timeout)
    it(`${kind}: killed at a random moment, then rerun`, async () => {
      // Where the kill lands depends on the machine's speed: any moment must be safe.
      const { dir, schema } = setup(kind)
      await killedRun(dir, schema, { killAfterMs: 300 + Math.floor(Math.random() * 1500) })
      await finishingRun(dir, schema)
      await checkOutputs(kind, dir, schema)
    }, timeout)
  }

  it("a cursor source killed after its run was recorded finished: the rerun says so, reads nothing new and leaves every output", async () => {
    const { dir, schema } = setup("cursor")
    await killedRun(dir, schema, { crashAt: "after-run-finished:1" })
    const rerun = await finishingRun(dir, schema)
    expect(rerun.stderr).toMatch(/the last run \S+ of pipeline 'crash' finished at/)
    expect(rerun.stderr).toContain("nothing changed since the last run: every output was left as it was")
    await checkOutputs("cursor", dir, schema)
  }, timeout)

  it("a resumed run does not re-read pages committed before the kill", async () => {
    const { dir, schema } = setup("streaming")
    const listPath = `/api/v1/channel/${channelSim.channelId}/product_images/detailed/`
    await killedRun(dir, schema, { crashAt: "after-state-save:2" })
    const state = JSON.parse(fs.readFileSync(path.join(dir, "state/state.json"), "utf8"))
    const saved = state.pipelines.crash.sources.channel.checkpoint
    expect(saved.kind).toBe("position")
    expect(saved.value.page).toBeGreaterThan(1)
    const before = channelSim.requests().byPath[listPath] ?? 0
    const rerun = await finishingRun(dir, schema)
    expect(rerun.stdout).toContain("resumed and finished")
    const lastPage = Math.ceil(channelSim.catalogue.length / 10)
    // exactly the pages after the saved one, each once
    expect((channelSim.requests().byPath[listPath] ?? 0) - before).toBe(lastPage - saved.value.page)
  }, timeout)
})
