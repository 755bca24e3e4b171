/**
 * ProductFanout: the "enumerate products, then ask for each product's images" shape of APIs that
 * have no store-wide image list (Shoplazza, BigCommerce V2, Acceo by product id).
 *
 * - {@link stream}: pages of product ids in, one product-complete batch per product out, fetched
 *   `concurrency` at a time across page boundaries and emitted in order. Each batch's checkpoint is
 *   a {@link Position}: the page being worked on, how many of its products are finished and the
 *   last finished id, so a killed run resumes at the first unfinished product without redoing the
 *   finished ones (and without skipping one when the page shifted because a product was deleted).
 * - {@link listPages}: an explicit id list (`productIds`) as pages, keyed by offset.
 * - {@link idsFields} / {@link loadIds}: the `productIds` / `productIdsFile` config fields every such
 *   source offers, and reading them (one id per line; blank lines and `#` comments skipped).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Batch from "../Batch.js"
import * as Config from "../Config.js"
import { ConfigError } from "../Errors.js"
import type { ProductImage } from "../ProductImage.js"

// ---------------------------------------------------------------------------------------------
// The fan-out
// ---------------------------------------------------------------------------------------------

/** One page of an enumeration: the key that fetches it, the key of the next page, its product ids in order. */
export interface ProductPage<K> {
  readonly key: K
  readonly next: Option.Option<K>
  readonly ids: ReadonlyArray<string>
}

/** Where a fan-out is: `done` products of page `page` are finished, the last of them `lastId`. */
export interface Position<K> {
  readonly page: K
  readonly done: number
  readonly lastId?: string
}

/** What fetching one product gave: its records, and entries for the dead-letter output. */
export interface ProductResult {
  readonly records: Iterable<ProductImage>
  readonly rejected?: Iterable<Batch.DeadLetter>
}

/** Options of {@link stream}. */
export interface Options<K, E, R, E2, R2> {
  /** Where to resume (from the saved checkpoint), or none to start at the first page. */
  readonly resume: Option.Option<Position<K>>
  /** The pages of product ids, starting at the page `from` (none: the first page). */
  readonly pages: (from: Option.Option<K>) => Stream.Stream<ProductPage<K>, E, R>
  /** Fetches one product's images. */
  readonly fetch: (productId: string) => Effect.Effect<ProductResult, E2, R2>
  /** How many products are fetched at the same time (results stay in order). */
  readonly concurrency: number
  /** Makes the batch checkpoint from a position. Default: `Batch.position(position)`. */
  readonly checkpoint?: (position: Position<K>) => Batch.Checkpoint
}

/**
 * One product-complete batch per product, in enumeration order, each with the checkpoint after it.
 * A page with no products (or none left after a resume) yields a checkpoint-only batch.
 */
export const stream = <K, E, R, E2, R2>(options: Options<K, E, R, E2, R2>): Stream.Stream<Batch.Batch, E | E2, R | R2> => {
  const checkpoint = options.checkpoint ?? ((p: Position<K>) => Batch.position(p))
  type Item =
    | { readonly _tag: "product"; readonly id: string; readonly after: Position<K> }
    | { readonly _tag: "empty"; readonly after: Position<K> }
  const items = (page: ProductPage<K>, first: boolean): Array<Item> => {
    const skip = first ? resumeSkip(options.resume, page) : 0
    const atEnd = (i: number): Position<K> =>
      i === page.ids.length && Option.isSome(page.next)
        ? { page: page.next.value, done: 0 }
        : { page: page.key, done: i, ...(i > 0 ? { lastId: page.ids[i - 1]! } : {}) }
    if (skip >= page.ids.length) return [{ _tag: "empty", after: atEnd(page.ids.length) }]
    const out: Array<Item> = []
    for (let i = skip; i < page.ids.length; i++) out.push({ _tag: "product", id: page.ids[i]!, after: atEnd(i + 1) })
    return out
  }
  return options.pages(Option.map(options.resume, (p) => p.page)).pipe(
    Stream.zipWithIndex,
    Stream.mapConcat(([page, index]) => items(page, index === 0)),
    Stream.mapEffect(
      (item): Effect.Effect<Batch.Batch, E2, R2> =>
        item._tag === "empty"
          ? Effect.succeed(Batch.checkpointOnly(checkpoint(item.after)))
          : Effect.map(options.fetch(item.id), (result) =>
            Batch.make(result.records, Option.some(checkpoint(item.after)), result.rejected ?? [])),
      { concurrency: Math.max(1, Math.floor(options.concurrency)) }
    )
  )
}

/** How many products of the resumed page are already finished: up to `lastId` when it is still there, else `done`. */
const resumeSkip = <K>(resume: Option.Option<Position<K>>, page: ProductPage<K>): number => {
  if (Option.isNone(resume) || !Equal.equals(resume.value.page, page.key)) return 0
  const { done, lastId } = resume.value
  if (lastId !== undefined) {
    const at = page.ids.indexOf(lastId)
    if (at >= 0) return at + 1
  }
  return Math.min(Math.max(0, done), page.ids.length)
}

