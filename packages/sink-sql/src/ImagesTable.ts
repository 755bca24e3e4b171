/**
 * The table a SQL sink writes: its columns, its versioned migrations (`@effect/sql`'s Migrator, one
 * migrations table per effetl table: `effetl_migrations_<table>`), and the statements that load it.
 *
 * Columns: `source, product_id, image_id, position, url, filename, width, height, alt,
 * content_hash, created_at, updated_at` (the canonical `ProductImage` fields), `extra` (JSON;
 * jsonb on Postgres), `run_id` (the run that last changed the row) and `loaded_at` (when). The
 * key is `(source, product_id, image_id)`; a history table (append mode) keys by
 * `(run_id, source, product_id, image_id)`.
 *
 * Each table has a work table, `<table>__pending` (migration 2): when a sink's buffer outgrows its
 * bound between two commits, the records wait there, keyed by `pending_key` (the pipeline and sink),
 * and the commit moves them into the table in its transaction.
 */
import type { ProductImage } from "@effetl/core"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type { ColumnType, Dialect } from "./Dialect.js"
import { qualify, quote } from "./Dialect.js"
import { messageOf, type SqlDatabase } from "./SqlDatabase.js"

/** The columns, in order, with their types. */
export const columns: ReadonlyArray<readonly [name: string, type: ColumnType, nullable: boolean]> = [
  ["source", "text", false],
  ["product_id", "text", false],
  ["image_id", "text", false],
  ["position", "integer", false],
  ["url", "text", true],
  ["filename", "text", true],
  ["width", "integer", true],
  ["height", "integer", true],
  ["alt", "text", true],
  ["content_hash", "text", true],
  ["created_at", "timestamp", true],
  ["updated_at", "timestamp", true],
  ["extra", "json", false],
  ["run_id", "text", false],
  ["loaded_at", "timestamp", false]
]

/** The columns whose change makes a row different (not `run_id` and `loaded_at`). */
const contentColumns = columns.map(([n]) => n).filter((n) => n !== "run_id" && n !== "loaded_at" && n !== "source" && n !== "product_id" && n !== "image_id")

/** The table layouts: `current` (one row per image) and `history` (one row per image per run). */
export type Layout = "current" | "history"

/** The key columns of a layout. */
export const keyOf = (layout: Layout): ReadonlyArray<string> =>
  layout === "current" ? ["source", "product_id", "image_id"] : ["run_id", "source", "product_id", "image_id"]

/** A table: where it is and its layout. */
export interface TableRef {
  readonly schema: string | undefined
  readonly name: string
  readonly layout: Layout
}

/** The migrations table of an effetl table. */
export const migrationsTable = (table: TableRef): string =>
  table.schema === undefined ? `effetl_migrations_${table.name}` : `${table.schema}.effetl_migrations_${table.name}`

/** The work table of a table (see the module's doc). */
export const pendingOf = (table: TableRef): TableRef => ({ schema: table.schema, name: `${table.name}__pending`, layout: table.layout })

/** The work table's columns: the sink's key, whether the record's product came complete, then the table's. */
const pendingColumns: ReadonlyArray<readonly [name: string, type: ColumnType, nullable: boolean]> = [
  ["pending_key", "text", false],
  ["complete", "integer", false],
  ...columns
]

const createTable = (
  dialect: Dialect,
  table: TableRef,
  cols: ReadonlyArray<readonly [string, ColumnType, boolean]>,
  key: ReadonlyArray<string>
): Effect.Effect<void, unknown, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(
      `CREATE TABLE ${qualify(table.schema, table.name)} (\n` +
        cols.map(([n, t, nullable]) => `  ${quote(n)} ${dialect.type(t)}${nullable ? "" : " NOT NULL"}`).join(",\n") +
        `,\n  CONSTRAINT ${quote(`${table.name}_pkey`)} PRIMARY KEY (${key.map(quote).join(", ")})\n)`
    ))

/**
 * The versioned migrations of a table, by `<id>_<name>`: 1 the table, 2 its work table (not for a
 * replace run's staging table, which uses its target's).
 */
export const migrations = (
  dialect: Dialect,
  table: TableRef,
  options: { readonly pending: boolean } = { pending: true }
): Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> => ({
  [`1_${table.layout === "current" ? "images" : "image_history"}`]: createTable(dialect, table, columns, keyOf(table.layout)),
  ...(options.pending
    ? { "2_pending": createTable(dialect, pendingOf(table), pendingColumns, ["pending_key", "source", "product_id", "image_id"]) }
    : {})
})

/**
 * Brings a table to its latest migration (creating it if missing) and checks that it was made for
 * the same layout. Fails with a message (secrets removed).
 */
