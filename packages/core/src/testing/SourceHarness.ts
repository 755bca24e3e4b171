/**
 * SourceHarness: runs a source plugin the way the runner does, for the plugin's own tests. The
 * `with:` block is decoded as a pipeline file's is (unknown options are errors, messages name the
 * path), the source is made with a context whose progress is recorded, and its stream is read until
 * it ends, fails or `take` batches came. What came, the progress, the source's counters and its log
 * lines are returned. Use it over real HTTP against the source's simulator.
 */
import { createHash } from "node:crypto"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Batch from "../Batch.js"
import * as UndiciClient from "../http/UndiciClient.js"
import type { ConfigError, SourceError } from "../Errors.js"
import { decodeConfig } from "../Pipeline.js"
import type { ProductImage } from "../ProductImage.js"
import * as RunStats from "../RunStats.js"
import type { PluginServices } from "../Services.js"
import type * as Source from "../Source.js"
import type { SourcePlugin } from "../Source.js"

/** The services the runner gives a source on Node: real HTTP (undici, through `UndiciClient`), file system, path and fresh counters. */
export const nodeServices: Layer.Layer<PluginServices> = Layer.mergeAll(
  UndiciClient.layer,
  NodeFileSystem.layer,
  NodePath.layer,
  RunStats.layer
)

/** Runs a test body scoped, with fresh {@link nodeServices}. */
export const live = <A, E>(body: Effect.Effect<A, E, PluginServices | Scope.Scope>): Effect.Effect<A, E> =>
  body.pipe(Effect.scoped, Effect.provide(nodeServices))

/** Retries that take milliseconds, for tests against injected faults. */
export const fastRetry = { maxRetries: 8, baseDelay: "1 millis", maxDelay: "5 millis" } as const

/** How to run the source. */
export interface Options {
  /** The pipeline's name for the source (default: the plugin's name). */
  readonly name?: string
  /** Where to resume (default: none, a fresh start). */
  readonly checkpoint?: Option.Option<Batch.Checkpoint>
  /**
   * Whether `checkpoint` is from this same run (a resume) rather than a cursor carried over from an
   * earlier, finished run. Default: true when a checkpoint is given.
   */
  readonly resumed?: boolean
  /** The runner's `--limit`. */
  readonly limit?: number
  /** The partition to read (one of the plugin's `partitions`); default: all of the work. */
  readonly partition?: Source.PartitionSpec
  /** Stop after this many batches (as if the run was killed after committing them). */
  readonly take?: number
  /** Called with each batch as it arrives (e.g. to change the simulator mid-run). */
  readonly onBatch?: (batch: Batch.Batch, index: number) => void
}

/** What one run of a source produced. */
export interface Run {
  /** Whether the source said its batches are product-complete (false when it could not be made). */
  readonly productComplete: boolean
  readonly batches: ReadonlyArray<Batch.Batch>
  readonly records: ReadonlyArray<ProductImage>
  readonly rejected: ReadonlyArray<Batch.DeadLetter>
  /** Each batch's checkpoint, in order. */
  readonly checkpoints: ReadonlyArray<Option.Option<Batch.Checkpoint>>
  /** Every `progress.total` call. */
  readonly totals: ReadonlyArray<number>
  /** How many times `progress.page` was called. */
  readonly pages: number
  /** The source's counters in `RunStats` (retries, warnings, ...). */
  readonly counts: RunStats.SourceCounts
  /** Every log line while the source was made and read, as `LEVEL message`. */
  readonly logs: ReadonlyArray<string>
}

/**
 * Decodes `input` (the `with:` block), makes the source and reads its stream. A bad `input` fails
 * with the `ConfigError` a pipeline file would get; a failure to make or read the source is returned
 * in `error`, with everything read before it in `run`.
 */
