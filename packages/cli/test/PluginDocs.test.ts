/**
 * Every option of every built-in plugin is documented in its config schema: a description and
 * examples, and a default when it is optional. That schema is the one source for validation,
 * `effetl plugins <name>` and the JSON Schema, so a gap here is a gap in all three.
 */
import { describe, expect, it } from "@effect/vitest"
import * as JSONSchema from "effect/JSONSchema"
import { loadedRegistry } from "../src/Builtins.js"

interface Node {
  description?: string
  examples?: ReadonlyArray<unknown>
  default?: unknown
  allOf?: ReadonlyArray<Node>
  $ref?: string
  properties?: Record<string, Node>
  required?: ReadonlyArray<string>
}

const flat = (n: Node): Node => ({ ...(n.allOf ?? []).reduce<Node>((a, b) => ({ ...flat(b), ...a }), {}), ...n })

const registry = await loadedRegistry()
const plugins = [...registry.sources, ...registry.transforms, ...registry.sinks]

describe("built-in plugin docs", () => {
  for (const plugin of plugins) {
    it(`${plugin.name}: every option has a description and examples, and a default when optional`, () => {
      const schema = JSONSchema.make(plugin.config) as Node
      const required = new Set(schema.required ?? [])
      const gaps: Array<string> = []
      for (const [key, raw] of Object.entries(schema.properties ?? {})) {
        const node = flat(raw)
        if (!node.description) gaps.push(`${key}: no description`)
        if (!node.examples || node.examples.length === 0) gaps.push(`${key}: no examples`)
        if (!required.has(key) && node.default === undefined && !/leave it out|when set|if set|only these|only the/i.test(node.description ?? "")) {
          gaps.push(`${key}: optional with no default and no word on what leaving it out means`)
        }
      }
      expect(gaps).toEqual([])
      expect(plugin.description.length).toBeGreaterThan(10)
    })

    it(`${plugin.name}: an object option's fields are described and their defaults agree with the option's`, () => {
      const schema = JSONSchema.make(plugin.config) as Node & { $defs?: Record<string, Node> }
      const resolve = (n: Node): Node => {
        const f = flat(n)
        const def = f.$ref ? schema.$defs?.[f.$ref.replace("#/$defs/", "")] : undefined
        return def ? { ...resolve(def), ...f } : f
      }
      const disagree: Array<string> = []
      for (const [key, raw] of Object.entries(schema.properties ?? {})) {
        const node = resolve(raw)
        if (node.properties === undefined || typeof node.default !== "object" || node.default === null) continue
        const whole = node.default as Record<string, unknown>
        for (const [field, child] of Object.entries(node.properties)) {
          if (!resolve(child).description) disagree.push(`${key}.${field}: no description`)
          const own = resolve(child).default
          // Leaving the option out and writing it with this field left out must mean the same value.
          if (JSON.stringify(own) !== JSON.stringify(whole[field])) {
            disagree.push(`${key}.${field}: default ${JSON.stringify(own)}, but ${key}'s default has ${JSON.stringify(whole[field])}`)
          }
        }
      }
      expect(disagree).toEqual([])
    })
  }
})
