/**
 * Retry: the one retry policy of every HTTP request effetl makes.
 *
 * A failed attempt is classified as a {@link Failure}: the error to report if retries run out,
 * whether another try can help (5xx, 429, connection refused or reset, timeouts, truncated or
 * unparseable bodies) and how long the server asked us to wait (`Retry-After` as delta-seconds or
 * an HTTP-date, or a vendor reset header such as `X-Rate-Limit-Time-Reset-Ms`).
 *
 * The schedule is built from Effect's `Schedule`: exponential backoff, jittered, capped at
 * `maxDelay`, at most `maxRetries` times, continuing only while the failure is retryable. The wait
 * before a retry is never shorter than what the server asked. A server that asks for more than
 * `maxWait` (default 60 s: an absurd `Retry-After`, an HTTP-date far ahead, a reset header of days)
 * is not obeyed: the request fails at once with what the server asked and the cap, never a silent
 * multi-hour sleep.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Text from "../Text.js"

// ---------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------

/** How a vendor header tells the client when it may try again. */
export interface ResetHeader {
  /** The header name, e.g. `X-Rate-Limit-Time-Reset-Ms`. */
  readonly name: string
  /** What the number in it means: a delay in milliseconds or in seconds. */
  readonly unit: "milliseconds" | "seconds"
}

/** The retry settings. */
export interface Policy {
  /** How many times a failed request is tried again (0 = never). */
  readonly maxRetries: number
  /** The first backoff delay. */
  readonly baseDelay: Duration.Duration
  /** The longest backoff delay (the backoff never exceeds it; a server's own ask may). */
  readonly maxDelay: Duration.Duration
  /** The backoff growth factor. */
  readonly factor: number
  /** Jitter as a fraction: each backoff delay is multiplied by a random factor in `[1 - jitter, 1 + jitter]`. */
  readonly jitter: number
  /**
   * The longest wait a server may ask for (`Retry-After`, a reset header). A longer ask is not
   * waited for: the request fails at once, saying what the server asked and this cap.
   */
  readonly maxWait: Duration.Duration
  /**
   * Vendor headers, besides `Retry-After`, that say how long to wait (e.g. BigCommerce's
   * `X-Rate-Limit-Time-Reset-Ms` and `X-Retry-After`). The longest wait among those present wins.
   */
  readonly resetHeaders: ReadonlyArray<ResetHeader>
}

/** What a caller may set; everything else takes the default. */
export interface PolicyInput {
  readonly maxRetries?: number
  readonly baseDelay?: Duration.DurationInput
  readonly maxDelay?: Duration.DurationInput
  readonly factor?: number
  readonly jitter?: number
  /** The longest wait a server may ask for; a longer ask fails the request (default 60 seconds). */
  readonly maxWait?: Duration.DurationInput
  /** The former name of `maxWait` (kept for existing callers; `maxWait` wins). */
  readonly maxServerWait?: Duration.DurationInput
  /** One vendor reset header (kept for existing callers; same as a one-element `resetHeaders`). */
  readonly resetHeader?: ResetHeader
  /** Vendor reset headers; the longest wait among those present wins. */
  readonly resetHeaders?: ReadonlyArray<ResetHeader>
}

/** The default policy: 5 retries, 250 ms doubling up to 30 s, ±20 % jitter, server-asked waits up to 60 s. */
export const defaults: Policy = {
  maxRetries: 5,
  baseDelay: Duration.millis(250),
  maxDelay: Duration.seconds(30),
  factor: 2,
  jitter: 0.2,
  maxWait: Duration.seconds(60),
  resetHeaders: []
}

/** Builds a policy from partial settings over {@link defaults}. */
export const policy = (input: PolicyInput = {}): Policy => ({
  maxRetries: Math.max(0, Math.floor(input.maxRetries ?? defaults.maxRetries)),
  baseDelay: input.baseDelay === undefined ? defaults.baseDelay : Duration.decode(input.baseDelay),
  maxDelay: input.maxDelay === undefined ? defaults.maxDelay : Duration.decode(input.maxDelay),
  factor: input.factor ?? defaults.factor,
  jitter: Math.min(1, Math.max(0, input.jitter ?? defaults.jitter)),
  maxWait: Duration.decode(input.maxWait ?? input.maxServerWait ?? defaults.maxWait),
  resetHeaders: [...(input.resetHeader === undefined ? [] : [input.resetHeader]), ...(input.resetHeaders ?? [])]
})

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

/** One failed attempt, classified for the retry schedule. */
export interface Failure<E> {
  readonly _tag: "RetryFailure"
  /** The error reported if this was the last attempt. */
  readonly error: E
  /** Whether another attempt may succeed. */
  readonly retryable: boolean
  /** A short reason for logs: `HTTP 503`, `timed out after 30s`, `connection refused`. */
  readonly reason: string
  /** How long the server asked us to wait, when it said. */
  readonly serverWait: Option.Option<Duration.Duration>
  /** What the server said to ask for it, for messages (e.g. `Retry-After: 120`). */
  readonly serverSaid?: string
}

