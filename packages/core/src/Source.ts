/**
 * Source plugins: a config schema and a `make` that returns a stream of batches.
 */
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { Batch, Checkpoint } from "./Batch.js"
import type { ConfigError, SourceError } from "./Errors.js"
import type { PluginServices } from "./Services.js"

/** Progress a source reports while it reads (the CLI shows it as a bar or log lines). */
export interface Progress {
  /** The total number of records the source expects, when the API says. */
  readonly total: (records: number) => Effect.Effect<void>
  /** One page (API call that returned records) was read. */
  readonly page: () => Effect.Effect<void>
}

/** What the runner tells a source when it makes it. */
export interface SourceContext {
  /** The pipeline's name for this source instance (goes into `ProductImage.source`). */
  readonly name: string
  /** Where to resume: the last committed checkpoint, or none to start from the beginning. */
  readonly checkpoint: Option.Option<Checkpoint>
  /**
   * Whether `checkpoint` belongs to this same run (a resume after a kill or failure), rather than
   * being an incremental cursor carried over from an earlier run (or none). A source whose cursor
   * holds both a within-run position and a high-water mark uses it to tell the two apart.
   */
  readonly resumed: boolean
  /** Read at most about this many records (the runner truncates exactly). */
  readonly limit: Option.Option<number>
  /**
   * The part of the source's work to read, when the run is split into partitions (one of the values
   * the plugin's `partitions` returned); none: all of it. A product never spans two partitions.
   */
  readonly partition: Option.Option<PartitionSpec>
  readonly progress: Progress
}

/** A made source. */
export interface SourceInstance {
  /** Whether each batch holds every record of each product in it (no product spans two batches). */
  readonly productComplete: boolean
  /** The batches, in order. Each batch's checkpoint is the resume position after it. */
  readonly stream: Stream.Stream<Batch, SourceError, PluginServices>
  /** Reaches the API with one cheap request, for `effetl run --dry-run`. */
  readonly check: Effect.Effect<void, SourceError, PluginServices>
}

/**
 * How a source reads, for its docs and `effetl plugins <name>`: one sentence per way. The runner also
 * uses `incremental`: a source that declares it carries a cursor into the next run, so a file sink in
 * `overwrite` mode fed only by such sources defaults to safe behaviour (see the runner).
 */
export interface Reads {
  /** How a full scan enumerates everything (e.g. "products by id range, then each product's images"). */
  readonly fullScan: string
  /** How the next run reads only what changed, when the source can (e.g. "min_date_modified from the last run's high-water mark"). */
  readonly incremental?: string
  /** How named items are read, when the source can (e.g. "productIds: GET /products/{id}/images"). */
  readonly byId?: string
}

/**
 * One partition of a source's work: a small JSON value (an id range, a page range, a chunk of ids)
 * that the source's `make` understands. It is stored by the distributed engine, so keep it small.
 */
export type PartitionSpec = null | boolean | number | string | ReadonlyArray<PartitionSpec> | { readonly [key: string]: PartitionSpec }

/**
 * Splits a list into consecutive chunks of at most `size` items (each non-empty), in order: the
 * partitions of a source that splits a list of ids (`partitions` returning one spec per chunk).
 */
export const chunks = <A>(list: ReadonlyArray<A>, size: number): Array<[A, ...Array<A>]> => {
  const step = Math.max(1, Math.floor(size))
  const out: Array<[A, ...Array<A>]> = []
  for (let i = 0; i < list.length; i += step) out.push(list.slice(i, i + step) as [A, ...Array<A>])
  return out
}

/** A source plugin. */
export interface SourcePlugin<Config = any> {
  readonly _tag: "SourcePlugin"
  /** Built-in short name (`channel`, `acceo`, ...). */
  readonly name: string
  /** One line for `effetl plugins`. */
  readonly description: string
  /** The `with:` block's schema, annotated with descriptions, defaults and examples. */
  readonly config: Schema.Schema<Config, any>
  /** How the source reads: full scan, incremental cursor, by id (shown by `effetl plugins <name>`). */
  readonly reads?: Reads
  /**
   * Whether a run with this config carries an incremental cursor into the next run (so the next run
   * reads only what changed). The runner tells sinks (`SinkContext.incremental`): a file sink's
   * default mode is then `append`, since each run's output holds only that run's changes.
   * Leave it out for a source that always reads everything.
   */
  readonly incremental?: (config: Config) => boolean
  /**
   * How the source's work splits into partitions for a distributed run (each read by `make` with
   * `context.partition`). Every product belongs to exactly one partition. A source that declares
   * nothing is one partition.
   */
  readonly partitions?: (
    config: Config,
    context: { readonly name: string }
  ) => Effect.Effect<ReadonlyArray<PartitionSpec>, SourceError | ConfigError, PluginServices | Scope.Scope>
  /** Makes the source for one run (or one partition of it). */
  readonly make: (
    config: Config,
    context: SourceContext
  ) => Effect.Effect<SourceInstance, SourceError | ConfigError, PluginServices | Scope.Scope>
}

/** Whether any of these configured sources reads incrementally (carries a cursor into the next run; see `SourcePlugin.incremental`). */
export const anyIncremental = (sources: ReadonlyArray<{ readonly plugin: SourcePlugin; readonly config: unknown }>): boolean =>
  sources.some((s) => s.plugin.incremental?.(s.config) === true)

/** Defines a source plugin. */
export const define = <Config>(plugin: Omit<SourcePlugin<Config>, "_tag">): SourcePlugin<Config> => ({
  _tag: "SourcePlugin",
  ...plugin
})

/** Whether a value is a source plugin. */
export const isSourcePlugin = (u: unknown): u is SourcePlugin =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "SourcePlugin"
