import * as Headers from "@effect/platform/Headers"
import * as UndiciClient from "../../src/http/UndiciClient.js"
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as ApiClient from "../../src/http/ApiClient.js"
import * as RateLimit from "../../src/http/RateLimit.js"
import { captureLogs, json, type Logged, settle, start, waitFor } from "./TestServer.js"

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
      Effect.provide(UndiciClient.layer)
    ))

  it("keys the registry by a hash, never the credential", () => {
    const key = RateLimit.credentialKey(Redacted.make("Token abcdef123456"))
    expect(key).toMatch(/^credential:sha256:[0-9a-f]{64}$/)
    expect(key).not.toContain("abcdef123456")
    expect(RateLimit.credentialKey(Redacted.make("Token abcdef123456"))).toBe(key)
  })
})

describe("RateLimit.Backend", () => {
  it.scoped("makes the registry's limiters when one is in the context (by key and policy), once per key", () =>
    Effect.gen(function*() {
      const made: Array<{ key: string; policy: RateLimit.Policy }> = []
      let takes = 0
      const backend = RateLimit.Backend.of({
        make: (key, policy) =>
          Effect.sync(() => {
            made.push({ key, policy })
            return { take: Effect.sync(() => void takes++), observe: () => Effect.void }
          })
      })
      const policy = RateLimit.tokenBucket({ requestsPerSecond: 1 })
      const key = `backend-test:${Math.random()}`
      const first = yield* RateLimit.shared(key, policy).pipe(Effect.provideService(RateLimit.Backend, backend))
      const second = yield* RateLimit.shared(key, policy).pipe(Effect.provideService(RateLimit.Backend, backend))
      yield* first.take
      yield* second.take
      yield* first.take
      // One limiter for the key, made by the backend with the policy; every take went through it.
      expect(made).toEqual([{ key, policy }])
      expect(takes).toBe(3)
    }))

  it.scoped("without one, limiters stay in-process", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.shared(`no-backend:${Math.random()}`, RateLimit.tokenBucket({ requestsPerSecond: 1000, burst: 5 }))
      for (let i = 0; i < 5; i++) yield* limiter.take
      expect(yield* RateLimit.sharedCount).toBeGreaterThan(0)
    }))
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
    }).pipe(Effect.scoped, Effect.provide(UndiciClient.layer)))
})

