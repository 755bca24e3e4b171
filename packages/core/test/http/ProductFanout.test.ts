import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as ProductFanout from "../../src/http/ProductFanout.js"
import { image } from "../transforms/ProductFixtures.js"

type Position = ProductFanout.Position<string | null>

/** A cursor-paginated enumeration over fixed pages: page keys are cursors (null: the first page). */
const cursorPages = (pages: ReadonlyArray<ReadonlyArray<string>>, fetched: Array<string | null>) => {
  const keyOf = (i: number) => (i === 0 ? null : `c${i}`)
  return (from: Option.Option<string | null>): Stream.Stream<ProductFanout.ProductPage<string | null>> => {
    const start = Option.match(from, { onNone: () => 0, onSome: (k) => (k === null ? 0 : Number(k.slice(1))) })
    return Stream.fromIterable(pages.slice(start).map((ids, j) => [ids, start + j] as const)).pipe(
      Stream.tap(([, i]) => Effect.sync(() => fetched.push(keyOf(i)))),
      Stream.map(([ids, i]) => ({ key: keyOf(i), next: i + 1 < pages.length ? Option.some(keyOf(i + 1)) : Option.none(), ids }))
    )
  }
}

/** Two images per product, fetched with a random delay so a concurrent fan-out finishes out of order. */
const fetchProduct = (calls: Array<string>) => (id: string) =>
  Effect.sync(() => calls.push(id)).pipe(
    Effect.zipRight(Effect.sleep(`${(id.charCodeAt(id.length - 1) * 7) % 13} millis`)),
    Effect.as({ records: [image({ productId: id, imageId: `${id}-1` }), image({ productId: id, imageId: `${id}-2` })] })
  )

const run = (options: ProductFanout.Options<string | null, never, never, never, never>) =>
  Effect.map(Stream.runCollect(ProductFanout.stream(options)), Chunk.toReadonlyArray)

const pages = [["a", "b", "c"], ["d", "e"], [], ["f"]]

describe("ProductFanout.stream", () => {
  it.live("emits one product-complete batch per product, in order, with the position after it", () =>
    Effect.gen(function*() {
      const calls: Array<string> = []
      const batches = yield* run({ resume: Option.none(), pages: cursorPages(pages, []), fetch: fetchProduct(calls), concurrency: 4 })
      const products = batches.filter((b) => b.records.length > 0).map((b) => Chunk.toReadonlyArray(b.records).map((r) => r.productId))
      expect(products).toEqual([["a", "a"], ["b", "b"], ["c", "c"], ["d", "d"], ["e", "e"], ["f", "f"]])
      expect(calls.sort()).toEqual(["a", "b", "c", "d", "e", "f"])
      const positions = batches.map((b) => Option.getOrThrow(b.checkpoint).value as Position)
      expect(positions).toEqual([
        { page: null, done: 1, lastId: "a" },
        { page: null, done: 2, lastId: "b" },
        { page: "c1", done: 0 },
        { page: "c1", done: 1, lastId: "d" },
        { page: "c2", done: 0 },
        { page: "c3", done: 0 }, // the empty page c2: a checkpoint-only batch
        { page: "c3", done: 1, lastId: "f" }
      ])
      expect(batches[5]!.records.length).toBe(0)
      expect(batches.every((b) => Option.getOrThrow(b.checkpoint).kind === "position")).toBe(true)
    }))

  it.live("resumes at the first unfinished product of the saved page, fetching no finished product again", () =>
    Effect.gen(function*() {
      const calls: Array<string> = []
      const fetchedPages: Array<string | null> = []
      const batches = yield* run({
        resume: Option.some({ page: "c1", done: 1, lastId: "d" }),
        pages: cursorPages(pages, fetchedPages),
        fetch: fetchProduct(calls),
        concurrency: 2
      })
      expect(fetchedPages).toEqual(["c1", "c2", "c3"])
      expect(calls.sort()).toEqual(["e", "f"])
      expect(batches.flatMap((b) => Chunk.toReadonlyArray(b.records).map((r) => r.imageId))).toEqual(["e-1", "e-2", "f-1", "f-2"])
    }))

  it.live("finds the last finished id when the page shifted (a product before it was deleted), else falls back to the count", () =>
    Effect.gen(function*() {
      const shifted = [["b", "c", "x"]] // "a" was deleted since the checkpoint {done: 2, lastId: "b"}
      const calls: Array<string> = []
      yield* run({ resume: Option.some({ page: null, done: 2, lastId: "b" }), pages: cursorPages(shifted, []), fetch: fetchProduct(calls), concurrency: 1 })
      expect(calls).toEqual(["c", "x"])
      const calls2: Array<string> = []
      yield* run({ resume: Option.some({ page: null, done: 2, lastId: "gone" }), pages: cursorPages(shifted, []), fetch: fetchProduct(calls2), concurrency: 1 })
      expect(calls2).toEqual(["x"])
    }))

  it.live("a resume after the last product of the last page reads nothing more", () =>
    Effect.gen(function*() {
      const calls: Array<string> = []
      const batches = yield* run({ resume: Option.some({ page: "c3", done: 1, lastId: "f" }), pages: cursorPages(pages, []), fetch: fetchProduct(calls), concurrency: 3 })
      expect(calls).toEqual([])
      expect(batches.map((b) => b.records.length)).toEqual([0])
    }))

  it.effect("carries a product's rejected entries and wraps checkpoints as the source asks", () =>
    Effect.gen(function*() {
      const batches = yield* Stream.runCollect(ProductFanout.stream({
        resume: Option.none(),
        pages: ProductFanout.listPages(["1", "2", "3"], 2),
        fetch: (id) => Effect.succeed(id === "2" ? { records: [], rejected: [{ source: "s", stage: "source", error: `product ${id} not found` }] } : { records: [image({ productId: id, imageId: "i" })] }),
        concurrency: 2,
        checkpoint: (p) => ({ kind: "position", value: { settings: "k", ...p } })
      }))
      const list = Chunk.toReadonlyArray(batches)
      expect(list.map((b) => b.rejected.length)).toEqual([0, 1, 0])
      expect(list.map((b) => Option.getOrThrow(b.checkpoint).value)).toEqual([
        { settings: "k", page: 0, done: 1, lastId: "1" },
        { settings: "k", page: 2, done: 0 },
        { settings: "k", page: 2, done: 1, lastId: "3" }
      ])
    }))

  it.effect("a failing fetch fails the stream after the batches before it", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const result = yield* ProductFanout.stream({
        resume: Option.none(),
        pages: ProductFanout.listPages(["1", "2", "3"]),
        fetch: (id) => (id === "2" ? Effect.fail("boom" as const) : Effect.succeed({ records: [image({ productId: id, imageId: "i" })] })),
        concurrency: 1
      }).pipe(Stream.runForEach((b) => Effect.sync(() => seen.push(...Chunk.toReadonlyArray(b.records).map((r) => r.productId)))), Effect.either)
      expect(Either.isLeft(result) && result.left).toBe("boom")
      expect(seen).toEqual(["1"])
    }))
})

