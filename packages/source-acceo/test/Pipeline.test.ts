/**
 * The `acceo` source in real pipelines: the runner, core's transforms (validate, hash-content,
 * dedupe-by-hash, normalise-sequence) and the csv and jsonl sinks of `@effetl/sink-files`, against
 * the simulator over real HTTP. The expected rows are computed from the simulator's catalogue.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { naturalCompare, Runner } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Simulator from "../src/Simulator.js"
import { csvRows, demoTransforms, jsonlRows, key, pipelineIn, quiet, tmp } from "./Pipelines.js"

/** Runs `fixtures/runPipeline.ts` in a child process with core's crash hook set; resolves when it exits. */
const runInChild = (dir: string, sim: Simulator.AcceoSimulator, kind: "stream" | "demo", crashAt: string) =>
  new Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join("test", "fixtures", "runPipeline.ts"), dir, sim.url, sim.apiKey, kind], {
      cwd: path.resolve(import.meta.dirname, ".."),
      // tsx resolves @effetl/* to their sources through the typecheck config's paths, as vitest does.
      env: { ...process.env, TSX_TSCONFIG_PATH: "tsconfig.check.json", EFFETL_CRASH_AT: crashAt },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    child.on("exit", (code, signal) => resolve({ code, signal, stderr }))
  })

/**
 * The rows the demo pipeline must write: for every product the feed sent (once, however often it was
 * sent), its images in display order (sequence, then imageId in natural order), the first of each
 * content kept, renumbered from 1.
 */
const expectedRows = (sim: Simulator.AcceoSimulator) => {
  const ids = [...new Set(sim.feed().map((e) => e.productId))]
  return ids.flatMap((id) => {
    const product = sim.catalogue.find((p) => p.product_id === id)!
    const images = product.images
      .map((image) => ({ image, imageId: image.imagefilename === "" ? String(image.sequence) : image.imagefilename }))
      .sort((a, b) => a.image.sequence - b.image.sequence || naturalCompare(a.imageId, b.imageId))
    const seen = new Set<string>()
    const kept = images.filter(({ image }) => (seen.has(image.sha256) ? false : (seen.add(image.sha256), true)))
    return kept.map(({ image, imageId }, i) => ({
      productId: id,
      imageId,
      position: i + 1,
      filename: image.imagefilename === "" ? null : image.imagefilename,
      contentHash: `sha256:${image.sha256}`,
      extra: { originalPosition: image.sequence }
    }))
  })
}

/** Every path under a directory, relative, sorted. */
const tree = (dir: string): Array<string> =>
  (fs.readdirSync(dir, { recursive: true }) as Array<string>).map((p) => p.split(path.sep).join("/")).sort()

