/**
 * Distributed runs on real services: worker processes on 127.0.0.1, PostgreSQL on 127.0.0.1:5432,
 * the channel simulator. What a distributed run writes (a Postgres table written by the partitions,
 * a CSV file and a JSONL dataset published by the finalize step) must equal a local run's output
 * row for row, even when a worker or the planner is SIGKILLed mid-run.
 */
import { type ChannelSimulator, startChannelSimulator } from "@effetl/source-channel/simulator"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import {
  csvRows,
  dropAll,
  exitOf,
  killAll,
  query,
  runToEnd,
  start,
  tableRows,
  tmp,
  uniqueName,
  until,
  worker
} from "./support/Cluster.js"

let sim: ChannelSimulator
/** Every request a little slow, so partitions last long enough to be interrupted. */
const latency = { kinds: ["latency"], rate: 1, latencyMs: 40 } as const
const cleanup: Array<{ schemas: Array<string>; prefix: string }> = []
/** Holds on the simulator's answers, released after each test whatever happened. */
const holds: Array<{ readonly release: () => void }> = []

beforeAll(async () => {
  sim = await startChannelSimulator({ products: 160, seed: 11, faults: latency })
})
afterAll(async () => {
  await sim?.close()
})
afterEach(async () => {
  for (const hold of holds.splice(0)) hold.release()
  sim.setFaults(latency)
  await killAll()
  for (const c of cleanup.splice(0)) await dropAll(c)
})

/** A test's own temp directory, output schema and table prefix, dropped after the test. */
const fresh = () => {
  const schema = uniqueName("dist")
  const prefix = uniqueName("effetl_t")
  cleanup.push({ schemas: [schema], prefix })
  return { dir: tmp(), schema, prefix }
}

/** A pipeline file: the channel split into partitions of 8 products, a Postgres table, a CSV file and a JSONL dataset. */
const pipelineFile = (
  dir: string,
  options: {
    readonly name: string
    readonly schema: string
    readonly prefix: string
    readonly partitionsPerWorker?: number
    /** Outputs at absolute paths under `dir` (for workers that run in directories of their own). */
    readonly absoluteOutputs?: boolean
    /** Products per page (default 10). */
    readonly pageSize?: number
    /** Records per commit (default 20). */
    readonly everyRecords?: number
  }
) => {
  const out = options.absoluteOutputs ? path.join(dir, "out") : "out"
  const file = path.join(dir, "pipeline.yaml")
  fs.writeFileSync(
    file,
    [
      "version: 1",
      `name: ${options.name}`,
      "state: { path: state/state.json }",
      `checkpoint: { everyRecords: ${options.everyRecords ?? 20} }`,
      `deadLetter: { path: ${out}/dead-letter.jsonl }`,
      "sources:",
      "  shop:",
      "    use: channel",
      "    with:",
      `      baseUrl: ${sim.url}`,
      `      channelId: ${sim.channelId}`,
      `      token: ${sim.token}`,
      `      pageSize: ${options.pageSize ?? 10}`,
      "      concurrency: 1",
      "      partitionSize: 8",
      "sinks:",
      "  db:",
      "    use: postgres",
      `    with: { url: "\${PG_URL}", schema: ${options.schema}, table: images }`,
      "  csv:",
      "    use: csv",
      `    with: { path: ${out}/images.csv }`,
      "  history:",
      "    use: jsonl",
      `    with: { path: ${out}/history, mode: append }`,
      "cluster:",
      "  postgres: ${PG_URL}",
      `  prefix: ${options.prefix}`,
      "  shardLockExpiration: 4 seconds",
      "  shardsPerGroup: 30",
      `  partitionsPerWorker: ${options.partitionsPerWorker ?? 2}`,
      ""
    ].join("\n")
  )
  return file
}

