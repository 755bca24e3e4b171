/**
 * HttpConfig: the HTTP settings every plugin config shares (timeout, retry with its `maxWait` cap on
 * server-asked waits, rate limit), as
 * annotated Effect Schema fields, and their conversion to {@link ApiClient} options.
 *
 * Durations are written the way Effect writes them: a number, a space and a unit
 * (`"250 millis"`, `"30 seconds"`, `"2 minutes"`).
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Config from "../Config.js"
import * as RateLimit from "./RateLimit.js"
import type * as Retry from "./Retry.js"

/** A non-negative duration such as `"250 millis"`, `"30 seconds"`, `"2 minutes"`. */
export const DurationString = Schema.String.pipe(
  Schema.filter((s) =>
    /^\d+(\.\d+)?\s+(millis?|seconds?|minutes?|hours?)$/.test(s) && Option.isSome(Duration.decodeUnknown(s))
      ? true
      : `expected a duration like "500 millis", "30 seconds" or "2 minutes", got ${JSON.stringify(s)}`
  ),
  Schema.annotations({
    title: "Duration",
    jsonSchema: { pattern: "^\\d+(\\.\\d+)?\\s+(millis?|seconds?|minutes?|hours?)$" }
  })
)

/** Decodes a validated duration string. */
export const toDuration = (s: string): Duration.Duration => Duration.decode(s as Duration.DurationInput)

/** The default of `retry.maxWait`: the longest wait a server may ask for. */
export const defaultMaxWait = "60 seconds"

/** The retry settings a plugin defaults to (`maxWait` is always `defaultMaxWait` unless written). */
export interface RetryDefaults {
  readonly maxRetries: number
  readonly baseDelay: string
  readonly maxDelay: string
}

/**
 * Retry settings as written in a pipeline file, each field defaulting to `defaults`' value: leaving
 * `retry` out and writing `retry: {}` mean the same, and `effetl plugins` shows one set of defaults.
 */
export const retrySettings = (defaults: RetryDefaults) =>
  Schema.Struct({
    maxRetries: Config.withDefault(Config.intRange(0, 20), defaults.maxRetries, {
      description: "How many times a failed request (5xx, 429, reset, timeout, truncated body) is tried again.",
      examples: [5, 0]
    }),
    baseDelay: Config.withDefault(DurationString, defaults.baseDelay, {
      description: "The first backoff delay; it doubles on each retry (with ±20% jitter). A server's Retry-After wins when longer.",
      examples: ["250 millis", "1 seconds"]
    }),
    maxDelay: Config.withDefault(DurationString, defaults.maxDelay, {
      description: "The longest backoff delay.",
      examples: ["30 seconds"]
    }),
    maxWait: Config.optional(DurationString, {
      description:
        `The longest wait a server may ask for (Retry-After, a rate-limit reset header); a longer ask fails the source with what the server asked, rather than sleeping. Default: "${defaultMaxWait}".`,
      examples: ["60 seconds", "10 minutes"]
    })
  })

/** The default retry settings. */
export const defaultRetry: RetryDefaults = { maxRetries: 5, baseDelay: "250 millis", maxDelay: "30 seconds" }

/** Retry settings as written in a pipeline file, with the {@link defaultRetry} defaults. */
export const RetrySettings = retrySettings(defaultRetry)
export type RetrySettings = typeof RetrySettings.Type

/**
 * A `retry` config field whose defaults are `defaults`, for a plugin whose API needs others than
 * {@link defaultRetry}: the object's default and each field's default are the same values.
 */
export const retryFieldWith = (defaults: RetryDefaults, description = "Retry policy for HTTP requests.") => {
  const settings: RetrySettings = defaults
  return Config.withDefault(retrySettings(defaults), settings, { description, examples: [defaults] })
}

/** The `retry` config field. */
export const retryField = retryFieldWith(defaultRetry)

/** The `timeout` config field: how long one HTTP attempt may take. */
export const timeoutField = Config.withDefault(DurationString, "30 seconds", {
  description: "How long one HTTP attempt may take (connect to last byte) before it is cut and retried.",
  examples: ["30 seconds", "2 minutes"]
})

/** Token-bucket rate limit settings as written in a pipeline file. */
export const RateLimitSettings = Schema.Struct({
  requestsPerSecond: Config.required(
    Schema.Number.pipe(
      Schema.greaterThan(0),
      Schema.annotations({ message: () => "expected a number of requests per second > 0" })
    ),
    { description: "Sustained requests per second (shared by every source using the same credential).", examples: [2, 10] }
  ),
  burst: Config.optional(Config.intAtLeast(1), {
    description: "Requests allowed at once before pacing starts (default: requestsPerSecond rounded up).",
    examples: [1, 40]
  })
})
export type RateLimitSettings = typeof RateLimitSettings.Type

/** Converts retry settings to a retry policy input. */
export const toRetry = (settings: RetrySettings): Retry.PolicyInput => ({
  maxRetries: settings.maxRetries,
  baseDelay: toDuration(settings.baseDelay),
  maxDelay: toDuration(settings.maxDelay),
  maxWait: toDuration(settings.maxWait ?? defaultMaxWait)
})

/** Converts rate limit settings to a token-bucket policy. */
export const toRateLimit = (settings: RateLimitSettings): RateLimit.TokenBucket =>
  RateLimit.tokenBucket({
    requestsPerSecond: settings.requestsPerSecond,
    ...(settings.burst !== undefined ? { burst: settings.burst } : {})
  })
