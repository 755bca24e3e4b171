/**
 * Start-up loads only what the command needs: `--version` loads no Effect and no plugin, `--help`
 * no plugin, and `validate` or `run` of a channel → csv pipeline none of the packages of other
 * plugins (pg, better-sqlite3, parquetjs-lite, hyparquet-writer, DuckDB). Checked from the modules
 * Node resolves (a loader hook records each one), not from timings.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, effetl, tempDir } from "./helpers.js"

/** Packages a channel → csv pipeline must never load. */
const heavy = ["pg", "better-sqlite3", "parquetjs-lite", "hyparquet-writer", "@duckdb/node-api", "@effetl/sink-sql", "@effetl/source-acceo"]

let sim: ChannelSimulator
let hooks: string
beforeAll(async () => {
  sim = await startChannelSimulator({ products: 3 })
  hooks = tempDir("startup-hooks")
  fs.writeFileSync(
    path.join(hooks, "hooks.mjs"),
    `import * as fs from "node:fs"
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context)
  fs.appendFileSync(process.env.EFFETL_TEST_MODULE_LOG, resolved.url + "\\n")
  return resolved
}
`
  )
  fs.writeFileSync(path.join(hooks, "register.mjs"), `import { register } from "node:module"\nregister("./hooks.mjs", import.meta.url)\n`)
})
afterAll(async () => {
  await sim.close()
})

/** Runs the binary with the loader hook; returns its result and every module URL it resolved. */
const traced = async (args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}) => {
  const log = path.join(tempDir("startup-log"), "modules.txt")
  fs.writeFileSync(log, "")
  const r = await effetl(args, {
    cwd,
    env: { ...env, EFFETL_TEST_MODULE_LOG: log, NODE_OPTIONS: `--import=${path.join(hooks, "register.mjs")}` }
  })
  return { r, modules: fs.readFileSync(log, "utf8").split("\n").filter((l) => l.length > 0) }
}

/** The modules of `pkg` among `modules` (its directory under node_modules or its workspace package). */
const of = (modules: ReadonlyArray<string>, pkg: string): ReadonlyArray<string> => {
  const dir = pkg.startsWith("@effetl/") ? `/packages/${pkg.slice("@effetl/".length)}/` : `/node_modules/${pkg}/`
  return modules.filter((m) => m.includes(dir))
}

/** Core's modules among `modules`, less `Text` (the dependency-free escaping every log line goes through). */
const coreBeyondText = (modules: ReadonlyArray<string>): ReadonlyArray<string> =>
  of(modules, "@effetl/core").filter((m) => !m.endsWith("/packages/core/dist/Text.js"))

const pipeline = `version: 1
name: startup
sources:
  channel:
    use: channel
    with:
      baseUrl: \${CHANNEL_BASE_URL}
      channelId: 5
      token: \${CHANNEL_TOKEN}
sinks:
  out:
    use: csv
    with: { path: out/images.csv }
`

describe("start-up loads only what the command needs", () => {
  it("--version: no Effect, no core (but its dependency-free Text), no plugin", async () => {
    const { r, modules } = await traced(["--version"], tempDir("startup"))
    expect(r.code, r.stderr).toBe(0)
    expect(modules.some((m) => m.endsWith("/packages/cli/dist/main.js"))).toBe(true)
    expect(coreBeyondText(modules)).toEqual([])
    for (const pkg of ["effect", "yargs", ...heavy]) expect(of(modules, pkg), pkg).toEqual([])
  })

  it("--help: the parser, no core (but its dependency-free Text) and no plugin", async () => {
    const { r, modules } = await traced(["--help"], tempDir("startup"))
    expect(r.code, r.stderr).toBe(0)
    expect(of(modules, "yargs").length).toBeGreaterThan(0)
    expect(coreBeyondText(modules)).toEqual([])
    for (const pkg of ["effect", ...heavy]) expect(of(modules, pkg), pkg).toEqual([])
  })

  it("validate and run of a channel → csv pipeline: none of the other plugins' packages", async () => {
    const dir = tempDir("startup")
    fs.writeFileSync(path.join(dir, "p.yaml"), pipeline)
    const env = { CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token }
    for (const args of [["validate", "p.yaml"], ["run", "p.yaml"]]) {
      const { r, modules } = await traced(args, dir, env)
      expect(r.code, r.stderr).toBe(0)
      expect(of(modules, "@effetl/source-channel").length, "the channel source is loaded").toBeGreaterThan(0)
      expect(of(modules, "@effetl/sink-files").length, "the csv sink is loaded").toBeGreaterThan(0)
      for (const pkg of heavy) expect(of(modules, pkg), `${args[0]}: ${pkg}`).toEqual([])
    }
  })

  it("a pipeline with a sqlite sink loads its packages (so the checks above can see them)", async () => {
    const dir = tempDir("startup")
    fs.writeFileSync(path.join(dir, "p.yaml"), pipeline.replace("use: csv\n    with: { path: out/images.csv }", "use: sqlite\n    with: { path: out/images.db }"))
    const { r, modules } = await traced(["validate", "p.yaml"], dir, { CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token })
    expect(r.code, r.stderr).toBe(0)
    expect(of(modules, "better-sqlite3").length).toBeGreaterThan(0)
    expect(of(modules, "pg").length).toBeGreaterThan(0)
  })
})

describe("the effetl command (the bin run as a program, as npm links it)", () => {
  /** Runs the bin itself (its first line starts it), a preload reporting Node's heap cap and pid. */
  const direct = (args: ReadonlyArray<string>, nodeOptions: string) => {
    const dir = tempDir("launcher")
    const report = path.join(dir, "report.json")
    const preload = path.join(dir, "report.cjs")
    fs.writeFileSync(
      preload,
      `require("node:fs").writeFileSync(${JSON.stringify(report)}, JSON.stringify({ heapMb: require("node:v8").getHeapStatistics().heap_size_limit / 2 ** 20, pid: process.pid }))\n`
    )
    const r = spawnSync(bin, args, {
      cwd: dir,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, NODE_OPTIONS: `--require ${JSON.stringify(preload)} ${nodeOptions}`.trim() }
    })
    return { ...r, report: JSON.parse(fs.readFileSync(report, "utf8")) as { heapMb: number; pid: number } }
  }

  it("starts Node in place with a 1 GiB heap cap, which NODE_OPTIONS can replace, and keeps the exit code", () => {
    const plain = direct(["--version"], "")
    expect(plain.status, plain.stderr).toBe(0)
    expect(plain.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
    // The old generation's cap plus the young generation's.
    expect(plain.report.heapMb).toBeGreaterThanOrEqual(1024)
    expect(plain.report.heapMb).toBeLessThan(1200)
    // exec: Node is the process the caller started (a kill reaches the run itself).
    expect(plain.report.pid).toBe(plain.pid)

    const own = direct(["--version"], "--max-old-space-size=2048")
    expect(own.status, own.stderr).toBe(0)
    expect(own.report.heapMb).toBeGreaterThanOrEqual(2048)

    const bad = direct(["run", "missing.yaml"], "")
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain("error: cannot read pipeline file")
  })
})
