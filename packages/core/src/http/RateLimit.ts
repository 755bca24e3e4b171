/**
 * RateLimit: proactive pacing of requests, shared by every request made with one credential.
 *
 * Two kinds of {@link Policy}:
 * - `TokenBucket` (`requestsPerSecond`, `burst`): a bucket of `burst` tokens refilled at
 *   `requestsPerSecond`; each request takes one. Built on `effect/RateLimiter`. A leaky bucket of
 *   capacity N leaking r/s (Shoplazza: 40, 2/s) is the same budget: `{ requestsPerSecond: r, burst: N }`.
 * - `Headers`: adaptive pacing driven by the server's budget headers. The policy is open: a
 *   {@link BudgetReader} is a function from a response's headers to a {@link BudgetReading} (requests
 *   remaining, time to the reset, quota, window length, or a refill rate for a budget regained
 *   continuously), so any vendor's headers can drive it. Ready-made: {@link fromHeaders} (a fixed
 *   window's headers by name, e.g. BigCommerce's `X-Rate-Limit-*`) and {@link shopifyCallLimit}
 *   (`X-Shopify-Shop-Api-Call-Limit: 32/40`, a leaky bucket leaking 2/s).
 *   For a fixed window: while plenty is left requests go at once; below `slowDownBelow` of the
 *   quota the remaining requests are spread over the time left (never slower than the quota's own
 *   rate, window ÷ quota, when the window length is known), keeping `reserve` requests unused, so
 *   the budget never reaches 0 by our doing. Requests still in flight count as spent (the server
 *   may not have counted them in the last figure it sent), and a late answer from an earlier
 *   window never raises the estimate. For a budget regained continuously (a leaky bucket): at once
 *   while plenty is left, then one request per refill interval, and at the reserve, as soon as one
 *   more has leaked out. A wait the headers call for is bounded: through
 *   {@link Limiter.takeBounded} a wait longer than the caller's `maxWait` (a reset days away) fails
 *   with {@link WaitTooLong} instead of sleeping, and a wait for a window to reset is announced
 *   before it starts.
 *
 * Limiters are shared through a process-wide registry keyed by {@link credentialKey} (a SHA-256 of
 * the credential, never the credential itself): two sources with the same token share one budget.
 * A registry entry lives while any scope that acquired it is open. A {@link Backend} in the context
 * (e.g. `@effetl/cluster`'s Redis-backed one on a worker) makes the registry's limiters instead, so
 * one credential's budget can be shared by several processes.
 */
import { createHash } from "node:crypto"
import type * as Headers from "@effect/platform/Headers"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { globalValue } from "effect/GlobalValue"
import * as Option from "effect/Option"
import * as RateLimiter from "effect/RateLimiter"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"

// ---------------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------------

/** A token bucket: `burst` requests at once, then `requestsPerSecond`. */
export interface TokenBucket {
  readonly _tag: "TokenBucket"
  readonly requestsPerSecond: number
  readonly burst: number
}

/**
 * What one response's headers say about the request budget. Leave out what they do not say (a 429
 * may carry only the reset).
 */
export interface BudgetReading {
  /** Requests the server will still accept now (a window's `left`, a bucket's capacity less its level). */
  readonly remaining?: number
  /** Milliseconds until the whole budget is back (a fixed window's reset). */
  readonly resetMillis?: number
  /** The budget's size: a window's quota, a bucket's capacity. */
  readonly quota?: number
  /** A fixed window's length in milliseconds: with `quota`, pacing is never slower than quota per window. */
  readonly windowMillis?: number
  /**
   * For a budget that comes back continuously (a leaky bucket), requests regained per second. With
   * it the limiter counts the budget back between answers and paces at this rate when little is
   * left; `resetMillis` is then not needed.
   */
  readonly refillPerSecond?: number
}

/**
 * Reads the budget from a response's headers (`@effect/platform` headers: names in lower case).
 * This is the open part of a header policy: any vendor's budget headers become a reader.
 */
