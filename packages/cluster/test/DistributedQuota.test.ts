/**
 * One rate budget across workers, end to end: two worker processes with `cluster.redis` read one
 * BigCommerce store (its simulator's fixed-window quota) in partitions at once. Every limiter the
 * source makes on a worker is core's `RateLimit.shared`, made through the worker's Redis backend, so
 * the two workers together never spend the store's quota: the simulator answers no 429 for it.
 */
import { type BigCommerceSimulator, startBigCommerceSimulator } from "@effetl/source-bigcommerce/simulator"
import * as path from "node:path"
import * as fs from "node:fs"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { csvRows, dropAll, exitOf, killAll, start, tmp, uniqueName, worker } from "./support/Cluster.js"

const redisUrl = process.env.EFFETL_TEST_REDIS_URL ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379/0"
let sim: BigCommerceSimulator
const cleanup: Array<{ schemas: Array<string>; prefix: string }> = []

beforeAll(async () => {
  // 60 products (one listing page and one images request each per partition), 60 requests per 6 s: the
  // run's 90 requests need two windows; the shared bucket sends 48 per window, so answers delayed by a
  // second on a busy machine do not bunch enough requests into one window to reach its quota.
  sim = await startBigCommerceSimulator({ products: 60, seed: 5, quota: 60, windowMs: 6_000 })
})
afterAll(async () => {
  await sim?.close()
})
afterEach(async () => {
  await killAll()
  for (const c of cleanup.splice(0)) await dropAll(c)
})

describe("run --distributed with cluster.redis", () => {
  it("two workers reading one store in partitions at once never spend its quota together (0 throttled by the simulator)", async () => {
    const dir = tmp()
    const prefix = uniqueName("effetl_q")
    cleanup.push({ schemas: [], prefix })
    const file = path.join(dir, "pipeline.yaml")
    fs.writeFileSync(
      file,
      [
        "version: 1",
        "name: quota",
        "state: { path: state/state.json }",
        "deadLetter: { path: out/dead-letter.jsonl }",
        "sources:",
        "  store:",
        "    use: bigcommerce",
        "    with:",
        `      baseUrl: ${sim.url}`,
        `      storeHash: ${sim.storeHash}`,
        `      accessToken: ${sim.accessToken}`,
        "      pageSize: 250",
        "      concurrency: 4",
        "      partitionSize: 6",
        "sinks:",
        "  csv:",
        "    use: csv",
        "    with: { path: out/images.csv, mode: overwrite }",
        "cluster:",
        "  postgres: ${PG_URL}",
        "  redis: ${REDIS_URL}",
        `  prefix: ${prefix}`,
        "  shardLockExpiration: 4 seconds",
        "  shardsPerGroup: 30",
        "  partitionsPerWorker: 2",
        ""
      ].join("\n")
    )
    const env = { REDIS_URL: redisUrl }
    const workers = await Promise.all([worker(dir, file, env), worker(dir, file, env)])
    const logs = () => workers.map((w, i) => `--- worker ${i} ---\n${w.stderr.slice(-3000)}`).join("\n")

    const planner = start(dir, ["run", file, "--distributed"], env)
    expect(await exitOf(planner, 600_000, logs), `${planner.stderr}\n${logs()}`).toBe(0)

    const rows = csvRows(path.join(dir, "out/images.csv"))
    console.log(
      `shared quota: ${sim.requests().total} requests, ${sim.throttled()} throttled for the quota, ` +
        `lowest Requests-Left ${sim.lowestLeft()} of ${sim.quota}; ${rows.length} of ${sim.catalogue.length} images`
    )
    expect(rows.length).toBe(sim.catalogue.length)
    expect(sim.throttled()).toBe(0)
    // Both workers used the shared budget (none fell back to pacing alone).
    for (const w of workers) expect(w.stderr).not.toContain("pacing in this worker only")
  }, 900_000)
})
