/**
 * The rate limiter's open header policy, with the ready-made Shopify policy: its reader of
 * `X-Shopify-Shop-Api-Call-Limit: used/size`, the leaky-bucket pacing (fake time), and an ApiClient
 * against a tiny Shopify-style simulator (`Server.serve`, a real leaky bucket on 127.0.0.1).
 */
import * as Headers from "@effect/platform/Headers"
import * as UndiciClient from "../../src/http/UndiciClient.js"
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as ApiClient from "../../src/http/ApiClient.js"
import * as RateLimit from "../../src/http/RateLimit.js"
import * as Server from "../../src/simulator/Server.js"

const callLimit = (value: string) => Headers.fromInput({ "X-Shopify-Shop-Api-Call-Limit": value })

describe("RateLimit.readShopifyCallLimit", () => {
  it("reads used/size as the remaining calls, the bucket's size and its leak rate", () => {
    expect(RateLimit.readShopifyCallLimit()(callLimit("32/40"))).toEqual({ remaining: 8, quota: 40, refillPerSecond: 2 })
    expect(RateLimit.readShopifyCallLimit(4)(callLimit(" 80 / 80 "))).toEqual({ remaining: 0, quota: 80, refillPerSecond: 4 })
    expect(RateLimit.readShopifyCallLimit()(callLimit("n/a"))).toEqual({})
    expect(RateLimit.readShopifyCallLimit()(Headers.empty)).toEqual({})
  })
})

describe("RateLimit.shopifyCallLimit: leaky-bucket pacing (fake time)", () => {
  /** Starts `n` takes at once; per take, the clock time it was let through. */
  const takeTimes = (limiter: RateLimit.Limiter, n: number, until: number) =>
    Effect.gen(function*() {
      const times: Array<number> = []
      const fibers = yield* Effect.forEach(
        Array.from({ length: n }, (_, i) => i),
        (i) => Effect.fork(Effect.zipRight(limiter.take, Effect.map(Clock.currentTimeMillis, (t) => void (times[i] = t)))),
        { concurrency: "unbounded" }
      )
      for (let t = 0; t < until; t += 50) yield* TestClock.adjust(50)
      yield* Fiber.joinAll(fibers)
      return times.sort((a, b) => a - b)
    })

  it.scoped("goes at once while plenty is left, then one call per leak interval (2/s: 500 ms), the first paced one in a free slot", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.shopifyCallLimit({ slowDownBelow: 0.5, reserve: 1 }))
      yield* limiter.observe(callLimit("3/10")) // 7 left: above half the bucket
      expect(yield* takeTimes(limiter, 5, 2000)).toEqual([0, 0, 0, 500, 1000])
    }))

  it.scoped("with only the reserve left, waits until the bucket has leaked one more call", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.shopifyCallLimit({ reserve: 1 }))
      yield* limiter.observe(callLimit("40/40")) // full: 0 left, 1 in reserve -> 2 calls must leak out
      expect(yield* takeTimes(limiter, 2, 2000)).toEqual([1000, 1500])
    }))

  it("two clients on one credential with different policies are told apart by the policy's name", () => {
    expect(RateLimit.shopifyCallLimit().name).not.toBe(RateLimit.shopifyCallLimit({ leakPerSecond: 4 }).name)
    expect(JSON.stringify(RateLimit.shopifyCallLimit())).toBe(JSON.stringify(RateLimit.shopifyCallLimit()))
  })
})

/**
 * A Shopify-style API on 127.0.0.1: a leaky bucket of `size` calls leaking `leak` per second; every
 * answer carries `X-Shopify-Shop-Api-Call-Limit: used/size`, a call into a full bucket gets 429.
 */
