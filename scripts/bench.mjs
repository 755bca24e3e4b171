#!/usr/bin/env node
// `npm run bench`: throughput figures for effetl (printed, never asserted in tests).
//
//   npm run bench                      every case, full sizes
//   npm run bench -- --quick           every case, small sizes (a smoke run)
//   npm run bench -- --case csv-sink   one case (by id or by its display name)
//   npm run bench -- --case parquet-sink   the parquet sink with each engine (one child per engine), and
//                                          duckdb's beside a streamed COPY (parquet-sink-duckdb-streamed)
//   npm run bench -- --case distributed    distributed runs on 1, 2 and 3 local workers (PostgreSQL on PG_URL)
//   npm run bench -- --case run-memory     `effetl run` → csv, jsonl, parquet, with and without regrouping
//   npm run bench -- --case startup        `effetl --version` (the command) beside `node -e 0`
//   npm run bench -- --full ...            the 10M-row sizes of the parquet-sink (duckdb) and run-memory cases
//
// Each case runs in a fresh child process (`node scripts/bench.mjs --case <id> --child`), so its
// peak RSS is its own. The channel simulator of a case runs in this (the parent) process on
// 127.0.0.1, so its catalogue is neither timed nor counted in the case's RSS. Every output goes to
// a temp directory that is removed at the end. Uses the built packages (`packages/*/dist`).
//
// Anchors: a case with an `anchor` also runs, in a child of its own and against the same simulator,
// a hand-written loop that does the same work (scripts/bench-anchors.mjs: plain Node, undici,
// node:crypto, csv-stringify, the same concurrency). Each pair runs `--repeat` times (default 3,
// effetl and the anchor taking turns to go first), the two outputs must hold the same rows, and the
// median ratios effetl ÷ anchor of CPU and wall time are printed with the load average. Ratios are
// printed, never asserted.
//   npm run bench -- --case list-csv --repeat 1   one pair
//   npm run bench -- --case list-csv --profile /tmp/prof   CPU profiles of the children (node
//       --cpu-prof) in /tmp/prof, and each one's top self-time functions and packages printed
import { fork, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { distributedCases } from "./bench-distributed.mjs"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const self = fileURLToPath(import.meta.url)

// --- options -----------------------------------------------------------------------------------

const usage = "usage: node scripts/bench.mjs [--quick | --full] [--case <id>] [--repeat <n>] [--profile <dir>]\n\ncases:\n"

const parseArgs = (argv) => {
  const opts = { quick: false, full: false, cases: [], child: false, anchor: false, repeat: undefined, profile: undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === "--quick") opts.quick = true
    else if (a === "--full") opts.full = true
    else if (a === "--child") opts.child = true
    else if (a === "--anchor") opts.anchor = true
    else if (a === "--profile" || a.startsWith("--profile=")) {
      const v = a === "--profile" ? argv[++i] : a.slice("--profile=".length)
      if (!v) fail("--profile needs a directory")
      opts.profile = path.resolve(v)
    }
    else if (a === "--repeat" || a.startsWith("--repeat=")) {
      const v = a === "--repeat" ? argv[++i] : a.slice("--repeat=".length)
      const n = Number(v)
      if (!Number.isInteger(n) || n < 1) fail("--repeat needs a whole number of pairs, 1 or more")
      opts.repeat = n
    }
    else if (a === "--case") {
      const v = argv[++i]
      if (v === undefined) fail("--case needs a case id")
      opts.cases.push(v)
    } else if (a.startsWith("--case=")) opts.cases.push(a.slice("--case=".length))
    else if (a === "--help" || a === "-h") {
      const groups = [...new Set(cases.flatMap((c) => (c.group ? [c.group] : [])))]
      console.log(
        usage + cases.map((c) => `  ${c.id.padEnd(31)} ${c.name}`).join("\n") +
          groups.map((g) => `\n  ${g.padEnd(31)} every ${g}-* case`).join("")
      )
      process.exit(0)
    } else fail(`unknown option ${JSON.stringify(a)} (try --help)`)
  }
  return opts
}

const fail = (message) => {
  console.error(`bench: ${message}`)
  process.exit(2)
}

// --- the cases ---------------------------------------------------------------------------------

/**
 * A case: `sim` (simulator options, or undefined when it needs none) and `run(env)`, which runs in
 * the child process and returns `{ records, note }`. Timing and RSS are taken around `run` (a `run`
 * that times its own core work returns `seconds` and `cpuSeconds`, which are used instead).
 *
 * Anchored cases add `anchor: { run(env) }`, the hand-written loop (its child loads none of effetl),
 * and `same`: the output file both write, checked to hold the same rows (CSV: the same header and the
 * same rows in any order; otherwise the same lines). `ideal: { latencyMs, concurrency(pathname) }`
 * adds wall time ÷ the ideal (Σ requests × latency ÷ concurrency, from the simulator's counts).
 * `repeat` is the default number of pairs (otherwise 3).
 */
/** Rows of the parquet-sink and run-memory cases: 1M (--quick 100k, --full 10M). */
const sinkRows = (env) => (env.quick ? 100_000 : env.full ? 10_000_000 : 1_000_000)

