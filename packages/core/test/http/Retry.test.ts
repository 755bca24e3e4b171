import * as UndiciClient from "../../src/http/UndiciClient.js"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as ApiClient from "../../src/http/ApiClient.js"
import * as Retry from "../../src/http/Retry.js"
import * as RunStats from "../../src/RunStats.js"
import { captureLogs, drive, json, type Logged, retries, settle, start, waitFor } from "./TestServer.js"

const Ok = Schema.Struct({ ok: Schema.Boolean })

/** Runs a test body with a real HTTP client, captured logs and run counters. */
const withEnv = <A, E>(body: (logs: Array<Logged>) => Effect.Effect<A, E, import("@effect/platform/HttpClient").HttpClient | RunStats.RunStats | import("effect/Scope").Scope>) => {
  const logs: Array<Logged> = []
  return body(logs).pipe(
    Effect.scoped,
    Effect.provide(UndiciClient.layer),
    Effect.provide(RunStats.layer),
    Effect.provide(captureLogs(logs))
  )
}

/** The typed failure of an exit, if it failed with one. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** Asserts that the next attempt waits exactly `delay`: nothing at delay - 1 ms, the request at delay. */
const exactWait = (requests: () => number) => (delay: number) =>
  Effect.gen(function*() {
    const before = requests()
    yield* TestClock.adjust(delay - 1)
    yield* settle(30)
    expect(requests()).toBe(before)
    yield* TestClock.adjust(1)
    yield* waitFor(() => requests() === before + 1, "the retried request")
    return true
  })

