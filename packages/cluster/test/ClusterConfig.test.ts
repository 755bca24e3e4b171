/**
 * The `cluster:` section: defaults, errors that name the path, secrets that stay secret, and the
 * per-pipeline table prefix.
 */
import { ConfigError } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { describe, expect, it } from "vitest"
import * as ClusterConfig from "../src/ClusterConfig.js"

const decode = (raw: unknown) => Effect.runSync(Effect.either(ClusterConfig.decode(raw)))

describe("ClusterConfig", () => {
  it("fills in every default from postgres alone, the URL kept as a secret", () => {
    const r = decode({ postgres: "postgres://u:hunter2@db:5432/x" })
    expect(Either.isRight(r)).toBe(true)
    const c = Either.getOrThrow(r)
    expect(Redacted.value(c.postgres)).toBe("postgres://u:hunter2@db:5432/x")
    expect(String(c.postgres)).not.toContain("hunter2")
    expect(c).toMatchObject({ host: "127.0.0.1", port: 34431, shardLockExpiration: "35 seconds", partitionsPerWorker: 2, shardsPerGroup: 300 })
    expect(c.redis).toBeUndefined()
  })

  it("a missing section says how to write one", () => {
    const r = decode(undefined)
    expect(Either.isLeft(r) && r.left).toBeInstanceOf(ConfigError)
    expect(Either.isLeft(r) && r.left.message).toMatch(/^cluster: a distributed run needs a cluster section, e\.g\. cluster: \{ postgres: \$\{PG_URL\} \}/)
  })

  it("names the path of a bad value, an unknown option and a missing postgres", () => {
    const bad = decode({ postgres: "postgres://x", shardLockExpiration: "soon" })
    expect(Either.isLeft(bad) && bad.left.message).toMatch(/^cluster\.shardLockExpiration: expected a duration like "500 millis"/)
    const unknown = decode({ postgres: "postgres://x", shardLockExpiry: "5 seconds" })
    expect(Either.isLeft(unknown) && unknown.left.message).toMatch(/^cluster\.shardLockExpiry: unknown option/)
    const missing = decode({ redis: "redis://127.0.0.1:6379" })
    expect(Either.isLeft(missing) && missing.left.message).toMatch(/^cluster\.postgres: is required/)
    const prefix = decode({ postgres: "postgres://x", prefix: "Bad-Prefix" })
    expect(Either.isLeft(prefix) && prefix.left.message).toMatch(/^cluster\.prefix: expected a lowercase SQL name prefix/)
  })

  it("gives each pipeline its own tables unless a prefix is set", () => {
    const c = ClusterConfig.make({ postgres: "postgres://x" })
    expect(ClusterConfig.prefixOf(c, "Shop-Images.eu")).toBe("effetl_shop_images_eu")
    expect(ClusterConfig.prefixOf({ ...c, prefix: "mine" }, "anything")).toBe("mine")
  })
})