const cases = [
  {
    id: "list-csv",
    name: "channel→csv (list)",
    sim: (quick) => ({ products: quick ? 1_000 : 20_000, seed: 7 }),
    run: (env) =>
      runPipeline(env, {
        mode: "list",
        transforms: [],
        sinks: ["csv"],
        expectAll: true
      }),
    anchor: { run: (env) => runAnchor(env, "listCsv") },
    same: "images.csv"
  },
  {
    // Detailed mode: every image downloaded (hash-content's default 8 at a time), validate → hash →
    // dedupe within each product → renumber → CSV.
    id: "detailed-transforms",
    name: "channel→csv (detailed, demo transforms)",
    sim: (quick) => ({ products: quick ? 150 : 1_000, seed: 7 }),
    run: (env) => runPipeline(env, detailedSpec),
    anchor: { run: (env) => runAnchor(env, "detailedCsv") },
    same: "images.csv"
  },
  {
    // The same, bound by the API: the simulator answers every request (pages and images) 50 ms late.
    // The ideal wall time: Σ requests × 50 ms ÷ concurrency (pages 4 at a time, images 8 at a time).
    id: "detailed-latency",
    name: "channel→csv (detailed, 50 ms latency)",
    sim: (quick) => ({
      products: quick ? 150 : 1_000,
      seed: 7,
      faults: { kinds: ["latency"], rate: 1, latencyMs: 50, maxConsecutive: 1_000_000 }
    }),
    run: (env) => runPipeline(env, detailedSpec),
    anchor: { run: (env) => runAnchor(env, "detailedCsv") },
    same: "images.csv",
    ideal: { latencyMs: 50, concurrency: (pathname) => (pathname.startsWith("/media/") ? downloadConcurrency : pageConcurrency) },
    repeat: 1
  },
  {
    // hash-content on images that arrived as bytes (2 KiB each, batches of 1,000) against raw
    // node:crypto over the same bytes, one hash object per image. Only the hashing is timed.
    id: "hash-content",
    name: "hash-content (2 KiB inline images)",
    sim: undefined,
    run: (env) => runHash(env),
    anchor: { run: (env) => runHashAnchor(env) },
    same: "hashes.txt"
  },
  {
    // `effetl --version` as a user runs it (the command: its sh launcher, then Node) beside `node -e 0`:
    // each whole process's CPU (start-up included) and peak RSS, the median of 5 runs.
    id: "startup",
    name: "effetl --version",
    sim: undefined,
    run: (env) => runStartup(env, [path.join(root, "packages/cli/bin/effetl.js"), "--version"]),
    anchor: { run: (env) => runStartup(env, [process.execPath, "-e", "0"]) }
  },
  {
    id: "grouping-spill",
    name: "grouping spill",
    sim: (quick) => ({ products: quick ? 1_000 : 20_000, seed: 7 }),
    run: (env) =>
      runPipeline(env, {
        mode: "list",
        transforms: [["dedupe-by-hash", { scope: "product" }]],
        sinks: ["csv"],
        maxBuffered: 2_000,
        expectAll: true
      })
  },
  {
    // BigCommerce's quota: a full sync of a store under a Standard plan's 150 requests per 30 s
    // fixed window, against the BigCommerce simulator (started in the child: the case is bound by the
    // quota, not by CPU). 440 products → 443 requests (count, 2 product pages, one per product).
    // The minimum is the earliest the last request may start: a fresh window allows `quota` at once
    // and `quota` more at each reset, so N requests need floor((N - 1) / quota) windows after the
    // first. `--quick` keeps the quota and the catalogue and shortens the window to 3 s.
    id: "bigcommerce-quota",
    name: "bigcommerce→csv (quota 150/30 s)",
    sim: undefined,
    run: async (env) => {
      const { core, files, Effect, Logger, LogLevel } = await load()
      const { bigcommerce } = await import("@effetl/source-bigcommerce")
      const { startBigCommerceSimulator } = await import("@effetl/source-bigcommerce/simulator")
      const quota = 150
      const windowMs = env.quick ? 3_000 : 30_000
      const sim = await startBigCommerceSimulator({ products: 440, seed: 7, quota, windowMs })
      try {
        const pipeline = await Effect.runPromise(
          core.Pipeline.make({
            name: "bench",
            statePath: path.join(env.dir, "state.json"),
            deadLetterPath: path.join(env.dir, "dead-letter.jsonl"),
            sources: {
              bigcommerce: {
                use: bigcommerce,
                with: { baseUrl: sim.url, storeHash: sim.storeHash, accessToken: sim.accessToken, concurrency: 8 }
              }
            },
            sinks: { images_csv: { use: files.csv, with: { path: path.join(env.dir, "images.csv") } } }
          })
        )
        const started = performance.now()
        const summary = await Effect.runPromise(core.Runner.runNode(pipeline).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)))
        const seconds = (performance.now() - started) / 1000
        const counts = summary.sources[0].counts
        if (counts.read !== sim.catalogue.length) throw new Error(`read ${counts.read} records, but the simulator has ${sim.catalogue.length} images`)
        if (counts.written !== counts.read) throw new Error(`wrote ${counts.written} of ${counts.read} records`)
        const requests = sim.requests().total
        const throttled = sim.throttled()
        const counted = requests - throttled
        const perSecond = quota / (windowMs / 1000)
        const minimum = (Math.floor((counted - 1) / quota) * windowMs) / 1000
        const f = (n) => n.toFixed(2)
        const note = [
          `${requests} requests, ${throttled} answered 429, lowest Requests-Left ${sim.lowestLeft()}; quota ${quota} per ${windowMs / 1000} s`,
          `minimum ${f(minimum)} s (floor((requests - 1) / quota) windows), ratio ${f(seconds / minimum)}`,
          `requests ÷ rate ${f(counted / perSecond)} s (ratio ${f(seconds / (counted / perSecond))}); ` +
          `(requests - quota) ÷ rate ${f((counted - quota) / perSecond)} s (ratio ${f(seconds / ((counted - quota) / perSecond))})`
        ].join("\n  ")
        return { records: counts.read, seconds, outputBytes: fs.statSync(path.join(env.dir, "images.csv")).size, note }
      } finally {
        await sim.close()
      }
    }
  },
  {
    // Shoplazza's rate limit: a full sync of a shop under its leaky bucket (40 requests, leaking
    // 2 per s), against the Shoplazza simulator (started in the child, before the clock starts),
    // with the source's default budget. The minimum is the shop's own: requests ÷ 2 per s. With one
    // request per product a sync was bound by it; with the images inline in the list it is a few
    // requests, and the ratio says how far CPU and latency are above it. `--quick`: 100 products.
    id: "shoplazza-sync",
    name: "shoplazza→csv (2 requests/s)",
    sim: undefined,
    run: async (env) => {
      const { core, files, Effect, Logger, LogLevel } = await load()
      const { shoplazza } = await import("@effetl/source-shoplazza")
      const { startShoplazzaSimulator } = await import("@effetl/source-shoplazza/simulator")
      const products = env.quick ? 100 : 1_000
      const sim = await startShoplazzaSimulator({ products, seed: 7 })
      try {
        const pipeline = await Effect.runPromise(
          core.Pipeline.make({
            name: "bench",
            statePath: path.join(env.dir, "state.json"),
            deadLetterPath: path.join(env.dir, "dead-letter.jsonl"),
            sources: {
              shoplazza: {
                use: shoplazza,
                with: { baseUrl: sim.url, accessToken: sim.accessToken, protocolRelativeScheme: "http", pageSize: 250 }
              }
            },
            // One full sync into one file (the source reads incrementally, so `auto` would append parts).
            sinks: { images_csv: { use: files.csv, with: { path: path.join(env.dir, "images.csv"), mode: "overwrite" } } }
          })
        )
        const started = performance.now()
        const summary = await Effect.runPromise(core.Runner.runNode(pipeline).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)))
        const seconds = (performance.now() - started) / 1000
        const counts = summary.sources[0].counts
        const images = sim.catalogue.reduce((n, p) => n + p.images.length, 0)
        if (counts.read !== images) throw new Error(`read ${counts.read} records, but the simulator has ${images} images`)
        if (counts.written !== counts.read) throw new Error(`wrote ${counts.written} of ${counts.read} records`)
        const { total: requests, byPath } = sim.requests()
        const list = byPath["/openapi/2022-01/products"] ?? 0
        const minimum = requests / 2
        const f = (n) => n.toFixed(3)
        const note = [
          `${products} products, ${images} images: ${requests} requests (${list} list pages, ${requests - list} others), ` +
          `${(requests / images).toFixed(4)} requests per image; ${sim.rateLimited()} answered 429`,
          `shop's minimum: requests ÷ 2 per s = ${minimum.toFixed(1)} s; wall time ÷ minimum = ${f(seconds / minimum)}`
        ].join("\n  ")
        return { records: counts.read, seconds, outputBytes: fs.statSync(path.join(env.dir, "images.csv")).size, note }
      } finally {
        await sim.close()
      }
    }
  },
  {
    id: "csv-sink",
    name: "csv sink only",
    sim: undefined,
    run: (env) => runSink(env, "csv", env.quick ? 100_000 : 1_000_000)
  },
  {
    id: "jsonl-sink",
    name: "jsonl sink only",
    sim: undefined,
    run: (env) => runSink(env, "jsonl", env.quick ? 100_000 : 1_000_000)
  },
  // `--case parquet-sink` runs every engine, each in its own child (so each has its own peak RSS),
  // beside its anchor: DuckDB's own COPY … TO of the same rows from an in-memory table, in a child
  // that loads none of effetl; both files must hold the same rows. 1M rows (--full: 10M for duckdb).
  ...["duckdb", "hyparquet-writer", "parquetjs-lite"].map((engine) => {
    const rows = (env) => (engine === "duckdb" ? sinkRows(env) : sinkRows({ ...env, full: false }))
    return {
      id: `parquet-sink-${engine}`,
      group: "parquet-sink",
      name: `parquet sink only (${engine})`,
      sim: undefined,
      run: (env) => runSink(env, "parquet", rows(env), { engine }),
      anchor: { run: (env) => runParquetAnchor(env, rows(env)) },
      same: "images.parquet",
      ...(engine === "duckdb" ? {} : { repeat: 1 })
    }
  }),
  // The duckdb engine beside the other way to measure DuckDB's own COPY … TO of these rows: streamed
  // from DuckDB's own SQL as it writes them (no table held: about 160 MB, as the issue's anchor,
  // 220 MB, was measured), so the anchor's time includes making the rows, as the sink's does.
  {
    id: "parquet-sink-duckdb-streamed",
    group: "parquet-sink",
    name: "parquet sink only (duckdb), vs a streamed COPY",
    sim: undefined,
    run: (env) => runSink(env, "parquet", sinkRows(env), { engine: "duckdb" }),
    anchor: { run: (env) => runParquetAnchor(env, sinkRows(env), { streamed: true }) },
    same: "images.parquet"
  },
  // `--case run-memory`: the memory of a whole `effetl run` process (the CLI, with a synthetic source,
  // scripts/bench-plugins/synthetic-source.mjs) into each file format, as is and regrouped by
  // product (dedupe-by-hash per product over a source whose products span the whole run, so the
  // runner spills to disk and merges). 1M records (--full: 10M).
  ...["csv", "jsonl", "parquet"].flatMap((format) =>
    [false, true].map((regroup) => ({
      id: `run-memory-${format}${regroup ? "-regroup" : ""}`,
      group: "run-memory",
      name: `effetl run → ${format}${regroup ? " (regrouped)" : ""}`,
      sim: undefined,
      run: (env) => runCli(env, format, regroup, sinkRows(env))
    }))
  ),
  // `--case distributed`: the detailed channel workload and three BigCommerce stores, locally and on
  // 1, 2 and 3 `effetl worker` processes (scripts/bench-distributed.mjs).
  ...distributedCases({ root, detailedTransforms: () => detailedSpec.transforms })
]

