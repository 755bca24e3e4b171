/**
 * The shared rate budget on a real Redis (127.0.0.1:6379) against the BigCommerce simulator's
 * fixed-window quota: two workers' limiters, sharing nothing but Redis, never spend the store's
 * quota together (no 429 the quota explains), where each alone would pace only itself.
 */
import { Http } from "@effetl/core"
import { type BigCommerceSimulator, startBigCommerceSimulator } from "@effetl/source-bigcommerce/simulator"
import * as Headers from "@effect/platform/Headers"
import * as RateLimiter from "@effect/experimental/RateLimiter"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as crypto from "node:crypto"
import { afterEach, describe, expect, it } from "vitest"
import * as SharedRateLimit from "../src/SharedRateLimit.js"

const redisUrl = Redacted.make(process.env.EFFETL_TEST_REDIS_URL ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379/0")

let sim: BigCommerceSimulator | undefined
afterEach(async () => {
  await sim?.close()
  sim = undefined
})

/** The store's header-driven pacing, as the bigcommerce source sets it. */
const policy = Http.RateLimit.fromHeaders({
  left: "X-Rate-Limit-Requests-Left",
  reset: "X-Rate-Limit-Time-Reset-Ms",
  quota: "X-Rate-Limit-Requests-Quota",
  window: "X-Rate-Limit-Time-Window-Ms",
  reserve: 1,
  slowDownBelow: 0.1
})

/** `n` requests through a limiter, `concurrency` at once; returns the statuses. */
const hammer = (s: BigCommerceSimulator, limiter: Http.RateLimit.Limiter, n: number, concurrency: number) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i),
    () =>
      Effect.gen(function*() {
        yield* limiter.take
        const res = yield* Effect.promise(() =>
          fetch(`${s.url}/stores/${s.storeHash}/v2/products?limit=1`, {
            headers: { "X-Auth-Token": s.accessToken, Accept: "application/json" }
          })
        )
        yield* Effect.promise(() => res.arrayBuffer())
        yield* limiter.observe(Headers.fromInput(Object.fromEntries(res.headers.entries())))
        if (limiter.release) yield* limiter.release
        return res.status
      }),
    { concurrency }
  )

describe("SharedRateLimit", () => {
  it("keeps two workers together under the store's quota: no 429 from the quota", async () => {
    // 40 per 3 s: the shared bucket sends 32 per window, so even answers delayed by most of a second on a
    // busy machine do not bunch enough requests into one window to reach its quota.
    const s = (sim = await startBigCommerceSimulator({ products: 5, quota: 40, windowMs: 3_000 }))
    const key = `test:${crypto.randomBytes(6).toString("hex")}`
    const statuses = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          // Two workers: each its own limiter (its own in-process pacing), one budget in Redis.
          const a = yield* SharedRateLimit.make(key, policy)
          const b = yield* SharedRateLimit.make(key, policy)
          const [ra, rb] = yield* Effect.all([hammer(s, a, 40, 4), hammer(s, b, 40, 4)], { concurrency: 2 })
          return [...ra, ...rb]
        })
      ).pipe(Effect.provide(SharedRateLimit.layer(redisUrl)))
    )
    // 80 requests against a quota of 40 per window: several windows, and never one over its quota.
    expect(statuses.filter((c) => c !== 200)).toEqual([])
    expect(s.throttled()).toBe(0)
  }, 120_000)

  it("a token bucket is one budget across limiters", async () => {
    const key = `test:${crypto.randomBytes(6).toString("hex")}`
    const fourth = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          // A bucket of 3 that refills one token per 100 seconds: nothing refills during the test.
          const bucket = Http.RateLimit.tokenBucket({ requestsPerSecond: 0.01, burst: 3 })
          const a = yield* SharedRateLimit.make(key, bucket)
          const b = yield* SharedRateLimit.make(key, bucket)
          yield* a.take
          yield* b.take
          yield* a.take
          // The bucket in Redis is empty: the takes of both limiters came out of it.
          const limiter = yield* RateLimiter.RateLimiter
          return yield* limiter.consume({
            key: `effetl:ratelimit:${key}`,
            algorithm: "token-bucket",
            limit: 3,
            window: "300 seconds",
            onExceeded: "fail"
          }).pipe(Effect.either)
        })
      ).pipe(Effect.provide(SharedRateLimit.layer(redisUrl)))
    )
    expect(fourth._tag).toBe("Left")
  }, 60_000)

  it("without Redis, paces in this worker only and says so", async () => {
    const s = (sim = await startBigCommerceSimulator({ products: 5, quota: 50, windowMs: 1_000 }))
    const logs: Array<string> = []
    const statuses = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          const a = yield* SharedRateLimit.make("test:down", policy)
          return yield* hammer(s, a, 5, 1)
        })
      ).pipe(
        Effect.provide(SharedRateLimit.layer(Redacted.make("redis://127.0.0.1:1/0"))),
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(String(message)))))
      )
    )
    expect(statuses).toEqual([200, 200, 200, 200, 200])
    expect(logs.filter((l) => l.includes("shared rate limit unavailable"))).toHaveLength(1)
  }, 60_000)
})