describe("Retry over HTTP", () => {
  it.effect("honours Retry-After in seconds", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((_req, res, n) =>
          n === 0 ? json(res, 503, { detail: "down" }, { "retry-after": "7" }) : json(res, 200, { ok: true })
        )
        const client = yield* ApiClient.make({ source: "channel", baseUrl: server.url })
        const { delays, exit } = yield* drive(client.getJson("/x", {}, Ok), logs, {
          onRetry: exactWait(() => server.requests.length)
        })
        expect(exit).toEqual(Exit.succeed({ ok: true }))
        expect(delays).toEqual([7000])
        expect(server.requests.length).toBe(2)
        const stats = yield* RunStats.RunStats
        expect((yield* stats.snapshot).get("channel")?.retries).toBe(1)
        const warning = logs.find((l) => l.level === "WARN")!
        expect(warning.annotations).toMatchObject({ source: "channel", attempt: 1, delay: "7s", reason: "HTTP 503" })
        expect(warning.annotations["url"]).toBe(`${server.url}/x`)
      })
    ))

  it.effect("honours Retry-After as an HTTP-date", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        yield* TestClock.setTime(Date.parse("2030-01-01T00:00:00Z"))
        const server = yield* start((_req, res, n) =>
          n === 0
            ? json(res, 429, { error: "slow down" }, { "retry-after": "Tue, 01 Jan 2030 00:00:12 GMT" })
            : json(res, 200, { ok: true })
        )
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        const { delays, exit } = yield* drive(client.getJson("/x", {}, Ok), logs, {
          onRetry: exactWait(() => server.requests.length)
        })
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(delays).toEqual([12_000])
      })
    ))

  it.effect("honours a vendor reset header (milliseconds)", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((_req, res, n) =>
          n === 0
            ? json(res, 429, { status: 429, title: "Too many" }, { "x-rate-limit-time-reset-ms": "4321" })
            : json(res, 200, { ok: true })
        )
        const client = yield* ApiClient.make({
          source: "bc",
          baseUrl: server.url,
          retry: { resetHeader: { name: "X-Rate-Limit-Time-Reset-Ms", unit: "milliseconds" } }
        })
        const { delays, exit } = yield* drive(client.getJson("/x", {}, Ok), logs, {
          onRetry: exactWait(() => server.requests.length)
        })
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(delays).toEqual([4321])
      })
    ))

  it.effect("a server asking for more than retry.maxWait fails the request at once, saying what it asked and the cap", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 503, { detail: "maintenance" }, { "retry-after": "999999999" }))
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        const { delays, exit } = yield* drive(client.getJson("/x", {}, Ok), logs)
        expect(delays).toEqual([])
        expect(server.requests.length).toBe(1)
        const error = failureOf(exit)!
        expect(error._tag).toBe("ApiError")
        expect(error.message).toBe(
          `source 's': the API failed on GET ${server.url}/x (HTTP 503: maintenance); the server asked to wait 11574d 1h 46m 39s (Retry-After: 999999999), more than retry.maxWait (1m): failing rather than waiting`
        )
      })
    ))

  it.effect("the cap is retry.maxWait: a 429's HTTP-date far ahead fails; a wait within a larger cap is honoured and said in a warning", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        yield* TestClock.setTime(Date.parse("2030-01-01T00:00:00Z"))
        const server = yield* start((req, res, n) =>
          req.url === "/far"
            ? json(res, 429, { error: "slow down" }, { "retry-after": "Wed, 01 Jan 2031 00:00:00 GMT" })
            : n === 1
            ? json(res, 429, { error: "slow down" }, { "retry-after": "90" })
            : json(res, 200, { ok: true })
        )
        const client = yield* ApiClient.make({ source: "shop", baseUrl: server.url, retry: { maxWait: "2 minutes" } })
        const far = yield* Effect.flip(client.getJson("/far", {}, Ok))
        expect(far._tag).toBe("RateLimited")
        expect(far.message).toContain("the server asked to wait 365d (Retry-After: Wed, 01 Jan 2031 00:00:00 GMT), more than retry.maxWait (2m)")
        expect(server.requests.length).toBe(1)
        const { delays, exit } = yield* drive(client.getJson("/near", {}, Ok), logs)
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(delays).toEqual([90_000])
        const announced = retries(logs)
        expect(announced.map((l) => l.level)).toEqual(["WARN"])
        expect(announced[0]!.message).toBe(
          `source 'shop': GET ${server.url}/near failed (HTTP 429); the server asked to wait 1m 30s (Retry-After: 90); retry 1 of 5 in 1m 30s`
        )
        expect(announced[0]!.annotations["serverWaitMillis"]).toBe(90_000)
      })
    ))

  it.effect("a negative or garbage Retry-After is no ask at all: the backoff applies", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((_req, res, n) =>
          n === 0
            ? json(res, 429, {}, { "retry-after": "-30" })
            : n === 1
            ? json(res, 503, {}, { "retry-after": "soon" })
            : json(res, 200, { ok: true })
        )
        const client = yield* ApiClient.make({
          source: "s",
          baseUrl: server.url,
          retry: { baseDelay: "100 millis", jitter: 0 }
        })
        const { delays, exit } = yield* drive(client.getJson("/x", {}, Ok), logs)
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(delays).toEqual([100, 200])
        expect(retries(logs).every((l) => l.annotations["serverWaitMillis"] === undefined)).toBe(true)
      })
    ))

  it.effect("backs off exponentially within the jitter bounds, then gives up with the last error", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 500, { message: "boom" }, { "x-request-id": "rq-1" }))
        const client = yield* ApiClient.make({
          source: "channel",
          baseUrl: server.url,
          retry: { maxRetries: 5, baseDelay: "100 millis", maxDelay: "1 seconds", factor: 2, jitter: 0.2 }
        })
        const { delays, exit } = yield* drive(client.getJson("/x", {}, Ok), logs, {
          onRetry: exactWait(() => server.requests.length)
        })
        expect(server.requests.length).toBe(6)
        const nominal = [100, 200, 400, 800, 1600]
        delays.forEach((d, i) => {
          expect(d).toBeGreaterThanOrEqual(Math.min(nominal[i]! * 0.8, 1000))
          expect(d).toBeLessThanOrEqual(Math.min(nominal[i]! * 1.2, 1000))
        })
        expect(delays[4]).toBe(1000) // 1600 ± 20 % is always above the 1 s cap
        expect(delays[1]! > delays[0]! && delays[2]! > delays[1]! && delays[3]! > delays[2]!).toBe(true)
        const error = failureOf(exit)
        expect(error?._tag).toBe("ApiError")
        expect(error).toMatchObject({ status: 500, vendorMessage: "boom", requestId: "rq-1" })
        expect(error?.message).toBe(
          `source 'channel': the API failed on GET ${server.url}/x (HTTP 500: boom) [request id rq-1] (gave up after 5 retries)`
        )
        const stats = yield* RunStats.RunStats
        expect((yield* stats.snapshot).get("channel")?.retries).toBe(5)
        // every retry is a warning, so trouble shows as it happens
        expect(retries(logs).map((l) => l.level)).toEqual(["WARN", "WARN", "WARN", "WARN", "WARN"])
      })
    ))

  it.effect("gives up on 429 with RateLimited carrying the last asked wait", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 429, { errors: ["Too Many Requests"] }, { "retry-after": "2" }))
        const client = yield* ApiClient.make({ source: "shop", baseUrl: server.url, retry: { maxRetries: 2 } })
        const { delays, exit } = yield* drive(client.getJson("/x", {}, Ok), logs)
        expect(delays).toEqual([2000, 2000])
        expect(server.requests.length).toBe(3)
        expect(exit).toMatchObject({ _tag: "Failure" })
        const failure = failureOf(exit)
        expect(failure?._tag).toBe("RateLimited")
        expect(failure).toMatchObject({ retryAfterMillis: 2000, source: "shop" })
        expect(failure?.message).toContain("HTTP 429 Too Many Requests: Too Many Requests")
        expect(failure?.message).toContain("(gave up after 2 retries)")
      })
    ))

  it.effect("never retries 401: exactly one request, Unauthorized", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 401, { detail: "Invalid token." }))
        const client = yield* ApiClient.make({
          source: "channel",
          baseUrl: server.url,
          auth: { header: "Authorization", value: Redacted.make("Token 0123456789abcdef") }
        })
        const error = yield* Effect.flip(client.getJson("/x", {}, Ok))
        expect(server.requests.length).toBe(1)
        expect(error._tag).toBe("Unauthorized")
        expect(error.message).toBe(
          "source 'channel': the API refused the credentials (HTTP 401: Invalid token.). Check the token."
        )
        expect(logs.filter((l) => l.level === "WARN")).toEqual([])
      })
    ))

  it.effect("never retries 400", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 400, { limit: ["Ensure this value is less than or equal to 100."] }))
        const client = yield* ApiClient.make({ source: "channel", baseUrl: server.url })
        const error = yield* Effect.flip(client.getJson("/x", { params: { limit: 1000 } }, Ok))
        expect(server.requests.length).toBe(1)
        expect(error).toMatchObject({ _tag: "ApiError", status: 400 })
        expect(error.message).toBe(
          `source 'channel': the API answered HTTP 400: limit: Ensure this value is less than or equal to 100. to GET ${server.url}/x?limit=1000`
        )
      })
    ))
})

