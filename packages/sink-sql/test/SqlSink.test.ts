/**
 * The SQL sinks through their sink API (write, commit, finish; `committed` tokens on resume), on a
 * real SQLite file and a real PostgreSQL schema: the table and its migration, merge, append and
 * replace semantics, batching, and what a killed run leaves behind.
 */
import { describe, expect, it } from "@effect/vitest"
import type { ProductImage } from "@effetl/core"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { PostgresSinkConfig, SqliteSinkConfig } from "../src/Sinks.js"
import * as SqlSink from "../src/SqlSink.js"
import { backends, context, img, type TestDb } from "./Support.js"

const sink = (
  db: TestDb,
  mode: SqlSink.Mode,
  runId: string,
  committed: Option.Option<unknown> = Option.none(),
  table = "product_images",
  maxBuffered?: number
) => SqlSink.make({ target: db.target, schema: db.schema, table, mode, maxBuffered }, context(runId, committed))

const rows = (db: TestDb, table = "product_images") =>
  db.query<{ source: string; product_id: string; image_id: string; position: number; run_id: string; loaded_at: unknown; extra: unknown }>(
    `SELECT * FROM ${db.q(table)} ORDER BY "source", "product_id", "image_id", "run_id"`
  )
const keys = (db: TestDb, table = "product_images") =>
  Effect.map(rows(db, table), (rs) => rs.map((r) => `${r.product_id}/${r.image_id}`))
const time = (v: unknown) => new Date(v as string | Date).getTime()

/** Writes batches and commits once, in a sink's own scope (the scope's end is a killed process: no finish). */
const load = (
  db: TestDb,
  mode: SqlSink.Mode,
  runId: string,
  batches: ReadonlyArray<ReadonlyArray<ProductImage>>,
  options: { productComplete?: boolean; finish?: boolean; committed?: Option.Option<unknown> } = {}
) =>
  Effect.scoped(
    Effect.gen(function*() {
      const s = yield* sink(db, mode, runId, options.committed)
      for (const b of batches) yield* s.write(Chunk.fromIterable(b), { productComplete: options.productComplete ?? true })
      const token = yield* s.commit
      if (options.finish ?? true) yield* s.finish
      return token
    })
  )

