/**
 * `effetl new source|sink <name>` makes a package that builds, tests and runs as made: generated in
 * a temp dir, its dependencies resolved from this checkout (its node_modules is a link to the
 * repository's, where @effetl/core is this packages/core: no registry), built with tsc, its own
 * vitest tests run, and its example pipeline run by the built `effetl` against its simulator.
 */
import { describe, expect, it } from "@effect/vitest"
import { startChannelSimulator } from "@effetl/source-channel/simulator"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { namesOf, packageNameProblem, toolVersions } from "../src/Scaffold.js"
import { cli, effetl, root, tempDir } from "./helpers.js"

/** Runs `node <args>` in `cwd`; the test runner's own variables are left out (the child may be vitest itself). */
const node = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}, timeoutMs = 240_000) =>
  new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(VITEST|NODE_OPTIONS$|TEST$)/.test(k)))
    const child = spawn(process.execPath, [...args], { cwd, env: { ...base, FORCE_COLOR: "0", NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (out += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("error", reject)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })

const tsc = path.join(root, "node_modules/typescript/bin/tsc")
const vitest = path.join(root, "node_modules/vitest/vitest.mjs")

/** Makes a package with the built CLI and links its node_modules to this checkout's. */
const generate = async (kind: "source" | "sink", name: string): Promise<string> => {
  const cwd = tempDir(`new-${kind}`)
  const made = await effetl(["new", kind, name], { cwd })
  expect(made.code, made.stderr).toBe(0)
  expect(made.stderr).toBe("")
  const dir = path.join(cwd, name)
  fs.symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir")
  return dir
}

/** Builds the package, typechecks its tests and runs them. */
const buildAndTest = async (dir: string, tests: number) => {
  const built = await node([tsc, "-p", "tsconfig.json"], dir)
  expect(built.code, built.out).toBe(0)
  const typed = await node([tsc, "-p", "tsconfig.test.json"], dir) // the tests too
  expect(typed.code, typed.out).toBe(0)
  const tested = await node([vitest, "run"], dir)
  expect(tested.code, tested.out).toBe(0)
  expect(tested.out.replace(/\u001b\[[0-9;]*m/g, "")).toMatch(new RegExp(`Tests\\s+${tests} passed`))
}

/** Rows of a CSV file (no quoted newlines in these). */
const csvRows = (file: string) => fs.readFileSync(file, "utf8").trim().split("\n").length - 1

describe("effetl new source", () => {
  it("makes a package that builds, passes its own tests and runs its example against its simulator", { timeout: 600_000 }, async () => {
    const dir = await generate("source", "demo")
    expect(fs.readdirSync(dir).sort()).toEqual([".gitignore", "README.md", "node_modules", "package.json", "pipeline.yaml", "src", "test", "tsconfig.json", "tsconfig.test.json"])
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
    expect(pkg.name).toBe("demo")
    expect(pkg.dependencies["@effetl/core"]).toBe("^0.1.0")
    expect(fs.readFileSync(path.join(dir, "src/Source.ts"), "utf8")).not.toMatch(/__[a-zA-Z]+__/)
    await buildAndTest(dir, 7)

    // `npm run simulate`: serve the simulator, then run exactly the command it prints.
    const sim = spawn(process.execPath, ["dist/serve.js"], { cwd: dir, stdio: ["ignore", "pipe", "inherit"] })
    try {
      const printed = await new Promise<string>((resolve, reject) => {
        let out = ""
        sim.stdout.on("data", (d) => {
          out += d
          if (out.includes("(Ctrl-C to stop)")) resolve(out)
        })
        sim.on("exit", (code) => reject(new Error(`the simulator exited (${code}): ${out}`)))
      })
      const curl = /^\s*try: (curl .+)$/m.exec(printed)
      expect(curl, printed).not.toBeNull()
      const tried = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn("bash", ["-c", curl![1]!.replace(/^curl /, "curl -sS --fail ")], { stdio: ["ignore", "pipe", "pipe"] })
        let out = ""
        child.stdout.on("data", (d) => (out += d))
        child.stderr.on("data", (d) => (out += d))
        child.on("exit", (code) => resolve({ code, out }))
      })
      expect(tried.code, tried.out).toBe(0)
      expect(JSON.parse(tried.out).images.length).toBe(2)
      const command = /^\s*((?:\w+=\S+ )+)npx effetl (run pipeline\.yaml)$/m.exec(printed)
      expect(command, printed).not.toBeNull()
      const env = Object.fromEntries(command![1]!.trim().split(" ").map((kv) => kv.split("=", 2) as [string, string]))
      expect(Object.keys(env)).toEqual(["DEMO_BASE_URL", "DEMO_TOKEN"])
      const r = await effetl(command![2]!.split(" "), { cwd: dir, env })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/demo\s+demo\s+42\s+42\s+0/)
      expect(csvRows(path.join(dir, "out/demo-images.csv"))).toBe(42)
      const plugins = await effetl(["plugins", "./dist/index.js"], { cwd: dir })
      expect(plugins.code, plugins.stderr).toBe(0)
      expect(plugins.stdout).toContain("demo (source)")
      expect(plugins.stdout).toContain("pageSize")
    } finally {
      sim.kill("SIGTERM")
    }
  })
})

