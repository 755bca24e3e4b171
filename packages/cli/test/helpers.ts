/**
 * Test helpers: run `effetl` in-process (`cli`, quick) or as the real built binary (`effetl`, for
 * what needs a process of its own: signals, a FIFO, another user) in a temp directory.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** The repository root. */
export const root = path.resolve(import.meta.dirname, "../../..")
/** The built CLI entry. */
export const bin = path.join(root, "packages/cli/bin/effetl.js")

/** What a CLI run did. */
export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `effetl <args>` in `cwd` with extra env; `onSpawn` may kill it. */
export const effetl = (
  args: ReadonlyArray<string>,
  options: { cwd: string; env?: Record<string, string>; onSpawn?: (child: ReturnType<typeof spawn>) => void; timeoutMs?: number }
): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: options.cwd,
      env: { ...process.env, FORCE_COLOR: "0", ...options.env },
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
    options.onSpawn?.(child)
  })

/** A fresh temp directory. */
export const tempDir = (prefix: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `effetl-${prefix}-`))

/**
 * Runs `effetl <args>` in this process through `main`, in `cwd`, with exactly `env` as the
 * environment of `${VAR}`: output captured, the exit code returned, nothing exits the process.
 */
export const cli = async (
  args: ReadonlyArray<string>,
  options: { cwd: string; env?: Record<string, string | undefined> }
): Promise<CliResult> => {
  const { main } = await import("../src/main.js")
  let stdout = ""
  let stderr = ""
  const previous = process.cwd()
  process.chdir(options.cwd)
  try {
    const code = await main(args, {
      stdout: (t) => void (stdout += t),
      stderr: (t) => void (stderr += t),
      env: { ...options.env },
      stderrIsTTY: false,
      columns: 100
    })
    return { code, signal: null, stdout, stderr }
  } finally {
    process.chdir(previous)
  }
}