/** The lines of every part of a JSONL dataset directory, sorted. */
const datasetRows = (dir: string): Array<string> =>
  fs.readdirSync(dir).filter((f) => f.endsWith(".jsonl")).flatMap((f) =>
    fs.readFileSync(path.join(dir, f), "utf8").split("\n").filter((l) => l.length > 0)
  ).sort()

/**
 * Holds back the last listing page of every partition the simulator serves (a page of
 * `product__pk__in` with no `next`), or only of the partition holding `product`: until released,
 * such a partition cannot finish, however fast the machine, so a kill lands mid-partition and a
 * run cannot end before the test lets it.
 */
const holdLastPages = (product?: number) => {
  const hold = sim.hold((target, reply) => {
    const ids = new URL(target, "http://simulator").searchParams.get("product__pk__in")
    if (ids === null || reply.status !== 200) return false
    if (product !== undefined && !ids.split(",").includes(String(product))) return false
    return (JSON.parse(Buffer.from(reply.body).toString("utf8")) as { next: string | null }).next === null
  })
  holds.push(hold)
  return hold
}

/** The product with the highest id of those with images: it is in the last partition. */
const lastProduct = () => Math.max(...sim.catalogue.map((i) => i.product))

/** A local run of the same pipeline (its own output schema): what a distributed run must equal. Run once, shared by the tests. */
let local: Promise<{ table: Array<string>; csv: Array<string>; dataset: Array<string> }> | undefined
const localRun = () => (local ??= runLocally())
const runLocally = async () => {
  const dir = tmp()
  const schema = uniqueName("local")
  cleanup.push({ schemas: [schema], prefix: "unused" })
  const file = pipelineFile(dir, { name: "local", schema, prefix: uniqueName("unused") })
  const r = await runToEnd(dir, ["run", file])
  expect(r.code, r.stderr).toBe(0)
  return {
    table: await tableRows(schema, "images"),
    csv: csvRows(path.join(dir, "out/images.csv")),
    dataset: datasetRows(path.join(dir, "out/history"))
  }
}

/** The keys that appear more than once. */
const duplicates = (rows: ReadonlyArray<string>, key: (row: Record<string, unknown>) => string) => {
  const seen = new Map<string, number>()
  for (const r of rows) {
    const k = key(JSON.parse(r) as Record<string, unknown>)
    seen.set(k, (seen.get(k) ?? 0) + 1)
  }
  return [...seen].filter(([, n]) => n > 1).map(([k]) => k)
}

