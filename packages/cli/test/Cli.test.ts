/**
 * The `effetl` binary as a user meets it: help and usage errors, `validate`, `plugins`, `schema`,
 * `state` and `simulate`. Most tests run the CLI in-process (`cli`) in a temp directory; the binary
 * itself is spawned for `--help`, `--version` and the simulator's signals.
 * (Runs against the simulator are in CliRun.test.ts; hostile input in hostile/.)
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Registry } from "@effetl/core"
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as JSONSchema from "effect/JSONSchema"
import { loadedRegistry } from "../src/Builtins.js"
import { bin, cli, type CliResult, effetl, root, tempDir } from "./helpers.js"

let sim: ChannelSimulator
beforeAll(async () => {
  sim = await startChannelSimulator({ products: 12 })
})
afterAll(async () => {
  await sim.close()
})

const env = () => ({ CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token, CHANNEL_ID: String(sim.channelId) })
const channelFile = path.join(root, "examples/channel.yaml")
const channelText = fs.readFileSync(channelFile, "utf8")

/** A temp directory holding `pipeline.yaml` with `text`. */
const setup = (text: string): string => {
  const dir = tempDir("cli")
  fs.writeFileSync(path.join(dir, "pipeline.yaml"), text)
  return dir
}

/** A user error: its message, and never a stack trace. */
const expectNoStack = (r: CliResult) => {
  expect(r.stderr).not.toMatch(/^\s+at /m)
  expect(r.stderr).not.toMatch(/\.(ts|js):\d+:\d+/)
}

/** The line number of the first line of `text` containing `needle` (1-based). */
const lineOf = (text: string, needle: string): number => text.split("\n").findIndex((l) => l.includes(needle)) + 1

const registry = await loadedRegistry()
const allPlugins = [...registry.sources, ...registry.transforms, ...registry.sinks]
const stateStores = Registry.builtinsOf(registry, "state")

describe("help and usage", () => {
  it("--help lists every command and the global options", async () => {
    const r = await effetl(["--help"], { cwd: tempDir("help") })
    expect(r.code).toBe(0)
    for (const c of ["run <file>", "validate <file>", "plugins [name]", "schema", "state <action> <file>", "runs <file> [id]", "simulate <api>", "worker <file>", "new <kind> <name>"]) {
      expect(r.stdout).toContain(`effetl ${c}`)
    }
    for (const o of ["--log-format", "--verbose", "--help", "--version"]) expect(r.stdout).toContain(o)
    expect(r.stdout).toMatch(/Exit codes: 0 ok, 1 the run failed, 2 bad config or usage/)
  })

  const options: Record<string, ReadonlyArray<string>> = {
    run: ["file", "--dry-run", "--limit", "--full-refresh", "--restart", "--state", "--progress", "--log-format", "--verbose"],
    validate: ["file", "The pipeline YAML file"],
    plugins: ["name"],
    schema: ["yaml-language-server"],
    state: ["action", "file", "--state", "show", "reset"],
    runs: ["file", "id", "--state", "--log-format json"],
    simulate: ["api", "--port", "--faults", "--fault-rate", "channel", "5xx,429,reset,truncate,latency"]
  }
  for (const [command, expected] of Object.entries(options)) {
    it(`${command} --help lists its arguments and options, each described`, async () => {
      const r = await cli([command, "--help"], { cwd: tempDir("help") })
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`effetl ${command}`)
      for (const o of expected) expect(r.stdout).toContain(o)
      // Every option line has a description, not just a type.
      for (const line of r.stdout.split("\n").filter((l) => /^\s+--[a-z-]+\s/.test(l))) {
        expect(line.replace(/^\s+--[a-z-]+\s+/, "").replace(/\[[^\]]*\]/g, "").trim().length, line).toBeGreaterThan(0)
      }
    })
  }

  it("--version prints the package version (alone, or with other options through the parser)", async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "packages/cli/package.json"), "utf8")) as { version: string }
    const r = await effetl(["--version"], { cwd: tempDir("help") })
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`${pkg.version}\n`)
    const parsed = await cli(["--version", "--verbose"], { cwd: tempDir("help") })
    expect(parsed.code).toBe(0)
    expect(parsed.stdout).toBe(`${pkg.version}\n`)
  })

  it("no command: exit 2 and a message naming the commands", async () => {
    const r = await cli([], { cwd: tempDir("usage") })
    expect(r.code).toBe(2)
    expect(r.stderr).toBe("error: give a command: run, validate, plugins, schema, state, runs, simulate, worker, new (see 'effetl --help')\n")
    expectNoStack(r)
  })

  it("an unknown command: exit 2, named, with a suggestion for a typo", async () => {
    const r = await cli(["nosuch", "x.yaml"], { cwd: tempDir("usage") })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("unknown command 'nosuch'")
    expectNoStack(r)
    const typo = await cli(["rn", "x.yaml"], { cwd: tempDir("usage") })
    expect(typo.code).toBe(2)
    expect(typo.stderr).toContain("unknown command 'rn' (did you mean run?)")
  })

  it("an unknown option: exit 2, named, pointing at the command's help", async () => {
    const r = await cli(["run", "x.yaml", "--bogus"], { cwd: tempDir("usage") })
    expect(r.code).toBe(2)
    expect(r.stderr).toBe("error: unknown option --bogus (see 'effetl run --help')\n")
    expectNoStack(r)
  })

  it("a missing argument and a bad --limit: exit 2 without a stack trace", async () => {
    const missing = await cli(["run"], { cwd: tempDir("usage") })
    expect(missing.code).toBe(2)
    expectNoStack(missing)
    for (const limit of ["0", "-3", "2.5", "abc"]) {
      const r = await cli(["run", "x.yaml", "--limit", limit], { cwd: tempDir("usage") })
      expect(r.code, limit).toBe(2)
      expect(r.stderr).toContain("--limit must be an integer ≥ 1")
      expectNoStack(r)
    }
  })

  it("with --log-format json, a usage error is a JSON line", async () => {
    const r = await cli(["run", "x.yaml", "--bogus", "--log-format", "json"], { cwd: tempDir("usage") })
    expect(r.code).toBe(2)
    const lines = r.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "error", message: "unknown option --bogus (see 'effetl run --help')", error: "UsageError" })
  })
})

