/**
 * Test helper: an independent Parquet reader (DuckDB, in memory) to read what the sinks wrote.
 */
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api"
import * as Effect from "effect/Effect"

let connection: Promise<DuckDBConnection> | undefined

const connect = (): Promise<DuckDBConnection> =>
  (connection ??= DuckDBInstance.create(":memory:").then((db) => db.connect()))

/** Runs a query and returns its rows as plain JS objects (timestamps as Dates, BIGINTs as bigints). */
export const query = (sql: string): Effect.Effect<Array<Record<string, unknown>>> =>
  Effect.promise(async () => (await (await connect()).runAndReadAll(sql)).getRowObjectsJS() as Array<Record<string, unknown>>)

/** A path as a SQL string literal. */
export const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`
