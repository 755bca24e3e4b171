/**
 * Runs a pipeline: merges the sources, applies the transforms, fans out to every sink and follows
 * the commit protocol, so a run killed at any moment and run again loses and duplicates nothing.
 *
 * Protocol, in order:
 * 1. A run has an id. If the pipeline's last run did not finish, this run resumes it (same id, the
 *    last saved checkpoints, each sink's last saved commit token) unless `restart` is set.
 * 2. Batches are written to every sink and rejected entries to the dead-letter output.
 * 3. Every `everyRecords` records (or `everySeconds`), every sink commits, then the state store saves
 *    the sources' checkpoints with the sinks' tokens and the transforms' persisted state. State
 *    never runs ahead of data. When the store offers a `transaction`, the sinks on its database
 *    (`TransactionalSink`) commit inside it, after the other sinks, together with the save.
 * 4. At the end: a final commit that marks every source done, then each sink publishes (`finish`),
 *    then the run is recorded as finished, then staging is removed.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { Batch, Checkpoint } from "./Batch.js"
import * as DeadLetterWriter from "./DeadLetterWriter.js"
import * as ApiClient from "./http/ApiClient.js"
import * as UndiciClient from "./http/UndiciClient.js"
import { ConfigError, type RunError, StateError } from "./Errors.js"
import * as JsonFileStateStore from "./JsonFileStateStore.js"
import type { Pipeline, PipelineStateStore } from "./Pipeline.js"
import { groupByProduct } from "./ProductGrouping.js"
import * as PathConflicts from "./PathConflicts.js"
import * as Reporter from "./Reporter.js"
import * as RunHistory from "./RunHistory.js"
import * as RunLock from "./RunLock.js"
import * as RunStats from "./RunStats.js"
import type { PluginServices } from "./Services.js"
import { type SinkInstance, trialPath } from "./Sink.js"
import { anyIncremental, type SourceInstance } from "./Source.js"
import { type PipelineState, sinkDatabase, type SourceState, StateStore } from "./StateStore.js"
import { accounted, type TransformInstance } from "./Transform.js"

/** How to run. */
export interface RunOptions {
  /** Validate the config and reach every source (one request each); write nothing. */
  readonly dryRun?: boolean
  /** Read at most this many records per source. A limited run is a trial: it writes output but saves no state. */
  readonly limit?: number
  /** Ignore saved cursors and transform state: read everything again. Discards an unfinished run. */
  readonly fullRefresh?: boolean
  /** Discard an unfinished run and start a new one (saved cursors are kept). */
  readonly restart?: boolean
  readonly reporter?: Reporter.Reporter
}

/** The per-source line of a summary. */
export interface SourceSummary {
  readonly name: string
  readonly use: string
  readonly counts: RunStats.SourceCounts
  /** Records transforms dropped, per reason (when any were). */
  readonly dropped?: RunStats.DropReasons
  readonly seconds: number
}

/** What a run did. */
export interface RunSummary {
  readonly pipeline: string
  readonly runId: string
  /** `finished`: a complete run; `dry-run`: nothing written; `trial`: a `limit` run (no state saved). */
  readonly status: "finished" | "dry-run" | "trial"
  readonly resumed: boolean
  readonly sources: ReadonlyArray<SourceSummary>
  /** Each sink, with the files and directories it wrote (its trial locations in a trial), when it says. */
  readonly sinks: ReadonlyArray<{ readonly name: string; readonly use: string; readonly outputs?: ReadonlyArray<string> }>
  readonly deadLetters: number
  readonly deadLetterPath: string
  readonly statePath: string
  readonly seconds: number
}

