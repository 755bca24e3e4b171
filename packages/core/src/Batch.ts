/**
 * The unit that flows through a pipeline: a batch of records with the source's resume position after it.
 */
import * as Chunk from "effect/Chunk"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import { formatPath } from "./http/ApiClient.js"
import type { ProductImage } from "./ProductImage.js"

/**
 * A source's resume position after a batch.
 * - `position`: resumes the current run only (a page, a product cursor). A new run starts a full scan again.
 * - `cursor`: an incremental cursor that carries over into the next run (e.g. a change-feed token).
 * `value` is any JSON value the source understands. `spill` is set by core's product grouping:
 * the number of durable spill segments that belong with this checkpoint (sources ignore it).
 */
export const Checkpoint = Schema.Struct({
  kind: Schema.Literal("position", "cursor"),
  value: Schema.Unknown,
  spill: Schema.optional(Schema.Int)
})
export type Checkpoint = typeof Checkpoint.Type

/** A checkpoint that resumes the current run only. */
export const position = (value: unknown): Checkpoint => ({ kind: "position", value })

/** A checkpoint that carries over into the next run. */
export const cursor = (value: unknown): Checkpoint => ({ kind: "cursor", value })

/**
 * A record (or raw payload) that could not be processed, with why. The dead-letter output adds the
 * source's checkpoint of the batch it came in.
 */
export interface DeadLetter {
  /** Pipeline name of the source the entry came from. */
  readonly source: string
  /** The step that rejected it: `source`, `validate`, `hash-content`, ... */
  readonly stage: string
  /** A readable reason. */
  readonly error: string
  /** The record, when one was built. */
  readonly record?: ProductImage
  /** The raw vendor payload, when no record could be built. */
  readonly payload?: unknown
}

/** A batch: records, rejected entries, and the checkpoint after it. */
export interface Batch {
  readonly records: Chunk.Chunk<ProductImage>
  readonly rejected: Chunk.Chunk<DeadLetter>
  readonly checkpoint: Option.Option<Checkpoint>
}

/** Builds a batch. */
export const make = (
  records: Iterable<ProductImage>,
  checkpoint: Option.Option<Checkpoint> = Option.none(),
  rejected: Iterable<DeadLetter> = []
): Batch => ({
  records: Chunk.fromIterable(records),
  rejected: Chunk.fromIterable(rejected),
  checkpoint
})

/** A batch with no records that only moves the checkpoint. */
export const checkpointOnly = (checkpoint: Checkpoint): Batch => make([], Option.some(checkpoint))

/** Why a vendor item was rejected, with the raw item: what a source turns into a dead letter. */
export interface Rejection {
  readonly error: string
  readonly payload: unknown
}

/** The issues of a schema mismatch as `path: message; ...` (`(item)` for the item itself). */
export const describeIssues = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((i) => `${formatPath(i.path) || "(item)"}: ${i.message}`)
    .join("; ")

/**
 * A decoder of one vendor item with its wire schema: a mismatch is a {@link Rejection}
 * (`unexpected <what> shape: path: message; ...`, with the raw item), so one bad item becomes a
 * dead letter rather than a failed page.
 */
export const decodeItem = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "all" })
  const fast = compiled(schema.ast, true)
  return (item: unknown): Either.Either<A, Rejection> => {
    if (fast !== undefined) {
      const out = fast(item)
      if (out !== miss) return Either.right(out as A)
    }
    return Either.mapLeft(decode(item), (error) => ({ error: `unexpected ${what} shape: ${describeIssues(error)}`, payload: item }))
  }
}

// --- the plain decoder -------------------------------------------------------------------------
//
// A source decodes every item it reads, so the decode runs once per record. For the shapes wire
// schemas are made of (structs of strings, numbers, booleans, literals, null, optional fields,
// arrays and refinements such as `Schema.Int`), decoding changes nothing but copy the item without
// a struct's undeclared keys,
// and that can be done without Schema's parser: `plainDecoder` compiles such an AST once into a
// function that returns exactly what `Schema.decodeUnknownEither` returns for an item it accepts
// (the same values, the same keys in the same order), and `miss` otherwise. Any item it misses, and
// every schema with another shape (transformations, declarations such as dates, index signatures
// other than a lone `Record` of unknown values, unions of structs, parse-option annotations), goes
// through Schema itself, which then decides and says why.

