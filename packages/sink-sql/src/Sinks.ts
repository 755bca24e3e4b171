/**
 * The `sqlite` and `postgres` sink plugins: their config specs, read into `SqlSink.make`.
 */
import { Config, Sink } from "@effetl/core"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import * as SqlDatabase from "./SqlDatabase.js"
import * as SqlSink from "./SqlSink.js"

/** The `path` of a SQLite database. */
export const sqlitePathField = Config.withDefault(Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" })), "out/images.db", {
  description: "The SQLite database file (created with its directories if missing).",
  examples: ["out/images.db"]
})

/** The `url` of a PostgreSQL database: a secret. */
export const postgresUrlField = Config.secret({
  description:
    "The PostgreSQL connection URL, postgres://user:password@host:port/database. A secret: use ${PG_URL}; it never appears in logs or errors.",
  examples: ["${PG_URL}"]
})

/** The `schema` of a Postgres table. */
export const schemaField = Config.optional(SqlDatabase.Identifier, {
  description: "The schema of the table (created if missing). Leave it out for the connection's search_path (usually public).",
  examples: ["effetl"]
})

const tableField = Config.withDefault(SqlDatabase.Identifier, "product_images", {
  description:
    "The table (lowercase letters, digits and _; at most 32 characters). Created if missing by a versioned migration recorded in effetl_migrations_<table>.",
  examples: ["product_images"]
})

const modeField = Config.withDefault<SqlSink.Mode, SqlSink.Mode>(SqlSink.Mode, "merge", {
  description:
    "merge: upsert by (source, product_id, image_id), and for product-complete batches delete the product's images that are gone, " +
    "so the table holds each product's current gallery; an identical row is left untouched (run_id and loaded_at say when it last changed). " +
    "append: a history table keyed by (run_id, source, product_id, image_id), each run adds its rows. " +
    "replace: the table holds exactly this run's output, swapped in atomically at the end (a killed run leaves it as it was).",
  examples: ["merge", "append", "replace"]
})

const maxBufferedField = Config.withDefault(Config.intAtLeast(1), SqlSink.defaultMaxBuffered, {
  description:
    "Records held in memory between two commits. Beyond that they wait in the database's <table>__pending work table until the " +
    "commit moves them in (commits wait while product grouping merges, so one commit can hold a whole catalogue).",
  examples: [10_000]
})

/** The `sqlite` sink's config. */
export const SqliteSinkConfig = Schema.Struct({ path: sqlitePathField, table: tableField, mode: modeField, maxBuffered: maxBufferedField })
export type SqliteSinkConfig = typeof SqliteSinkConfig.Type

/** The `postgres` sink's config. */
export const PostgresSinkConfig = Schema.Struct({
  url: postgresUrlField,
  schema: schemaField,
  table: tableField,
  mode: modeField,
  maxBuffered: maxBufferedField
})
export type PostgresSinkConfig = typeof PostgresSinkConfig.Type

const columns = "source, product_id, image_id, position, url, filename, width, height, alt, content_hash, created_at, updated_at, extra, run_id, loaded_at"

/** Loads product images into a SQLite table. */
export const sqlite = Sink.define<SqliteSinkConfig>({
  name: "sqlite",
  description:
    `Loads one row per image into a table of an embedded SQLite database (columns: ${columns}), one transaction per commit. ` +
    "With state: { use: sqlite } on the same file, each commit and the state save are one transaction.",
  config: SqliteSinkConfig,
  outputs: (config, context) => [
    { option: "path", path: path.resolve(config.path), kind: "file", part: `table ${context.trial === true ? Sink.trialTable(config.table) : config.table}` }
  ],
  make: (config, context) =>
    SqlSink.make({ target: SqlDatabase.sqliteTarget(config.path), table: config.table, mode: config.mode, maxBuffered: config.maxBuffered }, context)
})

/** Loads product images into a PostgreSQL table. */
export const postgres = Sink.define<PostgresSinkConfig>({
  name: "postgres",
  description:
    `Loads one row per image into a PostgreSQL table (columns: ${columns}; timestamptz, integer and jsonb types), one transaction per commit. ` +
    "With state: { use: postgres } on the same URL, each commit and the state save are one transaction.",
  config: PostgresSinkConfig,
  make: (config, context) =>
    SqlSink.make(
      { target: SqlDatabase.postgresTarget(config.url), schema: config.schema, table: config.table, mode: config.mode, maxBuffered: config.maxBuffered },
      context
    )
})

/** Every sink of this package. */
export const sinks: ReadonlyArray<Sink.SinkPlugin> = [sqlite, postgres]
