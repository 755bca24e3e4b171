import * as Headers from "@effect/platform/Headers"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as ApiClient from "../../src/http/ApiClient.js"
import * as RateLimit from "../../src/http/RateLimit.js"
import { json, settle, start, waitFor } from "./TestServer.js"

/** Starts `n` takes at once and returns, per take, the clock time at which it was let through. */
const takeTimes = (limiter: RateLimit.Limiter, n: number, step: number, until: number) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    const fibers = yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => i),
      (i) => Effect.fork(Effect.zipRight(limiter.take, Effect.map(Clock.currentTimeMillis, (t) => void (times[i] = t)))),
      { concurrency: "unbounded" }
    )
    for (let t = 0; t < until; t += step) yield* TestClock.adjust(step)
    yield* Fiber.joinAll(fibers)
    return times.sort((a, b) => a - b)
  })

const Ok = Schema.Struct({ ok: Schema.Boolean })

describe("RateLimit token bucket", () => {
  it.scoped("lets `burst` through at once, then one every 1/requestsPerSecond", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.tokenBucket({ requestsPerSecond: 2, burst: 3 }))
      const times = yield* takeTimes(limiter, 7, 100, 3000)
      expect(times).toEqual([0, 0, 0, 500, 1000, 1500, 2000])
    }))

  it.scoped("refills up to the burst while idle", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.tokenBucket({ requestsPerSecond: 4, burst: 2 }))
      const first = yield* takeTimes(limiter, 2, 50, 0)
      expect(first).toEqual([0, 0])
      yield* TestClock.adjust("10 seconds")
      const start = yield* Clock.currentTimeMillis
      const second = yield* takeTimes(limiter, 4, 50, 1000)
      expect(second.map((t) => t - start)).toEqual([0, 0, 250, 500])
    }))

  it.effect("clients with the same credential share one budget; other credentials do not", () =>
    Effect.gen(function*() {
      const server = yield* start((_req, res) => json(res, 200, { ok: true }))
      const policy = RateLimit.tokenBucket({ requestsPerSecond: 1, burst: 1 })
      const token = { header: "Authorization", value: Redacted.make("Token shared-credential-1") }
      const a = yield* ApiClient.make({ source: "a", baseUrl: server.url, auth: token, rateLimit: policy })
      const b = yield* ApiClient.make({ source: "b", baseUrl: server.url, auth: token, rateLimit: policy })
      const c = yield* ApiClient.make({
        source: "c",
        baseUrl: server.url,
        auth: { header: "Authorization", value: Redacted.make("Token other-credential-2") },
        rateLimit: policy
      })
      expect(yield* RateLimit.sharedCount).toBe(2)
      const fibers = yield* Effect.forEach(
        [a, b, a, b, c],
        (client, i) => Effect.fork(client.getJson(`/r${i}`, {}, Ok)),
        { concurrency: "unbounded" }
      )
      // At t=0: one request on the shared budget and one on the other credential's.
      yield* waitFor(() => server.requests.length === 2, "two requests at t=0")
      yield* settle(30)
      expect(server.requests.length).toBe(2)
      expect(server.requests.filter((r) => r.headers["authorization"] === "Token other-credential-2").length).toBe(1)
      // Then one more every second, all from the shared budget.
      for (const expected of [3, 4, 5]) {
        yield* TestClock.adjust("1 seconds")
        yield* waitFor(() => server.requests.length === expected, `${expected} requests`)
        yield* settle(20)
        expect(server.requests.length).toBe(expected)
      }
      yield* Fiber.joinAll(fibers)
    }).pipe(
      Effect.scoped,
      Effect.zipRight(Effect.map(RateLimit.sharedCount, (n) => expect(n).toBe(0))),
      Effect.provide(NodeHttpClient.layerUndici)
    ))

  it("keys the registry by a hash, never the credential", () => {
    const key = RateLimit.credentialKey(Redacted.make("Token abcdef123456"))
    expect(key).toMatch(/^credential:sha256:[0-9a-f]{64}$/)
    expect(key).not.toContain("abcdef123456")
    expect(RateLimit.credentialKey(Redacted.make("Token abcdef123456"))).toBe(key)
  })
})

describe("RateLimit header-driven", () => {
  const policy = RateLimit.fromHeaders({
    left: "X-Rate-Limit-Requests-Left",
    reset: "X-Rate-Limit-Time-Reset-Ms",
    quota: "X-Rate-Limit-Requests-Quota",
    slowDownBelow: 0.5,
    reserve: 1
  })
  const budget = (left: number, resetMs: number, quota = 150) =>
    Headers.fromInput({
      "X-Rate-Limit-Requests-Left": String(left),
      "X-Rate-Limit-Time-Reset-Ms": String(resetMs),
      "X-Rate-Limit-Requests-Quota": String(quota)
    })

  it.scoped("goes at once while plenty is left", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(policy)
      yield* limiter.observe(budget(140, 30_000))
      expect(yield* takeTimes(limiter, 5, 100, 0)).toEqual([0, 0, 0, 0, 0])
    }))

  it.scoped("spreads the remaining requests over the window when little is left, keeping a reserve", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(policy)
      // 5 left, 1 kept in reserve: 4 usable over 4 s -> one per second.
      yield* limiter.observe(budget(5, 4000))
      const times = yield* takeTimes(limiter, 4, 100, 4000)
      expect(times).toEqual([0, 1000, 2000, 3000])
    }))

  it.scoped("waits for the window to reset when only the reserve is left", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(policy)
      yield* limiter.observe(budget(1, 2500))
      const times = yield* takeTimes(limiter, 1, 100, 3000)
      expect(times).toEqual([2500])
    }))

  it.effect("paces an ApiClient from the response headers so Requests-Left never reaches 0", () =>
    Effect.gen(function*() {
      let left = 3
      const server = yield* start((_req, res) => {
        left -= 1
        json(res, 200, { ok: true }, {
          "x-rate-limit-requests-left": String(left),
          "x-rate-limit-time-reset-ms": "5000",
          "x-rate-limit-requests-quota": "3"
        })
      })
      const client = yield* ApiClient.make({ source: "bc", baseUrl: server.url, rateLimit: policy, rateLimitKey: "test-bc" })
      yield* client.getJson("/1", {}, Ok) // learns: 2 left, reset in 5 s
      const fiber = yield* Effect.fork(client.getJson("/2", {}, Ok))
      // 2 left, 1 in reserve: one usable, spread over the 5 s window -> it goes now.
      yield* waitFor(() => server.requests.length === 2, "the second request")
      yield* Fiber.join(fiber)
      // Now 1 left = the reserve: the third waits for the reset.
      const third = yield* Effect.fork(client.getJson("/3", {}, Ok))
      yield* TestClock.adjust(4999)
      yield* settle(30)
      expect(server.requests.length).toBe(2)
      expect(left).toBe(1)
      yield* TestClock.adjust(1)
      yield* Fiber.join(third)
      expect(server.requests.length).toBe(3)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))
})