describe("effetl run --distributed", () => {
  it("equals a local run row for row when a worker is SIGKILLed mid-run (3 workers, no duplicates)", async () => {
    const expected = await localRun()
    const images = sim.catalogue.length
    expect(expected.table.length).toBe(images)

    const { dir, schema, prefix } = fresh()
    // A commit every 4 records: a partition commits before its last page.
    const file = pipelineFile(dir, { name: "dist", schema, prefix, everyRecords: 4 })
    const workers = await Promise.all([worker(dir, file), worker(dir, file), worker(dir, file)])
    const logs = () => workers.map((w, i) => `--- worker ${i} ---\n${w.stderr.slice(-3000)}`).join("\n")

    // Kill a worker while it is running a partition (after its first commits): every partition's
    // last page waits until the kill, so the victim cannot finish its partition first.
    const hold = holdLastPages()
    const planner = start(dir, ["run", file, "--distributed"])
    const busy = () => workers.find((w) => /partition shop\.\d+: running/.test(w.stderr))
    await until(() => busy() !== undefined, 240_000, () => `no worker started a partition:\n${planner.stderr}\n${logs()}`, planner)
    const victim = busy()!
    const running = /partition (shop\.\d+): running/.exec(victim.stderr)![1]!
    await until(
      async () => (await query(`SELECT 1 FROM "${prefix}_state" WHERE pipeline LIKE $1 AND state->'sinks' <> '{}'::jsonb`, [`%/${running}`])).length > 0,
      120_000,
      () => `partition ${running} never committed:\n${logs()}`,
      victim
    )
    victim.process.kill("SIGKILL")
    await victim.exited
    hold.release()
    expect(victim.stderr, "the victim finished the partition before the kill").not.toContain(`partition ${running}: finished`)

    const code = await exitOf(planner, 600_000, logs)
    expect(code, `${planner.stderr}\n${logs()}`).toBe(0)
    const summary = JSON.parse(planner.stdout.trim().split("\n").pop()!).summary
    expect(summary.status).toBe("finished")

    const table = await tableRows(schema, "images")
    const csv = csvRows(path.join(dir, "out/images.csv"))
    const dataset = datasetRows(path.join(dir, "out/history"))
    const key = (r: Record<string, unknown>) => `${r.source}/${r.product_id ?? r.productId}/${r.image_id ?? r.imageId}`
    console.log(
      `kill-a-worker: ${images} rows expected; written: table ${table.length}, csv ${csv.length}, dataset ${dataset.length}; ` +
        `duplicates: csv ${duplicates(csv, key).length}, dataset ${duplicates(dataset, key).length}; killed worker was running ${running}`
    )
    expect(duplicates(csv, key)).toEqual([])
    expect(duplicates(dataset, key)).toEqual([])
    expect(table).toEqual(expected.table)
    expect(csv).toEqual(expected.csv)
    expect(dataset).toEqual(expected.dataset)
    // The partition the victim was running finished on another worker.
    const [partition] = await query<{ status: string }>(`SELECT status FROM "${prefix}_partitions" WHERE key = $1`, [running])
    expect(partition?.status).toBe("finished")
  }, 900_000)
})

describe("a planner SIGKILLed mid-run", () => {
  it("is resumed by the next `run --distributed`: the same run, finished by the workers, the same rows", async () => {
    const expected = await localRun()
    const { dir, schema, prefix } = fresh()
    // One partition at a time per worker: the run lasts long enough for the planner to be killed and rerun.
    const file = pipelineFile(dir, { name: "dist", schema, prefix, partitionsPerWorker: 1 })
    const workers = await Promise.all([worker(dir, file), worker(dir, file)])
    const logs = () => workers.map((w, i) => `--- worker ${i} ---\n${w.stderr.slice(-3000)}`).join("\n")

    // The last partition's last page waits until the second planner is up: the run cannot end before.
    const hold = holdLastPages(lastProduct())
    const first = start(dir, ["run", file, "--distributed"])
    await until(() => /partition shop\.\d+ finished/.test(first.stderr), 300_000, () => `no partition finished:\n${first.stderr}\n${logs()}`, first)
    first.process.kill("SIGKILL")
    await first.exited
    const [run] = await query<{ run_id: string; status: string }>(`SELECT run_id, status FROM "${prefix}_runs"`)
    expect(run?.status).toBe("running")

    const second = start(dir, ["run", file, "--distributed"])
    await until(() => second.stderr.includes("resuming distributed run"), 300_000, () => `no resume:\n${second.stderr}`, second)
    hold.release()
    expect(await exitOf(second, 600_000, logs), `${second.stderr}\n${logs()}`).toBe(0)
    const summary = JSON.parse(second.stdout.trim().split("\n").pop()!).summary
    expect(summary.runId).toBe(run!.run_id)
    expect(summary.resumed).toBe(true)
    // No worker died: every partition ran once, and the summary counts every record.
    expect(summary.sources[0].counts.written).toBe(sim.catalogue.length)
    expect(await tableRows(schema, "images")).toEqual(expected.table)
    expect(csvRows(path.join(dir, "out/images.csv"))).toEqual(expected.csv)
    expect(datasetRows(path.join(dir, "out/history"))).toEqual(expected.dataset)
    expect((await query(`SELECT run_id FROM "${prefix}_runs"`)).length).toBe(1)
  }, 900_000)
})

