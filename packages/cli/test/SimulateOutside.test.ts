/**
 * `effetl simulate <path-or-package>` serves an outside plugin's simulator: a module in a temp
 * directory (outside this repository, with @effetl/core installed next to it as a plugin package
 * would have it) that exports `simulator = Simulator.define(...)`. The built CLI is spawned, and the
 * test fetches from what it serves.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, cli, root, tempDir } from "./helpers.js"

/** A tiny simulator on core's `Server.serve`: `GET /hello` answers `{"hello": <who>}`. */
const simulatorModule = (who: string) => `
import { Server, Simulator } from "@effetl/core/simulator"

export const simulator = Simulator.define({
  name: "tiny",
  description: "a tiny outside API",
  start: async ({ port, faults }) => {
    const served = await Server.serve({
      name: "tiny",
      port,
      faults,
      respond: (req) => req.url === "/hello" ? Server.json(200, { hello: ${JSON.stringify(who)} }) : Server.json(404, { error: "no such path" }),
      serverErrors: [Server.json(503, { error: "down" })],
      throttled: () => Server.json(429, { error: "slow down" })
    })
    return { url: served.origin, lines: ["  token: not-a-secret"], close: served.close }
  }
})
`

/** A directory outside the repository where `@effetl/core` resolves, as in a plugin's own package. */
const outsideDir = (prefix: string): string => {
  const dir = tempDir(prefix)
  fs.mkdirSync(path.join(dir, "node_modules/@effetl"), { recursive: true })
  fs.symlinkSync(path.join(root, "packages/core"), path.join(dir, "node_modules/@effetl/core"), "dir")
  return dir
}

/** Spawns `effetl simulate <spec>` in `cwd`; resolves with its URL once it is serving. */
const serve = (spec: string, cwd: string, extra: ReadonlyArray<string> = []) =>
  new Promise<{ url: string; stop: () => Promise<{ code: number | null; stdout: string }> }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "simulate", spec, ...extra], { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    const exited = new Promise<{ code: number | null; stdout: string }>((r) => child.on("exit", (code) => r({ code, stdout })))
    const early = (code: number | null) => reject(new Error(`simulate exited early (${code}): ${stderr}`))
    child.on("exit", early)
    child.stderr.on("data", (d) => (stderr += d))
    child.stdout.on("data", (d) => {
      stdout += d
      const url = /tiny simulator listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1]
      if (url !== undefined && stdout.includes("Ctrl-C")) {
        child.off("exit", early)
        resolve({
          url,
          stop: () => {
            child.kill("SIGINT")
            return exited
          }
        })
      }
    })
  })

describe("effetl simulate <path-or-package>", () => {
  it("serves a module path relative to the working directory, with its lines and --faults", async () => {
    const dir = outsideDir("sim-path")
    fs.mkdirSync(path.join(dir, "sims"))
    fs.writeFileSync(path.join(dir, "sims/tiny.mjs"), simulatorModule("from a path"))
    const s = await serve("./sims/tiny.mjs", dir)
    const r = await fetch(`${s.url}/hello`)
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual({ hello: "from a path" })
    const end = await s.stop()
    expect(end.code).toBe(0)
    expect(end.stdout).toContain("  token: not-a-secret")
    expect(end.stdout).toContain("simulator stopped")

    const faulty = await serve("./sims/tiny.mjs", dir, ["--faults", "5xx", "--fault-rate", "1"])
    expect((await fetch(`${faulty.url}/hello`)).status).toBe(503)
    expect((await faulty.stop()).code).toBe(0)
  })

  it("serves a package's simulator, from its main module or its /simulator export", async () => {
    const dir = outsideDir("sim-package")
    const pkg = path.join(dir, "node_modules/effetl-source-tiny")
    fs.mkdirSync(path.join(pkg, "dist"), { recursive: true })
    fs.writeFileSync(
      path.join(pkg, "package.json"),
      JSON.stringify({ name: "effetl-source-tiny", type: "module", exports: { ".": "./dist/index.js", "./simulator": "./dist/simulator.js" } })
    )
    fs.writeFileSync(path.join(pkg, "dist/index.js"), "export const plugin = {}\n")
    fs.writeFileSync(path.join(pkg, "dist/simulator.js"), simulatorModule("from a package"))
    const s = await serve("effetl-source-tiny", dir)
    expect(await (await fetch(`${s.url}/hello`)).json()).toEqual({ hello: "from a package" })
    expect((await s.stop()).code).toBe(0)
  })

  it("a missing module, a module with no simulator and an unknown name: exit 2 with one line", async () => {
    const dir = outsideDir("sim-bad")
    fs.writeFileSync(path.join(dir, "nothing.mjs"), "export const x = 1\n")
    const cases: ReadonlyArray<[string, string]> = [
      ["./missing.mjs", `no simulator module at ${path.join(fs.realpathSync(dir), "missing.mjs")}`],
      ["./nothing.mjs", "module './nothing.mjs' exports no simulator: export one as `simulator`"],
      ["nosuch", "unknown simulator 'nosuch': built-in simulators: channel, acceo, shoplazza, bigcommerce"]
    ]
    for (const [spec, message] of cases) {
      const r = await cli(["simulate", spec], { cwd: dir })
      expect(r.code, spec).toBe(2)
      expect(r.stderr).toContain(message)
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
    }
  })
})
