// Benchmark cases of distributed runs (`npm run bench -- --case distributed`), added to
// scripts/bench.mjs's cases. Each runs in the bench's child process and drives the built CLI: it
// starts N `effetl worker` processes on 127.0.0.1 (not timed: they wait for work), then times
// `effetl run <file> --distributed` (the planner, CLI start included), for N = 1, 2 and 3, beside
// a local `effetl run <file>` of the same pipeline. PostgreSQL on 127.0.0.1:5432 (PG_URL) holds the
// cluster's tables, under a prefix dropped at the end.
//
// - distributed-detailed: the detailed channel workload (every image downloaded and hashed, demo
//   transforms, CSV). CPU-bound: on a 2-core machine the speed-up stops at 2 workers.
// - distributed-latency: the same with every request 250 ms late, bound by latency: it scales with
//   workers while the cores keep up.
// Each worker runs one partition at a time (`partitionsPerWorker: 1`), as a local run reads one
// stream, and partitions are small (20 products), so shard placement evens out.
// - distributed-bigcommerce: three BigCommerce stores (one partition each), each under its own
//   fixed-window quota: the run takes as long as the slowest store's quota allows, locally or on
//   3 workers; no request is refused for the quota.
import { spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"

const pgUrl = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/**
 * The distributed cases, given what they share with bench.mjs: the repository root and the detailed
 * workload's transforms (`[[name, config?], ...]`, read when a case runs).
 */
export const distributedCases = ({ root, detailedTransforms }) => {
  const bin = path.join(root, "packages/cli/bin/effetl.js")
  const channelFile = (env, name, prefix) =>
    writePipeline(env.dir, name, {
      partitionsPerWorker: 1,
      sources: {
        channel: {
          use: "channel",
          with: {
            baseUrl: env.sim.url,
            channelId: env.sim.channelId,
            token: env.sim.token,
            mode: "detailed",
            pageSize: 1000,
            concurrency: 4,
            // Many small partitions: shard placement evens out (50 of 1,000 products, 8 of the quick 150).
            partitionSize: 20
          }
        }
      },
      transforms: detailedTransforms().map(([use, config]) => ({ use, ...(config ? { with: config } : {}) })),
      sinks: { images_csv: { use: "csv", with: { path: "images.csv" } } }
    }, prefix)
  const channelRun = async (env) => {
    const r = await scaling(env, bin, (name, prefix) => channelFile(env, name, prefix), [1, 2, 3])
    if (r.read !== env.sim.images) throw new Error(`read ${r.read} records, but the simulator has ${env.sim.images} images`)
    return { records: r.read, seconds: r.best, outputBytes: fs.statSync(path.join(env.dir, "images.csv")).size, note: r.note }
  }
  return [
    {
      id: "distributed-detailed",
      group: "distributed",
      name: "channel→csv distributed (detailed; local, 1/2/3 workers)",
      sim: (quick) => ({ products: quick ? 150 : 1_000, seed: 7 }),
      run: channelRun,
      repeat: 1
    },
    {
      id: "distributed-latency",
      group: "distributed",
      name: "channel→csv distributed (detailed, 250 ms latency; local, 1/2/3 workers)",
      sim: (quick) => ({
        products: quick ? 150 : 500,
        seed: 7,
        faults: { kinds: ["latency"], rate: 1, latencyMs: 250, maxConsecutive: 1_000_000 }
      }),
      run: channelRun,
      repeat: 1
    },
    {
      id: "distributed-bigcommerce",
      group: "distributed",
      name: "bigcommerce→csv, 3 stores (quota 150/30 s each; local, 3 workers)",
      sim: undefined,
      run: async (env) => {
        const { startBigCommerceSimulator } = await import("@effetl/source-bigcommerce/simulator")
        const quota = 150
        const windowMs = env.quick ? 3_000 : 30_000
        const products = [440, 300, 150]
        const sims = []
        for (const [i, n] of products.entries()) sims.push(await startBigCommerceSimulator({ products: n, seed: 7 + i, quota, windowMs, storeHash: `store${i}` }))
        const prefix = `effetl_bench_${crypto.randomBytes(4).toString("hex")}`
        try {
          const file = (name) =>
            writePipeline(env.dir, name, {
              sources: Object.fromEntries(
                sims.map((s, i) => [
                  `store${i}`,
                  // One partition per store: a store's requests come from one worker at a time.
                  { use: "bigcommerce", with: { baseUrl: s.url, storeHash: s.storeHash, accessToken: s.accessToken, concurrency: 8, partitionSize: 1_000_000 } }
                ])
              ),
              sinks: { images_csv: { use: "csv", with: { path: "images.csv" } } }
            }, prefix)
          const images = sims.reduce((n, s) => n + s.catalogue.length, 0)
          /** One timed run, from fresh windows; the requests and quota 429s it caused per store. */
          const measured = async (args) => {
            await new Promise((resolve) => setTimeout(resolve, windowMs + 100))
            const before = sims.map((s) => [s.requests().total, s.throttled()])
            const run = await timed(bin, env.dir, args)
            const read = run.summary.sources.reduce((n, x) => n + x.counts.read, 0)
            if (read !== images) throw new Error(`read ${read} records, but the stores hold ${images} images`)
            const requests = sims.map((s, i) => s.requests().total - before[i][0])
            const throttled = sims.map((s, i) => s.throttled() - before[i][1])
            // The earliest the slowest store's last request may start: floor((requests - 1) / quota) windows.
            const minimum = Math.max(...requests.map((n) => (Math.floor((n - 1) / quota) * windowMs) / 1000))
            return { seconds: run.seconds, requests, throttled, minimum }
          }
          const local = await measured(["run", file("bench-local"), "--log-format", "json"])
          const workers = []
          let distributed
          try {
            for (let i = 0; i < 3; i++) workers.push(await startWorker(bin, env.dir, file("bench")))
            await settled(prefix, 3)
            distributed = await measured(["run", file("bench"), "--distributed", "--log-format", "json"])
          } finally {
            await stopAll(workers)
          }
          const line = (label, r) =>
            `${label} ${r.seconds.toFixed(1)} s; requests per store ${r.requests.join(" / ")}; answered 429 for the quota ${r.throttled.join(" / ")}; ` +
            `slowest store's minimum ${r.minimum.toFixed(1)} s, ratio ${(r.seconds / r.minimum).toFixed(2)}`
          const note = [
            `quota ${quota} per ${windowMs / 1000} s per store, stores of ${products.join(" / ")} products`,
            line("local", local),
            line("3 workers", distributed)
          ].join("\n  ")
          return { records: images, seconds: distributed.seconds, outputBytes: fs.statSync(path.join(env.dir, "images.csv")).size, note }
        } finally {
          for (const s of sims) await s.close()
          await dropPrefix(prefix)
        }
      },
      repeat: 1
    }
  ]
}

/**
 * Times a local run, then a distributed run on each number of workers (started before the clock,
 * stopped after), of the pipeline `file(name, prefix)` writes.
 */
const scaling = async (env, bin, file, counts) => {
  const prefix = `effetl_bench_${crypto.randomBytes(4).toString("hex")}`
  const times = []
  let read = 0
  try {
    const local = await timed(bin, env.dir, ["run", file("bench-local"), "--log-format", "json"])
    read = local.summary.sources.reduce((n, s) => n + s.counts.read, 0)
    for (const n of counts) {
      const f = file("bench", prefix)
      const workers = []
      try {
        for (let i = 0; i < n; i++) workers.push(await startWorker(bin, env.dir, f))
        await settled(prefix, n)
        const run = await timed(bin, env.dir, ["run", f, "--distributed", "--log-format", "json"])
        const got = run.summary.sources.reduce((a, s) => a + s.counts.read, 0)
        if (got !== read) throw new Error(`the distributed run on ${n} workers read ${got} records, the local run ${read}`)
        times.push(run.seconds)
      } finally {
        await stopAll(workers)
      }
    }
    const f = (s) => `${s.toFixed(1)} s`
    const note = [
      `local ${f(local.seconds)}; ` +
      counts.map((n, i) => `${n} worker${n === 1 ? "" : "s"} ${f(times[i])}${i > 0 ? ` (×${(times[0] / times[i]).toFixed(2)} vs ${counts[0]})` : ""}`).join("; "),
      `wall time of the planner process (CLI start, plan, partitions, finalize); workers started before the clock`
    ].join("\n  ")
    return { read, local: local.seconds, times, best: Math.min(...times), note }
  } finally {
    await dropPrefix(prefix)
  }
}

/** Writes a pipeline file (JSON is YAML) with a cluster section under `prefix`. */
const writePipeline = (dir, name, { partitionsPerWorker = 2, ...body }, prefix = `effetl_bench_unused`) => {
  const file = path.join(dir, `${name}.yaml`)
  const pipeline = {
    version: 1,
    name,
    state: { path: `state-${name}/state.json` },
    deadLetter: { path: `dead-letter-${name}.jsonl` },
    ...body,
    cluster: { postgres: "${PG_URL}", prefix, shardLockExpiration: "10 seconds", partitionsPerWorker }
  }
  fs.writeFileSync(file, JSON.stringify(pipeline, null, 2))
  return file
}

/** Runs the CLI to its end and returns its wall time and JSON summary. */
const timed = async (bin, cwd, args) => {
  const started = performance.now()
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, PG_URL: pgUrl }, stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d) => (stdout += d))
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)))
  const code = await new Promise((resolve) => child.on("exit", (c) => resolve(c ?? 1)))
  const seconds = (performance.now() - started) / 1000
  if (code !== 0) throw new Error(`effetl ${args.join(" ")} exited with ${code}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`)
  return { seconds, summary: JSON.parse(stdout.trim().split("\n").pop()).summary }
}

