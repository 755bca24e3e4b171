/**
 * Per-source counters for the run summary: read, written, invalid, deduped, unhashed, warnings,
 * retries, pages. Plugins add to them; the runner prints them.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** The names of the counters kept per source. */
export const counters = ["read", "written", "invalid", "deduped", "unhashed", "warnings", "retries", "pages"] as const
export type Counter = (typeof counters)[number]

/** Counters of one source. */
export type SourceCounts = Record<Counter, number>

/** The counters of a run, per source instance name. */
export class RunStats extends Context.Tag("@effetl/core/RunStats")<
  RunStats,
  {
    /** Adds `n` to a counter of a source. */
    readonly add: (source: string, counter: Counter, n?: number) => Effect.Effect<void>
    /** The counters as they are now. */
    readonly snapshot: Effect.Effect<ReadonlyMap<string, SourceCounts>>
  }
>() {}

/** An empty counter set. */
export const emptyCounts = (): SourceCounts => ({
  read: 0, written: 0, invalid: 0, deduped: 0, unhashed: 0, warnings: 0, retries: 0, pages: 0
})

/** Makes an in-memory `RunStats`. */
export const make: Effect.Effect<RunStats["Type"]> = Effect.sync(() => {
  const table = new Map<string, SourceCounts>()
  return RunStats.of({
    add: (source, counter, n = 1) =>
      Effect.sync(() => {
        let c = table.get(source)
        if (c === undefined) {
          c = emptyCounts()
          table.set(source, c)
        }
        c[counter] += n
      }),
    snapshot: Effect.sync(() => new Map([...table].map(([k, v]) => [k, { ...v }])))
  })
})

/** A layer with a fresh in-memory `RunStats`. */
export const layer: Layer.Layer<RunStats> = Layer.effect(RunStats, make)

/** Adds to a counter when a `RunStats` is in the context, and does nothing otherwise. */
export const add = (source: string, counter: Counter, n = 1): Effect.Effect<void> =>
  Effect.serviceOption(RunStats).pipe(
    Effect.flatMap((o) => (o._tag === "Some" ? o.value.add(source, counter, n) : Effect.void))
  )
