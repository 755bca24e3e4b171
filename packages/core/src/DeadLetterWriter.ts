/**
 * The dead-letter output: a JSONL file of the entries that could not be processed, one line each:
 * `{"source","stage","error","record"?,"payload"?,"checkpoint","at"}`. It follows the sink commit
 * protocol (write / commit → token / finish / cleanup) on staged parts in overwrite mode, so the
 * runner drives it like a sink: nothing is lost or written twice across a kill and resume.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { Checkpoint, DeadLetter } from "./Batch.js"
import type { SinkError } from "./Errors.js"
import { type ProductImage, toJson } from "./ProductImage.js"
import * as StagedParts from "./StagedParts.js"

/** What the dead-letter writer needs. */
export interface Options {
  /** The JSONL file to publish at the end of the run. */
  readonly path: string
  /** The run id (parts are named after it). */
  readonly runId: string
  /** The token of its last commit saved in state (resume), or none. */
  readonly committed: Option.Option<unknown>
  /** The name used in error messages (default `dead-letter`). */
  readonly name?: string
}

/** A dead-letter writer. */
export interface DeadLetterWriter {
  /** Appends entries, each with the checkpoint of the batch they came in. */
  readonly write: (entries: Chunk.Chunk<DeadLetter>, checkpoint: Option.Option<Checkpoint>) => Effect.Effect<void, SinkError>
  /** Makes everything written so far durable; returns the token to save in state. */
  readonly commit: Effect.Effect<unknown, SinkError>
  /** Publishes the run's dead letters at `path`, atomically. Idempotent. */
  readonly finish: Effect.Effect<void, SinkError>
  /** Removes the staging. */
  readonly cleanup: Effect.Effect<void, SinkError>
}

/** Makes a dead-letter writer for one run. */
export const make = (options: Options): Effect.Effect<DeadLetterWriter, SinkError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const parts = yield* StagedParts.make({
      name: options.name ?? "dead-letter",
      path: options.path,
      mode: "overwrite",
      runId: options.runId,
      ext: "jsonl",
      committed: options.committed
    })
    return {
      write: (entries, checkpoint) =>
        Chunk.isEmpty(entries)
          ? Effect.void
          : Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const at = new Date(now)
            let text = ""
            for (const entry of entries) text += line(entry, checkpoint, at) + "\n"
            return parts.write(text)
          }),
      commit: parts.commit,
      finish: parts.finish,
      cleanup: parts.cleanup
    }
  })

/** One dead-letter line (without the newline). Never throws: every value is made JSON-safe. */
export const line = (entry: DeadLetter, checkpoint: Option.Option<Checkpoint>, at: Date): string => {
  const out: Record<string, unknown> = {
    source: entry.source,
    stage: entry.stage,
    error: entry.error
  }
  if (entry.record !== undefined) out.record = recordJson(entry.record)
  if (entry.payload !== undefined) out.payload = entry.payload
  out.checkpoint = Option.getOrNull(checkpoint)
  out.at = at.toISOString()
  return safeJson(out)
}

/**
 * A JSON-safe copy of any value: bigints become strings, bytes base64, dates ISO strings (null when
 * invalid), maps and sets arrays, errors `{ name, message }`, circular references `"[Circular]"`;
 * functions and symbols are dropped.
 */
export const jsonSafe = (value: unknown): unknown => safe(value, new Set())

/**
 * `JSON.stringify(jsonSafe(value))`, without the copy when `value` holds only what `JSON.stringify`
 * writes as it is (strings, booleans, finite numbers, null, plain objects and arrays, not too deep),
 * as records and vendor fields almost always do. The JSON Lines sink, Parquet's `extra` column and
 * the cluster's staging write every record with it.
 */
export const safeJson = (value: unknown): string => {
  let plain = false
  try {
    plain = plainJson(value, 0)
  } catch {
    // a throwing getter: jsonSafe writes it as "[Unserializable]"
  }
  return JSON.stringify(plain ? value : jsonSafe(value))
}

/** Whether `JSON.stringify` writes `value` exactly as `jsonSafe` would copy it. */
const plainJson = (value: unknown, depth: number): boolean => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(value)
    case "undefined":
      return depth > 0 // a property or array item (dropped or null in both), not the value itself
    case "object": {
      if (value === null) return true
      if (depth >= 8) return false // deep (or circular): jsonSafe decides
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!plainJson(value[i], depth + 1)) return false
        return true
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return false
      if ("toJSON" in value) return false
      for (const k in value) if (!plainJson((value as Record<string, unknown>)[k], depth + 1)) return false
      return true
    }
    default:
      return false
  }
}

// ---------------------------------------------------------------------------------------------

/** The record's JSON form without bytes; a record too malformed for `toJson` is copied field by field. */
const recordJson = (record: ProductImage): unknown => {
  try {
    return toJson(record)
  } catch {
    const { bytes: _bytes, ...fields } = record as unknown as Record<string, unknown>
    return fields
  }
}

const safe = (value: unknown, ancestors: Set<object>): unknown => {
  switch (typeof value) {
    case "bigint":
      return value.toString()
    case "number":
      return Number.isFinite(value) ? value : null
    case "function":
    case "symbol":
    case "undefined":
      return undefined
    case "object": {
      if (value === null) return null
      if (ancestors.has(value)) return "[Circular]"
      if (value instanceof Uint8Array) return Buffer.from(value).toString("base64")
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString()
      if (value instanceof Error) return { name: value.name, message: value.message }
      ancestors.add(value)
      try {
        if (Array.isArray(value)) return value.map((v) => safe(v, ancestors) ?? null)
        if (value instanceof Map) return [...value].map(([k, v]) => [safe(k, ancestors) ?? null, safe(v, ancestors) ?? null])
        if (value instanceof Set) return [...value].map((v) => safe(v, ancestors) ?? null)
        const toJSON = (value as { toJSON?: unknown }).toJSON
        if (typeof toJSON === "function") {
          try {
            return safe(toJSON.call(value), ancestors)
          } catch {
            return "[Unserializable]"
          }
        }
        const out: Record<string, unknown> = {}
        try {
          for (const [k, v] of Object.entries(value)) {
            const s = safe(v, ancestors)
            if (s !== undefined) out[k] = s
          }
        } catch {
          return "[Unserializable]"
        }
        return out
      } finally {
        ancestors.delete(value)
      }
    }
    default:
      return value
  }
}