export const runUntil = <C>(
  plugin: SourcePlugin<C>,
  input: unknown,
  options: Options = {}
): Effect.Effect<{ readonly run: Run; readonly error: Option.Option<SourceError | ConfigError> }, ConfigError, PluginServices> =>
  Effect.gen(function*() {
    const name = options.name ?? plugin.name
    const config = yield* decodeConfig(plugin.config, input, `sources.${name}.with`)
    const totals: Array<number> = []
    const logs: Array<string> = []
    const batches: Array<Batch.Batch> = []
    let pages = 0
    let productComplete = false
    const logger = Logger.make(({ logLevel, message }) => {
      logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    })
    const outcome = yield* Effect.gen(function*() {
      const instance = yield* plugin.make(config, {
        name,
        checkpoint: options.checkpoint ?? Option.none(),
        resumed: options.resumed ?? Option.isSome(options.checkpoint ?? Option.none()),
        limit: Option.fromNullable(options.limit),
        partition: Option.fromNullable(options.partition),
        progress: {
          total: (n) => Effect.sync(() => void totals.push(n)),
          page: () => Effect.sync(() => void pages++)
        }
      })
      productComplete = instance.productComplete
      const stream = options.take === undefined ? instance.stream : Stream.take(instance.stream, options.take)
      yield* Stream.runForEach(stream, (batch) =>
        Effect.sync(() => {
          batches.push(batch)
          options.onBatch?.(batch, batches.length - 1)
        }))
    }).pipe(Effect.scoped, Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.either)
    const stats = yield* RunStats.RunStats
    const counts = (yield* stats.snapshot).get(name) ?? RunStats.emptyCounts()
    const run: Run = {
      productComplete,
      batches,
      records: batches.flatMap((b) => Chunk.toArray(b.records)),
      rejected: batches.flatMap((b) => Chunk.toArray(b.rejected)),
      checkpoints: batches.map((b) => b.checkpoint),
      totals,
      pages,
      counts,
      logs
    }
    return { run, error: Either.getLeft(outcome) }
  })

/** Like {@link runUntil}, but a failure to make or read the source fails the effect. */
export const run = <C>(plugin: SourcePlugin<C>, input: unknown, options: Options = {}): Effect.Effect<Run, SourceError | ConfigError, PluginServices> =>
  Effect.flatMap(runUntil(plugin, input, options), ({ error, run }) =>
    Option.match(error, { onNone: () => Effect.succeed(run), onSome: Effect.fail }))

/**
 * The harness for one source, with its results in the test's own shape: `runUntil`, `run` (a failure
 * fails the effect) and `check`, each taking the `with:` block.
 */
export const bind = <C, R>(plugin: SourcePlugin<C>, toResult: (run: Run) => R) => ({
  runUntil: (input: unknown, options: Options = {}) =>
    Effect.map(runUntil(plugin, input, options), ({ error, run }) => ({ result: toResult(run), error })),
  run: (input: unknown, options: Options = {}): Effect.Effect<R, SourceError | ConfigError, PluginServices> =>
    Effect.map(run(plugin, input, options), toResult),
  check: (input: unknown) => check(plugin, input)
})

/**
 * A record as plain data, for comparing with expected records: dates as epoch milliseconds (an
 * invalid date shows as NaN rather than hiding behind null), `bytes` as their hex sha256 (left out
 * when the record has none).
 */
export const plain = (r: ProductImage): Record<string, unknown> => ({
  source: r.source,
  productId: r.productId,
  imageId: r.imageId,
  position: r.position,
  url: r.url,
  filename: r.filename,
  width: r.width,
  height: r.height,
  alt: r.alt,
  contentHash: r.contentHash,
  createdAt: r.createdAt === null ? null : r.createdAt.getTime(),
  updatedAt: r.updatedAt === null ? null : r.updatedAt.getTime(),
  extra: r.extra,
  ...(r.bytes === undefined ? {} : { bytes: createHash("sha256").update(r.bytes).digest("hex") })
})

/** Decodes `input`, makes the source and runs its dry-run check (`effetl run --dry-run`). */
export const check = <C>(plugin: SourcePlugin<C>, input: unknown, name: string = plugin.name): Effect.Effect<void, SourceError | ConfigError, PluginServices> =>
  Effect.gen(function*() {
    const config = yield* decodeConfig(plugin.config, input, `sources.${name}.with`)
    const instance = yield* plugin.make(config, {
      name,
      checkpoint: Option.none(),
      resumed: false,
      limit: Option.none(),
      partition: Option.none(),
      progress: { total: () => Effect.void, page: () => Effect.void }
    })
    return yield* instance.check
  }).pipe(Effect.scoped)