export type BudgetReader = (headers: Headers.Headers) => BudgetReading

/** Adaptive pacing from the server's budget headers, read by a {@link BudgetReader}. */
export interface HeaderDriven {
  readonly _tag: "Headers"
  /** The reader's name (`bigcommerce-quota`, `shopify-call-limit`): limiters sharing a credential compare policies by it. */
  readonly name: string
  /** Reads the budget from each response's headers. */
  readonly read: BudgetReader
  /** The headers the reader reads, as messages quote them ("what the server said"). */
  readonly said: ReadonlyArray<string>
  /** Below this fraction of the quota (or always, when no quota is known) requests are paced. */
  readonly slowDownBelow: number
  /** Requests never used by us, left for others sharing the quota. */
  readonly reserve: number
}

/** A rate-limit policy. */
export type Policy = TokenBucket | HeaderDriven

/** A token bucket of `burst` (default: `ceil(requestsPerSecond)`, at least 1) refilled at `requestsPerSecond`. */
export const tokenBucket = (options: { readonly requestsPerSecond: number; readonly burst?: number }): TokenBucket => {
  if (!(options.requestsPerSecond > 0)) throw new RangeError("requestsPerSecond must be > 0")
  return {
    _tag: "TokenBucket",
    requestsPerSecond: options.requestsPerSecond,
    burst: Math.max(1, Math.floor(options.burst ?? Math.ceil(options.requestsPerSecond)))
  }
}

/** Adaptive pacing from any budget headers: a name, a {@link BudgetReader}, and how much room to leave. */
export const headerPolicy = (options: {
  readonly name: string
  readonly read: BudgetReader
  /** The headers the reader reads, quoted in messages (default: none quoted). */
  readonly said?: ReadonlyArray<string>
  /** Below this fraction of the quota requests are paced (default 0.5). */
  readonly slowDownBelow?: number
  /** Requests left unused for others sharing the quota (default 1). */
  readonly reserve?: number
}): HeaderDriven => ({
  _tag: "Headers",
  name: options.name,
  read: options.read,
  said: options.said ?? [],
  slowDownBelow: Math.min(1, Math.max(0, options.slowDownBelow ?? 0.5)),
  reserve: Math.max(0, Math.floor(options.reserve ?? 1))
})

/** Names and units of a fixed window's budget headers. */
export interface WindowHeaders {
  /** Requests left in the current window, e.g. `X-Rate-Limit-Requests-Left`. */
  readonly left: string
  /** Time until the window resets, e.g. `X-Rate-Limit-Time-Reset-Ms`. */
  readonly reset: string
  /** Unit of the reset header (default milliseconds). */
  readonly resetUnit?: "milliseconds" | "seconds"
  /** The window's quota, e.g. `X-Rate-Limit-Requests-Quota`. */
  readonly quota?: string
  /** The window's length in milliseconds, e.g. `X-Rate-Limit-Time-Window-Ms`. */
  readonly window?: string
}

/** A reader of a fixed window's budget headers, by name (numbers only; anything else is not read). */
export const windowHeaders = (names: WindowHeaders): BudgetReader => (headers) => {
  const get = (name: string | undefined) => (name === undefined ? undefined : num(headers[name.toLowerCase()]))
  const reset = get(names.reset)
  return defined({
    remaining: get(names.left),
    resetMillis: reset === undefined ? undefined : names.resetUnit === "seconds" ? reset * 1000 : reset,
    quota: get(names.quota),
    windowMillis: get(names.window)
  })
}

