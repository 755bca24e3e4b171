/**
 * The SQL state stores on real databases: load/save/reset, corrupt rows, the shared transaction key,
 * pipelines whose sinks are on other databases than the state, and secrets kept out of errors.
 */
import { describe, expect, it } from "@effect/vitest"
import { Batch, builtinTransforms, Pipeline, PipelineFile, ProductImage, Registry, Runner, Source, StateStore } from "@effetl/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"
import { inspect } from "node:util"
import { plugins, postgres, postgresState, sqlite, sqliteState } from "../src/index.js"
import * as SqlSink from "../src/SqlSink.js"
import * as SqlStateStore from "../src/SqlStateStore.js"
import { backends, context, pgUrl, schemaName, sqliteReader, tmp, withSchema } from "./Support.js"

/** A Postgres state store on its own pool (the shared one would hand back the same client). */
const pgReaderStore = (schema: string) =>
  SqlStateStore.make({ target: { _tag: "postgres", url: Redacted.make(`${pgUrl}${pgUrl.includes("?") ? "&" : "?"}application_name=other`) }, schema, table: "effetl_state" })

const state: StateStore.PipelineState = {
  run: { id: "r1", status: "running", startedAt: "2024-01-01T00:00:00.000Z" },
  sources: { shop: { checkpoint: Batch.cursor({ token: "abc", n: 5 }), done: false } },
  sinks: { db: { table: "product_images", mode: "merge", commits: 3 } },
  transforms: { "0:dedupe-by-hash": ["sha256:x"] }
}

for (const backend of backends) {
  describe(`${backend.name} state store`, () => {
    it.effect("saves, loads and resets a pipeline's state in its table; a corrupt row is an error, never reset", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          const open = Effect.scoped(Effect.flatMap(SqlStateStore.make({ target: db.target, schema: db.schema, table: "effetl_state" }), (s) => Effect.succeed(s)))
          const store = yield* SqlStateStore.make({ target: db.target, schema: db.schema, table: "effetl_state" })
          expect(yield* store.load("p")).toEqual(StateStore.empty)
          yield* store.save("p", state)
          yield* store.save("other", StateStore.empty)
          expect(yield* store.load("p")).toEqual(state)
          yield* store.save("p", { ...state, run: { ...state.run!, status: "finished" } })
          expect((yield* store.load("p")).run?.status).toBe("finished")
          // another store on the same table sees it
          expect((yield* Effect.flatMap(open, (s) => s.load("p"))).run?.status).toBe("finished")
          yield* store.reset("p")
          expect(yield* store.load("p")).toEqual(StateStore.empty)
          expect(yield* store.load("other")).toEqual(StateStore.empty)
          expect(store.location).toContain("effetl_state")
          // corrupt
          yield* store.save("p", state)
          const bad = backend.name === "postgres" ? `'{"run": 5}'::jsonb` : `'{"run": 5}'`
          yield* db.query(`UPDATE ${db.q("effetl_state")} SET state = ${bad} WHERE pipeline = 'p'`)
          const e = yield* Effect.flip(store.load("p"))
          expect(e._tag).toBe("StateError")
          expect(e.message).toContain("the state of pipeline 'p' is corrupt")
          const [row] = yield* db.query<{ state: unknown }>(`SELECT state FROM ${db.q("effetl_state")} WHERE pipeline = 'p'`)
          expect(typeof row!.state === "string" ? JSON.parse(row!.state) : row!.state).toEqual({ run: 5 })
        })
      ))

    it.effect("offers its database's transaction under the same key as a sink on that database, and no other", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          const store = yield* SqlStateStore.make({ target: db.target, schema: db.schema, table: "effetl_state" })
          const same = yield* SqlSink.make({ target: db.target, schema: db.schema, table: "product_images", mode: "merge" }, context("r1"))
          const elsewhere = yield* SqlSink.make({ target: { _tag: "sqlite", path: path.join(tmp(), "other.db") }, table: "product_images", mode: "merge" }, context("r1"))
          expect(store.transaction?.database).toBe(same.database)
          expect(store.transaction?.database).not.toBe(elsewhere.database)
          expect(same.database).not.toContain("postgres://")
          // A failure inside the transaction rolls back a save made in it.
          yield* store.save("p", state)
          const failed = yield* store.transaction!.run(
            Effect.zipRight(store.save("p", StateStore.empty), Effect.fail("boom" as const))
          ).pipe(Effect.exit)
          expect(Exit.isFailure(failed)).toBe(true)
          expect(yield* store.load("p")).toEqual(state)
        }).pipe(Effect.scoped)
      ))
  })
}

/** Two products, one batch each, position checkpoints. */
const twoProducts = Source.define({
  name: "two",
  description: "test source",
  config: Schema.Struct({}),
  make: (_c, ctx) =>
    Effect.succeed({
      productComplete: true,
      check: Effect.void,
      stream: Stream.fromIterable([0, 1]).pipe(
        Stream.map((p) =>
          Batch.make(
            [ProductImage.unchecked({
              source: ctx.name, productId: String(p), imageId: "a", position: 1, url: null, filename: null, width: null, height: null,
              alt: null, contentHash: null, createdAt: null, updatedAt: null, extra: {}
            })],
            Option.some(Batch.position(p))
          )
        )
      )
    })
})

