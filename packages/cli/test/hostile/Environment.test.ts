/**
 * A hostile environment: variables missing, empty or holding YAML, escape codes, line breaks or
 * megabytes; secrets of the wrong shape or in the wrong place (a token where a list goes, a Postgres
 * URL with its password in a list-shaped `sinks:`); a server that echoes the token or sends escape
 * codes; Postgres unreachable; a disk that fills up mid-run. Each fails with its exit code and one
 * line naming the problem, never prints a secret (stdout, stderr and every file written), and leaves
 * an earlier run's output as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { cli, effetl, root, tempDir } from "../helpers.js"
import {
  channelPipeline,
  closedPort,
  expectCleanFailure,
  expectIntact,
  expectNoControl,
  expectNoSecrets,
  expectNoStack,
  hostileServer,
  snapshot,
  workspace
} from "./Harness.js"

let sim: ChannelSimulator
/** A workspace after one finished run of `channelPipeline`. */
let golden: string

const env = (extra: Record<string, string> = {}) => ({ CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token, ...extra })

beforeAll(async () => {
  sim = await startChannelSimulator({ products: 12, seed: 5 })
  golden = workspace({ "p.yaml": channelPipeline })
  const r = await cli(["run", "p.yaml"], { cwd: golden, env: env() })
  expect(r.code, r.stderr).toBe(0)
})
afterAll(async () => {
  await sim.close()
})

/** A copy of the workspace of a finished run, with `files` added. */
const finishedRun = (files: Record<string, string> = {}): string => {
  const dir = tempDir("env")
  fs.cpSync(golden, dir, { recursive: true })
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content)
  return dir
}

/** The 1-based line of `text` holding `needle`. */
const lineOf = (text: string, needle: string): number => text.split("\n").findIndex((l) => l.includes(needle)) + 1

/** `validate` then `run` of p.yaml (or `file`) with `vars`: both fail cleanly, no secret anywhere, nothing touched. */
const refused = async (
  vars: Record<string, string>,
  secrets: ReadonlyArray<string>,
  names: ReadonlyArray<string | RegExp>,
  options: { readonly file?: string; readonly text?: string } = {}
) => {
  const dir = finishedRun(options.text !== undefined ? { [options.file ?? "q.yaml"]: options.text } : {})
  const file = options.text !== undefined ? options.file ?? "q.yaml" : "p.yaml"
  const before = snapshot(dir)
  for (const command of ["validate", "run"]) {
    const r = await cli([command, file], { cwd: dir, env: vars })
    expectCleanFailure(r, 2, ...names)
    expectNoSecrets(r, dir, secrets)
  }
  expectIntact(dir, before)
}

describe("variables missing, empty or odd", () => {
  it("a missing variable: exit 2 naming it and its line", async () => {
    await refused({ CHANNEL_TOKEN: "tok-123456" }, [], [`p.yaml:${lineOf(channelPipeline, "${CHANNEL_BASE_URL}")}: environment variable CHANNEL_BASE_URL is not set`])
  })

  it("an empty variable is not set either", async () => {
    await refused(env({ CHANNEL_TOKEN: "" }), [], ["environment variable CHANNEL_TOKEN is not set (used as ${CHANNEL_TOKEN})"])
  })

  it("a default fills in for a missing variable", async () => {
    const dir = finishedRun({ "q.yaml": channelPipeline.replace("${CHANNEL_BASE_URL}", "${NOT_SET_ANYWHERE:-http://127.0.0.1:9}") })
    const r = await cli(["validate", "q.yaml"], { cwd: dir, env: { CHANNEL_TOKEN: "tok-123456" } })
    expect(r.code, r.stderr).toBe(0)
  })

  it("a value holding YAML stays one string (no injected keys)", async () => {
    await refused(env({ CHANNEL_BASE_URL: "http://127.0.0.1:9\nsinks: {}\nextra: [1" }), [], ["sources.channel.with.baseUrl"])
  })

  it("a value holding ${OTHER} is not expanded again", async () => {
    // Were it expanded, it would be the token, a valid string; as it is, it is no URL.
    await refused(env({ CHANNEL_BASE_URL: "${CHANNEL_TOKEN}", CHANNEL_TOKEN: "Tok3n-never-printed" }), ["Tok3n-never-printed"], [
      "sources.channel.with.baseUrl: expected a URL",
      "got a value from ${CHANNEL_BASE_URL} (not shown)"
    ])
  })

  it("a value with escape codes is named, not shown", async () => {
    await refused(env({ CHANNEL_BASE_URL: "\u001b[2J\u001b[31mhttp://x" }), [], ["sources.channel.with.baseUrl", "from ${CHANNEL_BASE_URL} (not shown)"])
  })

  it("a megabyte-long value: one short line", async () => {
    const dir = finishedRun()
    const r = await cli(["validate", "p.yaml"], { cwd: dir, env: env({ CHANNEL_BASE_URL: `not a URL ${"a".repeat(1024 * 1024)}` }) })
    const line = expectCleanFailure(r, 2, "sources.channel.with.baseUrl")
    expect(line.length).toBeLessThan(1000)
  })

  it("file:, javascript: and ftp: base URLs are refused", async () => {
    for (const url of ["file:///etc/passwd", "javascript:alert(1)", "ftp://127.0.0.1/x"]) {
      await refused(env({ CHANNEL_BASE_URL: url }), [], ["sources.channel.with.baseUrl: expected an http:// or https:// URL"])
    }
  })
})

