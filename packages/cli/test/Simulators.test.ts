/**
 * Every command a built-in simulator prints runs as printed: each simulator is started through the
 * CLI (`effetl simulate <api>`), and each command it prints (the `curl` to try, the `effetl run` of
 * its example pipeline with the variables it gives) is run by bash against it, from a copy of the
 * repository's examples (so the run writes into a temp dir), and exits 0.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { simulators } from "../src/Simulators.js"
import { bin, root, tempDir } from "./helpers.js"

/** Runs one shell command line in `cwd`. */
const sh = (line: string, cwd: string) =>
  new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const child = spawn("bash", ["-c", line], { cwd, env: { ...process.env, FORCE_COLOR: "0" }, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (out += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), 150_000)
    child.on("error", reject)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })

/** The commands in a simulator's output: every line (after its label) that starts with `VAR=value ...`, `npx effetl` or `curl`. */
const commandsIn = (printed: string): Array<string> =>
  printed
    .split("\n")
    .map((l) => l.trim().replace(/^try:\s+/, ""))
    .filter((l) => /^((?:[A-Z][A-Z0-9_]*=\S+\s+)*npx effetl\s|curl\s)/.test(l))

describe("every command a built-in simulator prints runs", () => {
  for (const { api } of simulators) {
    it(`effetl simulate ${api}`, { timeout: 300_000 }, async () => {
      const dir = tempDir(`simulate-${api}`)
      fs.cpSync(path.join(root, "examples"), path.join(dir, "examples"), { recursive: true })
      const sim = spawn(process.execPath, [bin, "simulate", api], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
      try {
        const printed = await new Promise<string>((resolve, reject) => {
          let out = ""
          sim.stdout.on("data", (d) => {
            out += d
            if (out.includes("(Ctrl-C to stop)")) resolve(out)
          })
          sim.on("exit", (code) => reject(new Error(`the simulator exited (${code}): ${out}`)))
        })
        const commands = commandsIn(printed)
        expect(commands.some((c) => c.startsWith("curl ")), printed).toBe(true)
        expect(commands.some((c) => c.includes("npx effetl run ")), printed).toBe(true)
        for (const command of commands) {
          const line = command
            .replace(/\bnpx effetl\b/, `${JSON.stringify(process.execPath)} ${JSON.stringify(bin)}`)
            .replace(/^curl /, "curl -sS --fail ") // an HTTP error status fails, as it would for the reader
          const r = await sh(line, dir)
          expect(r.code, `${command}\n${r.out}`).toBe(0)
          if (command.includes("npx effetl run ")) expect(r.out).toContain("finished in")
        }
      } finally {
        sim.kill("SIGTERM")
      }
    })
  }
})