describe("postgres state store: the run lock", () => {
  it.effect("one holder per pipeline across clients; released when its scope ends; other pipelines unaffected", () =>
    withSchema((schema) =>
      Effect.gen(function*() {
        const options = { target: { _tag: "postgres", url: Redacted.make(pgUrl) }, schema, table: "effetl_state" } as const
        const first = yield* SqlStateStore.make(options)
        // another client on the same table, as another process would be (a fresh pool: not the shared one)
        const second = yield* Effect.scoped(
          Effect.gen(function*() {
            const held = yield* Effect.scoped(Effect.gen(function*() {
              yield* first.lock!("p")
              // the same pipeline through a separate connection: refused at once
              const pg = yield* pgReaderStore(schema)
              const refused = yield* Effect.flip(Effect.scoped(pg.lock!("p")))
              yield* Effect.scoped(pg.lock!("other"))
              return refused
            }))
            expect(held.message).toContain("cannot take the run lock of pipeline 'p'")
            expect(held.message).toContain("another process")
            // released with the first scope
            const pg = yield* pgReaderStore(schema)
            yield* Effect.scoped(pg.lock!("p"))
            return "taken"
          })
        )
        expect(second).toBe("taken")
      }).pipe(Effect.scoped)
    ))
})

describe("state and sinks on different databases", () => {
  it.effect("a SQLite state store with sinks on another SQLite file and on Postgres: each commits on its own database", () =>
    withSchema((schema, pg) =>
      Effect.gen(function*() {
        const dir = tmp()
        const pipeline = yield* Pipeline.make({
          name: "mixed",
          statePath: path.join(dir, "state.json"),
          deadLetterPath: path.join(dir, "dead.jsonl"),
          everyRecords: 1,
          stateStore: { use: sqliteState, with: { path: path.join(dir, "state.db") } },
          sources: { shop: { use: twoProducts } },
          sinks: {
            same: { use: sqlite, with: { path: path.join(dir, "state.db"), table: "images" } },
            file: { use: sqlite, with: { path: path.join(dir, "images.db") } },
            pg: { use: postgres, with: { url: pgUrl, schema } }
          }
        })
        const summary = yield* Runner.runNode(pipeline)
        expect(summary.status).toBe("finished")
        const count = (file: string, table: string) =>
          Effect.scoped(Effect.flatMap(sqliteReader(file), (r) => r.unsafe<{ n: number }>(`SELECT count(*) AS n FROM "${table}"`)))
        expect((yield* count(path.join(dir, "state.db"), "images"))[0]!.n).toBe(2)
        expect((yield* count(path.join(dir, "images.db"), "product_images"))[0]!.n).toBe(2)
        expect(Number((yield* pg.unsafe<{ n: unknown }>(`SELECT count(*) AS n FROM "${schema}".product_images`).pipe(Effect.orDie))[0]!.n)).toBe(2)
        const rows = yield* Effect.scoped(Effect.flatMap(sqliteReader(path.join(dir, "state.db")), (r) => r.unsafe<{ state: string }>(`SELECT state FROM effetl_state`)))
        const saved = JSON.parse(rows[0]!.state) as StateStore.PipelineState
        expect(saved.run?.status).toBe("finished")
        expect(Object.keys(saved.sinks).sort()).toEqual(["file", "pg", "same"])
      })
    ))
})

/** Images of three products spread over batches (ordered by image id, as the Akinon list is): not product-complete. */
const spread = Source.define({
  name: "spread",
  description: "test source",
  config: Schema.Struct({}),
  make: (_c, ctx) =>
    Effect.succeed({
      productComplete: false,
      check: Effect.void,
      stream: Stream.fromIterable([[["1", "a", 3], ["2", "b", 1]], [["3", "c", 2], ["1", "d", 1]], [["2", "e", 5], ["3", "f", 1]]] as const).pipe(
        Stream.zipWithIndex,
        Stream.map(([items, page]) =>
          Batch.make(
            items.map(([productId, imageId, position]) =>
              ProductImage.unchecked({
                source: ctx.name, productId, imageId, position, url: null, filename: null, width: null, height: null,
                alt: null, contentHash: null, createdAt: null, updatedAt: null, extra: {}
              })
            ),
            Option.some(Batch.position(page))
          )
        )
      )
    })
})

