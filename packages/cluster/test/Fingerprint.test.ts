/**
 * The pipeline fingerprint workers check work against: what a pipeline reads, does and writes, with
 * secrets as digests; local paths left out.
 */
import { Pipeline, Sink, Source } from "@effetl/core"
import { Config } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { describe, expect, it } from "vitest"
import * as Fingerprint from "../src/Fingerprint.js"

const source = Source.define({
  name: "fixture",
  description: "no records",
  config: Schema.Struct({ token: Config.Secret, pageSize: Schema.optionalWith(Schema.Number, { default: () => 10 }) }),
  make: () => Effect.succeed({ productComplete: true, stream: Stream.empty, check: Effect.void })
})
const sink = Sink.define({
  name: "fixture-sink",
  description: "drops everything",
  config: Schema.Struct({ path: Schema.String }),
  make: () => Effect.succeed({ write: () => Effect.void, commit: Effect.succeed(null), finish: Effect.void, cleanup: Effect.void })
})

const pipeline = (token: string, fields: { pageSize?: number; statePath?: string } = {}) =>
  Effect.runSync(
    Pipeline.make({
      name: "p",
      ...(fields.statePath !== undefined ? { statePath: fields.statePath } : {}),
      sources: { shop: { use: source, with: { token, ...(fields.pageSize !== undefined ? { pageSize: fields.pageSize } : {}) } } },
      sinks: { out: { use: sink, with: { path: "out/x" } } }
    })
  )

describe("Fingerprint", () => {
  it("changes with a config value or a secret, never shows the secret, and ignores local paths", () => {
    const base = Fingerprint.of(pipeline("s3cret"))
    expect(base).toMatch(/^[0-9a-f]{64}$/)
    expect(Fingerprint.of(pipeline("s3cret"))).toBe(base)
    expect(Fingerprint.of(pipeline("other"))).not.toBe(base)
    expect(Fingerprint.of(pipeline("s3cret", { pageSize: 20 }))).not.toBe(base)
    expect(Fingerprint.of(pipeline("s3cret", { statePath: "/elsewhere/state.json" }))).toBe(base)
  })
})