/** Starts `effetl worker` on a free port; resolves once it listens. */
const startWorker = async (bin, cwd, file) => {
  const port = await freePort()
  const child = spawn(process.execPath, [bin, "worker", file, "--port", String(port), "--log-format", "json"], {
    cwd,
    env: { ...process.env, PG_URL: pgUrl },
    stdio: ["ignore", "ignore", "pipe"]
  })
  let stderr = ""
  await new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      stderr = (stderr + d).slice(-8000)
      if (stderr.includes("Listening on")) resolve()
    })
    child.once("exit", (code) => reject(new Error(`worker exited (${code}): ${stderr.trim().split("\n").slice(-3).join(" | ")}`)))
  })
  child.stderr.resume()
  return child
}

/**
 * Waits until `n` workers hold every shard between them (the rows of `<prefix>_locks`): a worker
 * that joins takes shards from the others, and the partitions on those shards move with them, so
 * a run timed before the shards settle would time that move too.
 */
const settled = async (prefix, n, shards = 300) => {
  const { default: pg } = await import("pg")
  const deadline = Date.now() + 120_000
  for (;;) {
    const client = new pg.Client({ connectionString: pgUrl })
    await client.connect()
    try {
      const { rows } = await client.query(`SELECT count(DISTINCT address)::int AS workers, count(*)::int AS shards FROM "${prefix}_locks"`).catch(() => ({ rows: [] }))
      if (rows[0]?.workers === n && rows[0]?.shards === shards) return
    } finally {
      await client.end()
    }
    if (Date.now() > deadline) throw new Error(`the ${n} workers did not settle their ${shards} shards in 2 minutes`)
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

/** Stops workers (SIGTERM: they hand their shards back) and waits for them. */
const stopAll = async (workers) => {
  for (const w of workers) w.kill("SIGTERM")
  await Promise.all(workers.map((w) => (w.exitCode === null && w.signalCode === null ? new Promise((r) => w.once("exit", r)) : undefined)))
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

/** Drops the cluster tables of a prefix (through the cluster package's own `drop`). */
const dropPrefix = async (prefix) => {
  const { ClusterStore } = await import("@effetl/cluster")
  const Effect = await import("effect/Effect")
  const Redacted = await import("effect/Redacted")
  await Effect.runPromise(ClusterStore.drop({ postgres: Redacted.make(pgUrl), prefix }))
}