/** An explicit list of product ids as pages of `size`, keyed by the offset of their first id. */
export const listPages = (ids: ReadonlyArray<string>, size = 100) =>
(from: Option.Option<number>): Stream.Stream<ProductPage<number>> => {
  const step = Math.max(1, Math.floor(size))
  const start = Math.max(0, Option.getOrElse(from, () => 0))
  const offsets: Array<number> = []
  for (let at = start; at < ids.length; at += step) offsets.push(at)
  return Stream.fromIterable(offsets).pipe(
    Stream.map((at) => ({
      key: at,
      next: at + step < ids.length ? Option.some(at + step) : Option.none(),
      ids: ids.slice(at, at + step)
    }))
  )
}

/** The JSON shape of a {@link Position}, for sources that decode their saved checkpoint. */
export const PositionSchema = <K, I>(key: Schema.Schema<K, I>) =>
  Schema.Struct({ page: key, done: Schema.Int.pipe(Schema.nonNegative()), lastId: Schema.optional(Schema.String) })

// ---------------------------------------------------------------------------------------------
// productIds / productIdsFile
// ---------------------------------------------------------------------------------------------

/** The config fields that limit a run to some products: a list, or a file with one id per line. */
export const idsFields = (doc: { readonly idDescription: string; readonly examples: ReadonlyArray<string> }) => ({
  productIds: Config.optional(
    Schema.Array(Schema.Union(Schema.String, Schema.Number)).pipe(
      Schema.minItems(1, { message: () => "expected at least one product id (leave the option out for every product)" })
    ),
    {
      description: `Only these products (${doc.idDescription}). Leave it out (and productIdsFile) to read every product.`,
      examples: [doc.examples]
    }
  ),
  productIdsFile: Config.optional(Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" })), {
    description:
      "A file of product ids, one per line (blank lines and lines starting with # are skipped), relative to the working " +
      "directory. Leave it out (and productIds) to read every product.",
    examples: ["product-ids.txt"]
  })
})

/** Options of {@link loadIds}. */
export interface LoadOptions {
  /** The source name, for messages. */
  readonly source: string
  /** Checks one id; returns a reason when it is not valid for the API (e.g. "expected a UUID"). */
  readonly validate?: (id: string) => string | undefined
}

/**
 * The product ids a run is limited to: none when neither field is set. Both set, an empty file, a
 * missing file or an invalid id is a `ConfigError` naming the field (and the file's line). Ids are
 * trimmed; a repeated id is read once.
 */
export const loadIds = (
  config: { readonly productIds?: ReadonlyArray<string | number> | undefined; readonly productIdsFile?: string | undefined },
  options: LoadOptions
): Effect.Effect<Option.Option<ReadonlyArray<string>>, ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const { source } = options
    if (config.productIds !== undefined && config.productIdsFile !== undefined) {
      return yield* new ConfigError({
        message: `source '${source}': give productIds or productIdsFile, not both`,
        path: `sources.${source}.with.productIdsFile`
      })
    }
    const check = (id: string, where: string, path: string) => {
      if (id === "") return new ConfigError({ message: `source '${source}': ${where}: an empty product id`, path })
      const why = options.validate?.(id)
      return why === undefined ? undefined : new ConfigError({ message: `source '${source}': ${where}: product id ${JSON.stringify(id)}: ${why}`, path })
    }
    const unique = (ids: ReadonlyArray<string>) => Array.from(new Set(ids))
    if (config.productIds !== undefined) {
      const ids = config.productIds.map((v) => String(v).trim())
      for (const [i, id] of ids.entries()) {
        const error = check(id, `productIds[${i}]`, `sources.${source}.with.productIds`)
        if (error) return yield* error
      }
      return Option.some(unique(ids))
    }
    if (config.productIdsFile === undefined) return Option.none()
    const file = config.productIdsFile
    const path = `sources.${source}.with.productIdsFile`
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((e) =>
        new ConfigError({ message: `source '${source}': cannot read productIdsFile ${JSON.stringify(file)}: ${e.message}`, path })
      )
    )
    const ids: Array<string> = []
    for (const [i, raw] of text.split(/\r?\n/).entries()) {
      const id = raw.trim()
      if (id === "" || id.startsWith("#")) continue
      const error = check(id, `${file} line ${i + 1}`, path)
      if (error) return yield* error
      ids.push(id)
    }
    if (ids.length === 0) {
      return yield* new ConfigError({ message: `source '${source}': productIdsFile ${JSON.stringify(file)} lists no product ids`, path })
    }
    return Option.some(unique(ids))
  })
