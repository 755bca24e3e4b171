/**
 * Core's product grouping: regroups a source's batches so that every output batch holds whole
 * products. The runner puts it before the first product-scoped transform when a source's batches
 * are not product-complete (e.g. a list ordered by image id, where one product's images are spread
 * over many pages).
 *
 * This makes the step **blocking**: nothing but dead letters reaches the sinks until the source has
 * been read to the end, because the last page may still hold an image of the first product.
 *
 * Memory stays bounded by spilling to disk:
 * - Records are buffered in memory. Once the buffer holds `maxBuffered` records (checked after each
 *   input batch), it is sorted by product (stably) and written as a numbered *segment* file (JSONL,
 *   bytes in base64), fsynced together with its directory.
 * - Checkpoints are held back while reading. Right after a segment is durable, and only if no record
 *   arrived after the latest checkpoint, that checkpoint is emitted on an empty batch with `spill` set
 *   to the number of durable segments: every record before it is in those segments. So a saved
 *   checkpoint never runs ahead of records the grouping holds, and a resumed run loads exactly the
 *   records the source will not read again.
 * - When the input ends, the remaining buffer is sorted and kept in memory as the last run, and a
 *   k-way merge over all runs emits batches of whole products, in product-key order, each product's
 *   records in their input order. The last batch carries the last checkpoint seen.
 * - The merge reads at most `fanIn` runs at once (default 32). With more segments, merge passes
 *   first merge each `fanIn` consecutive segments into one bigger file (`merge-<pass>-<n>.jsonl`),
 *   until `fanIn` runs are left; the segments themselves stay (a resumed run needs them), each
 *   pass's files are removed once the next pass has read them, and a new run removes any left by a
 *   kill. Consecutive runs merged in order keep the merge stable.
 * - Dead letters (`rejected`) are not grouped: they pass through at once.
 *
 * At any time the grouping holds at most `maxBuffered` records plus one input batch while reading,
 * and, while merging, one output batch plus, per open run (at most `fanIn`), a read buffer of
 * `readChunk` bytes and the records decoded from it. Disk use while merging is at most about three
 * times the spilled records (the segments, the files of one pass and those of the next).
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as NodePath from "node:path"
import * as Batch from "./Batch.js"
import { TransformError } from "./Errors.js"
import { fromJson, type ProductImage, ProductImageJson, productKey, toJson } from "./ProductImage.js"

/** How `groupByProduct` buffers, spills and resumes. */
export interface GroupingOptions {
  /** A directory in the run's staging for this source's segments, e.g. `.effetl/runs/<runId>/group/<source>`. Created if missing. */
  readonly dir: string
  /** Records held in memory before they are spilled to a segment file. */
  readonly maxBuffered: number
  /** The source's saved checkpoint; its `spill` says how many durable segments belong with it. */
  readonly resume: Option.Option<Batch.Checkpoint>
  /** Records per output batch (whole products only; a bigger product is a batch of its own). Default 1000. */
  readonly outputBatchSize?: number
  /** The most runs merged at once (at least 2). Default {@link defaultFanIn}. */
  readonly fanIn?: number
}

/** The most runs (segment files, or the in-memory last run) one merge reads at once. */
export const defaultFanIn = 32

/** The bytes read from a run's file at a time while merging (one such chunk is held per open run). */
export const readChunk = 64 * 1024

/** The name used in errors of the grouping step. */
export const stepName = "group-by-product"