describe("validate", () => {
  it("the channel example: exit 0 and a one-line description", async () => {
    const r = await cli(["validate", channelFile], { cwd: tempDir("validate"), env: env() })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim().split("\n")).toHaveLength(1)
    expect(r.stdout).toContain("valid pipeline 'channel' with 1 source [channel:channel]")
    expect(r.stdout).toContain("4 transforms [validate, hash-content, dedupe-by-hash, normalise-sequence]")
    expect(r.stdout).toContain("2 sinks [images_csv:csv, images_jsonl:jsonl]")
    expect(r.stderr).toBe("")
  })

  const broken: ReadonlyArray<{ what: string; text: string; env?: Record<string, string>; says: ReadonlyArray<string>; line?: string; lineSlack?: number }> = [
    {
      what: "a missing environment variable",
      text: channelText,
      env: { CHANNEL_BASE_URL: "" },
      says: ["environment variable CHANNEL_BASE_URL is not set"],
      line: "${CHANNEL_BASE_URL}"
    },
    {
      what: "an unknown plugin",
      text: channelText.replace("use: channel", "use: chanel"),
      says: ["sources.channel.use", "unknown source plugin 'chanel'", "Built-in sources: acceo, shoplazza, bigcommerce, channel"],
      line: "use: chanel"
    },
    {
      what: "a wrong type",
      text: channelText.replace("pageSize: 25", "pageSize: x"),
      says: ["sources.channel.with.pageSize", "expected an integer from 1 to 1000", '"x"'],
      line: "pageSize: x"
    },
    {
      what: "an unknown option",
      text: channelText.replace("pageSize: 25", "pageSize: 25\n      pagesize: 3"),
      says: ["sources.channel.with.pagesize", "unknown option"],
      line: "pagesize: 3"
    },
    {
      what: "bad YAML",
      text: channelText.replace("mode: detailed", "mode: [detailed"),
      says: ["invalid YAML"],
      line: "mode: [detailed",
      // The YAML parser names the line where it noticed the problem: the bad one or the next.
      lineSlack: 1
    }
  ]
  for (const b of broken) {
    it(`${b.what}: exit 2, the message names the path and the line, no stack trace`, async () => {
      const dir = setup(b.text)
      const r = await cli(["validate", "pipeline.yaml"], { cwd: dir, env: { ...env(), ...b.env } })
      expect(r.code, r.stderr).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toMatch(/^error: pipeline\.yaml/)
      for (const s of b.says) expect(r.stderr).toContain(s)
      if (b.line !== undefined) {
        const n = lineOf(b.text, b.line)
        expect(n).toBeGreaterThan(0)
        const lines = Array.from({ length: (b.lineSlack ?? 0) + 1 }, (_, i) => n + i).join("|")
        expect(r.stderr).toMatch(new RegExp(`(pipeline\\.yaml:(${lines}):|\\(line (${lines})\\))`))
      }
      expectNoStack(r)
    })
  }

  it("a missing file: exit 2, names the file", async () => {
    const r = await cli(["validate", "nope.yaml"], { cwd: tempDir("validate") })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("cannot read pipeline file 'nope.yaml': no such file")
    expectNoStack(r)
  })

  it("with --log-format json, the error is one JSON line with the error's tag", async () => {
    const dir = setup(channelText.replace("pageSize: 25", "pageSize: x"))
    const r = await cli(["validate", "pipeline.yaml", "--log-format", "json"], { cwd: dir, env: env() })
    expect(r.code).toBe(2)
    const lines = r.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    const line = JSON.parse(lines[0]!) as Record<string, unknown>
    expect(line).toMatchObject({ level: "error", error: "ConfigError" })
    expect(line.message).toContain("sources.channel.with.pageSize")
    expect(typeof line.time).toBe("string")
  })

  it("a secret in a bad value is never echoed back", async () => {
    const dir = setup(channelText.replace("token: ${CHANNEL_TOKEN}", "token: [Sup3r-Secret-Value]"))
    const r = await cli(["validate", "pipeline.yaml"], { cwd: dir, env: env() })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("sources.channel.with.token")
    expect(r.stderr).not.toContain("Sup3r-Secret-Value")
  })
})