for (const backend of backends) {
  describe(`${backend.name} sink`, () => {
    it.effect("creates the table through a versioned migration, with the canonical columns and their types", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          yield* load(db, "merge", "r1", [[img("1", "a")]])
          const migrations = yield* db.query<{ migration_id: number; name: string }>(
            `SELECT migration_id, name FROM ${db.q("effetl_migrations_product_images")} ORDER BY migration_id`
          )
          expect(migrations.map((m) => [Number(m.migration_id), m.name])).toEqual([[1, "images"], [2, "pending"]])
          if (backend.name === "postgres") {
            const cols = yield* db.query<{ column_name: string; data_type: string; is_nullable: string }>(
              "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'product_images' ORDER BY ordinal_position",
              [db.schema]
            )
            expect(Object.fromEntries(cols.map((c) => [c.column_name, c.data_type]))).toEqual({
              source: "text", product_id: "text", image_id: "text", position: "integer", url: "text", filename: "text",
              width: "integer", height: "integer", alt: "text", content_hash: "text",
              created_at: "timestamp with time zone", updated_at: "timestamp with time zone", extra: "jsonb",
              run_id: "text", loaded_at: "timestamp with time zone"
            })
            const pk = yield* db.query<{ column_name: string }>(
              `SELECT a.attname AS column_name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
               WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
              [`${db.schema}.product_images`]
            )
            expect(pk.map((c) => c.column_name)).toEqual(["source", "product_id", "image_id"])
            const [r] = yield* rows(db)
            expect(r!.extra).toEqual({ vendor: { tag: "x" } })
          } else {
            const cols = yield* db.query<{ name: string; type: string; pk: number }>(`PRAGMA table_info("product_images")`)
            expect(cols.filter((c) => c.type === "INTEGER").map((c) => c.name)).toEqual(["position", "width", "height"])
            expect(cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name)).toEqual(["source", "product_id", "image_id"])
            const [r] = yield* rows(db)
            expect(JSON.parse(r!.extra as string)).toEqual({ vendor: { tag: "x" } })
          }
          const [r] = yield* db.query<{ created_at: unknown; updated_at: unknown; width: number }>(`SELECT created_at, updated_at, width FROM ${db.q("product_images")}`)
          expect(time(r!.created_at)).toBe(Date.parse("2024-01-02T03:04:05.678Z"))
          expect(r!.updated_at).toBeNull()
          expect(r!.width).toBe(800)
        })
      ))

    it.effect("merge: an image removed upstream disappears; a batch that is not product-complete deletes nothing", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          yield* load(db, "merge", "r1", [[img("1", "a"), img("1", "b"), img("1", "c")], [img("2", "a")]])
          expect(yield* keys(db)).toEqual(["1/a", "1/b", "1/c", "2/a"])
          // Upstream, product 1 lost image b: its complete gallery is a, c.
          yield* load(db, "merge", "r2", [[img("1", "a"), img("1", "c")]])
          expect(yield* keys(db)).toEqual(["1/a", "1/c", "2/a"])
          // Not product-complete: the batch may hold only part of the gallery, so nothing is deleted.
          yield* load(db, "merge", "r3", [[img("1", "d")]], { productComplete: false })
          expect(yield* keys(db)).toEqual(["1/a", "1/c", "1/d", "2/a"])
        })
      ))

    it.effect("merge is idempotent: a re-sent identical product changes nothing, not even loaded_at; a change updates the row", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          const product = [img("1", "a"), img("1", "b", { position: 2, extra: { b: 1, a: [1, 2] } })]
          yield* TestClock.adjust("1 hour")
          yield* load(db, "merge", "r1", [product])
          const before = yield* rows(db)
          yield* TestClock.adjust("1 hour")
          // The same product again (extra with its keys in another order is the same JSON).
          yield* load(db, "merge", "r2", [[img("1", "a"), img("1", "b", { position: 2, extra: { a: [1, 2], b: 1 } })]])
          const after = yield* rows(db)
          expect(after).toEqual(before)
          expect(after.map((r) => r.run_id)).toEqual(["r1", "r1"])
          // A changed image is updated, with this run's id and time; the unchanged one is left alone.
          yield* TestClock.adjust("1 hour")
          yield* load(db, "merge", "r3", [[img("1", "a", { alt: "front" }), img("1", "b", { position: 2, extra: { b: 1, a: [1, 2] } })]])
          const changed = yield* rows(db)
          expect(changed.map((r) => r.run_id)).toEqual(["r3", "r1"])
          expect(time(changed[0]!.loaded_at)).toBe(3 * 3600_000)
          expect(time(changed[1]!.loaded_at)).toBe(3600_000)
        })
      ))

    it.effect("a commit of many rows goes in batches under the parameter limit; the last write of an image wins", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          const many = Array.from({ length: 2600 }, (_, i) => img(String(Math.floor(i / 4)), `i${i % 4}`, { position: i % 4 }))
          yield* Effect.scoped(
            Effect.gen(function*() {
              const s = yield* sink(db, "merge", "r1")
              yield* s.write(Chunk.fromIterable(many.slice(0, 1300)), { productComplete: true })
              yield* s.write(Chunk.fromIterable(many.slice(1300)), { productComplete: true })
              // product 0 sent again in the same commit, now with one image: that gallery wins.
              yield* s.write(Chunk.make(img("0", "i0", { alt: "again" })), { productComplete: true })
              yield* s.commit
            })
          )
          const [count] = yield* db.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${db.q("product_images")}`)
          expect(Number(count!.n)).toBe(2600 - 3)
          const zero = yield* db.query<{ image_id: string; alt: string }>(`SELECT image_id, alt FROM ${db.q("product_images")} WHERE product_id = '0'`)
          expect(zero).toEqual([{ image_id: "i0", alt: "again" }])
        })
      ))

    it.effect("beyond maxBuffered the buffer waits in the work table; the commit moves it in; a killed run's staged rows are discarded", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          yield* load(db, "merge", "r1", [[img("1", "a"), img("1", "b"), img("1", "c"), img("1", "x")], [img("9", "a")]])
          const pending = () =>
            db.query<{ pending_key: string; product_id: string; image_id: string }>(
              `SELECT pending_key, product_id, image_id FROM ${db.q("product_images__pending")} ORDER BY product_id, image_id`
            )
          yield* Effect.scoped(
            Effect.gen(function*() {
              const s = yield* sink(db, "merge", "r2", Option.none(), "product_images", 3)
              yield* s.write(Chunk.make(img("1", "a"), img("1", "b"), img("1", "c")), { productComplete: true })
              yield* s.write(Chunk.make(img("2", "a", { alt: "new" })), { productComplete: true })
              // 4 records > 3: staged, not in the table yet
              expect((yield* pending()).map((r) => `${r.pending_key}:${r.product_id}/${r.image_id}`)).toEqual(["p/db:1/a", "p/db:1/b", "p/db:1/c", "p/db:2/a"])
              expect(yield* keys(db)).toEqual(["1/a", "1/b", "1/c", "1/x", "9/a"])
              // product 1 comes again, complete, with a and d: that gallery wins over what was staged
              yield* s.write(Chunk.make(img("1", "a", { alt: "again" }), img("1", "d")), { productComplete: true })
              yield* s.commit
            })
          )
          expect(yield* keys(db)).toEqual(["1/a", "1/d", "2/a", "9/a"])
          expect((yield* rows(db)).map((r) => r.run_id)).toEqual(["r2", "r2", "r2", "r1"])
          expect(yield* pending()).toEqual([])
          // killed after staging, before its commit: the table is untouched and the next run discards the staged rows
          yield* Effect.scoped(
            Effect.gen(function*() {
              const s = yield* sink(db, "merge", "r3", Option.none(), "product_images", 1)
              yield* s.write(Chunk.make(img("1", "a"), img("5", "a")), { productComplete: true })
            })
          )
          expect((yield* pending()).length).toBe(2)
          yield* Effect.scoped(Effect.flatMap(sink(db, "merge", "r3", Option.some({})), (s) => s.commit))
          expect(yield* pending()).toEqual([])
          expect(yield* keys(db)).toEqual(["1/a", "1/d", "2/a", "9/a"])
          // append stages too, and never deletes
          yield* Effect.scoped(
            Effect.gen(function*() {
              const s = yield* sink(db, "append", "r4", Option.none(), "history", 1)
              yield* s.write(Chunk.make(img("1", "a"), img("1", "b")), { productComplete: true })
              yield* s.write(Chunk.make(img("1", "a")), { productComplete: true })
              yield* s.commit
            })
          )
          expect(yield* keys(db, "history")).toEqual(["1/a", "1/b"])
        })
      ))

    it.effect("append: each run adds its rows (a history keyed by run); replaying a batch within a run adds nothing", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          yield* load(db, "append", "r1", [[img("1", "a"), img("1", "b")]])
          // r2 is killed after its first commit and resumed: the resumed run replays the batch.
          const token = yield* load(db, "append", "r2", [[img("1", "a")]], { finish: false })
          yield* load(db, "append", "r2", [[img("1", "a")], [img("2", "a")]], { committed: Option.some(token) })
          const all = yield* rows(db)
          expect(all.map((r) => `${r.run_id}:${r.product_id}/${r.image_id}`)).toEqual(["r1:1/a", "r2:1/a", "r1:1/b", "r2:2/a"])
        })
      ))

    it.effect("replace: readers see the previous table until the swap; a killed run leaves it intact and resumes into staging", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          yield* load(db, "replace", "r1", [[img("1", "a")], [img("2", "a")]])
          expect(yield* keys(db)).toEqual(["1/a", "2/a"])
          // r2 commits once, then is killed (its scope ends without finish).
          const token = yield* load(db, "replace", "r2", [[img("3", "a")]], { finish: false })
          expect(yield* keys(db)).toEqual(["1/a", "2/a"])
          expect(yield* keys(db, "product_images__staging")).toEqual(["3/a"])
          // The resumed r2 goes on in its staging table; a reader still sees r1's table until the end.
          yield* Effect.scoped(
            Effect.gen(function*() {
              const s = yield* sink(db, "replace", "r2", Option.some(token))
              yield* s.write(Chunk.make(img("4", "a")), { productComplete: true })
              yield* s.commit
              expect(yield* keys(db)).toEqual(["1/a", "2/a"])
              yield* s.finish
            })
          )
          expect(yield* keys(db)).toEqual(["3/a", "4/a"])
          expect((yield* rows(db)).map((r) => r.run_id)).toEqual(["r2", "r2"])
          // A kill after the swap but before the run was recorded finished: the resumed run swaps nothing again.
          yield* load(db, "replace", "r2", [], { committed: Option.some(token) })
          expect(yield* keys(db)).toEqual(["3/a", "4/a"])
          // The next runs swap again (the staging table and its key are made afresh each time).
          yield* load(db, "replace", "r3", [[img("5", "a")]])
          expect(yield* keys(db)).toEqual(["5/a"])
          // A discarded run's staging (killed, then a fresh run instead of a resume) is not carried over.
          yield* load(db, "replace", "r4", [[img("6", "a")]], { finish: false })
          yield* load(db, "replace", "r5", [[img("7", "a")]])
          expect(yield* keys(db)).toEqual(["7/a"])
        })
      ))

    it.effect("text with U+0000 (a hostile vendor name) loads: kept on SQLite, U+FFFD on Postgres, whose text cannot hold it", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          const nul = "evil\u0000name"
          const product = [img("1\u0000x", "a\u0000", { filename: nul, extra: { [`k${nul}`]: [nul] } }), img("1\u0000x", "b")]
          yield* load(db, "merge", "r1", [product])
          // replayed, then sent without image b: the keys match what was stored
          yield* load(db, "merge", "r2", [product.slice(0, 1)])
          const stored = backend.name === "postgres" ? "evil\uFFFDname" : nul
          const all = yield* db.query<{ product_id: string; image_id: string; filename: string; extra: unknown; run_id: string }>(
            `SELECT product_id, image_id, filename, extra, run_id FROM ${db.q("product_images")}`
          )
          expect(all).toHaveLength(1)
          expect(all[0]!.filename).toBe(stored)
          expect(all[0]!.run_id).toBe("r1")
          const extra = typeof all[0]!.extra === "string" ? JSON.parse(all[0]!.extra) : all[0]!.extra
          expect(extra).toEqual({ [`k${stored}`]: [stored] })
        })
      ))

    it.effect("a table made for another mode's layout is refused with a clear message", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          yield* load(db, "merge", "r1", [[img("1", "a")]])
          const e = yield* Effect.flip(load(db, "append", "r2", [[img("1", "a")]]))
          expect(e._tag).toBe("SinkError")
          expect(e.message).toContain("sink 'db'")
          expect(e.message).toContain("table product_images was created as 'images', not 'image_history'")
        })
      ))
  })
}

describe("sink configs", () => {
  it("table and schema names are validated identifiers; the URL is a secret", () => {
    const bad = Schema.decodeUnknownEither(SqliteSinkConfig)({ table: "Images; DROP TABLE x" })
    expect(Either.isLeft(bad)).toBe(true)
    const long = Schema.decodeUnknownEither(SqliteSinkConfig)({ table: "a".repeat(33) })
    expect(Either.isLeft(long)).toBe(true)
    const ok = Schema.decodeUnknownSync(SqliteSinkConfig)({})
    expect(ok).toEqual({ path: "out/images.db", table: "product_images", mode: "merge", maxBuffered: 10_000 })
    const pg = Schema.decodeUnknownSync(PostgresSinkConfig)({ url: "postgres://u:pw@h/db", schema: "etl" })
    expect(String(pg.url)).not.toContain("pw")
    expect(Either.isLeft(Schema.decodeUnknownEither(PostgresSinkConfig)({ url: "postgres://h/db", schema: "1x" }))).toBe(true)
  })
})
