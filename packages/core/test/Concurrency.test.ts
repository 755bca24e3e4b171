import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Concurrency from "../src/Concurrency.js"

describe("Concurrency.forEachInTurn", () => {
  it.effect("runs every item, at most `concurrency` at once, and returns the results in the items' order", () =>
    Effect.gen(function*() {
      let running = 0
      let most = 0
      const items = Array.from({ length: 40 }, (_, i) => i)
      const results = yield* Concurrency.forEachInTurn(items, (n, index) =>
        Effect.gen(function*() {
          running++
          most = Math.max(most, running)
          // Later items finish sooner: the order must come from the index, not from completion.
          yield* Effect.yieldNow()
          for (let i = 0; i < 40 - n; i++) yield* Effect.yieldNow()
          running--
          return `${n}:${index}`
        }), { concurrency: 3 })
      expect(results).toEqual(items.map((n) => `${n}:${n}`))
      expect(most).toBe(3)
      expect(yield* Concurrency.forEachInTurn([], () => Effect.succeed(1), { concurrency: 3 })).toEqual([])
    }))

  it.effect("a failure fails the whole and starts no further item", () =>
    Effect.gen(function*() {
      const started: Array<number> = []
      const error = yield* Effect.flip(Concurrency.forEachInTurn(Array.from({ length: 20 }, (_, i) => i), (n) =>
        Effect.suspend(() => {
          started.push(n)
          return n === 2 ? Effect.fail(`item ${n}`) : Effect.yieldNow()
        }), { concurrency: 2 }))
      expect(error).toBe("item 2")
      expect(started.length).toBeLessThan(20)
    }))

  it.effect("each worker's loop goes through `worker` once (a shared budget across calls)", () =>
    Effect.gen(function*() {
      const permits = yield* Effect.makeSemaphore(2)
      let wrapped = 0
      let running = 0
      let most = 0
      const task = (n: number) =>
        Effect.gen(function*() {
          running++
          most = Math.max(most, running)
          yield* Effect.yieldNow()
          running--
          return n
        })
      const options = {
        concurrency: 2,
        worker: (loop: Effect.Effect<void>) => Effect.zipRight(Effect.sync(() => wrapped++), permits.withPermits(1)(loop))
      }
      const items = Array.from({ length: 10 }, (_, i) => i)
      // Two calls at once share the semaphore's 2 permits: never more than 2 items in progress.
      const [a, b] = yield* Effect.all([Concurrency.forEachInTurn(items, task, options), Concurrency.forEachInTurn(items, task, options)], {
        concurrency: "unbounded"
      })
      expect(a).toEqual(items)
      expect(b).toEqual(items)
      // Two workers per call, each through the wrapper once.
      expect(wrapped).toBe(4)
      expect(most).toBe(2)
    }))

  it.effect("eachInTurn: every item once, at most `concurrency` at once, keeping no results; a failure stops it", () =>
    Effect.gen(function*() {
      let running = 0
      let most = 0
      const seen: Array<string> = []
      const items = Array.from({ length: 25 }, (_, i) => i)
      const result = yield* Concurrency.eachInTurn(items, (n, index) =>
        Effect.gen(function*() {
          running++
          most = Math.max(most, running)
          for (let i = 0; i < 25 - n; i++) yield* Effect.yieldNow()
          running--
          seen.push(`${n}:${index}`)
        }), { concurrency: 4 })
      expect(result).toBeUndefined()
      expect([...seen].sort()).toEqual(items.map((n) => `${n}:${n}`).sort())
      expect(most).toBe(4)
      yield* Concurrency.eachInTurn([], () => Effect.dieMessage("never called"), { concurrency: 2 })
      const started: Array<number> = []
      const error = yield* Effect.flip(Concurrency.eachInTurn(items, (n) =>
        Effect.suspend(() => {
          started.push(n)
          return n === 1 ? Effect.fail(`item ${n}`) : Effect.yieldNow()
        }), { concurrency: 2 }))
      expect(error).toBe("item 1")
      expect(started.length).toBeLessThan(25)
    }))
})
