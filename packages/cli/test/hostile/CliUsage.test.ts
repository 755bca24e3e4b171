/**
 * Hostile command lines: missing values, unknown options, wrong values, a FIFO or a device or an
 * unreadable file as the pipeline file, directories the user may not write, and signals. Each gets
 * its exit code and one line naming the problem, and leaves an earlier run's output and state as
 * they were. The CLI runs in-process, except where a process of its own is the point (a FIFO that
 * could hang, another user, a signal).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, cli, type CliResult, effetl, tempDir } from "../helpers.js"
import {
  channelPipeline,
  effetlAs,
  expectCleanFailure,
  expectIntact,
  expectNoStack,
  hostileServer,
  snapshot,
  workspace
} from "./Harness.js"

let sim: ChannelSimulator
/** A workspace after one finished run: p.yaml, out/ and .effetl/state.json. */
let golden: string

const env = () => ({ CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token })

beforeAll(async () => {
  sim = await startChannelSimulator({ products: 4, seed: 3 })
  golden = workspace({ "p.yaml": channelPipeline })
  const r = await cli(["run", "p.yaml"], { cwd: golden, env: env() })
  expect(r.code, r.stderr).toBe(0)
  expect(fs.existsSync(path.join(golden, "out/images.csv"))).toBe(true)
})
afterAll(async () => {
  await sim.close()
})

/** A copy of the workspace of a finished run. */
const finishedRun = (): string => {
  const dir = tempDir("usage")
  fs.chmodSync(dir, 0o755)
  fs.cpSync(golden, dir, { recursive: true })
  return dir
}

/** A usage error: exit 2, exactly one stderr line (the error), nothing on stdout, nothing in the workspace touched. */
const expectUsage = (r: CliResult, dir: string, before: Map<string, Buffer>, ...names: ReadonlyArray<string | RegExp>) => {
  const line = expectCleanFailure(r, 2, ...names)
  expect(r.stderr).toBe(`${line}\n`)
  expect(r.stdout).toBe("")
  expectIntact(dir, before)
  expect(snapshot(dir).size).toBe(before.size)
}

describe("usage errors: one line naming the argument, exit 2, nothing run", () => {
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>, ReadonlyArray<string | RegExp>]> = [
    ["--limit with no value (it used to run a full run and save state)", ["run", "p.yaml", "--limit"], ["error: --limit needs a value (see 'effetl run --help')"]],
    ["--limit followed by another option", ["run", "p.yaml", "--limit", "--dry-run"], ["--limit needs a value"]],
    ["--state with no value (it used to be ignored)", ["run", "p.yaml", "--state"], ["error: --state needs a value"]],
    ["--state= (an empty file name)", ["run", "p.yaml", "--state="], ["--state needs a file name"]],
    ["an unknown option before the file (it used to say 'Not enough non-option arguments')", ["run", "--bogus", "p.yaml"], [
      "error: unknown option --bogus (see 'effetl run --help')"
    ]],
    ["an unknown option after the file", ["run", "p.yaml", "--bogus"], ["unknown option --bogus"]],
    ["an unknown short option", ["run", "p.yaml", "-x"], ["unknown option -x"]],
    ["two unknown options, one with a value", ["run", "p.yaml", "--bogus=1", "--other"], ["unknown options --bogus, --other"]],
    ["an option of another command", ["validate", "--limit", "3", "p.yaml"], ["unknown option --limit (see 'effetl validate --help')"]],
    ["an unknown option of schema", ["schema", "--bogus"], ["unknown option --bogus (see 'effetl schema --help')"]],
    ["an unknown global option alone", ["--bogus"], ["unknown option --bogus (see 'effetl --help')"]],
    ["no pipeline file", ["run"], ["error: missing argument: effetl run <file>"]],
    ["state without its file", ["state", "show"], ["missing argument: effetl state <action> <file>"]],
    ["two pipeline files", ["run", "p.yaml", "q.yaml"], ["unexpected argument q.yaml: effetl run <file>"]],
    ["an extra argument to plugins", ["plugins", "csv", "extra"], ["unexpected argument extra"]],
    ["--limit 0", ["run", "p.yaml", "--limit", "0"], ["--limit must be an integer ≥ 1"]],
    ["--limit -3", ["run", "p.yaml", "--limit", "-3"], ["--limit must be an integer ≥ 1"]],
    ["--limit 2.5", ["run", "p.yaml", "--limit", "2.5"], ["--limit must be an integer ≥ 1"]],
    ["--limit abc", ["run", "p.yaml", "--limit", "abc"], ["--limit must be an integer ≥ 1"]],
    ["--log-format xml", ["run", "p.yaml", "--log-format", "xml"], ['invalid value: --log-format is "xml"; expected one of "pretty", "json"']],
    ["--log-format with no value", ["validate", "p.yaml", "--log-format"], ["--log-format needs a value"]],
    ["state frob", ["state", "frob", "p.yaml"], ['invalid value: action is "frob"; expected one of "show", "reset"']],
    ["state show --state with no value", ["state", "show", "p.yaml", "--state"], ["--state needs a value (see 'effetl state --help')"]],
    ["runs without its file", ["runs"], ["missing argument: effetl runs <file> [id]"]],
    ["simulate --port with no value", ["simulate", "channel", "--port"], ["--port needs a value"]],
    ["simulate --port 70000", ["simulate", "channel", "--port", "70000"], ["--port must be an integer from 0 to 65535"]],
    ["an unknown command", ["nosuch", "p.yaml"], ["unknown command 'nosuch'; the commands are run, validate, plugins, schema, state, runs, simulate, worker, new"]],
    ["a typo of a command", ["rn", "p.yaml"], ["unknown command 'rn' (did you mean run?)"]],
    ["no command", [], ["error: give a command: run, validate, plugins, schema, state, runs, simulate, worker, new (see 'effetl --help')"]]
  ]
  for (const [what, args, names] of cases) {
    it(`${what}: ${args.join(" ") || "(nothing)"}`, async () => {
      const dir = finishedRun()
      const before = snapshot(dir)
      const r = await cli(args, { cwd: dir, env: env() })
      expectUsage(r, dir, before, ...names)
    })
  }

  it("with --log-format json a usage error is one JSON line naming the option", async () => {
    const dir = finishedRun()
    const r = await cli(["run", "p.yaml", "--bogus", "--log-format", "json"], { cwd: dir, env: env() })
    expect(r.code).toBe(2)
    const lines = r.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "error", error: "UsageError", message: "unknown option --bogus (see 'effetl run --help')" })
  })

  it("an option given twice takes its last value (never an array nobody checks)", async () => {
    const dir = finishedRun()
    const before = snapshot(dir)
    const r = await cli(["run", "p.yaml", "--limit", "3", "--limit", "0"], { cwd: dir, env: env() })
    expectUsage(r, dir, before, "--limit must be an integer ≥ 1")
  })
})

