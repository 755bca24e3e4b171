/**
 * The `sqlite` and `postgres` state store plugins (`state: { use: sqlite|postgres, with: {...} }`):
 * their config specs, read into `SqlStateStore.make`.
 */
import { Config, StateStore } from "@effetl/core"
import * as Schema from "effect/Schema"
import { postgresUrlField, schemaField, sqlitePathField } from "./Sinks.js"
import * as SqlDatabase from "./SqlDatabase.js"
import * as SqlStateStore from "./SqlStateStore.js"

const tableField = Config.withDefault(SqlDatabase.Identifier, "effetl_state", {
  description: "The state table: one row per pipeline (created if missing by a versioned migration).",
  examples: ["effetl_state"]
})

/** The `sqlite` state store's config. */
export const SqliteStateConfig = Schema.Struct({ path: sqlitePathField, table: tableField })
export type SqliteStateConfig = typeof SqliteStateConfig.Type

/** The `postgres` state store's config. */
export const PostgresStateConfig = Schema.Struct({ url: postgresUrlField, schema: schemaField, table: tableField })
export type PostgresStateConfig = typeof PostgresStateConfig.Type

/** Keeps the pipeline's state in a table of a SQLite database. */
export const sqliteState = StateStore.define<SqliteStateConfig>({
  name: "sqlite",
  description:
    "Keeps the pipeline's state (runs, checkpoints, sink tokens) in a table of a SQLite database. A sqlite sink on the same file " +
    "commits in the same transaction as the state save.",
  config: SqliteStateConfig,
  make: (config) => SqlStateStore.make({ target: SqlDatabase.sqliteTarget(config.path), table: config.table })
})

/** Keeps the pipeline's state in a table of a PostgreSQL database. */
export const postgresState = StateStore.define<PostgresStateConfig>({
  name: "postgres",
  description:
    "Keeps the pipeline's state (runs, checkpoints, sink tokens) in a PostgreSQL table. A postgres sink on the same URL " +
    "commits in the same transaction as the state save.",
  config: PostgresStateConfig,
  make: (config) => SqlStateStore.make({ target: SqlDatabase.postgresTarget(config.url), schema: config.schema, table: config.table })
})

/** Every state store of this package. */
export const stateStores: ReadonlyArray<StateStore.StateStorePlugin> = [sqliteState, postgresState]
