/**
 * The __plugin__ sink under the commit protocol, driven as the runner drives it: write, commit (the
 * token is what the runner saves), finish, cleanup; and a run killed after a commit whose token was
 * never saved, resumed with the last saved token, writes every record exactly once.
 */
import { ProductImage } from "@effetl/core"
import type { Sink } from "@effetl/core"
import { ConfigDocs, SourceHarness } from "@effetl/core/testing"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { __ident__, __Ident__Config } from "../src/index.js"

/** A record for product `p`, image `i`. */
const record = (p: number, i: number) =>
  ProductImage.unchecked({
    source: "test",
    productId: String(p),
    imageId: String(i),
    position: i,
    url: `https://cdn.example/${p}/${i}.png`,
    filename: `${i}.png`,
    width: null,
    height: null,
    alt: null,
    contentHash: null,
    createdAt: null,
    updatedAt: new Date(Date.UTC(2026, 0, 1)),
    extra: { colour: "red" }
  })
const batch = (p: number) => Chunk.fromIterable([1, 2, 3].map((i) => record(p, i)))

/** Makes the sink as the runner does (the `with:` block decoded by its schema) and uses it. */
const withSink = <A>(
  dir: string,
  use: (sink: Sink.SinkInstance) => Effect.Effect<A, unknown>,
  options: { readonly committed?: unknown; readonly trial?: boolean; readonly with?: Record<string, unknown> } = {}
): Promise<A> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const config = yield* Schema.decodeUnknown(__Ident__Config)({ path: path.join(dir, "out/images.ndjson"), ...options.with })
      const sink = yield* __ident__.make(config, {
        name: "out",
        pipeline: "test",
        runId: "run-1",
        committed: Option.fromNullable(options.committed),
        incremental: false,
        trial: options.trial ?? false
      })
      return yield* use(sink)
    }).pipe(Effect.scoped, Effect.provide(SourceHarness.nodeServices))
  )

const lines = (file: string) => fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
const temp = () => fs.mkdtempSync(path.join(os.tmpdir(), "__plugin__-sink-"))
const info = { productComplete: true }

describe("__plugin__ sink", () => {
  it("publishes every record at the end of the run, not before, and removes its staging", async () => {
    const dir = temp()
    const file = path.join(dir, "out/images.ndjson")
    await withSink(dir, (sink) =>
      Effect.gen(function*() {
        yield* sink.write(batch(1), info)
        expect(yield* sink.commit).toEqual({ parts: 1 })
        yield* sink.write(batch(2), info)
        expect(yield* sink.commit).toEqual({ parts: 2 })
        expect(fs.existsSync(file)).toBe(false) // committed is not published
        yield* sink.finish
        yield* sink.cleanup
      }))
    const rows = lines(file)
    expect(rows.map((r) => `${r.productId}/${r.imageId}`)).toEqual(["1/1", "1/2", "1/3", "2/1", "2/2", "2/3"])
    expect(rows[0]).toMatchObject({ source: "test", url: "https://cdn.example/1/1.png", updatedAt: "2026-01-01T00:00:00.000Z", extra: { colour: "red" } })
    expect(fs.readdirSync(path.dirname(file))).toEqual(["images.ndjson"])
  })

  it("a resumed run discards what was committed after the last saved token: every record once", async () => {
    const dir = temp()
    // The first run: two commits, but only the first token was saved before it was killed.
    const saved = await withSink(dir, (sink) =>
      Effect.gen(function*() {
        yield* sink.write(batch(1), info)
        const token = yield* sink.commit
        yield* sink.write(batch(2), info)
        yield* sink.commit
        return token
      }))
    // The resume: the source reads again from its saved checkpoint, after product 1.
    await withSink(dir, (sink) =>
      Effect.gen(function*() {
        yield* sink.write(batch(2), info)
        yield* sink.write(batch(3), info)
        yield* sink.commit
        yield* sink.finish
        yield* sink.cleanup
      }), { committed: saved })
    const rows = lines(path.join(dir, "out/images.ndjson"))
    expect(rows.map((r) => `${r.productId}/${r.imageId}`)).toEqual(["1/1", "1/2", "1/3", "2/1", "2/2", "2/3", "3/1", "3/2", "3/3"])
  })

  it("a trial (--limit) writes to the trial location and leaves the real file alone", async () => {
    const dir = temp()
    fs.mkdirSync(path.join(dir, "out"))
    fs.writeFileSync(path.join(dir, "out/images.ndjson"), "real\n")
    await withSink(dir, (sink) =>
      Effect.gen(function*() {
        yield* sink.write(batch(1), info)
        yield* sink.commit
        yield* sink.finish
        yield* sink.cleanup
      }), { trial: true, with: { withExtra: false } })
    expect(fs.readFileSync(path.join(dir, "out/images.ndjson"), "utf8")).toBe("real\n")
    const rows = lines(path.join(dir, "out/images.trial.ndjson"))
    expect(rows.length).toBe(3)
    expect(rows[0]).not.toHaveProperty("extra")
  })

  it("refuses a config without a path", async () => {
    const decoded = Schema.decodeUnknownEither(__Ident__Config)({})
    expect(decoded._tag).toBe("Left")
  })

  it("every option is documented in the README, with its default", () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, "..", "README.md"), "utf8")
    expect(ConfigDocs.readmeGaps(readme, __Ident__Config, { path: "out/x.ndjson" }, "Config (`with:`)")).toEqual([])
  })
})