describe("acceo in a pipeline (runner, transforms, csv and jsonl sinks)", () => {
  it.live("the demo pipeline writes every product's unique images once, though the feed re-sends products", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const dir = tmp()
      const summary = yield* Runner.runNode(yield* pipelineIn(dir, sim))
      expect(summary.status).toBe("finished")
      const rows = jsonlRows(dir)
      const want = expectedRows(sim)
      expect(rows.map(key).sort()).toEqual(want.map(key).sort())
      // Re-sent products are written once: no (product, image) twice.
      expect(new Set(rows.map((r) => `${r.productId}/${r.imageId}`)).size).toBe(rows.length)
      const counts = summary.sources[0]!.counts
      expect(counts.read).toBe(sim.feed().reduce((n, e) => n + sim.catalogue.find((p) => p.product_id === e.productId)!.images.length, 0))
      expect(counts.deduped).toBe(counts.read - rows.length)
      expect(counts.warnings).toBe(sim.feed().filter((e) => sim.catalogue.find((p) => p.product_id === e.productId)!.warning !== null).length)
      // The CSV holds the same rows.
      const csvKeys = csvRows(dir).map((r) => JSON.stringify([r.product_id, r.image_id, r.filename === "" ? null : r.filename, r.content_hash]))
      expect(csvKeys.sort()).toEqual(rows.map((r) => JSON.stringify([r.productId, r.imageId, r.filename, r.contentHash])).sort())
      fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.scoped, Effect.provide(quiet)))

  it.live("JSON and XML × binary and URL images: identical rows, the same sha256: hashes", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const outputs: Array<Array<string>> = []
      for (const format of ["json", "xml"]) {
        for (const images of ["binary", "url"]) {
          const dir = tmp()
          yield* Runner.runNode(yield* pipelineIn(dir, sim, { with: { format, images } }))
          outputs.push(jsonlRows(dir).map(key).sort())
          if (images === "url") expect(jsonlRows(dir).every((r) => String(r.url).startsWith(`${sim.url}/media/`))).toBe(true)
          fs.rmSync(dir, { recursive: true })
        }
      }
      expect(outputs[0]).toEqual(expectedRows(sim).map(key).sort())
      for (const output of outputs.slice(1)) expect(output).toEqual(outputs[0])
    }).pipe(Effect.scoped, Effect.provide(quiet)))

  it.live("regroup: false streams lot by lot: a re-sent product is written again (why regrouping is the default)", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const dir = tmp()
      yield* Runner.runNode(yield* pipelineIn(dir, sim, { with: { regroup: false } }))
      const rows = jsonlRows(dir)
      expect(rows.length).toBeGreaterThan(expectedRows(sim).length)
      expect(new Set(rows.map(key)).size).toBe(expectedRows(sim).length)
      fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.scoped, Effect.provide(quiet)))

  it.live("a second run with nothing new reads one empty lot and leaves the outputs as they were; a change is read by the run after", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const dir = tmp()
      const pipeline = yield* pipelineIn(dir, sim)
      yield* Runner.runNode(pipeline)
      const state = () => JSON.parse(fs.readFileSync(path.join(dir, ".effetl", "state.json"), "utf8"))
      const token = state().pipelines.acceo.sources.acceo.checkpoint
      expect(token).toMatchObject({ kind: "cursor", value: { token: sim.feed().at(-1)!.token } })
      const before = sim.requests().byPath["/products/images"]!
      const [firstJsonl, firstCsv] = [jsonlRows(dir), csvRows(dir)]
      expect(firstJsonl.length).toBeGreaterThan(0)
      const second = yield* Runner.runNode(pipeline)
      expect(second.status).toBe("finished")
      expect(sim.requests().byPath["/products/images"]! - before).toBe(1)
      expect(second.sources[0]!.counts.read).toBe(0)
      // A run from the saved token that read nothing replaces no output (core's runner): overwrite
      // files keep the last run that read something.
      expect(jsonlRows(dir)).toEqual(firstJsonl)
      expect(csvRows(dir)).toEqual(firstCsv)
      expect(state().pipelines.acceo.sources.acceo.checkpoint).toEqual(token)
      // A change: the third run reads that product only.
      const changed = sim.catalogue.find((p) => p.images.length > 0)!.product_id
      sim.change([changed], { addImage: true })
      yield* Runner.runNode(pipeline)
      const rows = jsonlRows(dir)
      expect(new Set(rows.map((r) => r.productId))).toEqual(new Set([changed]))
      expect(rows.map(key).sort()).toEqual(expectedRows(sim).filter((r) => r.productId === changed).map(key).sort())
      fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.scoped, Effect.provide(quiet)))

  for (const [name, transforms, at] of [
    ["streamed (validate, hash-content)", demoTransforms.slice(0, 2), "commit"],
    ["regrouped (the demo's transforms)", demoTransforms, "read"]
  ] as const) {
    it.live(`a run stopped midway and run again loses nothing and duplicates nothing: ${name}`, () =>
      Effect.gen(function*() {
        const slow = { kinds: ["latency" as const], rate: 1, latencyMs: 15, maxConsecutive: 1000 }
        const whole = yield* Simulator.make()
        const cut = yield* Simulator.make({ faults: slow })
        const [wholeDir, cutDir] = [tmp(), tmp()]
        yield* Runner.runNode(yield* pipelineIn(wholeDir, whole, { transforms, everyRecords: 1 }))
        const reference = jsonlRows(wholeDir).map(key).sort()
        expect(reference.length).toBeGreaterThan(0)

        // Stop the run after its third commit (or its tenth record read), as Ctrl-C would.
        const pipeline = yield* pipelineIn(cutDir, cut, { transforms, everyRecords: 1, with: { count: 2 } })
        let seen = 0
        let fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
        const stop = () => {
          if (fiber !== undefined) Effect.runFork(Fiber.interrupt(fiber))
        }
        fiber = yield* Effect.fork(Runner.runNode(pipeline, {
          reporter: at === "commit"
            ? { committed: () => void (++seen === 3 && stop()) }
            : { read: (_s, n) => void ((seen += n) >= 10 && seen - n < 10 && stop()) }
        }))
        const exit = yield* Fiber.await(fiber)
        expect(Exit.isInterrupted(exit)).toBe(true)
        const saved = JSON.parse(fs.readFileSync(path.join(cutDir, ".effetl", "state.json"), "utf8")).pipelines.acceo
        expect(saved.run.status).not.toBe("finished")

        cut.setFaults(undefined)
        const again = yield* Runner.runNode(pipeline)
        expect(again.resumed).toBe(true)
        expect(again.status).toBe("finished")
        expect(jsonlRows(cutDir).map(key).sort()).toEqual(reference)
        fs.rmSync(wholeDir, { recursive: true })
        fs.rmSync(cutDir, { recursive: true })
      }).pipe(Effect.scoped, Effect.provide(quiet)))
  }

  for (const [kind, crashAt] of [
    ["stream", "after-sink-commit:3"],
    ["stream", "after-state-save:2"],
    ["demo", "after-batch-write:1"],
    ["demo", "after-state-save:2"]
  ] as const) {
    it.live(`a run SIGKILLed (${crashAt}, ${kind === "demo" ? "the demo's transforms" : "validate, hash-content"}) and run again loses nothing and duplicates nothing`, () =>
      Effect.gen(function*() {
        const transforms = kind === "demo" ? demoTransforms : demoTransforms.slice(0, 2)
        const options = { transforms, everyRecords: 1, with: { count: 2 } }
        const whole = yield* Simulator.make()
        const [wholeDir, cutDir] = [tmp(), tmp()]
        yield* Runner.runNode(yield* pipelineIn(wholeDir, whole, options))
        const reference = jsonlRows(wholeDir).map(key).sort()

        const sim = yield* Simulator.make()
        const killed = yield* Effect.promise(() => runInChild(cutDir, sim, kind, crashAt))
        expect(killed.signal, killed.stderr).toBe("SIGKILL")
        expect(fs.existsSync(path.join(cutDir, "out", "acceo-images.jsonl"))).toBe(false)

        const again = yield* Runner.runNode(yield* pipelineIn(cutDir, sim, options))
        expect(again.resumed).toBe(true)
        expect(jsonlRows(cutDir).map(key).sort()).toEqual(reference)
        expect(csvRows(cutDir).length).toBe(reference.length)
        fs.rmSync(wholeDir, { recursive: true })
        fs.rmSync(cutDir, { recursive: true })
      }).pipe(Effect.scoped, Effect.provide(quiet)))
  }

  it.live("hostile file names stay data: nothing is created outside the output directory", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make()
      for (const format of ["json", "xml"]) {
        const dir = tmp()
        const outDir = path.join(dir, "out")
        // Where a sink that used a name as a path would land, relative to the output and the working directory.
        const escapes = Simulator.hostileNames.filter((n) => n !== "" && n !== "..").flatMap((n) => [path.resolve(outDir, n), path.resolve(n)])
        const existedBefore = escapes.filter((p) => fs.existsSync(p))
        expect(tree(dir)).toEqual([])
        yield* Runner.runNode(yield* pipelineIn(dir, sim, { with: { format } }))
        const after = tree(dir)
        // Only the sinks' outputs, the (empty) dead-letter file and the state.
        expect(after.filter((p) => !p.startsWith(".effetl"))).toEqual(["out", "out/acceo-images.csv", "out/acceo-images.jsonl", "out/dead-letter.jsonl"])
        expect(fs.readFileSync(path.join(outDir, "dead-letter.jsonl"), "utf8")).toBe("")
        expect(after.filter((p) => p.startsWith(".effetl")).every((p) => !/passwd|CON|win\.ini|abs|hidden|encoded/.test(p))).toBe(true)
        expect(escapes.filter((p) => fs.existsSync(p))).toEqual(existedBefore)
        // ...and the names are in the data, exactly (those dedupe kept).
        const names = new Set(jsonlRows(dir).map((r) => r.filename))
        const csvNames = new Set(csvRows(dir).map((r) => r.filename))
        const kept = new Set(expectedRows(sim).map((r) => r.filename))
        const hostile = Simulator.hostileNames.filter((n) => kept.has(n))
        expect(hostile).toContain("../../etc/passwd.jpg")
        expect(hostile.length).toBeGreaterThan(8)
        for (const name of hostile) {
          expect(names.has(name), name).toBe(true)
          expect(csvNames.has(name), name).toBe(true)
        }
        fs.rmSync(dir, { recursive: true })
      }
    }).pipe(Effect.scoped, Effect.provide(quiet)))

  it.live("invalid base64 and an oversized image go to the dead-letter output; the run finishes", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const product = sim.catalogue.find((p) => p.images.length >= 2)!
      sim.overrideBinary(product.product_id, product.images[0]!.sequence, "%%%not-base64%%%")
      const big = Math.max(...sim.catalogue.flatMap((p) => p.images.map((i) => i.bytes.length)))
      const dir = tmp()
      const summary = yield* Runner.runNode(yield* pipelineIn(dir, sim, { with: { maxImageBytes: big - 1 } }))
      expect(summary.status).toBe("finished")
      const dead = fs.readFileSync(path.join(dir, "out", "dead-letter.jsonl"), "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
      const resent = sim.feed().filter((e) => e.productId === product.product_id).length
      const oversized = sim.feed().flatMap((e) => sim.catalogue.find((p) => p.product_id === e.productId)!.images.filter((i) => i.bytes.length === big))
      expect(dead.filter((d) => String(d.error).includes("not valid base64")).length).toBe(resent)
      expect(dead.filter((d) => String(d.error).includes("over maxImageBytes")).length).toBe(oversized.length)
      expect(dead.every((d) => d.source === "acceo" && d.stage === "source")).toBe(true)
      expect(summary.sources[0]!.counts.invalid).toBe(dead.length)
      expect(jsonlRows(dir).some((r) => r.productId === product.product_id)).toBe(true)
      fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.scoped, Effect.provide(quiet)))
})
