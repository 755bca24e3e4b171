/**
 * `effetl validate` reports every problem of a file in one go, sorted by line, each with its line
 * and a "did you mean" for a misspelt option or plugin name; `run` of the same file reports the same
 * list; exit code 2, no stack trace.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { cli, type CliResult, tempDir } from "./helpers.js"

/** Five mistakes in five sections, written out of the order the sections are checked in. */
const fiveMistakes = [
  "version: 1",
  "name: five",
  "state: { use: sqlite, with: { pth: out/state.db } }",
  "sources:",
  "  main:",
  "    use: channel",
  "    with:",
  "      baseUrl: ${CHANNEL_BASE_URL:-http://127.0.0.1:9}",
  "      channelId: 5",
  "      token: t",
  "      pagesize: 50",
  "transforms:",
  "  - use: validate",
  "  - use: dedup-by-hash",
  "sinks:",
  "  out:",
  "    use: csv",
  "    with: { path: out/images.csv, mdoe: overwrite }",
  "checkpoint: { everyRecords: 0 }",
  ""
].join("\n")

/** The 1-based line of `text` holding `needle`. */
const lineOf = (text: string, needle: string): number => text.split("\n").findIndex((l) => l.includes(needle)) + 1

const setup = (text: string): string => {
  const dir = tempDir("validate")
  fs.writeFileSync(path.join(dir, "p.yaml"), text)
  return dir
}

const expectNoStack = (r: CliResult) => {
  expect(r.stderr).not.toMatch(/^\s+at /m)
  expect(r.stderr).not.toMatch(/\.(ts|js):\d+:\d+/)
  expect(r.stderr).not.toContain("internal error")
}

const expected = [
  `p.yaml: state.with.pth: unknown option (did you mean path?) (line ${lineOf(fiveMistakes, "pth")})`,
  `p.yaml: sources.main.with.pagesize: unknown option (did you mean pageSize?) (line ${lineOf(fiveMistakes, "pagesize")})`,
  `p.yaml: transforms.1.use: unknown transform plugin 'dedup-by-hash'. Built-in transforms: validate, hash-content, dedupe-by-hash, normalise-sequence; ` +
  `or give an npm package name or a relative path like ./my-plugin.js. Did you mean 'dedupe-by-hash'? (line ${lineOf(fiveMistakes, "dedup-by-hash")})`,
  `p.yaml: sinks.out.with.mdoe: unknown option (did you mean mode?) (line ${lineOf(fiveMistakes, "mdoe")})`,
  `p.yaml: checkpoint.everyRecords: expected an integer ≥ 1, got 0 (line ${lineOf(fiveMistakes, "everyRecords")})`
]

describe("validate: every problem at once", () => {
  it("five mistakes in five sections: all five, sorted by line, each with its line and a suggestion; exit 2", async () => {
    const dir = setup(fiveMistakes)
    const r = await cli(["validate", "p.yaml"], { cwd: dir, env: {} })
    expect(r.code, r.stderr).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).toBe(["error: p.yaml: 5 problems", ...expected.map((l) => `  ${l}`), ""].join("\n"))
    const lines = [...r.stderr.matchAll(/\(line (\d+)\)$/gm)].map((m) => Number(m[1]))
    expect(lines).toEqual([...lines].sort((a, b) => a - b))
    expectNoStack(r)
  })

  it("run of the same file reports the same list, and writes nothing", async () => {
    const dir = setup(fiveMistakes)
    const validate = await cli(["validate", "p.yaml"], { cwd: dir, env: {} })
    const run = await cli(["run", "p.yaml", "--no-progress"], { cwd: dir, env: {} })
    expect(run.code).toBe(2)
    expect(run.stderr).toBe(validate.stderr)
    expect(fs.readdirSync(dir)).toEqual(["p.yaml"])
    expectNoStack(run)
  })

  it("--log-format json: one error line carrying every problem with its path and line", async () => {
    const r = await cli(["validate", "p.yaml", "--log-format", "json"], { cwd: setup(fiveMistakes), env: {} })
    expect(r.code).toBe(2)
    const lines = r.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    const event = JSON.parse(lines[0]!) as { level: string; error: string; message: string; problems: Array<{ message: string; path: string; line: number }> }
    expect(event).toMatchObject({ level: "error", error: "ConfigError", message: "p.yaml: 5 problems" })
    expect(event.problems.map((p) => p.message)).toEqual(expected)
    expect(event.problems.map((p) => p.path)).toEqual(["state.with.pth", "sources.main.with.pagesize", "transforms.1.use", "sinks.out.with.mdoe", "checkpoint.everyRecords"])
  })

  it("a variable that is not set is named once, and its uses say nothing more; other problems still show", async () => {
    const text = fiveMistakes
      .replace("${CHANNEL_BASE_URL:-http://127.0.0.1:9}", "${CHANNEL_BASE_URL}")
      .replace("token: t", "token: ${CHANNEL_BASE_URL}")
    const r = await cli(["validate", "p.yaml"], { cwd: setup(text), env: {} })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("error: p.yaml: 6 problems\n")
    expect(r.stderr).toContain(`  p.yaml:${lineOf(text, "baseUrl")}: environment variable CHANNEL_BASE_URL is not set (used as \${CHANNEL_BASE_URL})\n`)
    expect(r.stderr.match(/CHANNEL_BASE_URL/g)).toHaveLength(2) // the one message (name and ${name})
    expect(r.stderr).toContain("did you mean pageSize?")
  })

  it("an unknown top-level key and a built-in of another section get their own hints", async () => {
    const text = fiveMistakes.replace("checkpoint: { everyRecords: 0 }", "checkpoints: { everyRecords: 5 }").replace("use: dedup-by-hash", "use: csv")
    const r = await cli(["validate", "p.yaml"], { cwd: setup(text), env: {} })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`p.yaml: checkpoints: unknown option (did you mean checkpoint?) (line ${lineOf(text, "checkpoints")})`)
    expect(r.stderr).toContain("('csv' is a built-in sink, not a transform.)")
  })

  it("one problem is still one line", async () => {
    const text = fiveMistakes
      .replace("state: { use: sqlite, with: { pth: out/state.db } }\n", "")
      .replace("      pagesize: 50\n", "")
      .replace("  - use: dedup-by-hash\n", "")
      .replace(", mdoe: overwrite", "")
    const r = await cli(["validate", "p.yaml"], { cwd: setup(text), env: {} })
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(`error: p.yaml: checkpoint.everyRecords: expected an integer ≥ 1, got 0 (line ${lineOf(text, "everyRecords")})\n`)
  })
})
