/**
 * Finds plugins by name: a built-in short name (`channel`, `csv`, `dedupe-by-hash`), an npm package
 * name, or a relative module path (`./plugins/my-source.js`). A module's default export is the plugin.
 * State stores (`state: { use: ... }`) are a plugin kind too; core's JSON file store is always built in as `json`.
 *
 * A built-in may be registered lazily (`Registry.lazy`): by name, with a loader (a dynamic `import()`)
 * that runs the first time a pipeline uses it, so a program loads only the plugin packages it needs.
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { ConfigError } from "./Errors.js"
import { isSinkPlugin, type SinkPlugin } from "./Sink.js"
import { isSourcePlugin, type SourcePlugin } from "./Source.js"
import { isStateStorePlugin, type StateStorePlugin } from "./StateStore.js"
import { jsonStateStore } from "./StateStores.js"
import * as Suggest from "./Suggest.js"
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
  /** Built-ins of any kind known by name and loaded the first time they are resolved (see `lazy`). */
  readonly lazy?: ReadonlyArray<LazyPlugin>
}

/** A built-in known by kind and name whose module is loaded only when a pipeline uses it. */
export interface LazyPlugin<K extends Kind = Kind> {
  readonly _tag: "LazyPlugin"
  readonly kind: K
  readonly name: string
  /** Loads the plugin, typically `() => import("@scope/package").then((m) => m.plugin)`. */
  readonly load: () => Promise<PluginOf<K>>
}

/** Registers a built-in by kind and name, to be loaded by `load` on first use. */
export const lazy = <K extends Kind>(kind: K, name: string, load: () => Promise<PluginOf<K>>): LazyPlugin<K> => ({
  _tag: "LazyPlugin",
  kind,
  name,
  load
})

/** Makes a registry of built-ins, refusing two plugins of one kind with the same name (loaded or lazy). */
export const make = (builtins: Registry): Registry => {
  for (const kind of ["source", "transform", "sink", "state"] as const) {
    const seen = new Set<string>()
    for (const name of names(builtins, kind)) {
      if (seen.has(name)) throw new Error(`two built-in ${kindName[kind]} plugins are named '${name}'`)
      seen.add(name)
    }
  }
  return builtins
}

/** The names of every built-in of a kind, loaded or lazy, in registration order. */
export const names = (registry: Registry, kind: Kind): ReadonlyArray<string> => [
  ...builtinsOf(registry, kind).map((p) => p.name),
  ...lazyOf(registry, kind).map((l) => l.name)
]

/** The lazy built-ins of a kind. */
const lazyOf = <K extends Kind>(registry: Registry, kind: K): ReadonlyArray<LazyPlugin<K>> =>
  (registry.lazy ?? []).filter((l): l is LazyPlugin<K> => l.kind === kind)

/**
 * The same registry with every lazy built-in loaded, for what needs them all (`effetl plugins`, the
 * pipeline JSON Schema). Loaded plugins keep the order of registration, lazy ones after the others.
 */
export const loadAll = (registry: Registry): Effect.Effect<Registry, ConfigError> =>
  Effect.gen(function*() {
    const loaded = yield* Effect.forEach(registry.lazy ?? [], (l) => loadLazy(l, l.kind, "built-ins"))
    const of = <K extends Kind>(kind: K) => loaded.filter((_, i) => registry.lazy![i]!.kind === kind) as Array<PluginOf<K>>
    return {
      sources: [...registry.sources, ...of("source")],
      transforms: [...registry.transforms, ...of("transform")],
      sinks: [...registry.sinks, ...of("sink")],
      stateStores: [...(registry.stateStores ?? []), ...of("state")]
    }
  })

