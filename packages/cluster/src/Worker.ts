/**
 * A worker: a cluster runner that executes the `Run` and `Partition` workflows of one pipeline
 * (`effetl worker <pipeline.yaml>`). It loads nothing itself: it gets the pipeline as loaded from the
 * worker's own copy of the file, and refuses work planned from a different definition.
 *
 * At most `partitionsPerWorker` partitions run at once on one worker; the engine spreads partitions
 * over workers by shard. A worker that dies (SIGKILL, lost machine) loses its shards after about
 * `shardLockExpiration`; another worker then re-runs the workflows it held, and each partition
 * resumes from its last committed checkpoint.
 */
import { ConfigError, Http, type Pipeline, type PluginServices, Runner, RunStats, StateError, type StateStore } from "@effetl/core"
import * as RateLimiter from "@effect/experimental/RateLimiter"
import { SqlDatabase, SqlStateStore } from "@effetl/sink-sql"
import * as Activity from "@effect/workflow/Activity"
import { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as ClusterConfig from "./ClusterConfig.js"
import * as ClusterLayer from "./ClusterLayer.js"
import * as ClusterStore from "./ClusterStore.js"
import * as Finalize from "./Finalize.js"
import * as Fingerprint from "./Fingerprint.js"
import * as PartitionRun from "./PartitionRun.js"
import * as Plan from "./Plan.js"
import * as SharedRateLimit from "./SharedRateLimit.js"
import { Partition, PartitionFailed, Run, type RunResult } from "./Workflows.js"

/** What a worker's workflow handlers use. */
export class WorkerContext extends Context.Tag("@effetl/cluster/WorkerContext")<
  WorkerContext,
  {
    readonly pipeline: Pipeline.Pipeline
    readonly fingerprint: string
    readonly store: ClusterStore.ClusterStore
    readonly stateStore: StateStore.StateStore["Type"]
    /** At most `partitionsPerWorker` partitions at once. */
    readonly slots: Effect.Semaphore
  }
>() {}

/** Where the worker joins the cluster: `--host` / `--port` override the `cluster:` section. */
export interface WorkerOptions {
  readonly host?: string
  readonly port?: number
}

/** The worker's context for the scope: the bookkeeping tables and the partitions' state store. */
export const context = (pipeline: Pipeline.Pipeline, config: ClusterConfig.ClusterConfig): Layer.Layer<WorkerContext, StateError> =>
  Layer.scoped(
    WorkerContext,
    Effect.gen(function*() {
      const prefix = ClusterConfig.prefixOf(config, pipeline.name)
      const store = yield* ClusterStore.make({ postgres: config.postgres, prefix })
      // Its table is created (once) under the prefix's init lock, like the bookkeeping tables.
      const stateStore = yield* ClusterStore.withInitLock(
        store.db,
        prefix,
        SqlStateStore.make({ target: SqlDatabase.postgresTarget(config.postgres), table: ClusterStore.tables(prefix).state })
      ).pipe(Effect.mapError((e) => (e instanceof StateError ? e : new StateError({ message: `cluster: cannot take the init lock: ${e.message}` }))))
      return {
        pipeline,
        fingerprint: Fingerprint.of(pipeline),
        store,
        stateStore,
        slots: yield* Effect.makeSemaphore(config.partitionsPerWorker)
      }
    })
  )

/** The handlers of the `Run` and `Partition` workflows. */
export const workflows: Layer.Layer<never, never, WorkflowEngine | WorkerContext | PluginServices> = Layer.mergeAll(
  Run.toLayer((payload, executionId) =>
    Effect.gen(function*() {
      const engine = yield* WorkflowEngine
      const planned = yield* Activity.make({
        name: "plan",
        success: Schema.Array(Plan.Unit),
        error: PartitionFailed,
        execute: guard("plan", payload, (ctx) =>
          Effect.gen(function*() {
            const units = yield* Effect.scoped(Plan.plan(ctx.pipeline))
            yield* PartitionRun.prepareDirectSinks(ctx.pipeline, ctx.store, payload.runId)
            yield* ctx.store.setPlanned(payload.runId, units.length)
            yield* Effect.logInfo(`run ${payload.runId}: ${units.length} partition${units.length === 1 ? "" : "s"}`)
            return units
          }))
      }).pipe(Effect.either)
      if (Either.isLeft(planned)) return yield* fail(payload, [{ key: "plan", message: planned.left.message }], 0)
      const units = planned.right
      const outcomes = yield* Effect.forEach(
        units,
        (unit) =>
          engine.execute(Partition, { executionId: `${executionId}/${unit.key}`, payload: { ...payload, unit } }).pipe(Effect.either),
        { concurrency: "unbounded" }
      )
      const results = outcomes.flatMap((o) => (Either.isRight(o) ? [o.right] : []))
      const failures = outcomes.flatMap((o) => (Either.isLeft(o) ? [{ key: o.left.key, message: o.left.message }] : []))
      const result = summarize(units, results)
      if (failures.length > 0) return yield* fail(payload, failures, units.length)
      const finalized = yield* Activity.make({
        name: "finalize",
        error: PartitionFailed,
        execute: guard("finalize", payload, (ctx) =>
          Finalize.run({ pipeline: ctx.pipeline, store: ctx.store, stateStore: ctx.stateStore, runId: payload.runId }, result))
      }).pipe(Effect.either)
      if (Either.isLeft(finalized)) return yield* fail(payload, [{ key: "finalize", message: finalized.left.message }], units.length)
      return result
    })
  ),
  Partition.toLayer((payload) =>
    Activity.make({
      name: "run",
      success: PartitionRun.PartitionResult,
      error: PartitionFailed,
      execute: guard(payload.unit.key, payload, (ctx) =>
        ctx.slots.withPermits(1)(
          PartitionRun.run(
            {
              pipeline: ctx.pipeline,
              store: ctx.store,
              stateStore: ctx.stateStore,
              runId: payload.runId,
              previousRun: payload.previousRun,
              fullRefresh: payload.fullRefresh
            },
            payload.unit
          )
        ))
    })
  )
)

/**
 * The shared rate budget (`cluster.redis`), plugged into core's limiters through the
 * `Http.RateLimit.Backend` service: every limiter a source asks for by credential is then one
 * budget in Redis across the workers. Without `cluster.redis` each worker paces its own requests.
 */
export const rateLimitBackend = (config: ClusterConfig.ClusterConfig): Layer.Layer<Http.RateLimit.Backend> | Layer.Layer<never> => {
  if (config.redis === undefined) return Layer.empty
  return Layer.effect(
    Http.RateLimit.Backend,
    Effect.map(RateLimiter.RateLimiter, (limiter) => ({
      make: (key: string, policy: Http.RateLimit.Policy) =>
        SharedRateLimit.make(key, policy).pipe(Effect.provideService(RateLimiter.RateLimiter, limiter))
    }))
  ).pipe(Layer.provide(SharedRateLimit.layer(config.redis)))
}

/** The worker: its context, the workflows and the cluster membership, for the layer's lifetime. */
export const layer = (
  pipeline: Pipeline.Pipeline,
  config: ClusterConfig.ClusterConfig,
  options: WorkerOptions = {}
): Layer.Layer<never, StateError> =>
  // The tables first, then the cluster: a worker that cannot open its tables never joins (a runner
  // that held shards without serving them would stall every run).
  workflows.pipe(
    Layer.provide(
      ClusterLayer.layer(config, ClusterConfig.prefixOf(config, pipeline.name), {
        clientOnly: false,
        ...(options.host !== undefined ? { host: options.host } : {}),
        ...(options.port !== undefined ? { port: options.port } : {})
      })
    ),
    Layer.provide(Layer.mergeAll(context(pipeline, config), rateLimitBackend(config), Runner.platformLayer))
  )

/** Runs a worker until interrupted (SIGTERM / Ctrl-C): it then hands its shards back. */
export const run = (
  pipeline: Pipeline.Pipeline,
  config: ClusterConfig.ClusterConfig,
  options: WorkerOptions = {}
): Effect.Effect<never, StateError> =>
  Effect.gen(function*() {
    const host = options.host ?? config.host
    const port = options.port ?? config.port
    yield* Effect.logInfo(
      `worker of pipeline '${pipeline.name}' at ${host}:${port} (tables ${ClusterConfig.prefixOf(config, pipeline.name)}_*), up to ${config.partitionsPerWorker} partition${config.partitionsPerWorker === 1 ? "" : "s"} at once`
    )
    return yield* Layer.launch(layer(pipeline, config, options))
  })

// ---------------------------------------------------------------------------------------------

/** Records a failed attempt (so the next `--distributed` starts a new attempt) and returns its result. */
const fail = (
  payload: { readonly runId: string },
  failures: ReadonlyArray<{ readonly key: string; readonly message: string }>,
  partitions: number
) =>
  Effect.gen(function*() {
    const message = failures.slice(0, 3).map((f) => `${f.key}: ${f.message}`).join("; ") + (failures.length > 3 ? ` (and ${failures.length - 3} more)` : "")
    yield* Activity.make({
      name: "fail",
      execute: Effect.flatMap(WorkerContext, (ctx) => ctx.store.failRun(payload.runId, message)).pipe(Effect.orDie)
    })
    return { status: "failed", partitions, sources: [], deadLetters: 0, failures } satisfies RunResult as RunResult
  })

/**
 * An activity's body, checked against this worker's pipeline, with every failure turned into a
 * `PartitionFailed` carrying its message. An interruption (the worker stopping) stays one, so the
 * engine runs the activity again elsewhere.
 */
const guard = <A, E extends { readonly message: string }, R>(
  key: string,
  payload: { readonly pipeline: string; readonly fingerprint: string; readonly runId: string },
  body: (ctx: WorkerContext["Type"]) => Effect.Effect<A, E, R>
): Effect.Effect<A, PartitionFailed, R | WorkerContext> =>
  Effect.gen(function*() {
    const ctx = yield* WorkerContext
    if (payload.pipeline !== ctx.pipeline.name) {
      return yield* new ConfigError({
        message: `this worker runs pipeline '${ctx.pipeline.name}', not '${payload.pipeline}': give each pipeline its own cluster.prefix`
      })
    }
    const run = yield* ctx.store.run(payload.runId)
    if (Option.isSome(run) && run.value.status === "discarded") {
      return yield* new ConfigError({ message: `run ${payload.runId} was discarded (--restart): nothing more of it runs` })
    }
    if (payload.fingerprint !== ctx.fingerprint) {
      return yield* new ConfigError({
        message: "this worker's pipeline file differs from the one the run was planned with (sources, transforms or sinks); " +
          "give every worker and the planner the same file"
      })
    }
    return yield* body(ctx)
  }).pipe(
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.failCause(cause as Cause.Cause<never>)
        : Effect.fail(
          new PartitionFailed({
            key,
            message: Option.match(Cause.failureOption(cause), {
              onNone: () => `internal error: ${Cause.pretty(cause)}`,
              onSome: (e) => e.message
            })
          })
        )
    )
  )

/** The run's result from its partitions: counts per source, in the pipeline's source order. */
const summarize = (units: ReadonlyArray<Plan.Unit>, results: ReadonlyArray<PartitionRun.PartitionResult>): RunResult => {
  const sources: Array<string> = []
  for (const u of units) if (!sources.includes(u.source)) sources.push(u.source)
  return {
    status: "finished",
    partitions: units.length,
    sources: sources.map((name) => {
      const mine = results.filter((r) => r.source === name)
      const counts = RunStats.emptyCounts()
      for (const r of mine) for (const k of Object.keys(counts) as Array<keyof typeof counts>) counts[k] += r.counts[k]
      return { name, counts, seconds: Math.max(0, ...mine.map((r) => r.seconds)), partitions: units.filter((u) => u.source === name).length }
    }),
    deadLetters: results.reduce((n, r) => n + r.deadLetters, 0),
    failures: []
  }
}
