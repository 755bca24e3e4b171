import { ConfigDocs } from "@effetl/core/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { acceo, AcceoConfig } from "../src/Source.js"

const minimal = { baseUrl: "https://api.ogasys.acceo.com", apiKey: "s3cret-key-value" }

/** The issues of a config that fails to decode as a pipeline file would (unknown options are errors), as `path: message`. */
const issues = (input: Record<string, unknown>): Array<string> => {
  const decoded = Schema.decodeUnknownEither(AcceoConfig, { errors: "all", onExcessProperty: "error" })(input)
  if (Either.isRight(decoded)) return []
  return ParseResult.ArrayFormatter.formatErrorSync(decoded.left).map((i) => `${i.path.join(".")}: ${i.message}`)
}

describe("AcceoConfig", () => {
  it("fills the documented defaults; the key is held redacted", () => {
    const config = Schema.decodeUnknownSync(AcceoConfig)(minimal)
    expect({ ...config, apiKey: Redacted.value(config.apiKey) }).toEqual({
      ...minimal,
      auth: { header: "Authorization", template: "Bearer {key}" },
      mode: "feed",
      idsEndpoint: "images",
      images: "binary",
      format: "json",
      count: 500,
      partitionSize: 100,
      concurrency: 4,
      maxImageBytes: 25 * 1024 * 1024,
      maxResponseBytes: 256 * 1024 * 1024,
      notFoundReturncodes: [2],
      regroup: true,
      timeout: "30 seconds",
      retry: { maxRetries: 5, baseDelay: "250 millis", maxDelay: "30 seconds" }
    })
    expect(String(config.apiKey)).not.toContain("s3cret-key-value")
    expect(JSON.stringify(config)).not.toContain("s3cret-key-value")
  })

  it("accepts every option", () => {
    const config = Schema.decodeUnknownSync(AcceoConfig, { onExcessProperty: "error" })({
      ...minimal,
      auth: { header: "X-Api-Key", template: "ApiKey {key}" },
      mode: "products",
      productIds: ["1001", 1002],
      idsEndpoint: "url",
      images: "url",
      format: "xml",
      count: 1,
      startToken: "18446744073709551615",
      session: "nightly",
      partitionSize: 10000,
      concurrency: 32,
      maxImageBytes: 1,
      maxResponseBytes: 1024,
      notFoundReturncodes: [2, 404],
      regroup: false,
      timeout: "2 minutes",
      retry: { maxRetries: 0 },
      rateLimit: { requestsPerSecond: 5 }
    })
    expect(config.auth).toEqual({ header: "X-Api-Key", template: "ApiKey {key}" })
    expect(config.startToken).toBe("18446744073709551615")
    const partial = Schema.decodeUnknownSync(AcceoConfig)({ ...minimal, auth: { template: "{key}" } })
    expect(partial.auth).toEqual({ header: "Authorization", template: "{key}" })
  })

  it.each([
    [{ count: 0 }, "count: expected an integer from 1 to 500"],
    [{ count: 501 }, "count: expected an integer from 1 to 500"],
    [{ count: 2.5 }, "count: expected an integer from 1 to 500"],
    [{ concurrency: 33 }, "concurrency: expected an integer from 1 to 32"],
    [{ partitionSize: 0 }, "partitionSize: expected an integer from 1 to 10000"],
    [{ idsEndpoint: "URL" }, "idsEndpoint: Expected \"images\", actual \"URL\""],
    [{ startToken: "12a" }, "startToken: expected a token: a non-negative decimal integer, written as a string"],
    [{ startToken: 12 }, "startToken: Expected string, actual 12"],
    [{ session: "x".repeat(101) }, "session: expected at most 100 characters"],
    [{ auth: { template: "Bearer" } }, "auth.template: expected a template holding {key}, e.g. \"Bearer {key}\" or \"ApiKey {key}\""],
    [{ auth: { header: "Bad Header" } }, "auth.header: expected an HTTP header name, e.g. Authorization"],
    [{ maxImageBytes: 0 }, "maxImageBytes: expected an integer ≥ 1"],
    [{ baseUrl: "ftp://acceo" }, "baseUrl: expected an http:// or https:// URL"],
    [{ productIds: [] }, "productIds: expected at least one product id (leave the option out for every product)"],
    [{ pageSize: 10 }, "pageSize: is unexpected, expected: \"baseUrl\" | \"apiKey\" | \"auth\" | \"mode\" | \"productIds\" | \"productIdsFile\" | \"idsEndpoint\" | \"images\" | \"format\" | \"count\" | \"startToken\" | \"session\" | \"partitionSize\" | \"concurrency\" | \"maxImageBytes\" | \"maxResponseBytes\" | \"notFoundReturncodes\" | \"regroup\" | \"timeout\" | \"retry\" | \"rateLimit\""]
  ])("rejects %j", (patch, message) => {
    expect(issues({ ...minimal, ...patch })).toContain(message)
  })

  it("rejects a missing key or base URL, naming the field", () => {
    expect(issues({ baseUrl: minimal.baseUrl })).toEqual(["apiKey: is missing"])
    expect(issues({ apiKey: "k" })).toEqual(["baseUrl: is missing"])
  })

  it("is the plugin's config schema", () => {
    expect(acceo.name).toBe("acceo")
    expect(acceo.config).toBe(AcceoConfig)
  })

  it("every option is documented in the README, with its schema default", () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, "..", "README.md"), "utf8")
    expect(ConfigDocs.readmeGaps(readme, AcceoConfig, minimal)).toEqual([])
  })
})