/** The cases a key names: a case id, a display name, or a group of cases (`parquet-sink`). */
const findCases = (key) => cases.filter((c) => c.id === key || c.name === key || c.group === key)
const findCase = (key) => findCases(key)[0]

// --- child: one case ---------------------------------------------------------------------------

/** Imports the built packages (resolved to `packages/*\/dist` through the workspace links). */
const load = async () => ({
  core: await import("@effetl/core"),
  files: await import("@effetl/sink-files"),
  channel: await import("@effetl/source-channel"),
  Effect: await import("effect/Effect"),
  Logger: await import("effect/Logger"),
  LogLevel: await import("effect/LogLevel"),
  Option: await import("effect/Option"),
  Chunk: await import("effect/Chunk"),
  Layer: await import("effect/Layer"),
  Schema: await import("effect/Schema"),
  NodeFileSystem: await import("@effect/platform-node/NodeFileSystem"),
  NodePath: await import("@effect/platform-node/NodePath")
})

/** The channel source's settings in every channel case (and in their anchors). */
const pageSize = 1000
const pageConcurrency = 4
/** hash-content's default download concurrency. */
const downloadConcurrency = 8

const detailedSpec = {
  mode: "detailed",
  transforms: [["validate"], ["hash-content"], ["dedupe-by-hash", { scope: "product" }], ["normalise-sequence", { start: 1 }]],
  sinks: ["csv"],
  expectAll: false
}

/** Runs a hand-written channel anchor (scripts/bench-anchors.mjs) against the parent's simulator. */
const runAnchor = async (env, which) => {
  const anchors = await import("./bench-anchors.mjs")
  const started = performance.now()
  const r = await anchors[which]({ sim: env.sim, dir: env.dir, pageSize, concurrency: pageConcurrency, downloads: downloadConcurrency })
  const seconds = (performance.now() - started) / 1000
  const notes = [`${r.pages} pages`]
  if (r.written !== r.records) notes.push(`${r.written} written`)
  if (r.deduped) notes.push(`${r.deduped} deduped`)
  if (r.rejected) notes.push(`${r.rejected} invalid`)
  return { records: r.records, seconds, outputBytes: r.outputBytes, note: notes.join(", ") }
}

/**
 * Runs a command 5 times, a preload (through NODE_OPTIONS) reporting at exit the process's CPU,
 * peak RSS and age; returns the medians.
 */
