/**
 * `effetl plugins`: the list of built-ins, and one plugin's options generated from its config schema.
 */
import { Registry } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import type * as Schema from "effect/Schema"

type AnyPlugin = { readonly name: string; readonly description: string; readonly config: Schema.Schema<any, any> }

/** Every built-in plugin, grouped by kind. */
export const list = (registry: Registry.Registry): string => {
  const out: Array<string> = []
  for (const [title, plugins] of [["sources", registry.sources], ["transforms", registry.transforms], ["sinks", registry.sinks]] as const) {
    out.push(`${title}:`)
    const width = Math.max(...plugins.map((p) => p.name.length))
    for (const p of plugins) out.push(`  ${p.name.padEnd(width)}  ${p.description}`)
    out.push("")
  }
  out.push("Show a plugin's options with: effetl plugins <name>")
  return out.join("\n")
}

/** Finds a plugin of any kind by built-in name, package name or module path. */
export const find = (registry: Registry.Registry, name: string) =>
  Effect.gen(function*() {
    for (const kind of ["source", "transform", "sink"] as const) {
      const p = Registry.builtinsOf(registry, kind).find((x) => x.name === name)
      if (p) return { kind, plugin: p as AnyPlugin }
    }
    for (const kind of ["source", "transform", "sink"] as const) {
      const found = yield* Registry.resolve(registry, kind, name, process.cwd(), "plugin").pipe(Effect.option)
      if (found._tag === "Some") return { kind, plugin: found.value as AnyPlugin }
    }
    return yield* Registry.resolve(registry, "source", name, process.cwd(), "plugin")
      .pipe(Effect.map((plugin) => ({ kind: "source" as const, plugin: plugin as AnyPlugin })))
  })

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

/** A plugin's options as text: name, type, default, description, examples. */
export const describe = (kind: string, plugin: AnyPlugin): string => {
  const schema = JSONSchema.make(plugin.config) as JsonSchemaNode & { $defs?: Record<string, JsonSchemaNode> }
  const out = [`${plugin.name} (${kind})`, `  ${plugin.description}`, "", "options (under `with:`):"]
  const required = new Set(schema.required ?? [])
  for (const [key, node] of Object.entries(schema.properties ?? {})) {
    const flat = flatten(node, schema.$defs ?? {})
    const bits = [typeOf(flat, schema.$defs ?? {})]
    if (required.has(key)) bits.push("required")
    if (flat.default !== undefined) bits.push(`default ${JSON.stringify(flat.default)}`)
    out.push(`  ${key}  (${bits.join(", ")})`)
    if (flat.description) out.push(`      ${flat.description}`)
    if (flat.examples && flat.examples.length > 0) out.push(`      e.g. ${flat.examples.map((e) => JSON.stringify(e)).join(", ")}`)
  }
  if (Object.keys(schema.properties ?? {}).length === 0) out.push("  (none)")
  return out.join("\n")
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
