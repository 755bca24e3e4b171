/**
 * What `effetl worker <pipeline.yaml>` and `effetl run <pipeline.yaml> --distributed` do with a
 * loaded pipeline: decode its `cluster:` section, then serve partitions (`Worker`) or plan the run
 * and wait for it (`Planner`). The CLI imports this package only when one of them runs, so a local
 * run never loads the engine.
 */
import { ConfigError, type Pipeline, type Reporter, type RunHistory, type Runner, type StateError } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as ClusterConfig from "./ClusterConfig.js"
import * as ClusterStore from "./ClusterStore.js"
import * as Planner from "./Planner.js"
import * as Worker from "./Worker.js"

/** `effetl worker`: serves the pipeline's partitions until stopped (SIGTERM / Ctrl-C hands its work back). */
export const worker = (
  pipeline: Pipeline.Pipeline,
  options: { readonly host?: string | undefined; readonly port?: number | undefined }
): Effect.Effect<never, ConfigError | StateError> =>
  Effect.gen(function*() {
    const config = yield* ClusterConfig.decode(pipeline.cluster)
    return yield* Worker.run(pipeline, config, {
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {})
    })
  })

/** `effetl run --distributed`: plans the run (or resumes the unfinished one) on the workers and waits for its summary. */
export const run = (
  pipeline: Pipeline.Pipeline,
  options: {
    readonly restart: boolean
    readonly fullRefresh: boolean
    readonly reporter?: Reporter.Reporter
    readonly dryRun?: boolean
    readonly limit?: number | undefined
  }
): Effect.Effect<Runner.RunSummary, ConfigError | StateError | Planner.DistributedRunFailed> =>
  Effect.gen(function*() {
    if (options.dryRun === true || options.limit !== undefined) {
      return yield* new ConfigError({
        message: `--distributed cannot be combined with ${options.dryRun === true ? "--dry-run" : "--limit"}: run the trial locally (without --distributed)`
      })
    }
    const config = yield* ClusterConfig.decode(pipeline.cluster)
    return yield* Planner.run(pipeline, config, {
      restart: options.restart,
      fullRefresh: options.fullRefresh,
      ...(options.reporter !== undefined ? { reporter: options.reporter } : {})
    })
  })

/**
 * `effetl runs`: the pipeline's distributed runs (newest first, at most `limit`) from the cluster
 * database its `cluster:` section names, without starting anything.
 */
export const history = (
  pipeline: string,
  section: unknown,
  limit: number
): Effect.Effect<{ readonly runs: ReadonlyArray<RunHistory.Listed>; readonly location: string }, ConfigError | StateError> =>
  Effect.flatMap(ClusterConfig.decode(section), (config) =>
    ClusterStore.history({ postgres: config.postgres, prefix: ClusterConfig.prefixOf(config, pipeline), pipeline, limit }))