const runStartup = async (env, command) => {
  const probe = path.join(env.dir, "exit-probe.cjs")
  const report = path.join(env.dir, "exit.json")
  fs.writeFileSync(
    probe,
    `process.on("exit", () => { const c = process.cpuUsage(); require("node:fs").writeFileSync(${JSON.stringify(report)}, ` +
      `JSON.stringify({ cpu: (c.user + c.system) / 1e6, rssMb: process.resourceUsage().maxRSS / 1024, seconds: process.uptime() })) })\n`
  )
  const runs = []
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(command[0], command.slice(1), {
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${JSON.stringify(probe)}`.trim() }
    })
    if (r.status !== 0) throw new Error(`${command.join(" ")} exited with ${r.status}: ${r.stderr}`)
    runs.push(JSON.parse(fs.readFileSync(report, "utf8")))
  }
  const median = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[2]
  return {
    records: 1,
    seconds: median("seconds"),
    cpuSeconds: median("cpu"),
    peakRssMb: median("rssMb"),
    outputBytes: 0,
    note: `${command.map((a) => path.basename(a)).join(" ")}: the whole process (start-up included), median of 5`
  }
}

/** The hash case's input: the same images in both children (20,000 × 2 KiB), hashed `passes` times. */
const hashInput = (quick) => ({ count: 20_000, size: 2048, passes: quick ? 2 : 10 })

/** hash-content (the built-in plugin, made as the runner makes it) over batches of records carrying bytes. */
const runHash = async (env) => {
  const { core, Effect, Option, Chunk } = await load()
  const { syntheticImages } = await import("./bench-anchors.mjs")
  const { count, size, passes } = hashInput(env.quick)
  const images = syntheticImages(count, size)
  const batches = []
  for (let b = 0; b < count; b += 1000) {
    const records = images.slice(b, b + 1000).map((bytes, i) =>
      core.ProductImage.unchecked({
        source: "bench", productId: String(1 + Math.floor((b + i) / 4)), imageId: String(b + i + 1), position: (b + i) % 4,
        url: null, filename: null, width: null, height: null, alt: null, contentHash: null, createdAt: null, updatedAt: null,
        bytes, extra: {}
      })
    )
    batches.push(core.Batch.make(records, Option.none()))
  }
  const plugin = core.builtinTransforms.find((t) => t.name === "hash-content")
  const config = (await import("effect/Schema")).decodeUnknownSync(plugin.config)({})
  const program = Effect.gen(function*() {
    const transform = yield* plugin.make(config, { key: "0:hash-content", state: Option.none() })
    const cpuBefore = process.cpuUsage()
    const started = performance.now()
    let last = []
    for (let pass = 0; pass < passes; pass++) {
      last = []
      for (const batch of batches) last.push(yield* transform.apply(batch))
    }
    const cpu = process.cpuUsage(cpuBefore)
    return { last, seconds: (performance.now() - started) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 }
  }).pipe(Effect.scoped, Effect.provide(core.Runner.platformLayer))
  const { last, seconds, cpuSeconds } = await Effect.runPromise(program)
  const hashes = last.flatMap((b) => Chunk.toReadonlyArray(b.records).map((r) => r.contentHash))
  fs.writeFileSync(path.join(env.dir, "hashes.txt"), hashes.join("\n") + "\n")
  return hashResult(count, size, passes, seconds, cpuSeconds)
}

/** Raw node:crypto over the same images. */
const runHashAnchor = async (env) => {
  const { syntheticImages, hashImages } = await import("./bench-anchors.mjs")
  const { count, size, passes } = hashInput(env.quick)
  const images = syntheticImages(count, size)
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  let hashes = []
  for (let pass = 0; pass < passes; pass++) hashes = hashImages(images)
  const cpu = process.cpuUsage(cpuBefore)
  const seconds = (performance.now() - started) / 1000
  fs.writeFileSync(path.join(env.dir, "hashes.txt"), hashes.join("\n") + "\n")
  return hashResult(count, size, passes, seconds, (cpu.user + cpu.system) / 1e6)
}

const hashResult = (count, size, passes, seconds, cpuSeconds) => ({
  records: count * passes,
  seconds,
  cpuSeconds,
  outputBytes: count * passes * size, // the bytes hashed
  note: `${count} images of ${size} bytes × ${passes} passes: ${((count * passes * size) / 1e6 / cpuSeconds).toFixed(0)} MB per CPU second`
})

/** A channel pipeline against the parent's simulator, run with `Runner.runNode`. */
const runPipeline = async (env, spec) => {
  const { core, files, channel, Effect, Logger, LogLevel } = await load()
  const { Pipeline, Runner, builtinTransforms } = core
  const transform = (name) => {
    const t = builtinTransforms.find((p) => p.name === name)
    if (t === undefined) throw new Error(`no built-in transform ${name}`)
    return t
  }
  const sinks = {}
  for (const s of spec.sinks) sinks[`images_${s}`] = { use: files[s], with: { path: path.join(env.dir, `images.${s}`) } }
  const pipeline = await Effect.runPromise(
    Pipeline.make({
      name: "bench",
      statePath: path.join(env.dir, "state.json"),
      deadLetterPath: path.join(env.dir, "dead-letter.jsonl"),
      ...(spec.maxBuffered !== undefined ? { maxBuffered: spec.maxBuffered } : {}),
      sources: {
        channel: {
          use: channel.channel,
          with: {
            baseUrl: env.sim.url,
            channelId: env.sim.channelId,
            token: env.sim.token,
            mode: spec.mode,
            pageSize,
            concurrency: pageConcurrency
          }
        }
      },
      transforms: spec.transforms.map(([name, config]) => ({ use: transform(name), ...(config ? { with: config } : {}) })),
      sinks
    })
  )

  const started = performance.now()
  const summary = await Effect.runPromise(Runner.runNode(pipeline).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)))
  const seconds = (performance.now() - started) / 1000

  const counts = summary.sources[0].counts
  if (counts.read !== env.sim.images) throw new Error(`read ${counts.read} records, but the simulator has ${env.sim.images} images`)
  if (spec.expectAll && counts.written !== counts.read) throw new Error(`wrote ${counts.written} of ${counts.read} records`)
  if (counts.written + counts.invalid + counts.deduped !== counts.read) {
    throw new Error(`counts do not add up: ${JSON.stringify(counts)}`)
  }
  const outputBytes = spec.sinks.reduce((n, s) => n + fs.statSync(path.join(env.dir, `images.${s}`)).size, 0)
  const notes = [`${counts.pages} pages`]
  if (counts.written !== counts.read) notes.push(`${counts.written} written`)
  if (counts.deduped > 0) notes.push(`${counts.deduped} deduped`)
  if (counts.invalid > 0) notes.push(`${counts.invalid} invalid`)
  if (counts.retries > 0) notes.push(`${counts.retries} retries`)
  if (spec.maxBuffered !== undefined) {
    // The final checkpoint carries the number of spilled segments (see core's ProductGrouping).
    const state = JSON.parse(fs.readFileSync(path.join(env.dir, "state.json"), "utf8"))
    const spill = state.pipelines.bench.sources.channel.checkpoint?.spill ?? 0
    if (spill === 0) throw new Error("product grouping did not spill to disk")
    notes.push(`${spill} segments spilled (maxBuffered ${spec.maxBuffered})`)
  }
  return { records: counts.read, seconds, outputBytes, note: notes.join(", ") }
}

/** Writes `total` synthetic records straight through a file sink's write/commit/finish. */
const runSink = async (env, format, total, options = {}) => {
  const { core, files, Effect, Option, Chunk, Layer, Schema, NodeFileSystem, NodePath } = await load()
  const { ProductImage } = core
  const plugin = files[format]
  const target = path.join(env.dir, `images.${format}`)
  const config = Schema.decodeUnknownSync(plugin.config)({ path: target, ...options })
  const batchSize = 1_000
  const commitEvery = 10_000

  // A ring of distinct batches, built before timing, reused in turn: the sink's cost, not the generator's.
  const alts = ["Red sneaker, side view", 'Bag "Classic" – 30 × 20 cm', "Çanta — deri", null, "white shirt; front"]
  const ring = []
  for (let b = 0; b < 10; b++) {
    const records = []
    for (let i = 0; i < batchSize; i++) {
      const n = b * batchSize + i
      const product = 1001 + Math.floor(n / 4)
      const hex = (n * 2654435761 >>> 0).toString(16).padStart(8, "0")
      records.push(
        ProductImage.unchecked({
          source: "bench",
          productId: String(product),
          imageId: String(n + 1),
          position: (n % 4) + 1,
          url: `https://cdn.example.com/media/products/2024/03/${(n % 28) + 1}/${hex}${hex}.jpg`,
          filename: `${hex}${hex}.jpg`,
          width: 1200,
          height: 1600,
          alt: alts[n % alts.length],
          contentHash: `sha256:${hex.repeat(8)}`,
          createdAt: new Date(Date.UTC(2023, 0, 1) + n * 60_000),
          updatedAt: new Date(Date.UTC(2024, 0, 1) + n * 60_000),
          extra: { status: "active", isActive: true, vendorHash: `vendor:${hex}${hex}${hex}${hex}` }
        })
      )
    }
    ring.push(Chunk.fromIterable(records))
  }

  const program = Effect.gen(function*() {
    const sink = yield* plugin.make(config, { name: `images_${format}`, pipeline: "bench", runId: "bench-run", committed: Option.none() })
    let written = 0
    let sinceCommit = 0
    while (written < total) {
      const batch = ring[(written / batchSize) % ring.length]
      yield* sink.write(batch, { productComplete: true })
      written += batch.length
      sinceCommit += batch.length
      if (sinceCommit >= commitEvery) {
        yield* sink.commit
        sinceCommit = 0
      }
    }
    yield* sink.commit
    const publishing = performance.now()
    yield* sink.finish
    yield* sink.cleanup
    return { written, publishSeconds: (performance.now() - publishing) / 1000 }
  }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer)))

  const started = performance.now()
  const { written, publishSeconds } = await Effect.runPromise(program)
  const seconds = (performance.now() - started) / 1000
  const outputBytes = fs.statSync(target).size
  const note = `batches of ${batchSize}, commit every ${commitEvery}; publishing the ${written / commitEvery} parts took ${publishSeconds.toFixed(2)} s`
  return { records: written, seconds, outputBytes, note }
}