describe("RateLimit header-driven: waits are bounded by retry.maxWait and announced", () => {
  const policy = RateLimit.fromHeaders({ left: "X-Rate-Limit-Requests-Left", reset: "X-Rate-Limit-Time-Reset-Ms", reserve: 0 })

  it.scoped("takeBounded fails with WaitTooLong (and the request does not start) instead of a days-long sleep", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(policy)
      yield* limiter.observe(Headers.fromInput({ "X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "999999999" }))
      const error = yield* Effect.flip(RateLimit.takeWithin(limiter, { maxWait: Duration.seconds(60) }))
      expect(error._tag).toBe("WaitTooLong")
      expect(Duration.toMillis(error.wait)).toBe(999999999)
      expect(error.said).toBe("X-Rate-Limit-Requests-Left: 0, X-Rate-Limit-Time-Reset-Ms: 999999999")
      // A take within bounds once the window resets goes at once: the refused take left no trace.
      yield* TestClock.adjust(999999999)
      expect(yield* takeTimes(limiter, 1, 1, 0)).toEqual([999999999])
    }))

  it.effect("an ApiClient fails the source with what the headers said and the cap, and warns when a shorter reset wait starts", () => {
    const logs: Array<Logged> = []
    return Effect.gen(function*() {
      let reset = "999999999"
      const server = yield* start((_req, res) =>
        json(res, 200, { ok: true }, { "x-rate-limit-requests-left": "0", "x-rate-limit-time-reset-ms": reset })
      )
      const client = yield* ApiClient.make({ source: "bc", baseUrl: server.url, rateLimit: policy, rateLimitKey: "test-bc-maxwait" })
      yield* client.getJson("/1", {}, Ok) // learns: nothing left, the window resets in 11.6 days
      const error = yield* Effect.flip(client.getJson("/2", {}, Ok))
      expect(server.requests.length).toBe(1)
      expect(error._tag).toBe("RateLimited")
      expect(error.message).toBe(
        `source 'bc': the API's rate-limit headers ask to wait 11d 13h 46m 39s 999ms before GET ${server.url}/2 (X-Rate-Limit-Requests-Left: 0, X-Rate-Limit-Time-Reset-Ms: 999999999), more than retry.maxWait (1m): failing rather than waiting`
      )
      // A reset within the cap is waited for, with a warning when the wait starts.
      yield* TestClock.adjust(999999999)
      reset = "3000"
      yield* client.getJson("/3", {}, Ok)
      const fourth = yield* Effect.fork(client.getJson("/4", {}, Ok))
      yield* waitFor(() => logs.some((l) => l.message.includes("rate budget is spent")), "the announced wait")
      const warning = logs.find((l) => l.message.includes("rate budget is spent"))!
      expect(warning.level).toBe("WARN")
      expect(warning.message).toBe(
        `source 'bc': the API's rate budget is spent (X-Rate-Limit-Requests-Left: 0, X-Rate-Limit-Time-Reset-Ms: 3000); waiting 3s before GET ${server.url}/4`
      )
      expect(server.requests.length).toBe(2)
      yield* TestClock.adjust(3000)
      yield* Fiber.join(fourth)
      expect(server.requests.length).toBe(3)
    }).pipe(Effect.scoped, Effect.provide(UndiciClient.layer), Effect.provide(captureLogs(logs)))
  })
})

describe("RateLimit header-driven: in-flight requests, windows, the quota's rate", () => {
  const names = {
    left: "X-Rate-Limit-Requests-Left",
    reset: "X-Rate-Limit-Time-Reset-Ms",
    quota: "X-Rate-Limit-Requests-Quota",
    window: "X-Rate-Limit-Time-Window-Ms"
  }
  const budget = (left: number, resetMs: number, quota = 150, windowMs = 30_000) =>
    Headers.fromInput({
      [names.left]: String(left),
      [names.reset]: String(resetMs),
      [names.quota]: String(quota),
      [names.window]: String(windowMs)
    })

  it.scoped("below the threshold, never slower than the quota's own rate (window ÷ quota), then waits at the reserve", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.fromHeaders({ ...names, slowDownBelow: 0.5, reserve: 1 }))
      // 6 left, 10 s to the reset: spreading 5 usable over 10 s would be one per 2 s; the quota's
      // rate is 150 per 30 s, one per 200 ms. The sixth request waits for the reset.
      yield* limiter.observe(budget(6, 10_000))
      expect(yield* takeTimes(limiter, 6, 100, 10_000)).toEqual([0, 200, 400, 600, 800, 10_000])
    }))

  it.scoped("without the window header, spreads over what is left of the window as before", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.fromHeaders({ left: names.left, reset: names.reset, quota: names.quota }))
      yield* limiter.observe(budget(6, 10_000))
      expect(yield* takeTimes(limiter, 5, 100, 10_000)).toEqual([0, 2000, 4000, 6000, 8000])
    }))

  it.scoped("requests in flight count as spent: an answer the server sent before counting them does not raise the estimate", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.fromHeaders({ ...names, slowDownBelow: 0, reserve: 1 }))
      yield* limiter.observe(budget(10, 5000, 10))
      // Four requests go at once; the first one's answer says 9 left, the other three are still in flight.
      expect(yield* takeTimes(limiter, 4, 100, 0)).toEqual([0, 0, 0, 0])
      yield* limiter.observe(budget(9, 5000, 10))
      // 9 - 3 in flight = 6, 1 in reserve: five more now, the next at the reset.
      expect(yield* takeTimes(limiter, 6, 100, 5000)).toEqual([0, 0, 0, 0, 0, 5000])
    }))

  it.scoped("released requests stop counting; answers out of order keep the lowest left of the window", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.fromHeaders({ ...names, slowDownBelow: 0, reserve: 1 }))
      yield* limiter.observe(budget(5, 5000, 10))
      yield* takeTimes(limiter, 2, 100, 0)
      // The second request's answer (3 left) arrives before the first's (4 left).
      yield* limiter.observe(budget(3, 4990, 10))
      yield* limiter.observe(budget(4, 4995, 10))
      yield* limiter.release!
      yield* limiter.release!
      // 3 left, none in flight, 1 in reserve: two now, then the reset.
      expect(yield* takeTimes(limiter, 3, 10, 5000)).toEqual([0, 0, 4990])
    }))

  it.scoped("a late answer from a past window is ignored; an answer from the next window replaces the estimate", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.fromHeaders({ ...names, slowDownBelow: 0, reserve: 1 }))
      yield* limiter.observe(budget(2, 3000, 150, 4000))
      yield* limiter.observe(budget(140, 500, 150, 4000)) // sent in the window before: it resets far earlier
      expect(yield* takeTimes(limiter, 2, 100, 3000)).toEqual([0, 3000])
      const limiter2 = yield* RateLimit.make(RateLimit.fromHeaders({ ...names, slowDownBelow: 0, reserve: 1 }))
      yield* limiter2.observe(budget(1, 50, 150, 4000))
      yield* limiter2.observe(budget(149, 4000, 150, 4000)) // the server's window already reset
      const now = yield* Clock.currentTimeMillis
      expect(yield* takeTimes(limiter2, 3, 10, 0)).toEqual([now, now, now])
    }))

  it.scoped("a take interrupted while it waits no longer counts as in flight", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.make(RateLimit.fromHeaders({ ...names, slowDownBelow: 0, reserve: 1 }))
      yield* limiter.observe(budget(2, 5000, 10))
      yield* takeTimes(limiter, 1, 10, 0)
      // One in flight, one in reserve: the next take waits for the reset; it is given up.
      const waiting = yield* Effect.fork(limiter.take)
      yield* TestClock.adjust(10)
      yield* Fiber.interrupt(waiting)
      yield* limiter.release!
      // Had the interrupted take stayed counted, this one would wait for the reset too.
      expect(yield* takeTimes(limiter, 1, 10, 0)).toEqual([10])
    }))

  it.live("an ApiClient against a fixed-window server: concurrent requests never drive Requests-Left to 0 and get no 429", () =>
    Effect.gen(function*() {
      const quota = 12
      const windowMs = 300
      let windowEnd = 0
      let used = 0
      let lowest = quota
      let throttled = 0
      const server = yield* start((_req, res) => {
        const now = Date.now()
        if (now >= windowEnd) {
          windowEnd = now + windowMs
          used = 0
        }
        const headers = (left: number) => ({
          "x-rate-limit-requests-left": String(left),
          "x-rate-limit-time-reset-ms": String(Math.max(0, windowEnd - now)),
          "x-rate-limit-requests-quota": String(quota),
          "x-rate-limit-time-window-ms": String(windowMs)
        })
        if (used >= quota) {
          throttled += 1
          return json(res, 429, [{ status: 429, message: "Too many requests" }], headers(0))
        }
        used += 1
        lowest = Math.min(lowest, quota - used)
        // A little latency, so several requests are in flight at once.
        setTimeout(() => json(res, 200, { ok: true }, headers(quota - used)), 3)
      })
      const client = yield* ApiClient.make({
        source: "bc",
        baseUrl: server.url,
        rateLimit: RateLimit.fromHeaders({ ...names, slowDownBelow: 0.25, reserve: 1 }),
        rateLimitKey: "test-fixed-window",
        retry: { baseDelay: "1 millis", maxDelay: "5 millis", resetHeader: { name: names.reset, unit: "milliseconds" } }
      })
      yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) => client.getJson(`/r${i}`, {}, Ok), { concurrency: 6 })
      expect(server.requests.length).toBe(40)
      expect(throttled).toBe(0)
      expect(lowest).toBeGreaterThanOrEqual(1)
    }).pipe(Effect.scoped, Effect.provide(UndiciClient.layer)))
})
