/**
 * Plugins are found by built-in short name, npm package name (default export) or relative module path.
 * The built-ins load on first use (lazy registry entries).
 */
import { Registry } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { csv as csvSink, plugins as fileSinks } from "@effetl/sink-files"
import { plugins as sqlPlugins } from "@effetl/sink-sql"
import { acceo } from "@effetl/source-acceo"
import { bigcommerce } from "@effetl/source-bigcommerce"
import { channel } from "@effetl/source-channel"
import { shoplazza } from "@effetl/source-shoplazza"
import { loadedRegistry, registry } from "../src/Builtins.js"
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

describe("lazy built-ins", () => {
  it.effect("a lazy built-in loads on first use, as the plugin of that name", () =>
    Effect.gen(function*() {
      expect(Registry.builtinsOf(registry, "sink").map((p) => p.name)).toEqual([]) // nothing loaded up front
      expect(Registry.names(registry, "sink")).toEqual(["csv", "jsonl", "parquet", "images", "sqlite", "postgres"])
      expect(Registry.names(registry, "state")).toEqual(["json", "sqlite", "postgres"])
      const csv = yield* Registry.resolve(registry, "sink", "csv", root, "sinks.out.use")
      expect(csv).toBe(csvSink)
      const state = yield* Registry.resolve(registry, "state", "sqlite", root, "state.use")
      expect(state).toBe(sqlPlugins.stateStores.find((s) => s.name === "sqlite"))
    }))

  it("the lazy built-ins are exactly the plugins the packages export, in the same order", async () => {
    const all = await loadedRegistry()
    expect(all.sources.map((p) => p.name)).toEqual([acceo, shoplazza, bigcommerce, channel].map((p) => p.name))
    expect(all.sinks).toEqual([...fileSinks, ...sqlPlugins.sinks])
    expect(Registry.builtinsOf(all, "state").map((p) => p.name)).toEqual(["json", ...sqlPlugins.stateStores.map((p) => p.name)])
    expect(all.transforms).toEqual(registry.transforms)
  })

  it.effect("an unknown name still gets its clear error naming every built-in, loaded or not", () =>
    Effect.gen(function*() {
      const e = yield* Registry.resolve(registry, "sink", "cvs", root, "sinks.out.use").pipe(Effect.flip)
      expect(e.message).toBe(
        "sinks.out.use: unknown sink plugin 'cvs'. Built-in sinks: csv, jsonl, parquet, images, sqlite, postgres; or give an npm package name or a relative path like ./my-plugin.js. Did you mean 'csv'?"
      )
    }))

  it.effect("a lazy entry whose module fails to load, or gives another plugin, is a config error naming it", () =>
    Effect.gen(function*() {
      const broken = Registry.make({
        sources: [],
        transforms: [],
        sinks: [],
        lazy: [
          Registry.lazy("sink", "gone", () => Promise.reject(new Error("Cannot find package 'effetl-gone'"))),
          Registry.lazy("sink", "wrong", () => Promise.resolve(csvSink))
        ]
      })
      const gone = yield* Registry.resolve(broken, "sink", "gone", root, "sinks.a.use").pipe(Effect.flip)
      expect(gone.message).toBe("sinks.a.use: could not load the built-in sink plugin 'gone': Cannot find package 'effetl-gone'")
      const wrong = yield* Registry.resolve(broken, "sink", "wrong", root, "sinks.b.use").pipe(Effect.flip)
      expect(wrong.message).toBe("sinks.b.use: built-in 'wrong' did not load as a sink plugin of that name")
      expect(() => Registry.make({ sources: [], transforms: [], sinks: [csvSink], lazy: [Registry.lazy("sink", "csv", () => Promise.resolve(csvSink))] }))
        .toThrow("two built-in sink plugins are named 'csv'")
    }))
})
