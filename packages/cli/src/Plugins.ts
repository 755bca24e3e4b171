/**
 * `effetl plugins`: the list of built-ins, and one plugin's options generated from its config schema.
 */
import { ConfigError, Registry } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as JSONSchema from "effect/JSONSchema"
import type * as Schema from "effect/Schema"
import { createRequire } from "node:module"
import * as path from "node:path"

type AnyPlugin = {
  readonly name: string
  readonly description: string
  readonly config: Schema.Schema<any, any>
  readonly reads?: { readonly fullScan: string; readonly incremental?: string; readonly byId?: string }
}

/** The plugin kinds, in the order they are listed and looked up, with their list titles. */
const kinds = [
  ["source", "sources"],
  ["transform", "transforms"],
  ["sink", "sinks"],
  ["state", "state stores (state: { use: <name> })"]
] as const

/** The name a kind is shown under in one plugin's description. */
const kindLabel = { source: "source", transform: "transform", sink: "sink", state: "state store" } as const

/** Every built-in plugin, grouped by kind, with the first sentence of its description. */
export const list = (registry: Registry.Registry, width: number = textWidth()): string => {
  const out: Array<string> = []
  const groups = kinds.map(([kind, title]) => [title, Registry.builtinsOf(registry, kind) as ReadonlyArray<AnyPlugin>] as const)
  const nameWidth = Math.max(...groups.flatMap(([, plugins]) => plugins.map((p) => p.name.length)))
  for (const [title, plugins] of groups) {
    out.push(`${title}:`)
    for (const p of plugins) {
      const [first = "", ...rest] = wrap(firstSentence(p.description), width - nameWidth - 4)
      out.push(`  ${p.name.padEnd(nameWidth)}  ${first}`, ...rest.map((l) => `${" ".repeat(nameWidth + 4)}${l}`))
    }
    out.push("")
  }
  out.push("Show a plugin's description and options with: effetl plugins <name>")
  return out.join("\n")
}

/** A plugin found by name, with the kind it is shown as. */
export interface Found {
  readonly kind: string
  readonly plugin: AnyPlugin
}

/**
 * Finds the plugins of a name: every built-in of that name (`sqlite` is a sink and a state store),
 * else the module at an npm package name or path (resolved from the working directory).
 */
export const find = (registry: Registry.Registry, name: string): Effect.Effect<ReadonlyArray<Found>, ConfigError> =>
  Effect.gen(function*() {
    const builtins = kinds.flatMap(([kind]) =>
      (Registry.builtinsOf(registry, kind) as ReadonlyArray<AnyPlugin>).filter((x) => x.name === name).map((plugin) => ({ kind: kindLabel[kind], plugin }))
    )
    if (builtins.length > 0) return builtins
    if (!exists(name)) {
      return yield* new ConfigError({
        message:
          `unknown plugin '${name}'. Built-in ${kinds.map(([k]) => `${kindLabel[k]}s: ${Registry.builtinsOf(registry, k).map((p) => p.name).join(", ")}`).join("; ")}. ` +
          "Or give an npm package name or a ./module.js path whose default export is a plugin."
      })
    }
    const errors: Array<ConfigError> = []
    for (const [kind] of kinds) {
      const found = yield* Registry.resolve(registry, kind, name, process.cwd(), "plugin").pipe(Effect.either)
      if (Either.isRight(found)) return [{ kind: kindLabel[kind], plugin: found.right as AnyPlugin }]
      errors.push(found.left)
    }
    // The same error for every kind is about the module itself (it does not load); otherwise it loaded but is no plugin.
    if (errors.every((e) => e.message === errors[0]!.message)) return yield* Effect.fail(errors[0]!)
    return yield* new ConfigError({
      message: `module '${name}' has no default export that is a plugin (made with Source.define, Transform.define, Sink.define or StateStore.define)`
    })
  })

/**
 * Whether a name is a module path (whose problems, such as a missing or unreadable file, the registry
 * names) or a package name that resolves from the working directory.
 */
const exists = (name: string): boolean => {
  if (name.startsWith("./") || name.startsWith("../") || path.isAbsolute(name)) return true
  try {
    createRequire(path.join(process.cwd(), "noop.js")).resolve(name)
    return true
  } catch {
    return false
  }
}

