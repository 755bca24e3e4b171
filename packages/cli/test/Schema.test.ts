/**
 * `effetl schema` in the clients people use it with: Ajv (strict, draft 2019-09) compiles it and
 * every shipped example fits it; yaml-language-server, spawned over stdio with a small LSP client,
 * completes an option name, shows an option's description on hover and flags `use: chanel`.
 * `--plugin` and `--for` add outside plugins with their options.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import Ajv2019Module from "ajv/dist/2019.js"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { createMessageConnection, type MessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node"
import * as YAML from "yaml"
import { cli, root, tempDir } from "./helpers.js"

const Ajv2019 = Ajv2019Module.default

const examples = path.join(root, "examples")
const exampleFiles = fs.readdirSync(examples).filter((f) => f.endsWith(".yaml")).sort()

/** The schema `effetl schema <args>` prints, run in `cwd`. */
const schemaOf = async (args: ReadonlyArray<string> = [], cwd = tempDir("schema")): Promise<Record<string, unknown>> => {
  const r = await cli(["schema", ...args], { cwd })
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

/** A strict Ajv validator of the schema: compiling it throws on anything strict mode refuses. */
const compile = (schema: Record<string, unknown>) => new Ajv2019({ strict: true, allErrors: true }).compile(schema)

const channelExample = () => YAML.parse(fs.readFileSync(path.join(examples, "channel.yaml"), "utf8")) as any

describe("the schema in Ajv (strict, draft 2019-09)", () => {
  it("compiles, and every shipped example fits it (with its ${VAR} values as written)", async () => {
    const validate = compile(await schemaOf())
    expect(exampleFiles.length).toBeGreaterThanOrEqual(6)
    for (const file of exampleFiles) {
      const ok = validate(YAML.parse(fs.readFileSync(path.join(examples, file), "utf8")))
      expect(ok, `${file}: ${JSON.stringify(validate.errors)}`).toBe(true)
    }
  })

  it("every option of the file and of every plugin has its description beside it (what an editor's hover shows)", async () => {
    const undocumented: Array<string> = []
    const walk = (node: unknown, at: string): void => {
      if (typeof node !== "object" || node === null) return
      const n = node as Record<string, unknown>
      for (const [key, child] of Object.entries((n.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        if (typeof child.description !== "string" || child.description.length === 0) undocumented.push(`${at}.${key}`)
        walk(child, `${at}.${key}`)
      }
      for (const key of ["anyOf", "allOf"]) (n[key] as Array<unknown> | undefined)?.forEach((c, i) => walk(c, `${at}[${i}]`))
      for (const key of ["items", "additionalProperties"]) walk(n[key], `${at}.${key}`)
    }
    walk(await schemaOf(), "$")
    expect(undocumented).toEqual([])
  })

  it("takes ${VAR} and ${VAR:-default} in typed, enum and patterned options, and still refuses what is wrong", async () => {
    const validate = compile(await schemaOf())
    const env = channelExample()
    Object.assign(env.sources.channel.with, { channelId: "${ID:-5}", mode: "${MODE}", pageSize: "${PAGE_SIZE:-25}", baseUrl: "${URL}", activeOnly: "${ACTIVE}" })
    env.checkpoint.everyRecords = "${EVERY}"
    expect(validate(env), JSON.stringify(validate.errors)).toBe(true)
    for (const [key, value] of [["channelId", "five"], ["mode", "sideways"], ["pageSize", 0], ["baseUrl", "ftp://x"], ["pagesize", 3]] as const) {
      const bad = channelExample()
      bad.sources.channel.with[key] = value
      expect(validate(bad), `${key}: ${JSON.stringify(value)}`).toBe(false)
    }
  })

  it("refuses a use: one typo from a built-in or naming another section's built-in, and takes module paths and packages; knows the cluster: section", async () => {
    const validate = compile(await schemaOf())
    const withUse = (use: string) => {
      const doc = channelExample()
      doc.sources.channel.use = use
      return validate(doc)
    }
    for (const typo of ["chanel", "channell", "Channel", "cahnnel", "shoplaza", "csv"]) expect(withUse(typo), typo).toBe(false)
    for (const outside of ["./plugins/x.mjs", "../x.js", "@acme/effetl-source-shopify", "effetl-source-shopify"]) {
      expect(withUse(outside), outside).toBe(true)
    }
    const cluster = channelExample()
    cluster.cluster = { postgres: "${PG_URL}", shardsPerGroup: "${SHARDS:-300}" }
    expect(validate(cluster), JSON.stringify(validate.errors)).toBe(true)
    cluster.cluster = { postgress: "${PG_URL}" }
    expect(validate(cluster)).toBe(false)
    const transformTypo = channelExample()
    transformTypo.transforms[0].use = "validat"
    expect(validate(transformTypo)).toBe(false)
  })

  it("--for a pipeline file adds the outside plugins it uses, with their options; --plugin adds one by name", async () => {
    const generic = compile(await schemaOf())
    const forFile = await schemaOf(["--for", path.join(examples, "plugin.yaml")])
    const named = await schemaOf(["--plugin", "./plugins/static-source.mjs"], examples)
    expect(named).toEqual(forFile)
    const validate = compile(forFile)
    const doc = YAML.parse(fs.readFileSync(path.join(examples, "plugin.yaml"), "utf8")) as any
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true)
    const branch = ((forFile.properties as any).sources.additionalProperties.anyOf as Array<any>).find((a) =>
      a.properties.use.enum?.includes("./plugins/static-source.mjs")
    )
    expect(branch.properties.with.properties.products.description).toBe("Product id → its images ({ id, url, position }).")
    // A typo in the outside plugin's options: only the schema that knows it can tell.
    doc.sources.catalogue.with.product = doc.sources.catalogue.with.products
    delete doc.sources.catalogue.with.products
    expect(validate(doc)).toBe(false)
    expect(generic(doc)).toBe(true)
  })

  it("an outside plugin with a recursive config: a reference to an $anchor that Ajv resolves", async () => {
    const schema = await schemaOf(["--plugin", "./tree-sink.mjs"], path.join(import.meta.dirname, "fixtures"))
    const validate = compile(schema)
    const doc = channelExample()
    doc.sinks.tree = { use: "./tree-sink.mjs", with: { root: { name: "a", children: [{ name: "b", children: [{ name: "c", children: [] }] }] } } }
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true)
    doc.sinks.tree.with.root.children[0].children[0].nmae = "typo"
    expect(validate(doc)).toBe(false)
  })

  it("--plugin and --for name what they cannot load: exit 2, one line", async () => {
    const dir = tempDir("schema")
    const missing = await cli(["schema", "--plugin", "./nope.mjs"], { cwd: dir })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/^error: .*nope\.mjs.*no such file/)
    fs.writeFileSync(path.join(dir, "p.yaml"), "version: 1\nname: p\nsources:\n  a:\n    use: ./gone.mjs\nsinks: {}\n")
    const gone = await cli(["schema", "--for", "p.yaml"], { cwd: dir })
    expect(gone.code).toBe(2)
    expect(gone.stderr).toMatch(/^error: p\.yaml: sources\.a\.use: cannot load plugin module '\.\/gone\.mjs'.* \(line 5\)\n$/)
  })
})

