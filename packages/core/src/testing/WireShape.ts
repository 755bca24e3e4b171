/**
 * WireShape: an Effect Schema inferred from a vendor's example payload, to check that a simulator
 * answers in the example's shape: the same keys at every level (no more, no fewer) and the same JSON
 * types (an integer where the example has one, of any size). A field the vendor documents as nullable
 * may also be null (`nullable`); a field that may be left out is `optional` (an XML element that can
 * be absent); a field the simulator adds as a documented assumption is named with its schema
 * (`extra`). Paths are written `results[].hash`.
 *
 * A source package's contract tests use it: `mismatches(infer(example), simulatorAnswer)` lists
 * where its simulator departs from the vendor's published example (none: the same shape).
 */
import { formatPath } from "../http/ApiClient.js"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** What an answer may have beyond the example's own shape. */
export interface Allowances {
  /** Paths of fields that may also be null. */
  readonly nullable?: ReadonlyArray<string>
  /** Paths of fields that may be absent. */
  readonly optional?: ReadonlyArray<string>
  /** Fields the example lacks, by path, with their schema. */
  readonly extra?: Readonly<Record<string, Schema.Schema.AnyNoContext>>
}

/** The schema of the example's shape. */
export const infer = (example: unknown, allowances: Allowances = {}, path = ""): Schema.Schema.AnyNoContext => {
  const nullable = new Set(allowances.nullable ?? [])
  const optional = new Set(allowances.optional ?? [])
  const go = (value: unknown, at: string): Schema.Schema.AnyNoContext => {
    const schema = ((): Schema.Schema.AnyNoContext => {
      if (value === null) return Schema.Null
      if (typeof value === "boolean") return Schema.Boolean
      if (typeof value === "number") return Number.isInteger(value) ? JsonInteger : Schema.Number
      if (typeof value === "string") return Schema.String
      if (Array.isArray(value)) return Schema.Array(value.length === 0 ? Schema.Unknown : go(value[0], `${at}[]`))
      const fields: Record<string, Schema.Schema.AnyNoContext | Schema.optional<Schema.Schema.AnyNoContext>> = {}
      for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
        const childPath = at === "" ? key : `${at}.${key}`
        fields[key] = optional.has(childPath) ? Schema.optional(go(child, childPath)) : go(child, childPath)
      }
      for (const [extraPath, extra] of Object.entries(allowances.extra ?? {})) {
        const cut = extraPath.lastIndexOf(".")
        if ((cut < 0 ? "" : extraPath.slice(0, cut)) === at) fields[extraPath.slice(cut + 1)] = extra
      }
      return Schema.Struct(fields)
    })()
    return nullable.has(at) && value !== null ? Schema.NullOr(schema) : schema
  }
  return go(example, path)
}

/** A JSON integer of any size (an id beyond 2^53 parses to an integral, if rounded, number). */
const JsonInteger = Schema.Number.pipe(Schema.filter((n) => Number.isInteger(n) || "expected an integer"))

/** Where `value` departs from `schema` (`path: message`), or none. Extra keys count. */
export const mismatches = (schema: Schema.Schema.AnyNoContext, value: unknown): Array<string> =>
  Either.match(Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(value), {
    onRight: () => [],
    onLeft: (error) =>
      ParseResult.ArrayFormatter.formatErrorSync(error).map((i) => `${formatPath(i.path) || "(root)"}: ${i.message}`)
  })