/** A failure that retrying cannot fix (401, 400, a body that does not match the schema). */
export const fatal = <E>(error: E, reason = "fatal"): Failure<E> => ({
  _tag: "RetryFailure",
  error,
  retryable: false,
  reason,
  serverWait: Option.none()
})

/** A failure that another attempt may fix (5xx, 429, reset, timeout, truncated body). */
export const transient = <E>(
  error: E,
  reason: string,
  serverWait: Option.Option<Duration.Duration> | Option.Option<ServerWait> = Option.none<Duration.Duration>()
): Failure<E> => {
  const asked = Option.map(serverWait as Option.Option<Duration.Duration | ServerWait>, (w) =>
    Duration.isDuration(w) ? { wait: w, said: undefined } : w)
  return {
    _tag: "RetryFailure",
    error,
    retryable: true,
    reason,
    serverWait: Option.map(asked, (a) => a.wait),
    ...(Option.isSome(asked) && asked.value.said !== undefined ? { serverSaid: asked.value.said } : {})
  }
}

/** Whether a failure's server-asked wait is longer than the policy allows (then it is not retried). */
export const waitTooLong = <E>(policy: Policy, failure: Failure<E>): boolean =>
  Option.match(failure.serverWait, {
    onNone: () => false,
    onSome: (wait) => Duration.greaterThan(wait, policy.maxWait)
  })

/** What the schedule tells `onRetry` before it waits. */
export interface RetryInfo<E> {
  /** The number of this retry: 1 for the first retry. */
  readonly retry: number
  /** How long the client waits before it. */
  readonly delay: Duration.Duration
  /** The failure being retried. */
  readonly failure: Failure<E>
  /** What the server asked to wait, when it did (the delay is never shorter). */
  readonly serverWait: Option.Option<Duration.Duration>
}

// ---------------------------------------------------------------------------------------------
// Schedule and retry
// ---------------------------------------------------------------------------------------------

/**
 * The retry schedule of a policy: exponential + jittered + capped backoff, at most `maxRetries`
 * recurrences, only while the input failure is retryable, and never shorter than the server's ask.
 * `onRetry` runs with the final delay just before each wait.
 */
export const schedule = <E, R = never>(
  policy: Policy,
  onRetry: (info: RetryInfo<E>) => Effect.Effect<void, never, R> = () => Effect.void
): Schedule.Schedule<unknown, Failure<E>, R> => {
  const backoff = Schedule.exponential(policy.baseDelay, policy.factor).pipe(
    policy.jitter > 0 ? Schedule.jitteredWith({ min: 1 - policy.jitter, max: 1 + policy.jitter }) : identity,
    Schedule.modifyDelay((_, delay) => Duration.min(delay, policy.maxDelay))
  )
  return Schedule.recurs(policy.maxRetries).pipe(
    Schedule.intersect(backoff),
    Schedule.intersect(Schedule.identity<Failure<E>>()),
    Schedule.whileInput((failure: Failure<E>) => failure.retryable && !waitTooLong(policy, failure)),
    Schedule.modifyDelayEffect(([[n], failure], delay) => {
      const final = Option.match(failure.serverWait, { onNone: () => delay, onSome: (wait) => Duration.max(delay, wait) })
      return Effect.as(onRetry({ retry: n + 1, delay: final, failure, serverWait: failure.serverWait }), final)
    })
  )
}

/** Options of {@link retry}. */
export interface RetryOptions<E, R> {
  readonly policy: Policy
  /** Runs before each wait (logging, counters). */
  readonly onRetry?: (info: RetryInfo<E>) => Effect.Effect<void, never, R>
  /** Rewrites the last error when retries ran out (e.g. to say how many were made). */
  readonly onGiveUp?: (error: E, retries: number) => E
  /**
   * Rewrites the error when the server asked for a wait longer than `policy.maxWait` (to say what it
   * asked and the cap). `said` is what the server sent, when known (e.g. `Retry-After: 999999999`).
   */
  readonly onWaitTooLong?: (error: E, asked: Duration.Duration, said: string | undefined, retries: number) => E
  /** Runs when a wait longer than `policy.maxWait` is refused, before the error (e.g. a warning saying the ask and the cap). */
  readonly onWaitRefused?: (asked: Duration.Duration, said: string | undefined) => Effect.Effect<void, never, R>
}

/**
 * Runs an attempt, retrying retryable failures by the policy; fails with the last failure's error.
 * `options` may be given as a function, called once the first attempt has failed (most succeed).
 */
