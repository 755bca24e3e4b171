/**
 * The history of a pipeline's runs (what `effetl runs` lists): for each past run its id, start, end,
 * time spent, status, counts per source (with the records dropped per reason) and error.
 *
 * It is kept inside the pipeline's saved state (`PipelineState.history`), so every state store keeps
 * it (the JSON file, SQLite and Postgres tables, a plugin's own) and a run's entry is written by the
 * same atomic save that records the run's end (finished or failed). It is bounded: the newest
 * `limit` runs (default 50, `state.history` in a pipeline file) are kept. A run resumed after a
 * failure or a kill keeps one entry under its id, its counts and time summed over its attempts.
 * A run that is still `running` in the saved state when no process holds its lock was killed: it
 * is listed as `interrupted`, and recorded so when a new run discards it (`--restart`, `--full-refresh`).
 */
import * as Schema from "effect/Schema"
import type { DropReasons, SourceCounts } from "./RunStats.js"

/** How many runs a pipeline's history keeps when its file does not say. */
export const defaultLimit = 50

/** What one source did in a run. */
export const SourceRecord = Schema.Struct({
  /** Its counters (read, written, invalid, deduped, dropped, warnings, retries, waits, ...). */
  counts: Schema.Record({ key: Schema.String, value: Schema.Number }),
  /** Records dropped by transforms, per reason (when any were). */
  dropped: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number }))
})
export type SourceRecord = typeof SourceRecord.Type

/** One past run. */
export const RunRecord = Schema.Struct({
  id: Schema.String,
  /** `interrupted`: killed or stopped, or discarded by a new run before it ended. */
  status: Schema.Literal("finished", "failed", "interrupted"),
  startedAt: Schema.String,
  /** When its last attempt ended (unknown for a run that was killed). */
  endedAt: Schema.optional(Schema.String),
  /** Time spent running, summed over its attempts (a resumed run has several). */
  seconds: Schema.optional(Schema.Number),
  /** How many times it ran (1 + the resumes). */
  attempts: Schema.optional(Schema.Number),
  error: Schema.optional(Schema.String),
  /** Records and dead letters read, when the counts per source are not known (a killed run). */
  read: Schema.optional(Schema.Number),
  sources: Schema.Record({ key: Schema.String, value: SourceRecord })
})
export type RunRecord = typeof RunRecord.Type

/** A run as `effetl runs` lists it: a past run, or the current one (`running`, or `interrupted` when no process runs it). */
export interface Listed extends Omit<RunRecord, "status"> {
  readonly status: RunRecord["status"] | "running"
  /** A distributed run (`effetl run --distributed`), read from its cluster's tables rather than the state. */
  readonly distributed?: boolean
}

/** The part of a pipeline's state the history needs (structurally `PipelineState`). */
interface WithHistory {
  readonly run: {
    readonly id: string
    readonly status: "running" | "failed" | "finished"
    readonly startedAt: string
    readonly finishedAt?: string | undefined
    readonly error?: string | undefined
    readonly read?: number | undefined
  } | null
  readonly history?: ReadonlyArray<RunRecord> | undefined
}

/** What one attempt of a run did, from its counters. */
export const sourcesOf = (
  counts: ReadonlyMap<string, SourceCounts>,
  reasons: ReadonlyMap<string, DropReasons>,
  names: ReadonlyArray<string>
): Record<string, SourceRecord> =>
  Object.fromEntries(
    names.map((name) => {
      const dropped = reasons.get(name)
      const c = counts.get(name)
      return [name, { counts: c === undefined ? {} : { ...c }, ...(dropped !== undefined && Object.keys(dropped).length > 0 ? { dropped: { ...dropped } } : {}) }]
    })
  )

/**
 * The state with `entry` recorded in its history: merged into the entry of the same run id (counts
 * and time summed, one more attempt), newest first, cut to the newest `limit`.
 */
export const record = <S extends WithHistory>(state: S, entry: RunRecord, limit: number = defaultLimit): S => {
  const history = state.history ?? []
  const previous = history.find((r) => r.id === entry.id)
  const merged = previous === undefined ? { ...entry, attempts: entry.attempts ?? 1 } : mergeAttempts(previous, entry)
  return { ...state, history: [merged, ...history.filter((r) => r.id !== entry.id)].slice(0, Math.max(1, limit)) }
}

/**
 * A state's runs, newest first, as `effetl runs` lists them: its history, and before it the current
 * run when the history does not hold it yet (`running`, or `interrupted` when `live` is false: no
 * process holds the pipeline's run lock).
 */
export const list = (state: WithHistory, live: boolean): ReadonlyArray<Listed> => {
  const history: ReadonlyArray<Listed> = state.history ?? []
  const run = state.run
  if (run === null) return history
  const known = history.find((r) => r.id === run.id)
  if (run.status === "running") {
    // A resumed run that failed or was interrupted before keeps its entry: the current attempt is shown in it.
    const status = live ? "running" : "interrupted"
    const current: Listed = known === undefined
      ? { id: run.id, status, startedAt: run.startedAt, ...(run.read !== undefined ? { read: run.read } : {}), sources: {} }
      : { ...known, status }
    return [current, ...history.filter((r) => r.id !== run.id)]
  }
  if (known !== undefined) return history
  // A run that ended before this version kept a history.
  return [
    {
      id: run.id,
      status: run.status,
      startedAt: run.startedAt,
      ...(run.finishedAt !== undefined ? { endedAt: run.finishedAt } : {}),
      ...(run.error !== undefined ? { error: run.error } : {}),
      ...(run.read !== undefined ? { read: run.read } : {}),
      sources: {}
    },
    ...history
  ]
}

/**
 * The state with its unfinished current run (if any) recorded as `interrupted` (or kept as `failed`),
 * for a new run that discards it.
 */
export const discard = <S extends WithHistory>(state: S, limit: number = defaultLimit): S => {
  const run = state.run
  if (run === null || run.status === "finished") return state
  const history = state.history ?? []
  if (history.some((r) => r.id === run.id)) {
    // Recorded when it failed; a resumed attempt that was then killed ends it interrupted.
    return run.status === "failed" ? state : { ...state, history: history.map((r) => (r.id === run.id ? { ...r, status: "interrupted" as const } : r)) }
  }
  return record(state, {
    id: run.id,
    status: run.status === "failed" ? "failed" : "interrupted",
    startedAt: run.startedAt,
    ...(run.error !== undefined ? { error: run.error } : {}),
    ...(run.read !== undefined ? { read: run.read } : {}),
    sources: {}
  }, limit)
}

// ---------------------------------------------------------------------------------------------

const mergeAttempts = (previous: RunRecord, next: RunRecord): RunRecord => {
  const sources: Record<string, SourceRecord> = { ...previous.sources }
  for (const [name, s] of Object.entries(next.sources)) {
    const before = sources[name]
    sources[name] = before === undefined ? s : { counts: sum(before.counts, s.counts), ...(before.dropped || s.dropped ? { dropped: sum(before.dropped ?? {}, s.dropped ?? {}) } : {}) }
  }
  const seconds = (previous.seconds ?? 0) + (next.seconds ?? 0)
  const { error: _error, ...rest } = next
  return {
    ...rest,
    ...(next.error !== undefined ? { error: next.error } : {}),
    startedAt: previous.startedAt < next.startedAt ? previous.startedAt : next.startedAt,
    seconds,
    attempts: (previous.attempts ?? 1) + (next.attempts ?? 1),
    sources
  }
}

const sum = (a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> => {
  const out: Record<string, number> = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v
  return out
}
