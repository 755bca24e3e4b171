/**
 * `effetl run` and `effetl state` against the channel simulator, as a user runs them: the summary,
 * log formats, `--dry-run`, `--limit`, `--state`, a refused token, reruns, Ctrl-C and resume, and
 * progress output. Every test spawns the real built CLI in a temp directory.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import Database from "better-sqlite3"
import { parse } from "csv-parse/sync"
import * as fs from "node:fs"
import * as path from "node:path"
import { type CliResult, effetl, tempDir } from "./helpers.js"

let sim: ChannelSimulator
beforeAll(async () => {
  sim = await startChannelSimulator({ products: 16, seed: 3 })
})
afterAll(async () => {
  await sim.close()
})

/** The demo pipeline's shape, small pages and frequent commits so that a run has several checkpoints. */
const pipeline = `version: 1
name: trial
checkpoint: { everyRecords: 10 }
grouping: { maxBuffered: 10 }
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
  - use: dedupe-by-hash
    with: { scope: product }
  - use: normalise-sequence
sinks:
  images_csv:
    use: csv
    with: { path: out/images.csv }
  images_jsonl:
    use: jsonl
    with: { path: out/images.jsonl }
`

const env = (overrides: Record<string, string> = {}) => ({
  CHANNEL_BASE_URL: sim.url,
  CHANNEL_TOKEN: sim.token,
  CHANNEL_ID: String(sim.channelId),
  ...overrides
})

const setup = (text: string = pipeline): string => {
  const dir = tempDir("run")
  fs.writeFileSync(path.join(dir, "pipeline.yaml"), text)
  return dir
}

const run = (dir: string, args: ReadonlyArray<string> = [], options: { env?: Record<string, string> } = {}) =>
  effetl(["run", "pipeline.yaml", ...args], { cwd: dir, env: env(options.env) })

const csvRows = (file: string) => parse(fs.readFileSync(file), { columns: true }) as Array<Record<string, string>>

const stateOf = (file: string) =>
  JSON.parse(fs.readFileSync(file, "utf8")) as {
    pipelines: Record<string, { run: { id: string; status: string; error?: string } | null; sources: Record<string, { checkpoint: unknown; done: boolean }> }>
  }

/** Every file under `dir`, recursively. */
const filesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]))

const expectNoStack = (r: CliResult) => expect(r.stderr).not.toMatch(/^\s+at /m)

/** The number of unique images per product in the catalogue: what the pipeline must write. */
const expectedRows = () => new Set(sim.catalogue.map((i) => `${i.product}/${i.sha256}`)).size

/** The counts of the summary table's `channel` row. */
const tableCounts = (stdout: string) => {
  const lines = stdout.split("\n")
  const head = lines.find((l) => l.startsWith("source "))!.trim().split(/\s+/)
  const row = lines.find((l) => l.startsWith("channel "))!.trim().split(/\s+/)
  return Object.fromEntries(head.map((h, i) => [h, row[i]!])) as Record<string, string>
}

let reference: { csv: string; rows: number } | undefined
/** An uninterrupted run's CSV, to compare reruns and resumed runs with. */
const referenceRun = async () => {
  if (reference) return reference
  const dir = setup()
  const r = await run(dir)
  expect(r.code, r.stderr).toBe(0)
  const csv = fs.readFileSync(path.join(dir, "out/images.csv"), "utf8")
  reference = { csv, rows: csvRows(path.join(dir, "out/images.csv")).length }
  return reference
}

