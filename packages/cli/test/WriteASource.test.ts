/**
 * The guide's worked example (examples/plugins/source-linkshop) as an outside package really is
 * one: compiled with its own tsconfig into a temp directory, its simulator served by the built
 * `effetl simulate ./dist/Simulator.js`, and a pipeline naming `use: ./dist/index.js` run by the
 * built `effetl run` against it, into a CSV.
 */
import { describe, expect, it } from "@effect/vitest"
import { parse } from "csv-parse/sync"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, effetl, root, tempDir } from "./helpers.js"

const example = path.join(root, "examples/plugins/source-linkshop")

/** Spawns `effetl simulate <spec>` in `cwd`; resolves once it is serving, with its URL and token. */
const simulate = (spec: string, cwd: string) =>
  new Promise<{ url: string; token: string; stop: () => Promise<number | null> }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "simulate", spec], { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
    const early = (code: number | null) => reject(new Error(`simulate exited early (${code}): ${stderr}`))
    child.on("exit", early)
    child.stderr.on("data", (d) => (stderr += d))
    child.stdout.on("data", (d) => {
      stdout += d
      const url = /linkshop simulator listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1]
      const token = /token: (\S+)/.exec(stdout)?.[1]
      if (url !== undefined && token !== undefined && stdout.includes("Ctrl-C")) {
        child.off("exit", early)
        resolve({
          url,
          token,
          stop: () => {
            child.kill("SIGINT")
            return exited
          }
        })
      }
    })
  })

/** Every row of the CSV part files in a directory. */
const readParts = (dir: string): Array<Record<string, string>> =>
  fs.readdirSync(dir).sort().flatMap((f) => parse(fs.readFileSync(path.join(dir, f)), { columns: true }) as Array<Record<string, string>>)

describe("the source-writing guide's example package", () => {
  it("builds with its own tsconfig, is served by effetl simulate and runs in a pipeline", async () => {
    const dir = tempDir("linkshop")
    fs.symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir")
    fs.copyFileSync(path.join(example, "package.json"), path.join(dir, "package.json"))
    const tsc = spawnSync(
      process.execPath,
      [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(example, "tsconfig.json"), "--outDir", path.join(dir, "dist")],
      { encoding: "utf8" }
    )
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0)

    const sim = await simulate("./dist/Simulator.js", dir)
    try {
      fs.writeFileSync(
        path.join(dir, "linkshop.yaml"),
        [
          "version: 1",
          "name: linkshop",
          "sources:",
          "  shop:",
          "    use: ./dist/index.js",
          "    with:",
          "      baseUrl: ${LINKSHOP_BASE_URL}",
          "      token: ${LINKSHOP_TOKEN}",
          "      pageSize: 5",
          "sinks:",
          "  images:",
          "    use: csv",
          "    with: { path: out/images }   # a directory of parts: the source is incremental, so the sink appends",
          ""
        ].join("\n")
      )
      const env = { LINKSHOP_BASE_URL: sim.url, LINKSHOP_TOKEN: sim.token }
      const run = await effetl(["run", "linkshop.yaml"], { cwd: dir, env })
      expect(run.code, run.stderr).toBe(0)
      const rows = readParts(path.join(dir, "out/images"))
      // 12 products with i % 4 images each: 0+1+2+3 three times.
      expect(rows).toHaveLength(18)
      expect(new Set(rows.map((r) => r.source))).toEqual(new Set(["shop"]))
      // The next run is incremental: only the product at the high-water mark is read again.
      const again = await effetl(["run", "linkshop.yaml"], { cwd: dir, env })
      expect(again.code, again.stderr).toBe(0)
      expect(again.stdout).toMatch(/shop\s+linkshop\s+3\s+3/)
      expect(readParts(path.join(dir, "out/images"))).toHaveLength(21)
    } finally {
      expect(await sim.stop()).toBe(0)
    }
  })
})
