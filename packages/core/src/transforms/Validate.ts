/**
 * The `validate` transform: records that break the `ProductImage` schema go to the dead-letter
 * output with a reason that names the field, and the run goes on.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Batch, DeadLetter } from "../Batch.js"
import { ProductImage } from "../ProductImage.js"
import * as Transform from "../Transform.js"

/** The config of `validate`: it has no fields. */
export const ValidateConfig = Schema.Struct({}).annotations({
  title: "validate",
  description: "No options."
})
export type ValidateConfig = typeof ValidateConfig.Type

/** The stage name written on dead letters. */
export const stage = "validate"

// `Schema.validate(ProductImage)` accepts any instance of the class without looking at its fields
// (sources build records unchecked), so records are checked against the fields themselves.
const checkFields = Schema.validateEither(Schema.Struct(ProductImage.fields))

/** Checks a record against the `ProductImage` schema: right when valid, a readable reason (left) otherwise. */
export const check = (record: ProductImage): Either.Either<void, string> =>
  plainlyValid(record) ? valid : Either.mapBoth(checkFields(record, { errors: "all" }), {
    onLeft: describe,
    onRight: () => undefined
  })

const valid: Either.Either<void, string> = Either.right(undefined)

const hashPattern = /^[a-z0-9-]+:.+$/

const id = (v: unknown): boolean => typeof v === "string" && v.length >= 1
const textOrNull = (v: unknown): boolean => v === null || typeof v === "string"
const sizeOrNull = (v: unknown): boolean => v === null || (Number.isSafeInteger(v) && (v as number) >= 0)
const dateOrNull = (v: unknown): boolean => v === null || (v instanceof Date && !Number.isNaN(v.getTime()))

/**
 * The schema's checks written out, for the records that pass them all (nearly every one): no parse
 * per record. True only when the schema would accept the record too; anything else (false) goes
 * through the schema itself, which decides and words the reason.
 */
export const plainlyValid = (r: ProductImage): boolean =>
  id(r.source) && id(r.productId) && id(r.imageId) &&
  Number.isSafeInteger(r.position) &&
  textOrNull(r.url) && textOrNull(r.filename) && textOrNull(r.alt) &&
  sizeOrNull(r.width) && sizeOrNull(r.height) &&
  (r.contentHash === null || (typeof r.contentHash === "string" && hashPattern.test(r.contentHash))) &&
  dateOrNull(r.createdAt) && dateOrNull(r.updatedAt) &&
  (r.bytes === undefined || r.bytes instanceof Uint8Array) &&
  typeof r.extra === "object" && r.extra !== null && !Array.isArray(r.extra)

/** Moves records that fail the `ProductImage` schema to the dead-letter output (the runner counts dead letters as `invalid`). */
export const validate = Transform.define<ValidateConfig>({
  name: "validate",
  description:
    "Checks every record against the ProductImage schema. A record that fails goes to the dead-letter output " +
    "with a reason naming the field (e.g. `position: expected an integer, got 1.5`) and is counted as invalid; " +
    "the run goes on.",
  config: ValidateConfig,
  productScoped: false,
  make: () =>
    Effect.succeed({
      apply: (batch: Batch) =>
        Effect.suspend(() => {
          const kept: Array<ProductImage> = []
          const rejected: Array<DeadLetter> = []
          for (const record of batch.records) {
            const result = check(record)
            if (Either.isRight(result)) {
              kept.push(record)
            } else {
              rejected.push({ source: record.source, stage, error: result.left, record })
            }
          }
          if (rejected.length === 0) return Effect.succeed(batch)
          return Effect.succeed({
            records: Chunk.fromIterable(kept),
            rejected: Chunk.appendAll(batch.rejected, Chunk.fromIterable(rejected)),
            checkpoint: batch.checkpoint
          })
        })
    })
})

/**
 * Turns a parse error into one part per field, `; `-separated: `position: expected an integer, got 1.5`. For a
 * nullable field the union's "expected null" alternative is left out, as it says nothing useful.
 */
const describe = (error: ParseResult.ParseError): string => {
  const byPath = new Map<string, Array<string>>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const path = issue.path.length === 0 ? "record" : issue.path.map(String).join(".")
    const list = byPath.get(path) ?? []
    list.push(issue.message)
    byPath.set(path, list)
  }
  const parts: Array<string> = []
  for (const [path, messages] of byPath) {
    const useful = messages.filter((m) => !m.startsWith("Expected null,"))
    const chosen = useful.length > 0 ? useful : messages
    const text = [...new Set(chosen.map(reword))].join(" / ")
    parts.push(`${path}: ${text}`)
  }
  return parts.join("; ")
}

/** `Expected an integer, actual 1.5` → `expected an integer, got 1.5`. */
const reword = (message: string): string =>
  message.replace(/^Expected /, "expected ").replace(/, actual /, ", got ")
