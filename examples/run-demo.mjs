#!/usr/bin/env node
// `npm run demo`: builds the packages if needed, starts the channel simulator on an ephemeral
// 127.0.0.1 port, runs examples/demo.yaml through the real `effetl` CLI against it, and says where
// the output is. Everything stays on this machine.
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const cli = path.join(root, "packages/cli/bin/effetl.js")

if (!fs.existsSync(path.join(root, "packages/cli/dist/main.js"))) {
  console.log("building packages (first run)...")
  const b = spawnSync("npx", ["tsc", "-b", "packages/cli/tsconfig.json"], { cwd: root, stdio: "inherit" })
  if (b.status !== 0) process.exit(b.status ?? 1)
}

const { startChannelSimulator } = await import(path.join(root, "packages/source-channel/dist/Simulator.js"))
const sim = await startChannelSimulator({ port: 0 })
console.log(`channel simulator: ${sim.url} (channel ${sim.channelId}, ${sim.catalogue.length} images)`)

// A fresh demo each time: the demo's state and output are its own.
fs.rmSync(path.join(root, ".effetl/demo-state.json"), { force: true })
const child = spawn(process.execPath, [cli, "run", "examples/demo.yaml", "--state", ".effetl/demo-state.json", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token, CHANNEL_ID: String(sim.channelId) }
})
const code = await new Promise((resolve) => child.on("exit", (c) => resolve(c ?? 1)))
await sim.close()
if (code === 0) {
  console.log(`\nThe demo's output is in ${path.join(root, "out")}: images.csv, images.jsonl and dead-letter.jsonl.`)
  console.log(`Try it against a faulty API: npx effetl simulate channel --port 8080 --faults 5xx,429,reset (see examples/README.md)`)
}
process.exit(code)
