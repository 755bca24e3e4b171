/**
 * The plugins the `effetl` binary ships with. The sources and sinks are registered by name and
 * imported the first time a pipeline uses them, so a run loads only its own plugins' packages (and
 * never pg or better-sqlite3 for a pipeline without a SQL sink); core's transforms are always there.
 */
import { builtinTransforms, Registry } from "@effetl/core"
import * as Effect from "effect/Effect"

/** Every built-in plugin, by kind; sources, sinks and SQL state stores load on first use. */
export const registry: Registry.Registry = Registry.make({
  sources: [],
  transforms: builtinTransforms,
  sinks: [],
  lazy: [
    Registry.lazy("source", "acceo", () => import("@effetl/source-acceo").then((m) => m.acceo)),
    Registry.lazy("source", "shoplazza", () => import("@effetl/source-shoplazza").then((m) => m.shoplazza)),
    Registry.lazy("source", "bigcommerce", () => import("@effetl/source-bigcommerce").then((m) => m.bigcommerce)),
    Registry.lazy("source", "channel", () => import("@effetl/source-channel").then((m) => m.channel)),
    Registry.lazy("sink", "csv", () => import("@effetl/sink-files").then((m) => m.csv)),
    Registry.lazy("sink", "jsonl", () => import("@effetl/sink-files").then((m) => m.jsonl)),
    Registry.lazy("sink", "parquet", () => import("@effetl/sink-files").then((m) => m.parquet)),
    Registry.lazy("sink", "images", () => import("@effetl/sink-files").then((m) => m.images)),
    Registry.lazy("sink", "sqlite", () => import("@effetl/sink-sql").then((m) => m.sqlite)),
    Registry.lazy("sink", "postgres", () => import("@effetl/sink-sql").then((m) => m.postgres)),
    Registry.lazy("state", "sqlite", () => import("@effetl/sink-sql").then((m) => m.sqliteState)),
    Registry.lazy("state", "postgres", () => import("@effetl/sink-sql").then((m) => m.postgresState))
  ]
})

/** Every built-in plugin loaded (for `effetl plugins`, `effetl schema` and programs that list them all). */
export const loadedRegistry = (): Promise<Registry.Registry> => Effect.runPromise(Registry.loadAll(registry))
