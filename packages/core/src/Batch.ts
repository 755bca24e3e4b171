/**
 * The unit that flows through a pipeline: a batch of records with the source's resume position after it.
 */
import * as Chunk from "effect/Chunk"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
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
  return (item: unknown): Either.Either<A, Rejection> =>
    Either.mapLeft(decode(item), (error) => ({ error: `unexpected ${what} shape: ${describeIssues(error)}`, payload: item }))
}
