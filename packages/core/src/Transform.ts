/**
 * Transform plugins: map batches to batches. A transform that leaves records out on purpose says so
 * with {@link dropped} (or {@link keep}), with a reason: the run summary and the run history show
 * the dropped records per reason, and the runner counts any record a transform lost without a word
 * as dropped by it, "no reason given", so a summary never hides what a transform left out.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { Batch } from "./Batch.js"
import type { ConfigError, TransformError } from "./Errors.js"
import type { ProductImage } from "./ProductImage.js"
import * as RunStats from "./RunStats.js"
import type { PluginServices } from "./Services.js"

/** What the runner tells a transform when it makes it. */
export interface TransformContext {
  /** A stable key for this transform in the pipeline (`<index>:<use>`), used for its saved state. */
  readonly key: string
  /** What this transform saved at the last commit (across runs), if anything. */
  readonly state: Option.Option<unknown>
}

/** A made transform. It is shared by every source of the pipeline. */
export interface TransformInstance {
  /**
   * Maps one batch to one batch. It may drop records (say why with {@link dropped} or {@link keep}),
   * change them, or move them to `rejected` (the dead-letter output). It must keep the batch's checkpoint.
   */
  readonly apply: (batch: Batch) => Effect.Effect<Batch, TransformError, PluginServices>
  /**
   * For transforms that remember something across runs. The runner calls `written` with every
   * batch after the sinks wrote it, and saves `snapshot` with the checkpoints at each commit, so the
   * saved state never runs ahead of committed data.
   */
  readonly persist?: {
    readonly written: (batch: Batch) => Effect.Effect<void>
    readonly snapshot: Effect.Effect<unknown>
  }
}

/** A transform plugin. */
export interface TransformPlugin<Config = any> {
  readonly _tag: "TransformPlugin"
  readonly name: string
  readonly description: string
  readonly config: Schema.Schema<Config, any>
  /**
   * True when the transform needs every record of a product in one batch. For sources whose
   * batches are not product-complete, core groups records by product before it (a blocking step).
   */
  readonly productScoped: boolean
  readonly make: (
    config: Config,
    context: TransformContext
  ) => Effect.Effect<TransformInstance, ConfigError, PluginServices | Scope.Scope>
}

/** Defines a transform plugin. */
export const define = <Config>(plugin: Omit<TransformPlugin<Config>, "_tag">): TransformPlugin<Config> => ({
  _tag: "TransformPlugin",
  ...plugin
})

/** Whether a value is a transform plugin. */
export const isTransformPlugin = (u: unknown): u is TransformPlugin =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "TransformPlugin"

/**
 * Counts records a transform left out on purpose, with why (e.g. `"out of stock"`): per record's
 * source, into `RunStats` (`dropped`, and the reason's count shown by the run summary and history).
 */
export const dropped = (records: Iterable<ProductImage>, reason: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    const bySource = new Map<string, number>()
    for (const r of records) bySource.set(r.source, (bySource.get(r.source) ?? 0) + 1)
    return Effect.forEach(bySource, ([source, n]) => RunStats.drop(source, reason, n), { discard: true })
  })

/**
 * Keeps the batch's records for which `predicate` holds and counts the others as dropped with
 * `reason` (see {@link dropped}); rejected entries and the checkpoint stay as they are.
 */
export const keep = (batch: Batch, predicate: (record: ProductImage) => boolean, reason: string): Effect.Effect<Batch> =>
  Effect.suspend(() => {
    const [out, kept] = Chunk.partition(batch.records, predicate)
    return out.length === 0 ? Effect.succeed(batch) : Effect.as(dropped(out, reason), { ...batch, records: kept })
  })

/** The reason the runner gives records a transform lost without counting them (see {@link accounted}). */
export const unexplained = (use: string): string => `dropped by transform '${use}' (no reason given)`

/**
 * The runner's wrapper of a transform's `apply` for the batches of `source`: records (and rejected
 * entries) that went in and did not come out, and that the transform did not count as dropped or
 * deduped, are counted as dropped with {@link unexplained}. A transform that adds records is left as it is.
 */
export const accounted = <E, R>(
  apply: (batch: Batch) => Effect.Effect<Batch, E, R>,
  source: string,
  use: string
) => {
  const reason = unexplained(use)
  return (batch: Batch): Effect.Effect<Batch, E, R> =>
    Effect.serviceOption(RunStats.RunStats).pipe(
      Effect.flatMap((stats) => {
        if (stats._tag === "None") return apply(batch)
        let told = 0
        const tally = RunStats.tee(stats.value, (_s, counter, n) => {
          if (counter === "dropped" || counter === "deduped") told += n
        })
        const before = batch.records.length + batch.rejected.length
        return apply(batch).pipe(
          Effect.provideService(RunStats.RunStats, tally),
          Effect.tap((out) => {
            const lost = before - out.records.length - out.rejected.length - told
            return lost > 0 ? stats.value.drop(source, reason, lost) : Effect.void
          })
        )
      })
    )
}