describe("effetl new sink", () => {
  it("makes a package that builds, passes its own tests and runs its example fed by the channel simulator", { timeout: 600_000 }, async () => {
    const dir = await generate("sink", "effetl-sink-lines")
    expect(fs.readFileSync(path.join(dir, "pipeline.yaml"), "utf8")).toContain("lines:\n    use: ./dist/index.js")
    await buildAndTest(dir, 5)
    const sim = await startChannelSimulator({ port: 0 })
    try {
      const r = await effetl(["run", "pipeline.yaml"], { cwd: dir, env: { CHANNEL_BASE_URL: sim.url, CHANNEL_TOKEN: sim.token } })
      expect(r.code, r.stderr).toBe(0)
      const lines = fs.readFileSync(path.join(dir, "out/lines-images.ndjson"), "utf8").trim().split("\n")
      expect(lines.length).toBe(sim.catalogue.length)
      expect(new Set(lines.map((l) => (JSON.parse(l) as { imageId: string }).imageId)).size).toBe(sim.catalogue.length)
      expect(fs.readdirSync(path.join(dir, "out")).sort()).toEqual(["dead-letter.jsonl", "lines-images.ndjson"])
    } finally {
      await sim.close()
    }
  })
})

describe("effetl new: refusals (exit 2, one line)", () => {
  for (const [name, why] of [
    ["Demo", "capital letters"],
    ["../demo", "'/' outside of a @scope/name"],
    [".demo", "starts with '.' or '_'"],
    ["de mo", "characters other than"],
    ["http", "Node.js core module"]
  ] as const) {
    it(`refuses '${name}': ${why}`, async () => {
      const cwd = tempDir("new-refuse")
      const r = await cli(["new", "source", name], { cwd })
      expect(r.code).toBe(2)
      expect(r.stderr).toContain(`'${name}' is not a valid npm package name`)
      expect(r.stderr).toContain(why)
      expect(r.stderr.trim().split("\n").length).toBe(1)
      expect(fs.readdirSync(cwd)).toEqual([])
    })
  }

  it("refuses an existing non-empty directory and touches nothing in it", async () => {
    const cwd = tempDir("new-refuse")
    fs.mkdirSync(path.join(cwd, "demo"))
    fs.writeFileSync(path.join(cwd, "demo/keep.txt"), "mine")
    const r = await cli(["new", "sink", "demo"], { cwd })
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe("error: 'demo' exists and is not empty; give another --dir")
    expect(fs.readdirSync(path.join(cwd, "demo"))).toEqual(["keep.txt"])
    const file = await cli(["new", "sink", "demo", "--dir", "demo/keep.txt"], { cwd })
    expect(file.code).toBe(2)
    expect(file.stderr).toContain("exists and is not a directory")
  })

  it("writes into an empty --dir, and a scoped name's plugin is named without its scope and prefix", async () => {
    const cwd = tempDir("new-dir")
    fs.mkdirSync(path.join(cwd, "empty"))
    const r = await cli(["new", "source", "@acme/effetl-source-my-shop", "--dir", "empty"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("plugin 'my-shop' in empty/")
    const source = fs.readFileSync(path.join(cwd, "empty/src/Source.ts"), "utf8")
    expect(source).toContain('name: "my-shop"')
    expect(source).toContain("export const myShop = Source.define<MyShopConfig>")
    expect(fs.readFileSync(path.join(cwd, "empty/pipeline.yaml"), "utf8")).toContain("${MY_SHOP_BASE_URL}")
    expect(JSON.parse(fs.readFileSync(path.join(cwd, "empty/package.json"), "utf8")).name).toBe("@acme/effetl-source-my-shop")
  })
})

describe("Scaffold names and versions", () => {
  it("accepts valid package names and names their plugins", () => {
    for (const ok of ["demo", "effetl-source-x", "@acme/effetl-sink-lake", "a.b_c~d", "3d"]) expect(packageNameProblem(ok)).toBeUndefined()
    expect(namesOf("source", "3d")).toMatchObject({ plugin: "3d", ident: "source3d", env: "_3D" })
    expect(namesOf("sink", "effetl-sink-lake")).toMatchObject({ plugin: "lake", ident: "lake", Ident: "Lake", env: "LAKE" })
    // A reserved word or a name the templates use gets the kind after it.
    expect(namesOf("source", "default")).toMatchObject({ plugin: "default", ident: "defaultSource", Ident: "DefaultSource" })
    expect(namesOf("sink", "lines")).toMatchObject({ plugin: "lines", ident: "linesSink" })
    expect(namesOf("source", "to-product-image").ident).toBe("toProductImageSource")
  })

  it("a generated package's tools are the versions this repository builds and tests with", () => {
    const satisfies = (version: string, range: string): boolean => {
      const [v, r] = [version, range.slice(1)].map((s) => s.split(".").map(Number)) as [Array<number>, Array<number>]
      const fixed = range.startsWith("~") ? 2 : 1
      if (v.slice(0, fixed).join(".") !== r.slice(0, fixed).join(".")) return false
      return v[0]! * 1e8 + v[1]! * 1e4 + v[2]! >= r[0]! * 1e8 + r[1]! * 1e4 + r[2]!
    }
    for (const [dep, range] of Object.entries(toolVersions)) {
      const installed = JSON.parse(fs.readFileSync(path.join(root, "node_modules", dep, "package.json"), "utf8")).version as string
      expect(satisfies(installed, range), `${dep} ${installed} vs ${range}`).toBe(true)
    }
  })
})