/**
 * The parquet anchor: DuckDB's own `COPY … TO` (snappy, row groups of 65,536, as the sink's
 * defaults) of the rows `runSink` writes. By default they are built with SQL into an in-memory
 * table first (not timed; DuckDB's default memory limit, so the table is all in memory, about
 * 1.4 GB) and the `COPY` reads the table on every core. `streamed`: the `COPY` reads the same SQL
 * as it makes the rows (timed; nothing held, about 160 MB).
 */
const runParquetAnchor = async (env, total, { streamed = false } = {}) => {
  const { DuckDBInstance } = await import("@duckdb/node-api")
  const db = await DuckDBInstance.create(":memory:")
  const connection = await db.connect()
  // runSink's ring: row k is record n = k mod 10,000; hex = (n × 2654435761 mod 2^32) in 8 hex digits.
  const rows =
    `SELECT 'bench' AS source, (1001 + n // 4)::VARCHAR AS product_id, (n + 1)::VARCHAR AS image_id, ` +
    `(n % 4 + 1)::INTEGER AS "position", 'https://cdn.example.com/media/products/2024/03/' || (n % 28 + 1) || '/' || h || h || '.jpg' AS url, ` +
    `h || h || '.jpg' AS filename, 1200::INTEGER AS width, 1600::INTEGER AS height, 'sha256:' || repeat(h, 8) AS content_hash, ` +
    `['Red sneaker, side view', 'Bag "Classic" – 30 × 20 cm', 'Çanta — deri', NULL, 'white shirt; front'][n % 5 + 1] AS alt, ` +
    `TIMESTAMPTZ '2023-01-01 00:00:00+00' + to_minutes(n) AS created_at, TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_minutes(n) AS updated_at, ` +
    `'{"status":"active","isActive":true,"vendorHash":"vendor:' || h || h || h || h || '"}' AS extra ` +
    `FROM (SELECT k, k % 10000 AS n, lpad(lower(hex((k % 10000 * 2654435761) % 4294967296)), 8, '0') AS h FROM range(${total}) r(k))`
  if (!streamed) await connection.run(`CREATE TABLE images AS ${rows} ORDER BY k`)
  const target = path.join(env.dir, "images.parquet")
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  // the parquet sink's defaults
  await connection.run(`COPY ${streamed ? `(${rows})` : "images"} TO '${target.replace(/'/g, "''")}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 65536)`)
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  connection.closeSync()
  db.closeSync()
  return {
    records: total,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    outputBytes: fs.statSync(target).size,
    note: streamed
      ? `DuckDB COPY … TO of the same ${int(total)} rows streamed from its own SQL as it makes them (timed; no table held)`
      : `DuckDB COPY … TO of the same ${int(total)} rows from an in-memory table (built with SQL first, not timed)`
  }
}

/**
 * One `effetl run` of the built CLI in a process of its own (the `effetl` command, the memory probe
 * loaded through NODE_OPTIONS), the synthetic source into one file sink, `regroup`: through dedupe-by-hash per product over products
 * that span the whole run. Returns that process's peak RSS and CPU, and its RSS over the run.
 */
const runCli = async (env, format, regroup, total) => {
  const plugins = path.join(root, "scripts", "bench-plugins")
  const output = path.join(env.dir, `images.${format}`)
  const pipeline = {
    version: 1,
    name: "bench",
    state: { path: path.join(env.dir, "state.json") },
    deadLetter: { path: path.join(env.dir, "dead-letter.jsonl") },
    sources: {
      synthetic: { use: path.join(plugins, "synthetic-source.mjs"), with: { records: total, productComplete: !regroup } }
    },
    transforms: regroup ? [{ use: "dedupe-by-hash", with: { scope: "product" } }] : [],
    sinks: { images: { use: format, with: { path: output, mode: "overwrite" } } }
  }
  const file = path.join(env.dir, "pipeline.yaml")
  fs.writeFileSync(file, JSON.stringify(pipeline, null, 2)) // JSON is YAML
  const probe = path.join(env.dir, "probe.json")
  const { spawn } = await import("node:child_process")
  // The command as a user runs it (its launcher starts Node with the heap cap it ships with), the
  // probe loaded through NODE_OPTIONS.
  const child = spawn(
    path.join(root, "packages/cli/bin/effetl.js"),
    ["run", file, "--log-format", "json"],
    {
      cwd: env.dir,
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        ...process.env,
        EFFETL_BENCH_PROBE: probe,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${JSON.stringify(path.join(plugins, "memory-probe.cjs"))}`.trim()
      }
    }
  )
  let stderr = ""
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)))
  const code = await new Promise((resolve) => child.on("exit", (c) => resolve(c ?? 1)))
  if (code !== 0) throw new Error(`effetl run exited with ${code}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`)
  const measured = JSON.parse(fs.readFileSync(probe, "utf8"))

  // The output holds every record once.
  let rows
  if (format === "parquet") {
    const { DuckDBInstance } = await import("@duckdb/node-api")
    const db = await DuckDBInstance.create(":memory:")
    const connection = await db.connect()
    const reader = await connection.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT image_id) AS ids FROM read_parquet('${output.replace(/'/g, "''")}')`)
    const [n, ids] = reader.getRows()[0]
    rows = Number(n) === Number(ids) ? Number(n) : -1
    connection.closeSync()
    db.closeSync()
  } else {
    rows = await countLines(output)
    if (format === "csv") rows -= 1 // the header
  }
  if (rows !== total) throw new Error(`${output} holds ${rows} distinct records, not ${total}`)

  const state = JSON.parse(fs.readFileSync(path.join(env.dir, "state.json"), "utf8"))
  const spill = state.pipelines?.bench?.sources?.synthetic?.checkpoint?.spill ?? 0
  if (regroup && spill === 0) throw new Error("product grouping did not spill to disk")
  const mb = (b) => int(b / 1e6)
  const at = [0.1, 0.25, 0.5, 0.75, 0.9, 1].map((q) => measured.samples[Math.min(measured.samples.length - 1, Math.floor(q * (measured.samples.length - 1)))])
  const max = (i) => Math.max(...measured.samples.map((s) => s[i]))
  const note = [
    `the effetl run process: peak RSS ${int(measured.maxRssKb / 1024)} MB; RSS at 10/25/50/75/90/100 % of the run: ${at.map((s) => mb(s[1])).join(" / ")} MB`,
    `highest sampled heap used ${mb(max(2))} MB, external ${mb(max(3))} MB (array buffers ${mb(max(4))} MB); ` +
    `${int(rows)} records in the output${regroup ? `; ${spill} spill segments (maxBuffered 10,000)` : ""}`
  ].join("\n  ")
  return {
    records: total,
    seconds: measured.seconds,
    cpuSeconds: measured.cpuSeconds,
    peakRssMb: measured.maxRssKb / 1024,
    outputBytes: fs.statSync(output).size,
    note
  }
}

