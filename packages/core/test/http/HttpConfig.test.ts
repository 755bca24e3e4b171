import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as ErrorBody from "../../src/http/ErrorBody.js"
import * as HttpConfig from "../../src/http/HttpConfig.js"
import * as Retry from "../../src/http/Retry.js"

describe("HttpConfig", () => {
  it("validates duration strings and converts settings to policies", () => {
    const decode = Schema.decodeUnknownEither(HttpConfig.DurationString)
    expect(decode("250 millis")._tag).toBe("Right")
    expect(decode("2 minutes")._tag).toBe("Right")
    expect(decode("30s")._tag).toBe("Left")
    expect(decode("-1 seconds")._tag).toBe("Left")
    const policy = Retry.policy(HttpConfig.toRetry({ maxRetries: 3, baseDelay: "100 millis", maxDelay: "2 seconds" }))
    expect(policy.maxRetries).toBe(3)
    expect(Duration.toMillis(policy.baseDelay)).toBe(100)
    expect(Duration.toMillis(policy.maxDelay)).toBe(2000)
    // retry.maxWait: 60 s unless set; it is optional, so configs written before it decode as they did.
    expect(Duration.toMillis(policy.maxWait)).toBe(60_000)
    const decoded = Schema.decodeUnknownSync(HttpConfig.RetrySettings)({ maxWait: "10 minutes" })
    expect(decoded).toEqual({ maxRetries: 5, baseDelay: "250 millis", maxDelay: "30 seconds", maxWait: "10 minutes" })
    expect(Duration.toMillis(Retry.policy(HttpConfig.toRetry(decoded)).maxWait)).toBe(600_000)
    expect(Schema.decodeUnknownSync(HttpConfig.RetrySettings)({})).toEqual(HttpConfig.defaultRetry)
    expect(HttpConfig.toRateLimit({ requestsPerSecond: 2, burst: 40 })).toEqual({
      _tag: "TokenBucket",
      requestsPerSecond: 2,
      burst: 40
    })
    expect(HttpConfig.toRateLimit({ requestsPerSecond: 2.5 }).burst).toBe(3)
  })
})

describe("ErrorBody", () => {
  it("reads DRF field errors, ignores HTML pages and keeps short plain text", () => {
    expect(ErrorBody.parse(`{"limit":["Too big."],"page":["Not a number."]}`).message).toEqual(
      Option.some("limit: Too big.; page: Not a number.")
    )
    expect(ErrorBody.parse("<!DOCTYPE html><html><body>Bad Gateway</body></html>").message).toEqual(Option.none())
    expect(ErrorBody.parse("Service   temporarily\nunavailable").message).toEqual(
      Option.some("Service temporarily unavailable")
    )
    expect(ErrorBody.parse(`{"errors":[{"title":"Invalid","detail":"id must be a UUID"}]}`).message).toEqual(
      Option.some("id must be a UUID")
    )
    expect(ErrorBody.parse("").message).toEqual(Option.none())
    expect(Option.getOrThrow(ErrorBody.parse(JSON.stringify({ detail: "x".repeat(1000) })).message).length).toBe(300)
  })
})
