/**
 * Where a pipeline keeps what must survive a run: the current run, each source's checkpoint, each
 * sink's last commit token, what transforms remember (e.g. a global dedupe's seen hashes) and the
 * history of past runs (`RunHistory`), which every store keeps because it is part of the state.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Checkpoint } from "./Batch.js"
import type { ConfigError, StateError } from "./Errors.js"
import { RunRecord } from "./RunHistory.js"
import type { PluginServices } from "./Services.js"
import type { SinkInstance } from "./Sink.js"

/** The current (or last) run of a pipeline. */
export const RunInfo = Schema.Struct({
  id: Schema.String,
  /** `running` also covers a run that was killed; `failed` a run that stopped on an error. */
  status: Schema.Literal("running", "failed", "finished"),
  startedAt: Schema.String,
  finishedAt: Schema.optional(Schema.String),
  error: Schema.optional(Schema.String),
  /** Records and dead letters read by this run so far, across its resumes (saved at each commit). */
  read: Schema.optional(Schema.Number),
  /** Whether the run started from incremental cursors carried over from an earlier run. */
  fromCursor: Schema.optional(Schema.Boolean)
})
export type RunInfo = typeof RunInfo.Type

/** A source's saved state. `done` means it was read to the end in the current run. */
export const SourceState = Schema.Struct({
  checkpoint: Schema.NullOr(Checkpoint),
  done: Schema.Boolean,
  /** The checkpoint is a cursor carried over from an earlier run; this run has committed none of its own yet. */
  carried: Schema.optional(Schema.Boolean)
})
export type SourceState = typeof SourceState.Type

/** Everything saved for one pipeline. */
export const PipelineState = Schema.Struct({
  run: Schema.NullOr(RunInfo),
  sources: Schema.Record({ key: Schema.String, value: SourceState }),
  sinks: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  transforms: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  deadLetter: Schema.optional(Schema.Unknown),
  /** Past runs, newest first, bounded (see `RunHistory`): written by the save that records a run's end. */
  history: Schema.optional(Schema.Array(RunRecord))
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
    /**
     * Offered by a store that lives in a database: lets the runner make sinks that write to the same
     * database commit in the same transaction as the state save (see `StateTransaction`).
     */
    readonly transaction?: StateTransaction
    /**
     * Offered by a store shared between machines (e.g. a server database): holds the pipeline's run
     * lock in the store for the scope, or fails at once naming who holds it. The runner takes it
     * after the local lock file, so one run of a pipeline goes at a time wherever it runs.
     */
    readonly lock?: (pipeline: string) => Effect.Effect<void, StateError, Scope.Scope>
    /**
     * Offered by a store that holds runs' locks (`lock`): whether a run of the pipeline holds it now,
     * wherever it runs. `effetl runs` lists an unfinished run as `running` then, else `interrupted`.
     */
    readonly running?: (pipeline: string) => Effect.Effect<boolean, StateError>
  }
>() {}

/**
 * A state store's database transaction, shared with sinks on the same database.
 *
 * At each commit the runner first commits the other sinks, then runs, inside `run`: the commits of
 * the sinks whose `SinkInstance.database` equals `database`, then the state save. So their data and
 * the saved state are one transaction: a crash anywhere leaves both or neither.
 */
export interface StateTransaction {
  /** A key naming the database (e.g. `sqlite:/abs/path/images.db`); never holds a secret. */
  readonly database: string
  /** Runs `effect` in one transaction of the store's database: committed if it succeeds, rolled back otherwise. */
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StateError, R>
}

/**
 * A sink instance that commits to a database. When the state store's `transaction.database` is the
 * same key, the runner runs this sink's `commit` inside the store's transaction, with the state save.
 */
export interface TransactionalSink extends SinkInstance {
  /** The database this sink commits to, as a key without secrets (the same form as `StateTransaction.database`). */
  readonly database: string
}

/** The database a sink commits to, when it is a `TransactionalSink`. */
export const sinkDatabase = (sink: SinkInstance): string | undefined => {
  const database = (sink as Partial<TransactionalSink>).database
  return typeof database === "string" ? database : undefined
}

/** A state store plugin: a store chosen by the pipeline file's `state: { use: <name>, with: {...} }`. */
export interface StateStorePlugin<Config = any> {
  readonly _tag: "StateStorePlugin"
  readonly name: string
  readonly description: string
  readonly config: Schema.Schema<Config, any>
  /** Makes the store for the scope (e.g. opens a database connection that the scope closes). */
  readonly make: (config: Config) => Effect.Effect<StateStore["Type"], StateError | ConfigError, PluginServices | Scope.Scope>
}

/** Defines a state store plugin. */
export const define = <Config>(plugin: Omit<StateStorePlugin<Config>, "_tag">): StateStorePlugin<Config> => ({
  _tag: "StateStorePlugin",
  ...plugin
})

/** Whether a value is a state store plugin. */
export const isStateStorePlugin = (u: unknown): u is StateStorePlugin =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "StateStorePlugin"