describe("a failed partition", () => {
  it("fails the run with its reason; the next `run --distributed` is the run's next attempt and runs only what did not finish", async () => {
    // Source b reads images by id from an API that is down at first (one partition, planned without a request).
    const b = await startChannelSimulator({ products: 10, seed: 4 })
    const port = Number(new URL(b.url).port)
    const ids = b.catalogue.slice(0, 6).map((i) => i.pk)
    await b.close()
    const { dir, schema, prefix } = fresh()
    const file = path.join(dir, "pipeline.yaml")
    fs.writeFileSync(
      file,
      [
        "version: 1",
        "name: attempts",
        "sources:",
        "  a:",
        "    use: channel",
        `    with: { baseUrl: "${sim.url}", channelId: ${sim.channelId}, token: "${sim.token}", partitionSize: 40 }`,
        "  b:",
        "    use: channel",
        `    with: { baseUrl: "http://127.0.0.1:${port}", channelId: 5, token: sim-token, ids: [${ids.join(", ")}], idLookup: true, retry: { maxRetries: 1, baseDelay: 1 millis, maxDelay: 5 millis } }`,
        "sinks:",
        `  db: { use: postgres, with: { url: "\${PG_URL}", schema: ${schema}, table: images } }`,
        "cluster:",
        "  postgres: ${PG_URL}",
        `  prefix: ${prefix}`,
        "  shardLockExpiration: 4 seconds",
        ""
      ].join("\n")
    )
    const workers = await Promise.all([worker(dir, file), worker(dir, file)])
    const logs = () => workers.map((w, i) => `--- worker ${i} ---\n${w.stderr.slice(-3000)}`).join("\n")

    const first = await runToEnd(dir, ["run", file, "--distributed"])
    expect(first.code, `${first.stderr}\n${logs()}`).toBe(1)
    expect(first.stderr).toMatch(/error: distributed run \S+ failed: partition b\.0000: .*127\.0\.0\.1.*run it again with --distributed to resume/)
    const [failed] = await query<{ run_id: string; status: string; attempt: number }>(`SELECT run_id, status, attempt FROM "${prefix}_runs"`)
    expect(failed).toMatchObject({ status: "failed", attempt: 1 })
    const finishedBefore = await query<{ key: string }>(`SELECT key FROM "${prefix}_partitions" WHERE status = 'finished' ORDER BY key`)
    expect(finishedBefore.map((r) => r.key).filter((k) => k.startsWith("a."))).toHaveLength(finishedBefore.length)
    expect(finishedBefore.length).toBeGreaterThan(0)

    // The API is back: the next run is attempt 2 of the same run.
    const back = await startChannelSimulator({ products: 10, seed: 4, port })
    try {
      const second = await runToEnd(dir, ["run", file, "--distributed"])
      expect(second.code, `${second.stderr}\n${logs()}`).toBe(0)
      const summary = JSON.parse(second.stdout.trim().split("\n").pop()!).summary
      expect(summary).toMatchObject({ runId: failed!.run_id, resumed: true, status: "finished" })
      expect(second.stderr).toContain(`resuming distributed run ${failed!.run_id} of pipeline 'attempts' (attempt 2)`)
      const rows = await query<{ source: string; n: number }>(`SELECT source, count(*)::int AS n FROM "${schema}".images GROUP BY source ORDER BY source`)
      expect(rows).toEqual([{ source: "a", n: sim.catalogue.length }, { source: "b", n: ids.length }])
      // The partitions of a that finished in the first attempt did not run again.
      for (const { key } of finishedBefore) {
        const runs = workers.reduce((n, w) => n + w.stderr.split(`partition ${key}: running`).length - 1, 0)
        expect(runs, key).toBe(1)
      }
    } finally {
      await back.close()
    }
  }, 900_000)
})

