/**
 * Plugins are found by built-in short name, npm package name (default export) or relative module path.
 */
import { Registry } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { registry } from "../src/Builtins.js"
import { root, tempDir } from "./helpers.js"

describe("plugin registry", () => {
  it.effect("finds a built-in by short name", () =>
    Effect.gen(function*() {
      const p = yield* Registry.resolve(registry, "source", "channel", root, "sources.x.use")
      expect(p.name).toBe("channel")
    }))

  it.effect("finds a plugin by npm package name (the package's default export)", () =>
    Effect.gen(function*() {
      const p = yield* Registry.resolve(registry, "source", "@effetl/source-channel", root, "sources.x.use")
      expect(p._tag).toBe("SourcePlugin")
      expect(p.name).toBe("channel")
    }))

  it.effect("a package whose default export is a plugin of another kind is a clear error", () =>
    Effect.gen(function*() {
      const e = yield* Registry.resolve(registry, "sink", "@effetl/source-channel", root, "sinks.out.use").pipe(Effect.flip)
      expect(e.message).toBe("sinks.out.use: module '@effetl/source-channel' has no default export that is a sink plugin (made with Sink.define)")
    }))

  it.effect("an npm package that is not installed is named in the error with the built-ins", () =>
    Effect.gen(function*() {
      const e = yield* Registry.resolve(registry, "sink", "effetl-sink-nosuch", root, "sinks.out.use").pipe(Effect.flip)
      expect(e.message).toContain("unknown sink plugin 'effetl-sink-nosuch'")
      expect(e.message).toContain("csv, jsonl")
    }))

  it.effect("finds a plugin by relative module path, from the pipeline file's directory", () =>
    Effect.gen(function*() {
      const dir = tempDir("registry")
      fs.mkdirSync(path.join(dir, "plugins"))
      fs.writeFileSync(
        path.join(dir, "plugins", "upper.mjs"),
        `export default { _tag: "TransformPlugin", name: "upper", description: "test", productScoped: false,
           config: (await import(${JSON.stringify(path.join(root, "node_modules/effect/dist/esm/Schema.js"))})).Struct({}),
           make: () => { throw new Error("unused") } }\n`
      )
      const p = yield* Registry.resolve(registry, "transform", "./plugins/upper.mjs", dir, "transforms.0.use")
      expect(p.name).toBe("upper")
    }))
})
