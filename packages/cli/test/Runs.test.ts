/**
 * Problems made visible and the run history, as a user sees them, against the channel simulator
 * injecting 5xx and 429 faults: every retry and rate-limit wait is one warning line (never the
 * token) and is counted in the progress lines and the summary; records a user's transform drops
 * are in the summary per reason; `effetl runs` lists the past runs and shows one, from the JSON
 * file, SQLite and Postgres state stores, with a bounded history, failed and killed runs too.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import pg from "pg"
import { cli, effetl, root, tempDir } from "./helpers.js"

const pgUrl = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const schemas: Array<string> = []

let sim: ChannelSimulator
beforeAll(async () => {
  // Half the requests fail (a 5xx or a 429 with Retry-After: 0), never more than twice in a row.
  sim = await startChannelSimulator({ products: 12, seed: 5, faults: { kinds: ["5xx", "429"], rate: 0.5, seed: 9, retryAfterSeconds: 0 } })
})
afterAll(async () => {
  await sim.close()
  if (schemas.length === 0) return
  const client = new pg.Client({ connectionString: pgUrl })
  await client.connect()
  for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  await client.end()
})

/** A user's transform: keeps the images of products with an even id, and says why it drops the others. */
const evenOnly = `import { Transform } from ${JSON.stringify(path.join(root, "packages/core/dist/index.js"))}
import * as Effect from ${JSON.stringify(path.join(root, "node_modules/effect/dist/esm/Effect.js"))}
import * as Schema from ${JSON.stringify(path.join(root, "node_modules/effect/dist/esm/Schema.js"))}
export default Transform.define({
  name: "even-only",
  description: "Keeps the images of products with an even id.",
  config: Schema.Struct({}),
  productScoped: false,
  make: () => Effect.succeed({ apply: (batch) => Transform.keep(batch, (r) => Number(r.productId) % 2 === 0, "odd product id") })
})
`

const pipeline = (state: string) => `version: 1
name: shop
${state}
checkpoint: { everyRecords: 10 }
sources:
  channel:
    use: channel
    with:
      baseUrl: \${CHANNEL_BASE_URL}
      channelId: \${CHANNEL_ID}
      token: \${CHANNEL_TOKEN}
      pageSize: 10
      retry: { maxRetries: 8, baseDelay: "5 millis", maxDelay: "20 millis" }
transforms:
  - use: validate
  - use: ./even-only.mjs
sinks:
  images_csv:
    use: csv
    with: { path: out/images.csv }
`

const setup = (state = "state: { path: state/state.json }") => {
  const dir = tempDir("runs")
  fs.writeFileSync(path.join(dir, "pipeline.yaml"), pipeline(state))
  fs.writeFileSync(path.join(dir, "even-only.mjs"), evenOnly)
  return dir
}

const env = (overrides: Record<string, string> = {}) => ({
  CHANNEL_BASE_URL: sim.url,
  CHANNEL_TOKEN: sim.token,
  CHANNEL_ID: String(sim.channelId),
  PG_URL: pgUrl,
  ...overrides
})

/** The table's rows under its header line (`source ...` or `run ...`), as objects by column name. */
const table = (stdout: string, first: string) => {
  const lines = stdout.split("\n")
  const at = lines.findIndex((l) => l.startsWith(`${first} `))
  const head = lines[at]!.trim().split(/\s{2,}/)
  const rows: Array<Record<string, string>> = []
  for (const l of lines.slice(at + 1)) {
    if (l.trim() === "") break
    // Columns are two spaces apart; an empty error cell leaves the row shorter.
    const cells = l.trim().split(/\s{2,}/)
    rows.push(Object.fromEntries(head.map((h, i) => [h, cells[i] ?? ""])))
  }
  return rows
}

interface RunsJson {
  readonly pipeline: string
  readonly history: number
  readonly runs: ReadonlyArray<{
    readonly id: string
    readonly status: string
    readonly startedAt: string
    readonly seconds?: number
    readonly error?: string
    readonly sources: Record<string, { counts: Record<string, number>; dropped?: Record<string, number> }>
  }>
}