/** The number of lines of a file, streamed. */
const countLines = async (file) => {
  let lines = 0
  for await (const chunk of fs.createReadStream(file)) for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++
  return lines
}

/** The baseline: a child that only loads the packages, for the RSS every case starts from. */
const baseline = { id: "baseline", name: "baseline", sim: undefined, run: async () => (await load(), { records: 0, seconds: 0, outputBytes: 0 }) }

const runChild = async (opts) => {
  const c = opts.cases[0] === baseline.id ? baseline : findCase(opts.cases[0])
  const env = {
    quick: opts.quick,
    full: opts.full,
    dir: process.env.EFFETL_BENCH_DIR,
    sim: process.env.EFFETL_BENCH_SIM ? JSON.parse(process.env.EFFETL_BENCH_SIM) : undefined
  }
  try {
    // Module loading is neither timed nor counted as CPU (the imports are cached for `run`). An
    // anchor's child loads none of effetl.
    if (opts.anchor) {
      if (c.anchor === undefined) throw new Error(`case ${c.id} has no anchor`)
      await import("./bench-anchors.mjs") // undici, csv-stringify: loaded, as effetl's child loads its packages
    } else await load()
    const cpuBefore = process.cpuUsage()
    const result = await (opts.anchor ? c.anchor.run(env) : c.run(env))
    const cpu = process.cpuUsage(cpuBefore)
    const whole = process.cpuUsage()
    const peakRssMb = process.resourceUsage().maxRSS / 1024 // maxRSS is in KiB
    process.send({
      ok: true,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      ...result,
      processCpuSeconds: (whole.user + whole.system) / 1e6,
      peakRssMb: result.peakRssMb ?? peakRssMb // a case that measured a process of its own (run-memory) says so
    })
  } catch (e) {
    process.send({ ok: false, error: e instanceof Error ? e.message : String(e) })
  }
  process.disconnect()
}

// --- parent: run the cases and print the table -------------------------------------------------

/** Simulators by options, shared by the cases that ask for the same catalogue (it is read-only). */
const simulators = new Map()

const simulatorFor = async (options) => {
  const key = JSON.stringify(options)
  let entry = simulators.get(key)
  if (entry === undefined) {
    const { startChannelSimulator } = await import("@effetl/source-channel/simulator")
    const t = performance.now()
    const sim = await startChannelSimulator({ port: 0, host: "127.0.0.1", ...options })
    const seconds = (performance.now() - t) / 1000
    entry = { sim, note: `simulator: ${options.products} products, ${sim.catalogue.length} images (started in ${seconds.toFixed(1)} s, not timed)` }
    simulators.set(key, { sim, note: `simulator: ${options.products} products, ${sim.catalogue.length} images (the one started above)` })
  }
  return entry
}

const closeSimulators = async () => {
  for (const { sim } of simulators.values()) await sim.close()
  simulators.clear()
}

/**
 * Runs a case (or, with `anchor`, its anchor) in a child. With `keep`, its directory is left for the
 * caller (returned as `dir`) to inspect and remove. `requests`: the simulator's requests by path
 * during the child's run.
 */
