/**
 * Running an effect for many items at once, cheaply: `forEachInTurn` is `Effect.forEach` with a
 * concurrency, done by `concurrency` workers that each take the next item in turn, rather than a
 * fiber per item. For per-record work that is short next to a fiber's cost (a download, a file
 * write) this is most of the difference. Results keep the items' order; the first failure stops the
 * others, as with `Effect.forEach`.
 *
 * @module Concurrency
 */
import * as Effect from "effect/Effect"

/** How {@link forEachInTurn} runs. */
export interface InTurnOptions<E, R> {
  /** The most items in progress at once (at least 1). */
  readonly concurrency: number
  /**
   * Wraps each worker's whole loop, e.g. `semaphore.withPermits(1)` to share a budget of work
   * across calls: a worker holds what it takes for all the items it handles.
   */
  readonly worker?: (loop: Effect.Effect<void, E, R>) => Effect.Effect<void, E, R>
}

/** `f` for every item, at most `concurrency` at once, by as many workers taking items in turn; the results in order. */
export const forEachInTurn = <A, B, E, R>(
  items: ReadonlyArray<A>,
  f: (item: A, index: number) => Effect.Effect<B, E, R>,
  options: InTurnOptions<E, R>
): Effect.Effect<Array<B>, E, R> =>
  Effect.suspend(() => {
    const results: Array<B> = new Array(items.length)
    return Effect.as(
      eachInTurn(items, (item, k) =>
        Effect.map(f(item, k), (b) => {
          results[k] = b
        }), options),
      results
    )
  })

/**
 * {@link forEachInTurn} keeping no results: `f` for every item, at most `concurrency` at once (`f`
 * keeps what it needs, one step less per item).
 */
export const eachInTurn = <A, E, R>(
  items: ReadonlyArray<A>,
  f: (item: A, index: number) => Effect.Effect<void, E, R>,
  options: InTurnOptions<E, R>
): Effect.Effect<void, E, R> =>
  Effect.suspend(() => {
    if (items.length === 0) return Effect.void
    let next = 0
    const loop = Effect.whileLoop({
      while: () => next < items.length,
      body: () => {
        const k = next++
        return f(items[k]!, k)
      },
      step: () => {}
    })
    const worker = options.worker === undefined ? loop : options.worker(loop)
    const workers = Math.max(1, Math.min(Math.floor(options.concurrency), items.length))
    return Effect.replicateEffect(worker, workers, { concurrency: "unbounded", discard: true })
  })
