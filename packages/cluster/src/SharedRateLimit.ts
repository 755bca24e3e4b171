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
 *   `(1 - headroom) × quota + 1` requests in any window (plus the few sent before the first answer).
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
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"

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
    /** Takes `consume`'s delay; a store failure leaves the request to the local pacing (warned once). */
    const shared = (consume: Parameters<typeof limiter.consume>[0]) =>
      limiter.consume(consume).pipe(
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
    const learn = (headers: Headers.Headers) =>
      Ref.update(learned, (was) => {
        const quota = Option.flatMap(policy.headers.quota, (h) => num(headers[h.toLowerCase()]))
        const window = Option.flatMap(policy.headers.window, (h) => num(headers[h.toLowerCase()]))
        return Option.isSome(quota) && Option.isSome(window) && quota.value > 0 && window.value > 0
          ? Option.some({ quota: quota.value, windowMs: window.value })
          : was
      })
    return {
      take: Effect.zipRight(
        local.take,
        Effect.flatMap(Ref.get(learned), (budget) => {
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
      ),
      observe: (headers) => Effect.zipRight(local.observe(headers), learn(headers)),
      ...(local.release !== undefined ? { release: local.release } : {})
    }
  })

/** `RateLimiter` on a Redis store at `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS). */
export const layer = (url: Redacted.Redacted<string>): Layer.Layer<RateLimiter.RateLimiter> =>
  RateLimiter.layer.pipe(Layer.provide(RedisStore.layerStore(redisOptions(url))))

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

const num = (v: string | undefined): Option.Option<number> => {
  if (v === undefined || v.trim() === "") return Option.none()
  const n = Number(v.trim())
  return Number.isFinite(n) && n >= 0 ? Option.some(n) : Option.none()
}
