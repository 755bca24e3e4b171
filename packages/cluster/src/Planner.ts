/**
 * The planner: `effetl run <pipeline.yaml> --distributed`. It picks the run (a new one, or the
 * pipeline's unfinished run, which it resumes), starts its `Run` workflow on the workers, reports
 * the partitions as they finish, and returns the same summary as a local run.
 *
 * The planner holds nothing the run needs: the run lives in the engine's tables. A planner killed
 * at any moment leaves the run going on the workers; the next `--distributed` finds the unfinished
 * run and waits for it again (or, when it failed, starts its next attempt, which re-runs only the
 * partitions that did not finish).
 */
import { ConfigError, type Pipeline, Reporter, RunStats, type Runner, type StateError } from "@effetl/core"
import { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as ClusterConfig from "./ClusterConfig.js"
import * as ClusterLayer from "./ClusterLayer.js"
import * as ClusterStore from "./ClusterStore.js"
import * as Fingerprint from "./Fingerprint.js"
import { PartitionResult } from "./PartitionRun.js"
import { executionIdOf, Run } from "./Workflows.js"

/** How to run distributed. */
export interface DistributedOptions {
  /** Discard the pipeline's unfinished run and start a new one. */
  readonly restart?: boolean
  /** Start a new run that carries no incremental cursor over (discards an unfinished run). */
  readonly fullRefresh?: boolean
  readonly reporter?: Reporter.Reporter
  /** How often the planner looks at the partitions for progress (default 1 second). */
  readonly pollInterval?: Duration.DurationInput
}

/** A distributed run that ended with failed partitions (the next `--distributed` resumes it). */
export class DistributedRunFailed extends Schema.TaggedError<DistributedRunFailed>()("DistributedRunFailed", {
  message: Schema.String,
  runId: Schema.String
}) {}

/** Runs a pipeline on the cluster's workers and waits for the end; the summary of a local run. */
export const run = (
  pipeline: Pipeline.Pipeline,
  config: ClusterConfig.ClusterConfig,
  options: DistributedOptions = {}
): Effect.Effect<Runner.RunSummary, DistributedRunFailed | StateError | ConfigError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const reporter = options.reporter ?? Reporter.silent
      const started = yield* Clock.currentTimeMillis
      const prefix = ClusterConfig.prefixOf(config, pipeline.name)
      const store = yield* ClusterStore.make({ postgres: config.postgres, prefix })
      const fingerprint = Fingerprint.of(pipeline)

      // Which run: the unfinished one (resumed) unless told otherwise, else a new one.
      const latest = yield* store.latestRun(pipeline.name)
      const unfinished = Option.filter(latest, (r) => r.status === "running" || r.status === "failed")
      let resumed = false
      let runId: string
      let attempt = 1
      let previousRun: string | null = null
      let fullRefresh = options.fullRefresh === true
      if (Option.isSome(unfinished) && !options.restart && !options.fullRefresh) {
        const r = unfinished.value
        if (r.fingerprint !== fingerprint) {
          return yield* new ConfigError({
            message: `pipeline '${pipeline.name}' has an unfinished distributed run (${r.runId}) planned with another version of the pipeline file ` +
              "(sources, transforms or sinks changed). Run it to the end with its old file, or pass --restart to discard it."
          })
        }
        resumed = true
        runId = r.runId
        previousRun = r.previousRun
        fullRefresh = r.fullRefresh
        attempt = r.attempt
        if (r.status === "failed") {
          attempt = r.attempt + 1
          yield* store.startAttempt(runId, attempt)
        }
        yield* Effect.logInfo(`resuming distributed run ${runId} of pipeline '${pipeline.name}' (attempt ${attempt})`)
      } else {
        if (Option.isSome(unfinished)) {
          const old = unfinished.value
          yield* store.discardRun(old.runId)
          // Stop its workflow if workers still run it (its activities also refuse to go on, see Worker).
          yield* Effect.flatMap(WorkflowEngine, (engine) => engine.interrupt(Run, executionIdOf(old.runId, old.attempt))).pipe(
            Effect.provide(ClusterLayer.layer(config, prefix, { clientOnly: true })),
            Effect.timeout(Duration.seconds(30)),
            Effect.ignore
          )
          yield* Effect.logInfo(`discarded the unfinished run ${old.runId}`)
        }
        runId = newRunId(started)
        if (!options.fullRefresh) previousRun = Option.getOrNull(Option.map(yield* store.lastFinishedRun(pipeline.name), (r) => r.runId))
        yield* store.insertRun({
          runId,
          pipeline: pipeline.name,
          status: "running",
          attempt,
          fullRefresh: options.fullRefresh === true,
          previousRun,
          fingerprint,
          startedAt: new Date(started),
          error: null
        })
        yield* Effect.logInfo(`starting distributed run ${runId} of pipeline '${pipeline.name}'`)
      }

      for (const s of pipeline.sources) reporter.sourceStarted?.(s.name)
      const seen = new Set<string>()
      const progress = yield* Effect.forkScoped(watch(store, runId, reporter, seen, options.pollInterval ?? Duration.seconds(1)))
      const executionId = executionIdOf(runId, attempt)
      const result = yield* Effect.flatMap(WorkflowEngine, (engine) =>
        engine.execute(Run, {
          executionId,
          payload: { pipeline: pipeline.name, runId, attempt, fingerprint, previousRun, fullRefresh }
        })).pipe(Effect.provide(ClusterLayer.layer(config, prefix, { clientOnly: true })))
      yield* Fiber.interrupt(progress)
      yield* reportFinished(store, runId, reporter, seen).pipe(Effect.ignore)
      for (const s of pipeline.sources) reporter.sourceFinished?.(s.name)
      reporter.close?.()
      if (result.status === "failed") {
        const first = result.failures.slice(0, 3).map((f) => `partition ${f.key}: ${f.message}`).join("; ")
        return yield* new DistributedRunFailed({
          runId,
          message: `distributed run ${runId} failed: ${first}${result.failures.length > 3 ? ` (and ${result.failures.length - 3} more)` : ""}. ` +
            `The partitions that finished are kept: run it again with --distributed to resume (--restart discards it).`
        })
      }
      const finished = yield* Clock.currentTimeMillis
      const bySource = new Map(result.sources.map((s) => [s.name, s]))
      return {
        pipeline: pipeline.name,
        runId,
        status: "finished",
        resumed,
        sources: pipeline.sources.map((s) => ({
          name: s.name,
          use: s.plugin.name,
          counts: bySource.get(s.name)?.counts ?? RunStats.emptyCounts(),
          seconds: bySource.get(s.name)?.seconds ?? 0
        })),
        sinks: pipeline.sinks.map((s) => ({ name: s.name, use: s.plugin.name })),
        deadLetters: result.deadLetters,
        deadLetterPath: pipeline.deadLetterPath,
        statePath: `${store.db.location} (tables ${prefix}_*)`,
        seconds: (finished - started) / 1000
      } satisfies Runner.RunSummary
    })
  )