describe("what cannot be a pipeline file is refused at once", () => {
  it("a FIFO (it used to hang): run, validate and state each exit 2 at once, naming it", async () => {
    const dir = finishedRun()
    execFileSync("mkfifo", [path.join(dir, "fifo.yaml")])
    for (const args of [["run", "fifo.yaml"], ["validate", "fifo.yaml"], ["state", "show", "fifo.yaml"]]) {
      // The real binary, so that a regression hangs a child (killed after the timeout), not the test runner.
      const r = await effetl(args, { cwd: dir, env: env(), timeoutMs: 30_000 })
      expect(r.signal, `${args.join(" ")} did not hang`).toBeNull()
      expectCleanFailure(r, 2, "cannot read pipeline file 'fifo.yaml': it is a FIFO (named pipe), not a regular file")
    }
  })

  it("a directory", async () => {
    const dir = finishedRun()
    const before = snapshot(dir)
    const r = await cli(["run", "out"], { cwd: dir, env: env() })
    expectCleanFailure(r, 2, "cannot read pipeline file 'out': it is a directory; give a pipeline YAML file")
    expectIntact(dir, before)
  })

  it("a device (/dev/zero would never end)", async () => {
    const r = await cli(["validate", "/dev/zero"], { cwd: tempDir("usage"), env: env() })
    expectCleanFailure(r, 2, "cannot read pipeline file '/dev/zero': it is a device, not a regular file")
  })

  it("a file too large to be a pipeline", async () => {
    const dir = workspace({ "big.yaml": `version: 1\n# ${"x".repeat(5 * 1024 * 1024)}\n` })
    const r = await cli(["validate", "big.yaml"], { cwd: dir, env: env() })
    expectCleanFailure(r, 2, /cannot read pipeline file 'big\.yaml': it is \d+ bytes, more than a pipeline file's limit of 4194304/)
  })

  it("a missing file says no such file", async () => {
    const r = await cli(["run", "nope.yaml"], { cwd: tempDir("usage"), env: env() })
    expectCleanFailure(r, 2, "cannot read pipeline file 'nope.yaml': no such file")
  })

  it("a path through a file says so", async () => {
    const dir = finishedRun()
    const r = await cli(["validate", "p.yaml/q.yaml"], { cwd: dir, env: env() })
    expectCleanFailure(r, 2, "cannot read pipeline file 'p.yaml/q.yaml': a part of the path is not a directory")
  })
})

describe("permissions, as a user who is not root (root reads everything)", () => {
  const channelEnv = () => ({ CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token })

  it("an unreadable pipeline file says permission denied, not no such file", async () => {
    const dir = finishedRun()
    fs.chmodSync(path.join(dir, "p.yaml"), 0o000)
    const r = await effetlAs(["validate", "p.yaml"], { cwd: dir, env: channelEnv() })
    expectCleanFailure(r, 2, "cannot read pipeline file 'p.yaml': permission denied")
  })

  it("a pipeline file in a directory the user may not enter says permission denied", async () => {
    const dir = finishedRun()
    fs.mkdirSync(path.join(dir, "locked"))
    fs.copyFileSync(path.join(dir, "p.yaml"), path.join(dir, "locked/p.yaml"))
    fs.chmodSync(path.join(dir, "locked"), 0o700)
    const r = await effetlAs(["run", "locked/p.yaml"], { cwd: dir, env: channelEnv() })
    expectCleanFailure(r, 2, "cannot read pipeline file 'locked/p.yaml': permission denied")
  })

  it("a plugin module in a directory the user may not enter says permission denied, not 'cannot find module'", async () => {
    const dir = finishedRun()
    fs.mkdirSync(path.join(dir, "plugins"))
    fs.writeFileSync(path.join(dir, "plugins/sink.mjs"), "export default 1\n")
    fs.chmodSync(path.join(dir, "plugins"), 0o700)
    fs.writeFileSync(path.join(dir, "q.yaml"), channelPipeline.replace("use: csv", "use: ./plugins/sink.mjs"))
    const r = await effetlAs(["validate", "q.yaml"], { cwd: dir, env: channelEnv() })
    expectCleanFailure(r, 2, "sinks.images_csv.use: cannot load plugin module './plugins/sink.mjs': permission denied")
  })

  it("a read-only output directory: exit 1, permission denied naming it, the earlier output intact", async () => {
    const dir = finishedRun()
    fs.chmodSync(path.join(dir, ".effetl"), 0o777)
    for (const f of fs.readdirSync(path.join(dir, ".effetl"))) fs.chmodSync(path.join(dir, ".effetl", f), 0o666)
    fs.chmodSync(path.join(dir, "out"), 0o555)
    const before = snapshot(path.join(dir, "out"))
    const r = await effetlAs(["run", "p.yaml"], { cwd: dir, env: channelEnv() })
    expectCleanFailure(r, 1, "permission denied", path.join(dir, "out"))
    expect(r.stderr).not.toContain("no such file")
    expectIntact(path.join(dir, "out"), before)
  })

  it("a read-only state directory: exit 1, permission denied naming it, the outputs intact", async () => {
    const dir = finishedRun()
    fs.chmodSync(path.join(dir, "out"), 0o777)
    fs.chmodSync(path.join(dir, ".effetl"), 0o555)
    const before = snapshot(dir)
    const r = await effetlAs(["run", "p.yaml"], { cwd: dir, env: channelEnv() })
    expectCleanFailure(r, 1, "permission denied", path.join(dir, ".effetl"))
    expect(r.stderr).not.toContain("no such file")
    expectIntact(dir, before)
  })

  it("a working directory the user may not write: a dry run works, a run says permission denied", async () => {
    const dir = workspace({ "p.yaml": channelPipeline })
    fs.chmodSync(dir, 0o555)
    const dry = await effetlAs(["run", "p.yaml", "--dry-run"], { cwd: dir, env: channelEnv() })
    expect(dry.code, dry.stderr).toBe(0)
    const r = await effetlAs(["run", "p.yaml"], { cwd: dir, env: channelEnv() })
    expectCleanFailure(r, 1, "permission denied")
    expect(fs.readdirSync(dir)).toEqual(["p.yaml"])
  })
})

describe("signals", () => {
  it("SIGTERM while a request hangs: exit 130, one line saying what is kept, the earlier output intact", async () => {
    const stall = await hostileServer(() => {
      // never answers
    })
    try {
      const dir = finishedRun()
      const before = snapshot(path.join(dir, "out"))
      const child = spawn(process.execPath, [bin, "run", "p.yaml"], {
        cwd: dir,
        env: { ...process.env, CHANNEL_BASE_URL: stall.url, CHANNEL_TOKEN: "t0ken-for-a-stalled-server" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stderr = ""
      let stdout = ""
      child.stdout.on("data", (d) => (stdout += d))
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
      await new Promise<void>((resolve) =>
        child.stderr.on("data", (d) => {
          stderr += d
          if (stall.requests() > 0 || stderr.includes("starting run")) resolve()
        })
      )
      while (stall.requests() === 0) await new Promise((r) => setTimeout(r, 50))
      child.kill("SIGTERM")
      const code = await exited
      const r = { code, signal: null, stdout, stderr }
      expect(code, stderr).toBe(130)
      expect(stderr).toContain("received SIGTERM: stopping")
      expect(stderr).toMatch(/WARN\s+stopped: committed work is kept; the next 'effetl run p\.yaml' resumes this run/)
      expect(stderr).not.toContain("error:")
      expectNoStack(r)
      expect(stderr).not.toContain("t0ken-for-a-stalled-server")
      expectIntact(path.join(dir, "out"), before)
    } finally {
      await stall.close()
    }
  })
})
