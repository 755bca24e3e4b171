/**
 * Crash safety: SIGKILL the real CLI mid-run, at chosen points of the commit protocol and at random
 * moments, then rerun. The final CSV must equal an uninterrupted run's: no row lost, none duplicated.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import { parse } from "csv-parse/sync"
import * as fs from "node:fs"
import * as path from "node:path"
import { effetl, tempDir } from "./helpers.js"

let sim: ChannelSimulator

beforeAll(async () => {
  sim = await startChannelSimulator({ products: 60, seed: 11 })
})
afterAll(async () => {
  await sim.close()
})

/** A pipeline streaming straight to the sinks (batches commit mid-run with data in them). */
const streaming = `version: 1
name: crash-stream
state: { path: state/state.json }
checkpoint: { everyRecords: 20 }
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
      retry: { maxRetries: 8, baseDelay: "5 millis", maxDelay: "20 millis" }
transforms:
  - use: validate
  - use: hash-content
sinks:
  csv:
    use: csv
    with: { path: out/images.csv }
  jsonl:
    use: jsonl
    with: { path: out/images.jsonl }
`

/** The demo's transforms, with product grouping spilling to disk and checkpoints saved mid-read. */
const grouped = streaming
  .replace("name: crash-stream", "name: crash-grouped\ngrouping: { maxBuffered: 25 }")
  .replace(
    "  - use: hash-content\n",
    "  - use: hash-content\n  - use: dedupe-by-hash\n    with: { scope: product }\n  - use: normalise-sequence\n"
  )

const env = () => ({ CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token, CHANNEL_ID: String(sim.channelId) })

const setup = (yaml: string) => {
  const dir = tempDir("crash")
  fs.writeFileSync(path.join(dir, "p.yaml"), yaml)
  return dir
}

const csvRows = (dir: string): Array<Record<string, string>> =>
  parse(fs.readFileSync(path.join(dir, "out/images.csv")), { columns: true }) as Array<Record<string, string>>

const baselines = new Map<string, { csv: string; jsonl: string; rows: number }>()
const baseline = async (yaml: string) => {
  const cached = baselines.get(yaml)
  if (cached) return cached
  const dir = setup(yaml)
  const r = await effetl(["run", "p.yaml"], { cwd: dir, env: env() })
  expect(r.code, r.stderr).toBe(0)
  const result = {
    csv: fs.readFileSync(path.join(dir, "out/images.csv"), "utf8"),
    jsonl: fs.readFileSync(path.join(dir, "out/images.jsonl"), "utf8"),
    rows: csvRows(dir).length
  }
  baselines.set(yaml, result)
  return result
}

/** Kills a run at `crashAt` (or after `killAfterMs`), checks it died, reruns, compares with the baseline. */
const crashAndResume = async (yaml: string, kill: { crashAt?: string; killAfterMs?: number; slow?: boolean }) => {
  const expected = await baseline(yaml)
  const dir = setup(yaml)
  // A previous good output exists: a killed run must leave it intact until its own run finishes.
  fs.mkdirSync(path.join(dir, "out"), { recursive: true })
  fs.writeFileSync(path.join(dir, "out/images.csv"), "previous output\n")
  if (kill.slow) sim.setFaults({ kinds: ["latency"], rate: 0.6, latencyMs: 40 })
  const killed = await effetl(["run", "p.yaml"], {
    cwd: dir,
    env: { ...env(), ...(kill.crashAt ? { EFFETL_CRASH_AT: kill.crashAt } : {}) },
    onSpawn: (child) => {
      if (kill.killAfterMs !== undefined) setTimeout(() => child.kill("SIGKILL"), kill.killAfterMs)
    }
  })
  sim.setFaults(undefined)
  const died = killed.signal === "SIGKILL"
  if (kill.crashAt) expect(died, `expected a SIGKILL at ${kill.crashAt}; stderr: ${killed.stderr}`).toBe(true)
  if (died) {
    // Readers see the previous output or the complete new one (the publish is atomic), never a part.
    // A kill at a chosen point before the publish must leave the previous output; a kill at a random
    // moment may land after the publish, when the run was about to exit.
    const seen = fs.readFileSync(path.join(dir, "out/images.csv"), "utf8")
    if (kill.crashAt !== undefined && !kill.crashAt.startsWith("after-finish")) expect(seen).toBe("previous output\n")
    else expect([`previous output\n`, expected.csv]).toContain(seen)
  }
  // A kill before the run's first state save leaves nothing to resume: the rerun is a fresh run.
  const stateFile = path.join(dir, "state/state.json")
  const unfinished =
    fs.existsSync(stateFile) &&
    Object.values(JSON.parse(fs.readFileSync(stateFile, "utf8")).pipelines as Record<string, { run: { status: string } | null }>)
      .some((p) => p.run?.status === "running")
  if (kill.crashAt) expect(unfinished).toBe(true)
  const rerun = await effetl(["run", "p.yaml"], { cwd: dir, env: env() })
  expect(rerun.code, rerun.stderr).toBe(0)
  expect(rerun.stdout).toContain(unfinished ? "resumed and finished" : "· finished in")
  const csv = fs.readFileSync(path.join(dir, "out/images.csv"), "utf8")
  const rows = csvRows(dir)
  const keys = rows.map((r) => `${r.product_id}/${r.image_id}`)
  expect(new Set(keys).size, "no duplicated row").toBe(keys.length)
  expect(rows.length, "no lost row").toBe(expected.rows)
  expect(csv).toBe(expected.csv)
  expect(fs.readFileSync(path.join(dir, "out/images.jsonl"), "utf8")).toBe(expected.jsonl)
  // Staging and spill are gone after a finished run.
  expect(fs.readdirSync(path.join(dir, "out")).filter((f) => f.startsWith("."))).toEqual([])
  expect(fs.existsSync(path.join(dir, "state/runs/crash-stream")) && fs.readdirSync(path.join(dir, "state/runs/crash-stream")).length).toBeFalsy()
  return { killed, rerun, dir }
}

