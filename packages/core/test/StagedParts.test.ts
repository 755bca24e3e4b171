import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as StagedParts from "../src/StagedParts.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-staged-"))

const read = (file: string) => fs.readFileSync(file, "utf8")

/** Makes a writer in its own scope, so a test can drop it without closing it (a simulated kill). */
const open = (options: StagedParts.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return yield* StagedParts.make(options).pipe(Scope.extend(scope))
  })

const base = (dir: string, over: Partial<StagedParts.Options> = {}): StagedParts.Options => ({
  name: "out",
  path: path.join(dir, "sub", "out.csv"),
  mode: "overwrite",
  runId: "run1",
  ext: "csv",
  committed: Option.none(),
  header: () => "h\n",
  ...over
})

layer(NodeFileSystem.layer)("StagedParts", (it) => {
  describe("overwrite mode", () => {
    it.scoped("stages committed parts and publishes them once, after the header, on finish", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = base(dir)
        const w = yield* open(opts)
        const staging = path.join(dir, "sub", ".out.csv.effetl-staging", "run1")
        expect(w.partsDir).toBe(staging)

        yield* w.write("a\n")
        yield* w.write(new TextEncoder().encode("b\n"))
        expect(fs.readdirSync(staging)).toEqual([".part-run1-00001.csv.tmp"])
        expect(yield* w.commit).toEqual({ seq: 1 })
        expect(fs.readdirSync(staging)).toEqual(["part-run1-00001.csv"])
        expect(read(path.join(staging, "part-run1-00001.csv"))).toBe("a\nb\n")

        // Nothing written since the last commit: no new part, same token.
        expect(yield* w.commit).toEqual({ seq: 1 })
        yield* w.write("")
        expect(yield* w.commit).toEqual({ seq: 1 })
        expect(fs.readdirSync(staging)).toEqual(["part-run1-00001.csv"])

        yield* w.write("c\n")
        expect(yield* w.commit).toEqual({ seq: 2 })
        expect(fs.existsSync(opts.path)).toBe(false)

        yield* w.finish
        expect(read(opts.path)).toBe("h\na\nb\nc\n")
        // Idempotent, and the staging is kept until cleanup.
        yield* w.finish
        expect(read(opts.path)).toBe("h\na\nb\nc\n")
        expect(fs.readdirSync(staging).sort()).toEqual(["part-run1-00001.csv", "part-run1-00002.csv"])

        yield* w.cleanup
        expect(fs.existsSync(path.join(dir, "sub", ".out.csv.effetl-staging"))).toBe(false)
        expect(fs.readdirSync(path.join(dir, "sub"))).toEqual(["out.csv"])
      }))

    it.scoped("an empty run publishes the header only", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = base(dir)
        fs.mkdirSync(path.dirname(opts.path), { recursive: true })
        fs.writeFileSync(opts.path, "old\n")
        const w = yield* open(opts)
        expect(yield* w.commit).toEqual({ seq: 0 })
        yield* w.finish
        expect(read(opts.path)).toBe("h\n")
      }))

    it.scoped("a resumed writer drops uncommitted data and parts committed after the token", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = base(dir)
        fs.mkdirSync(path.dirname(opts.path), { recursive: true })
        fs.writeFileSync(opts.path, "previous output\n")

        const first = yield* open(opts)
        yield* first.write("1\n")
        const saved = yield* first.commit // the runner saved this token
        yield* first.write("2\n")
        yield* first.commit // committed, but killed before the state save
        yield* first.write("3\n") // never committed
        // killed: no finish, no cleanup; the previous output is intact
        expect(read(opts.path)).toBe("previous output\n")

        const second = yield* open({ ...opts, committed: Option.some(saved) })
        expect(fs.readdirSync(second.partsDir)).toEqual(["part-run1-00001.csv"])
        expect(yield* second.committedParts).toEqual([path.join(second.partsDir, "part-run1-00001.csv")])
        yield* second.write("2\n")
        yield* second.write("3\n")
        expect(yield* second.commit).toEqual({ seq: 2 })
        expect(read(opts.path)).toBe("previous output\n")
        yield* second.finish
        expect(read(opts.path)).toBe("h\n1\n2\n3\n")
      }))

    it.scoped("a kill between finish and the run being recorded as finished: finish again gives the same file", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = base(dir)
        const first = yield* open(opts)
        yield* first.write("x\n")
        const token = yield* first.commit
        yield* first.finish
        expect(read(opts.path)).toBe("h\nx\n")

        const again = yield* open({ ...opts, committed: Option.some(token) })
        yield* again.finish
        expect(read(opts.path)).toBe("h\nx\n")
        yield* again.cleanup
        expect(read(opts.path)).toBe("h\nx\n")
      }))

    it.scoped("a fresh run removes old staging of the target (any run) and stale publish temp files", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = base(dir)
        const old = yield* open({ ...opts, runId: "old" })
        yield* old.write("stale\n")
        yield* old.commit
        const leftover = path.join(dir, "sub", ".out.csv.effetl-publish-old.tmp")
        fs.writeFileSync(leftover, "half")

        const fresh = yield* open(opts)
        expect(fs.readdirSync(path.join(dir, "sub", ".out.csv.effetl-staging"))).toEqual(["run1"])
        expect(fs.existsSync(leftover)).toBe(false)
        yield* fresh.write("new\n")
        yield* fresh.commit
        yield* fresh.finish
        expect(read(opts.path)).toBe("h\nnew\n")
      }))

    it.scoped("a missing committed part or an invalid token refuses to resume", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = base(dir)
        const first = yield* open(opts)
        yield* first.write("a\n")
        yield* first.commit
        yield* first.write("b\n")
        const token = yield* first.commit
        fs.rmSync(path.join(first.partsDir, "part-run1-00001.csv"))

        const missing = yield* Effect.flip(open({ ...opts, committed: Option.some(token) }))
        expect(missing._tag).toBe("SinkError")
        expect(missing.message).toContain("part-run1-00001.csv is missing")

        const bad = yield* Effect.flip(open({ ...opts, committed: Option.some({ seq: "x" }) }))
        expect(bad.message).toContain("commit token is not valid")
      }))

    it.scoped("finish refuses records written after the last commit", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const w = yield* open(base(dir))
        yield* w.write("a\n")
        const e = yield* Effect.flip(w.finish)
        expect(e.message).toContain("commit first")
      }))

    it.scoped("streams large outputs through bounded buffers, byte for byte", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = base(dir, { header: undefined })
        const w = yield* open(opts)
        const line = "é😀,".repeat(1000) + "\n" // multi-byte characters across buffer boundaries
        let expected = ""
        for (let part = 0; part < 3; part++) {
          for (let i = 0; i < 400; i++) {
            yield* w.write(line)
            expected += line
          }
          yield* w.commit
        }
        expect(Buffer.byteLength(expected)).toBeGreaterThan(3 * (1 << 20))
        // One chunk bigger than the write buffer (1 MiB), as text (4-byte characters at odd offsets)
        // and as bytes.
        const big = "x" + "😀".repeat(700_000) + "y"
        const bytes = new Uint8Array(1_500_000).map((_, i) => 97 + (i % 26))
        yield* w.write(big)
        yield* w.write(bytes)
        yield* w.commit
        expected += big + new TextDecoder().decode(bytes)
        yield* w.finish
        expect(read(opts.path) === expected).toBe(true)
      }))

    it.scoped("commitFile: a part written whole by another writer is committed like any part; publishFile writes the target", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const published: Array<ReadonlyArray<string>> = []
        const opts = base(dir, {
          ext: "bin",
          header: () => "never\n",
          publishFile: async (parts, tmp) => {
            published.push(parts)
            fs.writeFileSync(tmp, parts.map((p) => read(p)).join("|"))
          }
        })
        const w = yield* open(opts)
        const tmps: Array<string> = []
        const token = yield* w.commitFile(async (tmp) => {
          tmps.push(tmp)
          expect(fs.existsSync(tmp)).toBe(false)
          fs.writeFileSync(tmp, "one")
        })
        expect(token).toEqual({ seq: 1 })
        expect(path.dirname(tmps[0]!)).toBe(w.partsDir)
        expect(path.basename(tmps[0]!)).toBe(".part-run1-00001.bin.tmp")
        expect(fs.readdirSync(w.partsDir)).toEqual(["part-run1-00001.bin"])

        // A failing writer commits nothing and leaves no temp file; the next part takes the same number.
        const failed = yield* Effect.flip(w.commitFile(async (tmp) => {
          fs.writeFileSync(tmp, "half")
          throw new Error("disk full")
        }))
        expect(failed.message).toMatch(/could not commit part .*part-run1-00002\.bin: disk full/)
        expect(fs.readdirSync(w.partsDir)).toEqual(["part-run1-00001.bin"])
        expect(yield* w.commitFile(async (tmp) => fs.writeFileSync(tmp, "two"))).toEqual({ seq: 2 })

        // Not while chunks are being written to the current part.
        yield* w.write("chunk")
        const refused = yield* Effect.flip(w.commitFile(async (tmp) => fs.writeFileSync(tmp, "x")))
        expect(refused.message).toContain("while chunks were written")
        expect(yield* w.commit).toEqual({ seq: 3 })

        yield* w.finish
        expect(published).toEqual([[1, 2, 3].map((s) => path.join(w.partsDir, `part-run1-0000${s}.bin`))])
        expect(read(opts.path)).toBe("one|two|chunk")
        expect(fs.readdirSync(path.dirname(opts.path)).filter((n) => n.endsWith(".tmp"))).toEqual([])
      }))

    it.scoped("a publishFile that fails leaves the target as it was and no temp file", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = base(dir, {
          publishFile: async (_parts, tmp) => {
            fs.writeFileSync(tmp, "partial")
            throw new Error("no space")
          }
        })
        fs.mkdirSync(path.dirname(opts.path), { recursive: true })
        fs.writeFileSync(opts.path, "previous")
        const w = yield* open(opts)
        yield* w.write("a\n")
        yield* w.commit
        const e = yield* Effect.flip(w.finish)
        expect(e.message).toMatch(/could not publish .*: no space/)
        expect(read(opts.path)).toBe("previous")
        expect(fs.readdirSync(path.dirname(opts.path)).sort()).toEqual([".out.csv.effetl-staging", "out.csv"])
      }))

    it.scoped("refuses unusable run ids and a directory as the output file", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const e1 = yield* Effect.flip(open(base(dir, { runId: "../x" })))
        expect(e1.message).toContain("run id")
        fs.mkdirSync(path.join(dir, "adir"))
        const e2 = yield* Effect.flip(open(base(dir, { path: path.join(dir, "adir") })))
        expect(e2.message).toContain("is a directory")
      }))
  })

  describe("append mode", () => {
    const appendOpts = (dir: string, over: Partial<StagedParts.Options> = {}) =>
      base(dir, { mode: "append", path: path.join(dir, "parts"), ...over })

    it.scoped("publishes each commit's part at once, with the header in each part", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = appendOpts(dir)
        const w = yield* open(opts)
        yield* w.write("a\n")
        expect(fs.readdirSync(opts.path)).toEqual([".part-run1-00001.csv.tmp"])
        expect(yield* w.commit).toEqual({ seq: 1 })
        expect(fs.readdirSync(opts.path)).toEqual(["part-run1-00001.csv"])
        expect(read(path.join(opts.path, "part-run1-00001.csv"))).toBe("h\na\n")
        expect(yield* w.commit).toEqual({ seq: 1 })
        yield* w.write("b\n")
        yield* w.commit
        expect(read(path.join(opts.path, "part-run1-00002.csv"))).toBe("h\nb\n")
        yield* w.finish
        yield* w.cleanup
        expect(fs.readdirSync(opts.path).sort()).toEqual(["part-run1-00001.csv", "part-run1-00002.csv"])
      }))

    it.scoped("resume deletes only this run's parts past the token and its temp files", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = appendOpts(dir)
        fs.mkdirSync(opts.path, { recursive: true })
        const others = ["part-run0-00001.csv", "part-run0-00007.csv", ".part-run0-00008.csv.tmp", "notes.txt"]
        for (const o of others) fs.writeFileSync(path.join(opts.path, o), "other")

        const first = yield* open(opts)
        yield* first.write("1\n")
        const saved = yield* first.commit
        yield* first.write("2\n")
        yield* first.commit
        yield* first.write("3\n") // uncommitted

        const second = yield* open({ ...opts, committed: Option.some(saved) })
        expect(fs.readdirSync(opts.path).sort()).toEqual([...others, "part-run1-00001.csv"].sort())
        yield* second.write("2\n")
        expect(yield* second.commit).toEqual({ seq: 2 })
        expect(read(path.join(opts.path, "part-run1-00002.csv"))).toBe("h\n2\n")
        for (const o of others) expect(read(path.join(opts.path, o))).toBe("other")

        // A fresh run with the same id starts over, still leaving other runs alone.
        yield* open(opts)
        expect(fs.readdirSync(opts.path).sort()).toEqual([...others].sort())
      }))

    it.scoped("commitFile publishes a whole part at once, without the header", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const opts = appendOpts(dir, { ext: "bin" })
        const w = yield* open(opts)
        expect(yield* w.commitFile(async (tmp) => fs.writeFileSync(tmp, "whole"))).toEqual({ seq: 1 })
        expect(fs.readdirSync(opts.path)).toEqual(["part-run1-00001.bin"])
        expect(read(path.join(opts.path, "part-run1-00001.bin"))).toBe("whole")
      }))

    it.scoped("refuses a file as the output directory", () =>
      Effect.gen(function*() {
        const dir = tempDir()
        fs.writeFileSync(path.join(dir, "parts"), "x")
        const e = yield* Effect.flip(open(appendOpts(dir)))
        expect(e.message).toContain("is not a directory")
      }))
  })
})