describe("plugins", () => {
  it("lists every built-in plugin by kind", async () => {
    const r = await cli(["plugins"], { cwd: tempDir("plugins") })
    expect(r.code).toBe(0)
    for (const kind of ["sources:", "transforms:", "sinks:", "state stores"]) expect(r.stdout).toContain(kind)
    for (const p of [...allPlugins, ...stateStores]) expect(r.stdout).toMatch(new RegExp(`^  ${p.name}\\s+\\S`, "m"))
    expect(stateStores.map((p) => p.name)).toEqual(["json", "sqlite", "postgres"])
    expect(r.stdout).toContain("effetl plugins <name>")
  })

  it("plugins sqlite shows the sink and the state store of that name", async () => {
    const r = await cli(["plugins", "sqlite"], { cwd: tempDir("plugins") })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^sqlite \(sink\)$/m)
    expect(r.stdout).toMatch(/^sqlite \(state store\)$/m)
    const json = await cli(["plugins", "json"], { cwd: tempDir("plugins") })
    expect(json.stdout).toMatch(/^json \(state store\)$/m)
  })

  for (const name of allPlugins.map((p) => p.name)) {
    it(`plugins ${name}: every option with its type, default and description`, async () => {
      const plugin = allPlugins.find((p) => p.name === name)!
      const r = await cli(["plugins", name], { cwd: tempDir("plugins") })
      expect(r.code, r.stderr).toBe(0)
      const text = r.stdout.replace(/\s+/g, " ") // descriptions are wrapped to the terminal
      expect(text).toContain(plugin.description.replace(/\s+/g, " "))
      const schema = JSONSchema.make(plugin.config) as { properties?: Record<string, { description?: string }> }
      for (const key of Object.keys(schema.properties ?? {})) expect(r.stdout).toMatch(new RegExp(`^  ${key}  \\(`, "m"))
    })
  }

  it("shows defaults and descriptions the user needs", async () => {
    const channel = await cli(["plugins", "channel"], { cwd: tempDir("plugins") })
    expect(channel.stdout).toMatch(/^  pageSize  \(integer 1\.\.1000, default 100\)\n      Images per page/m)
    expect(channel.stdout).toMatch(/^  token  \(string, required\)/m)
    expect(channel.stdout).toMatch(/^  retry\.maxRetries  \(integer 0\.\.20, default 5\)/m) // nested options too
    const csv = await cli(["plugins", "csv"], { cwd: tempDir("plugins") })
    expect(csv.stdout).toMatch(/^  mode  \("auto" \| "overwrite" \| "append", default "auto"\)/m)
    expect(csv.stdout).toMatch(/^  path  \(string, required\)\n      Where to write/m)
    const dedupe = await cli(["plugins", "dedupe-by-hash"], { cwd: tempDir("plugins") })
    expect(dedupe.stdout).toMatch(/^dedupe-by-hash \(transform\)/m)
    expect(dedupe.stdout).toMatch(/^  scope  \("product" \| "global", default "product"\)\n      `product`: /m)
  })

  it("plugins nosuch: exit 2 and the list of built-ins", async () => {
    const r = await cli(["plugins", "nosuch"], { cwd: tempDir("plugins") })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("unknown plugin 'nosuch'")
    for (const p of allPlugins) expect(r.stderr).toContain(p.name)
    expectNoStack(r)
  })

  it("plugins ./module.js describes a third-party plugin; a module that is no plugin is an error", async () => {
    const dir = tempDir("plugins")
    const core = path.join(root, "packages/core/dist/index.js")
    fs.writeFileSync(
      path.join(dir, "my-sink.mjs"),
      `import { Sink } from ${JSON.stringify(core)}
import * as Schema from "${path.join(root, "node_modules/effect/dist/esm/Schema.js")}"
export default Sink.define({
  name: "my-sink",
  description: "A sink of my own.",
  config: Schema.Struct({ target: Schema.String.annotations({ description: "Where it goes" }) }),
  make: () => { throw new Error("not used") }
})
`
    )
    fs.writeFileSync(path.join(dir, "not-a-plugin.mjs"), "export default 42\n")
    const r = await cli(["plugins", "./my-sink.mjs"], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^my-sink \(sink\)/m)
    expect(r.stdout).toMatch(/^  target  \(string, required\)\n      Where it goes/m)
    const bad = await cli(["plugins", "./not-a-plugin.mjs"], { cwd: dir })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("has no default export that is a plugin")
    expectNoStack(bad)
  })
})

