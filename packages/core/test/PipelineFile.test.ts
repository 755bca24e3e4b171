import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import * as Config from "../src/Config.js"
import type { ConfigError } from "../src/Errors.js"
import * as PipelineFile from "../src/PipelineFile.js"
import * as Registry from "../src/Registry.js"
import * as Sink from "../src/Sink.js"
import * as Source from "../src/Source.js"

const fake = Source.define({
  name: "fake",
  description: "test source",
  config: Schema.Struct({
    baseUrl: Config.required(Config.BaseUrl, { description: "base" }),
    token: Config.required(Config.Secret, { description: "token" }),
    channelId: Config.required(Schema.Int, { description: "channel" }),
    pageSize: Config.withDefault(Config.intRange(1, 1000), 100, { description: "page size" })
  }),
  make: () => Effect.succeed({ productComplete: true, stream: Stream.empty, check: Effect.void })
})
const sink = Sink.define({
  name: "nowhere",
  description: "test sink",
  config: Schema.Struct({ path: Schema.String }),
  make: () => Effect.die("not used")
})
const registry = Registry.make({ sources: [fake], transforms: [], sinks: [sink] })
const file = path.join(import.meta.dirname, "fixtures", "pipeline.yaml")

const yaml = (source: string) => `version: 1
name: t
sources:
  s1:
    use: fake
    with:
${source}
sinks:
  out:
    use: nowhere
    with: { path: out/x.csv }
`

const parseErr = (text: string, env: Record<string, string> = {}) =>
  PipelineFile.parse(text, { registry, env, file }).pipe(Effect.flip)

describe("PipelineFile", () => {
  it.effect("decodes a valid file, interpolating env vars with numbers re-read as numbers", () =>
    Effect.gen(function*() {
      const p = yield* PipelineFile.parse(
        yaml("      baseUrl: ${BASE}\n      token: ${TOKEN}\n      channelId: ${ID}"),
        { registry, env: { BASE: "http://127.0.0.1:9", TOKEN: "s3cret", ID: "5" }, file }
      )
      expect(p.name).toBe("t")
      // The checkpoint defaults: whichever comes first of 10,000 records and 10 seconds.
      expect(p.everyRecords).toBe(10_000)
      expect(p.everySeconds).toBe(10)
      const cfg = p.sources[0]!.config as { channelId: number; pageSize: number; token: unknown }
      expect(cfg.channelId).toBe(5)
      expect(cfg.pageSize).toBe(100)
      expect(String(cfg.token)).not.toContain("s3cret")
    }))

  it.effect("a missing env var is an error naming it and its line", () =>
    Effect.gen(function*() {
      const e = yield* parseErr(yaml("      baseUrl: ${NOPE_BASE}\n      token: x\n      channelId: 1"))
      expect(e._tag).toBe("ConfigError")
      expect(e.message).toContain("NOPE_BASE")
      expect(e.message).toMatch(/pipeline\.yaml:7/)
    }))

  it.effect("a wrong type names the full path, the value and the line", () =>
    Effect.gen(function*() {
      const e: ConfigError = yield* parseErr(yaml("      baseUrl: http://h\n      token: x\n      channelId: 1\n      pageSize: x"))
      expect(e.message).toContain('sources.s1.with.pageSize: expected an integer from 1 to 1000, got "x"')
      expect(e.path).toBe("sources.s1.with.pageSize")
      expect(e.line).toBe(10)
    }))

  it.effect("a secret's value is never echoed in an error", () =>
    Effect.gen(function*() {
      const e = yield* parseErr(yaml("      baseUrl: http://h\n      token: 123456789\n      channelId: 1"))
      expect(e.message).toContain("sources.s1.with.token")
      expect(e.message).not.toContain("123456789")
    }))

  it.effect("an unknown option and a missing required option are named", () =>
    Effect.gen(function*() {
      const e = yield* parseErr(yaml("      baseUrl: http://h\n      pagesize: 3"))
      expect(e.message).toContain("sources.s1.with.token: is required")
      expect(e.message).toContain("sources.s1.with.channelId: is required")
      expect(e.message).toContain("sources.s1.with.pagesize: unknown option")
    }))

  it.effect("an unknown plugin lists the built-ins", () =>
    Effect.gen(function*() {
      const e = yield* parseErr(yaml("      x: 1").replace("use: fake", "use: nosuch"))
      expect(e.message).toContain("unknown source plugin 'nosuch'")
      expect(e.message).toContain("fake")
    }))

  it.effect("bad YAML names the line", () =>
    Effect.gen(function*() {
      const e = yield* parseErr("version: 1\nname: [unclosed\nsources: {}\n")
      expect(e.message).toMatch(/invalid YAML/)
      expect(e.line).toBeGreaterThan(0)
    }))

  it.effect("a bad base URL is refused", () =>
    Effect.gen(function*() {
      const e = yield* parseErr(yaml("      baseUrl: ftp://h\n      token: x\n      channelId: 1"))
      expect(e.message).toContain("sources.s1.with.baseUrl: expected an http:// or https:// URL")
    }))

  it.effect("loads a plugin from a relative module path (default export)", () =>
    Effect.gen(function*() {
      const p = yield* PipelineFile.parse(yaml("      count: 2").replace("use: fake", "use: ./echo-source.mjs"), { registry, env: {}, file })
      expect(p.sources[0]!.plugin.name).toBe("echo")
      expect(p.sources[0]!.config).toEqual({ count: 2 })
    }))

  it.effect("a module without a plugin default export is a clear error", () =>
    Effect.gen(function*() {
      const e = yield* parseErr(yaml("      x: 1").replace("use: fake", "use: ./pipeline.yaml.mjs"))
      expect(e.message).toContain("cannot load plugin module")
    }))

  it("the JSON Schema lists each plugin with its options", () => {
    const schema = PipelineFile.jsonSchema(registry) as { properties: Record<string, unknown> }
    const text = JSON.stringify(schema)
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["version", "name", "sources", "sinks", "transforms"]))
    expect(text).toContain('"fake"')
    expect(text).toContain("page size")
  })

  it.effect("a missing file is a config error", () =>
    Effect.gen(function*() {
      const r = yield* PipelineFile.load("/nonexistent/p.yaml", { registry }).pipe(Effect.either)
      expect(Either.isLeft(r) && r.left.message).toContain("no such file")
    }))
})