export const migrate = (db: SqlDatabase, table: TableRef, all: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>) =>
  runMigrations(db, migrationsTable(table), all).pipe(
    Effect.zipRight(
      Effect.flatMap(
        db.sql.unsafe<{ name: string }>(`SELECT name FROM ${qualify(...splitName(migrationsTable(table)))} WHERE migration_id = 1`),
        (rows) => {
          const expected = Object.keys(all)[0]!.replace(/^\d+_/, "")
          return rows[0]?.name === expected || rows.length === 0
            ? Effect.void
            : Effect.fail(
              `table ${table.name} was created as '${rows[0]!.name}', not '${expected}' (a table written in append mode ` +
                "holds one row per image per run, the other modes one row per image): give this sink another table"
            )
        }
      )
    ),
    Effect.mapError((e) => (typeof e === "string" ? e : `could not create or migrate table ${table.name}: ${db.scrub(messageOf(e))}`))
  )

/** Runs migrations into `migrationsTable`; a failed migration (a defect in the Migrator) becomes a failure. */
export const runMigrations = (
  db: SqlDatabase,
  migrationsTable: string,
  all: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>
): Effect.Effect<void, unknown> =>
  Migrator.make({})({ loader: Migrator.fromRecord(all), table: migrationsTable }).pipe(
    Effect.provideService(SqlClient.SqlClient, db.sql),
    Effect.catchAllDefect((defect) => Effect.fail(defect)),
    Effect.catchAllCause((cause) => Effect.fail(Cause.squash(cause))),
    Effect.asVoid
  )

/** Whether a table exists. */
export const exists = (db: SqlDatabase, schema: string | undefined, name: string) => {
  const [text, params] = db.dialect.tableExists(schema, name)
  return Effect.map(db.sql.unsafe<{ found: unknown }>(text, params), (rows) => rows.length > 0 && Boolean(rows[0]!.found))
}

/** The statements that upsert records: multi-row VALUES, chunked under the dialect's parameter limit. */
export const upserts = (
  dialect: Dialect,
  table: TableRef,
  records: ReadonlyArray<ProductImage>,
  runId: string,
  loadedAt: Date
): Array<readonly [sql: string, params: ReadonlyArray<unknown>]> =>
  insertValues(
    dialect,
    `INSERT INTO ${qualify(table.schema, table.name)} AS t (${columns.map(([n]) => quote(n)).join(", ")}) VALUES `,
    columns.map(([, t]) => t),
    records.map((r) => row(dialect, r, runId, loadedAt)),
    conflict(dialect, table)
  )

/** The statements that stage records in the work table under `key` (the last write of an image wins). */
export const stage = (
  dialect: Dialect,
  table: TableRef,
  key: string,
  products: ReadonlyArray<{ readonly complete: boolean; readonly records: ReadonlyArray<ProductImage> }>,
  runId: string
): Array<readonly [sql: string, params: ReadonlyArray<unknown>]> => {
  const pending = pendingOf(table)
  const out: Array<readonly [string, ReadonlyArray<unknown>]> = []
  // A product that comes complete replaces what was staged for it.
  const complete = products.filter((p) => p.complete && p.records.length > 0).map((p) => [dialect.text(p.records[0]!.source), dialect.text(p.records[0]!.productId)] as const)
  if (complete.length > 0) {
    const [subquery, params] = dialect.productsIn(2, complete)
    out.push([
      `DELETE FROM ${qualify(pending.schema, pending.name)} WHERE "pending_key" = ${dialect.placeholder(1, "text")} AND ("source", "product_id") IN ${subquery}`,
      [key, ...params]
    ])
  }
  const rows = products.flatMap((p) => p.records.map((r) => [key, p.complete ? 1 : 0, ...row(dialect, r, runId, new Date(0))]))
  out.push(
    ...insertValues(
      dialect,
      `INSERT INTO ${qualify(pending.schema, pending.name)} AS t (${pendingColumns.map(([n]) => quote(n)).join(", ")}) VALUES `,
      pendingColumns.map(([, t]) => t),
      rows,
      ` ON CONFLICT ("pending_key", "source", "product_id", "image_id") DO UPDATE SET ` +
        pendingColumns.slice(1).map(([n]) => `${quote(n)} = excluded.${quote(n)}`).join(", ")
    )
  )
  return out
}

/**
 * The statements that move the records staged under `key` into `into` (the table, or a replace run's
 * staging table): the delete of what complete products no longer hold (unless `deleteMissing` is off),
 * the upsert, and the emptying of the work table.
 */