/** Regroups a stream of batches into batches of whole products, spilling to `options.dir` (see the module doc). */
export const groupByProduct = (options: GroupingOptions) =>
<E, R>(self: Stream.Stream<Batch.Batch, E, R>): Stream.Stream<Batch.Batch, E | TransformError, R | FileSystem.FileSystem> =>
  Stream.unwrapScoped(
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const segments = makeSegmentStore(fs, options.dir)
      const resumed = Option.getOrUndefined(options.resume)
      const durable = resumed?.spill ?? 0
      yield* segments.prepare(durable)

      const maxBuffered = Math.max(1, Math.floor(options.maxBuffered))
      const outputBatchSize = Math.max(1, Math.floor(options.outputBatchSize ?? 1000))
      const fanIn = Math.max(2, Math.floor(options.fanIn ?? defaultFanIn))
      let buffer: Array<ProductImage> = []
      let segmentCount = durable
      // The latest checkpoint seen, and whether no record arrived after it.
      let last: Batch.Checkpoint | undefined = resumed === undefined ? undefined : withoutSpill(resumed)
      let exact = true

      const accept = (batch: Batch.Batch): Effect.Effect<Array<Batch.Batch>, TransformError> =>
        Effect.gen(function*() {
          const out: Array<Batch.Batch> = []
          if (Chunk.isNonEmpty(batch.rejected)) out.push(Batch.make([], Option.none(), batch.rejected))
          for (const r of batch.records) buffer.push(r)
          if (Option.isSome(batch.checkpoint)) {
            last = withoutSpill(batch.checkpoint.value)
            exact = true
          } else if (Chunk.isNonEmpty(batch.records)) {
            exact = false
          }
          if (buffer.length >= maxBuffered) {
            const run = sortByProduct(buffer)
            buffer = []
            yield* segments.write(segmentCount, run)
            segmentCount++
            if (exact && last !== undefined) out.push(Batch.checkpointOnly({ ...last, spill: segmentCount }))
          }
          return out
        })

      const merge: Effect.Effect<Stream.Stream<Batch.Batch, TransformError>, TransformError, Scope.Scope> = Effect.gen(
        function*() {
          // Merge passes until the files and the in-memory run fit in one merge of `fanIn` runs.
          let files = Array.from({ length: segmentCount }, (_, n) => segments.pathOf(n))
          let intermediate = false
          for (let pass = 1; files.length + 1 > fanIn; pass++) {
            const merged: Array<string> = []
            for (let i = 0; i < files.length; i += fanIn) {
              const target = segments.mergePath(pass, merged.length)
              yield* Effect.scoped(
                Effect.flatMap(mergeRuns(files.slice(i, i + fanIn).map(segments.read)), (next) => segments.writeAll(target, next))
              )
              merged.push(target)
            }
            if (intermediate) yield* segments.remove(files)
            files = merged
            intermediate = true
          }
          const runs: Array<Stream.Stream<ProductImage, TransformError>> = files.map(segments.read)
          runs.push(Stream.fromIterable(sortByProduct(buffer)))
          buffer = []
          const products = yield* mergeRuns(runs)
          const batches = toBatches(products, outputBatchSize)
          const finalCheckpoint = last === undefined ? Option.none() : Option.some({ ...last, spill: segmentCount })
          if (intermediate) {
            const done = files
            yield* Effect.addFinalizer(() => Effect.ignore(segments.remove(done)))
          }
          return withFinalCheckpoint(batches, finalCheckpoint)
        }
      )

      return Stream.concat(
        Stream.mapConcatEffect(self, accept),
        Stream.unwrapScoped(Effect.suspend(() => merge))
      )
    })
  )

// ---------------------------------------------------------------------------------------------
// Helpers

const withoutSpill = (cp: Batch.Checkpoint): Batch.Checkpoint => {
  const { spill: _spill, ...rest } = cp
  return rest
}

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Sorts records by product key, stably (records of a product keep their order). */
const sortByProduct = (records: ReadonlyArray<ProductImage>): Array<ProductImage> =>
  records
    .map((record) => ({ key: productKey(record), record }))
    .sort((a, b) => compareKeys(a.key, b.key))
    .map((e) => e.record)

const failure = (message: string) => (cause: unknown) =>
  new TransformError({ transform: stepName, message, cause })

const segmentPattern = /^(\d+)\.jsonl(\.tmp)?$/
const mergePattern = /^merge-\d+-\d+\.jsonl$/

