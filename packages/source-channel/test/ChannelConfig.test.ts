import { ConfigDocs } from "@effetl/core/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { channel, ChannelConfig } from "../src/Source.js"

const minimal = { baseUrl: "https://omnitron.example.com", channelId: 5, token: "s3cret-token" }

/** The issues of a config that fails to decode, as `path: message`. */
const issues = (input: Record<string, unknown>): Array<string> => {
  const decoded = Schema.decodeUnknownEither(ChannelConfig, { errors: "all" })(input)
  if (Either.isRight(decoded)) return []
  return ParseResult.ArrayFormatter.formatErrorSync(decoded.left).map((i) => `${i.path.join(".")}: ${i.message}`)
}

describe("ChannelConfig", () => {
  it("fills the documented defaults", () => {
    const config = Schema.decodeUnknownSync(ChannelConfig)(minimal)
    expect({ ...config, token: Redacted.value(config.token) }).toEqual({
      ...minimal,
      mode: "detailed",
      idLookup: false,
      activeOnly: false,
      pageSize: 100,
      partitionSize: 100,
      concurrency: 4,
      urlField: "image",
      altField: "alt",
      timeout: "30 seconds",
      retry: { maxRetries: 5, baseDelay: "250 millis", maxDelay: "30 seconds" }
    })
    // The token is held redacted: printing the config never shows it.
    expect(String(config.token)).not.toContain("s3cret-token")
    expect(JSON.stringify(config)).not.toContain("s3cret-token")
  })

  it("accepts every option", () => {
    const config = Schema.decodeUnknownSync(ChannelConfig)({
      ...minimal,
      mode: "inserts_or_updates",
      ids: [1, 2],
      idLookup: true,
      product: 1001,
      productIds: [1001, 1002],
      isSellerProduct: true,
      productType: ["simple"],
      activeOnly: true,
      pageSize: 1000,
      partitionSize: 500,
      concurrency: 32,
      urlField: "image_url",
      altField: "alt_text",
      timeout: "2 minutes",
      retry: { maxRetries: 0 },
      rateLimit: { requestsPerSecond: 10, burst: 5 }
    })
    expect(config.retry).toEqual({ maxRetries: 0, baseDelay: "250 millis", maxDelay: "30 seconds" })
    expect(config.rateLimit).toEqual({ requestsPerSecond: 10, burst: 5 })
  })

  it.each([
    [{ pageSize: 0 }, "pageSize: expected an integer from 1 to 1000"],
    [{ pageSize: 1001 }, "pageSize: expected an integer from 1 to 1000"],
    [{ pageSize: 2.5 }, "pageSize: expected an integer from 1 to 1000"],
    [{ partitionSize: 0 }, "partitionSize: expected an integer from 1 to 500"],
    [{ partitionSize: 501 }, "partitionSize: expected an integer from 1 to 500"],
    [{ concurrency: 0 }, "concurrency: expected an integer from 1 to 32"],
    [{ concurrency: 33 }, "concurrency: expected an integer from 1 to 32"],
    [{ channelId: "x" }, "channelId: expected an integer ≥ 1"],
    [{ channelId: 0 }, "channelId: expected an integer ≥ 1"],
    [{ baseUrl: "ftp://omnitron.example.com" }, "baseUrl: expected an http:// or https:// URL"],
    [{ baseUrl: "omnitron" }, "baseUrl: expected a URL like https://host[:port], got \"omnitron\""],
    [{ product: -1 }, "product: expected an integer ≥ 1"],
    [{ ids: [1, "two"] }, "ids.1: expected an integer ≥ 1"],
    [{ timeout: "soon" }, "timeout: expected a duration like \"500 millis\", \"30 seconds\" or \"2 minutes\", got \"soon\""]
  ])("rejects %j", (patch, message) => {
    expect(issues({ ...minimal, ...patch })).toContain(message)
  })

  it("rejects a missing token, naming the field", () => {
    const { token: _, ...noToken } = minimal
    expect(issues(noToken)).toEqual(["token: is missing"])
  })

  it("rejects an unknown mode, listing the modes", () => {
    const found = issues({ ...minimal, mode: "all" })
    expect(found.length).toBeGreaterThan(0)
    expect(found.every((i) => i.startsWith("mode: "))).toBe(true)
    expect(found.join("\n")).toContain("\"inserts_or_updates\"")
  })

  it.each(["ids", "productIds", "productType"])("rejects an empty %s (it would silently mean no filter at all)", (field) => {
    expect(issues({ ...minimal, [field]: [] })).toContain(`${field}: expected at least one value (leave the option out for no filter)`)
  })

  it("is the plugin's config schema", () => {
    expect(channel.name).toBe("channel")
    expect(channel.config).toBe(ChannelConfig)
  })

  it("every option is documented in the README, with its schema default", () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, "..", "README.md"), "utf8")
    expect(ConfigDocs.readmeGaps(readme, ChannelConfig, minimal)).toEqual([])
  })
})
