/**
 * Helpers for plugin config schemas. Each field carries a description, a default and examples: the
 * one source for validation errors, the pipeline JSON Schema and `effetl plugins <name>` docs.
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

/** Field documentation. */
export interface FieldDoc<A> {
  readonly description: string
  readonly examples?: ReadonlyArray<NoInfer<A>>
}

/**
 * A field's documentation as annotations. A filter with no JSON Schema of its own (`Schema.filter`)
 * is left out of the JSON Schema with its annotations, so it gets an empty one: its description,
 * default and examples then reach the JSON Schema and `effetl plugins`.
 */
const documented = <A, I>(schema: Schema.Schema<A, I>, annotations: Schema.Annotations.Schema<A>) =>
  schema.annotations(
    SchemaAST.isRefinement(schema.ast) && Option.isNone(SchemaAST.getJSONSchemaAnnotation(schema.ast))
      ? { ...annotations, jsonSchema: {} }
      : annotations
  )

/** A required field. */
export const required = <A, I>(schema: Schema.Schema<A, I>, doc: FieldDoc<I>) =>
  documented(schema, {
    description: doc.description,
    ...(doc.examples ? { examples: doc.examples as any } : {})
  })

/** An optional field with a default, applied when the key is missing. */
export const withDefault = <A, I>(schema: Schema.Schema<A, I>, defaultValue: A, doc: FieldDoc<I>) =>
  Schema.optionalWith(
    documented(schema, {
      description: doc.description,
      default: defaultValue as any,
      ...(doc.examples ? { examples: doc.examples as any } : {})
    }),
    { default: () => defaultValue }
  )

/** An optional field with no default. */
export const optional = <A, I>(schema: Schema.Schema<A, I>, doc: FieldDoc<I>) =>
  Schema.optional(
    documented(schema, {
      description: doc.description,
      ...(doc.examples ? { examples: doc.examples as any } : {})
    })
  )

/** An integer in `[min, max]` with a readable error. */
export const intRange = (min: number, max: number) =>
  Schema.Int.pipe(
    Schema.greaterThanOrEqualTo(min),
    Schema.lessThanOrEqualTo(max),
    Schema.annotations({ message: () => ({ message: `expected an integer from ${min} to ${max}`, override: true }) })
  )

/** An integer of at least `min`. */
export const intAtLeast = (min: number) =>
  Schema.Int.pipe(
    Schema.greaterThanOrEqualTo(min),
    Schema.annotations({ message: () => ({ message: `expected an integer ≥ ${min}`, override: true }) })
  )

/** A secret: decoded from a string into a `Redacted`, so it never reaches logs, errors or output. */
export const Secret = Schema.Redacted(Schema.String).annotations({
  description: "A secret. Use ${ENV_VAR} interpolation rather than writing it in the file."
})

/**
 * A required secret field. Its description and examples sit on the encoded string too, so the
 * JSON Schema (which describes what is written in the file) shows them.
 */
export const secret = (doc: FieldDoc<string>) =>
  Schema.Redacted(
    Schema.String.annotations({ description: doc.description, ...(doc.examples ? { examples: doc.examples as [string, ...Array<string>] } : {}) })
  ).annotations({ description: doc.description })

/** A base URL: `scheme://host[:port]` with an http or https scheme, no trailing slash needed. */
export const BaseUrl = Schema.String.pipe(
  Schema.filter((s) => {
    try {
      const u = new URL(s)
      return u.protocol === "http:" || u.protocol === "https:" ? true : "expected an http:// or https:// URL"
    } catch {
      return `expected a URL like https://host[:port], got ${JSON.stringify(s)}`
    }
  }, { jsonSchema: { format: "uri", pattern: "^https?://" } })
)