/** Adaptive pacing from a fixed window's budget headers, by name ({@link windowHeaders} in a {@link headerPolicy}). */
export const fromHeaders = (options: WindowHeaders & {
  readonly slowDownBelow?: number
  readonly reserve?: number
}): HeaderDriven =>
  headerPolicy({
    name: `window-headers:${[options.left, options.reset, options.resetUnit ?? "milliseconds", options.quota ?? "", options.window ?? ""].join(",")}`,
    read: windowHeaders(options),
    said: [options.left, options.reset],
    ...(options.slowDownBelow !== undefined ? { slowDownBelow: options.slowDownBelow } : {}),
    ...(options.reserve !== undefined ? { reserve: options.reserve } : {})
  })

/** Shopify's REST budget header: `X-Shopify-Shop-Api-Call-Limit: 32/40` (calls in the bucket / its size). */
export const shopifyCallLimitHeader = "X-Shopify-Shop-Api-Call-Limit"

/**
 * Reads Shopify's leaky bucket from `X-Shopify-Shop-Api-Call-Limit: used/size`: `size - used`
 * remaining, regained at `leakPerSecond` (2 on standard plans, 4 on Plus).
 */
export const readShopifyCallLimit = (leakPerSecond: number = 2): BudgetReader => (headers) => {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(headers[shopifyCallLimitHeader.toLowerCase()] ?? "")
  if (m === null) return {}
  const used = Number(m[1])
  const size = Number(m[2])
  return { remaining: Math.max(0, size - used), quota: size, refillPerSecond: leakPerSecond }
}

/**
 * The ready-made policy for Shopify's REST Admin API: its leaky bucket read from
 * `X-Shopify-Shop-Api-Call-Limit` (default leak 2 requests/s; 4 on Shopify Plus).
 */
export const shopifyCallLimit = (options: {
  readonly leakPerSecond?: number
  readonly slowDownBelow?: number
  readonly reserve?: number
} = {}): HeaderDriven => {
  const leak = options.leakPerSecond ?? 2
  if (!(leak > 0)) throw new RangeError("leakPerSecond must be > 0")
  return headerPolicy({
    name: `shopify-call-limit:${leak}`,
    read: readShopifyCallLimit(leak),
    said: [shopifyCallLimitHeader],
    ...(options.slowDownBelow !== undefined ? { slowDownBelow: options.slowDownBelow } : {}),
    ...(options.reserve !== undefined ? { reserve: options.reserve } : {})
  })
}

/** A reading without its undefined fields. */
const defined = (r: { [K in keyof BudgetReading]: BudgetReading[K] | undefined }): BudgetReading =>
  Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as BudgetReading

// ---------------------------------------------------------------------------------------------
// Limiters
// ---------------------------------------------------------------------------------------------

/** A made limiter. */
export interface Limiter {
  /** Waits until one more request may start. */
  readonly take: Effect.Effect<void>
  /** Tells the limiter the headers of a response (used by header-driven limiters). */
  readonly observe: (headers: Headers.Headers) => Effect.Effect<void>
  /**
   * Tells the limiter that a request it let through has ended, answered or not (header-driven
   * limiters count the requests in flight). Optional: limiters that need no such signal leave it out.
   */
  readonly release?: Effect.Effect<void>
  /**
   * Like `take`, but a wait longer than `bounds.maxWait` fails with {@link WaitTooLong} (the request
   * does not start) and a wait the server's headers asked for is announced when it starts. Optional:
   * limiters whose waits come only from their own settings (a token bucket) leave it out.
   */
  readonly takeBounded?: (bounds: TakeBounds) => Effect.Effect<void, WaitTooLong>
}

/** A limiter that never waits. */
export const unlimited: Limiter = { take: Effect.void, observe: () => Effect.void }

/** Bounds on one {@link Limiter.takeBounded}. */
export interface TakeBounds {
  /** The longest wait accepted; a longer one fails with {@link WaitTooLong} and the request does not start. */
  readonly maxWait: Duration.Duration
  /** Runs when a wait the server's headers asked for starts (e.g. a warning with its duration and why). */
  readonly onServerWait?: (wait: Duration.Duration, said: string) => Effect.Effect<void>
}

