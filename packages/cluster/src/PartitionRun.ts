/**
 * One partition of a distributed run: effetl's ordinary runner over one unit of the plan, with its
 * own state keyed by (pipeline, run, partition) in the cluster's Postgres state store.
 *
 * The partition's pipeline is the pipeline with one source (told its partition), the same
 * transforms, and these sinks:
 * - every `postgres` sink in `merge` mode, as it is: an upsert by image key, so partitions may write
 *   the same table at once. On the cluster's database it commits in the same transaction as the
 *   partition's state save (core's `StateTransaction`);
 * - one staging sink in place of every other sink (files, SQL `append`/`replace`): the `finalize`
 *   step publishes the staged records through the real sinks once every partition is done.
 *
 * The engine runs a partition at least once. Exactly once comes from the commit protocol: a
 * re-run resumes the partition's unfinished run from its saved checkpoint, and a finished partition
 * is never run again (its recorded result is returned). A lock per partition keeps two workers from
 * running one partition at the same time. State that a run keeps on local disk (product grouping's
 * spill, the dead-letter parts) is only on the machine that wrote it: a partition resumed on another
 * machine starts over instead (its staged records are dropped and the upserts are replayed, so
 * nothing is written twice).
 */
import {
  ConfigError,
  type Pipeline,
  type PluginServices,
  RunStats,
  type RunError,
  Runner,
  Source,
  StateStore
} from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { type ClusterStore, withInitLock } from "./ClusterStore.js"
import type { Unit } from "./Plan.js"
import * as SharedDedupe from "./SharedDedupe.js"
import * as Staging from "./Staging.js"

/** The counters of one source, as a partition reports them. */
export const Counts = Schema.Struct(
  Object.fromEntries(RunStats.counters.map((c) => [c, Schema.Number])) as { [K in RunStats.Counter]: typeof Schema.Number }
)

/** What a finished partition reports (kept small: the engine stores it). */
export const PartitionResult = Schema.Struct({
  key: Schema.String,
  source: Schema.String,
  counts: Counts,
  seconds: Schema.Number,
  deadLetters: Schema.Number
})
export type PartitionResult = typeof PartitionResult.Type

/** What a partition run needs besides its unit. */
export interface PartitionContext {
  /** The pipeline as this worker loaded it. */
  readonly pipeline: Pipeline.Pipeline
  readonly store: ClusterStore
  /** The cluster's state store (`<prefix>_state`), shared by the worker's partitions. */
  readonly stateStore: StateStore.StateStore["Type"]
  readonly runId: string
  /** The last finished run, whose partitions' incremental cursors carry over (none on a full refresh). */
  readonly previousRun: string | null
  /** A full refresh (a global dedupe then takes over earlier runs' claims). */
  readonly fullRefresh: boolean
}

/** The state store key of a partition: `<pipeline>/<run>/<partition>`. */
export const stateName = (pipeline: string, runId: string, key: string): string => `${pipeline}/${runId}/${key}`

/** Where this process keeps local state: `host:state directory`. */
export const placeOf = (pipeline: Pipeline.Pipeline): string => `${os.hostname()}:${path.dirname(path.resolve(pipeline.statePath))}`

/** Whether a sink takes partitions directly (an idempotent upsert), rather than through staging and finalize. */
export const isDirect = (sink: Pipeline.PipelineSink): boolean => {
  const config = sink.config as { readonly url?: unknown; readonly mode?: unknown }
  return sink.plugin.name === "postgres" && config.mode === "merge" && Redacted.isRedacted(config.url)
}