/** Runs a pipeline with the services in the context. */
export const run = (
  pipeline: Pipeline,
  options: RunOptions = {}
): Effect.Effect<RunSummary, RunError | ConfigError, StateStore | PluginServices> =>
  Effect.scoped(
    Effect.gen(function*() {
      const store = yield* StateStore
      const stats = yield* RunStats.RunStats
      const reporter = options.reporter ?? Reporter.silent
      const started = yield* Clock.currentTimeMillis
      // Two outputs on one path would overwrite each other: refuse before anything is touched
      // (the CLI checks this in validate too; a library caller gets the same check here).
      yield* PathConflicts.check(pipeline)
      // One run of a pipeline at a time (a dry run writes nothing and needs no lock).
      if (options.dryRun !== true) {
        yield* RunLock.acquire(pipeline.statePath, pipeline.name)
        if (store.lock !== undefined) yield* store.lock(pipeline.name)
      }
      const saved = yield* store.load(pipeline.name)
      const unfinished = saved.run !== null && saved.run.status !== "finished"
      const trial = options.limit !== undefined
      const dryRun = options.dryRun === true
      if (trial && unfinished && !options.restart && !options.fullRefresh) {
        return yield* new ConfigError({
          message: `pipeline '${pipeline.name}' has an unfinished run (${saved.run!.id}); a --limit trial would disturb it. Run it to the end first, or pass --restart to discard it.`
        })
      }
      const resumed = unfinished && !options.restart && !options.fullRefresh && !dryRun && !trial
      const runId = resumed ? saved.run!.id : newRunId(started)

      // What this run starts from.
      const startSources: Record<string, SourceState> = {}
      for (const s of pipeline.sources) {
        const prev = saved.sources[s.name]
        if (resumed) startSources[s.name] = prev ?? { checkpoint: null, done: false }
        else {
          const carry = prev?.checkpoint?.kind === "cursor" && !options.fullRefresh ? stripSpill(prev.checkpoint) : null
          startSources[s.name] = carry === null ? { checkpoint: null, done: false } : { checkpoint: carry, done: false, carried: true }
        }
      }
      // Whether this run started from cursors an earlier run carried over: reading nothing new then
      // means nothing changed upstream, and the outputs are left as they were.
      const fromCursor = resumed
        ? saved.run!.fromCursor === true
        : Object.values(startSources).some((s) => s.checkpoint?.kind === "cursor")
      const historyLimit = pipeline.history ?? RunHistory.defaultLimit
      // A new run that discards an unfinished one records it in the history as it ended.
      const { history } = resumed || dryRun || trial ? saved : RunHistory.discard(saved, historyLimit)
      let state: PipelineState = {
        ...(history !== undefined ? { history } : {}),
        run: resumed
          ? { ...saved.run!, status: "running" }
          : { id: runId, status: "running", startedAt: new Date(started).toISOString(), read: 0, fromCursor },
        sources: startSources,
        sinks: resumed ? saved.sinks : {},
        transforms: options.fullRefresh ? {} : saved.transforms,
        ...(resumed && saved.deadLetter !== undefined ? { deadLetter: saved.deadLetter } : {})
      }
      const persist = !dryRun && !trial
      const save = (next: PipelineState) =>
        persist ? store.save(pipeline.name, next).pipe(Effect.tap(() => Effect.sync(() => (state = next)))) : Effect.sync(() => (state = next))
      /** This attempt's entry in the run history, from its counters. */
      const historyEntry = (status: RunHistory.RunRecord["status"], error?: string) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          return {
            id: runId,
            status,
            startedAt: state.run!.startedAt,
            ...(status === "interrupted" ? {} : { endedAt: new Date(now).toISOString() }),
            seconds: (now - started) / 1000,
            attempts: 1,
            ...(error !== undefined ? { error } : {}),
            sources: RunHistory.sourcesOf(yield* stats.snapshot, yield* stats.dropReasons, pipeline.sources.map((s) => s.name))
          } satisfies RunHistory.RunRecord
        })
      const runDir = path.join(path.dirname(path.resolve(pipeline.statePath)), "runs", safeSegment(pipeline.name), runId)

      if (dryRun) return yield* dryRunAll(pipeline, stats, started, runId, store.location)

      if (persist) {
        if (!resumed) yield* removeDir(path.dirname(runDir), pipeline.name) // spill of this pipeline's discarded runs
        yield* save(state)
      }
      if (resumed) yield* Effect.logInfo(`resuming run ${runId} of pipeline '${pipeline.name}' (started ${saved.run!.startedAt})`)
      else if (saved.run !== null && saved.run.status === "finished") {
        const since = fromCursor ? "; incremental sources read what changed since" : ""
        yield* Effect.logInfo(
          `the last run ${saved.run.id} of pipeline '${pipeline.name}' finished at ${saved.run.finishedAt ?? "?"}: starting a new run ${runId}${since}`
        )
      } else yield* Effect.logInfo(`starting run ${runId} of pipeline '${pipeline.name}'`)
      const incremental = anyIncremental(pipeline.sources)

      // Make transforms, sinks and the dead-letter output.
      const transforms: Array<{ key: string; use: string; productScoped: boolean; instance: TransformInstance }> = []
      for (const t of pipeline.transforms) {
        const instance = yield* t.plugin.make(t.config, { key: t.key, state: Option.fromNullable(state.transforms[t.key]) })
        transforms.push({ key: t.key, use: t.plugin.name, productScoped: t.plugin.productScoped, instance })
      }
      const sinks: Array<{ name: string; instance: SinkInstance }> = []
      for (const s of pipeline.sinks) {
        const instance = yield* s.plugin.make(s.config, {
          name: s.name,
          pipeline: pipeline.name,
          runId,
          committed: Option.fromNullable(state.sinks[s.name]),
          incremental,
          trial
        })
        sinks.push({ name: s.name, instance })
      }
      // A trial writes every output to its trial location, the dead letters too.
      const deadLetterPath = trial ? trialPath(pipeline.deadLetterPath) : pipeline.deadLetterPath
      const deadLetters = yield* DeadLetterWriter.make({
        path: deadLetterPath,
        runId,
        committed: Option.fromNullable(state.deadLetter)
      })

      let readSinceCommit = 0
      // Records read per source and not yet added to `stats` (see the source streams' count).
      const unflushedRead = new Map<string, number>()
      const flushRead = Effect.suspend(() => {
        if (unflushedRead.size === 0) return Effect.void
        const entries = [...unflushedRead]
        unflushedRead.clear()
        return Effect.forEach(entries, ([name, n]) => stats.add(name, "read", n), { discard: true })
      })
      // One stream per source that is not done yet.
      const timing = new Map<string, { start: number; end?: number }>()
      const sourceStreams = pipeline.sources
        .filter((s) => !state.sources[s.name]!.done)
        .map((s) => {
          const resumeFrom = Option.fromNullable(state.sources[s.name]!.checkpoint)
          return Stream.unwrapScoped(
            Effect.gen(function*() {
              reporter.sourceStarted?.(s.name)
              timing.set(s.name, { start: yield* Clock.currentTimeMillis })
              const instance: SourceInstance = yield* s.plugin.make(s.config, {
                name: s.name,
                checkpoint: resumeFrom.pipe(Option.map(stripSpill)),
                // A cursor carried in from an earlier run, with no commit of this run yet, is not a resume position.
                resumed: resumed && state.sources[s.name]!.carried !== true,
                limit: Option.fromNullable(options.limit),
                partition: Option.none(),
                progress: {
                  total: (n) => Effect.sync(() => reporter.total?.(s.name, n)),
                  page: () => Effect.zipRight(stats.add(s.name, "pages"), Effect.sync(() => reporter.page?.(s.name)))
                }
              })
              let stream: Stream.Stream<Batch, RunError, PluginServices> = instance.stream
              if (options.limit !== undefined) stream = stream.pipe(limitRecords(options.limit))
              // Counted in a plain map, added to the run's stats by the writer (`flushRead`): an
              // effect per batch here (`Stream.tap`) kept records alive (see forEachPulled).
              stream = stream.pipe(
                Stream.map((b) => {
                  const n = b.records.length + b.rejected.length
                  readSinceCommit += n
                  unflushedRead.set(s.name, (unflushedRead.get(s.name) ?? 0) + n)
                  reporter.read?.(s.name, n)
                  return b
                })
              )
              let productComplete = instance.productComplete
              for (const t of transforms) {
                if (t.productScoped && !productComplete) {
                  stream = stream.pipe(
                    groupByProduct({ dir: path.join(runDir, "group", safeSegment(s.name)), maxBuffered: pipeline.maxBuffered, resume: resumeFrom })
                  )
                  productComplete = true
                }
                // Records it loses without counting them are counted as dropped by it, "no reason given".
                stream = stream.pipe(Stream.mapEffect(accounted(t.instance.apply, s.name, t.use)))
              }
              const complete = productComplete
              return stream.pipe(
                Stream.map((batch) => ({ source: s.name, batch, productComplete: complete })),
                // Only when the source was read to its end: not on a failure or an interrupt.
                Stream.concat(
                  Stream.execute(
                    Effect.gen(function*() {
                      const t = timing.get(s.name)
                      if (t) t.end = yield* Clock.currentTimeMillis
                      reporter.sourceFinished?.(s.name)
                    })
                  )
                )
              )
            })
          )
        })

      // The writer: fan out, count, commit on the interval. The interval counts records written and
      // records read (product grouping holds records back, but its spill checkpoints should still be saved).
      const pending = new Map<string, Checkpoint>()
      let sinceCommit = 0
      let lastCommit = yield* Clock.currentTimeMillis
      let deadLetterCount = 0
      // Sources with records written since their last checkpoint: committing now would commit data
      // that their saved checkpoint does not cover (e.g. product grouping's merge phase), so wait.
      const dirty = new Set<string>()

      // Sinks on the state store's database commit inside its transaction, with the state save.
      const transaction = persist ? store.transaction : undefined
      const joins = (s: { instance: SinkInstance }) => transaction !== undefined && sinkDatabase(s.instance) === transaction.database
      const ownSinks = sinks.filter((s) => !joins(s))
      const joinedSinks = sinks.filter(joins)

      const commit = (final: boolean) =>
        Effect.gen(function*() {
          const ownTokens = yield* Effect.forEach(ownSinks, (s) => s.instance.commit, { concurrency: "unbounded" })
          const dlToken = yield* deadLetters.commit
          const commitAndSave = Effect.gen(function*() {
            // One connection: the joined sinks commit one after the other.
            const joinedTokens = yield* Effect.forEach(joinedSinks, (s) => s.instance.commit)
            crashPoint("after-sink-commit")
            const snapshots: Record<string, unknown> = { ...state.transforms }
            for (const t of transforms) if (t.instance.persist) snapshots[t.key] = yield* t.instance.persist.snapshot
            const sources: Record<string, SourceState> = { ...state.sources }
            for (const s of pipeline.sources) {
              const cp = pending.get(s.name)
              const prev = sources[s.name]!
              sources[s.name] = cp === undefined
                ? { ...prev, done: final ? true : prev.done }
                : { checkpoint: cp, done: final ? true : prev.done }
            }
            const sinkTokens: Record<string, unknown> = { ...state.sinks }
            ownSinks.forEach((s, i) => (sinkTokens[s.name] = ownTokens[i]))
            joinedSinks.forEach((s, i) => (sinkTokens[s.name] = joinedTokens[i]))
            const run = { ...state.run!, read: (state.run!.read ?? 0) + readSinceCommit }
            const next: PipelineState = { ...state, run, sources, sinks: sinkTokens, transforms: snapshots, deadLetter: dlToken }
            if (persist) yield* store.save(pipeline.name, next)
            return next
          })
          // The in-memory state moves on only once the transaction (if any) has committed.
          state = transaction !== undefined && joinedSinks.length > 0 ? yield* transaction.run(commitAndSave) : yield* commitAndSave
          crashPoint("after-state-save")
          reporter.committed?.(sinceCommit)
          sinceCommit = 0
          readSinceCommit = 0
          lastCommit = yield* Clock.currentTimeMillis
        })

      // The batch leaves this generator's variables as soon as the sinks, the dead-letter output and
      // the transforms have had it: the closures made for the write hold these variables (see
      // forEachPulled for why that matters).
      const write = (arrived: { source: string; batch: Batch; productComplete: boolean }) => {
        let item: typeof arrived | undefined = arrived
        return Effect.gen(function*() {
          yield* flushRead
          const { source, productComplete } = item!
          let batch: Batch | undefined = item!.batch
          item = undefined
          const written = batch.records.length
          const rejected = batch.rejected.length
          const checkpoint = batch.checkpoint
          if (written > 0) {
            // One sink is written on this fiber: a fiber forked per sink (as for several, written
            // at once) kept the batch's records alive (see forEachPulled).
            yield* sinks.length === 1
              ? sinks[0]!.instance.write(batch.records, { productComplete })
              : Effect.forEach(sinks, (s) => s.instance.write(batch!.records, { productComplete }), {
                concurrency: "unbounded",
                discard: true
              })
            yield* stats.add(source, "written", written)
          }
          if (rejected > 0) {
            yield* deadLetters.write(batch.rejected, checkpoint)
            deadLetterCount += rejected
            // Counted per source, once per batch (not one effect per dead letter).
            const invalid = new Map<string, number>()
            for (const d of batch.rejected) invalid.set(d.source, (invalid.get(d.source) ?? 0) + 1)
            for (const [name, n] of invalid) yield* stats.add(name, "invalid", n)
          }
          for (const t of transforms) if (t.instance.persist) yield* t.instance.persist.written(batch)
          batch = undefined
          crashPoint("after-batch-write")
          if (Option.isSome(checkpoint)) {
            pending.set(source, checkpoint.value)
            dirty.delete(source)
          } else if (written + rejected > 0) dirty.add(source)
          sinceCommit += written + rejected
          const now = yield* Clock.currentTimeMillis
          const due =
            Math.max(sinceCommit, readSinceCommit) >= pipeline.everyRecords ||
            (pipeline.everySeconds !== undefined && now - lastCommit >= pipeline.everySeconds * 1000)
          if (due && dirty.size === 0) yield* commit(false)
        })
      }

      // The end of a failed or stopped run is recorded even when the run was interrupted (Ctrl-C).
      const stopped = yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          // One source needs no merge: its batches go straight to the sinks, none queued between.
          // Several are merged with at most two batches waiting (each source still reads ahead inside
          // its own stream): a longer queue only kept more records alive across collections, so they
          // aged into the old generation (16 queued batches: 48 MB of live heap instead of 37).
          const merged = sourceStreams.length === 1 ? sourceStreams[0]! : Stream.mergeAll(sourceStreams, { concurrency: "unbounded", bufferSize: 2 })
          const outcome = yield* Effect.exit(restore(forEachPulled(merged, write)))
          yield* flushRead
          if (Exit.isSuccess(outcome)) return Option.none()
          if (persist && !Cause.isInterruptedOnly(outcome.cause)) {
            const failure = Cause.failureOption(outcome.cause)
            const message = Option.match(failure, { onNone: () => Cause.pretty(outcome.cause), onSome: (e) => e.message })
            const failed = { ...state, run: { ...state.run!, status: "failed" as const, error: message } }
            yield* save(RunHistory.record(failed, yield* historyEntry("failed", message), historyLimit)).pipe(Effect.ignore)
          } else if (persist) {
            // Stopped (Ctrl-C): the run stays unfinished (the next run resumes it); its history entry keeps
            // what this attempt did. Added to the state as saved: a commit the stop cut short may have saved it.
            yield* Effect.gen(function*() {
              const entry = yield* historyEntry("interrupted")
              const saved = yield* store.load(pipeline.name)
              if (saved.run?.id === runId) yield* store.save(pipeline.name, RunHistory.record(saved, entry, historyLimit))
            }).pipe(Effect.ignore)
          }
          return Option.some(outcome.cause)
        })
      )
      if (Option.isSome(stopped)) {
        reporter.close?.()
        return yield* Effect.failCause(stopped.value)
      }

      // The end: final commit, publish, record the run as finished, clean up.
      yield* commit(true)
      // A run from carried cursors that read nothing: nothing changed upstream. Publishing would
      // replace each overwrite output with an empty one, so every output is left as it was.
      const nothingNew = fromCursor && (state.run!.read ?? 0) === 0 && persist
      if (nothingNew) {
        yield* Effect.logInfo(`nothing changed since the last run: every output was left as it was`)
      } else {
        yield* Effect.forEach(sinks, (s) => s.instance.finish, { concurrency: "unbounded", discard: true })
        yield* deadLetters.finish
      }
      crashPoint("after-finish")
      const finishedAt = yield* Clock.currentTimeMillis
      // The run's end and its history entry: one save.
      const finished = { ...state, run: { ...state.run!, status: "finished" as const, finishedAt: new Date(finishedAt).toISOString() } }
      yield* save(RunHistory.record(finished, yield* historyEntry("finished"), historyLimit))
      crashPoint("after-run-finished")
      yield* Effect.forEach(sinks, (s) => s.instance.cleanup, { discard: true })
      yield* deadLetters.cleanup
      yield* removeDir(runDir, pipeline.name)
      // and the pipeline's runs directory when no other run left anything in it
      yield* Effect.promise(() => fs.rmdir(path.dirname(runDir)).catch(() => undefined))
      crashPoint("after-cleanup")
      reporter.close?.()

      const counts = yield* stats.snapshot
      const reasons = yield* stats.dropReasons
      return {
        pipeline: pipeline.name,
        runId,
        status: trial ? "trial" : "finished",
        resumed,
        sources: pipeline.sources.map((s) => {
          const t = timing.get(s.name)
          return {
            name: s.name,
            use: s.plugin.name,
            counts: counts.get(s.name) ?? RunStats.emptyCounts(),
            ...(reasons.has(s.name) ? { dropped: reasons.get(s.name)! } : {}),
            seconds: t ? ((t.end ?? finishedAt) - t.start) / 1000 : 0
          }
        }),
        sinks: pipeline.sinks.map((s) => ({
          name: s.name,
          use: s.plugin.name,
          outputs: (s.plugin.outputs?.(s.config, { incremental, trial }) ?? []).map((o) => o.part === undefined ? o.path : `${o.path} (${o.part})`)
        })),
        deadLetters: deadLetterCount,
        deadLetterPath,
        statePath: store.location,
        seconds: (finishedAt - started) / 1000
      } satisfies RunSummary
    })
  ).pipe(
    RunStats.reporting(options.reporter?.counted),
    // Without a tracer installed, no HTTP client span is made: turned off once here for every request.
    ApiClient.withoutHttpSpans
  )

