/**
 * docs/api, the API reference of core's public modules, is what TypeDoc makes of today's doc
 * comments: regenerated into a temp dir with the repository's own settings (typedoc.config.mjs), it
 * is the same file for file. Regenerate it with `npm run docs`.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../../..")
const committed = path.join(root, "docs/api")

/** Every file under `dir`, as paths relative to it, sorted. */
const files = (dir: string): Array<string> =>
  fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true, encoding: "utf8" }) as Array<string>)
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .sort() : []

describe("docs/api (the TypeDoc reference of @effetl/core)", () => {
  it("is what `npm run docs` generates from today's sources", { timeout: 180_000 }, () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "effetl-apidocs-"))
    try {
      const typedoc = path.join(root, "node_modules/typedoc/bin/typedoc")
      const r = spawnSync(process.execPath, [typedoc, "--options", path.join(root, "typedoc.config.mjs"), "--out", out], {
        cwd: root,
        encoding: "utf8",
        timeout: 170_000
      })
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0)
      const fresh = files(out)
      expect(fresh.length).toBeGreaterThan(10)
      expect(fresh).toContain("core/README.md")
      expect(fresh).toContain("core/namespaces/Http/namespaces/ApiClient.md")
      expect(fresh).toContain("core/testing/namespaces/SourceHarness.md")
      expect(fresh).toContain("core/simulator/namespaces/Server.md")
      const stale = [...new Set([...fresh, ...files(committed)])].filter((f) => {
        const a = path.join(out, f)
        const b = path.join(committed, f)
        return !fs.existsSync(a) || !fs.existsSync(b) || fs.readFileSync(a, "utf8") !== fs.readFileSync(b, "utf8")
      })
      expect(stale, "docs/api is out of date with the doc comments: run `npm run docs` and commit docs/api").toEqual([])
    } finally {
      fs.rmSync(out, { recursive: true, force: true })
    }
  })
})