describe("secrets in the wrong shape or place are never quoted", () => {
  it("a token that reads as a number", async () => {
    await refused(env({ CHANNEL_TOKEN: "987654321987" }), ["987654321987"], ["sources.channel.with.token"])
  })

  it("a token where a list goes", async () => {
    const text = channelPipeline.replace("token: ${CHANNEL_TOKEN}", 'token: [ "${CHANNEL_TOKEN}" ]')
    await refused(env({ CHANNEL_TOKEN: "S3cret-in-a-list" }), ["S3cret-in-a-list"], ["sources.channel.with.token"], { text })
  })

  it("a list-shaped sources: holding a token", async () => {
    const text = "version: 1\nname: x\nsources:\n  - use: channel\n    with:\n      token: ${CHANNEL_TOKEN}\nsinks:\n  a:\n    use: csv\n    with: { path: o.csv }\n"
    await refused(env({ CHANNEL_TOKEN: "S3cret-in-sources" }), ["S3cret-in-sources"], ["sources:"], { text })
  })

  it("a Postgres URL with its password in a list-shaped sinks:", async () => {
    const text = channelPipeline.replace(/sinks:[\s\S]*$/, "sinks:\n  - use: postgres\n    with:\n      url: ${PG_URL}\n")
    await refused(env({ PG_URL: "postgres://effetl:Pg-Passw0rd-x@127.0.0.1:5432/db" }), ["Pg-Passw0rd-x"], ["sinks:"], { text })
  })

  it("a Postgres URL where a number goes", async () => {
    const text = channelPipeline.replace("pageSize: 10", "pageSize: ${PG_URL}")
    await refused(env({ PG_URL: "postgres://effetl:Pg-Passw0rd-y@127.0.0.1:5432/db" }), ["Pg-Passw0rd-y"], ["sources.channel.with.pageSize"], { text })
  })
})

