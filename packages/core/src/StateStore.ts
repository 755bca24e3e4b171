/**
 * Where a pipeline keeps what must survive a run: the current run, each source's checkpoint, each
 * sink's last commit token and what transforms remember (e.g. a global dedupe's seen hashes).
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Checkpoint } from "./Batch.js"
import type { StateError } from "./Errors.js"

/** The current (or last) run of a pipeline. */
export const RunInfo = Schema.Struct({
  id: Schema.String,
  /** `running` also covers a run that was killed; `failed` a run that stopped on an error. */
  status: Schema.Literal("running", "failed", "finished"),
  startedAt: Schema.String,
  finishedAt: Schema.optional(Schema.String),
  error: Schema.optional(Schema.String)
})
export type RunInfo = typeof RunInfo.Type

/** A source's saved state. `done` means it was read to the end in the current run. */
export const SourceState = Schema.Struct({
  checkpoint: Schema.NullOr(Checkpoint),
  done: Schema.Boolean
})
export type SourceState = typeof SourceState.Type

/** Everything saved for one pipeline. */
export const PipelineState = Schema.Struct({
  run: Schema.NullOr(RunInfo),
  sources: Schema.Record({ key: Schema.String, value: SourceState }),
  sinks: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  transforms: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  deadLetter: Schema.optional(Schema.Unknown)
})
export type PipelineState = typeof PipelineState.Type

/** The state of a pipeline that never ran. */
export const empty: PipelineState = { run: null, sources: {}, sinks: {}, transforms: {} }

/** The state store service. Every `save` is atomic: a reader sees the old or the new state, never a mix. */
export class StateStore extends Context.Tag("@effetl/core/StateStore")<
  StateStore,
  {
    /** Where the state lives, for messages (a file path, a table). */
    readonly location: string
    /** The saved state of a pipeline (`empty` when there is none). */
    readonly load: (pipeline: string) => Effect.Effect<PipelineState, StateError>
    /** Replaces the saved state of a pipeline, atomically and durably. */
    readonly save: (pipeline: string, state: PipelineState) => Effect.Effect<void, StateError>
    /** Forgets a pipeline. */
    readonly reset: (pipeline: string) => Effect.Effect<void, StateError>
  }
>() {}