describe("dedupe-by-hash (scope: global) in a distributed run", () => {
  it("keeps each content hash once across every partition, as many images as a local run keeps", async () => {
    const write = (dir: string, prefix: string) => {
      const file = path.join(dir, "pipeline.yaml")
      fs.writeFileSync(
        file,
        [
          "version: 1",
          "name: dedupe",
          "sources:",
          "  shop:",
          "    use: channel",
          `    with: { baseUrl: "${sim.url}", channelId: ${sim.channelId}, token: "${sim.token}", partitionSize: 16 }`,
          "transforms:",
          "  - use: hash-content",
          "  - use: dedupe-by-hash",
          "    with: { scope: global }",
          "sinks:",
          "  csv: { use: csv, with: { path: out/images.csv } }",
          "cluster:",
          "  postgres: ${PG_URL}",
          `  prefix: ${prefix}`,
          "  shardLockExpiration: 4 seconds",
          ""
        ].join("\n")
      )
      return file
    }
    const hashes = (dir: string) => csvRows(path.join(dir, "out/images.csv")).map((r) => (JSON.parse(r) as { content_hash: string }).content_hash)

    const localDir = tmp()
    const local = await runToEnd(localDir, ["run", write(localDir, uniqueName("unused"))])
    expect(local.code, local.stderr).toBe(0)
    const expected = hashes(localDir)
    expect(new Set(expected).size).toBe(expected.length)
    expect(expected.length).toBeLessThan(sim.catalogue.length) // the catalogue shares bytes across products

    const dir = tmp()
    const prefix = uniqueName("effetl_t")
    cleanup.push({ schemas: [], prefix })
    const file = write(dir, prefix)
    const workers = await Promise.all([worker(dir, file), worker(dir, file)])
    const r = await runToEnd(dir, ["run", file, "--distributed"])
    expect(r.code, `${r.stderr}\n${workers.map((w) => w.stderr.slice(-2000)).join("\n")}`).toBe(0)
    const got = hashes(dir)
    expect(got.length).toBe(expected.length)
    expect(new Set(got)).toEqual(new Set(expected))
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!).summary
    expect(summary.sources[0].counts.deduped).toBe(sim.catalogue.length - expected.length)

    // `effetl runs` lists the distributed run from the cluster's tables, with its counts.
    const listed = await runToEnd(dir, ["runs", file, "--log-format", "json"])
    expect(listed.code, listed.stderr).toBe(0)
    const history = JSON.parse(listed.stdout) as { cluster: string; runs: Array<{ id: string; status: string; distributed?: boolean; sources: Record<string, { counts: Record<string, number> }> }> }
    expect(history.cluster).toContain(`table ${prefix}_runs`)
    expect(history.runs.map((x) => [x.id, x.status, x.distributed])).toEqual([[summary.runId, "finished", true]])
    expect(history.runs[0]!.sources.shop!.counts).toMatchObject({ read: sim.catalogue.length, deduped: sim.catalogue.length - expected.length })
    const table = await runToEnd(dir, ["runs", file])
    expect(table.stdout).toMatch(new RegExp(`^${summary.runId} .* finished \\(distributed\\) `, "m"))
  }, 900_000)
})