const runCase = async (c, opts, baseDir, { anchor = false, keep = false } = {}) => {
  const dir = fs.mkdtempSync(path.join(baseDir, `${c.id}${anchor ? "-anchor" : ""}-`))
  let sim
  let simNote = ""
  if (c.sim) ({ sim, note: simNote } = await simulatorFor(c.sim(opts.quick)))
  const before = sim?.requests().byPath
  let kept = false
  try {
    const profileDir = opts.profile === undefined
      ? undefined
      : (fs.mkdirSync(opts.profile, { recursive: true }), fs.mkdtempSync(path.join(opts.profile, `${c.id}${anchor ? "-anchor" : ""}-`)))
    const child = fork(self, ["--case", c.id, "--child", ...(anchor ? ["--anchor"] : []), ...(opts.quick ? ["--quick"] : []), ...(opts.full ? ["--full"] : [])], {
      ...(profileDir === undefined ? {} : { execArgv: [...process.execArgv, "--cpu-prof", `--cpu-prof-dir=${profileDir}`] }),
      cwd: dir,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: {
        ...process.env,
        EFFETL_BENCH_DIR: dir,
        ...(sim
          ? { EFFETL_BENCH_SIM: JSON.stringify({ url: sim.url, token: sim.token, channelId: sim.channelId, images: sim.catalogue.length }) }
          : {})
      }
    })
    let message
    child.on("message", (m) => (message = m))
    const code = await new Promise((resolve) => child.on("exit", (c) => resolve(c ?? 1)))
    if (message === undefined) return { ok: false, error: `child exited with code ${code} and no result` }
    if (profileDir !== undefined) printProfile(profileDir, `${c.name}${anchor ? " (hand-written)" : ""}`)
    const requests = {}
    if (sim) for (const [p, n] of Object.entries(sim.requests().byPath)) if (n - (before[p] ?? 0) > 0) requests[p] = n - (before[p] ?? 0)
    kept = keep
    return { ...message, simNote, requests, ...(keep ? { dir } : {}) }
  } finally {
    if (!kept) fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Prints the top self-time functions and packages of the .cpuprofile in `dir` (the whole child,
 * module loading included): where a case spends its CPU.
 */
const printProfile = (dir, title) => {
  const file = fs.readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))
  if (file === undefined) return console.log(`  (no CPU profile in ${dir})`)
  const profile = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map()
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const fns = new Map()
  const packages = new Map()
  const where = (url) => {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url) ?? /packages\/([^/]+)\//.exec(url)
    return m ? m[1] : url === "" ? "(native, GC, idle)" : url.startsWith("node:") ? "node: (built-ins)" : path.basename(url)
  }
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame
    const key = `${functionName || "(anonymous)"}  ${url ? `${where(url)}/${path.basename(url)}:${lineNumber + 1}` : ""}`
    fns.set(key, (fns.get(key) ?? 0) + us)
    const pkg = url ? where(url) : functionName.startsWith("(") ? functionName : "(native)"
    packages.set(pkg, (packages.get(pkg) ?? 0) + us)
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`
  const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
  console.log(`  CPU profile of ${title}: ${path.join(dir, file)} (${(total / 1e6).toFixed(2)} s sampled)`)
  console.log(`    by package: ${top(packages, 10).map(([k, us]) => `${k} ${pct(us).trim()}`).join(", ")}`)
  for (const [k, us] of top(fns, 25)) console.log(`    ${pct(us)}  ${k}`)
}

/** Whether two outputs hold the same rows: CSV files the same header and rows in any order, other files the same lines. */
const sameRows = async (file, a, b) => {
  if (!fs.existsSync(a) || !fs.existsSync(b)) return { ok: false, note: `${file} is missing from ${fs.existsSync(a) ? "the anchor's" : "effetl's"} output` }
  if (file.endsWith(".parquet")) return sameParquetRows(file, a, b)
  let ra
  let rb
  let header = ""
  if (file.endsWith(".csv")) {
    const { parse } = await import("csv-parse/sync")
    ra = parse(fs.readFileSync(a), { relax_column_count: true })
    rb = parse(fs.readFileSync(b), { relax_column_count: true })
    const [ha, hb] = [JSON.stringify(ra.shift() ?? []), JSON.stringify(rb.shift() ?? [])]
    if (ha !== hb) return { ok: false, note: `${file}: the columns differ: effetl ${ha}, anchor ${hb}` }
    ra = ra.map((r) => JSON.stringify(r))
    rb = rb.map((r) => JSON.stringify(r))
    header = ", same columns"
  } else {
    ra = fs.readFileSync(a, "utf8").split("\n").filter((l) => l !== "")
    rb = fs.readFileSync(b, "utf8").split("\n").filter((l) => l !== "")
  }
  ra.sort()
  rb.sort()
  const n = Math.max(ra.length, rb.length)
  for (let i = 0; i < n; i++) {
    if (ra[i] !== rb[i]) {
      return {
        ok: false,
        note: `${file}: effetl has ${ra.length} rows, the anchor ${rb.length}; first difference (sorted): effetl ${ra[i] ?? "(none)"}, anchor ${rb[i] ?? "(none)"}`
      }
    }
  }
  return { ok: true, note: `${file}: the same ${int(ra.length)} rows${header}` }
}

/** Whether two Parquet files hold the same rows (in any order, timestamps compared as instants), by DuckDB. */
const sameParquetRows = async (file, a, b) => {
  const { DuckDBInstance } = await import("@duckdb/node-api")
  const db = await DuckDBInstance.create(":memory:")
  const connection = await db.connect()
  try {
    await connection.run("SET TimeZone = 'UTC'") // a TIMESTAMP (parquetjs-lite's) is a UTC instant
    const rows = async (sql) => (await connection.runAndReadAll(sql)).getRowObjectsJS()
    const lit = (f) => `'${f.replace(/'/g, "''")}'`
    const columns = async (f) => (await rows(`DESCRIBE SELECT * FROM read_parquet(${lit(f)})`)).map((c) => [c.column_name, c.column_type])
    const [ca, cb] = [await columns(a), await columns(b)]
    const names = (cs) => JSON.stringify(cs.map(([n]) => n))
    if (names(ca) !== names(cb)) return { ok: false, note: `${file}: the columns differ: effetl ${names(ca)}, anchor ${names(cb)}` }
    // parquetjs-lite's timestamps read as TIMESTAMP (UTC), the others' as TIMESTAMP WITH TIME ZONE.
    const select = (f) =>
      `SELECT ${ca.map(([n, t]) => (t === "TIMESTAMP" || t === "TIMESTAMP WITH TIME ZONE" ? `"${n}"::TIMESTAMPTZ AS "${n}"` : `"${n}"`)).join(", ")} FROM read_parquet(${lit(f)})`
    const [[{ n: na }], [{ n: nb }]] = [await rows(`SELECT count(*) AS n FROM read_parquet(${lit(a)})`), await rows(`SELECT count(*) AS n FROM read_parquet(${lit(b)})`)]
    const [[{ n: onlyA }], [{ n: onlyB }]] = [
      await rows(`SELECT count(*) AS n FROM (${select(a)} EXCEPT ALL ${select(b)})`),
      await rows(`SELECT count(*) AS n FROM (${select(b)} EXCEPT ALL ${select(a)})`)
    ]
    if (na !== nb || onlyA !== 0n || onlyB !== 0n) {
      return { ok: false, note: `${file}: effetl has ${na} rows, the anchor ${nb}; ${onlyA} rows only in effetl's, ${onlyB} only in the anchor's` }
    }
    return { ok: true, note: `${file}: the same ${int(Number(na))} rows, same columns (read back by DuckDB)` }
  } finally {
    connection.closeSync()
    db.closeSync()
  }
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Wall time ÷ the ideal: Σ over paths of requests × latency ÷ that path's concurrency. */
const idealSeconds = (ideal, requests) =>
  Object.entries(requests).reduce((t, [p, n]) => t + (n * ideal.latencyMs) / 1000 / ideal.concurrency(p), 0)

/**
 * Runs an anchored case: `repeat` pairs (effetl and the anchor take turns to go first), each pair's
 * outputs checked to hold the same rows. Returns the median effetl run, the median anchor run and
 * the median ratios.
 */
const runPairs = async (c, opts, baseDir) => {
  const repeat = opts.repeat ?? c.repeat ?? 3
  const pairs = []
  for (let i = 0; i < repeat; i++) {
    const loadAvg = os.loadavg()[0]
    const order = i % 2 === 0 ? [false, true] : [true, false]
    const got = {}
    for (const anchor of order) got[anchor ? "anchor" : "effetl"] = await runCase(c, opts, baseDir, { anchor, keep: true })
    const { effetl, anchor } = got
    try {
      if (!effetl.ok || !anchor.ok) {
        return { ok: false, error: !effetl.ok ? effetl.error : `anchor: ${anchor.error}`, simNote: effetl.simNote }
      }
      // A case without an output to compare (start-up) names none.
      const same = c.same === undefined
        ? { ok: true, note: "no output to compare" }
        : await sameRows(c.same, path.join(effetl.dir, c.same), path.join(anchor.dir, c.same))
      if (!same.ok) return { ok: false, error: `the outputs differ: ${same.note}`, simNote: effetl.simNote }
      const pair = { effetl, anchor, load: loadAvg, same, cpuRatio: effetl.cpuSeconds / anchor.cpuSeconds, wallRatio: effetl.seconds / anchor.seconds }
      if (c.ideal) {
        pair.effetlIdeal = effetl.seconds / idealSeconds(c.ideal, effetl.requests)
        pair.anchorIdeal = anchor.seconds / idealSeconds(c.ideal, anchor.requests)
        pair.ideal = idealSeconds(c.ideal, effetl.requests)
      }
      pairs.push(pair)
      const f = (n) => n.toFixed(2)
      console.log(
        `  pair ${i + 1} (load ${f(loadAvg)}): effetl ${f(effetl.cpuSeconds)} s CPU, ${f(effetl.seconds)} s wall, ${int(effetl.peakRssMb)} MB | ` +
          `hand-written ${f(anchor.cpuSeconds)} s CPU, ${f(anchor.seconds)} s wall, ${int(anchor.peakRssMb)} MB | ` +
          `CPU ${f(pair.cpuRatio)}×, wall ${f(pair.wallRatio)}×` +
          (c.ideal ? ` | wall ÷ ideal: effetl ${f(pair.effetlIdeal)}×, hand-written ${f(pair.anchorIdeal)}×` : "")
      )
    } finally {
      for (const r of [effetl, anchor]) if (r.dir) fs.rmSync(r.dir, { recursive: true, force: true })
    }
  }
  const pick = (key) => {
    const m = median(pairs.map((p) => p[key]))
    return pairs.reduce((best, p) => (Math.abs(p[key] - m) < Math.abs(best[key] - m) ? p : best))
  }
  const mid = pick("cpuRatio")
  return {
    ok: true,
    ...mid.effetl,
    anchorRun: mid.anchor,
    pairs: pairs.length,
    load: median(pairs.map((p) => p.load)),
    cpuRatio: median(pairs.map((p) => p.cpuRatio)),
    wallRatio: median(pairs.map((p) => p.wallRatio)),
    same: mid.same.note,
    ...(c.ideal
      ? { ideal: mid.ideal, effetlIdeal: median(pairs.map((p) => p.effetlIdeal)), anchorIdeal: median(pairs.map((p) => p.anchorIdeal)) }
      : {})
  }
}