/** Runs one partition to its end (or returns its recorded result when it already finished). */
export const run = (
  context: PartitionContext,
  unit: Unit
): Effect.Effect<PartitionResult, RunError | ConfigError, PluginServices> =>
  Effect.scoped(
    Effect.gen(function*() {
      const { pipeline, runId, store, stateStore } = context
      yield* store.lockPartition(runId, unit.key)
      const recorded = yield* store.partition(runId, unit.key)
      if (Option.isSome(recorded) && recorded.value.status === "finished") {
        return yield* Schema.decodeUnknown(PartitionResult)(recorded.value.result).pipe(
          Effect.mapError(() => new ConfigError({ message: `partition ${unit.key} of run ${runId}: its recorded result is not valid` }))
        )
      }
      const name = stateName(pipeline.name, runId, unit.key)
      const place = placeOf(pipeline)
      const saved = yield* stateStore.load(name)
      const resumable = Option.isSome(recorded) && recorded.value.place === place && saved.run !== null && saved.run.status !== "finished"
      if (!resumable) {
        if (saved.run !== null) yield* Effect.logWarning(`partition ${unit.key}: its unfinished run was on ${recorded.pipe(Option.flatMap((r) => Option.fromNullable(r.place)), Option.getOrElse(() => "another worker"))}; starting it over here`)
        yield* seed(context, unit, name)
      }
      yield* store.claimPartition(runId, unit, place)

      const source = pipeline.sources.find((s) => s.name === unit.source)
      if (source === undefined) {
        return yield* new ConfigError({ message: `partition ${unit.key}: this worker's pipeline has no source '${unit.source}'` })
      }
      const localDir = path.join(path.dirname(path.resolve(pipeline.statePath)), "cluster", safeSegment(pipeline.name), runId, unit.key)
      const deadLetterPath = path.join(localDir, "dead-letter.jsonl")
      const direct = pipeline.sinks.filter(isDirect)
      const staged = pipeline.sinks.length > direct.length
        ? [{ name: Staging.sinkName, plugin: Staging.stagingSink({ store, runId, partition: unit.key, ordinal: unit.ordinal }), config: {} }]
        : []
      // The partition's state lives in the cluster's store (provided below), not in the file's `state:`.
      const { stateStore: _fileStore, ...local } = pipeline
      const partitionPipeline: Pipeline.Pipeline = {
        ...local,
        name,
        deadLetterPath,
        sources: [{ ...source, plugin: withPartition(source.plugin, unit) }],
        // A global dedupe checks the run's shared seen set, not a seen set of this partition's own.
        transforms: pipeline.transforms.map((t) =>
          SharedDedupe.isGlobalDedupe(t) ? { ...t, plugin: SharedDedupe.plugin({ store, runId, fullRefresh: context.fullRefresh }) } : t
        ),
        sinks: [...direct, ...staged]
      }

      yield* Effect.logInfo(`partition ${unit.key}: running`)
      const summary = yield* Runner.run(partitionPipeline, {}).pipe(
        Effect.provideService(StateStore.StateStore, stateStore),
        Effect.provide(RunStats.layer)
      )
      const lines = yield* readLines(deadLetterPath)
      const counts = summary.sources[0]?.counts ?? RunStats.emptyCounts()
      const result: PartitionResult = {
        key: unit.key,
        source: unit.source,
        counts,
        seconds: summary.sources[0]?.seconds ?? summary.seconds,
        deadLetters: lines.length
      }
      yield* store.finishPartition(runId, unit.key, unit.ordinal, result, lines)
      yield* Effect.promise(() => fs.rm(localDir, { recursive: true, force: true }))
      yield* Effect.logInfo(`partition ${unit.key}: finished, ${counts.read} read, ${counts.written} written`)
      return result
    }).pipe(Effect.annotateLogs({ partition: unit.key }))
  )

/**
 * Sets a partition's state for a fresh start: nothing, or the incremental cursor its partition of
 * the previous run ended with (same source and same spec), saved as a finished run so the runner
 * starts a new run from it.
 */
const seed = (context: PartitionContext, unit: Unit, name: string) =>
  Effect.gen(function*() {
    const { pipeline, stateStore, store } = context
    yield* stateStore.reset(name)
    if (context.previousRun === null) return
    const before = yield* store.partition(context.previousRun, unit.key)
    if (Option.isNone(before) || before.value.source !== unit.source || JSON.stringify(before.value.spec) !== JSON.stringify(unit.spec)) return
    const previous = yield* stateStore.load(stateName(pipeline.name, context.previousRun, unit.key))
    const checkpoint = previous.sources[unit.source]?.checkpoint
    if (previous.run?.status !== "finished" || checkpoint?.kind !== "cursor") return
    yield* stateStore.save(name, {
      run: previous.run,
      sources: { [unit.source]: { checkpoint: { kind: checkpoint.kind, value: checkpoint.value }, done: true } },
      sinks: {},
      transforms: previous.transforms
    })
  })

/** The source plugin told which partition to read. */
const withPartition = (plugin: Source.SourcePlugin, unit: Unit): Source.SourcePlugin => ({
  ...plugin,
  make: (config, ctx) => plugin.make(config, { ...ctx, partition: unit.partitioned ? Option.some(unit.spec) : Option.none() })
})

/** The lines of a published dead-letter file (none when the run wrote none). */
const readLines = (file: string) =>
  Effect.promise(() =>
    fs.readFile(file, "utf8").then(
      (text) => text.split("\n").filter((l) => l.length > 0),
      () => [] as Array<string>
    )
  )

const safeSegment = (name: string): string => name.replace(/[^A-Za-z0-9_.-]/g, "_")

/**
 * Creates the tables of the direct sinks (makes each once, under the prefix's init lock), so the
 * partitions that start at once never race to create them (PostgreSQL refuses a second concurrent
 * CREATE with a duplicate key).
 */
export const prepareDirectSinks = (pipeline: Pipeline.Pipeline, store: ClusterStore, runId: string) =>
  withInitLock(
    store.db,
    store.prefix,
    Effect.forEach(pipeline.sinks.filter(isDirect), (s) =>
      Effect.scoped(
        s.plugin.make(s.config, {
          name: s.name,
          pipeline: `${pipeline.name}/${runId}/prepare`,
          runId,
          committed: Option.none(),
          incremental: Source.anyIncremental(pipeline.sources)
        })
      ), { discard: true })
  ).pipe(
    Effect.mapError((e) => ("_tag" in e && (e._tag === "SinkError" || e._tag === "ConfigError") ? e : new ConfigError({ message: `cannot prepare the sinks' tables: ${e.message}` })))
  )

/** The sinks a partition run stages for the finalize step. */
export const stagedSinks = (pipeline: Pipeline.Pipeline): ReadonlyArray<Pipeline.PipelineSink> => pipeline.sinks.filter((s) => !isDirect(s))