/** What a plain decoder returns for an item it does not accept. */
const miss: unique symbol = Symbol("miss")
type Plain = (u: unknown) => unknown

const filterOptions: AST.ParseOptions = { errors: "all" }

/**
 * The plain decoder of a schema (what {@link decodeItem} tries first): `Some` of exactly what Schema's
 * decode gives for a value it accepts, `None` for a value it leaves to Schema; undefined for a schema
 * whose decode may do more than check and copy.
 */
export const plainDecoder = <A, I>(schema: Schema.Schema<A, I>): ((u: unknown) => Option.Option<A>) | undefined =>
  plainDecoderWith(schema, true)

/**
 * {@link plainDecoder}, with `generated: false` as it is where code cannot be generated (closures
 * only), for the tests that hold both to Schema's results.
 *
 * @internal
 */
export const plainDecoderWith = <A, I>(schema: Schema.Schema<A, I>, generated: boolean): ((u: unknown) => Option.Option<A>) | undefined => {
  const plain = compiled(schema.ast, generated)
  if (plain === undefined) return undefined
  return (u) => {
    const out = plain(u)
    return out === miss ? Option.none() : Option.some(out as A)
  }
}

/** Each AST is compiled once (a client decodes every page of a list with the same schema). */
const caches = { true: new WeakMap<AST.AST, Plain | null>(), false: new WeakMap<AST.AST, Plain | null>() }
const compiled = (ast: AST.AST, generated: boolean): Plain | undefined => {
  const cache = caches[`${generated}`]
  let plain = cache.get(ast)
  if (plain === undefined) cache.set(ast, plain = compile(ast, generated) ?? null)
  return plain ?? undefined
}