describe("crash safety (SIGKILL mid-run, then rerun)", () => {
  it("the uninterrupted baselines are complete: one row per unique image per product", async () => {
    const s = await baseline(streaming)
    expect(s.rows).toBe(sim.catalogue.length)
    const g = await baseline(grouped)
    const unique = new Set(sim.catalogue.map((i) => `${i.product}/${i.sha256}`))
    expect(g.rows).toBe(unique.size)
  })

  for (const yaml of [streaming, grouped]) {
    const label = yaml === streaming ? "streaming" : "grouped+spill"
    for (const crashAt of [
      "after-batch-write:3",
      "after-sink-commit:1",
      "after-sink-commit:3",
      "after-state-save:2",
      "after-finish:1"
    ]) {
      it(`${label}: killed at ${crashAt}`, async () => {
        await crashAndResume(yaml, { crashAt })
      })
    }
  }

  it("streaming: killed between a sink's commit and the state save, twice in a row, still converges", async () => {
    const expected = await baseline(streaming)
    const dir = setup(streaming)
    for (const crashAt of ["after-sink-commit:2", "after-sink-commit:2"]) {
      const r = await effetl(["run", "p.yaml"], { cwd: dir, env: { ...env(), EFFETL_CRASH_AT: crashAt } })
      expect(r.signal).toBe("SIGKILL")
    }
    const rerun = await effetl(["run", "p.yaml"], { cwd: dir, env: env() })
    expect(rerun.code, rerun.stderr).toBe(0)
    expect(fs.readFileSync(path.join(dir, "out/images.csv"), "utf8")).toBe(expected.csv)
  })

  it("killed at random moments (slow API), several times", async () => {
    try {
      let resumed = 0
      for (const [yaml, ms] of [[streaming, 700], [streaming, 1200], [streaming, 1700], [grouped, 900], [grouped, 1400], [grouped, 1900]] as const) {
        const { rerun } = await crashAndResume(yaml, { killAfterMs: ms, slow: true })
        if (rerun.stdout.includes("resumed")) resumed++
      }
      // most kills land mid-run (after the first commit), so most reruns really resume
      expect(resumed).toBeGreaterThanOrEqual(3)
    } finally {
      sim.setFaults(undefined)
    }
  })

  it("a resumed run does not re-read pages committed before the kill", async () => {
    const dir = setup(streaming)
    const listPath = `/api/v1/channel/${sim.channelId}/product_images/detailed/`
    const killed = await effetl(["run", "p.yaml"], { cwd: dir, env: { ...env(), EFFETL_CRASH_AT: "after-state-save:3" } })
    expect(killed.signal).toBe("SIGKILL")
    const state = JSON.parse(fs.readFileSync(path.join(dir, "state/state.json"), "utf8"))
    const saved = state.pipelines["crash-stream"].sources.channel.checkpoint
    expect(saved.kind).toBe("position")
    expect(saved.value.page).toBeGreaterThan(1)
    const before = sim.requests().byPath[listPath] ?? 0
    const rerun = await effetl(["run", "p.yaml"], { cwd: dir, env: env() })
    expect(rerun.code, rerun.stderr).toBe(0)
    const lastPage = Math.ceil(sim.catalogue.length / 10)
    // exactly the pages after the saved one, each once
    expect((sim.requests().byPath[listPath] ?? 0) - before).toBe(lastPage - saved.value.page)
  })
})