export const fromPending = (
  dialect: Dialect,
  table: TableRef,
  into: TableRef,
  key: string,
  runId: string,
  loadedAt: Date,
  deleteMissing: boolean
): Array<readonly [sql: string, params: ReadonlyArray<unknown>]> => {
  const p = (i: number, t: ColumnType) => dialect.placeholder(i, t)
  const pending = qualify(pendingOf(table).schema, pendingOf(table).name)
  const target = qualify(into.schema, into.name)
  const out: Array<readonly [string, ReadonlyArray<unknown>]> = []
  if (deleteMissing) {
    out.push([
      `DELETE FROM ${target} WHERE ("source", "product_id") IN (SELECT "source", "product_id" FROM ${pending} WHERE "pending_key" = ${p(1, "text")} AND "complete" = 1) ` +
      `AND NOT EXISTS (SELECT 1 FROM ${pending} AS k WHERE k."pending_key" = ${p(2, "text")} AND k."source" = ${target}."source" ` +
      `AND k."product_id" = ${target}."product_id" AND k."image_id" = ${target}."image_id")`,
      [key, key]
    ])
  }
  // Parameters numbered in the order they appear (run_id comes before loaded_at among the columns).
  const values = columns.map(([n]) => (n === "run_id" ? p(1, "text") : n === "loaded_at" ? p(2, "timestamp") : `s.${quote(n)}`))
  out.push([
    `INSERT INTO ${target} AS t (${columns.map(([n]) => quote(n)).join(", ")}) SELECT ${values.join(", ")} FROM ${pending} AS s ` +
    `WHERE s."pending_key" = ${p(3, "text")}${conflict(dialect, into)}`,
    [runId, dialect.timestamp(loadedAt), key]
  ])
  out.push([`DELETE FROM ${pending} WHERE "pending_key" = ${p(1, "text")}`, [key]])
  return out
}

/** The statements that empty the work table of `key` (a killed run's staged records: never committed). */
export const clearPending = (dialect: Dialect, table: TableRef, key: string): readonly [sql: string, params: ReadonlyArray<unknown>] => [
  `DELETE FROM ${qualify(pendingOf(table).schema, pendingOf(table).name)} WHERE "pending_key" = ${dialect.placeholder(1, "text")}`,
  [key]
]

/** `ON CONFLICT` on the table's key: update a row only when its content differs. */
const conflict = (dialect: Dialect, table: TableRef): string => {
  const key = keyOf(table.layout)
  const update = columns.map(([n]) => n).filter((n) => !key.includes(n))
  return ` ON CONFLICT (${key.map(quote).join(", ")}) DO UPDATE SET ` +
    update.map((n) => `${quote(n)} = excluded.${quote(n)}`).join(", ") +
    // Idempotent: an identical row is left alone, so its run_id and loaded_at keep saying when it last changed.
    ` WHERE ${contentColumns.map((n) => dialect.differs(`t.${quote(n)}`, `excluded.${quote(n)}`)).join(" OR ")}`
}

/** Multi-row `head (..), (..) tail` statements, chunked under the dialect's parameter limit (at most 1,000 rows each). */
const insertValues = (
  dialect: Dialect,
  head: string,
  types: ReadonlyArray<ColumnType>,
  rows: ReadonlyArray<ReadonlyArray<unknown>>,
  tail: string
): Array<readonly [string, ReadonlyArray<unknown>]> => {
  const rowsPerStatement = Math.max(1, Math.min(1000, Math.floor(dialect.maxParams / types.length)))
  const out: Array<readonly [string, ReadonlyArray<unknown>]> = []
  for (let start = 0; start < rows.length; start += rowsPerStatement) {
    const params: Array<unknown> = []
    const tuples: Array<string> = []
    for (const values of rows.slice(start, start + rowsPerStatement)) {
      const base = params.length
      tuples.push(`(${types.map((t, i) => dialect.placeholder(base + i + 1, t)).join(", ")})`)
      params.push(...values)
    }
    out.push([head + tuples.join(", ") + tail, params])
  }
  return out
}

/** A record's values in column order. */
export const row = (dialect: Dialect, r: ProductImage, runId: string, loadedAt: Date): Array<unknown> => {
  const text = (s: string | null) => (s === null ? null : dialect.text(s))
  return [
    text(r.source),
    text(r.productId),
    text(r.imageId),
    r.position,
    text(r.url),
    text(r.filename),
    r.width,
    r.height,
    text(r.alt),
    text(r.contentHash),
    dialect.timestamp(r.createdAt),
    dialect.timestamp(r.updatedAt),
    canonicalJson(r.extra, dialect.text),
    runId,
    dialect.timestamp(loadedAt)
  ]
}

/** JSON with object keys sorted, so the same value always gives the same text; `text` maps every string and key. */
export const canonicalJson = (value: unknown, text: (s: string) => string = (s) => s): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "string"
      ? text(v)
      : v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
        Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [text(k), x])
      )
      : v) ?? "null"

/** `schema.name` → `[schema, name]`. */
export const splitName = (qualified: string): [string | undefined, string] => {
  const i = qualified.indexOf(".")
  return i < 0 ? [undefined, qualified] : [qualified.slice(0, i), qualified.slice(i + 1)]
}