// ---------------------------------------------------------------------------------------------
// schema

interface Node {
  type?: string | ReadonlyArray<string>
  enum?: ReadonlyArray<unknown>
  required?: ReadonlyArray<string>
  properties?: Record<string, Node>
  additionalProperties?: boolean | Node
  anyOf?: ReadonlyArray<Node>
  allOf?: ReadonlyArray<Node>
  not?: Node
  items?: Node
  $ref?: string
  minimum?: number
  maximum?: number
  pattern?: string
}

/**
 * The problems of `value` against `node`: a small structural check (types, enums, required,
 * properties, additionalProperties, anyOf, allOf, not, $ref, items, minimum/maximum, pattern) written for this test.
 * (Schema.test.ts checks the schema with Ajv and yaml-language-server.)
 */
const problems = (node: Node, value: unknown, defs: Record<string, Node>, at = "$"): Array<string> => {
  if (node.$ref !== undefined) {
    const def = defs[node.$ref.replace("#/$defs/", "")]
    if (def === undefined) return [`${at}: unresolved ${node.$ref}`]
    const { $ref: _, ...rest } = node
    return [...problems(def, value, defs, at), ...problems(rest, value, defs, at)]
  }
  const out: Array<string> = []
  for (const part of node.allOf ?? []) out.push(...problems(part, value, defs, at))
  if (node.anyOf && !node.anyOf.some((alt) => problems(alt, value, defs, at).length === 0)) out.push(`${at}: matches no alternative`)
  if (node.not && problems(node.not, value, defs, at).length === 0) out.push(`${at}: matches what it must not`)
  if (node.enum && !node.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) out.push(`${at}: not one of ${JSON.stringify(node.enum)}`)
  const types = node.type === undefined ? [] : Array.isArray(node.type) ? node.type : [node.type]
  const typeOf = (v: unknown) =>
    v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "number" ? (Number.isInteger(v) ? "integer" : "number") : typeof v
  if (types.length > 0 && !types.some((t) => t === typeOf(value) || (t === "number" && typeOf(value) === "integer"))) {
    return [...out, `${at}: expected ${types.join("|")}, got ${typeOf(value)}`]
  }
  if (typeof value === "number") {
    if (node.minimum !== undefined && value < node.minimum) out.push(`${at}: below ${node.minimum}`)
    if (node.maximum !== undefined && value > node.maximum) out.push(`${at}: above ${node.maximum}`)
  }
  if (typeof value === "string" && node.pattern !== undefined && !new RegExp(node.pattern, "u").test(value)) out.push(`${at}: does not match ${node.pattern}`)
  if (Array.isArray(value) && node.items) value.forEach((v, i) => out.push(...problems(node.items!, v, defs, `${at}[${i}]`)))
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>
    for (const k of node.required ?? []) if (!(k in obj)) out.push(`${at}.${k}: required`)
    for (const [k, v] of Object.entries(obj)) {
      const prop = node.properties?.[k]
      if (prop) out.push(...problems(prop, v, defs, `${at}.${k}`))
      else if (node.additionalProperties === false) out.push(`${at}.${k}: not allowed`)
      else if (typeof node.additionalProperties === "object") out.push(...problems(node.additionalProperties, v, defs, `${at}.${k}`))
    }
  }
  return out
}

