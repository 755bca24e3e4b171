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
 * before a retry is never shorter than what the server asked (capped at `maxServerWait`).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"

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
  /** The longest wait honoured when the server asks for one (`Retry-After`, reset header). */
  readonly maxServerWait: Duration.Duration
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
  readonly maxServerWait?: Duration.DurationInput
  /** One vendor reset header (kept for existing callers; same as a one-element `resetHeaders`). */
  readonly resetHeader?: ResetHeader
  /** Vendor reset headers; the longest wait among those present wins. */
  readonly resetHeaders?: ReadonlyArray<ResetHeader>
}

/** The default policy: 5 retries, 250 ms doubling up to 30 s, ±20 % jitter, server waits up to 10 minutes. */
export const defaults: Policy = {
  maxRetries: 5,
  baseDelay: Duration.millis(250),
  maxDelay: Duration.seconds(30),
  factor: 2,
  jitter: 0.2,
  maxServerWait: Duration.minutes(10),
  resetHeaders: []
}

/** Builds a policy from partial settings over {@link defaults}. */
export const policy = (input: PolicyInput = {}): Policy => ({
  maxRetries: Math.max(0, Math.floor(input.maxRetries ?? defaults.maxRetries)),
  baseDelay: input.baseDelay === undefined ? defaults.baseDelay : Duration.decode(input.baseDelay),
  maxDelay: input.maxDelay === undefined ? defaults.maxDelay : Duration.decode(input.maxDelay),
  factor: input.factor ?? defaults.factor,
  jitter: Math.min(1, Math.max(0, input.jitter ?? defaults.jitter)),
  maxServerWait: input.maxServerWait === undefined ? defaults.maxServerWait : Duration.decode(input.maxServerWait),
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
  serverWait: Option.Option<Duration.Duration> = Option.none()
): Failure<E> => ({ _tag: "RetryFailure", error, retryable: true, reason, serverWait })

/** What the schedule tells `onRetry` before it waits. */
export interface RetryInfo<E> {
  /** The number of this retry: 1 for the first retry. */
  readonly retry: number
  /** How long the client waits before it. */
  readonly delay: Duration.Duration
  /** The failure being retried. */
  readonly failure: Failure<E>
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
    Schedule.whileInput((failure: Failure<E>) => failure.retryable),
    Schedule.modifyDelayEffect(([[n], failure], delay) => {
      const asked = Option.map(failure.serverWait, (wait) => Duration.min(wait, policy.maxServerWait))
      const final = Option.match(asked, { onNone: () => delay, onSome: (wait) => Duration.max(delay, wait) })
      return Effect.as(onRetry({ retry: n + 1, delay: final, failure }), final)
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
}

/** Runs an attempt, retrying retryable failures by the policy; fails with the last failure's error. */
export const retry = <A, E, R, R2 = never>(
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
        Effect.flatMap(Ref.get(retries), (n) =>
          Effect.fail(
            failure.retryable && n > 0 && options.onGiveUp ? options.onGiveUp(failure.error, n) : failure.error
          )
        )
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

/**
 * How long the server asked us to wait, from `Retry-After` and the policy's reset headers (the
 * longest when several are present). Header names are matched case-insensitively.
 */
export const serverWait = (
  policy: Policy,
  headers: Readonly<Record<string, string | undefined>>,
  nowMillis: number
): Option.Option<Duration.Duration> => {
  const get = (name: string): string | undefined => headers[name.toLowerCase()]
  const retryAfter = Option.flatMap(Option.fromNullable(get("retry-after")), (v) => parseRetryAfter(v, nowMillis))
  let longest = retryAfter
  for (const h of policy.resetHeaders) {
    const reset = Option.flatMap(Option.fromNullable(get(h.name)), (v) => parseReset(v, h.unit))
    if (Option.isSome(reset)) longest = Option.isSome(longest) ? Option.some(Duration.max(longest.value, reset.value)) : reset
  }
  return longest
}
