import { ConfigDocs } from "@effetl/core/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { bigcommerce, BigCommerceConfig } from "../src/Source.js"

const minimal = { storeHash: "abc123def", accessToken: "s3cret-token" }

/** The issues of a config that fails to decode (as a pipeline file is decoded: unknown options are errors), as `path: message`. */
const issues = (input: Record<string, unknown>): Array<string> => {
  const decoded = Schema.decodeUnknownEither(BigCommerceConfig, { errors: "all", onExcessProperty: "error" })(input)
  if (Either.isRight(decoded)) return []
  return ParseResult.ArrayFormatter.formatErrorSync(decoded.left).map((i) => `${i.path.join(".")}: ${i.message}`)
}

describe("BigCommerceConfig", () => {
  it("fills the documented defaults", () => {
    const config = Schema.decodeUnknownSync(BigCommerceConfig)(minimal)
    expect({ ...config, accessToken: Redacted.value(config.accessToken) }).toEqual({
      ...minimal,
      baseUrl: "https://api.bigcommerce.com",
      pageSize: 250,
      imageUrl: "zoom",
      concurrency: 4,
      overlap: "1 second",
      partitionSize: 5000,
      timeout: "30 seconds",
      retry: { maxRetries: 5, baseDelay: "250 millis", maxDelay: "30 seconds" },
      rateLimit: { reserve: 1, slowDownBelow: 0.1 }
    })
    // The token is held redacted: printing the config never shows it.
    expect(String(config.accessToken)).not.toContain("s3cret-token")
    expect(JSON.stringify(config)).not.toContain("s3cret-token")
  })

  it("accepts every option", () => {
    const config = Schema.decodeUnknownSync(BigCommerceConfig)({
      ...minimal,
      baseUrl: "http://127.0.0.1:8080",
      productIds: [77, "80"],
      pageSize: 50,
      imageUrl: "thumbnail",
      concurrency: 32,
      overlap: "5 minutes",
      partitionSize: 200,
      timeout: "2 minutes",
      retry: { maxRetries: 0 },
      rateLimit: { reserve: 20 }
    })
    expect(config.productIds).toEqual([77, "80"])
    expect(config.rateLimit).toEqual({ reserve: 20, slowDownBelow: 0.1 })
  })

  it.each([
    [{ pageSize: 0 }, "pageSize: expected an integer from 1 to 250 (BigCommerce answers 413 to a larger limit)"],
    [{ pageSize: 251 }, "pageSize: expected an integer from 1 to 250 (BigCommerce answers 413 to a larger limit)"],
    [{ overlap: "1 fortnight" }, "overlap: expected a duration like \"500 millis\", \"30 seconds\" or \"2 minutes\", got \"1 fortnight\""],
    [{ partitionSize: 0 }, "partitionSize: expected an integer from 1 to 1000000"],
    [{ concurrency: 0 }, "concurrency: expected an integer from 1 to 32"],
    [{ storeHash: "abc/../x" }, "storeHash: expected the store hash: letters and digits only"],
    [{ baseUrl: "ftp://api.bigcommerce.com" }, "baseUrl: expected an http:// or https:// URL"],
    [{ rateLimit: { reserve: -1 } }, "rateLimit.reserve: expected an integer from 0 to 10000"],
    [{ rateLimit: { slowDownBelow: 2 } }, "rateLimit.slowDownBelow: expected a fraction from 0 to 1"],
    [{ productIds: [] }, "productIds: expected at least one product id (leave the option out for every product)"],
    [{ pagesize: 10 }, "pagesize: is unexpected, expected: \"storeHash\" | \"baseUrl\" | \"accessToken\" | \"productIds\" | \"productIdsFile\" | \"pageSize\" | \"imageUrl\" | \"concurrency\" | \"overlap\" | \"partitionSize\" | \"timeout\" | \"retry\" | \"rateLimit\""]
  ])("rejects %j", (patch, message) => {
    expect(issues({ ...minimal, ...patch })).toContain(message)
  })

  it("rejects an unknown imageUrl variant, listing the variants", () => {
    const found = issues({ ...minimal, imageUrl: "large" })
    expect(found.length).toBeGreaterThan(0)
    expect(found.every((i) => i.startsWith("imageUrl: "))).toBe(true)
    expect(found.join("\n")).toContain("\"tiny\"")
  })

  it("rejects a missing store hash or token, naming the field", () => {
    expect(issues({ accessToken: "t" })).toEqual(["storeHash: is missing"])
    expect(issues({ storeHash: "abc" })).toEqual(["accessToken: is missing"])
  })

  it("is the plugin's config schema", () => {
    expect(bigcommerce.name).toBe("bigcommerce")
    expect(bigcommerce.config).toBe(BigCommerceConfig)
  })

  it("says how it reads: full scan, incremental cursor, by id; and it splits into partitions", () => {
    expect(bigcommerce.reads?.fullScan).toContain("min_id")
    expect(bigcommerce.reads?.incremental).toContain("min_date_modified")
    expect(bigcommerce.reads?.byId).toContain("productIds")
    expect(typeof bigcommerce.partitions).toBe("function")
  })

  it("every option is documented in the README, with its schema default", () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, "..", "README.md"), "utf8")
    expect(ConfigDocs.readmeGaps(readme, BigCommerceConfig, minimal)).toEqual([])
  })
})
