/**
 * A SQL sink instance: buffers a commit interval's records in memory, then writes them in one
 * transaction (a delete of what product-complete batches no longer hold, then multi-row upserts),
 * following core's commit protocol. It is a `TransactionalSink`: when the pipeline's state lives
 * in the same database, the runner runs its commit inside the state store's transaction.
 *
 * Memory is bounded: beyond `maxBuffered` records between two commits (commits wait while product
 * grouping merges, so one commit may hold a whole catalogue) the buffer is staged in the table's work
 * table, `<table>__pending`, and the commit moves it into the table inside its transaction. A killed
 * run's staged records were never committed: the next run of the sink discards them.
 *
 * Modes:
 * - `merge` (default): upsert by `(source, product_id, image_id)`; for a product-complete batch,
 *   also delete that product's rows that are not in the batch. An identical row is not touched.
 * - `append`: a history table keyed by `(run_id, source, product_id, image_id)`: each run adds its
 *   rows and never changes another run's.
 * - `replace`: write into `<table>__staging`, then at the end of the run swap it in (drop the table,
 *   rename the staging table) in one transaction. A killed run leaves the table as it was and is
 *   resumed into the staging table.
 */
import { type ProductImage, Sink, SinkError, type StateStore } from "@effetl/core"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { qualify, quote } from "./Dialect.js"
import * as ImagesTable from "./ImagesTable.js"
import * as SqlDatabase from "./SqlDatabase.js"

/** How a SQL sink loads its table. */
export const Mode = Schema.Literal("merge", "append", "replace")
export type Mode = typeof Mode.Type

/** What a SQL sink writes where. */
export interface SqlSinkOptions {
  readonly target: SqlDatabase.Target
  /** Postgres only: the schema of the table (created if missing); none: the connection's search_path. */
  readonly schema?: string | undefined
  readonly table: string
  readonly mode: Mode
  /** Records held in memory between two commits before they are staged in the database (default 10,000). */
  readonly maxBuffered?: number | undefined
}

/** Records a sink holds in memory between two commits by default. */
export const defaultMaxBuffered = 10_000

/** The token a SQL sink's commit returns (saved in the pipeline's state). */
export interface SqlSinkToken {
  readonly table: string
  readonly mode: Mode
  readonly commits: number
}

