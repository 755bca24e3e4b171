// Bench only: preloaded into an `effetl run` process (`node -r memory-probe.cjs …`) to record its
// memory. Samples process.memoryUsage() every 250 ms and, at exit, writes to $EFFETL_BENCH_PROBE:
// { maxRssKb, cpuSeconds, seconds, samples: [[seconds, rss, heapUsed, external, arrayBuffers], …] }
// (bytes). maxRssKb is the kernel's peak RSS of the process (getrusage), exact however short the peak.
"use strict"
const fs = require("node:fs")

const file = process.env.EFFETL_BENCH_PROBE
if (file) {
  const started = performance.now()
  const samples = []
  const sample = () => {
    const m = process.memoryUsage()
    samples.push([(performance.now() - started) / 1000, m.rss, m.heapUsed, m.external, m.arrayBuffers])
  }
  setInterval(sample, 250).unref()
  process.on("exit", () => {
    sample()
    const cpu = process.cpuUsage()
    fs.writeFileSync(file, JSON.stringify({
      maxRssKb: process.resourceUsage().maxRSS,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      seconds: (performance.now() - started) / 1000,
      samples
    }))
  })
}
