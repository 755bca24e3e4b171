/**
 * The table a SQL sink writes: its columns, its versioned migrations (`@effect/sql`'s Migrator, one
 * migrations table per effetl table: `effetl_migrations_<table>`), and the statements that load it.
 *
 * Columns: `source, product_id, image_id, position, url, filename, width, height, alt,
 * content_hash, created_at, updated_at` (the canonical `ProductImage` fields), `extra` (JSON;
 * jsonb on Postgres), `run_id` (the run that last changed the row) and `loaded_at` (when). The
 * key is `(source, product_id, image_id)`; a history table (append mode) keys by
 * `(run_id, source, product_id, image_id)`.
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

/** The versioned migrations of a table, by `<id>_<name>`. */
export const migrations = (dialect: Dialect, table: TableRef): Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> => ({
  [`1_${table.layout === "current" ? "images" : "image_history"}`]: Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(
      `CREATE TABLE ${qualify(table.schema, table.name)} (\n` +
        columns.map(([n, t, nullable]) => `  ${quote(n)} ${dialect.type(t)}${nullable ? "" : " NOT NULL"}`).join(",\n") +
        `,\n  CONSTRAINT ${quote(`${table.name}_pkey`)} PRIMARY KEY (${keyOf(table.layout).map(quote).join(", ")})\n)`
    ))
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
): Array<readonly [sql: string, params: ReadonlyArray<unknown>]> => {
  const perRow = columns.length
  const rowsPerStatement = Math.max(1, Math.min(1000, Math.floor(dialect.maxParams / perRow)))
  const target = qualify(table.schema, table.name)
  const key = keyOf(table.layout)
  const update = columns.map(([n]) => n).filter((n) => !key.includes(n))
  const conflict = ` ON CONFLICT (${key.map(quote).join(", ")}) DO UPDATE SET ` +
    update.map((n) => `${quote(n)} = excluded.${quote(n)}`).join(", ") +
    // Idempotent: an identical row is left alone, so its run_id and loaded_at keep saying when it last changed.
    ` WHERE ${contentColumns.map((n) => dialect.differs(`t.${quote(n)}`, `excluded.${quote(n)}`)).join(" OR ")}`
  const head = `INSERT INTO ${target} AS t (${columns.map(([n]) => quote(n)).join(", ")}) VALUES `
  const out: Array<readonly [string, ReadonlyArray<unknown>]> = []
  for (let start = 0; start < records.length; start += rowsPerStatement) {
    const chunk = records.slice(start, start + rowsPerStatement)
    const params: Array<unknown> = []
    const tuples: Array<string> = []
    for (const r of chunk) {
      const values = row(dialect, r, runId, loadedAt)
      const base = params.length
      tuples.push(`(${columns.map(([, t], i) => dialect.placeholder(base + i + 1, t)).join(", ")})`)
      params.push(...values)
    }
    out.push([head + tuples.join(", ") + conflict, params])
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