/** Runs a lazy entry's loader, checking that it gave a plugin of its kind and name. */
const loadLazy = <K extends Kind>(entry: LazyPlugin<K>, kind: K, where: string): Effect.Effect<PluginOf<K>, ConfigError> =>
  Effect.tryPromise({
    try: () => entry.load(),
    catch: (e) =>
      new ConfigError({ message: `${where}: could not load the built-in ${kindName[kind]} plugin '${entry.name}': ${thrown(e)}`, path: where })
  }).pipe(
    Effect.filterOrFail(
      (p): p is PluginOf<K> => isKind(kind, p) && p.name === entry.name,
      () => new ConfigError({ message: `${where}: built-in '${entry.name}' did not load as a ${kindName[kind]} plugin of that name`, path: where })
    )
  )

/** The loaded built-ins of a kind (a lazy registry's other built-ins are in `names`; `loadAll` loads them). */
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
  const deferred = lazyOf(registry, kind).find((l) => l.name === use)
  if (deferred) return loadLazy(deferred, kind, where)
  const isPath = use.startsWith("./") || use.startsWith("../") || path.isAbsolute(use)
  const isPackage = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/[\w./-]+)?$/i.test(use)
  if (!isPath && !isPackage) {
    return Effect.fail(unknownPlugin(registry, kind, use, where))
  }
  return Effect.gen(function*() {
    if (isPath) {
      const problem = fileProblem(path.resolve(baseDir, use))
      if (problem !== undefined) {
        return yield* new ConfigError({ message: `${where}: cannot load plugin module '${use}': ${problem}`, path: where })
      }
    }
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
          message: `${where}: could not load plugin module '${use}': ${thrown(e)}`,
          path: where
        })
    })
    const plugin = mod.default
    const fits = yield* Effect.try({
      try: () => isKind(kind, plugin),
      catch: (e) => new ConfigError({ message: `${where}: module '${use}' has a default export that cannot be read: ${thrown(e)}`, path: where })
    })
    if (!fits) {
      return yield* new ConfigError({
        message: `${where}: module '${use}' has no default export that is a ${kindName[kind]} plugin (made with ${defineName[kind]})`,
        path: where
      })
    }
    return plugin as PluginOf<K>
  })
}

/** What keeps a plugin module file from loading, in words, or undefined when it is a readable file. */
const fileProblem = (file: string): string | undefined => {
  try {
    const stat = fs.statSync(file)
    if (stat.isDirectory()) return "it is a directory, not a module file"
    if (!stat.isFile()) return "it is not a regular file"
    fs.accessSync(file, fs.constants.R_OK)
    return undefined
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    return code === "ENOENT"
      ? `no such file (${file})`
      : code === "EACCES" || code === "EPERM"
      ? `permission denied (${file})`
      : code === "ENOTDIR"
      ? `a part of the path is not a directory (${file})`
      : thrown(e)
  }
}

/** The message of something thrown, whatever it is (a plugin module may throw anything). */
const thrown = (e: unknown): string => {
  try {
    return e instanceof Error ? e.message : String(e)
  } catch {
    return "(an exception that cannot be shown)"
  }
}

/**
 * An unknown plugin name: the built-ins of its kind, the closest of them when it looks like a typo,
 * or the kind it is a built-in of when it is one of another section.
 */
const unknownPlugin = (registry: Registry, kind: Kind, use: string, where: string) => {
  const elsewhere = (["source", "transform", "sink", "state"] as const).filter((k) => k !== kind && names(registry, k).includes(use))
  const near = Suggest.closest(use, names(registry, kind))
  const hint = near !== undefined
    ? ` Did you mean '${near}'?`
    : elsewhere.length > 0
    ? ` ('${use}' is a built-in ${elsewhere.map((k) => kindName[k]).join(" and ")}, not a ${kindName[kind]}.)`
    : ""
  return new ConfigError({
    message: `${where}: unknown ${kindName[kind]} plugin '${use}'. Built-in ${kindName[kind]}s: ${names(registry, kind).join(", ") || "none"}; or give an npm package name or a relative path like ./my-plugin.js${hint !== "" ? `.${hint}` : ""}`,
    path: where
  })
}
