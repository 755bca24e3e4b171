/**
 * `effetl worker` and `effetl run --distributed` (the built binary, with PostgreSQL on 127.0.0.1):
 * two workers and a planner read the channel simulator into a Postgres table and a CSV file, and
 * the planner prints the same summary as a local run. Usage problems are one line and exit 2.
 * (The crash cases, a worker or the planner SIGKILLed mid-run, are in @effetl/cluster's tests.)
 */
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import { parse } from "csv-parse/sync"
import { type ChildProcess, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import pg from "pg"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { bin, cli, effetl, tempDir } from "./helpers.js"

const pgUrl = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

let sim: ChannelSimulator
const workers: Array<ChildProcess> = []
const drops: Array<{ schema: string; prefix: string }> = []

beforeAll(async () => {
  sim = await startChannelSimulator({ products: 60, seed: 5 })
})
afterAll(async () => {
  await sim?.close()
})
afterEach(async () => {
  for (const w of workers.splice(0)) {
    w.kill("SIGKILL")
    if (w.exitCode === null && w.signalCode === null) await new Promise((r) => w.once("exit", r))
  }
  const client = new pg.Client({ connectionString: pgUrl })
  await client.connect()
  try {
    for (const { prefix, schema } of drops.splice(0)) {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      const rows = await client.query<{ name: string }>(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND (tablename LIKE $1 OR tablename = $2)",
        [`${prefix.replace(/_/g, "\\_")}\\_%`, `effetl_migrations_${prefix}_state`]
      )
      if (rows.rows.length > 0) await client.query(`DROP TABLE IF EXISTS ${rows.rows.map((r) => `"${r.name}"`).join(", ")} CASCADE`)
    }
  } finally {
    await client.end()
  }
})

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const pipeline = (dir: string, cluster: string) => {
  const file = path.join(dir, "pipeline.yaml")
  const id = crypto.randomBytes(4).toString("hex")
  const schema = `cli_dist_${id}`
  const prefix = `effetl_cli_${id}`
  drops.push({ schema, prefix })
  fs.writeFileSync(
    file,
    [
      "version: 1",
      "name: shop",
      "sources:",
      "  shop:",
      "    use: channel",
      `    with: { baseUrl: "${sim.url}", channelId: ${sim.channelId}, token: "${sim.token}", partitionSize: 10 }`,
      "sinks:",
      `  db: { use: postgres, with: { url: "\${PG_URL}", schema: ${schema}, table: images } }`,
      "  csv: { use: csv, with: { path: out/images.csv } }",
      cluster.replace(/PREFIX/g, prefix),
      ""
    ].join("\n")
  )
  return { file, schema }
}

const startWorker = async (dir: string, file: string): Promise<ChildProcess> => {
  const port = await freePort()
  const child = spawn(process.execPath, [bin, "worker", file, "--port", String(port)], {
    cwd: dir,
    env: { ...process.env, PG_URL: pgUrl, FORCE_COLOR: "0" },
    stdio: ["ignore", "ignore", "pipe"]
  })
  workers.push(child)
  let stderr = ""
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString()
      if (stderr.includes("Listening on")) resolve()
    })
    child.once("exit", (code) => reject(new Error(`worker exited (${code}):\n${stderr}`)))
  })
  return child
}

describe("effetl run --distributed", () => {
  it("runs on two workers and prints the summary of a local run", async () => {
    const dir = tempDir("distributed")
    const { file, schema } = pipeline(dir, "cluster: { postgres: \"${PG_URL}\", prefix: PREFIX, shardLockExpiration: 5 seconds }")
    await Promise.all([startWorker(dir, file), startWorker(dir, file)])
    const r = await effetl(["run", file, "--distributed"], { cwd: dir, env: { PG_URL: pgUrl }, timeoutMs: 600_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^pipeline shop · run \S+ · finished in \d+\.\ds\n/)
    expect(r.stdout).toMatch(new RegExp(`^shop\\s+channel\\s+${sim.catalogue.length}\\s+${sim.catalogue.length}\\s`, "m"))
    expect(r.stdout).toContain("  csv (csv) → out/images.csv")
    expect(r.stderr).toMatch(/partition shop\.0000 finished: \d+ read, \d+ written \(\d+\/\d+\)/)
    const csv = parse(fs.readFileSync(path.join(dir, "out/images.csv"), "utf8"), { columns: true }) as Array<Record<string, string>>
    expect(csv.length).toBe(sim.catalogue.length)
    expect(new Set(csv.map((r) => `${r.product_id}/${r.image_id}`)).size).toBe(sim.catalogue.length)
    const client = new pg.Client({ connectionString: pgUrl })
    await client.connect()
    try {
      const rows = await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".images`)
      expect(Number(rows.rows[0]!.n)).toBe(sim.catalogue.length)
    } finally {
      await client.end()
    }
  }, 900_000)

  it("needs a cluster section, refuses --limit and --dry-run, and names a bad option's path", async () => {
    const dir = tempDir("distributed-usage")
    const bare = pipeline(dir, "")
    const none = await cli(["run", bare.file, "--distributed"], { cwd: dir, env: { PG_URL: pgUrl } })
    expect(none.code).toBe(2)
    expect(none.stderr).toBe("error: cluster: a distributed run needs a cluster section, e.g. cluster: { postgres: ${PG_URL} } (see the @effetl/cluster README)\n")
    const limited = await cli(["run", bare.file, "--distributed", "--limit", "5"], { cwd: dir, env: { PG_URL: pgUrl } })
    expect(limited.code).toBe(2)
    expect(limited.stderr).toBe("error: --distributed cannot be combined with --limit: run the trial locally (without --distributed)\n")
    const bad = pipeline(dir, "cluster: { postgres: \"${PG_URL}\", shardLockExpiration: soon }")
    const worker = await cli(["worker", bad.file], { cwd: dir, env: { PG_URL: pgUrl } })
    expect(worker.code).toBe(2)
    // Checked with the rest of the file, so it names the file and the line too.
    expect(worker.stderr).toMatch(/^error: \S*pipeline\.yaml: cluster\.shardLockExpiration: expected a duration like "500 millis", "30 seconds" or "2 minutes", got "soon" \(line \d+\)\n$/)
    const port = await cli(["worker", bad.file, "--port", "70000"], { cwd: dir, env: { PG_URL: pgUrl } })
    expect(port.code).toBe(2)
    expect(port.stderr).toContain("--port must be an integer from 1 to 65535")
  }, 120_000)
})