/** Reports progress: each finished partition's records as read, and a hint when no worker takes the run. */
const watch = (
  store: ClusterStore.ClusterStore,
  runId: string,
  reporter: Reporter.Reporter,
  seen: Set<string>,
  interval: Duration.DurationInput
) =>
  Effect.gen(function*() {
    let waited = 0
    let hinted = false
    for (;;) {
      yield* Effect.sleep(interval)
      waited += Duration.toMillis(interval)
      const n = yield* reportFinished(store, runId, reporter, seen).pipe(Effect.orElseSucceed(() => 0))
      if (!hinted && waited >= 15_000 && n === 0) {
        const run = yield* store.run(runId).pipe(Effect.option, Effect.map(Option.flatten))
        if (Option.isSome(run) && run.value.planned === null) {
          hinted = true
          yield* Effect.logWarning("no worker has taken the run yet: are workers of this pipeline running ('effetl worker <pipeline.yaml>')?")
        }
      }
    }
  })

/** Reports the partitions that finished since the last look; returns how many partitions have started. */
const reportFinished = (store: ClusterStore.ClusterStore, runId: string, reporter: Reporter.Reporter, seen: Set<string>) =>
  Effect.gen(function*() {
    const rows = yield* store.partitions(runId)
    const planned = Option.flatMap(yield* store.run(runId), (r) => Option.fromNullable(r.planned))
    for (const row of rows) {
      if (row.status !== "finished" || seen.has(row.key)) continue
      seen.add(row.key)
      const result = Schema.decodeUnknownOption(PartitionResult)(row.result)
      if (Option.isNone(result)) continue
      reporter.read?.(row.source, result.value.counts.read)
      yield* Effect.logInfo(
        `partition ${row.key} finished: ${result.value.counts.read} read, ${result.value.counts.written} written` +
          Option.match(planned, { onNone: () => "", onSome: (n) => ` (${seen.size}/${n})` })
      )
    }
    return rows.length
  })

const newRunId = (now: number): string =>
  `${new Date(now).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${Math.random().toString(36).slice(2, 8)}`