/** The services a run needs on Node besides the state store: HTTP (undici), the file system, paths and counters. */
export const platformLayer: Layer.Layer<PluginServices> = Layer.mergeAll(
  UndiciClient.layer,
  NodeFileSystem.layer,
  NodePath.layer,
  RunStats.layer
)

/** The services a run needs on Node: `platformLayer` and a JSON state file. */
export const nodeLayer = (statePath: string): Layer.Layer<StateStore | PluginServices> =>
  Layer.merge(platformLayer, JsonFileStateStore.layer(statePath))

/** The state store a pipeline names: its `stateStore` plugin (open for the layer's scope), or the JSON file at `statePath`. */
export const stateLayer = (
  pipeline: { readonly statePath: string; readonly stateStore?: PipelineStateStore | undefined }
): Layer.Layer<StateStore, StateError | ConfigError, PluginServices> =>
  pipeline.stateStore !== undefined
    ? Layer.scoped(StateStore, pipeline.stateStore.plugin.make(pipeline.stateStore.config))
    : JsonFileStateStore.layer(pipeline.statePath)

/** The services a run of this pipeline needs on Node: `platformLayer` and the state store it names. */
export const nodeLayerFor = (
  pipeline: { readonly statePath: string; readonly stateStore?: PipelineStateStore | undefined }
): Layer.Layer<StateStore | PluginServices, StateError | ConfigError> => stateLayer(pipeline).pipe(Layer.provideMerge(platformLayer))

