/**
 * One rate budget per vendor credential across every worker of a distributed run, kept in Redis
 * through `@effect/experimental`'s `RateLimiter` (its Redis store runs each step as one Lua script,
 * so workers never race on the count).
 *
 * A limiter made here has core's `Http.RateLimit.Limiter` shape, for the same policies:
 * - a token bucket (`requestsPerSecond`, `burst`) becomes the same bucket in Redis, shared by key;
 * - header-driven pacing (a vendor quota per window, e.g. BigCommerce's `X-Rate-Limit-*`) keeps the
 *   in-process pacing from the server's headers, and adds a shared bucket refilled at
 *   `(1 - headroom) × quota` per window, one request at a time, as soon as the headers told the quota
 *   and the window: whatever the window's phase, all workers together then send at most
 *   `(1 - headroom) × quota + 1` requests in any window. Until a worker knows the budget its
 *   requests go through a shared probe bucket of one request per second.
 *
 * When Redis cannot be reached a limiter falls back to its in-process pacing and logs a warning
 * once: the run goes on, with a per-worker budget.
 */
import { Http } from "@effetl/core"
import type * as Headers from "@effect/platform/Headers"
import * as RateLimiter from "@effect/experimental/RateLimiter"
import * as RedisStore from "@effect/experimental/RateLimiter/Redis"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"

type Policy = Http.RateLimit.Policy
type Limiter = Http.RateLimit.Limiter

/** How a shared limiter leaves room under a vendor's quota. */
export interface SharedOptions {
  /** The share of a window's quota the run leaves unused (default 0.2). */
  readonly headroom?: number
  /** The Redis key prefix (default `effetl:ratelimit:`). */
  readonly prefix?: string
}

/** Makes the limiter of `key` (e.g. `Http.RateLimit.credentialKey`) whose budget every process with the same Redis shares. */
export const make = (
  key: string,
  policy: Policy,
  options: SharedOptions = {}
): Effect.Effect<Limiter, never, Scope.Scope | RateLimiter.RateLimiter> =>
  Effect.gen(function*() {
    const limiter = yield* RateLimiter.RateLimiter
    const local = yield* Http.RateLimit.make(policy)
    const redisKey = `${options.prefix ?? "effetl:ratelimit:"}${key}`
    const headroom = Math.min(0.9, Math.max(0, options.headroom ?? 0.2))
    const warned = yield* Ref.make(false)
    /** One step of the shared budget; an unreachable Redis fails it within 2 seconds (the request then goes on). */
    const consumeWithin = (consume: Parameters<typeof limiter.consume>[0]) =>
      limiter.consume(consume).pipe(
        Effect.timeoutFail({ duration: Duration.seconds(2), onTimeout: () => new Error("Redis did not answer within 2 seconds") })
      )
    /** Takes `consume`'s delay; a store failure leaves the request to the local pacing (warned once). */
    const shared = (consume: Parameters<typeof limiter.consume>[0]) =>
      consumeWithin(consume).pipe(
        Effect.flatMap((r) => (Duration.toMillis(r.delay) > 0 ? Effect.sleep(r.delay) : Effect.void)),
        Effect.catchAll((e) =>
          Effect.flatMap(Ref.getAndSet(warned, true), (done) =>
            done ? Effect.void : Effect.logWarning(`shared rate limit unavailable (${e.message}); pacing in this worker only`))
        )
      )

    if (policy._tag === "TokenBucket") {
      const window = Duration.millis((policy.burst * 1000) / policy.requestsPerSecond)
      return {
        take: shared({ key: redisKey, algorithm: "token-bucket", limit: policy.burst, window, onExceeded: "delay" }),
        observe: () => Effect.void
      }
    }

    // Header-driven: learn the quota and the window from the answers, then share a bucket sized from them.
    const learned = yield* Ref.make<Option.Option<{ readonly quota: number; readonly windowMs: number }>>(Option.none())
    const known = yield* Effect.makeLatch(false)
    const learn = (headers: Headers.Headers) =>
      Effect.flatMap(
        Ref.modify(learned, (was) => {
          // The policy's own reader says the quota and the window (a bucket's: its size over its refill rate).
          const reading = readSafely(policy, headers)
          const quota = positive(reading.quota)
          const window = Option.orElse(positive(reading.windowMillis), () =>
            Option.flatMap(Option.all([quota, positive(reading.refillPerSecond)]), ([q, r]) => Option.some((q / r) * 1000)))
          const now = Option.isSome(quota) && Option.isSome(window) && quota.value > 0 && window.value > 0
            ? Option.some({ quota: quota.value, windowMs: window.value })
            : was
          return [Option.isSome(now), now] as const
        }),
        (isKnown) => (isKnown ? known.open : Effect.void)
      )
    /** The shared bucket of the learned budget: `(1 - headroom) × quota` per window, one request at a time. */
    const budgeted = Effect.flatMap(Ref.get(learned), (budget) => {
      if (Option.isNone(budget)) return Effect.void
      const perWindow = Math.max(1, Math.floor(budget.value.quota * (1 - headroom)))
      return shared({
        key: `${redisKey}:${budget.value.quota}/${budget.value.windowMs}`,
        algorithm: "token-bucket",
        limit: 1,
        window: Duration.millis(budget.value.windowMs / perWindow),
        onExceeded: "delay"
      })
    })
    /**
     * Before any answer told this worker the budget, requests go one per second across every worker
     * (a shared probe bucket), so the workers starting together cannot spend the window blind; a
     * request waiting there goes on as soon as the budget is known, through the budget's bucket.
     */
    const probe = consumeWithin({ key: `${redisKey}:probe`, algorithm: "token-bucket", limit: 1, window: Duration.seconds(1), onExceeded: "delay" }).pipe(
      Effect.flatMap((r) => (Duration.toMillis(r.delay) > 0 ? Effect.raceFirst(Effect.sleep(r.delay), known.await) : Effect.void)),
      Effect.catchAll(() => Effect.void)
    )
    return {
      take: Effect.zipRight(
        local.take,
        Effect.flatMap(Ref.get(learned), (budget) => (Option.isSome(budget) ? budgeted : Effect.zipRight(probe, budgeted)))
      ),
      observe: (headers) => Effect.zipRight(local.observe(headers), learn(headers)),
      ...(local.release !== undefined ? { release: local.release } : {})
    }
  })

