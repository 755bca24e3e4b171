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
  }
})