describe("PipelineFile: plugins without options", () => {
  it.effect("an option given to a plugin that takes none is an error, not silently ignored", () =>
    Effect.gen(function*() {
      const noOptions = Sink.define({ name: "plain", description: "no options", config: Schema.Struct({}), make: () => Effect.die("unused") })
      const reg = Registry.make({ sources: [fake], transforms: [], sinks: [noOptions] })
      const text = yaml("      baseUrl: http://h\n      token: x\n      channelId: 1").replace("use: nowhere\n    with: { path: out/x.csv }", "use: plain\n    with: { pth: 1 }")
      const e = yield* PipelineFile.parse(text, { registry: reg, env: {}, file }).pipe(Effect.flip)
      expect(e.message).toContain("sinks.out.with.pth: unknown option (this plugin takes no options)")
      expect(e.line).toBe(13)
    }))
})

describe("PipelineFile: error messages read as one answer per field", () => {
  const withEnum = Source.define({
    name: "enumy",
    description: "test source",
    config: Schema.Struct({
      mode: Config.withDefault(Schema.Literal("list", "detailed"), "detailed" as const, { description: "mode" }),
      retry: Config.withDefault(
        Schema.Struct({ maxRetries: Config.withDefault(Config.intRange(0, 20), 5, { description: "n" }) }),
        { maxRetries: 5 },
        { description: "retry" }
      )
    }),
    make: () => Effect.die("unused")
  })
  const reg = Registry.make({ sources: [withEnum], transforms: [], sinks: [sink] })
  const text = (withBlock: string, version = "1") =>
    `version: ${version}\nname: t\nsources:\n  s1:\n    use: enumy\n    with:\n${withBlock}\nsinks:\n  out:\n    use: nowhere\n    with: { path: x }\n`

  it.effect("a wrong choice lists the choices once, with no 'expected undefined' noise", () =>
    Effect.gen(function*() {
      const e = yield* PipelineFile.parse(text("      mode: detaled"), { registry: reg, env: {}, file }).pipe(Effect.flip)
      expect(e.message).toBe(`${file}: sources.s1.with.mode: expected one of "list", "detailed", got "detaled" (line 7)`)
    }))

  it.effect("several problems: one line each, each with its line number", () =>
    Effect.gen(function*() {
      const e = yield* PipelineFile.parse(text("      mode: x\n      retry:\n        maxRetries: -1"), { registry: reg, env: {}, file }).pipe(Effect.flip)
      expect(e.message.split("\n")).toEqual([
        `${file}: 2 problems`,
        `${file}: sources.s1.with.mode: expected one of "list", "detailed", got "x" (line 7)`,
        `${file}: sources.s1.with.retry.maxRetries: expected an integer from 0 to 20, got -1 (line 9)`
      ])
      expect(e.problems?.map((p) => [p.path, p.line])).toEqual([["sources.s1.with.mode", 7], ["sources.s1.with.retry.maxRetries", 9]])
    }))

  it.effect("a wrong file version says what is expected", () =>
    Effect.gen(function*() {
      const e = yield* PipelineFile.parse(text("      mode: list", "2"), { registry: reg, env: {}, file }).pipe(Effect.flip)
      expect(e.message).toBe(`${file}: version: expected 1 (the only pipeline file version), got 2 (line 1)`)
    }))
})