/** Segment files in one directory: `<n>.jsonl`, written through `<n>.jsonl.tmp`; merge passes' files `merge-<pass>-<n>.jsonl`. */
const makeSegmentStore = (fs: FileSystem.FileSystem, dir: string) => {
  const pathOf = (n: number) => NodePath.join(dir, `${n}.jsonl`)
  // The files are written one at a time: their writes share one buffer (not a new megabyte of
  // bytes per write left for the collector).
  const written: WriteBuffer = { bytes: new Uint8Array(0), busy: false }
  const decodeLine = Schema.decodeUnknownEither(Schema.parseJson(ProductImageJson))
  // The spill files are ours: a line is checked without Schema's parser (the same result), and only
  // a line it refuses goes through Schema, for the message.
  const plainRecord = Batch.plainDecoder(ProductImageJson)!
  const parseLine = (line: string): Either.Either<ProductImage, ParseResult.ParseError> => {
    let json: unknown
    try {
      json = JSON.parse(line)
    } catch {
      return Either.map(decodeLine(line), fromJson)
    }
    const checked = plainRecord(json)
    return Option.isSome(checked) ? Either.right(fromJson(checked.value)) : Either.map(decodeLine(line), fromJson)
  }

  /** A line of `path` as a record, or why it is not one. */
  const decode = (path: string, line: string): Either.Either<ProductImage, TransformError> =>
    Either.mapLeft(parseLine(line), (error) =>
      new TransformError({
        transform: stepName,
        message: `Spill segment ${path} is corrupt: ${ParseResult.TreeFormatter.formatErrorSync(error)}`
      }))
  const syncDirectory = Effect.scoped(
    fs.open(dir, { flag: "r" }).pipe(Effect.flatMap((d) => d.sync))
  ).pipe(
    // Directories cannot be opened for fsync on Windows; rename is durable enough there.
    process.platform === "win32" ? Effect.ignore : (self) => self
  )

  return {
    /** Creates the directory, deletes segments numbered `durable` or more (and temp files), checks the rest exist. */
    prepare: (durable: number): Effect.Effect<void, TransformError> =>
      Effect.gen(function*() {
        yield* fs.makeDirectory(dir, { recursive: true })
        const names = yield* fs.readDirectory(dir)
        const present = new Set<number>()
        for (const name of names) {
          if (mergePattern.test(name)) {
            yield* fs.remove(NodePath.join(dir, name))
            continue
          }
          const m = segmentPattern.exec(name)
          if (m === null) continue
          const n = Number(m[1])
          if (m[2] !== undefined || n >= durable) yield* fs.remove(NodePath.join(dir, name))
          else present.add(n)
        }
        for (let n = 0; n < durable; n++) {
          if (!present.has(n)) {
            return yield* new TransformError({
              transform: stepName,
              message: `Cannot resume: spill segment ${pathOf(n)} of the saved checkpoint is missing. ` +
                `Run again with --restart to read the source from the beginning.`
            })
          }
        }
      }).pipe(Effect.catchTag("SystemError", "BadArgument", failure(`Cannot prepare the spill directory ${dir}`))),

    pathOf,

    /** The file of merge pass `pass`'s `n`th output. */
    mergePath: (pass: number, n: number) => NodePath.join(dir, `merge-${pass}-${n}.jsonl`),

    /** Writes a sorted run as segment `n`, durably (temp file, fsync, rename, fsync of the directory). */
    write: (n: number, records: ReadonlyArray<ProductImage>): Effect.Effect<void, TransformError> => {
      const target = pathOf(n)
      const temp = `${target}.tmp`
      return Effect.scoped(
        Effect.gen(function*() {
          const file = yield* fs.open(temp, { flag: "w" })
          const lines = lineWriter(file, written)
          yield* lines.addAll(records)
          yield* lines.flush
          yield* file.sync
        })
      ).pipe(
        Effect.zipRight(fs.rename(temp, target)),
        Effect.zipRight(syncDirectory),
        Effect.catchTag("SystemError", "BadArgument", failure(`Cannot write spill segment ${target}`))
      )
    },

    /** Writes the products of a merge to `path` (not durable: a merge pass's file is made again when lost). */
    writeAll: (
      path: string,
      nextProduct: Effect.Effect<Option.Option<Array<ProductImage>>, TransformError>
    ): Effect.Effect<void, TransformError> =>
      Effect.scoped(
        Effect.gen(function*() {
          const file = yield* fs.open(path, { flag: "w" })
          const lines = lineWriter(file, written)
          // Whole products, a batch of them at a time (one Effect for a batch's lines).
          const batches = toBatches(nextProduct, 1000)
          for (;;) {
            const batch = yield* batches
            if (Option.isNone(batch)) break
            yield* lines.addAll(batch.value)
          }
          yield* lines.flush
        })
      ).pipe(Effect.catchTag("SystemError", "BadArgument", failure(`Cannot write merge file ${path}`))),

    /** Removes files of a merge pass. */
    remove: (paths: ReadonlyArray<string>): Effect.Effect<void, TransformError> =>
      Effect.forEach(paths, (path) => fs.remove(path, { force: true }), { discard: true }).pipe(
        Effect.catchTag("SystemError", "BadArgument", failure(`Cannot remove merge files in ${dir}`))
      ),

    /** Reads a run's file back, record by record, `readChunk` bytes at a time. */
    read: (path: string): Stream.Stream<ProductImage, TransformError> =>
      Stream.unwrapScoped(Effect.map(
        Effect.mapError(fs.open(path, { flag: "r" }), failure(`Cannot read spill segment ${path}`)),
        (file) => {
          // One buffer per open run, reused for every read (not a new chunk of bytes each time).
          const buffer = new Uint8Array(readChunk)
          const decoder = new TextDecoder()
          let carry = ""
          let ended = false
          /** The records of `text`'s lines (a chunk of them at a time, not an Effect per record). */
          const records = (text: string): Effect.Effect<Chunk.Chunk<ProductImage>, Option.Option<TransformError>> => {
            const out: Array<ProductImage> = []
            let from = 0
            while (from < text.length) {
              let to = text.indexOf("\n", from)
              if (to < 0) to = text.length
              if (to > from) {
                const parsed = decode(path, text.slice(from, to))
                if (Either.isLeft(parsed)) return Effect.fail(Option.some(parsed.left))
                out.push(parsed.right)
              }
              from = to + 1
            }
            return Effect.succeed(Chunk.unsafeFromArray(out))
          }
          return Stream.repeatEffectChunkOption(Effect.suspend(() => {
            if (ended) return Effect.fail(Option.none())
            return Effect.flatMap(
              Effect.mapError(file.read(buffer), (e) => Option.some(failure(`Cannot read spill segment ${path}`)(e))),
              (size) => {
                const n = Number(size)
                if (n === 0) {
                  // The end: what is left is the last line (a file cut short fails to parse).
                  ended = true
                  const last = carry + decoder.decode()
                  carry = ""
                  return records(last)
                }
                // Only the new text is searched: a long line (an image's bytes) is not scanned again per read.
                const piece = decoder.decode(buffer.subarray(0, n), { stream: true })
                const end = piece.lastIndexOf("\n")
                if (end < 0) {
                  carry += piece
                  return Effect.succeed(Chunk.empty())
                }
                const text = carry + piece.slice(0, end)
                carry = piece.slice(end + 1)
                return records(text)
              }
            )
          }))
        }
      ))
  }
}