// ---------------------------------------------------------------------------------------------
// yaml-language-server

/** yaml-language-server over stdio, configured with `schema` (a file:// URL) for the file `doc`. */
class LanguageServer {
  readonly diagnostics = new Map<string, Array<{ range: { start: { line: number } }; message: string }>>()
  private readonly waiting = new Map<string, () => void>()
  private constructor(readonly child: ChildProcess, readonly connection: MessageConnection) {}

  static async start(schema: string, doc: string): Promise<LanguageServer> {
    const pkg = createRequire(import.meta.url).resolve("yaml-language-server/package.json")
    const child = spawn(process.execPath, [path.join(path.dirname(pkg), "bin/yaml-language-server"), "--stdio"], { stdio: ["pipe", "pipe", "pipe"] })
    const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!))
    const server = new LanguageServer(child, connection)
    const yaml = { validate: true, hover: true, completion: true, schemas: { [schema]: [doc] }, schemaStore: { enable: false } }
    connection.onRequest("workspace/configuration", (p: { items: Array<{ section?: string }> }) =>
      p.items.map((i) => (i.section === "yaml" ? yaml : i.section === undefined ? { yaml } : null)))
    connection.onRequest("client/registerCapability", () => null)
    connection.onRequest("window/workDoneProgress/create", () => null)
    connection.onNotification("textDocument/publishDiagnostics", (p: { uri: string; diagnostics: Array<any> }) => {
      server.diagnostics.set(p.uri, p.diagnostics)
      // The first publication may come before the schema is applied: wait for one with findings.
      if (p.diagnostics.length > 0) server.waiting.get(p.uri)?.()
    })
    connection.listen()
    await connection.sendRequest("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(path.dirname(doc)).href,
      capabilities: { workspace: { configuration: true }, textDocument: { hover: { contentFormat: ["markdown"] }, completion: {} } }
    })
    await connection.sendNotification("initialized", {})
    await connection.sendNotification("workspace/didChangeConfiguration", { settings: { yaml } })
    return server
  }

  /** Opens a document and waits for its diagnostics (the document must have some). */
  async open(uri: string, text: string) {
    const published = new Promise<void>((resolve) => this.waiting.set(uri, resolve))
    await this.connection.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId: "yaml", version: 1, text } })
    await published
    return this.diagnostics.get(uri)!
  }

  async close() {
    this.connection.dispose()
    this.child.kill()
  }
}

