/**
 * Finds plugins by name: a built-in short name (`channel`, `csv`, `dedupe-by-hash`), an npm package
 * name, or a relative module path (`./plugins/my-source.js`). A module's default export is the plugin.
 * State stores (`state: { use: ... }`) are a plugin kind too; core's JSON file store is always built in as `json`.
 */
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { ConfigError } from "./Errors.js"
import { isSinkPlugin, type SinkPlugin } from "./Sink.js"
import { isSourcePlugin, type SourcePlugin } from "./Source.js"
import { isStateStorePlugin, type StateStorePlugin } from "./StateStore.js"
import { jsonStateStore } from "./StateStores.js"
import { isTransformPlugin, type TransformPlugin } from "./Transform.js"

/** The plugin kinds. */
export type Kind = "source" | "transform" | "sink" | "state"

/** The plugin type of a kind. */
export type PluginOf<K extends Kind> = K extends "source" ? SourcePlugin
  : K extends "transform" ? TransformPlugin
  : K extends "sink" ? SinkPlugin
  : StateStorePlugin

/** The built-in plugins known by short name. */
export interface Registry {
  readonly sources: ReadonlyArray<SourcePlugin>
  readonly transforms: ReadonlyArray<TransformPlugin>
  readonly sinks: ReadonlyArray<SinkPlugin>
  /** State stores besides core's `json` file store (which is always built in). */
  readonly stateStores?: ReadonlyArray<StateStorePlugin>
}

/** Makes a registry of built-ins, refusing two plugins of one kind with the same name. */
export const make = (builtins: Registry): Registry => {
  for (
    const [kind, list] of [
      ["source", builtins.sources],
      ["transform", builtins.transforms],
      ["sink", builtins.sinks],
      ["state store", [jsonStateStore, ...(builtins.stateStores ?? [])]]
    ] as const
  ) {
    const seen = new Set<string>()
    for (const p of list) {
      if (seen.has(p.name)) throw new Error(`two built-in ${kind} plugins are named '${p.name}'`)
      seen.add(p.name)
    }
  }
  return builtins
}

/** The built-ins of a kind. */
export const builtinsOf = <K extends Kind>(registry: Registry, kind: K): ReadonlyArray<PluginOf<K>> =>
  (kind === "source"
    ? registry.sources
    : kind === "transform"
    ? registry.transforms
    : kind === "sink"
    ? registry.sinks
    : [jsonStateStore, ...(registry.stateStores ?? [])]) as ReadonlyArray<PluginOf<K>>

const isKind = <K extends Kind>(kind: K, u: unknown): u is PluginOf<K> =>
  kind === "source"
    ? isSourcePlugin(u)
    : kind === "transform"
    ? isTransformPlugin(u)
    : kind === "sink"
    ? isSinkPlugin(u)
    : isStateStorePlugin(u)

const defineName = { source: "Source.define", transform: "Transform.define", sink: "Sink.define", state: "StateStore.define" } as const
const kindName = { source: "source", transform: "transform", sink: "sink", state: "state store" } as const

/**
 * Resolves `use:` to a plugin. `baseDir` is where relative module paths and package names are
 * resolved from (the pipeline file's directory). `where` is the config path, for error messages.
 */
export const resolve = <K extends Kind>(
  registry: Registry,
  kind: K,
  use: string,
  baseDir: string,
  where: string
): Effect.Effect<PluginOf<K>, ConfigError> => {
  const builtin = builtinsOf(registry, kind).find((p) => p.name === use)
  if (builtin) return Effect.succeed(builtin)
  const isPath = use.startsWith("./") || use.startsWith("../") || path.isAbsolute(use)
  const isPackage = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/[\w./-]+)?$/i.test(use)
  if (!isPath && !isPackage) {
    return Effect.fail(unknownPlugin(registry, kind, use, where))
  }
  return Effect.gen(function*() {
    const specifier = yield* Effect.try({
      try: () => {
        if (isPath) return pathToFileURL(path.resolve(baseDir, use)).href
        const require = createRequire(path.join(baseDir, "noop.js"))
        return pathToFileURL(require.resolve(use)).href
      },
      catch: () => unknownPlugin(registry, kind, use, where)
    })
    const mod = yield* Effect.tryPromise({
      try: () => import(specifier) as Promise<{ default?: unknown }>,
      catch: (e) =>
        new ConfigError({
          message: `${where}: could not load plugin module '${use}': ${e instanceof Error ? e.message : String(e)}`,
          path: where
        })
    })
    const plugin = mod.default
    if (!isKind(kind, plugin)) {
      return yield* new ConfigError({
        message: `${where}: module '${use}' has no default export that is a ${kindName[kind]} plugin (made with ${defineName[kind]})`,
        path: where
      })
    }
    return plugin
  })
}

const unknownPlugin = (registry: Registry, kind: Kind, use: string, where: string) =>
  new ConfigError({
    message: `${where}: unknown ${kindName[kind]} plugin '${use}'. Built-in ${kindName[kind]}s: ${builtinsOf(registry, kind).map((p) => p.name).join(", ") || "none"}; or give an npm package name or a relative path like ./my-plugin.js`,
    path: where
  })