interface JsonSchemaNode {
  type?: string | Array<string>
  description?: string
  default?: unknown
  examples?: Array<unknown>
  enum?: Array<unknown>
  properties?: Record<string, JsonSchemaNode>
  required?: Array<string>
  anyOf?: Array<JsonSchemaNode>
  allOf?: Array<JsonSchemaNode>
  items?: JsonSchemaNode
  $ref?: string
  minimum?: number
  maximum?: number
}

/** A plugin's description and options as text: name, type, required or default, description, examples; nested options as `a.b`. */
export const describe = (kind: string, plugin: AnyPlugin, width: number = textWidth()): string => {
  const schema = JSONSchema.make(plugin.config) as JsonSchemaNode & { $defs?: Record<string, JsonSchemaNode> }
  const defs = schema.$defs ?? {}
  const out = [`${plugin.name} (${kind})`, ...wrap(plugin.description, width - 2).map((l) => `  ${l}`), ""]
  if (plugin.reads !== undefined) {
    out.push("how it reads:")
    const ways: Array<[string, string | undefined]> = [
      ["full scan", plugin.reads.fullScan],
      ["incremental", plugin.reads.incremental ?? "none: every run reads everything"],
      ["by id", plugin.reads.byId ?? "none"]
    ]
    for (const [label, text] of ways) out.push(...wrap(`${label}: ${text}`, width - 4).map((l, i) => (i === 0 ? `  ${l}` : `    ${l}`)))
    out.push("")
  }
  out.push("options (under `with:`):")
  const options = (node: JsonSchemaNode, prefix: string) => {
    const required = new Set(node.required ?? [])
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const flat = flatten(child, defs)
      const bits = [typeOf(flat, defs)]
      if (required.has(key)) bits.push("required")
      if (flat.default !== undefined) bits.push(`default ${JSON.stringify(flat.default)}`)
      out.push(`  ${prefix}${key}  (${bits.join(", ")})`)
      if (flat.description) out.push(...wrap(flat.description, width - 6).map((l) => `      ${l}`))
      if (flat.examples && flat.examples.length > 0) {
        out.push(...wrap(`e.g. ${flat.examples.map((e) => JSON.stringify(e)).join(", ")}`, width - 6).map((l) => `      ${l}`))
      }
      if (flat.properties !== undefined) options(flat, `${prefix}${key}.`)
    }
  }
  options(schema, "")
  if (Object.keys(schema.properties ?? {}).length === 0) out.push("  (none)")
  return out.join("\n")
}

/** The width to wrap text to: the terminal's, at most 100 columns. */
const textWidth = (): number => Math.max(40, Math.min(100, process.stdout.columns ?? 100))

const firstSentence = (text: string): string => {
  const m = /^[\s\S]*?[.!?](?=\s+[A-Z]|$)/.exec(text)
  return m ? m[0] : text
}

/** Wraps text at spaces into lines of at most `width` characters (a longer word gets a line of its own). */
const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let current = ""
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (current.length > 0 && current.length + 1 + word.length > width) {
      lines.push(current)
      current = word
    } else current = current.length > 0 ? `${current} ${word}` : word
  }
  if (current.length > 0) lines.push(current)
  return lines
}

const flatten = (node: JsonSchemaNode, defs: Record<string, JsonSchemaNode>): JsonSchemaNode => {
  let merged: JsonSchemaNode = { ...node }
  for (const part of node.allOf ?? []) merged = { ...flatten(part, defs), ...merged }
  if (node.$ref) {
    const def = defs[node.$ref.replace("#/$defs/", "")]
    if (def) merged = { ...flatten(def, defs), ...merged, $ref: undefined as unknown as string }
  }
  return merged
}

const typeOf = (node: JsonSchemaNode, defs: Record<string, JsonSchemaNode>): string => {
  if (node.enum) return node.enum.map((e) => JSON.stringify(e)).join(" | ")
  if (node.anyOf) return node.anyOf.map((n) => typeOf(flatten(n, defs), defs)).join(" | ")
  const range = node.minimum !== undefined || node.maximum !== undefined ? ` ${node.minimum ?? ""}..${node.maximum ?? ""}` : ""
  if (node.type === "array") return `array of ${node.items ? typeOf(flatten(node.items, defs), defs) : "any"}`
  if (Array.isArray(node.type)) return node.type.join(" | ")
  return `${node.type ?? "object"}${range}`
}
