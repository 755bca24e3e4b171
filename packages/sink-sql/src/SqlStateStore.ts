/**
 * A state store in a SQL table (`effetl_state` by default): one row per pipeline, `(pipeline,
 * state, updated_at)`, with the `PipelineState` as JSON (jsonb on Postgres). The table comes from a
 * versioned migration (`effetl_migrations_<table>`).
 *
 * It offers a `transaction` on its database, so a SQL sink writing to the same database commits in
 * the same transaction as the state save: data and state can never disagree, even on a crash
 * between the two writes. On Postgres it also holds each run's lock (an advisory lock), so one run of
 * a pipeline goes at a time even across machines, and says whether a run holds it now (`running`).
 * The run history (`effetl runs`) is part of the state, so it is kept in the same row and written by
 * the same save that records a run's end.
 */
import { StateError, StateStore } from "@effetl/core"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { qualify, quote } from "./Dialect.js"
import * as ImagesTable from "./ImagesTable.js"
import * as SqlDatabase from "./SqlDatabase.js"

/** Where a SQL state store keeps the state. */
export interface SqlStateStoreOptions {
  readonly target: SqlDatabase.Target
  /** Postgres only: the schema of the table (created if missing); none: the connection's search_path. */
  readonly schema?: string | undefined
  readonly table: string
}

/** Makes a SQL state store for the scope (it opens, or joins, the database's shared client). */
export const make = (options: SqlStateStoreOptions): Effect.Effect<StateStore.StateStore["Type"], StateError, Scope.Scope> =>
  Effect.gen(function*() {
    const base = SqlDatabase.locationOf(options.target)
    const db = yield* SqlDatabase.acquire(options.target).pipe(
      Effect.mapError((e) =>
        new StateError({ message: `state store ${base}: cannot open the database: ${SqlDatabase.describe(options.target, e)}`, path: base, cause: e })
      )
    )
    const { dialect, sql } = db
    const schema = dialect.name === "postgres" ? options.schema : undefined
    const location = `${db.location} (table ${schema ? `${schema}.` : ""}${options.table})`
    const failWith = (what: string) => (e: unknown) =>
      new StateError({ message: `state store ${location}: ${what}: ${typeof e === "string" ? e : db.scrub(SqlDatabase.messageOf(e))}`, path: location, cause: e })
    if (schema !== undefined) yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`).pipe(Effect.mapError(failWith(`cannot create schema ${schema}`)))
    const migrationsTable = schema === undefined ? `effetl_migrations_${options.table}` : `${schema}.effetl_migrations_${options.table}`
    const name = qualify(schema, options.table)
    yield* ImagesTable.runMigrations(db, migrationsTable, {
      "1_state": Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe(
          `CREATE TABLE ${name} (\n  "pipeline" ${dialect.type("text")} NOT NULL PRIMARY KEY,\n  "state" ${dialect.type("json")} NOT NULL,\n` +
            `  "updated_at" ${dialect.type("timestamp")} NOT NULL\n)`
        ))
    }).pipe(Effect.mapError(failWith("cannot create or migrate the state table")))

    const p = (i: number, t: "text" | "json" | "timestamp") => dialect.placeholder(i, t)
    const decode = Schema.decodeUnknown(StateStore.PipelineState)
    const encode = Schema.encode(StateStore.PipelineState)

    return StateStore.StateStore.of({
      location,
      load: (pipeline) =>
        Effect.gen(function*() {
          const rows = yield* sql.unsafe<{ state: unknown }>(`SELECT "state" FROM ${name} WHERE "pipeline" = ${p(1, "text")}`, [pipeline]).pipe(
            Effect.mapError(failWith(`cannot read the state of pipeline '${pipeline}'`))
          )
          if (rows.length === 0) return StateStore.empty
          const json = yield* Effect.try({ try: () => dialect.readJson(rows[0]!.state), catch: (e) => failWith(`the state of pipeline '${pipeline}' is not JSON`)(e) })
          return yield* decode(json).pipe(
            Effect.mapError((e) =>
              failWith(`the state of pipeline '${pipeline}' is corrupt or not effetl state; fix or delete its row (it was not changed)`)(
                ParseResult.TreeFormatter.formatErrorSync(e)
              )
            )
          )
        }),
      save: (pipeline, state) =>
        Effect.gen(function*() {
          const encoded = yield* encode(state).pipe(
            Effect.mapError((e) => failWith(`cannot encode the state of pipeline '${pipeline}'`)(ParseResult.TreeFormatter.formatErrorSync(e)))
          )
          yield* sql.unsafe(
            `INSERT INTO ${name} ("pipeline", "state", "updated_at") VALUES (${p(1, "text")}, ${p(2, "json")}, ${p(3, "timestamp")}) ` +
              `ON CONFLICT ("pipeline") DO UPDATE SET "state" = excluded."state", "updated_at" = excluded."updated_at"`,
            [pipeline, JSON.stringify(encoded), dialect.timestamp(new Date())]
          ).pipe(Effect.mapError(failWith(`cannot save the state of pipeline '${pipeline}'`)))
        }),
      reset: (pipeline) =>
        sql.unsafe(`DELETE FROM ${name} WHERE "pipeline" = ${p(1, "text")}`, [pipeline]).pipe(
          Effect.asVoid,
          Effect.mapError(failWith(`cannot reset the state of pipeline '${pipeline}'`))
        ),
      // Postgres is shared between machines: hold the pipeline's run lock in it (a session advisory
      // lock on a connection reserved for the run; a killed process's lock goes with its connection).
      ...(dialect.name === "postgres"
        ? {
          lock: (pipeline: string) =>
            Effect.gen(function*() {
              const conn = yield* sql.reserve.pipe(Effect.mapError(failWith(`cannot take the run lock of pipeline '${pipeline}'`)))
              const key = `effetl:${name}:${pipeline}`
              const rows = yield* conn.execute("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [key], undefined).pipe(
                Effect.mapError(failWith(`cannot take the run lock of pipeline '${pipeline}'`))
              )
              if (rows[0]?.locked !== true) {
                return yield* Effect.fail(
                  failWith(`cannot take the run lock of pipeline '${pipeline}'`)(
                    "another process (possibly on another machine) is running it against this database; wait for it to finish, or stop it (its work is kept)"
                  )
                )
              }
              yield* Effect.addFinalizer(() =>
                conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key], undefined).pipe(Effect.ignore)
              )
            }),
          // Whether a run holds the lock: taking it (and letting it go at once) fails only then.
          running: (pipeline: string) =>
            Effect.scoped(
              Effect.gen(function*() {
                const conn = yield* sql.reserve
                const key = `effetl:${name}:${pipeline}`
                const rows = yield* conn.execute("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [key], undefined)
                if (rows[0]?.locked !== true) return true
                yield* conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key], undefined)
                return false
              })
            ).pipe(Effect.mapError(failWith(`cannot tell whether pipeline '${pipeline}' is running`)))
        }
        : {}),
      transaction: {
        database: db.key,
        run: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          sql.withTransaction(effect).pipe(
            Effect.mapError((e) => (isSqlError(e) ? failWith("the transaction failed")(e) : e))
          ) as Effect.Effect<A, E | StateError, R>
      }
    })
  })

/** A layer providing a SQL `StateStore`. */
export const layer = (options: SqlStateStoreOptions): Layer.Layer<StateStore.StateStore, StateError> =>
  Layer.scoped(StateStore.StateStore, make(options))

const isSqlError = (e: unknown): boolean => typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "SqlError"