const pad = (s, n, right = false) => (right ? String(s).padStart(n) : String(s).padEnd(n))
const int = (n) => Math.round(n).toLocaleString("en-US")

const printTable = (rows) => {
  const head = ["case", "records", "seconds", "records/s", "peak RSS MB", "CPU s", "output MB"]
  const body = rows.map((r) =>
    r.ok
      ? [r.name, int(r.records), r.seconds.toFixed(2), int(r.records / r.seconds), int(r.peakRssMb), r.cpuSeconds.toFixed(1), (r.outputBytes / 1e6).toFixed(1)]
      : [r.name, "FAILED", "", "", "", "", ""]
  )
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
  const line = (cells) => cells.map((c, i) => pad(c, widths[i], i > 0)).join("  ")
  console.log(line(head))
  console.log(widths.map((w) => "-".repeat(w)).join("  "))
  for (const b of body) console.log(line(b))
}

/** The anchored cases: effetl beside its hand-written anchor, with the median ratios. */
const printAnchors = (rows) => {
  const anchored = rows.filter((r) => r.ok && r.anchorRun !== undefined)
  if (anchored.length === 0) return
  console.log("")
  console.log("effetl ÷ hand-written (median of the pairs; CPU of the run in each child, module loading excluded)")
  const f = (n) => n.toFixed(2)
  const head = ["case", "pairs", "load", "effetl CPU s", "anchor CPU s", "CPU ratio", "effetl s", "anchor s", "wall ratio", "effetl MB", "anchor MB"]
  const body = anchored.map((r) => [
    r.name, String(r.pairs), f(r.load), f(r.cpuSeconds), f(r.anchorRun.cpuSeconds), `${f(r.cpuRatio)}×`, f(r.seconds), f(r.anchorRun.seconds),
    `${f(r.wallRatio)}×`, int(r.peakRssMb), int(r.anchorRun.peakRssMb)
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
  const line = (cells) => cells.map((c, i) => pad(c, widths[i], i > 0)).join("  ")
  console.log(line(head))
  console.log(widths.map((w) => "-".repeat(w)).join("  "))
  for (const b of body) console.log(line(b))
  for (const r of anchored) {
    const extras = [r.same]
    if (r.ideal !== undefined) {
      extras.push(`wall ÷ ideal (${f(r.ideal)} s = Σ requests × latency ÷ concurrency): effetl ${f(r.effetlIdeal)}×, hand-written ${f(r.anchorIdeal)}×`)
    }
    if (r.id === "hash-content") {
      const mbps = (x) => x.outputBytes / 1e6 / x.cpuSeconds
      extras.push(`throughput per CPU second: effetl ${mbps(r).toFixed(0)} MB/s, node:crypto ${mbps(r.anchorRun).toFixed(0)} MB/s: ${f(1 / r.cpuRatio)}× of raw crypto`)
    }
    extras.push(`whole processes (with module loading): effetl ${f(r.processCpuSeconds)} s CPU, hand-written ${f(r.anchorRun.processCpuSeconds)} s`)
    console.log(`${r.name}:\n  ${extras.join("\n  ")}`)
  }
}

const runParent = async (opts) => {
  const selected = opts.cases.length === 0
    ? cases
    : opts.cases.flatMap((k) => {
      const found = findCases(k)
      return found.length > 0 ? found : fail(`no case ${JSON.stringify(k)} (try --help)`)
    })

  if (!fs.existsSync(path.join(root, "packages/cli/dist/main.js"))) {
    console.log("building packages (first run)...")
    const b = spawnSync("npx", ["tsc", "-b", "packages/cli/tsconfig.json"], { cwd: root, stdio: "inherit" })
    if (b.status !== 0) process.exit(b.status ?? 1)
  }

  const cpus = os.cpus()
  console.log(`effetl bench${opts.quick ? " (--quick)" : opts.full ? " (--full)" : ""}`)
  console.log(`machine: ${cpus.length} × ${cpus[0]?.model.trim() ?? "unknown cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.platform()} ${os.arch()}, node ${process.version}`)
  console.log(`load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} (other work on the machine skews the figures)`)

  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "effetl-bench-"))
  const removeBase = () => fs.rmSync(baseDir, { recursive: true, force: true })
  process.on("SIGINT", () => {
    removeBase()
    process.exit(130)
  })
  const rows = []
  try {
    const base = await runCase(baseline, opts, baseDir)
    console.log(`baseline: a child that only loads the packages peaks at ${base.ok ? int(base.peakRssMb) : "?"} MB RSS`)
    console.log("")
    for (const c of selected) {
      if (c.anchor !== undefined) {
        console.log(`${c.name}, beside its hand-written anchor (load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}) ...`)
        const r = { name: c.name, id: c.id, ...(await runPairs(c, opts, baseDir)) }
        rows.push(r)
        if (r.simNote) console.log(`  ${r.simNote}`)
        if (!r.ok) console.log(`  FAILED: ${r.error}`)
        else {
          if (r.note) console.log(`  effetl: ${r.note}`)
          if (r.anchorRun.note) console.log(`  hand-written: ${r.anchorRun.note}`)
          console.log(`  ${r.same}; median CPU ratio ${r.cpuRatio.toFixed(2)}×, wall ratio ${r.wallRatio.toFixed(2)}×`)
        }
        continue
      }
      process.stdout.write(`${c.name} ... `)
      const r = { name: c.name, ...(await runCase(c, opts, baseDir)) }
      rows.push(r)
      console.log(r.ok ? `${r.seconds.toFixed(2)} s` : `FAILED: ${r.error}`)
      if (r.simNote) console.log(`  ${r.simNote}`)
      if (r.ok && r.note) console.log(`  ${r.note}`)
    }
  } finally {
    await closeSimulators()
    removeBase()
  }
  console.log("")
  printTable(rows)
  printAnchors(rows)
  console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  if (rows.some((r) => !r.ok)) process.exitCode = 1
}

const opts = parseArgs(process.argv.slice(2))
if (opts.child) await runChild(opts)
else await runParent(opts)
