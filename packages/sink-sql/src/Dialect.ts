/**
 * What differs between SQLite and PostgreSQL in the statements effetl writes: column types,
 * placeholders, bound-parameter limits, null-safe comparison, value encodings and the few
 * statements that need each database's own syntax.
 */

/** A column's logical type. */
export type ColumnType = "text" | "integer" | "timestamp" | "json"

/** A SQL dialect. */
export interface Dialect {
  readonly name: "sqlite" | "postgres"
  /** At most this many bound parameters per statement (SQLite 32766, Postgres 65535). */
  readonly maxParams: number
  /** The DDL type of a logical type. */
  readonly type: (t: ColumnType) => string
  /**
   * The placeholder of the `i`-th (1-based) parameter of a type. SQLite's `?` binds by position, so
   * every statement numbers its parameters in the order they appear.
   */
  readonly placeholder: (i: number, t: ColumnType) => string
  /** How text is sent: Postgres text cannot hold U+0000, which becomes U+FFFD there; SQLite keeps it. */
  readonly text: (s: string) => string
  /** How a timestamp is sent: ISO-8601 UTC text on SQLite, a `Date` (timestamptz) on Postgres. */
  readonly timestamp: (d: Date | null) => string | Date | null
  /** How a JSON value comes back (text on SQLite, parsed on Postgres). */
  readonly readJson: (v: unknown) => unknown
  /** `a` differs from `b`, nulls included (`IS NOT` on SQLite, `IS DISTINCT FROM` on Postgres). */
  readonly differs: (a: string, b: string) => string
  /**
   * Deletes the rows of the given products whose key is not among `keys`: one statement whatever
   * the number of products (JSON arrays on SQLite, arrays on Postgres).
   */
  readonly deleteMissing: (
    table: string,
    products: ReadonlyArray<readonly [string, string]>,
    keys: ReadonlyArray<readonly [string, string, string]>
  ) => readonly [sql: string, params: ReadonlyArray<unknown>]
  /**
   * A subquery of `(source, product_id)` rows for `("source", "product_id") IN <subquery>`, its
   * parameters numbered from `from` (one JSON array on SQLite, two arrays on Postgres).
   */
  readonly productsIn: (from: number, products: ReadonlyArray<readonly [string, string]>) => readonly [sql: string, params: ReadonlyArray<unknown>]
  /** A query returning one row `{ found }` (truthy) when the table exists. */
  readonly tableExists: (schema: string | undefined, table: string) => readonly [sql: string, params: ReadonlyArray<unknown>]
}

/** Quotes an identifier (effetl's identifiers are validated lowercase names). */
export const quote = (name: string): string => `"${name.replace(/"/g, "\"\"")}"`

/** `"schema"."table"`, or `"table"` with no schema. */
export const qualify = (schema: string | undefined, table: string): string =>
  schema === undefined ? quote(table) : `${quote(schema)}.${quote(table)}`

/** SQLite (`@effect/sql-sqlite-node`, better-sqlite3). */
export const sqlite: Dialect = {
  name: "sqlite",
  maxParams: 32766,
  type: (t) => (t === "integer" ? "INTEGER" : "TEXT"),
  placeholder: () => "?",
  text: (s) => s,
  timestamp: (d) => (d === null || Number.isNaN(d.getTime()) ? null : d.toISOString()),
  readJson: (v) => (typeof v === "string" ? JSON.parse(v) : v),
  differs: (a, b) => `${a} IS NOT ${b}`,
  deleteMissing: (table, products, keys) => [
    `DELETE FROM ${table} WHERE ("source", "product_id") IN (SELECT value ->> 0, value ->> 1 FROM json_each(?)) ` +
    `AND ("source", "product_id", "image_id") NOT IN (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?))`,
    [JSON.stringify(products), JSON.stringify(keys)]
  ],
  productsIn: (_from, products) => ["(SELECT value ->> 0, value ->> 1 FROM json_each(?))", [JSON.stringify(products)]],
  tableExists: (_schema, table) => ["SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?", [table]]
}

/** PostgreSQL (`@effect/sql-pg`, node-postgres). */
export const postgres: Dialect = {
  name: "postgres",
  maxParams: 65535,
  type: (t) => ({ text: "text", integer: "integer", timestamp: "timestamptz", json: "jsonb" })[t],
  placeholder: (i, t) => `$${i}::${({ text: "text", integer: "integer", timestamp: "timestamptz", json: "jsonb" })[t]}`,
  text: (s) => (s.includes("\u0000") ? s.replace(/\u0000/g, "\uFFFD") : s),
  timestamp: (d) => (d === null || Number.isNaN(d.getTime()) ? null : d),
  readJson: (v) => v,
  differs: (a, b) => `${a} IS DISTINCT FROM ${b}`,
  deleteMissing: (table, products, keys) => [
    `DELETE FROM ${table} AS t USING unnest($1::text[], $2::text[]) AS p("source", "product_id") ` +
    `WHERE t."source" = p."source" AND t."product_id" = p."product_id" AND NOT EXISTS (` +
    `SELECT 1 FROM unnest($3::text[], $4::text[], $5::text[]) AS k("source", "product_id", "image_id") ` +
    `WHERE k."source" = t."source" AND k."product_id" = t."product_id" AND k."image_id" = t."image_id")`,
    [products.map((p) => p[0]), products.map((p) => p[1]), keys.map((k) => k[0]), keys.map((k) => k[1]), keys.map((k) => k[2])]
  ],
  productsIn: (from, products) => [
    `(SELECT * FROM unnest($${from}::text[], $${from + 1}::text[]))`,
    [products.map((p) => p[0]), products.map((p) => p[1])]
  ],
  tableExists: (schema, table) => [
    "SELECT to_regclass($1) IS NOT NULL AS found",
    [schema === undefined ? quote(table) : `${quote(schema)}.${quote(table)}`]
  ]
}
