/**
 * What every hostile-input test checks: the exit code, one `error:` line naming the problem, no
 * stack trace, no raw control character, no secret in any output (stdout, stderr, every file
 * written), and earlier output left as it was.
 */
import { expect } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type CliResult, tempDir } from "../helpers.js"

/** A channel → csv + jsonl pipeline; `${CHANNEL_BASE_URL}` and `${CHANNEL_TOKEN}` come from the environment. */
export const channelPipeline = `version: 1
name: hostile
state: { path: .effetl/state.json }
checkpoint: { everyRecords: 20 }
deadLetter: { path: out/dead-letter.jsonl }
sources:
  channel:
    use: channel
    with:
      baseUrl: \${CHANNEL_BASE_URL}
      channelId: 5
      token: \${CHANNEL_TOKEN}
      mode: detailed
      pageSize: 10
      retry: { maxRetries: 1, baseDelay: 10 millis }
transforms:
  - use: validate
sinks:
  images_csv:
    use: csv
    with: { path: out/images.csv }
  images_jsonl:
    use: jsonl
    with: { path: out/images.jsonl }
`

/** A temp directory (readable by every user, for the tests that run the CLI as another one) holding `files`. */
export const workspace = (files: Record<string, string | Buffer> = {}): string => {
  const dir = tempDir("hostile")
  fs.chmodSync(dir, 0o755)
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), content)
  }
  return dir
}

/** Every file under `dir` with its bytes, by path relative to `dir`. */
export const snapshot = (dir: string): Map<string, Buffer> => {
  const out = new Map<string, Buffer>()
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) out.set(path.relative(dir, p), fs.readFileSync(p))
    }
  }
  if (fs.existsSync(dir)) walk(dir)
  return out
}

/** The files of `before` (or only `only`) are all still there with the same bytes. */
export const expectIntact = (dir: string, before: Map<string, Buffer>, only?: ReadonlyArray<string>) => {
  const after = snapshot(dir)
  const names = only ?? [...before.keys()]
  expect(names.length).toBeGreaterThan(0)
  for (const name of names) {
    expect(before.has(name), `${name} was there before`).toBe(true)
    expect(after.get(name)?.equals(before.get(name)!), `${name} is unchanged`).toBe(true)
  }
}

/** The problem's line: stderr holds exactly one `error:` line (or one JSON line of level error). */
export const errorLineOf = (r: CliResult): string => {
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("error:") || l.startsWith('{"time"') && l.includes('"level":"error"'))
  expect(lines, `one error line in:\n${r.stderr}`).toHaveLength(1)
  return lines[0]!
}

/**
 * A clean failure: the exit code, one error line matching `names` (every pattern), nothing after it,
 * no stack trace, no `internal error`, no raw control character anywhere in the output.
 */
export const expectCleanFailure = (r: CliResult, code: number, ...names: ReadonlyArray<string | RegExp>): string => {
  expect(r.code, `exit code; stderr:\n${r.stderr}`).toBe(code)
  const line = errorLineOf(r)
  for (const n of names) {
    if (typeof n === "string") expect(line).toContain(n)
    else expect(line).toMatch(n)
  }
  expect(r.stderr.endsWith(`${line}\n`), "the error is the last line").toBe(true)
  expectNoStack(r)
  expectNoControl(r)
  return line
}

/** No stack trace and no `internal error` in the output. */
export const expectNoStack = (r: CliResult) => {
  for (const text of [r.stdout, r.stderr]) {
    expect(text).not.toMatch(/^\s+at /m)
    expect(text).not.toMatch(/\.(ts|js|mjs|cjs):\d+:\d+/)
    expect(text).not.toContain("internal error")
  }
}

/** No raw control character (other than the line ends) in stdout or stderr. */
export const expectNoControl = (r: CliResult) => {
  for (const text of [r.stdout, r.stderr]) {
    expect(text.replace(/\n/g, "")).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/)
  }
}

/** None of `secrets` is in stdout, stderr or any file under `dir` (as text, or URL-encoded). */
export const expectNoSecrets = (r: CliResult, dir: string, secrets: ReadonlyArray<string>) => {
  const files = snapshot(dir)
  for (const secret of secrets) {
    expect(secret.length).toBeGreaterThan(5)
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      expect(r.stdout, "stdout").not.toContain(form)
      expect(r.stderr, "stderr").not.toContain(form)
      for (const [name, bytes] of files) expect(bytes.includes(form), `${name} holds a secret`).toBe(false)
    }
  }
}

/** A hostile HTTP server on 127.0.0.1: answers every request with `handler`. */
export const hostileServer = async (
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void
): Promise<{ readonly url: string; readonly requests: () => number; readonly close: () => Promise<void> }> => {
  let count = 0
  const sockets = new Set<import("node:net").Socket>()
  const server = http.createServer((req, res) => {
    count++
    handler(req, res)
  })
  server.on("connection", (s) => {
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      })
  }
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export const closedPort = async (): Promise<number> => {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * Runs the real binary as another user (uid/gid 65534, "nobody"), for permission tests: root reads
 * everything. The CLI's modules load first as this process's user, then it drops to nobody
 * (`asNobody.mjs`), so the checkout itself need not be readable by nobody. `env` is the whole environment.
 */
const asNobody = path.join(path.dirname(fileURLToPath(import.meta.url)), "asNobody.mjs")

export const effetlAs = (
  args: ReadonlyArray<string>,
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number }
): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [asNobody, ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000)
    child.on("error", reject)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