describe("schema", () => {
  const demoLike = {
    version: 1,
    name: "demo",
    state: { path: ".effetl/state.json" },
    checkpoint: { everyRecords: 100 },
    deadLetter: { path: "out/dead-letter.jsonl" },
    sources: { channel: { use: "channel", with: { baseUrl: "http://127.0.0.1:8080", channelId: 5, token: "t", mode: "detailed", pageSize: 25 } } },
    transforms: [
      { use: "validate" },
      { use: "hash-content" },
      { use: "dedupe-by-hash", with: { scope: "product" } },
      { use: "normalise-sequence", with: { start: 1 } }
    ],
    sinks: { images_csv: { use: "csv", with: { path: "out/images.csv" } }, images_jsonl: { use: "jsonl", with: { path: "out/images.jsonl" } } }
  }

  it("prints a JSON Schema naming every built-in plugin and every option; a demo-like pipeline fits it and broken ones do not", async () => {
    const r = await cli(["schema"], { cwd: tempDir("schema") })
    expect(r.code, r.stderr).toBe(0)
    const schema = JSON.parse(r.stdout) as Node & { $schema: string; $defs?: Record<string, Node> }
    expect(schema.$schema).toMatch(/json-schema\.org/)
    expect(schema.type).toBe("object")
    expect(schema.required).toEqual(expect.arrayContaining(["version", "name", "sources", "sinks"]))
    const defs = schema.$defs ?? {}

    // Every plugin is a `use` alternative of its section, with every option of its config.
    const sections = {
      sources: schema.properties!.sources!.additionalProperties as Node,
      transforms: schema.properties!.transforms!.items!,
      sinks: schema.properties!.sinks!.additionalProperties as Node
    }
    for (const [section, plugins] of [["sources", registry.sources], ["transforms", registry.transforms], ["sinks", registry.sinks]] as const) {
      const alternatives = sections[section].anyOf!
      for (const p of plugins) {
        const alt = alternatives.find((a) => a.properties?.use?.enum?.includes(p.name))
        expect(alt, `${section}: ${p.name}`).toBeDefined()
        const options = Object.keys((JSONSchema.make(p.config) as Node).properties ?? {})
        expect(Object.keys(alt!.properties!.with!.properties ?? {}).sort(), p.name).toEqual(options.sort())
      }
    }

    expect(problems(schema, demoLike, defs)).toEqual([])
    // ... and the checks bite: a missing section, a wrong type, a wrong version.
    expect(problems(schema, { ...demoLike, sinks: undefined }, defs)).not.toEqual([])
    const { sinks: _, ...noSinks } = demoLike
    expect(problems(schema, noSinks, defs)).toContain("$.sinks: required")
    expect(problems(schema, { ...demoLike, checkpoint: { everyRecords: "often" } }, defs)).not.toEqual([])
    expect(problems(schema, { ...demoLike, version: 2 }, defs)).not.toEqual([])
  })

  it("a typo or a bad value in a built-in plugin's options does not fit the schema (so an editor flags it)", async () => {
    const r = await cli(["schema"], { cwd: tempDir("schema") })
    const schema = JSON.parse(r.stdout) as Node & { $defs?: Record<string, Node> }
    const defs = schema.$defs ?? {}
    const typo = structuredClone(demoLike) as any
    typo.sources.channel.with.pagesize = 3
    expect(problems(schema, typo, defs)).not.toEqual([])
    const badMode = structuredClone(demoLike) as any
    badMode.sinks.images_csv.with.mode = "sideways"
    expect(problems(schema, badMode, defs)).not.toEqual([])
    // A third-party plugin (any other `use`) takes any options.
    const external = structuredClone(demoLike) as any
    external.sinks.mine = { use: "./my-sink.js", with: { anything: true } }
    expect(problems(schema, external, defs)).toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------
// state without the plugins' environment

describe("state", () => {
  it("state show and reset need only the file's name and state.path, not the sources' environment variables", async () => {
    const dir = setup(channelText)
    fs.mkdirSync(path.join(dir, ".effetl"))
    const saved = {
      version: 1,
      pipelines: {
        channel: { run: { id: "r1", status: "running", startedAt: "2026-01-01T00:00:00.000Z" }, sources: {}, sinks: {}, transforms: {} },
        other: { run: null, sources: {}, sinks: {}, transforms: {} }
      }
    }
    fs.writeFileSync(path.join(dir, ".effetl/state.json"), JSON.stringify(saved))
    const noEnv = { CHANNEL_BASE_URL: "", CHANNEL_TOKEN: "" }
    const show = await cli(["state", "show", "pipeline.yaml"], { cwd: dir, env: noEnv })
    expect(show.code, show.stderr).toBe(0)
    const shown = JSON.parse(show.stdout) as { pipeline: string; state: string; run: { id: string; status: string } }
    expect(shown).toMatchObject({ pipeline: "channel", state: path.join(fs.realpathSync(dir), ".effetl/state.json"), run: { id: "r1", status: "running" } })
    const reset = await cli(["state", "reset", "pipeline.yaml"], { cwd: dir, env: noEnv })
    expect(reset.code, reset.stderr).toBe(0)
    expect(reset.stdout).toContain("state of pipeline 'channel' reset")
    expect(reset.stdout).toContain("forgot run r1 (running)")
    // Only this pipeline is forgotten.
    const after = JSON.parse(fs.readFileSync(path.join(dir, ".effetl/state.json"), "utf8")) as { pipelines: Record<string, unknown> }
    expect(Object.keys(after.pipelines)).toEqual(["other"])
  })

  it("state show of a pipeline that never ran, --state PATH, and a broken name", async () => {
    const dir = setup(channelText)
    const show = await cli(["state", "show", "pipeline.yaml", "--state", "custom/s.json"], { cwd: dir })
    expect(show.code, show.stderr).toBe(0)
    expect(JSON.parse(show.stdout)).toMatchObject({ pipeline: "channel", state: path.join(fs.realpathSync(dir), "custom/s.json"), run: null })
    expect(fs.existsSync(path.join(dir, "custom"))).toBe(false) // showing writes nothing
    fs.writeFileSync(path.join(dir, "bad.yaml"), channelText.replace("name: channel", "name: 'a b'"))
    const bad = await cli(["state", "show", "bad.yaml"], { cwd: dir })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("name")
    expectNoStack(bad)
  })

  it("a state file that is not an effetl state file is an error naming it for show, and is left as it is; reset keeps it aside", async () => {
    const dir = setup(channelText)
    fs.mkdirSync(path.join(dir, ".effetl"))
    fs.writeFileSync(path.join(dir, ".effetl/state.json"), "{ not json")
    const r = await cli(["state", "show", "pipeline.yaml"], { cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("state.json")
    expect(fs.readFileSync(path.join(dir, ".effetl/state.json"), "utf8")).toBe("{ not json")
    const reset = await cli(["state", "reset", "pipeline.yaml"], { cwd: dir })
    expect(reset.code, reset.stderr).toBe(0)
    const aside = fs.readdirSync(path.join(dir, ".effetl")).filter((f) => f.startsWith("state.json.corrupt-"))
    expect(aside.map((f) => fs.readFileSync(path.join(dir, ".effetl", f), "utf8"))).toEqual(["{ not json"])
  })
})

// ---------------------------------------------------------------------------------------------
// simulate

/** Starts `effetl simulate ...` and resolves once it printed its URL. */
const startSimulate = (args: ReadonlyArray<string>) =>
  new Promise<{ url: string; token: string; child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; stdout: string }> }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, [bin, "simulate", ...args], { cwd: tempDir("sim"), stdio: ["ignore", "pipe", "pipe"] })
      let stdout = ""
      let stderr = ""
      const done = new Promise<{ code: number | null; stdout: string }>((r) => child.on("exit", (code) => r({ code, stdout })))
      child.stdout!.on("data", (d) => {
        stdout += d
        const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1]
        const token = /token: (\S+)/.exec(stdout)?.[1]
        if (url && token && stdout.includes("Ctrl-C")) resolve({ url, token, child, done })
      })
      child.stderr!.on("data", (d) => (stderr += d))
      child.on("exit", (code) => reject(new Error(`simulate exited early (${code}): ${stderr}`)))
    }
  )

describe("simulate", () => {
  it("simulate channel --port 0 prints its URL and token, serves the API, and stops on SIGINT", async () => {
    const s = await startSimulate(["channel", "--port", "0"])
    const ok = await fetch(`${s.url}/api/v1/channel/5/product_images/detailed/?limit=2`, { headers: { Authorization: `Token ${s.token}` } })
    expect(ok.status).toBe(200)
    const body = (await ok.json()) as { count: number; results: Array<unknown> }
    expect(body.results).toHaveLength(2)
    expect(body.count).toBeGreaterThan(2)
    const refused = await fetch(`${s.url}/api/v1/channel/5/product_images/`)
    expect(refused.status).toBe(401)
    s.child.kill("SIGINT")
    const end = await s.done
    expect(end.code).toBe(0)
    expect(end.stdout).toContain("simulator stopped")
    await expect(fetch(`${s.url}/api/v1/channel/5/product_images/`)).rejects.toThrow()
  })

  it("simulate --faults injects the faults it names", async () => {
    const s = await startSimulate(["channel", "--faults", "5xx", "--fault-rate", "1"])
    const r = await fetch(`${s.url}/api/v1/channel/5/product_images/?limit=1`, { headers: { Authorization: `Token ${s.token}` } })
    expect(r.status).toBeGreaterThanOrEqual(500)
    s.child.kill("SIGINT")
    expect((await s.done).code).toBe(0)
  })

  it("simulate nosuch, --faults bogus, --fault-rate 2 and --port -1: exit 2 with a message", async () => {
    const cases: ReadonlyArray<[ReadonlyArray<string>, string]> = [
      [["nosuch"], "unknown simulator 'nosuch': built-in simulators: channel, acceo, shoplazza, bigcommerce"],
      [["channel", "--faults", "bogus"], "unknown fault(s) bogus; known: 5xx, 429, reset, truncate, latency"],
      [["channel", "--fault-rate", "2"], "--fault-rate must be from 0 to 1"],
      [["channel", "--port", "-1"], "--port must be an integer from 0 to 65535"]
    ]
    for (const [args, message] of cases) {
      const r = await cli(["simulate", ...args], { cwd: tempDir("sim") })
      expect(r.code, args.join(" ")).toBe(2)
      expect(r.stderr).toContain(message)
      expectNoStack(r)
    }
  })

  it("a port in use: exit 1 with a message, no stack trace", async () => {
    const r = await cli(["simulate", "channel", "--port", String(sim.port)], { cwd: tempDir("sim") })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`port ${sim.port} is already in use`)
    expectNoStack(r)
  })
})
