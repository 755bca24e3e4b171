/**
 * What the READMEs say about the CLI stays true: the built-in plugin lists match the registry, the
 * examples README lists every example, the paths rule (plugins from the pipeline file's directory,
 * outputs from the working directory) holds, and `effetl plugins` shows an example for every option.
 */
import { describe, expect, it } from "@effect/vitest"
import { Registry } from "@effetl/core"
import * as fs from "node:fs"
import * as path from "node:path"
import { loadedRegistry } from "../src/Builtins.js"
import * as Plugins from "../src/Plugins.js"
import { cli, root, tempDir } from "./helpers.js"

const registry = await loadedRegistry()
const kinds = ["source", "transform", "sink", "state"] as const
const builtins = (kind: (typeof kinds)[number]) => Registry.builtinsOf(registry, kind).map((p) => p.name).sort()
const ticked = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).sort()

describe("the built-in plugin lists", () => {
  it("packages/cli/README.md names every built-in plugin of each kind, and no other", () => {
    const readme = fs.readFileSync(path.join(root, "packages/cli/README.md"), "utf8").replace(/\s+/g, " ")
    const list = /It ships with every built-in plugin \(([^)]*)\)/.exec(readme)
    expect(list, "the intro's list of built-ins").not.toBeNull()
    const byKind = Object.fromEntries(
      list![1]!.split(";").map((part) => {
        const [, label = "", names = ""] = /^\s*(sources|transforms|sinks|state stores)\s+(.*)$/.exec(part) ?? []
        return [label, ticked(names)]
      })
    )
    expect(byKind).toEqual({ sources: builtins("source"), transforms: builtins("transform"), sinks: builtins("sink"), "state stores": builtins("state") })
  })

  it("the root README's table of built-in plugins has a row for every one, and no other", () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
    const table = readme.slice(readme.indexOf("### Built-in plugins")).split("\n\n")[1]!
    const rows = table.split("\n").slice(2).map((row) => row.split("|").map((c) => c.trim()))
    for (const kind of kinds) {
      expect(rows.filter((r) => r[1] === kind).flatMap((r) => ticked(r[2]!)).sort(), kind).toEqual(builtins(kind))
    }
  })
})

describe("examples/README.md", () => {
  it("lists every file under examples/", () => {
    const readme = fs.readFileSync(path.join(root, "examples/README.md"), "utf8")
    const files = (fs.readdirSync(path.join(root, "examples"), { recursive: true, encoding: "utf8" }) as Array<string>)
      .filter((f) => f !== "README.md" && fs.statSync(path.join(root, "examples", f)).isFile())
      .map((f) => f.split(path.sep).join("/"))
    // A directory listed as a whole (`plugins/source-linkshop/`) covers the files under it.
    const dirs = [...readme.matchAll(/`([^`\s]+\/)`/g)].map((m) => m[1]!)
    expect(files.filter((f) => !readme.includes(`\`${f}\``) && !dirs.some((d) => f.startsWith(d)))).toEqual([])
  })
})

describe("paths (README: Pipeline file reference)", () => {
  it("use: resolves from the pipeline file's directory; outputs, state and dead letters from the working directory", async () => {
    const dir = tempDir("paths")
    // The plugin imports @effetl/core, found through this link as an installed package would be.
    fs.symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir")
    fs.mkdirSync(path.join(dir, "pipelines/plugins"), { recursive: true })
    fs.copyFileSync(path.join(root, "examples/plugins/static-source.mjs"), path.join(dir, "pipelines/plugins/static-source.mjs"))
    fs.writeFileSync(
      path.join(dir, "pipelines/p.yaml"),
      [
        "version: 1",
        "name: paths",
        "state: { path: state/p.json }",
        "deadLetter: { path: dead/p.jsonl }",
        "sources:",
        "  s:",
        "    use: ./plugins/static-source.mjs",
        "    with:",
        "      products: { \"1\": [{ id: a, url: \"https://cdn.example/a.png\" }] }",
        "sinks:",
        "  out:",
        "    use: csv",
        "    with: { path: out/p.csv }"
      ].join("\n")
    )
    fs.mkdirSync(path.join(dir, "work"))
    const r = await cli(["run", "../pipelines/p.yaml"], { cwd: path.join(dir, "work") })
    expect(r.code, r.stderr).toBe(0)
    expect(fs.existsSync(path.join(dir, "work/out/p.csv"))).toBe(true)
    expect(fs.existsSync(path.join(dir, "work/state/p.json"))).toBe(true)
    expect(fs.existsSync(path.join(dir, "work/dead/p.jsonl"))).toBe(true)
    expect(fs.readdirSync(path.join(dir, "pipelines")).sort()).toEqual(["p.yaml", "plugins"])
  })
})

describe("effetl plugins <name>", () => {
  const all = [...kinds.flatMap((k) => Registry.builtinsOf(registry, k).map((p) => [k, p] as const))]
  for (const [kind, plugin] of all) {
    it(`${plugin.name} (${kind}): every option shows an example`, () => {
      const text = Plugins.describe(kind, plugin as Parameters<typeof Plugins.describe>[1], 100)
      const lines = text.split("\n")
      const missing: Array<string> = []
      lines.forEach((line, i) => {
        const option = /^ {2}(\S+) {2}\(/.exec(line)
        if (option === null) return
        let j = i + 1
        let example = false
        while (j < lines.length && lines[j]!.startsWith("      ")) example ||= lines[j++]!.trim().startsWith("e.g. ")
        if (!example) missing.push(option[1]!)
      })
      expect(missing).toEqual([])
    })
  }

  it("shoplazza: retry's fields show the source's own defaults", async () => {
    const r = await cli(["plugins", "shoplazza"], { cwd: root })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`retry  (object, default {"maxRetries":8,"baseDelay":"500 millis","maxDelay":"30 seconds"})`)
    expect(r.stdout).toContain("retry.maxRetries  (integer 0..20, default 8)")
    expect(r.stdout).toContain(`retry.baseDelay  (string, default "500 millis")`)
  })
})
