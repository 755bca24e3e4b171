/**
 * The plugin example runs as it is: a third-party source loaded by relative path from the pipeline
 * file's directory, next to built-in transforms and sinks, and resumable from its checkpoints.
 */
import { describe, expect, it } from "@effect/vitest"
import { parse } from "csv-parse/sync"
import * as fs from "node:fs"
import * as path from "node:path"
import { effetl, root, tempDir } from "./helpers.js"

const pipeline = path.join(root, "examples/plugin.yaml")

describe("examples/plugin.yaml (a third-party plugin by relative path)", () => {
  it("runs: the plugin's records pass the built-in transforms into the CSV", async () => {
    const dir = tempDir("plugin")
    const r = await effetl(["run", pipeline], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/catalogue\s+static\s+3\s+3\s+0/)
    const rows = parse(fs.readFileSync(path.join(dir, "out/plugin-example/images.csv")), { columns: true }) as Array<Record<string, string>>
    expect(rows.map((x) => [x.product_id, x.image_id, x.position])).toEqual([["1001", "a", "1"], ["1001", "b", "2"], ["1002", "x", "1"]])
  })

  it("is listed with its options by `effetl plugins <path>`", async () => {
    const r = await effetl(["plugins", path.join(root, "examples/plugins/static-source.mjs")], { cwd: root })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("static (source)")
    expect(r.stdout).toContain("products")
  })

  it("a killed run resumes after the last product it committed", async () => {
    const dir = tempDir("plugin-resume")
    const killed = await effetl(["run", pipeline], { cwd: dir, env: { EFFETL_CRASH_AT: "after-state-save:1" } })
    expect(killed.signal).toBe("SIGKILL")
    const state = JSON.parse(fs.readFileSync(path.join(dir, ".effetl/plugin-example-state.json"), "utf8"))
    expect(state.pipelines["plugin-example"].sources.catalogue.checkpoint).toEqual({ kind: "position", value: { index: 0 } })
    const rerun = await effetl(["run", pipeline], { cwd: dir })
    expect(rerun.code, rerun.stderr).toBe(0)
    expect(rerun.stdout).toContain("resumed and finished")
    expect(rerun.stdout).toMatch(/catalogue\s+static\s+1\s+1/) // only product 1002 was read again
    const rows = parse(fs.readFileSync(path.join(dir, "out/plugin-example/images.csv")), { columns: true }) as Array<Record<string, string>>
    expect(rows.length).toBe(3)
  })
})

describe("examples/effetl.schema.json", () => {
  it("is what `effetl schema` prints today (regenerate with `npm run schema`)", async () => {
    const r = await effetl(["schema"], { cwd: root })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(fs.readFileSync(path.join(root, "examples/effetl.schema.json"), "utf8"))).toEqual(JSON.parse(r.stdout))
  })
})