/** A limiter was asked to wait longer than allowed: what the server's headers said, and the wait. */
export class WaitTooLong extends Data.TaggedError("WaitTooLong")<{
  readonly wait: Duration.Duration
  readonly maxWait: Duration.Duration
  /** What the server's headers said, e.g. `X-Rate-Limit-Requests-Left: 0, X-Rate-Limit-Time-Reset-Ms: 999999999`. */
  readonly said: string
}> {}

/** Takes one request from a limiter within bounds: its `takeBounded` when it has one, else its plain `take`. */
export const takeWithin = (limiter: Limiter, bounds: TakeBounds): Effect.Effect<void, WaitTooLong> =>
  limiter.takeBounded === undefined ? limiter.take : limiter.takeBounded(bounds)

/** Makes a limiter for a policy; its background work ends with the scope. */
export const make = (policy: Policy): Effect.Effect<Limiter, never, Scope.Scope> => {
  switch (policy._tag) {
    case "TokenBucket":
      return makeTokenBucket(policy)
    case "Headers":
      return makeHeaderDriven(policy)
  }
}

/** Makes a token-bucket limiter with `effect/RateLimiter`. */
export const makeTokenBucket = (policy: TokenBucket): Effect.Effect<Limiter, never, Scope.Scope> =>
  Effect.map(
    RateLimiter.make({
      algorithm: "token-bucket",
      limit: policy.burst,
      interval: Duration.millis((policy.burst * 1000) / policy.requestsPerSecond)
    }),
    (limiter): Limiter => ({ take: limiter(Effect.void), observe: () => Effect.void })
  )

/** The state of a header-driven limiter. */
interface Budget {
  /** The lowest `left` the server reported in the current window (after counting the request it answered). */
  readonly left: Option.Option<number>
  readonly quota: Option.Option<number>
  /** The window's length (millis), when the server says. */
  readonly window: Option.Option<number>
  /** When the window resets (clock millis). */
  readonly resetAt: Option.Option<number>
  /** A budget regained continuously (a leaky bucket): requests per millisecond. */
  readonly refill: Option.Option<number>
  /** When `left` was read (clock millis), for a budget regained continuously. */
  readonly readAt: number
  /** The headers that gave `left` and `resetAt`, as messages quote them. */
  readonly said: string
  /** The earliest time the next paced request may start (clock millis). */
  readonly nextSlot: number
  /** Requests let through and not answered yet: the server may not have counted them in `left`. */
  readonly inFlight: number
  /** Requests answered (headers seen) and not yet ended. */
  readonly answered: number
}

/** Makes a header-driven limiter. */
export const makeHeaderDriven = (policy: HeaderDriven): Effect.Effect<Limiter> =>
  Effect.map(
    Ref.make<Budget>({
      left: Option.none(),
      quota: Option.none(),
      window: Option.none(),
      resetAt: Option.none(),
      refill: Option.none(),
      readAt: 0,
      said: "",
      nextSlot: 0,
      inFlight: 0,
      answered: 0
    }),
    (state): Limiter => {
      const takeBounded = (bounds: TakeBounds | undefined): Effect.Effect<void, WaitTooLong> =>
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.flatMap(
              Ref.modify(state, (b): [Planned | WaitTooLong, Budget] => {
                const [wait, next, reset] = plan(policy, b, now)
                if (bounds !== undefined && wait > Duration.toMillis(bounds.maxWait)) {
                  // Not started: the state stays as it was.
                  return [new WaitTooLong({ wait: Duration.millis(wait), maxWait: bounds.maxWait, said: b.said }), b]
                }
                return [{ wait, reset, said: reset ? b.said : "" }, next]
              }),
              (planned) => {
                if (planned instanceof WaitTooLong) return Effect.fail(planned)
                if (planned.wait <= 0) return Effect.void
                const announce = planned.reset && bounds?.onServerWait !== undefined
                  ? bounds.onServerWait(Duration.millis(planned.wait), planned.said)
                  : Effect.void
                // A take interrupted while it waits never started: it no longer counts as in flight.
                return Effect.onInterrupt(
                  restore(Effect.zipRight(announce, Effect.sleep(Duration.millis(planned.wait)))),
                  () => Ref.update(state, ended)
                )
              }
            ))
        )
      return {
        take: Effect.orDie(takeBounded(undefined)),
        takeBounded,
        observe: (headers) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(state, (b) => learn(policy, b, headers, now))),
        release: Ref.update(state, ended)
      }
    }
  )

