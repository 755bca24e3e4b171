/**
 * Sink plugins: write records, commit durably, publish at the end of the run.
 *
 * The commit protocol: the runner calls `write` for every batch, then at each checkpoint interval
 * `commit` on every sink, and only then saves the sources' checkpoints together with each sink's
 * commit token. On resume, a sink gets back the token of the last saved commit (`committed`) and
 * must discard anything it committed after it, so nothing is written twice.
 */
import type * as Chunk from "effect/Chunk"
import * as path from "node:path"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { ConfigError, SinkError } from "./Errors.js"
import type { ProductImage } from "./ProductImage.js"
import type { PluginServices } from "./Services.js"

/** What the runner tells a sink when it makes it. */
export interface SinkContext {
  /** The pipeline's name for this sink instance. */
  readonly name: string
  /** The pipeline's name. */
  readonly pipeline: string
  /** The run id: stable across resumes of one run. Name parts after it. */
  readonly runId: string
  /** The token this sink returned from its last commit that was saved in state (resume), or none. */
  readonly committed: Option.Option<unknown>
  /**
   * Whether a source of the pipeline reads incrementally (carries a cursor into the next run, see
   * `SourcePlugin.incremental`): each run then brings only what changed, so a sink that would replace
   * its output with the run's records should rather add to it (file sinks default to `append`).
   */
  readonly incremental: boolean
  /**
   * A trial run (`effetl run --limit`): write to each output's trial location ({@link trialPath},
   * {@link trialTable}), never to the real one, so a trial never disturbs real runs.
   */
  readonly trial?: boolean
}

/** Where a trial run writes instead of a file or directory: `out/images.csv` → `out/images.trial.csv`, `out/store` → `out/store.trial`. */
export const trialPath = (p: string): string => {
  const base = path.basename(p)
  const dot = base.lastIndexOf(".")
  const trial = dot > 0 ? `${base.slice(0, dot)}.trial${base.slice(dot)}` : `${base}.trial`
  return path.join(path.dirname(p), trial)
}

/** Where a trial run writes instead of a table: `product_images` → `product_images_trial`. */
export const trialTable = (table: string): string => `${table}_trial`

/** How a batch came: lets a sink do per-product work when it is safe. */
export interface WriteInfo {
  /** Every record of each product in the batch is in the batch. */
  readonly productComplete: boolean
}

/** A made sink. */
export interface SinkInstance {
  /** Writes records into the current uncommitted part. */
  readonly write: (records: Chunk.Chunk<ProductImage>, info: WriteInfo) => Effect.Effect<void, SinkError>
  /** Makes everything written so far durable; returns a JSON token the runner saves in state. */
  readonly commit: Effect.Effect<unknown, SinkError>
  /** End of the run, after the final commit was saved: publish the run's output (atomically). */
  readonly finish: Effect.Effect<void, SinkError>
  /** After the run is recorded as finished: remove staging. */
  readonly cleanup: Effect.Effect<void, SinkError>
}

/** A sink plugin. */
export interface SinkPlugin<Config = any> {
  readonly _tag: "SinkPlugin"
  readonly name: string
  readonly description: string
  readonly config: Schema.Schema<Config, any>
  readonly make: (
    config: Config,
    context: SinkContext
  ) => Effect.Effect<SinkInstance, SinkError | ConfigError, PluginServices | Scope.Scope>
  /**
   * The files and directories the sink writes for a config, so that two outputs on one path (or an
   * output on the state or dead-letter file) are found before a run touches anything (`PathConflicts`).
   * Leave it out for a sink that writes no local files. `incremental` and `trial` are what the
   * `SinkContext` will say (a mode that depends on them may make a file a directory, or move it).
   */
  readonly outputs?: (config: Config, context: { readonly incremental: boolean; readonly trial?: boolean }) => ReadonlyArray<SinkOutput>
}

/** A file or directory a sink writes. */
export interface SinkOutput {
  /** The option of the sink's config that names it (`path`, `dir`), for messages. */
  readonly option: string
  /** The absolute path, resolved as the sink resolves it. */
  readonly path: string
  /** `file`: one file (staged beside it). `directory`: the sink owns what is in it. */
  readonly kind: "file" | "directory"
  /** The part of a shared file it writes (a database table): outputs on one file with different parts do not conflict. */
  readonly part?: string
}

/** Defines a sink plugin. */
export const define = <Config>(plugin: Omit<SinkPlugin<Config>, "_tag">): SinkPlugin<Config> => ({
  _tag: "SinkPlugin",
  ...plugin
})

/** Whether a value is a sink plugin. */
export const isSinkPlugin = (u: unknown): u is SinkPlugin =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "SinkPlugin"
