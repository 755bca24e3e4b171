/**
 * Test support: records, a real PostgreSQL (127.0.0.1:5432, database `test`) with one schema per
 * test, temporary SQLite files, and an independent reader of each database (its own client, not the
 * sink's shared one).
 */
import { ProductImage, type Sink } from "@effetl/core"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Target } from "../src/SqlDatabase.js"

/** The test database: EFFETL_TEST_PG_URL, else PG_URL (as .ci/run sets it), else the local one. */
export const pgUrl = process.env.EFFETL_TEST_PG_URL ?? process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** A record with defaults. */
export const img = (productId: string, imageId: string, fields: Partial<ConstructorParameters<typeof ProductImage>[0]> = {}) =>
  ProductImage.unchecked({
    source: "shop",
    productId,
    imageId,
    position: 1,
    url: `https://cdn.example/${productId}/${imageId}.jpg`,
    filename: `${imageId}.jpg`,
    width: 800,
    height: 600,
    alt: null,
    contentHash: null,
    createdAt: new Date("2024-01-02T03:04:05.678Z"),
    updatedAt: null,
    extra: { vendor: { tag: "x" } },
    ...fields
  })

/** A sink context. */
export const context = (runId: string, committed: Option.Option<unknown> = Option.none(), name = "db"): Sink.SinkContext => ({
  name,
  pipeline: "p",
  runId,
  committed,
  incremental: false
})

/** A fresh temporary directory. */
export const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-sink-sql-"))

/** A unique schema name for one test. */
export const schemaName = () => `effetl_test_${crypto.randomBytes(5).toString("hex")}`

/** An independent PostgreSQL client for the scope (fails with a clear message when the server is down). */
export const pgReader = Effect.gen(function*() {
  return yield* PgClient.make({ url: Redacted.make(pgUrl), connectTimeout: "5 seconds" }).pipe(
    Effect.provide(Reactivity.layer),
    Effect.mapError((e) =>
      new Error(
        `PostgreSQL is not answering at ${pgUrl.replace(/:[^:@/]*@/, ":***@")} (${String(e.cause ?? e.message)}). ` +
          "The sink-sql tests need it: start it (.ci/run does), or set EFFETL_TEST_PG_URL."
      )
    ),
    Effect.orDie
  )
})

/** Runs `f` with a fresh schema, dropped afterwards. */
export const withSchema = <A, E, R>(f: (schema: string, pg: SqlClient.SqlClient) => Effect.Effect<A, E, R>) =>
  Effect.scoped(
    Effect.gen(function*() {
      const pg = yield* pgReader
      const schema = schemaName()
      yield* Effect.acquireRelease(pg.unsafe(`CREATE SCHEMA "${schema}"`).pipe(Effect.orDie), () =>
        pg.unsafe(`DROP SCHEMA "${schema}" CASCADE`).pipe(Effect.ignore))
      return yield* f(schema, pg)
    })
  )

/** An independent SQLite client for the scope (its own connection; the database keeps its journal mode). */
export const sqliteReader = (file: string) =>
  SqliteClient.make({ filename: file, disableWAL: true }).pipe(Effect.provide(Reactivity.layer))

/** A database under test: SQLite in a temp file, or PostgreSQL in a fresh schema. */
export interface Backend {
  readonly name: "sqlite" | "postgres"
  /** Runs `f` against a fresh database (or schema), removed afterwards. */
  readonly run: <A, E, R>(f: (db: TestDb) => Effect.Effect<A, E, R>) => Effect.Effect<A, E, Exclude<R, Scope.Scope>>
}

/** A fresh database for one test. */
export interface TestDb {
  readonly target: Target
  readonly schema: string | undefined
  /** A table's name as written in a query. */
  readonly q: (table: string) => string
  /** Runs a query with an independent client. */
  readonly query: <Row extends object = Record<string, unknown>>(sql: string, params?: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>>
}

/** The SQLite backend. */
export const sqliteBackend: Backend = {
  name: "sqlite",
  run: (f) =>
    Effect.scoped(
      Effect.suspend(() => {
        const file = path.join(tmp(), "images.db")
        return f({
          target: { _tag: "sqlite", path: file },
          schema: undefined,
          q: (t) => `"${t}"`,
          query: (sql, params) =>
            Effect.scoped(Effect.flatMap(sqliteReader(file), (r) => r.unsafe(sql, params))).pipe(Effect.orDie) as never
        })
      })
    )
}

/** The PostgreSQL backend. */
export const postgresBackend: Backend = {
  name: "postgres",
  run: (f) =>
    withSchema((schema, pg) =>
      f({
        target: { _tag: "postgres", url: Redacted.make(pgUrl) },
        schema,
        q: (t) => `"${schema}"."${t}"`,
        query: (sql, params) => pg.unsafe(sql, params).pipe(Effect.orDie) as never
      })
    ) as never
}

export const backends: ReadonlyArray<Backend> = [sqliteBackend, postgresBackend]