/** The bytes a segment store encodes its writes into: one buffer for all its files, in turn. */
interface WriteBuffer {
  bytes: Uint8Array
  busy: boolean
}

/**
 * The size of a store's write buffer: a write of 1 MiB of text plus a line of up to 64 KiB (a write
 * is taken once the text passes 1 MiB), in UTF-8 at its longest. A longer write has its own buffer.
 */
const writeBufferBytes = 3 * ((1 << 20) + (64 << 10))

/** Writes records as JSON lines (bytes in base64) to a file, about 1 MiB per write. */
const lineWriter = (file: FileSystem.File, shared: WriteBuffer) => {
  const encoder = new TextEncoder()
  let parts: Array<string> = []
  let size = 0
  /** Encodes `lines` into the store's buffer (a buffer of their own when it is busy or too small) and writes them. */
  const write = (lines: Array<string>, chars: number): Effect.Effect<void, PlatformError> =>
    Effect.suspend(() => {
      // UTF-8 takes at most 3 bytes per UTF-16 code unit (`chars` counts the newlines).
      const mine = !shared.busy && chars * 3 <= writeBufferBytes
      if (mine && shared.bytes.length === 0) shared.bytes = new Uint8Array(writeBufferBytes)
      const buffer = mine ? shared.bytes : new Uint8Array(chars * 3)
      let at = 0
      for (const line of lines) {
        at += encoder.encodeInto(line, buffer.subarray(at)).written
        buffer[at++] = 10 // "\n"
      }
      if (!mine) return file.writeAll(buffer.subarray(0, at))
      shared.busy = true
      return Effect.ensuring(file.writeAll(buffer.subarray(0, at)), Effect.sync(() => (shared.busy = false)))
    })
  /** The lines so far as one write (encoded and written when the effect runs), or nothing. */
  const take = (): Effect.Effect<void, PlatformError> => {
    if (parts.length === 0) return Effect.void
    const effect = write(parts, size)
    parts = []
    size = 0
    return effect
  }
  const flush = Effect.suspend(take)
  return {
    /** Adds records' lines (one Effect for them all), writing about every 1 MiB. */
    addAll: (records: Iterable<ProductImage>) =>
      Effect.suspend(() => {
        let writes: Effect.Effect<void, PlatformError> = Effect.void
        for (const record of records) {
          let line: string
          try {
            line = JSON.stringify(toJson(record, { includeBytes: true }))
          } catch (cause) {
            return Effect.zipRight(
              writes,
              Effect.fail(failure(`Cannot spill record ${record.source}/${record.productId}/${record.imageId}: its 'extra' is not JSON`)(cause))
            )
          }
          parts.push(line)
          size += line.length + 1
          if (size >= 1 << 20) writes = Effect.zipRight(writes, take())
        }
        return writes
      }),
    flush
  }
}