describe("effetl run", () => {
  it("runs the pipeline: exit 0, a summary table with the counts, and the outputs", async () => {
    const dir = setup()
    const r = await run(dir)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^pipeline trial · run \S+ · finished in \d+\.\ds$/m)
    const counts = tableCounts(r.stdout)
    expect(counts).toMatchObject({ source: "channel", use: "channel", read: String(sim.catalogue.length), invalid: "0" })
    expect(Number(counts.written)).toBe(expectedRows())
    expect(Number(counts.read)).toBe(Number(counts.written) + Number(counts.deduped) + Number(counts.invalid))
    for (const column of ["unhashed", "warnings", "retries", "time"]) expect(counts[column]).toBeDefined()
    expect(r.stdout).toContain("images_csv (csv) → out/images.csv")
    expect(r.stdout).toContain("images_jsonl (jsonl) → out/images.jsonl")
    expect(r.stdout).toContain(`state: ${path.join(fs.realpathSync(dir), ".effetl/state.json")}`)
    const rows = csvRows(path.join(dir, "out/images.csv"))
    expect(rows).toHaveLength(expectedRows())
    expect(rows[0]!.content_hash).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(fs.readFileSync(path.join(dir, "out/images.jsonl"), "utf8").trim().split("\n")).toHaveLength(expectedRows())
    // Off a terminal the progress is log lines, not bars.
    expect(r.stderr).toMatch(/INFO {2}starting run \S+ of pipeline 'trial'/)
    expect(r.stderr).toMatch(/INFO {2}committed: \d+\/\d+ records read {2}\(source=channel\)/)
    expect(r.stderr).toMatch(/INFO {2}source done: \d+\/\d+ records read {2}\(source=channel\)/)
    expect(r.stderr).not.toMatch(/[█░]/)
    expectNoStack(r)
  })

  it("--log-format json: every stderr line is a JSON object, stdout is one JSON summary", async () => {
    const dir = setup()
    const r = await run(dir, ["--log-format", "json"])
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stderr.trim().split("\n")
    expect(lines.length).toBeGreaterThan(2)
    for (const line of lines) {
      const o = JSON.parse(line) as Record<string, unknown>
      expect(typeof o.time, line).toBe("string")
      expect(typeof o.level, line).toBe("string")
      expect(typeof o.message, line).toBe("string")
    }
    expect(lines.map((l) => JSON.parse(l) as { source?: string; message: string }).some((l) => l.source === "channel" && l.message.startsWith("committed:"))).toBe(true)
    expect(r.stdout.trim().split("\n")).toHaveLength(1)
    const { summary } = JSON.parse(r.stdout) as {
      summary: { pipeline: string; status: string; resumed: boolean; sources: Array<{ name: string; counts: Record<string, number> }> }
    }
    expect(summary).toMatchObject({ pipeline: "trial", status: "finished", resumed: false })
    expect(summary.sources[0]).toMatchObject({ name: "channel", counts: { read: sim.catalogue.length, written: expectedRows(), invalid: 0 } })
  })

  it("--dry-run: exit 0, every source answered, nothing written (no output, no state)", async () => {
    const dir = setup()
    const r = await run(dir, ["--dry-run"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("dry run: configuration valid, every source answered, nothing written")
    expect(r.stderr).toContain("source 'channel' (channel) answered")
    expect(fs.readdirSync(dir)).toEqual(["pipeline.yaml"])
  })

  it("--dry-run with a wrong token: exit 1, the message names the source and not the token", async () => {
    const dir = setup()
    const token = "wrong-Tok3n-dry"
    const r = await run(dir, ["--dry-run"], { env: { CHANNEL_TOKEN: token } })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("source 'channel'")
    expect(r.stderr).toMatch(/refused the credentials/)
    expect(r.stdout + r.stderr).not.toContain(token)
    expect(fs.readdirSync(dir)).toEqual(["pipeline.yaml"])
    expectNoStack(r)
  })

  it("--limit 5: a trial writing at most 5 rows to trial locations and saving no state", async () => {
    const dir = setup()
    const r = await run(dir, ["--limit", "5"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("trial run (--limit): written to each output's trial location (never the real one), no state saved")
    const rows = csvRows(path.join(dir, "out/images.trial.csv"))
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.length).toBeLessThanOrEqual(5)
    expect(fs.existsSync(path.join(dir, "out/images.csv"))).toBe(false)
    expect(tableCounts(r.stdout).read).toBe("5")
    expect(fs.existsSync(path.join(dir, ".effetl/state.json"))).toBe(false)
  })

  it("--limit after a real run leaves every real output byte-identical (files, image store, SQLite table) and says where it wrote", async () => {
    const dir = setup(
      pipeline + `  images_files:
    use: images
    with: { dir: out/store }
  images_db:
    use: sqlite
    with: { path: out/images.db }
`
    )
    const real = await run(dir)
    expect(real.code, real.stderr).toBe(0)
    const snapshot = () => {
      const files = (fs.readdirSync(path.join(dir, "out"), { recursive: true }) as Array<string>).filter((f) => !f.includes(".trial")).sort()
      const db = new Database(path.join(dir, "out/images.db"), { readonly: true })
      const table = db.prepare("SELECT * FROM product_images ORDER BY source, product_id, image_id").all()
      db.close()
      return {
        files,
        bytes: files.filter((f) => fs.statSync(path.join(dir, "out", f)).isFile() && !f.startsWith("images.db")).map((f) => fs.readFileSync(path.join(dir, "out", f), "hex")),
        table,
        state: fs.readFileSync(path.join(dir, ".effetl/state.json"), "utf8")
      }
    }
    const before = snapshot()
    const trial = await run(dir, ["--limit", "5"])
    expect(trial.code, trial.stderr).toBe(0)
    expect(snapshot()).toEqual(before)
    // the trial's own outputs, named in the summary (relative to the working directory)
    for (const p of ["images.trial.csv", "images.trial.jsonl", "store.trial"]) {
      expect(fs.existsSync(path.join(dir, "out", p)), p).toBe(true)
      expect(trial.stdout).toContain(`→ out/${p}`)
    }
    expect(trial.stdout).toContain("(table product_images_trial)")
    expect(csvRows(path.join(dir, "out/images.trial.csv")).length).toBeLessThanOrEqual(5)
    const db = new Database(path.join(dir, "out/images.db"), { readonly: true })
    const trialRows = (db.prepare("SELECT count(*) AS n FROM product_images_trial").get() as { n: number }).n
    db.close()
    expect(trialRows).toBeGreaterThan(0)
    expect(trialRows).toBeLessThanOrEqual(5)
  })

  it("--state PATH keeps the state in that file", async () => {
    const dir = setup()
    const r = await run(dir, ["--state", "elsewhere/s.json"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`state: ${path.join(fs.realpathSync(dir), "elsewhere/s.json")}`)
    expect(stateOf(path.join(dir, "elsewhere/s.json")).pipelines.trial!.run!.status).toBe("finished")
    expect(fs.existsSync(path.join(dir, ".effetl/state.json"))).toBe(false)
    const show = await effetl(["state", "show", "pipeline.yaml", "--state", "elsewhere/s.json"], { cwd: dir })
    expect(JSON.parse(show.stdout)).toMatchObject({ run: { status: "finished" } })
  })

  it("a wrong token: exit 1, a clear message naming the source, no stack trace, the token nowhere", async () => {
    const dir = setup()
    const token = "wrong-Tok3n-4f9a2c"
    const r = await run(dir, [], { env: { CHANNEL_TOKEN: token } })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("error: source 'channel': the API refused the credentials (HTTP 401")
    expect(r.stderr).toContain("Check the token")
    expectNoStack(r)
    expect(r.stdout).not.toContain(token)
    expect(r.stderr).not.toContain(token)
    for (const file of filesUnder(dir)) expect(fs.readFileSync(file, "utf8"), file).not.toContain(token)
    // The failed run is recorded with the reason, and the next run (with the right token) resumes it.
    const saved = stateOf(path.join(dir, ".effetl/state.json")).pipelines.trial!
    expect(saved.run).toMatchObject({ status: "failed" })
    expect(saved.run!.error).toContain("refused the credentials")
    const again = await run(dir)
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain(`run ${saved.run!.id} · resumed and finished`)
  })

  it("with --log-format json a failure is a JSON error line with its tag", async () => {
    const dir = setup()
    const r = await run(dir, ["--log-format", "json"], { env: { CHANNEL_TOKEN: "nope-nope" } })
    expect(r.code).toBe(1)
    const lines = r.stderr.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.at(-1)).toMatchObject({ level: "error", error: "Unauthorized" })
    expect(r.stdout).toBe("")
  })

  it("a missing environment variable stops before anything runs: exit 2", async () => {
    const dir = setup()
    const r = await run(dir, [], { env: { CHANNEL_TOKEN: "" } })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/pipeline\.yaml:\d+: environment variable CHANNEL_TOKEN is not set/)
    expect(fs.readdirSync(dir)).toEqual(["pipeline.yaml"])
  })

  it("state show prints the finished run with its checkpoints; state reset clears it", async () => {
    const dir = setup()
    const r = await run(dir)
    expect(r.code, r.stderr).toBe(0)
    const show = await effetl(["state", "show", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(show.code, show.stderr).toBe(0)
    const shown = JSON.parse(show.stdout) as {
      pipeline: string
      run: { id: string; status: string; finishedAt: string }
      sources: Record<string, { checkpoint: { kind: string; value: unknown }; done: boolean }>
      sinks: Record<string, unknown>
    }
    expect(shown.pipeline).toBe("trial")
    expect(shown.run.status).toBe("finished")
    expect(r.stdout).toContain(`run ${shown.run.id}`)
    expect(typeof shown.run.finishedAt).toBe("string")
    expect(shown.sources.channel).toMatchObject({ done: true, checkpoint: { kind: "position" } })
    expect(Object.keys(shown.sinks).sort()).toEqual(["images_csv", "images_jsonl"])
    const reset = await effetl(["state", "reset", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(reset.code, reset.stderr).toBe(0)
    expect(reset.stdout).toContain(`forgot run ${shown.run.id} (finished)`)
    const after = await effetl(["state", "show", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(JSON.parse(after.stdout)).toMatchObject({ pipeline: "trial", run: null, sources: {} })
  })

  it("a second run after a finished one is a new run (new id) with the same CSV", async () => {
    const dir = setup()
    const first = await run(dir)
    expect(first.code, first.stderr).toBe(0)
    const firstCsv = fs.readFileSync(path.join(dir, "out/images.csv"), "utf8")
    const second = await run(dir)
    expect(second.code, second.stderr).toBe(0)
    const id = (s: string) => /· run (\S+) ·/.exec(s)![1]
    expect(id(second.stdout)).not.toBe(id(first.stdout))
    expect(second.stdout).toMatch(/· finished in/)
    expect(second.stdout).not.toContain("resumed")
    expect(fs.readFileSync(path.join(dir, "out/images.csv"), "utf8")).toBe(firstCsv)
    expect(firstCsv).toBe((await referenceRun()).csv)
  })

  it("Ctrl-C (SIGINT) mid-run: exit 130, says the next run resumes; the next run resumes and writes the same CSV", async () => {
    const expected = await referenceRun()
    const dir = setup()
    sim.setFaults({ kinds: ["latency"], rate: 1, latencyMs: 60 })
    let sent = false
    const stopped = await effetl(["run", "pipeline.yaml"], {
      cwd: dir,
      env: env(),
      onSpawn: (child) => {
        let err = ""
        child.stderr!.on("data", (d) => {
          err += d
          // Once a commit has saved checkpoints, stop it as a user would.
          if (!sent && err.includes("committed:")) {
            sent = true
            child.kill("SIGINT")
          }
        })
      }
    })
    sim.setFaults(undefined)
    expect(sent).toBe(true)
    expect(stopped.code, stopped.stderr).toBe(130)
    expect(stopped.stderr).toContain("received SIGINT: stopping")
    expect(stopped.stderr).toContain("committed work is kept; the next 'effetl run pipeline.yaml' resumes this run")
    expectNoStack(stopped)
    expect(stopped.stdout).toBe("")
    const saved = stateOf(path.join(dir, ".effetl/state.json")).pipelines.trial!
    expect(saved.run!.status).toBe("running")
    expect(saved.sources.channel!.checkpoint).not.toBeNull()
    expect(fs.existsSync(path.join(dir, "out/images.csv"))).toBe(false) // overwrite mode publishes at the end only

    const resumed = await run(dir)
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stdout).toContain(`run ${saved.run!.id} · resumed and finished`)
    expect(resumed.stderr).toContain(`resuming run ${saved.run!.id}`)
    // Fewer records read than a whole run: it went on from the checkpoint.
    expect(Number(tableCounts(resumed.stdout).read)).toBeLessThan(sim.catalogue.length)
    expect(fs.readFileSync(path.join(dir, "out/images.csv"), "utf8")).toBe(expected.csv)
  })
})

describe("progress output", () => {
  it("--progress draws bars even off a terminal; the log lines still get through", async () => {
    const dir = setup()
    const r = await run(dir, ["--progress"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/elapsed · \d+ records written · \d+ commits?/)
    expect(r.stderr).toMatch(new RegExp(` channel \\|[█░]+\\| \\d+/${sim.catalogue.length} records · (.+ · )?\\d+ pages? · (.+ · )?done`))
    expect(r.stderr).toMatch(/INFO {2}starting run \S+ of pipeline 'trial'/)
    expect(r.stderr).not.toContain("{") // no unfilled placeholders
    expect(r.stdout).toMatch(/^pipeline trial · run \S+ · finished/m)
  })

  it("--no-progress and --log-format json never draw bars", async () => {
    for (const args of [["--no-progress"], ["--progress", "--log-format", "json"]]) {
      const dir = setup()
      const r = await run(dir, args)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr, args.join(" ")).not.toMatch(/[█░]/)
    }
  })
})