describe("a partition resumed by a worker elsewhere", () => {
  it("starts over there (its local spill and dead-letter parts are not there) and the run still equals a local run", async () => {
    const expected = await localRun()
    const { dir, schema, prefix } = fresh()
    // Pages of 2 products: a partition of 8 takes several requests, so it is still reading after its first commit.
    // A commit every 4 records: a partition commits before its last page.
    const file = pipelineFile(dir, { name: "dist", schema, prefix, absoluteOutputs: true, pageSize: 2, everyRecords: 4 })
    // Each worker in a directory of its own: its own state directory, as on another machine.
    const home = (name: string) => {
      const d = path.join(dir, name)
      fs.mkdirSync(d)
      return d
    }
    const workers = await Promise.all([worker(home("w0"), file), worker(home("w1"), file)])
    const logs = () => workers.map((w, i) => `--- worker ${i} ---\n${w.stderr.slice(-3000)}`).join("\n")

    // Every partition's last page waits until the kill: it lands while the victim's partition is unfinished.
    const hold = holdLastPages()
    const planner = start(dir, ["run", file, "--distributed"])
    const busy = () => workers.find((w) => /partition shop\.\d+: running/.test(w.stderr))
    await until(() => busy() !== undefined, 240_000, () => `no worker started a partition:\n${planner.stderr}\n${logs()}`, planner)
    const victim = busy()!
    const running = /partition (shop\.\d+): running/.exec(victim.stderr)![1]!
    await until(
      async () => (await query(`SELECT 1 FROM "${prefix}_state" WHERE pipeline LIKE $1 AND state->'sinks' <> '{}'::jsonb`, [`%/${running}`])).length > 0,
      120_000,
      () => `partition ${running} never committed:\n${logs()}`,
      victim
    )
    victim.process.kill("SIGKILL")
    await victim.exited
    hold.release()
    expect(victim.stderr, "the victim finished the partition before the kill").not.toContain(`partition ${running}: finished`)
    const taker = workers.find((w) => w !== victim)!

    expect(await exitOf(planner, 600_000, logs), `${planner.stderr}\n${logs()}`).toBe(0)
    expect(taker.stderr).toContain(`partition ${running}: its unfinished run was on`)
    expect(await tableRows(schema, "images")).toEqual(expected.table)
    expect(csvRows(path.join(dir, "out/images.csv"))).toEqual(expected.csv)
    expect(datasetRows(path.join(dir, "out/history"))).toEqual(expected.dataset)
  }, 900_000)
})

describe("run --distributed --restart", () => {
  it("discards the unfinished run (its workflow stops, its rows stay discarded) and runs a new one to the same rows", async () => {
    const expected = await localRun()
    const { dir, schema, prefix } = fresh()
    const file = pipelineFile(dir, { name: "dist", schema, prefix, partitionsPerWorker: 1 })
    const workers = await Promise.all([worker(dir, file)])
    const logs = () => workers.map((w, i) => `--- worker ${i} ---\n${w.stderr.slice(-3000)}`).join("\n")

    // The last partition's last page waits until the old run is discarded: it cannot finish before.
    const hold = holdLastPages(lastProduct())
    const first = start(dir, ["run", file, "--distributed"])
    await until(() => /partition shop\.\d+ finished/.test(first.stderr), 300_000, () => `no partition finished:\n${first.stderr}\n${logs()}`, first)
    first.process.kill("SIGKILL")
    await first.exited
    const [old] = await query<{ run_id: string; status: string }>(`SELECT run_id, status FROM "${prefix}_runs"`)
    expect(old?.status).toBe("running")

    const second = start(dir, ["run", file, "--distributed", "--restart"])
    await until(() => second.stderr.includes("discarded the unfinished run"), 300_000, () => `no discard:\n${second.stderr}\n${logs()}`, second)
    hold.release()
    expect(await exitOf(second, 600_000, logs), `${second.stderr}\n${logs()}`).toBe(0)
    expect(second.stderr).toContain(`discarded the unfinished run ${old!.run_id}`)
    const summary = JSON.parse(second.stdout.trim().split("\n").pop()!).summary
    expect(summary.runId).not.toBe(old!.run_id)
    expect(summary.resumed).toBe(false)
    const runs = await query<{ run_id: string; status: string }>(`SELECT run_id, status FROM "${prefix}_runs" ORDER BY started_at`)
    expect(runs.map((r) => r.status)).toEqual(["discarded", "finished"])
    expect(await tableRows(schema, "images")).toEqual(expected.table)
    expect(csvRows(path.join(dir, "out/images.csv"))).toEqual(expected.csv)
    // The dataset holds the new run's records once (the discarded run published none: it never finalized).
    expect(datasetRows(path.join(dir, "out/history"))).toEqual(expected.dataset)
  }, 900_000)
})