/** A record read from a run, waiting in the merge heap. */
interface HeapEntry {
  readonly key: string
  readonly run: number
  readonly record: ProductImage
}

const before = (a: HeapEntry, b: HeapEntry): boolean => a.key < b.key || (a.key === b.key && a.run < b.run)

/** A minimal binary min-heap of entries ordered by product key, then run index. */
class Heap {
  private readonly items: Array<HeapEntry> = []
  get size(): number {
    return this.items.length
  }
  peek(): HeapEntry | undefined {
    return this.items[0]
  }
  push(entry: HeapEntry): void {
    const items = this.items
    items.push(entry)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(items[i]!, items[parent]!)) break
      ;[items[i], items[parent]] = [items[parent]!, items[i]!]
      i = parent
    }
  }
  pop(): HeapEntry | undefined {
    const items = this.items
    const top = items[0]
    const end = items.pop()
    if (items.length > 0 && end !== undefined) {
      items[0] = end
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < items.length && before(items[l]!, items[m]!)) m = l
        if (r < items.length && before(items[r]!, items[m]!)) m = r
        if (m === i) break
        ;[items[i], items[m]] = [items[m]!, items[i]!]
        i = m
      }
    }
    return top
  }
}

/**
 * A run being merged: the records of its current chunk, read without an Effect, and `pull`, which
 * reads the next chunk (or marks the run done).
 */
interface Cursor<E> {
  chunk: ReadonlyArray<ProductImage>
  index: number
  done: boolean
  readonly pull: Effect.Effect<void, E>
}

const cursor = <E>(stream: Stream.Stream<ProductImage, E>) =>
  Effect.map(Stream.toPull(stream), (pull) => {
    const c: Cursor<E> = {
      chunk: [],
      index: 0,
      done: false,
      pull: Effect.matchEffect(pull, {
        onFailure: Option.match({
          onNone: () => Effect.sync(() => void (c.done = true)),
          onSome: (e) => Effect.fail(e)
        }),
        onSuccess: (next) =>
          Effect.sync(() => {
            c.chunk = Chunk.toReadonlyArray(next)
            c.index = 0
          })
      })
    }
    return c
  })