const compile = (ast: AST.AST, generated: boolean): Plain | undefined => {
  if (Option.isSome(AST.getParseOptionsAnnotation(ast))) return undefined
  switch (ast._tag) {
    case "StringKeyword":
      return (u) => (typeof u === "string" ? u : miss)
    case "NumberKeyword":
      return (u) => (typeof u === "number" ? u : miss)
    case "BooleanKeyword":
      return (u) => (typeof u === "boolean" ? u : miss)
    case "UndefinedKeyword":
      return (u) => (u === undefined ? u : miss)
    case "UnknownKeyword":
    case "AnyKeyword":
      return (u) => u
    case "Literal": {
      const literal = ast.literal
      return (u) => (u === literal ? u : miss)
    }
    case "Refinement": {
      const from = compile(ast.from, generated)
      if (from === undefined) return undefined
      return (u) => {
        const a = from(u)
        return a === miss || Option.isSome(ast.filter(a, filterOptions, ast)) ? miss : a
      }
    }
    case "Union": {
      // Members whose decode is the value itself (keywords, literals), and at most one struct or
      // array, which only accepts objects, which those never do: whichever member accepts an item
      // is the one Schema picks, and gives the same output.
      const itself: Array<Plain> = []
      let shaped: Plain | undefined
      let anything = false
      for (const member of flatten(ast.types)) {
        const m = compile(member, generated)
        if (m === undefined) return undefined
        if (returnsItself(member)) {
          itself.push(m)
          anything ||= member._tag === "UnknownKeyword" || member._tag === "AnyKeyword"
        } else if (shaped === undefined && acceptsOnlyObjects(member)) shaped = m
        else return undefined
      }
      if (anything) return shaped === undefined ? (u) => u : undefined
      const accepts = generated ? predicate(ast) : undefined
      if (accepts !== undefined) return (u) => (accepts(u) ? u : miss)
      return (u) => {
        if (shaped !== undefined && typeof u === "object" && u !== null) return shaped(u)
        for (let i = 0; i < itself.length; i++) if (itself[i]!(u) !== miss) return u
        return miss
      }
    }
    case "TupleType": {
      // Arrays (`Schema.Array(x)`): a copy with each element decoded.
      if (ast.elements.length > 0 || ast.rest.length !== 1) return undefined
      const rest = ast.rest[0]!.type
      const element = compile(rest, generated)
      if (element === undefined) return undefined
      // Elements of any value (a page of raw items, decoded one by one later): a copy.
      if (rest._tag === "UnknownKeyword" || rest._tag === "AnyKeyword") return (u) => (Array.isArray(u) ? u.slice() : miss)
      return (u) => {
        if (!Array.isArray(u)) return miss
        const out: Array<unknown> = new Array(u.length)
        for (let i = 0; i < u.length; i++) {
          const v = element(u[i])
          if (v === miss) return miss
          out[i] = v
        }
        return out
      }
    }
    case "TypeLiteral": {
      if (ast.indexSignatures.length > 0) {
        // `Schema.Record({ key: Schema.String, value: Schema.Unknown })` alone (a record's `extra`): a copy.
        const sig = ast.indexSignatures[0]!
        const anyValue = sig.type._tag === "UnknownKeyword" || sig.type._tag === "AnyKeyword"
        if (ast.propertySignatures.length > 0 || ast.indexSignatures.length > 1 || sig.parameter._tag !== "StringKeyword" || !anyValue) {
          return undefined
        }
        return (u) => (typeof u === "object" && u !== null && !Array.isArray(u) ? { ...(u as Record<string, unknown>) } : miss)
      }
      if (ast.propertySignatures.length === 0) return (u) => (u === null || u === undefined ? miss : u)
      const fields: Array<readonly [string, boolean, Plain]> = []
      for (const ps of ast.propertySignatures) {
        const type = compile(ps.type, generated)
        if (typeof ps.name !== "string" || type === undefined) return undefined
        fields.push([ps.name, ps.isOptional, type])
      }
      const struct = generated ? structOf(ast.propertySignatures, fields) : undefined
      if (struct !== undefined) return struct
      return (u) => {
        if (typeof u !== "object" || u === null || Array.isArray(u)) return miss
        const item = u as Record<string, unknown>
        const out: Record<string, unknown> = {}
        for (const [name, optional, type] of fields) {
          if (optional && !Object.prototype.hasOwnProperty.call(item, name)) continue
          const v = type(item[name])
          if (v === miss) return miss
          out[name] = v
        }
        return out
      }
    }
    default:
      return undefined
  }
}

/** The members of a union with nested unions (`optional(NullOr(x))`) spread out: the same values pass. */
const flatten = (types: ReadonlyArray<AST.AST>): Array<AST.AST> =>
  types.flatMap((t) => (t._tag === "Union" && Option.isNone(AST.getParseOptionsAnnotation(t)) ? flatten(t.types) : [t]))

// --- generated checks ----------------------------------------------------------------------------
//
// The closures above call one closure per field and per union member: call sites that see every
// kind of check, which V8 cannot inline (about 2 µs per 13-field wire item). For the common parts,
// a field or union whose decode returns the value itself, the check is generated as one function
// (`new Function`) with each test inline, which is several times faster. The code is built from the
// AST's kinds, field names as JSON string literals (JSON's escaping is JavaScript's); literals,
// filters and closures are passed in as values (`r[i]`). Where code cannot be generated
// (`--disallow-code-generation-from-strings`), the closures decide, with the same results.

/** Adds `value` to the values generated code refers to; the expression that reads it. */
const ref = (refs: Array<unknown>, value: unknown): string => `r[${refs.push(value) - 1}]`

