/**
 * Hostile pipeline files: YAML that explodes or lies (alias bombs, aliases as values, tags, NULs,
 * escape codes, deep nesting), plugin modules that throw or export nothing, outputs that would
 * overwrite each other, and corrupt state files. Each is refused with its exit code and one line
 * naming the problem (and its line where there is one), and an earlier run's output is left as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { cli, tempDir } from "../helpers.js"
import { channelPipeline, expectCleanFailure, expectIntact, snapshot, workspace } from "./Harness.js"

let sim: ChannelSimulator
/** A workspace after one finished run of `channelPipeline`. */
let golden: string

const env = () => ({ CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token })

beforeAll(async () => {
  sim = await startChannelSimulator({ products: 4, seed: 7 })
  golden = workspace({ "p.yaml": channelPipeline })
  const r = await cli(["run", "p.yaml"], { cwd: golden, env: env() })
  expect(r.code, r.stderr).toBe(0)
})
afterAll(async () => {
  await sim.close()
})

/** A copy of the workspace of a finished run, with `files` added. */
const finishedRun = (files: Record<string, string | Buffer> = {}): string => {
  const dir = tempDir("pipeline")
  fs.cpSync(golden, dir, { recursive: true })
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), content)
  }
  return dir
}

/** The 1-based line of `text` holding `needle`. */
const lineOf = (text: string, needle: string): number => text.split("\n").findIndex((l) => l.includes(needle)) + 1

/** `validate` and `run` of `text` (as q.yaml next to a finished run) both fail cleanly; the run touches nothing. */
const refusedByBoth = async (text: string | Buffer, code: number, ...names: ReadonlyArray<string | RegExp>) => {
  const dir = finishedRun({ "q.yaml": text })
  const before = snapshot(dir)
  const v = await cli(["validate", "q.yaml"], { cwd: dir, env: env() })
  expectCleanFailure(v, code, ...names)
  const r = await cli(["run", "q.yaml"], { cwd: dir, env: env() })
  expectCleanFailure(r, code, ...names)
  expectIntact(dir, before)
  return r
}