describe("product grouping and a small buffer", () => {
  it.effect("a grouped source's whole catalogue reaches one commit through the work table, in the state's transaction", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const file = path.join(dir, "images.db")
      const pipeline = yield* Pipeline.make({
        name: "grouped",
        statePath: path.join(dir, "state.json"),
        deadLetterPath: path.join(dir, "dead.jsonl"),
        everyRecords: 1,
        stateStore: { use: sqliteState, with: { path: file } },
        sources: { shop: { use: spread } },
        transforms: [{ use: builtinTransforms.find((t) => t.name === "normalise-sequence")! }],
        sinks: { db: { use: sqlite, with: { path: file, maxBuffered: 2 } } }
      })
      expect((yield* Runner.runNode(pipeline)).status).toBe("finished")
      const q = <A extends object>(sql: string) => Effect.scoped(Effect.flatMap(sqliteReader(file), (r) => r.unsafe<A>(sql)))
      const rows = yield* q<{ product_id: string; image_id: string; position: number }>(
        `SELECT product_id, image_id, position FROM product_images ORDER BY product_id, position`
      )
      expect(rows.map((r) => `${r.product_id}/${r.image_id}@${r.position}`)).toEqual(["1/d@1", "1/a@2", "2/b@1", "2/e@2", "3/f@1", "3/c@2"])
      expect(yield* q(`SELECT * FROM product_images__pending`)).toEqual([])
      const [state] = yield* q<{ state: string }>(`SELECT state FROM effetl_state`)
      expect((JSON.parse(state!.state) as StateStore.PipelineState).run?.status).toBe("finished")
    }))
})

describe("pipeline files", () => {
  it.effect("state: { use: sqlite } and a sqlite sink from YAML: the run keeps its state in the database, where peek finds it", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const registry = Registry.make({ sources: [twoProducts], transforms: [], sinks: [...plugins.sinks], stateStores: plugins.stateStores })
      const file = path.join(dir, "pipeline.yaml")
      const db = path.join(dir, "out", "images.db")
      fs.writeFileSync(
        file,
        `version: 1
name: yaml-sql
state: { use: sqlite, with: { path: "\${DB}" }, path: ${JSON.stringify(path.join(dir, ".effetl", "state.json"))} }
deadLetter: { path: ${JSON.stringify(path.join(dir, "dead.jsonl"))} }
sources:
  shop: { use: two }
sinks:
  db: { use: sqlite, with: { path: "\${DB}" } }
`
      )
      const pipeline = yield* PipelineFile.load(file, { registry, env: { DB: db } })
      expect(pipeline.stateStore?.plugin).toBe(sqliteState)
      const summary = yield* Runner.runNode(pipeline)
      expect(summary.statePath).toBe(`${db} (table effetl_state)`)
      // what `effetl state show` does: peek (no sources resolved), then open the store the file names
      const peeked = yield* PipelineFile.peek(file, { registry, env: { DB: db } })
      const saved = yield* Effect.flatMap(StateStore.StateStore, (s) => s.load(peeked.name)).pipe(Effect.provide(Runner.nodeLayerFor(peeked)))
      expect(saved.run?.status).toBe("finished")
      expect(saved.sinks.db).toEqual({ table: "product_images", mode: "merge", commits: 1 })
      // the JSON state file was never written; the run lock sat next to state.path and is gone
      expect(fs.readdirSync(path.join(dir, ".effetl"))).toEqual([])
      // `--state` names a JSON file: with a SQL store it is a config error
      const e = yield* Effect.flip(PipelineFile.load(file, { registry, env: { DB: db }, statePath: "x.json" }))
      expect(e.message).toContain("--state names a JSON state file")
    }))
})

describe("secrets", () => {
  const password = "s3cr3t-Pa55"
  const urls = [
    `postgres://postgres:${password}@127.0.0.1:1/test`, // nothing listens
    `postgres://postgres:${password}@127.0.0.1:5432/effetl_no_such_db_${schemaName().slice(-6)}` // the server refuses
  ]
  for (const url of urls) {
    it.effect(`a URL with a password never appears in a sink's or state store's error (${url.includes(":1/") ? "refused" : "no such database"})`, () =>
      Effect.gen(function*() {
        const sinkExit = yield* Effect.scoped(
          postgres.make({ url: Redacted.make(url), schema: undefined, table: "product_images", mode: "merge", maxBuffered: 10 }, context("r1"))
        ).pipe(Effect.provide(Runner.platformLayer), Effect.exit)
        const storeExit = yield* Effect.scoped(
          postgresState.make({ url: Redacted.make(url), schema: undefined, table: "effetl_state" })
        ).pipe(Effect.provide(Runner.platformLayer), Effect.exit)
        const exits: ReadonlyArray<Exit.Exit<unknown, unknown>> = [sinkExit, storeExit]
        for (const exit of exits) {
          expect(Exit.isFailure(exit)).toBe(true)
          if (Exit.isSuccess(exit)) continue
          const error = Cause.squash(exit.cause) as { message: string }
          expect(error.message).toMatch(/^(sink 'db'|state store) \(?postgres:\/\/127\.0\.0\.1:(1|5432)\//)
          expect(error.message).toContain("cannot open the database")
          for (const text of [error.message, Cause.pretty(exit.cause), inspect(error, { depth: 10 }), JSON.stringify(error)]) {
            expect(text).not.toContain(password)
          }
        }
      }))
  }
})
