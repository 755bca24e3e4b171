/**
 * Per-source counters for the run summary: read, written, invalid, deduped, dropped, unhashed,
 * warnings, retries, rate-limit waits, pages; and, for `dropped`, how many for each reason. Plugins
 * add to them; the runner prints them and passes every addition on to its reporter as it happens.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/**
 * The names of the counters kept per source:
 * - `dropped`: records a transform left out on purpose (see `drop`, which says why);
 * - `waits`: rate-limit waits (the API said its budget was spent: a 429, or its budget headers);
 * - `retries`: requests tried again; `warnings`: warnings logged (e.g. a vendor's own warnings).
 */
export const counters = ["read", "written", "invalid", "deduped", "dropped", "unhashed", "warnings", "retries", "waits", "pages"] as const
export type Counter = (typeof counters)[number]

/** Counters of one source. */
export type SourceCounts = Record<Counter, number>

/** Records dropped per reason, of one source. */
export type DropReasons = Readonly<Record<string, number>>

/** The counters of a run, per source instance name. */
export class RunStats extends Context.Tag("@effetl/core/RunStats")<
  RunStats,
  {
    /** Adds `n` to a counter of a source. */
    readonly add: (source: string, counter: Counter, n?: number) => Effect.Effect<void>
    /** Counts `n` records of a source dropped on purpose, with why: adds to `dropped` and to the reason's count. */
    readonly drop: (source: string, reason: string, n?: number) => Effect.Effect<void>
    /** The counters as they are now. */
    readonly snapshot: Effect.Effect<ReadonlyMap<string, SourceCounts>>
    /** The dropped records per reason as they are now, per source. */
    readonly dropReasons: Effect.Effect<ReadonlyMap<string, DropReasons>>
  }
>() {}

/** An empty counter set. */
export const emptyCounts = (): SourceCounts => ({
  read: 0, written: 0, invalid: 0, deduped: 0, dropped: 0, unhashed: 0, warnings: 0, retries: 0, waits: 0, pages: 0
})

/** Makes an in-memory `RunStats`. */
export const make: Effect.Effect<RunStats["Type"]> = Effect.sync(() => {
  const table = new Map<string, SourceCounts>()
  const reasons = new Map<string, Record<string, number>>()
  const bump = (source: string, counter: Counter, n: number) => {
    let c = table.get(source)
    if (c === undefined) {
      c = emptyCounts()
      table.set(source, c)
    }
    c[counter] += n
  }
  return RunStats.of({
    add: (source, counter, n = 1) => Effect.sync(() => bump(source, counter, n)),
    drop: (source, reason, n = 1) =>
      Effect.sync(() => {
        bump(source, "dropped", n)
        let r = reasons.get(source)
        if (r === undefined) {
          r = {}
          reasons.set(source, r)
        }
        r[reason] = (r[reason] ?? 0) + n
      }),
    snapshot: Effect.sync(() => new Map([...table].map(([k, v]) => [k, { ...v }]))),
    dropReasons: Effect.sync(() => new Map([...reasons].map(([k, v]) => [k, { ...v }])))
  })
})

/** A layer with a fresh in-memory `RunStats`. */
export const layer: Layer.Layer<RunStats> = Layer.effect(RunStats, make)

/** Adds to a counter when a `RunStats` is in the context, and does nothing otherwise. */
export const add = (source: string, counter: Counter, n = 1): Effect.Effect<void> =>
  Effect.serviceOption(RunStats).pipe(
    Effect.flatMap((o) => (o._tag === "Some" ? o.value.add(source, counter, n) : Effect.void))
  )

/** Counts records dropped on purpose, with why, when a `RunStats` is in the context (see `RunStats.drop`). */
export const drop = (source: string, reason: string, n = 1): Effect.Effect<void> =>
  n <= 0
    ? Effect.void
    : Effect.serviceOption(RunStats).pipe(
      Effect.flatMap((o) => (o._tag === "Some" ? o.value.drop(source, reason, n) : Effect.void))
    )

/** Told of every addition to a counter as it happens (`dropped` too, when counted through `drop`). */
export type Listener = (source: string, counter: Counter, n: number) => void

/**
 * The same counters, with every addition also told to `listener` (e.g. a live progress display).
 * The listener must not throw.
 */
export const tee = (stats: RunStats["Type"], listener: Listener): RunStats["Type"] =>
  RunStats.of({
    add: (source, counter, n = 1) => Effect.zipRight(stats.add(source, counter, n), Effect.sync(() => listener(source, counter, n))),
    drop: (source, reason, n = 1) => Effect.zipRight(stats.drop(source, reason, n), Effect.sync(() => listener(source, "dropped", n))),
    snapshot: stats.snapshot,
    dropReasons: stats.dropReasons
  })

/** Runs `self` with the context's `RunStats` teed to `listener` (see {@link tee}); as it is without a listener. */
export const reporting = (listener: Listener | undefined) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | RunStats> =>
  listener === undefined
    ? self
    : Effect.flatMap(RunStats, (stats) => Effect.provideService(self, RunStats, tee(stats, listener)))