/** Runs a pipeline on Node with the state store it names (by default a JSON state file at `pipeline.statePath`). */
export const runNode = (pipeline: Pipeline, options: RunOptions = {}): Effect.Effect<RunSummary, RunError | ConfigError> =>
  run(pipeline, options).pipe(Effect.provide(nodeLayerFor(pipeline)))

// --- helpers ---------------------------------------------------------------------------------

const dryRunAll = (
  pipeline: Pipeline,
  stats: RunStats.RunStats["Type"],
  started: number,
  runId: string,
  statePath: string
) =>
  Effect.gen(function*() {
    for (const s of pipeline.sources) {
      const instance = yield* s.plugin.make(s.config, {
        name: s.name,
        checkpoint: Option.none(),
        resumed: false,
        limit: Option.none(),
        partition: Option.none(),
        progress: { total: () => Effect.void, page: () => Effect.void }
      })
      yield* instance.check
      yield* Effect.logInfo(`source '${s.name}' (${s.plugin.name}) answered`)
    }
    const counts = yield* stats.snapshot
    const now = yield* Clock.currentTimeMillis
    return {
      pipeline: pipeline.name,
      runId,
      status: "dry-run",
      resumed: false,
      sources: pipeline.sources.map((s) => ({
        name: s.name,
        use: s.plugin.name,
        counts: counts.get(s.name) ?? RunStats.emptyCounts(),
        seconds: 0
      })),
      sinks: pipeline.sinks.map((s) => ({ name: s.name, use: s.plugin.name })),
      deadLetters: 0,
      deadLetterPath: pipeline.deadLetterPath,
      statePath,
      seconds: (now - started) / 1000
    } satisfies RunSummary
  })