describe("the schema in yaml-language-server", () => {
  const dir = tempDir("lsp")
  const file = path.join(dir, "pipeline.yaml")
  const uri = pathToFileURL(file).href
  // An outside plugin's typo is nothing to flag; a built-in's is; ${VAR} values are fine.
  const text = [
    "version: 1",
    "name: editor",
    "checkpoint:",
    "  everyRecords: 100",
    "sources:",
    "  typo:",
    "    use: chanel",
    "    with: { baseUrl: http://127.0.0.1:8080, channelId: 5, token: t }",
    "  main:",
    "    use: channel",
    "    with:",
    "      baseUrl: ${CHANNEL_BASE_URL}",
    "      channelId: ${CHANNEL_ID:-5}",
    "      token: ${CHANNEL_TOKEN}",
    "      mode: ${MODE:-detailed}",
    "      pageSize: 25",
    "      ",
    "sinks:",
    "  out:",
    "    use: csv",
    "    with: { path: out/images.csv, mode: overwrite }",
    ""
  ].join("\n")
  const lines = text.split("\n")
  const lineOf = (needle: string) => lines.findIndex((l) => l.includes(needle))
  let server: LanguageServer
  let diagnostics: Array<{ range: { start: { line: number } }; message: string }>

  beforeAll(async () => {
    const schema = path.join(dir, "effetl.schema.json")
    const r = await cli(["schema"], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    fs.writeFileSync(schema, r.stdout)
    fs.writeFileSync(file, text)
    server = await LanguageServer.start(pathToFileURL(schema).href, file)
    diagnostics = await server.open(uri, text)
  }, 60_000)
  afterAll(async () => {
    await server?.close()
  })

  it("flags use: chanel (and nothing else: the ${VAR} values fit)", () => {
    expect(diagnostics.map((d) => [d.range.start.line, d.message])).toEqual([[lineOf("use: chanel"), 'Value is not accepted. Valid values: "channel".']])
  })

  it("hover on an option shows its description, for a plain and for a ${VAR} value", async () => {
    const hover = async (needle: string) => {
      const line = lineOf(needle)
      const r = await server.connection.sendRequest("textDocument/hover", {
        textDocument: { uri },
        position: { line, character: lines[line]!.indexOf(needle) + 2 }
      }) as { contents: { value: string } }
      // The server escapes Markdown in a description (`limit` comes as \`limit\`).
      return r.contents.value.replace(/\\(.)/g, "$1")
    }
    expect(await hover("pageSize")).toContain("Images per page (`limit`).")
    expect(await hover("everyRecords")).toContain("Commit every sink and save checkpoints after this many records.")
    expect(await hover("channelId: ${")).toContain("The sales channel id.")
    expect(await hover("mode: ${")).toContain("What to read: `detailed`")
  })

  it("completes the options of the plugin a source uses", async () => {
    const r = await server.connection.sendRequest("textDocument/completion", {
      textDocument: { uri },
      position: { line: lineOf("pageSize") + 1, character: 6 }
    }) as { items: Array<{ label: string }> }
    const labels = r.items.map((i) => i.label)
    expect(labels).toEqual(expect.arrayContaining(["idLookup", "activeOnly", "concurrency", "retry"]))
    // Only what is left to write, of this plugin only.
    expect(labels).not.toContain("pageSize")
    expect(labels).not.toContain("path")
  })
})