describe("Retry (schedule)", () => {
  it.effect("retries only retryable failures and reports how many retries were made", () =>
    Effect.gen(function*() {
      let attempts = 0
      const failing = Effect.suspend(() => {
        attempts += 1
        return Effect.fail(attempts < 3 ? Retry.transient("flaky", "test") : Retry.fatal("broken"))
      })
      const fiber = yield* Effect.fork(
        Retry.retry(failing, {
          policy: Retry.policy({ maxRetries: 5, baseDelay: "1 seconds", jitter: 0 }),
          onGiveUp: (e, n) => `${e} after ${n}`
        })
      )
      yield* TestClock.adjust("1 seconds")
      yield* TestClock.adjust("2 seconds")
      const error = yield* Effect.flip(fiber.await.pipe(Effect.flatten))
      // The third attempt failed fatally: no more retries, and the fatal error is reported as it is.
      expect(attempts).toBe(3)
      expect(error).toBe("broken")
    }))

  it.effect("options given as a function are made only once an attempt has failed, and then act as given", () =>
    Effect.gen(function*() {
      let made = 0
      const options = () => {
        made++
        return { policy: Retry.policy({ maxRetries: 2, baseDelay: "1 seconds", jitter: 0 }), onGiveUp: (e: string, n: number) => `${e} after ${n}` }
      }
      expect(yield* Retry.retry(Effect.succeed("first time"), options)).toBe("first time")
      expect(made).toBe(0)
      let attempts = 0
      const fiber = yield* Effect.fork(Retry.retry(Effect.suspend(() => {
        attempts++
        return attempts < 2 ? Effect.fail(Retry.transient("flaky", "test")) : Effect.succeed(`attempt ${attempts}`)
      }), options))
      yield* TestClock.adjust("1 seconds")
      expect(yield* Effect.flatten(fiber.await)).toBe("attempt 2")
      expect(made).toBe(1)
      const failing = yield* Effect.fork(Retry.retry(Effect.fail(Retry.transient("down", "test")), options))
      yield* TestClock.adjust("1 minutes")
      expect(yield* Effect.flip(Effect.flatten(failing.await))).toBe("down after 2")
      expect(made).toBe(2)
    }))

  it.effect("without jitter the delays are exactly base * factor^n, capped", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      const fiber = yield* Effect.fork(
        Retry.retry(Effect.fail(Retry.transient("x", "test")), {
          policy: Retry.policy({ maxRetries: 4, baseDelay: "1 seconds", maxDelay: "5 seconds", factor: 3, jitter: 0 }),
          onRetry: (info) => Effect.sync(() => void seen.push(Duration.toMillis(info.delay))),
          onGiveUp: (e, n) => `${e}:${n}`
        })
      )
      yield* TestClock.adjust("1 minutes")
      const error = yield* Effect.flip(Effect.flatten(fiber.await))
      expect(seen).toEqual([1000, 3000, 5000, 5000])
      expect(error).toBe("x:4")
    }))

  it("serverWaitFrom names the header that asked for the longest wait; maxWait defaults to 60 s (maxServerWait is its old name)", () => {
    const policy = Retry.policy({
      resetHeaders: [{ name: "X-Rate-Limit-Time-Reset-Ms", unit: "milliseconds" }, { name: "X-Retry-After", unit: "seconds" }]
    })
    const headers = { "retry-after": "3", "x-rate-limit-time-reset-ms": "999999999", "x-retry-after": "-1" }
    expect(Retry.serverWaitFrom(policy, headers, 0)).toEqual(
      Option.some({ wait: Duration.millis(999999999), said: "X-Rate-Limit-Time-Reset-Ms: 999999999" })
    )
    expect(Retry.serverWait(policy, { "retry-after": "3" }, 0)).toEqual(Option.some(Duration.millis(3000)))
    expect(Duration.toMillis(Retry.defaults.maxWait)).toBe(60_000)
    expect(Duration.toMillis(Retry.policy({ maxServerWait: "5 seconds" }).maxWait)).toBe(5000)
    expect(Duration.toMillis(Retry.policy({ maxServerWait: "5 seconds", maxWait: "7 seconds" }).maxWait)).toBe(7000)
    const tooLong = Retry.transient("x", "HTTP 429", Retry.serverWaitFrom(policy, headers, 0))
    expect(Retry.waitTooLong(policy, tooLong)).toBe(true)
    expect(tooLong.serverSaid).toBe("X-Rate-Limit-Time-Reset-Ms: 999999999")
  })

  it.effect("a wait over maxWait is never slept: onWaitTooLong rewrites the error at once", () =>
    Effect.gen(function*() {
      let attempts = 0
      const failing = Effect.suspend(() => {
        attempts += 1
        return Effect.fail(
          Retry.transient("limited", "HTTP 429", attempts === 1 ? Option.some(Duration.seconds(1)) : Option.some(Duration.hours(5)))
        )
      })
      const fiber = yield* Effect.fork(
        Retry.retry(failing, {
          policy: Retry.policy({ maxRetries: 5, baseDelay: "1 millis", jitter: 0 }),
          onWaitTooLong: (e, asked, said, n) => `${e}: asked ${Duration.format(asked)} (${said}) after ${n}`
        })
      )
      yield* TestClock.adjust("1 seconds")
      const error = yield* Effect.flip(Effect.flatten(fiber.await))
      expect(attempts).toBe(2)
      expect(error).toBe("limited: asked 5h (undefined) after 1")
    }))

  it("parses Retry-After forms", () => {
    const now = Date.parse("2030-01-01T00:00:00Z")
    expect(Retry.parseRetryAfter("120", now)).toEqual(Option.some(Duration.millis(120_000)))
    expect(Retry.parseRetryAfter("1.5", now)).toEqual(Option.some(Duration.millis(1500)))
    expect(Retry.parseRetryAfter("Tue, 01 Jan 2030 00:01:00 GMT", now)).toEqual(Option.some(Duration.millis(60_000)))
    expect(Retry.parseRetryAfter("Mon, 31 Dec 2029 00:00:00 GMT", now)).toEqual(Option.some(Duration.millis(0)))
    expect(Retry.parseRetryAfter("soon", now)).toEqual(Option.none())
    expect(Retry.parseRetryAfter("-3", now)).toEqual(Option.none())
    expect(Retry.parseReset("1500", "milliseconds")).toEqual(Option.some(Duration.millis(1500)))
    expect(Retry.parseReset("2", "seconds")).toEqual(Option.some(Duration.millis(2000)))
  })
})