const runsJson = async (dir: string, extra: ReadonlyArray<string> = []) => {
  const r = await cli(["runs", "pipeline.yaml", "--log-format", "json", ...extra], { cwd: dir, env: env() })
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as RunsJson
}

describe("a run with retries", () => {
  it("logs each retry and rate-limit wait as one warning line without the token, counts them live and in the summary, and shows what a transform dropped", async () => {
    const dir = setup()
    const r = await cli(["run", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(r.code, r.stderr).toBe(0)
    const warnings = r.stderr.split("\n").filter((l) => / WARN /.test(l))
    const retries = warnings.filter((l) => /failed \((HTTP 5\d\d|HTTP 429)\).*; retry \d+ of 8 in \d+ms/.test(l))
    expect(retries.length).toBeGreaterThan(0)
    expect(r.stderr).not.toContain(sim.token)
    // The summary counts them, and accounts for every record read.
    const [row] = table(r.stdout, "source")
    expect(Number(row!.retries)).toBe(retries.length)
    expect(Number(row!.waits)).toBe(retries.filter((l) => l.includes("HTTP 429")).length)
    expect(Number(row!.waits)).toBeGreaterThan(0)
    expect(Number(row!.dropped)).toBeGreaterThan(0)
    expect(Number(row!.read)).toBe(Number(row!.written) + Number(row!.invalid) + Number(row!.deduped) + Number(row!.dropped))
    expect(r.stdout).toMatch(new RegExp(`^dropped by transforms:\\n  channel  ${row!.dropped}  odd product id$`, "m"))
    // The progress lines said them as they went.
    expect(r.stderr).toMatch(new RegExp(`source done: ${row!.read}/${row!.read} records read · ${row!.retries} retries · ${row!.waits} rate-limit waits? · ${row!.dropped} dropped`))
    // and the run history keeps them
    const history = await runsJson(dir)
    expect(history.runs).toHaveLength(1)
    expect(history.runs[0]!.sources.channel).toEqual({
      counts: expect.objectContaining({ retries: Number(row!.retries), waits: Number(row!.waits), dropped: Number(row!.dropped) }),
      dropped: { "odd product id": Number(row!.dropped) }
    })
  })
})

describe("effetl runs", () => {
  it("JSON state file: lists the runs newest first and shows one; a failed run with its error; the history bounded by state.history", async () => {
    const dir = setup("state: { path: state/state.json, history: 2 }")
    const none = await cli(["runs", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(none.code, none.stderr).toBe(0)
    expect(none.stdout).toContain("no runs yet")
    const first = await cli(["run", "pipeline.yaml", "--log-format", "json"], { cwd: dir, env: env() })
    expect(first.code, first.stderr).toBe(0)
    const firstId = (JSON.parse(first.stdout.trim().split("\n").at(-1)!) as { summary: { runId: string } }).summary.runId
    const refused = await cli(["run", "pipeline.yaml"], { cwd: dir, env: env({ CHANNEL_TOKEN: "wrong-token" }) })
    expect(refused.code).toBe(1)

    const listed = await cli(["runs", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).toMatch(/^pipeline shop · 2 runs \(the history keeps the last 2\) · state .*state\.json$/m)
    const rows = table(listed.stdout, "run")
    expect(rows.map((x) => x.status)).toEqual(["failed", "finished"])
    expect(rows[1]).toMatchObject({ run: firstId, status: "finished" })
    expect(rows[1]!.started).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/)
    expect(rows[1]!.duration).toMatch(/^\d+\.\ds$/)
    expect(Number(rows[1]!.read)).toBeGreaterThan(0)
    expect(rows[0]!.error).toMatch(/refused|401|403|token/i)
    expect(listed.stdout).not.toContain("wrong-token")

    // One run in detail, by its id or the start of it.
    const one = await cli(["runs", "pipeline.yaml", firstId.slice(0, 20)], { cwd: dir, env: env() })
    expect(one.code, one.stderr).toBe(0)
    expect(one.stdout).toMatch(new RegExp(`^run ${firstId} of pipeline shop`))
    expect(one.stdout).toMatch(/^status {4}finished$/m)
    expect(table(one.stdout, "source")[0]).toMatchObject({ source: "channel", read: rows[1]!.read })
    expect(one.stdout).toMatch(/^  channel  \d+  odd product id$/m)
    const missing = await cli(["runs", "pipeline.yaml", "nosuch"], { cwd: dir, env: env() })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain(`pipeline 'shop' has no run 'nosuch' in its history (the newest: `)

    // A third run (it resumes the failed one, which then finishes): still at most 2 runs, the newest.
    const third = await cli(["run", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(third.code, third.stderr).toBe(0)
    const fourth = await cli(["run", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(fourth.code, fourth.stderr).toBe(0)
    const history = await runsJson(dir)
    expect(history.history).toBe(2)
    expect(history.runs.map((x) => x.status)).toEqual(["finished", "finished"])
    expect(history.runs.map((x) => x.id)).not.toContain(firstId)
    const detail = await runsJson(dir, [history.runs[1]!.id])
    expect(detail).toMatchObject({ pipeline: "shop", run: { id: history.runs[1]!.id, status: "finished", attempts: 2 } })
  })

  it("a killed run shows as interrupted", async () => {
    const dir = setup()
    const killed = await effetl(["run", "pipeline.yaml"], { cwd: dir, env: { ...env(), EFFETL_CRASH_AT: "after-state-save:1" } })
    expect(killed.signal).toBe("SIGKILL")
    const rows = table((await cli(["runs", "pipeline.yaml"], { cwd: dir, env: env() })).stdout, "run")
    expect(rows).toHaveLength(1)
    expect(rows[0]!.status).toBe("interrupted")
    // Resumed to its end, the same run is finished.
    const resumed = await cli(["run", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(resumed.code, resumed.stderr).toBe(0)
    const after = await runsJson(dir)
    expect(after.runs.map((x) => [x.id, x.status])).toEqual([[rows[0]!.run, "finished"]])
  })

  it("a run stopped by Ctrl-C is interrupted, with what it did so far; resumed to its end, the same run is finished after 2 attempts", async () => {
    const slow = await startChannelSimulator({ products: 30, seed: 5, faults: { kinds: ["latency"], rate: 1, latencyMs: 60 } })
    try {
      const dir = setup()
      const slowEnv = { ...env(), CHANNEL_BASE_URL: slow.url, CHANNEL_TOKEN: slow.token, CHANNEL_ID: String(slow.channelId) }
      let sent = false
      const stopped = await effetl(["run", "pipeline.yaml"], {
        cwd: dir,
        env: slowEnv,
        onSpawn: (child) => {
          let err = ""
          child.stderr!.on("data", (d) => {
            err += d
            if (!sent && err.includes("committed:")) {
              sent = true
              child.kill("SIGINT")
            }
          })
        }
      })
      expect(stopped.code, stopped.stderr).toBe(130)
      const r = await cli(["runs", "pipeline.yaml", "--log-format", "json"], { cwd: dir, env: slowEnv })
      const [run] = (JSON.parse(r.stdout) as RunsJson).runs
      expect(run).toMatchObject({ status: "interrupted", attempts: 1 })
      expect(run!.seconds).toBeGreaterThan(0)
      expect(run!.sources.channel!.counts.read).toBeGreaterThan(0)
      const resumed = await cli(["run", "pipeline.yaml"], { cwd: dir, env: slowEnv })
      expect(resumed.code, resumed.stderr).toBe(0)
      const after = JSON.parse((await cli(["runs", "pipeline.yaml", "--log-format", "json"], { cwd: dir, env: slowEnv })).stdout) as RunsJson
      expect(after.runs).toHaveLength(1)
      expect(after.runs[0]).toMatchObject({ id: run!.id, status: "finished", attempts: 2 })
    } finally {
      await slow.close()
    }
  })

  it("a file with a cluster section whose database cannot be read: one warning (no password), the local runs still listed", async () => {
    const dir = setup()
    fs.appendFileSync(path.join(dir, "pipeline.yaml"), "cluster:\n  postgres: ${HIST_PG}\n")
    const down = { HIST_PG: "postgres://postgres:s3cret-pass@127.0.0.1:1/test" }
    const first = await cli(["run", "pipeline.yaml"], { cwd: dir, env: env(down) })
    expect(first.code, first.stderr).toBe(0)
    // The variable unset: the cluster section cannot be read, the state can.
    const unset = await cli(["runs", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(unset.code, unset.stderr).toBe(0)
    expect(unset.stderr).toMatch(/^warning: distributed runs not listed: .*environment variable HIST_PG is not set/m)
    expect(table(unset.stdout, "run").map((r) => r.status)).toEqual(["finished"])
    // The database down: named without its password.
    const refused = await cli(["runs", "pipeline.yaml"], { cwd: dir, env: env(down) })
    expect(refused.code, refused.stderr).toBe(0)
    expect(refused.stderr).toMatch(/^warning: distributed runs not listed: cluster database postgres:\/\/127\.0\.0\.1:1\/test: cannot read the distributed runs/m)
    expect(refused.stderr + refused.stdout).not.toContain("s3cret-pass")
    expect(table(refused.stdout, "run").map((r) => r.status)).toEqual(["finished"])
    // The database up, no distributed run yet: none listed, and where they would be is said.
    const none = await cli(["runs", "pipeline.yaml"], { cwd: dir, env: env({ HIST_PG: pgUrl }) })
    expect(none.code, none.stderr).toBe(0)
    expect(none.stderr).toBe("")
    expect(none.stdout).toMatch(/^pipeline shop · 1 run .* · distributed runs from postgres:\/\/\S+, table effetl_shop_runs$/m)
  })

  it("SQLite state store: the same history, kept in its table", async () => {
    const dir = setup("state: { use: sqlite, with: { path: state/state.db }, history: 3 }")
    for (let i = 0; i < 4; i++) {
      const r = await cli(["run", "pipeline.yaml", ...(i === 0 ? [] : ["--full-refresh"])], { cwd: dir, env: env() })
      expect(r.code, r.stderr).toBe(0)
    }
    expect(fs.existsSync(path.join(dir, "state/state.db"))).toBe(true)
    const history = await runsJson(dir)
    expect(history.runs.map((x) => x.status)).toEqual(["finished", "finished", "finished"])
    expect(history.runs[0]!.sources.channel!.dropped!["odd product id"]).toBeGreaterThan(0)
    const listed = await cli(["runs", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(listed.stdout).toMatch(/^pipeline shop · 3 runs \(the history keeps the last 3\) · state .*state\.db \(table effetl_state\)$/m)
  })

  it("Postgres state store: the same history, kept in its table", async () => {
    const schema = `effetl_runs_${crypto.randomBytes(4).toString("hex")}`
    schemas.push(schema)
    const dir = setup(`state: { use: postgres, with: { url: "\${PG_URL}", schema: ${schema} } }`)
    const first = await cli(["run", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(first.code, first.stderr).toBe(0)
    const failed = await cli(["run", "pipeline.yaml", "--full-refresh"], { cwd: dir, env: env({ CHANNEL_TOKEN: "wrong-token" }) })
    expect(failed.code).toBe(1)
    const history = await runsJson(dir)
    expect(history.history).toBe(50)
    expect(history.runs.map((x) => x.status)).toEqual(["failed", "finished"])
    expect(history.runs[1]!.sources.channel!.counts.read).toBeGreaterThan(0)
    const one = await cli(["runs", "pipeline.yaml", history.runs[0]!.id], { cwd: dir, env: env() })
    expect(one.code, one.stderr).toBe(0)
    expect(one.stdout).toMatch(/^status {4}failed$/m)
    expect(one.stdout).toMatch(/^error {5}\S/m)
    // The history is in the state row of the table.
    const client = new pg.Client({ connectionString: pgUrl })
    await client.connect()
    try {
      const { rows } = await client.query(`SELECT state FROM "${schema}".effetl_state WHERE pipeline = 'shop'`)
      expect((rows[0]!.state as { history: Array<unknown> }).history).toHaveLength(2)
    } finally {
      await client.end()
    }
  })
})