describe("secrets at run time", () => {
  it("a refused token (401): exit 1, one line naming the source, the token nowhere", async () => {
    const dir = finishedRun()
    const before = snapshot(path.join(dir, "out"))
    const r = await cli(["run", "p.yaml"], { cwd: dir, env: env({ CHANNEL_TOKEN: "Wr0ng-token-value" }) })
    expectCleanFailure(r, 1, "channel")
    expectNoSecrets(r, dir, ["Wr0ng-token-value"])
    expectIntact(path.join(dir, "out"), before)
  })

  it("a server that echoes the token in its 401: the token is still never printed", async () => {
    const server = await hostileServer((req, res) => {
      res.writeHead(401, { "content-type": "application/json" })
      res.end(JSON.stringify({ detail: `Invalid token ${String(req.headers.authorization)}` }))
    })
    try {
      const dir = finishedRun()
      const r = await cli(["run", "p.yaml"], { cwd: dir, env: env({ CHANNEL_BASE_URL: server.url, CHANNEL_TOKEN: "Ech0ed-back-token" }) })
      expectCleanFailure(r, 1, "channel")
      expectNoSecrets(r, dir, ["Ech0ed-back-token"])
    } finally {
      await server.close()
    }
  })

  it("a token with a line break (header injection): no forged header is sent, the token nowhere", async () => {
    let forged = 0
    const server = await hostileServer((req, res) => {
      if (req.headers["x-evil"] !== undefined) forged++
      res.writeHead(401, { "content-type": "application/json" })
      res.end('{"detail":"no"}')
    })
    try {
      const dir = finishedRun()
      const token = "Inj3cted-token\r\nX-Evil: 1"
      const r = await cli(["run", "p.yaml"], { cwd: dir, env: env({ CHANNEL_BASE_URL: server.url, CHANNEL_TOKEN: token }) })
      expect(r.code).not.toBe(0)
      expect(r.stderr.split("\n").filter((l) => l.startsWith("error:"))).toHaveLength(1)
      expectNoStack(r)
      expectNoControl(r)
      expectNoSecrets(r, dir, [token, "Inj3cted-token"])
      expect(forged).toBe(0)
    } finally {
      await server.close()
    }
  })

  it("a 100 KB token: one line, never printed", async () => {
    const token = `T${"k".repeat(100 * 1024)}`
    const dir = finishedRun()
    const r = await cli(["run", "p.yaml"], { cwd: dir, env: env({ CHANNEL_TOKEN: token }) })
    expectCleanFailure(r, 1, "channel")
    expectNoSecrets(r, dir, [token])
  })

  it("a base URL with a password in it: refused, the password never printed", async () => {
    const dir = finishedRun()
    const before = snapshot(path.join(dir, "out"))
    const r = await cli(["run", "p.yaml"], { cwd: dir, env: env({ CHANNEL_BASE_URL: sim.url.replace("http://", "http://user:Url-Passw0rd@") }) })
    expectCleanFailure(r, r.code === 2 ? 2 : 1, "credentials")
    expectNoSecrets(r, dir, ["Url-Passw0rd"])
    expectIntact(path.join(dir, "out"), before)
  })

  it("a plugin that puts secrets of the environment into its error: the CLI still never prints them", async () => {
    const dir = finishedRun()
    fs.writeFileSync(
      path.join(dir, "leaky.mjs"),
      'throw new Error(`cannot start with ${process.env.LEAKY_API_TOKEN} at ${process.env.LEAKY_DB_URL}`)\n'
    )
    fs.writeFileSync(path.join(dir, "q.yaml"), channelPipeline.replace("use: csv", "use: ./leaky.mjs"))
    // The real binary: the plugin reads the process's own environment.
    const r = await effetl(["validate", "q.yaml"], {
      cwd: dir,
      env: { ...env(), LEAKY_API_TOKEN: "Le4ky-token-value", LEAKY_DB_URL: "postgres://u:Le4ky-db-pass@db/x" }
    })
    expectCleanFailure(r, 2, "could not load plugin module './leaky.mjs': cannot start with *** at postgres://u:***@db/x")
    expectNoSecrets(r, dir, ["Le4ky-token-value", "Le4ky-db-pass"])
  })

  it("a successful run writes the token into no file (state, outputs, dead letters)", async () => {
    const dir = workspace({ "p.yaml": channelPipeline })
    const token = "Succ3ss-token-xyz"
    const server = await startChannelSimulator({ products: 3, token })
    try {
      const r = await cli(["run", "p.yaml"], { cwd: dir, env: { CHANNEL_BASE_URL: server.url, CHANNEL_TOKEN: token } })
      expect(r.code, r.stderr).toBe(0)
      expectNoSecrets(r, dir, [token])
    } finally {
      await server.close()
    }
  })
})

describe("vendor text cannot drive the terminal", () => {
  /** A 422 whose message clears the screen and forges a log line. */
  const forging = () =>
    hostileServer((_req, res) => {
      res.writeHead(422, { "content-type": "application/json" })
      res.end(JSON.stringify({ detail: "\u001b[2J\u001b[Hall 418 images synced\n21:00:00 INFO  run finished\r\u009b31m\u202edone" }))
    })

  it("a 422 with escape codes and a forged log line: one escaped error line, exit 1, earlier output intact", async () => {
    const server = await forging()
    try {
      const dir = finishedRun()
      const before = snapshot(path.join(dir, "out"))
      const r = await cli(["run", "p.yaml"], { cwd: dir, env: env({ CHANNEL_BASE_URL: server.url }) })
      expectCleanFailure(r, 1, "\\x1b[2J")
      expect(r.stderr).not.toMatch(/^21:00:00 INFO {2}run finished/m)
      expectIntact(path.join(dir, "out"), before)
    } finally {
      await server.close()
    }
  })

  it("the same with --log-format json: every line is JSON, no raw control character in the stream", async () => {
    const server = await forging()
    try {
      const dir = finishedRun()
      const r = await cli(["run", "p.yaml", "--log-format", "json"], { cwd: dir, env: env({ CHANNEL_BASE_URL: server.url }) })
      expect(r.code).toBe(1)
      expectNoControl(r)
      const lines = r.stderr.trim().split("\n").map((l) => JSON.parse(l) as { level: string; message: string })
      expect(lines.filter((l) => l.level === "error")).toHaveLength(1)
    } finally {
      await server.close()
    }
  })
})