export const retry = <A, E, R, R2 = never>(
  attempt: Effect.Effect<A, Failure<E>, R>,
  options: RetryOptions<E, R2> | (() => RetryOptions<E, R2>)
): Effect.Effect<A, E, R | R2> =>
  // Most attempts succeed the first time: the schedule is only built once one has failed. That
  // failure is then replayed as the schedule's first input, so what follows is exactly the retry
  // of the whole attempt.
  Effect.catchAll(attempt, (first) => {
    let replayed = false
    const again = Effect.suspend(() => {
      if (replayed) return attempt
      replayed = true
      return Effect.fail(first)
    })
    return retryScheduled(again, typeof options === "function" ? options() : options)
  })

const retryScheduled = <A, E, R, R2 = never>(
  attempt: Effect.Effect<A, Failure<E>, R>,
  options: RetryOptions<E, R2>
): Effect.Effect<A, E, R | R2> =>
  Effect.flatMap(Ref.make(0), (retries) =>
    attempt.pipe(
      Effect.retry(
        schedule<E, R2>(options.policy, (info) =>
          Effect.zipRight(Ref.set(retries, info.retry), options.onRetry ? options.onRetry(info) : Effect.void)
        )
      ),
      Effect.catchAll((failure) =>
        Effect.flatMap(Ref.get(retries), (n) => {
          if (failure.retryable && waitTooLong(options.policy, failure)) {
            const asked = Option.getOrThrow(failure.serverWait)
            const error = options.onWaitTooLong ? options.onWaitTooLong(failure.error, asked, failure.serverSaid, n) : failure.error
            return Effect.zipRight(options.onWaitRefused ? options.onWaitRefused(asked, failure.serverSaid) : Effect.void, Effect.fail(error))
          }
          return Effect.fail(
            failure.retryable && n > 0 && options.onGiveUp ? options.onGiveUp(failure.error, n) : failure.error
          )
        })
      )
    )
  )

// ---------------------------------------------------------------------------------------------
// Server-asked waits
// ---------------------------------------------------------------------------------------------

/**
 * Parses a `Retry-After` value: delta-seconds (`"120"`) or an HTTP-date
 * (`"Wed, 21 Oct 2015 07:28:00 GMT"`, measured from `nowMillis`). A date in the past is a zero wait.
 */
export const parseRetryAfter = (value: string, nowMillis: number): Option.Option<Duration.Duration> => {
  const v = value.trim()
  if (/^\d+(\.\d+)?$/.test(v)) return Option.some(Duration.millis(Math.ceil(Number(v) * 1000)))
  if (!/[a-z]/i.test(v)) return Option.none()
  const at = Date.parse(v)
  if (Number.isNaN(at)) return Option.none()
  return Option.some(Duration.millis(Math.max(0, at - nowMillis)))
}

/** Parses a vendor reset header value as a delay in its unit. */
export const parseReset = (value: string, unit: ResetHeader["unit"]): Option.Option<Duration.Duration> => {
  const v = value.trim()
  if (!/^\d+(\.\d+)?$/.test(v)) return Option.none()
  const n = Number(v)
  return Option.some(Duration.millis(Math.ceil(unit === "seconds" ? n * 1000 : n)))
}

/** A wait a server asked for, and what it sent to ask for it (`Retry-After: 120`). */
export interface ServerWait {
  readonly wait: Duration.Duration
  readonly said: string | undefined
}

/**
 * How long the server asked us to wait, from `Retry-After` and the policy's reset headers (the
 * longest when several are present), with the header that asked. Names match case-insensitively;
 * a value that is not a wait (negative, garbage) is ignored.
 */
export const serverWaitFrom = (
  policy: Policy,
  headers: Readonly<Record<string, string | undefined>>,
  nowMillis: number
): Option.Option<ServerWait> => {
  const get = (name: string): string | undefined => headers[name.toLowerCase()]
  const said = (name: string, value: string) => `${name}: ${Text.escapeControl(value.trim().slice(0, 60))}`
  let longest: Option.Option<ServerWait> = Option.flatMap(Option.fromNullable(get("retry-after")), (v) =>
    Option.map(parseRetryAfter(v, nowMillis), (wait) => ({ wait, said: said("Retry-After", v) })))
  for (const h of policy.resetHeaders) {
    const value = get(h.name)
    const reset = Option.flatMap(Option.fromNullable(value), (v) => parseReset(v, h.unit))
    if (Option.isSome(reset) && (Option.isNone(longest) || Duration.greaterThan(reset.value, longest.value.wait))) {
      longest = Option.some({ wait: reset.value, said: said(h.name, value!) })
    }
  }
  return longest
}

/** How long the server asked us to wait (see {@link serverWaitFrom}). */
export const serverWait = (
  policy: Policy,
  headers: Readonly<Record<string, string | undefined>>,
  nowMillis: number
): Option.Option<Duration.Duration> => Option.map(serverWaitFrom(policy, headers, nowMillis), (w) => w.wait)
