#!/usr/bin/env node
// `npm run bench`: throughput figures for effetl (printed, never asserted in tests).
//
//   npm run bench                      every case, full sizes
//   npm run bench -- --quick           every case, small sizes (a smoke run)
//   npm run bench -- --case csv-sink   one case (by id or by its display name)
//   npm run bench -- --case parquet-sink   the parquet sink with each engine (one child per engine)
//
// Each case runs in a fresh child process (`node scripts/bench.mjs --case <id> --child`), so its
// peak RSS is its own. The channel simulator of a case runs in this (the parent) process on
// 127.0.0.1, so its catalogue is neither timed nor counted in the case's RSS. Every output goes to
// a temp directory that is removed at the end. Uses the built packages (`packages/*/dist`).
import { fork, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const self = fileURLToPath(import.meta.url)

// --- options -----------------------------------------------------------------------------------

const usage = "usage: node scripts/bench.mjs [--quick] [--case <id>]\n\ncases:\n"

const parseArgs = (argv) => {
  const opts = { quick: false, cases: [], child: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === "--quick") opts.quick = true
    else if (a === "--child") opts.child = true
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
 * the child process and returns `{ records, note }`. Timing and RSS are taken around `run`.
 */
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
      })
  },
  {
    id: "detailed-transforms",
    name: "channel→csv+jsonl (demo transforms)",
    sim: (quick) => ({ products: quick ? 150 : 1_000, seed: 7 }),
    run: (env) =>
      runPipeline(env, {
        mode: "detailed",
        transforms: [["validate"], ["hash-content"], ["dedupe-by-hash", { scope: "product" }], ["normalise-sequence", { start: 1 }]],
        sinks: ["csv", "jsonl"],
        expectAll: false
      })
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
  // `--case parquet-sink` runs both engines, each in its own child (so each has its own peak RSS).
  ...["hyparquet-writer", "parquetjs-lite"].map((engine) => ({
    id: `parquet-sink-${engine}`,
    group: "parquet-sink",
    name: `parquet sink only (${engine})`,
    sim: undefined,
    run: (env) => runSink(env, "parquet", env.quick ? 100_000 : 1_000_000, { engine })
  }))
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
            pageSize: 1000,
            concurrency: 4
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

/** The baseline: a child that only loads the packages, for the RSS every case starts from. */
const baseline = { id: "baseline", name: "baseline", sim: undefined, run: async () => (await load(), { records: 0, seconds: 0, outputBytes: 0 }) }

const runChild = async (opts) => {
  const c = opts.cases[0] === baseline.id ? baseline : findCase(opts.cases[0])
  const env = {
    quick: opts.quick,
    dir: process.env.EFFETL_BENCH_DIR,
    sim: process.env.EFFETL_BENCH_SIM ? JSON.parse(process.env.EFFETL_BENCH_SIM) : undefined
  }
  try {
    await load() // module loading is neither timed nor counted as CPU (the imports are cached for `run`)
    const cpuBefore = process.cpuUsage()
    const result = await c.run(env)
    const cpu = process.cpuUsage(cpuBefore)
    const peakRssMb = process.resourceUsage().maxRSS / 1024 // maxRSS is in KiB
    process.send({ ok: true, ...result, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMb })
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

const runCase = async (c, opts, baseDir) => {
  const dir = fs.mkdtempSync(path.join(baseDir, `${c.id}-`))
  let sim
  let simNote = ""
  if (c.sim) ({ sim, note: simNote } = await simulatorFor(c.sim(opts.quick)))
  try {
    const child = fork(self, ["--case", c.id, "--child", ...(opts.quick ? ["--quick"] : [])], {
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
    return { ...message, simNote }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
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
  console.log(`effetl bench${opts.quick ? " (--quick)" : ""}`)
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
  if (rows.some((r) => !r.ok)) process.exitCode = 1
}

const opts = parseArgs(process.argv.slice(2))
if (opts.child) await runChild(opts)
else await runParent(opts)