describe("ProductFanout.listPages", () => {
  it.effect("pages an id list by offset and resumes from an offset", () =>
    Effect.gen(function*() {
      const all = yield* Stream.runCollect(ProductFanout.listPages(["a", "b", "c", "d", "e"], 2)(Option.none()))
      expect(Chunk.toReadonlyArray(all)).toEqual([
        { key: 0, next: Option.some(2), ids: ["a", "b"] },
        { key: 2, next: Option.some(4), ids: ["c", "d"] },
        { key: 4, next: Option.none(), ids: ["e"] }
      ])
      const rest = yield* Stream.runCollect(ProductFanout.listPages(["a", "b", "c", "d", "e"], 2)(Option.some(4)))
      expect(Chunk.toReadonlyArray(rest).map((p) => p.ids)).toEqual([["e"]])
    }))
})

describe("ProductFanout.loadIds", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effetl-ids-"))
  const load = (config: Parameters<typeof ProductFanout.loadIds>[0], validate?: (id: string) => string | undefined) =>
    ProductFanout.loadIds(config, { source: "shop", ...(validate ? { validate } : {}) }).pipe(Effect.provide(NodeFileSystem.layer), Effect.either)

  it.effect("reads neither, a list (numbers as strings, repeats once) or a file (comments and blanks skipped)", () =>
    Effect.gen(function*() {
      expect(yield* load({})).toEqual(Either.right(Option.none()))
      expect(yield* load({ productIds: [12, " 13 ", 12] })).toEqual(Either.right(Option.some(["12", "13"])))
      const file = path.join(dir, "ids.txt")
      fs.writeFileSync(file, "# products to refresh\r\n101\n\n  102  \n#103\n104\n")
      expect(yield* load({ productIdsFile: file })).toEqual(Either.right(Option.some(["101", "102", "104"])))
    }))

  it.effect("refuses both fields, a missing or empty file and an invalid id, naming the field and line", () =>
    Effect.gen(function*() {
      const both = yield* load({ productIds: ["1"], productIdsFile: "x" })
      expect(Either.isLeft(both) && both.left.message).toBe("source 'shop': give productIds or productIdsFile, not both")
      const missing = yield* load({ productIdsFile: path.join(dir, "nope.txt") })
      expect(Either.isLeft(missing) && missing.left.message).toMatch(/cannot read productIdsFile .*nope\.txt/)
      const empty = path.join(dir, "empty.txt")
      fs.writeFileSync(empty, "# nothing\n\n")
      const none = yield* load({ productIdsFile: empty })
      expect(Either.isLeft(none) && none.left.message).toMatch(/lists no product ids/)
      const bad = path.join(dir, "bad.txt")
      fs.writeFileSync(bad, "1\n2\nx3\n")
      const digits = (id: string) => (/^\d+$/.test(id) ? undefined : "expected digits")
      const invalid = yield* load({ productIdsFile: bad }, digits)
      expect(Either.isLeft(invalid) && invalid.left.message).toBe(`source 'shop': ${bad} line 3: product id "x3": expected digits`)
      const invalidList = yield* load({ productIds: ["1", "y"] }, digits)
      expect(Either.isLeft(invalidList) && invalidList.left).toMatchObject({ path: "sources.shop.with.productIds" })
    }))
})
