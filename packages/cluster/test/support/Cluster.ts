/**
 * Test support for distributed runs on real services: PostgreSQL on 127.0.0.1:5432 (database
 * `test`), worker and planner processes (the CLI's distributed commands, from sources), free ports,
 * temp directories, and readers of the outputs (a Postgres table, a CSV file) as sorted rows.
 * Every test gets its own table prefix and output schema, dropped afterwards.
 */
import { parse } from "csv-parse/sync"
import { type ChildProcess, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

/** The test database: EFFETL_TEST_PG_URL, else PG_URL (as .ci/run sets it), else the local one. */
export const pgUrl = process.env.EFFETL_TEST_PG_URL ?? process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const here = path.dirname(new URL(import.meta.url).pathname)
const entry = path.join(here, "effetl.ts")
const tsx = path.resolve(here, "../../../../node_modules/tsx/dist/esm/index.mjs")
const tsconfig = path.resolve(here, "../../tsconfig.check.json")

/** A fresh temporary directory. */
export const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-cluster-"))

/** A unique lowercase name for one test's tables and schema. */
export const uniqueName = (prefix: string): string => `${prefix}_${crypto.randomBytes(4).toString("hex")}`

/** A free TCP port on 127.0.0.1. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** A child process of the test, with its output kept. */
export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  stdout: string
  stderr: string
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>
}

const children = new Set<Child>()

/** Starts `effetl.ts <args>` in `cwd` with the environment (plus the test database's URL). */
export const start = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Child => {
  const proc = spawn(process.execPath, ["--import", tsx, entry, ...args], {
    cwd,
    env: { ...process.env, PG_URL: pgUrl, TSX_TSCONFIG_PATH: tsconfig, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const child: Child = {
    process: proc,
    pid: proc.pid!,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve) => proc.once("exit", (code) => resolve(code)))
  }
  proc.stdout!.on("data", (d: Buffer) => (child.stdout += d.toString()))
  proc.stderr!.on("data", (d: Buffer) => (child.stderr += d.toString()))
  children.add(child)
  void child.exited.then(() => children.delete(child))
  return child
}

/** Runs `effetl.ts <args>` to its end. */
export const runToEnd = async (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const child = start(cwd, args, env)
  const code = await child.exited
  return { code, stdout: child.stdout, stderr: child.stderr }
}

/** Starts a worker of the pipeline file on a free port; resolves once it listens. */
export const worker = async (cwd: string, file: string, env: Record<string, string> = {}): Promise<Child> => {
  const port = await freePort()
  const child = start(cwd, ["worker", file, "--host", "127.0.0.1", "--port", String(port)], env)
  await until(() => child.stderr.includes("Listening on"), 120_000, () => `worker did not start:\n${child.stderr}`, child)
  return child
}

/** Waits until `check` holds (polling), failing with `why()` after `ms` or when `child` exits first. */
export const until = async (check: () => boolean | Promise<boolean>, ms: number, why: () => string, child?: Child): Promise<void> => {
  const deadline = Date.now() + ms
  let exited = false
  void child?.exited.then(() => (exited = true))
  for (;;) {
    if (await check()) return
    if (exited) throw new Error(`exited early: ${why()}`)
    if (Date.now() > deadline) throw new Error(`timed out: ${why()}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** The exit code of a child, failing with `why()` (e.g. the workers' logs) when it runs longer than `ms`. */
export const exitOf = async (child: Child, ms: number, why: () => string): Promise<number | null> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms / 1000} s:\n${child.stderr.slice(-4000)}\n${why()}`)), ms)
  })
  try {
    return await Promise.race([child.exited, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Stops every child still running (SIGKILL: nothing of theirs is needed any more). */
export const killAll = async (): Promise<void> => {
  const running = [...children]
  for (const c of running) c.process.kill("SIGKILL")
  await Promise.all(running.map((c) => c.exited))
}

/** Runs a query on the test database with a client of its own. */
export const query = <R extends Record<string, unknown>>(text: string, params: ReadonlyArray<unknown> = []): Promise<Array<R>> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(
        PgClient.make({ url: Redacted.make(pgUrl), connectTimeout: "5 seconds", maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer)),
        (sql) => sql.unsafe<R>(text, params as Array<unknown>)
      )
    )
  ).then((rows) => [...rows])

/** The rows of an images table, without the columns that say which run wrote them, sorted by key. */
export const tableRows = async (schema: string, table: string): Promise<Array<string>> => {
  const rows = await query<Record<string, unknown>>(
    `SELECT source, product_id, image_id, position, url, filename, width, height, alt, content_hash, created_at, updated_at, extra
     FROM "${schema}"."${table}" ORDER BY source, product_id, image_id`
  )
  return rows.map((r) => JSON.stringify(r))
}

/** The records of a CSV file (header first), sorted, each as one JSON line. */
export const csvRows = (file: string): Array<string> => {
  const records = parse(fs.readFileSync(file, "utf8"), { columns: true }) as Array<Record<string, string>>
  return records.map((r) => JSON.stringify(r)).sort()
}

/** Drops a schema and every table of a prefix (the distributed run's), ignoring what does not exist. */
export const dropAll = async (options: { readonly schemas?: ReadonlyArray<string>; readonly prefix?: string }): Promise<void> => {
  for (const s of options.schemas ?? []) await query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  if (options.prefix !== undefined) {
    const rows = await query<{ name: string }>(
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND (tablename LIKE $1 OR tablename = $2)",
      [`${options.prefix.replace(/_/g, "\\_")}\\_%`, `effetl_migrations_${options.prefix}_state`]
    )
    if (rows.length > 0) await query(`DROP TABLE IF EXISTS ${rows.map((r) => `"${r.name}"`).join(", ")} CASCADE`)
  }
}