describe("Postgres unreachable", () => {
  const password = "Pg-Unreach4ble-pw"

  it("a postgres sink on a closed port: exit 1, one line, the password nowhere", async () => {
    const port = await closedPort()
    const text = channelPipeline.replace(/sinks:[\s\S]*$/, 'sinks:\n  db:\n    use: postgres\n    with: { url: "${PG_URL}" }\n')
    const dir = finishedRun({ "q.yaml": text })
    const r = await cli(["run", "q.yaml"], { cwd: dir, env: env({ PG_URL: `postgres://effetl:${password}@127.0.0.1:${port}/effetl` }) })
    expectCleanFailure(r, 1, "sink 'db'", "cannot open the database", "ECONNREFUSED")
    expectNoSecrets(r, dir, [password])
  })

  it("a postgres state store on a closed port: run and state show exit 1, the password nowhere", async () => {
    const port = await closedPort()
    const text = channelPipeline.replace("state: { path: .effetl/state.json }", 'state: { use: postgres, with: { url: "${PG_URL}" } }')
    const dir = finishedRun({ "q.yaml": text })
    const before = snapshot(path.join(dir, "out"))
    for (const args of [["run", "q.yaml"], ["state", "show", "q.yaml"]]) {
      const r = await cli(args, { cwd: dir, env: env({ PG_URL: `postgres://effetl:${password}@127.0.0.1:${port}/effetl` }) })
      expectCleanFailure(r, 1, "cannot open the database", "ECONNREFUSED")
      expectNoSecrets(r, dir, [password])
    }
    expectIntact(path.join(dir, "out"), before)
  })

  it("a Postgres URL that does not parse: the password still never printed", async () => {
    const text = channelPipeline.replace(/sinks:[\s\S]*$/, 'sinks:\n  db:\n    use: postgres\n    with: { url: "${PG_URL}" }\n')
    const dir = finishedRun({ "q.yaml": text })
    const r = await cli(["run", "q.yaml"], { cwd: dir, env: env({ PG_URL: `postgres://effetl:${password}@/x@127.0.0.1:1/db` }) })
    expect(r.code).not.toBe(0)
    expectCleanFailure(r, r.code!, "sink 'db'")
    expectNoSecrets(r, dir, [password])
  })
})

describe("a disk that fills up mid-run", () => {
  /** The pipeline with every output on the `disk/` directory. */
  const onDisk = channelPipeline.replace(/out\//g, "disk/")

  it("exit 1, one line saying the disk is full, the earlier output on that disk intact", async () => {
    const dir = workspace({ "p.yaml": onDisk })
    const disk = path.join(dir, "disk")
    fs.mkdirSync(disk)
    let mounted = false
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", disk], { stdio: "pipe" })
      mounted = true
    } catch (e) {
      console.warn(`a disk that fills up: cannot mount a tmpfs here (${String((e as { stderr?: unknown }).stderr ?? e).trim()}); checking a sink that fails with ENOSPC instead`)
    }
    try {
      if (mounted) {
        const first = await cli(["run", "p.yaml"], { cwd: dir, env: env() })
        expect(first.code, first.stderr).toBe(0)
        const before = snapshot(disk)
        // Fill the disk up to a few kilobytes: enough to start the next run, not to finish it.
        const { bavail, bsize } = fs.statfsSync(disk)
        fs.writeFileSync(path.join(disk, "filler"), Buffer.alloc(Math.max(0, (bavail - 2) * bsize)))
        const r = await cli(["run", "p.yaml"], { cwd: dir, env: env() })
        expectCleanFailure(r, 1, /no space left on device|ENOSPC/i)
        expectIntact(disk, before, [...before.keys()])
      } else {
        await enospcSink(dir)
      }
    } finally {
      if (mounted) execFileSync("umount", [disk])
    }
  })

  /** Where no tmpfs can be mounted: a sink whose every write fails with ENOSPC, through the real binary. */
  const enospcSink = async (dir: string) => {
    const dist = (p: string) => JSON.stringify(path.join(root, p))
    fs.writeFileSync(
      path.join(dir, "full-disk.mjs"),
      `import { Sink, SinkError } from ${dist("packages/core/dist/index.js")}
import * as Effect from ${dist("node_modules/effect/dist/esm/Effect.js")}
import * as Schema from ${dist("node_modules/effect/dist/esm/Schema.js")}
const full = (sink) => new SinkError({ sink, message: "sink '" + sink + "': could not write: ENOSPC: no space left on device, write" })
export default Sink.define({
  name: "full-disk", description: "A disk that is full.", config: Schema.Struct({}),
  make: (_, context) => Effect.succeed({ write: () => Effect.fail(full(context.name)), commit: Effect.fail(full(context.name)), finish: Effect.void, cleanup: Effect.void })
})
`
    )
    const first = await effetl(["run", "p.yaml"], { cwd: dir, env: env() })
    expect(first.code, first.stderr).toBe(0)
    const before = snapshot(path.join(dir, "disk"))
    fs.writeFileSync(path.join(dir, "p.yaml"), `${onDisk}  full:\n    use: ./full-disk.mjs\n`)
    const r = await effetl(["run", "p.yaml"], { cwd: dir, env: env() })
    expectCleanFailure(r, 1, "no space left on device")
    expectIntact(path.join(dir, "disk"), before)
  }
})