/** What `plan` decided for one take. */
interface Planned {
  readonly wait: number
  /** Whether the wait is for the window to reset (the budget is spent): the server's ask, announced. */
  readonly reset: boolean
  readonly said: string
}

/**
 * What the policy's headers said in a response, for messages: `X-Rate-Limit-Requests-Left: 0,
 * X-Rate-Limit-Time-Reset-Ms: 3000`; for a policy that names no headers, what its reader read
 * (`remaining 0, reset in 3000 ms`).
 */
const saidIn = (policy: HeaderDriven, headers: Headers.Headers, reading: BudgetReading): string => {
  const quoted = policy.said.flatMap((name) => {
    const value = headers[name.toLowerCase()]
    return value === undefined ? [] : [`${name}: ${value.trim().slice(0, 40)}`]
  })
  if (quoted.length > 0) return quoted.join(", ")
  return [
    reading.remaining === undefined ? [] : [`remaining ${reading.remaining}`],
    reading.resetMillis === undefined ? [] : [`reset in ${Math.ceil(reading.resetMillis)} ms`],
    reading.quota === undefined ? [] : [`quota ${reading.quota}`]
  ].flat().join(", ")
}

/** A request ended: it leaves the answered count if any, else the in-flight count. */
const ended = (b: Budget): Budget =>
  b.answered > 0 ? { ...b, answered: b.answered - 1 } : { ...b, inFlight: Math.max(0, b.inFlight - 1) }

/** A reading's number, when it is one a budget can use (finite, not negative). */
const usable = (n: number | undefined): Option.Option<number> =>
  n !== undefined && Number.isFinite(n) && n >= 0 ? Option.some(n) : Option.none()

/** What `left` has become by `now` for a budget regained continuously (capped at the quota). */
const refilled = (b: Budget, now: number): Option.Option<number> =>
  Option.map(b.left, (left) =>
    Option.match(b.refill, {
      onNone: () => left,
      onSome: (rate) => {
        const grown = left + Math.max(0, now - b.readAt) * rate
        return Option.match(b.quota, { onNone: () => grown, onSome: (q) => Math.min(q, grown) })
      }
    }))