/** A JS expression over `v` that is true when a value-returning AST accepts `v`; `refs` collects what it refers to. */
const checkSource = (ast: AST.AST, refs: Array<unknown>): string | undefined => {
  if (Option.isSome(AST.getParseOptionsAnnotation(ast))) return undefined
  switch (ast._tag) {
    case "StringKeyword":
      return `typeof v === "string"`
    case "NumberKeyword":
      return `typeof v === "number"`
    case "BooleanKeyword":
      return `typeof v === "boolean"`
    case "UndefinedKeyword":
      return `v === undefined`
    case "UnknownKeyword":
    case "AnyKeyword":
      return "true"
    case "Literal":
      return `v === ${ref(refs, ast.literal)}`
    case "Refinement": {
      const from = checkSource(ast.from, refs)
      if (from === undefined) return undefined
      return `(${from}) && !isSome(${ref(refs, ast.filter)}(v, o, ${ref(refs, ast)}))`
    }
    case "Union": {
      const members: Array<string> = []
      for (const member of flatten(ast.types)) {
        const m = checkSource(member, refs)
        if (m === undefined) return undefined
        members.push(`(${m})`)
      }
      return members.length === 0 ? "false" : members.join(" || ")
    }
    default:
      return undefined
  }
}

/** A function from generated source, or undefined where code generation is not allowed. */
const generate = <F>(body: string, refs: Array<unknown>): F | undefined => {
  try {
    return new Function("r", "o", "isSome", "miss", "hasOwn", body)(refs, filterOptions, Option.isSome, miss, Object.prototype.hasOwnProperty) as F
  } catch (e) {
    // Node's --disallow-code-generation-from-strings (anything else is a bug here, and says so).
    if (e instanceof EvalError) return undefined
    throw e
  }
}

/** The check of a value-returning AST as one generated predicate. */
const predicate = (ast: AST.AST): ((u: unknown) => boolean) | undefined => {
  if (!returnsItself(ast)) return undefined
  const refs: Array<unknown> = []
  const source = checkSource(ast, refs)
  return source === undefined ? undefined : generate(`return (v) => ${source}`, refs)
}

/**
 * A struct's decode as one generated function: each field whose decode returns its value checked
 * inline, any other field through its compiled closure (`fields`, in the same order).
 */
const structOf = (
  signatures: ReadonlyArray<AST.PropertySignature>,
  fields: ReadonlyArray<readonly [string, boolean, Plain]>
): Plain | undefined => {
  const refs: Array<unknown> = []
  const lines = [
    `return (u) => {`,
    `if (typeof u !== "object" || u === null || Array.isArray(u)) return miss`,
    `const out = {}`,
    `let v`
  ]
  for (let i = 0; i < fields.length; i++) {
    const [name, optional, plain] = fields[i]!
    // A constant key, which V8 looks up fastest.
    const key = JSON.stringify(name)
    const check = returnsItself(signatures[i]!.type) ? checkSource(signatures[i]!.type, refs) : undefined
    const body = check === undefined
      ? `v = ${ref(refs, plain)}(u[${key}]); if (v === miss) return miss; out[${key}] = v`
      : `v = u[${key}]; if (!(${check})) return miss; out[${key}] = v`
    lines.push(optional ? `if (hasOwn.call(u, ${key})) { ${body} }` : body)
  }
  lines.push(`return out`, `}`)
  return generate<Plain>(lines.join("\n"), refs)
}

/** Whether a (plainly decodable) AST accepts objects only: a struct with fields, or an array. */
const acceptsOnlyObjects = (ast: AST.AST): boolean =>
  (ast._tag === "TypeLiteral" && ast.propertySignatures.length > 0) || ast._tag === "TupleType"

/** Whether an AST's decode returns its input itself (keywords, literals, their unions and refinements). */
const returnsItself = (ast: AST.AST): boolean => {
  switch (ast._tag) {
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
    case "UndefinedKeyword":
    case "UnknownKeyword":
    case "AnyKeyword":
    case "Literal":
      return true
    case "Refinement":
      return returnsItself(ast.from)
    case "Union":
      return ast.types.every(returnsItself)
    default:
      return false
  }
}
