/**
 * A digest of what a pipeline reads, does and writes (its sources, transforms and sinks with their
 * decoded configs), so a worker can refuse work planned from another version of the pipeline. Local
 * settings (state and dead-letter paths, commit interval) are left out: they may differ per machine.
 * Secrets enter only as their own digests.
 */
import type { Pipeline } from "@effetl/core"
import * as Redacted from "effect/Redacted"
import { createHash } from "node:crypto"

/** The fingerprint of a pipeline definition (hex SHA-256). */
export const of = (pipeline: Pipeline.Pipeline): string => {
  const shape = {
    name: pipeline.name,
    sources: pipeline.sources.map((s) => ({ name: s.name, use: s.plugin.name, config: s.config })),
    transforms: pipeline.transforms.map((t) => ({ key: t.key, config: t.config })),
    sinks: pipeline.sinks.map((s) => ({ name: s.name, use: s.plugin.name, config: s.config }))
  }
  return sha256(JSON.stringify(plain(shape)))
}

/** A JSON-able copy with secrets replaced by their digests (before any `toJSON` could hide them). */
const plain = (value: unknown): unknown => {
  if (Redacted.isRedacted(value)) return `secret:${sha256(String(Redacted.value(value)))}`
  if (Array.isArray(value)) return value.map(plain)
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  }
  return value
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex")