/**
 * `RateLimiter` on a Redis store at `url` (`redis://[user:password@]host:port[/db]`, or `rediss://`
 * for TLS). Closing it never fails: a Redis that is gone cannot refuse the goodbye.
 */
export const layer = (url: Redacted.Redacted<string>): Layer.Layer<RateLimiter.RateLimiter> =>
  Layer.scoped(
    RateLimiter.RateLimiter,
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      yield* Effect.addFinalizer(() =>
        Scope.close(scope, Exit.void).pipe(Effect.timeout(Duration.seconds(2)), Effect.catchAllCause(() => Effect.void))
      )
      const store = yield* RedisStore.make(redisOptions(url)).pipe(Scope.extend(scope))
      return yield* RateLimiter.make.pipe(Effect.provideService(RateLimiter.RateLimiterStore, store))
    })
  )

/** ioredis options from a Redis URL (the password stays out of every message). */
export const redisOptions = (url: Redacted.Redacted<string>) => {
  const u = new URL(Redacted.value(url))
  const db = u.pathname.replace(/^\//, "")
  return {
    host: u.hostname,
    port: u.port === "" ? 6379 : Number(u.port),
    ...(u.username !== "" ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== "" ? { password: decodeURIComponent(u.password) } : {}),
    ...(db !== "" ? { db: Number(db) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    // A dead Redis must not hang requests: fail fast and fall back to local pacing.
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    // Reconnect with a growing pause (a Redis that comes back is used again).
    retryStrategy: (times: number) => Math.min(times * 500, 10_000)
  }
}

/** A reading's number when it is positive and finite. */
const positive = (n: number | undefined): Option.Option<number> =>
  n !== undefined && Number.isFinite(n) && n > 0 ? Option.some(n) : Option.none()

/** The policy's reading of a response's headers; a reader that throws reads nothing. */
const readSafely = (policy: Http.RateLimit.HeaderDriven, headers: Headers.Headers): Http.RateLimit.BudgetReading => {
  try {
    return policy.read(headers)
  } catch {
    return {}
  }
}