/**
 * `Stream.runForEach(stream, f)`, done by pulling the stream's chunks (`Stream.toPull`) and running
 * `f` for each element in turn, holding each chunk only until `f` is done with it.
 *
 * Why not `runForEach`: a batch's records must be garbage once written. Whatever Effect builds
 * around them (a sink's fibers, a `Stream.tap`'s effect, `runForEach`'s sink, the closures of a
 * write) and still reaches them once they are written kept them alive through young-generation
 * collections until V8 promoted them, although a heap snapshot never found more than the batch
 * being written alive. In a list run (79,017 images, csv) every record was promoted (40 MB of
 * the 88 MB promoted; the anchor loop promotes 28 MB in all), and the collector took a quarter of
 * the CPU. With this loop, the read count in a plain `Stream.map`, one sink written on the writer's
 * own fiber, the writer dropping its batch once written and the file sinks dropping the records
 * once encoded, 0.6 MB of records are promoted, and the run's CPU fell from 1.59 to 1.38 times the
 * anchor's.
 */
const forEachPulled = <A, E, R, E2, R2>(
  stream: Stream.Stream<A, E, R>,
  f: (a: A) => Effect.Effect<void, E2, R2>
): Effect.Effect<void, E | E2, R | R2> =>
  Effect.scoped(Effect.flatMap(Stream.toPull(stream), (pull) => {
    let done = false
    return Effect.whileLoop({
      while: () => !done,
      body: () =>
        Effect.matchEffect(pull, {
          onFailure: Option.match({
            onNone: () => Effect.sync(() => {
              done = true
            }),
            onSome: (e: E) => Effect.fail(e)
          }),
          onSuccess: (chunk) => {
            // By index over a copy that is dropped once done: nothing made for the loop keeps
            // the chunk (and its records) once `f` has finished with them.
            let items: Array<A> | undefined = Chunk.toArray(chunk)
            let i = 0
            return Effect.whileLoop({
              while: () => items !== undefined,
              body: () => f(items![i]!),
              step: () => {
                if (++i >= items!.length) items = undefined
              }
            })
          }
        }),
      step: () => {}
    })
  }))