/** Makes a SQL sink instance for the scope (it opens, or joins, the database's shared client). */
export const make = (
  options: SqlSinkOptions,
  context: Sink.SinkContext
): Effect.Effect<StateStore.TransactionalSink, SinkError, Scope.Scope> =>
  Effect.gen(function*() {
    // A trial run (--limit) loads its own table, never the real one.
    if (context.trial === true) options = { ...options, table: Sink.trialTable(options.table) }
    const where = `sink '${context.name}' (${SqlDatabase.locationOf(options.target)}, table ${options.schema ? `${options.schema}.` : ""}${options.table})`
    const fail = (what: string) => (e: unknown) =>
      new SinkError({ sink: context.name, message: `${where}: ${what}: ${typeof e === "string" ? e : SqlDatabase.describe(options.target, e)}`, cause: e })

    const db = yield* SqlDatabase.acquire(options.target).pipe(Effect.mapError(fail("cannot open the database")))
    const { dialect, sql } = db
    const schema = dialect.name === "postgres" ? options.schema : undefined
    if (schema !== undefined) yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`).pipe(Effect.mapError(fail(`cannot create schema ${schema}`)))
    const table: ImagesTable.TableRef = { schema, name: options.table, layout: options.mode === "append" ? "history" : "current" }
    yield* ImagesTable.migrate(db, table, ImagesTable.migrations(dialect, table)).pipe(Effect.mapError(fail("cannot prepare the table")))

    /** Drops a staging table and its migrations table. */
    const dropStaging = (t: ImagesTable.TableRef): Effect.Effect<void, SqlError> =>
      sql.withTransaction(
        Effect.zipRight(
          sql.unsafe(`DROP TABLE IF EXISTS ${qualify(t.schema, t.name)}`),
          sql.unsafe(`DROP TABLE IF EXISTS ${qualify(...ImagesTable.splitName(ImagesTable.migrationsTable(t)))}`)
        )
      )

    // Replace mode writes into a staging table, swapped in at the end.
    const staging: ImagesTable.TableRef = { ...table, name: `${table.name}__staging` }
    let published = false
    if (options.mode === "replace") {
      const resuming = Option.isSome(context.committed)
      const stagingExists = yield* ImagesTable.exists(db, schema, staging.name).pipe(Effect.mapError(fail("cannot inspect the database")))
      if (!resuming) {
        // Left by a run that was discarded (--restart, --full-refresh): start this run's staging afresh.
        yield* dropStaging(staging).pipe(Effect.mapError(fail(`cannot drop the old staging table ${staging.name}`)))
      } else if (!stagingExists) {
        // The swap is one transaction: no staging table means this run's output was already swapped in,
        // unless the table holds rows of another run.
        const rows = yield* sql.unsafe<{ other: unknown }>(
          `SELECT count(*) AS other FROM ${qualify(schema, table.name)} WHERE "run_id" <> ${dialect.placeholder(1, "text")}`,
          [context.runId]
        ).pipe(Effect.mapError(fail("cannot inspect the table")))
        if (Number(rows[0]?.other ?? 0) > 0) {
          return yield* Effect.fail(
            fail("cannot resume")(
              `the staging table ${staging.name} of run ${context.runId} is gone and ${table.name} holds another run's rows; ` +
                "rerun with --restart to load the table again"
            )
          )
        }
        published = true
      }
      if (!published) {
        yield* ImagesTable.migrate(db, staging, ImagesTable.migrations(dialect, staging, { pending: false })).pipe(
          Effect.mapError(fail("cannot prepare the staging table"))
        )
      }
    }
    const writeTo = options.mode === "replace" ? staging : table
    const writeName = qualify(writeTo.schema, writeTo.name)
    // Records this sink staged before a kill were never committed (the source replays them): discard them.
    const pendingKey = `${context.pipeline}/${context.name}`
    const run = (statements: ReadonlyArray<readonly [string, ReadonlyArray<unknown>]>) =>
      Effect.forEach(statements, ([text, params]) => sql.unsafe(text, params), { discard: true })
    yield* run([ImagesTable.clearPending(dialect, table, pendingKey)]).pipe(Effect.mapError(fail("cannot clear the work table")))
    const maxBuffered = options.maxBuffered ?? defaultMaxBuffered
    let buffered = 0
    let staged = false

    // The commit interval's records by product (the last write of an image wins).
    interface Product {
      readonly source: string
      readonly productId: string
      complete: boolean
      images: Map<string, ProductImage>
    }
    const products = new Map<string, Product>()
    let commits = Option.match(context.committed, {
      onNone: () => 0,
      onSome: (t) => (typeof t === "object" && t !== null && typeof (t as SqlSinkToken).commits === "number" ? (t as SqlSinkToken).commits : 0)
    })
    const token = (): SqlSinkToken => ({ table: writeTo.name, mode: options.mode, commits })

    const write = (records: Chunk.Chunk<ProductImage>, info: Sink.WriteInfo): Effect.Effect<void, SinkError> =>
      Effect.suspend(() => {
        if (Chunk.isEmpty(records)) return Effect.void
        if (published) return Effect.fail(fail("cannot write")(`run ${context.runId} was already swapped into ${table.name}`))
        const batch = new Map<string, Array<ProductImage>>()
        for (const r of records) {
          const k = `${r.source}\u0000${r.productId}`
          const list = batch.get(k)
          if (list) list.push(r)
          else batch.set(k, [r])
        }
        for (const [k, list] of batch) {
          const first = list[0]!
          const prev = products.get(k)
          // A product-complete batch holds the product's whole gallery: it replaces what was buffered.
          if (info.productComplete && options.mode !== "append") {
            products.set(k, { source: first.source, productId: first.productId, complete: true, images: new Map(list.map((r) => [r.imageId, r])) })
          } else {
            const p = prev ?? { source: first.source, productId: first.productId, complete: false, images: new Map() }
            for (const r of list) p.images.set(r.imageId, r)
            products.set(k, p)
          }
        }
        buffered = 0
        for (const p of products.values()) buffered += p.images.size
        return buffered > maxBuffered
          ? sql.withTransaction(stageBuffer).pipe(Effect.mapError(fail(`cannot stage ${buffered} rows in ${table.name}__pending`)))
          : Effect.void
      })

    /** Moves the buffer into the work table. */
    const stageBuffer = Effect.suspend(() => {
      const statements = ImagesTable.stage(
        dialect,
        table,
        pendingKey,
        [...products.values()].map((p) => ({ complete: p.complete && options.mode !== "append", records: [...p.images.values()] })),
        context.runId
      )
      return Effect.tap(run(statements), () =>
        Effect.sync(() => {
          products.clear()
          buffered = 0
          staged = true
        }))
    })

    const commit: Effect.Effect<unknown, SinkError> = Effect.gen(function*() {
      if (staged) {
        const loadedAt = new Date(yield* Clock.currentTimeMillis)
        yield* sql.withTransaction(
          Effect.zipRight(
            stageBuffer,
            Effect.suspend(() => run(ImagesTable.fromPending(dialect, table, writeTo, pendingKey, context.runId, loadedAt, options.mode !== "append")))
          )
        ).pipe(Effect.mapError(fail("cannot commit the staged rows")))
        staged = false
        commits++
        return token()
      }
      if (products.size === 0) return token()
      const loadedAt = new Date(yield* Clock.currentTimeMillis)
      const all = [...products.values()]
      const records = all.flatMap((p) => [...p.images.values()])
      const complete = all.filter((p) => p.complete)
      const statements: Array<readonly [string, ReadonlyArray<unknown>]> = []
      if (complete.length > 0) {
        statements.push(
          dialect.deleteMissing(
            writeName,
            complete.map((p) => [dialect.text(p.source), dialect.text(p.productId)] as const),
            complete.flatMap((p) => [...p.images.keys()].map((id) => [dialect.text(p.source), dialect.text(p.productId), dialect.text(id)] as const))
          )
        )
      }
      statements.push(...ImagesTable.upserts(dialect, writeTo, records, context.runId, loadedAt))
      yield* sql.withTransaction(run(statements)).pipe(Effect.mapError(fail(`cannot commit ${records.length} rows`)))
      products.clear()
      buffered = 0
      commits++
      return token()
    })

    /** Drops the table and renames the staging table in its place, in one transaction. */
    const swap: Effect.Effect<void, SinkError> = Effect.suspend(() => {
      if (published) return Effect.void
      const statements = [
        `DROP TABLE IF EXISTS ${qualify(schema, table.name)}`,
        `ALTER TABLE ${qualify(schema, staging.name)} RENAME TO ${quote(table.name)}`,
        ...(dialect.name === "postgres"
          ? [`ALTER TABLE ${qualify(schema, table.name)} RENAME CONSTRAINT ${quote(`${staging.name}_pkey`)} TO ${quote(`${table.name}_pkey`)}`]
          : []),
        `DROP TABLE IF EXISTS ${qualify(...ImagesTable.splitName(ImagesTable.migrationsTable(staging)))}`
      ]
      return sql.withTransaction(Effect.forEach(statements, (s) => sql.unsafe(s), { discard: true })).pipe(
        Effect.tap(() => Effect.sync(() => (published = true))),
        Effect.mapError(fail(`cannot swap ${staging.name} into ${table.name}`))
      )
    })

    return {
      database: db.key,
      write,
      commit,
      finish: options.mode === "replace" ? swap : Effect.void,
      cleanup: Effect.void
    }
  })