/**
 * Merges runs each sorted by product key into whole products: an effect that yields the next
 * product's records (runs in order, then each run's order: a stable merge), or none at the end.
 * Records come out of the runs' current chunks without an Effect each; only reading a run's next
 * chunk is one.
 */
const mergeRuns = <E>(
  runs: ReadonlyArray<Stream.Stream<ProductImage, E>>
): Effect.Effect<Effect.Effect<Option.Option<Array<ProductImage>>, E>, E, Scope.Scope> =>
  Effect.gen(function*() {
    const heap = new Heap()
    const cursors = yield* Effect.forEach(runs, cursor)
    /** Puts `run`'s next record in the heap; false when its chunk is spent and must be read first. */
    const advance = (run: number): boolean => {
      const c = cursors[run]!
      if (c.index < c.chunk.length) {
        const record = c.chunk[c.index++]!
        heap.push({ key: productKey(record), run, record })
        return true
      }
      return c.done
    }
    // A run whose next record must be read before the merge goes on (-1: none). Every open run has
    // its next record in the heap before the heap is looked at, so a product ends only when no run
    // has more of it.
    let waiting = -1
    let product: Array<ProductImage> | undefined
    let key = ""
    const step = (): Effect.Effect<Option.Option<Array<ProductImage>>, E> => {
      for (;;) {
        if (waiting >= 0) {
          const run = waiting
          waiting = -1
          return Effect.flatMap(cursors[run]!.pull, () => {
            if (!advance(run)) waiting = run
            return step()
          })
        }
        if (product === undefined) {
          const top = heap.pop()
          if (top === undefined) return Effect.succeed(Option.none())
          product = [top.record]
          key = top.key
          if (!advance(top.run)) waiting = top.run
          continue
        }
        if (heap.peek()?.key === key) {
          const entry = heap.pop()!
          product.push(entry.record)
          if (!advance(entry.run)) waiting = entry.run
          continue
        }
        const done = product
        product = undefined
        return Effect.succeed(Option.some(done))
      }
    }
    for (let run = 0; run < cursors.length; run++) {
      while (!advance(run)) yield* cursors[run]!.pull
    }
    return Effect.suspend(step)
  })

/** Packs whole products into batches of about `size` records (a bigger product is a batch of its own). */
const toBatches = <E>(
  nextProduct: Effect.Effect<Option.Option<Array<ProductImage>>, E>,
  size: number
): Effect.Effect<Option.Option<Array<ProductImage>>, E> => {
  let held: Array<ProductImage> | undefined
  let ended = false
  return Effect.gen(function*() {
    const current: Array<ProductImage> = []
    for (;;) {
      let product = held
      held = undefined
      if (product === undefined && !ended) {
        const next = yield* nextProduct
        if (Option.isSome(next)) product = next.value
        else ended = true
      }
      if (product === undefined) break
      if (current.length > 0 && current.length + product.length > size) {
        held = product
        break
      }
      for (const r of product) current.push(r)
      if (current.length >= size) break
    }
    return current.length > 0 ? Option.some(current) : Option.none()
  })
}

/** The merged batches as a stream, the last one carrying `checkpoint` (a lone checkpoint batch when there are none). */
const withFinalCheckpoint = <E>(
  nextBatch: Effect.Effect<Option.Option<Array<ProductImage>>, E>,
  checkpoint: Option.Option<Batch.Checkpoint>
): Stream.Stream<Batch.Batch, E> => {
  const next = Effect.mapError(nextBatch, Option.some)
  let pending: Option.Option<Array<ProductImage>> | undefined
  let finished = false
  const pull: Effect.Effect<Batch.Batch, Option.Option<E>> = Effect.gen(function*() {
    if (finished) return yield* Effect.fail(Option.none())
    const current = pending ?? (yield* next)
    if (Option.isNone(current)) {
      finished = true
      if (Option.isSome(checkpoint)) return Batch.checkpointOnly(checkpoint.value)
      return yield* Effect.fail(Option.none())
    }
    pending = yield* next
    if (Option.isNone(pending)) {
      finished = true
      return Batch.make(current.value, checkpoint)
    }
    return Batch.make(current.value)
  })
  return Stream.repeatEffectOption(pull)
}