const shopifyLike = (size: number, leak: number) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      let level = 0
      let at = Date.now()
      const counts = { ok: 0, throttled: 0, lowestLeft: size }
      const drain = () => {
        const now = Date.now()
        level = Math.max(0, level - ((now - at) / 1000) * leak)
        at = now
      }
      const served = await Server.serve({
        name: "shopify-like",
        respond: () => {
          drain()
          if (level + 1 > size) {
            counts.throttled++
            return Server.json(429, { errors: "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service." }, {
              "Retry-After": "1.0",
              "X-Shopify-Shop-Api-Call-Limit": `${Math.ceil(level)}/${size}`
            })
          }
          level += 1
          counts.ok++
          counts.lowestLeft = Math.min(counts.lowestLeft, size - Math.ceil(level))
          return Server.json(200, { products: [] }, { "X-Shopify-Shop-Api-Call-Limit": `${Math.ceil(level)}/${size}` })
        },
        serverErrors: [Server.json(503, { errors: "Unavailable" })],
        throttled: () => Server.json(429, { errors: "Throttled" })
      })
      return { served, counts }
    }),
    ({ served }) => Effect.promise(() => served.close())
  )

const Products = Schema.Struct({ products: Schema.Array(Schema.Unknown) })

describe("RateLimit.shopifyCallLimit over real HTTP", () => {
  it.live("paces concurrent calls so the bucket never overflows: no 429, while the same load unpaced is throttled", () =>
    Effect.gen(function*() {
      const size = 10
      const leak = 25
      const hammer = (policy: RateLimit.Policy | undefined, key: string) =>
        Effect.gen(function*() {
          const sim = yield* shopifyLike(size, leak)
          const client = yield* ApiClient.make({
            source: "shop",
            baseUrl: sim.served.origin,
            retry: { maxRetries: 0 },
            rateLimitKey: key,
            ...(policy === undefined ? {} : { rateLimit: policy })
          })
          const results = yield* Effect.forEach(
            Array.from({ length: 40 }, (_, i) => i),
            (i) => Effect.either(client.getJson(`/admin/api/2024-01/products.json?page=${i}`, {}, Products)),
            { concurrency: 6 }
          )
          return { ...sim.counts, failed: results.filter(Either.isLeft).map((e) => e.left._tag) }
        }).pipe(Effect.scoped)

      const paced = yield* hammer(RateLimit.shopifyCallLimit({ leakPerSecond: leak, reserve: 1 }), "shopify-paced")
      expect(paced.failed).toEqual([])
      expect(paced.throttled).toBe(0)
      expect(paced.ok).toBe(40)
      expect(paced.lowestLeft).toBeGreaterThanOrEqual(0)

      const unpaced = yield* hammer(undefined, "shopify-unpaced")
      expect(unpaced.throttled).toBeGreaterThan(0)
      expect(unpaced.failed).toContain("RateLimited")
    }).pipe(Effect.provide(UndiciClient.layer)))
})

describe("RateLimit.headerPolicy with any reader", () => {
  it.scoped("a wait too long says what the reader read when the policy names no headers", () =>
    Effect.gen(function*() {
      const policy = RateLimit.headerPolicy({
        name: "custom",
        read: (headers) => ({ remaining: Number(headers["x-left"]), resetMillis: Number(headers["x-reset-ms"]) }),
        reserve: 0
      })
      const limiter = yield* RateLimit.make(policy)
      yield* limiter.observe(Headers.fromInput({ "X-Left": "0", "X-Reset-Ms": "90000" }))
      const error = yield* Effect.flip(RateLimit.takeWithin(limiter, { maxWait: Duration.seconds(60) }))
      expect(error.said).toBe("remaining 0, reset in 90000 ms")
    }))

  it.scoped("a reader that throws on odd headers reads nothing: requests go on", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.headerPolicy({
        name: "throws",
        read: () => {
          throw new Error("odd header")
        }
      }))
      yield* limiter.observe(Headers.fromInput({ "X-Anything": "?" }))
      const fiber = yield* Effect.fork(limiter.take)
      yield* TestClock.adjust(0)
      yield* Fiber.join(fiber)
    }))
})