/** Takes in the budget headers of a response (pure). */
const learn = (policy: HeaderDriven, b: Budget, headers: Headers.Headers, now: number): Budget => {
  const counted: Budget = b.inFlight > 0 ? { ...b, inFlight: b.inFlight - 1, answered: b.answered + 1 } : b
  let reading: BudgetReading
  try {
    reading = policy.read(headers)
  } catch {
    // A reader that throws on odd headers reads nothing from them.
    return counted
  }
  const left = usable(reading.remaining)
  const reset = usable(reading.resetMillis)
  const quota = Option.orElse(usable(reading.quota), () => b.quota)
  const window = Option.orElse(usable(reading.windowMillis), () => b.window)
  const refill = Option.map(Option.filter(usable(reading.refillPerSecond), (r) => r > 0), (r) => r / 1000)
  if (Option.isSome(refill)) {
    // A budget regained continuously: the latest figure, or what the last one has grown to by now
    // when that is lower (an answer overtaken by later requests), wins.
    if (Option.isNone(left)) return { ...counted, quota, window, refill }
    const grown = refilled({ ...b, quota }, now)
    const lower = Option.isSome(grown) && Option.isSome(b.refill) && grown.value < left.value
    return {
      ...counted,
      quota,
      window,
      refill,
      left: lower ? grown : left,
      readAt: now,
      resetAt: Option.none(),
      said: lower ? b.said : saidIn(policy, headers, reading)
    }
  }
  if (Option.isNone(left) && Option.isNone(reset)) return counted
  const said = saidIn(policy, headers, reading)
  const resetAt = Option.map(reset, (r) => now + r)
  if (Option.isSome(resetAt) && Option.isSome(b.resetAt) && Option.isSome(b.left)) {
    // Answers arrive out of order: within one window keep the lowest `left` and the earliest reset;
    // a reset far later means a new window; far earlier, a late answer from a past window.
    const tolerance = Option.match(window, { onNone: () => 1000, onSome: (w) => w / 2 })
    if (resetAt.value < b.resetAt.value - tolerance) return { ...counted, quota, window }
    if (resetAt.value <= b.resetAt.value + tolerance) {
      const lower = Option.isSome(left) && left.value <= b.left.value
      return {
        ...counted,
        quota,
        window,
        left: Option.isSome(left) ? Option.some(Math.min(left.value, b.left.value)) : b.left,
        resetAt: Option.some(Math.min(resetAt.value, b.resetAt.value)),
        said: lower ? said : b.said
      }
    }
  }
  return {
    ...counted,
    quota,
    window,
    refill: Option.none(),
    left: Option.orElse(left, () => b.left),
    resetAt: Option.orElse(resetAt, () => b.resetAt),
    said
  }
}

/**
 * Decides how long a request waits, and the state after it starts (pure). The third element says
 * whether the wait is for the window to reset (the server's budget is spent).
 */
const plan = (policy: HeaderDriven, b: Budget, now: number): [number, Budget, boolean] => {
  const started: Budget = { ...b, inFlight: b.inFlight + 1 }
  if (Option.isSome(b.refill) && Option.isSome(b.left)) return planRefill(policy, b, b.refill.value, now)
  if (Option.isNone(b.left) || Option.isNone(b.resetAt) || now >= b.resetAt.value) {
    // Nothing known, or the window has reset: go, and learn from the response.
    return [0, { ...started, left: Option.none(), resetAt: Option.none(), nextSlot: now }, false]
  }
  // What is left for us: the server's last figure less our requests it may not have counted yet.
  const left = b.left.value - b.inFlight
  const resetAt = b.resetAt.value
  const usable = left - policy.reserve
  if (usable <= 0) {
    // Our share is spent: wait for the window to reset, then start over.
    const start = Math.max(resetAt, b.nextSlot)
    return [start - now, { ...started, nextSlot: start }, true]
  }
  const plenty = Option.match(b.quota, {
    onNone: () => false,
    onSome: (quota) => left > quota * policy.slowDownBelow
  })
  if (plenty) return [0, started, false]
  // Spread what is usable over what is left of the window, from this request's slot on, but never
  // slower than the quota's own rate (window ÷ quota) when both are known: a fixed window's unused
  // requests are lost at the reset, and a spread to the very end would only delay the last ones.
  const start = Math.max(now, b.nextSlot)
  const spread = Math.max(0, resetAt - start) / usable
  const spacing = Option.match(Option.all([b.window, b.quota]), {
    onNone: () => spread,
    onSome: ([window, quota]) => (quota > 0 ? Math.min(spread, window / quota) : spread)
  })
  return [start - now, { ...started, nextSlot: start + spacing }, false]
}

/**
 * {@link plan} for a budget regained continuously at `rate` per millisecond (a leaky bucket): at
 * once while plenty is left, then one request per `1 / rate`, and when only the reserve is left, as
 * soon as the bucket has leaked enough for one more.
 */
