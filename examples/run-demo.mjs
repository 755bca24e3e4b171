#!/usr/bin/env node
// `npm run demo`: builds the packages if needed, starts the four API simulators (Akinon sales
// channel, Acceo Ogasys, Shoplazza, BigCommerce) on ephemeral 127.0.0.1 ports, runs
// examples/demo.yaml through the real `effetl` CLI against them, and says where the output is.
// Everything stays on this machine.
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const cli = path.join(root, "packages/cli/bin/effetl.js")
// The demo writes under `<dir>/out`: the repository root, or EFFETL_DEMO_DIR (the tests use a temp dir,
// so they never touch a user's out/). The pipeline's relative paths are relative to that directory.
const workDir = path.resolve(process.env.EFFETL_DEMO_DIR ?? root)
const out = path.join(workDir, "out")

if (!fs.existsSync(path.join(root, "packages/cli/dist/main.js"))) {
  console.log("building packages (first run)...")
  const b = spawnSync("npx", ["tsc", "-b", "packages/cli/tsconfig.json"], { cwd: root, stdio: "inherit" })
  if (b.status !== 0) process.exit(b.status ?? 1)
}

const load = (pkg) => import(path.join(root, "packages", pkg, "dist/Simulator.js"))
const { startChannelSimulator } = await load("source-channel")
const { startAcceoSimulator } = await load("source-acceo")
const { startShoplazzaSimulator } = await load("source-shoplazza")
const { startBigCommerceSimulator } = await load("source-bigcommerce")

const channel = await startChannelSimulator({ port: 0 })
const acceo = await startAcceoSimulator({ port: 0 })
const shoplazza = await startShoplazzaSimulator({ port: 0 })
const bigcommerce = await startBigCommerceSimulator({ port: 0 })
const simulators = [channel, acceo, shoplazza, bigcommerce]
console.log(`channel simulator:     ${channel.url} (channel ${channel.channelId}, ${channel.catalogue.length} images)`)
console.log(`acceo simulator:       ${acceo.url} (${acceo.catalogue.length} products, ${acceo.feed().length} feed entries)`)
console.log(`shoplazza simulator:   ${shoplazza.url} (${shoplazza.catalogue.length} products, leaky bucket 40 @ 2/s)`)
console.log(`bigcommerce simulator: ${bigcommerce.url} (${bigcommerce.products.length} products, ${bigcommerce.catalogue.length} images)`)

// A fresh demo each time: its state lives in out/images.db with the data, and the output is its own.
for (const f of ["images.db", "images.db-wal", "images.db-shm", "images.db-journal"]) fs.rmSync(path.join(out, f), { force: true })
const child = spawn(process.execPath, [cli, "run", path.join(root, "examples/demo.yaml"), ...process.argv.slice(2)], {
  cwd: workDir,
  stdio: "inherit",
  env: {
    ...process.env,
    CHANNEL_BASE_URL: channel.url,
    CHANNEL_TOKEN: channel.token,
    CHANNEL_ID: String(channel.channelId),
    ACCEO_BASE_URL: acceo.url,
    ACCEO_API_KEY: acceo.apiKey,
    SHOPLAZZA_BASE_URL: shoplazza.url,
    SHOPLAZZA_TOKEN: shoplazza.accessToken,
    SHOPLAZZA_SRC_SCHEME: "http",
    BIGCOMMERCE_BASE_URL: bigcommerce.url,
    BIGCOMMERCE_STORE_HASH: bigcommerce.storeHash,
    BIGCOMMERCE_TOKEN: bigcommerce.accessToken
  }
})
const code = await new Promise((resolve) => child.on("exit", (c) => resolve(c ?? 1)))
await Promise.all(simulators.map((s) => s.close()))
if (code === 0) {
  console.log(`\nThe demo's output is in ${out}:`)
  console.log("  images.csv, images.jsonl           one row per unique image per product, every source")
  console.log("  images.parquet/source=<name>/      Parquet partitioned by source (DuckDB: read_parquet('out/images.parquet/**/*.parquet', hive_partitioning=1))")
  console.log("  images/<sha256[0:2]>/<sha256>.ext  each image's bytes, stored once; images/manifest.csv maps records to files")
  console.log("  images.db                          SQLite table product_images (and the pipeline's state): sqlite3 out/images.db 'select source, count(*) from product_images group by 1'")
  console.log("  dead-letter.jsonl                  records that could not be used, with the reason")
  console.log(`Try one API with faults: npx effetl simulate channel --port 8080 --faults 5xx,429,reset (see examples/README.md)`)
}
process.exit(code)
