/**
 * @effetl/sink-sql: SQL sinks and state stores on `@effect/sql`: SQLite (embedded, the default) and
 * PostgreSQL, with merge, append and replace semantics, and state in the same transaction.
 */
import type { Sink, StateStore } from "@effetl/core"
import { sinks } from "./Sinks.js"
import { stateStores } from "./StateStores.js"

export { postgres, PostgresSinkConfig, sinks, sqlite, SqliteSinkConfig } from "./Sinks.js"
export { postgresState, PostgresStateConfig, sqliteState, SqliteStateConfig, stateStores } from "./StateStores.js"
export * as Dialect from "./Dialect.js"
export * as ImagesTable from "./ImagesTable.js"
export * as SqlDatabase from "./SqlDatabase.js"
export * as SqlSink from "./SqlSink.js"
export * as SqlStateStore from "./SqlStateStore.js"

/** Every plugin of this package, by kind (for a registry). */
export const plugins: {
  readonly sinks: ReadonlyArray<Sink.SinkPlugin>
  readonly stateStores: ReadonlyArray<StateStore.StateStorePlugin>
} = { sinks, stateStores }