/** Cuts a source's stream after `limit` records (the cut batch keeps no checkpoint). */
const limitRecords = (limit: number) => <E, R>(self: Stream.Stream<Batch, E, R>): Stream.Stream<Batch, E, R> =>
  self.pipe(
    Stream.mapAccum(0, (seen, batch): [number, Option.Option<Batch>] => {
      if (seen >= limit) return [seen, Option.none()]
      const room = limit - seen
      if (batch.records.length <= room) return [seen + batch.records.length, Option.some(batch)]
      return [limit, Option.some({ ...batch, records: Chunk.take(batch.records, room), checkpoint: Option.none() })]
    }),
    Stream.takeWhile(Option.isSome),
    Stream.map((o) => o.value)
  )

const stripSpill = (cp: Checkpoint): Checkpoint => ({ kind: cp.kind, value: cp.value })

const newRunId = (now: number): string =>
  `${new Date(now).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${Math.random().toString(36).slice(2, 8)}`

const safeSegment = (name: string): string => name.replace(/[^A-Za-z0-9_.-]/g, "_")

const removeDir = (dir: string, pipeline: string) =>
  Effect.tryPromise({
    try: () => fs.rm(dir, { recursive: true, force: true }),
    catch: (e) => new StateError({ message: `pipeline '${pipeline}': could not remove staging directory ${dir}: ${String(e)}`, path: dir })
  })

const crashCounts = new Map<string, number>()
/**
 * Fault injection for crash-safety tests: `EFFETL_CRASH_AT=<point>[:<n>]` SIGKILLs this process the
 * n-th time it reaches that point (`after-batch-write`, `after-sink-commit`, `after-state-save`,
 * `after-finish`, `after-run-finished`, `after-cleanup`). Never set it in production.
 */
const crashPoint = (point: string): void => {
  const spec = process.env.EFFETL_CRASH_AT
  if (!spec) return
  const n = (crashCounts.get(point) ?? 0) + 1
  crashCounts.set(point, n)
  for (const item of spec.split(",")) {
    const [p, k] = item.split(":")
    if (p === point && n === Number(k ?? "1")) process.kill(process.pid, "SIGKILL")
  }
}
