/**
 * Transform plugins: map batches to batches.
 */
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { Batch } from "./Batch.js"
import type { ConfigError, TransformError } from "./Errors.js"
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
   * Maps one batch to one batch. It may drop records, change them, or move them to `rejected`
   * (the dead-letter output). It must keep the batch's checkpoint.
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