const planRefill = (policy: HeaderDriven, b: Budget, rate: number, now: number): [number, Budget, boolean] => {
  const started: Budget = { ...b, inFlight: b.inFlight + 1 }
  const left = Option.getOrElse(refilled(b, now), () => 0) - b.inFlight
  const plenty = Option.match(b.quota, { onNone: () => false, onSome: (quota) => left > quota * policy.slowDownBelow })
  const spare = left - policy.reserve
  if (plenty && spare >= 1) return [0, started, false]
  // Not before the budget has regained one request above the reserve, nor before this request's slot.
  const start = Math.max(now + (spare >= 1 ? 0 : (1 - spare) / rate), b.nextSlot)
  return [start - now, { ...started, nextSlot: start + 1 / rate }, false]
}

const num = (v: string | undefined): number | undefined => {
  if (v === undefined) return undefined
  const n = Number(v.trim())
  return v.trim() !== "" && Number.isFinite(n) && n >= 0 ? n : undefined
}

// ---------------------------------------------------------------------------------------------
// Shared registry
// ---------------------------------------------------------------------------------------------

/** The registry key of a credential: a SHA-256 of its value, never the value itself. */
export const credentialKey = (credential: Redacted.Redacted<string>): string =>
  `credential:sha256:${createHash("sha256").update(Redacted.value(credential)).digest("hex")}`

interface Entry {
  readonly limiter: Limiter
  readonly policy: Policy
  readonly scope: Scope.CloseableScope
  refs: number
}

const registry = globalValue(Symbol.for("@effetl/core/http/RateLimit/registry"), () => ({
  entries: new Map<string, Entry>(),
  lock: Effect.unsafeMakeSemaphore(1)
}))

/**
 * How the registry makes the limiter of a key when a process shares its budgets with others (a
 * distributed worker keeps them in Redis). Without one in the context, limiters are in-process
 * ({@link make}). A backend's limiter keeps the policy's meaning: the same token bucket, the same
 * header pacing, with the budget counted across processes.
 */
export class Backend extends Context.Tag("@effetl/core/http/RateLimit/Backend")<
  Backend,
  { readonly make: (key: string, policy: Policy) => Effect.Effect<Limiter, never, Scope.Scope> }
>() {}

/**
 * The limiter shared under `key` (e.g. {@link credentialKey}); made with `policy` by the first
 * caller (through the {@link Backend} in the context, if any). A later caller with a different policy
 * gets the first one's limiter (one budget per credential) and a warning is logged. The entry is dropped when the last scope using it closes.
 */
export const shared = (key: string, policy: Policy): Effect.Effect<Limiter, never, Scope.Scope> =>
  Effect.acquireRelease(
    registry.lock.withPermits(1)(
      Effect.suspend(() => {
        const existing = registry.entries.get(key)
        if (existing !== undefined) {
          existing.refs += 1
          const same = JSON.stringify(existing.policy) === JSON.stringify(policy)
          return same
            ? Effect.succeed(existing.limiter)
            : Effect.as(
                Effect.logWarning(
                  "two sources share a credential but set different rate limits; the first one's limit applies to both"
                ),
                existing.limiter
              )
        }
        return Effect.flatMap(Effect.zip(Scope.make(), Effect.serviceOption(Backend)), ([scope, backend]) =>
          Effect.map(Scope.extend(Option.isSome(backend) ? backend.value.make(key, policy) : make(policy), scope), (limiter) => {
            registry.entries.set(key, { limiter, policy, scope, refs: 1 })
            return limiter
          })
        )
      })
    ),
    () =>
      registry.lock.withPermits(1)(
        Effect.suspend(() => {
          const entry = registry.entries.get(key)
          if (entry === undefined) return Effect.void
          entry.refs -= 1
          if (entry.refs > 0) return Effect.void
          registry.entries.delete(key)
          return Scope.close(entry.scope, Exit.void)
        })
      )
  )

/** How many limiters the registry holds now (for tests and diagnostics). */
export const sharedCount: Effect.Effect<number> = Effect.sync(() => registry.entries.size)