/** An alias bomb: nine levels of nine aliases each (9^9 values once expanded). */
const bomb = (() => {
  const lines = ['x0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
  for (let i = 1; i < 10; i++) lines.push(`x${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(", ")}]`)
  return channelPipeline.replace("name: hostile\n", `name: hostile\n${lines.join("\n")}\n`)
})()

describe("YAML that explodes or lies", () => {
  it("an alias bomb: exit 2 (not 1), one line with its line number, for validate and run", async () => {
    const line = lineOf(bomb, "x3:")
    await refusedByBoth(bomb, 2, /q\.yaml:\d+: YAML aliases expand this file .* an alias bomb/, new RegExp(`q\\.yaml:(${line - 1}|${line}|${line + 1}):`))
  })

  it("an alias to an undefined anchor", async () => {
    const text = channelPipeline.replace("pageSize: 10", "pageSize: *nope")
    await refusedByBoth(text, 2, `q.yaml:${lineOf(text, "*nope")}:`, "the alias *nope names no anchor")
  })

  it("an alias used as a value of another type", async () => {
    const text = channelPipeline.replace("name: hostile", "name: &n hostile").replace("channelId: 5", "channelId: *n")
    await refusedByBoth(text, 2, "sources.channel.with.channelId", `(line ${lineOf(text, "channelId")})`)
  })

  it("an alias that makes a sink out of a source", async () => {
    const text = channelPipeline.replace("  channel:\n    use: channel", "  channel: &src\n    use: channel") + "  again: *src\n"
    await refusedByBoth(text, 2, "sinks.again.use", "unknown sink plugin 'channel'")
  })

  for (const [what, text] of [
    ["an empty file", ""],
    ["a YAML list", "- a\n- b\n"],
    ["a lone scalar", "hello\n"],
    ["only a comment", "# nothing here\n"]
  ] as const) {
    it(`${what}`, async () => {
      await refusedByBoth(text, 2, "q.yaml: expected a YAML mapping with version, name, sources and sinks")
    })
  }

  it("a duplicated key", async () => {
    const text = channelPipeline.replace("name: hostile", "name: hostile\nname: other")
    await refusedByBoth(text, 2, /q\.yaml:\d+: invalid YAML: Map keys must be unique/)
  })

  it("a JavaScript tag is text, never code", async () => {
    const text = channelPipeline.replace("pageSize: 10", 'pageSize: !!js/function "function () { process.exit(9) }"')
    await refusedByBoth(text, 2, "sources.channel.with.pageSize: expected an integer from 1 to 1000")
  })

  it("a NUL byte in the name is shown escaped", async () => {
    await refusedByBoth(channelPipeline.replace("name: hostile", "name: hos\u0000tile"), 2, 'name: expected a name made of letters', "hos\\u0000tile")
  })

  it("escape codes in a sink name cannot clear the screen: shown escaped", async () => {
    const r = await refusedByBoth(channelPipeline.replace("images_csv:", '"images\u001b[2J\u001b[H_csv":'), 2, "sinks.images\\x1b[2J\\x1b[H_csv")
    expect(r.stderr).not.toContain("\u001b")
  })

  it("a line break inside a quoted name cannot forge a log line", async () => {
    const r = await refusedByBoth(channelPipeline.replace("images_csv:", '"images\\n12:00:00 INFO  run finished":'), 2, "images\\n12:00:00 INFO")
    expect(r.stderr).not.toMatch(/^12:00:00 INFO/m)
  })

  it("bytes that are not UTF-8", async () => {
    await refusedByBoth(
      Buffer.concat([Buffer.from(channelPipeline.replace("name: hostile", "name: caf")), Buffer.from([0xff, 0xfe]), Buffer.from("\n")]),
      2,
      /q\.yaml/
    )
  })

  it("nesting 5,000 levels deep", async () => {
    await refusedByBoth(`version: 1\nname: deep\nsources: ${"[".repeat(5000)}${"]".repeat(5000)}\n`, 2, /q\.yaml/)
  })

  it("version 2", async () => {
    const text = channelPipeline.replace("version: 1", "version: 2")
    await refusedByBoth(text, 2, "version: expected 1", `(line ${lineOf(text, "version")})`)
  })

  it("a pipeline name that climbs out of its directory", async () => {
    await refusedByBoth(channelPipeline.replace("name: hostile", "name: ../../etc/passwd"), 2, "name: expected a name made of letters")
  })

  it("a misspelt section", async () => {
    const text = channelPipeline.replace("transforms:", "transfroms:")
    // The line of the key, or of its value just below.
    await refusedByBoth(text, 2, "transfroms: unknown option", new RegExp(`\\(line (${lineOf(text, "transfroms")}|${lineOf(text, "transfroms") + 1})\\)`))
  })

  it("no sinks", async () => {
    await refusedByBoth(channelPipeline.replace(/sinks:[\s\S]*$/, "sinks: {}\n"), 2, "sinks: a pipeline needs at least one sink")
  })

  it("a byte order mark and Windows line ends are fine", async () => {
    const dir = finishedRun({ "q.yaml": `\ufeff${channelPipeline.replace(/\n/g, "\r\n")}` })
    const r = await cli(["validate", "q.yaml"], { cwd: dir, env: env() })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("valid pipeline 'hostile'")
  })
})

describe("plugin modules that throw, export nothing or are not there", () => {
  /** The channel pipeline with the csv sink replaced by `use`, and the module files. */
  const withModule = (use: string, files: Record<string, string> = {}) =>
    finishedRun({ ...files, "q.yaml": channelPipeline.replace("use: csv", `use: ${use}`) })

  const loadFails = async (dir: string, ...names: ReadonlyArray<string | RegExp>) => {
    const before = snapshot(dir)
    const v = await cli(["validate", "q.yaml"], { cwd: dir, env: env() })
    const line = expectCleanFailure(v, 2, "q.yaml: sinks.images_csv.use", ...names)
    expect(line).toContain(`(line ${lineOf(channelPipeline.replace("use: csv", "use: X"), "use: X")})`)
    const r = await cli(["run", "q.yaml"], { cwd: dir, env: env() })
    expectCleanFailure(r, 2, "q.yaml: sinks.images_csv.use", ...names)
    expectIntact(dir, before)
  }

  it("a module that throws at import", async () => {
    await loadFails(withModule("./plugins/boom.mjs", { "plugins/boom.mjs": 'throw new Error("boom at import")\n' }), "could not load plugin module './plugins/boom.mjs': boom at import")
  })

  it("a module that throws a string", async () => {
    await loadFails(withModule("./plugins/str.mjs", { "plugins/str.mjs": 'throw "just a string"\n' }), "could not load plugin module './plugins/str.mjs': just a string")
  })

  it("a module that throws an error with escape codes and line breaks: one line, escaped", async () => {
    await loadFails(
      withModule("./plugins/ansi.mjs", { "plugins/ansi.mjs": 'throw new Error("\\u001b[2Jgone\\n12:00:00 INFO  all fine")\n' }),
      "\\x1b[2Jgone\\n12:00:00 INFO  all fine"
    )
  })

  it("a module that throws something that cannot even be shown", async () => {
    await loadFails(
      withModule("./plugins/weird.mjs", { "plugins/weird.mjs": 'throw { toString() { throw new Error("nope") } }\n' }),
      "could not load plugin module './plugins/weird.mjs': (an exception that cannot be shown)"
    )
  })

  it("a module that exports nothing", async () => {
    await loadFails(withModule("./plugins/empty.mjs", { "plugins/empty.mjs": "export {}\n" }), "module './plugins/empty.mjs' has no default export that is a sink plugin (made with Sink.define)")
  })

  it("a module that is not JavaScript", async () => {
    await loadFails(withModule("./plugins/broken.mjs", { "plugins/broken.mjs": "export default {\n" }), "could not load plugin module './plugins/broken.mjs'")
  })

  it("a module whose default export is a plugin of another kind", async () => {
    await loadFails(
      withModule("./plugins/source.mjs", { "plugins/source.mjs": 'export default { _tag: "SourcePlugin", name: "s", description: "a source", config: {}, make: () => null }\n' }),
      "module './plugins/source.mjs' has no default export that is a sink plugin"
    )
  })

  it("a module whose default export throws when looked at", async () => {
    await loadFails(
      withModule("./plugins/proxy.mjs", { "plugins/proxy.mjs": 'export default new Proxy({}, { get() { throw new Error("do not touch") } })\n' }),
      "module './plugins/proxy.mjs' has a default export that cannot be read: do not touch"
    )
  })

  it("a module file that is not there", async () => {
    await loadFails(withModule("./plugins/gone.mjs"), "cannot load plugin module './plugins/gone.mjs': no such file")
  })

  it("a directory as the module", async () => {
    const dir = withModule("./plugins")
    fs.mkdirSync(path.join(dir, "plugins"))
    await loadFails(dir, "cannot load plugin module './plugins': it is a directory, not a module file")
  })

  it("a FIFO as the module (loading it would hang)", async () => {
    const dir = withModule("./plugins/fifo.mjs")
    fs.mkdirSync(path.join(dir, "plugins"))
    execFileSync("mkfifo", [path.join(dir, "plugins/fifo.mjs")])
    await loadFails(dir, "cannot load plugin module './plugins/fifo.mjs': it is not a regular file")
  })

  it("an npm package that is not installed", async () => {
    await loadFails(withModule("effetl-sink-nosuch"), "unknown sink plugin 'effetl-sink-nosuch'. Built-in sinks: csv, jsonl, parquet, images, sqlite, postgres")
  })

  it("a misspelt built-in lists the built-ins (loaded or not)", async () => {
    await loadFails(withModule("cvs"), "unknown sink plugin 'cvs'. Built-in sinks: csv, jsonl, parquet, images, sqlite, postgres")
  })
})

describe("outputs that would overwrite each other (found before anything is touched)", () => {
  const sinks = (yaml: string) => channelPipeline.replace(/sinks:[\s\S]*$/, `sinks:\n${yaml}`)

  it("a sink on the dead-letter file (its records used to be overwritten, exit 0)", async () => {
    await refusedByBoth(
      sinks("  images_jsonl:\n    use: jsonl\n    with: { path: out/dead-letter.jsonl }\n"),
      2,
      "q.yaml: sinks.images_jsonl.with.path and deadLetter.path are the same path, out/dead-letter.jsonl"
    )
  })

  it("two sinks on one path", async () => {
    await refusedByBoth(
      sinks("  a:\n    use: csv\n    with: { path: out/images.csv }\n  b:\n    use: jsonl\n    with: { path: ./out/../out/images.csv }\n"),
      2,
      "sinks.a.with.path and sinks.b.with.path are the same path, out/images.csv"
    )
  })

  it("a sink on the state file", async () => {
    await refusedByBoth(sinks("  a:\n    use: csv\n    with: { path: .effetl/state.json }\n"), 2, "sinks.a.with.path and state.path are the same path, .effetl/state.json")
  })

  it("the dead-letter file on the state file", async () => {
    await refusedByBoth(channelPipeline.replace("deadLetter: { path: out/dead-letter.jsonl }", "deadLetter: { path: .effetl/state.json }"), 2, "deadLetter.path and state.path are the same path")
  })

  it("a file inside another sink's append directory", async () => {
    await refusedByBoth(
      sinks("  parts:\n    use: jsonl\n    with: { path: out/parts, mode: append }\n  a:\n    use: csv\n    with: { path: out/parts/extra.csv }\n"),
      2,
      "sinks.a.with.path (out/parts/extra.csv) is inside the directory of sinks.parts.with.path (out/parts)"
    )
  })

  it("the dead-letter file inside the image store", async () => {
    await refusedByBoth(sinks("  files:\n    use: images\n    with: { dir: out }\n"), 2, "deadLetter.path (out/dead-letter.jsonl) is inside the directory of sinks.files.with.dir (out)")
  })

  it("two sqlite sinks on one table (two tables of one database are fine)", async () => {
    await refusedByBoth(
      sinks("  a:\n    use: sqlite\n    with: { path: out/x.db }\n  b:\n    use: sqlite\n    with: { path: out/x.db }\n"),
      2,
      "sinks.a.with.path and sinks.b.with.path are the same path (table product_images), out/x.db"
    )
    const dir = finishedRun({ "q.yaml": sinks("  a:\n    use: sqlite\n    with: { path: out/x.db }\n  b:\n    use: sqlite\n    with: { path: out/x.db, table: other }\n") })
    const ok = await cli(["validate", "q.yaml"], { cwd: dir, env: env() })
    expect(ok.code, ok.stderr).toBe(0)
  })

  it("--state onto a sink's file", async () => {
    const dir = finishedRun()
    const before = snapshot(dir)
    const r = await cli(["run", "p.yaml", "--state", "out/images.csv"], { cwd: dir, env: env() })
    expectCleanFailure(r, 2, "sinks.images_csv.with.path and state.path are the same path, out/images.csv")
    expectIntact(dir, before)
  })
})

describe("a corrupt state file: one line naming it and how to recover, exit 1, the file left as it was", () => {
  const corrupt: ReadonlyArray<readonly [string, string | Buffer, string]> = [
    ["cut off half-way", '{"version":1,"pipelines":{"hostile":{"run":', "it ends in the middle of the JSON"],
    ["not JSON, with escape codes", Buffer.from("garbage \u0000\u001b[2J\n"), "it is not JSON"],
    ["JSON of the wrong shape", '{"version":1,"pipelines":{"hostile":{"run":5}}}', "it is not an effetl state file"],
    ["a JSON list", "[]", "it is not an effetl state file"]
  ]
  for (const [what, content, says] of corrupt) {
    it(`${what}: run and state show`, async () => {
      const dir = finishedRun({ ".effetl/state.json": content })
      const before = snapshot(dir)
      for (const args of [["run", "p.yaml"], ["state", "show", "p.yaml"]]) {
        const r = await cli(args, { cwd: dir, env: env() })
        expectCleanFailure(r, 1, `the state file ${path.join(fs.realpathSync(dir), ".effetl/state.json")} is corrupt`, says, "effetl state reset")
        expect(r.stdout).toBe("")
      }
      expectIntact(dir, before)
    })
  }

  it("the recovery it names works: state reset keeps the corrupt file aside and the next run starts over", async () => {
    const dir = finishedRun({ ".effetl/state.json": '{"version":1,"pipelines":{"hostile":{"run":' })
    const reset = await cli(["state", "reset", "p.yaml"], { cwd: dir, env: env() })
    expect(reset.code, reset.stderr).toBe(0)
    expect(reset.stdout).toContain("state of pipeline 'hostile' reset")
    const aside = fs.readdirSync(path.join(dir, ".effetl")).filter((f) => f.startsWith("state.json.corrupt-"))
    expect(aside.length).toBe(1)
    expect(fs.readFileSync(path.join(dir, ".effetl", aside[0]!), "utf8")).toBe('{"version":1,"pipelines":{"hostile":{"run":')
    const run = await cli(["run", "p.yaml"], { cwd: dir, env: env() })
    expect(run.code, run.stderr).toBe(0)
  })
})
