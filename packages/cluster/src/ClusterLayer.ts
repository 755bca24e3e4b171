/**
 * The engine a worker or a planner joins: `@effect/cluster` runners talking over sockets
 * (`NodeClusterSocket`), with the message and runner storage in PostgreSQL (`SqlMessageStorage`,
 * `SqlRunnerStorage`, tables `<prefix>_*`), and `@effect/workflow` on top (`ClusterWorkflowEngine`).
 * A worker is a full runner (it listens and holds shards); the planner is a client only.
 */
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as PgClient from "@effect/sql-pg/PgClient"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { StateError } from "@effetl/core"
import { SqlDatabase } from "@effetl/sink-sql"
import * as ClusterConfig from "./ClusterConfig.js"
import { withAdvisoryLock } from "./ClusterStore.js"

/** Where this process is in the cluster. */
export interface Membership {
  /** A planner only sends work and waits for results; a worker also runs it. */
  readonly clientOnly: boolean
  /** The address the others reach this worker at (workers only). */
  readonly host?: string
  readonly port?: number
}

/** The sharding settings from the `cluster:` section. */
export const shardingConfig = (config: ClusterConfig.ClusterConfig, membership: Membership): Partial<ShardingConfig.ShardingConfig["Type"]> => {
  const expiration = ClusterConfig.shardLockExpiration(config)
  const host = membership.host ?? config.host
  const port = membership.clientOnly ? 0 : (membership.port ?? config.port)
  return {
    runnerAddress: Option.some(RunnerAddress.RunnerAddress.make({ host, port })),
    runnerListenAddress: config.listenHost !== undefined && !membership.clientOnly
      ? Option.some(RunnerAddress.RunnerAddress.make({ host: config.listenHost, port }))
      : Option.none(),
    shardsPerGroup: config.shardsPerGroup,
    // Shard locks as rows of `<prefix>_locks`, not advisory locks: the engine numbers its advisory
    // locks by shard alone, so two pipelines (two prefixes) on one database would take each other's
    // shards. A dead worker's shards then move once its locks expire (`shardLockExpiration`).
    shardLockDisableAdvisory: true,
    shardLockExpiration: expiration,
    // Refreshed three times per expiration, so one slow refresh never loses the shards.
    shardLockRefreshInterval: Duration.max(Duration.millis(500), Duration.unsafeDivide(expiration, 3)),
    // Work left by a dead worker is looked for this often by the one that takes its shards.
    entityMessagePollInterval: Duration.seconds(2),
    // A partition can run for hours; its workflow entity waits on it, never idle.
    entityMaxIdleTime: Duration.minutes(5),
    // Every partition that finishes tells its run: a run of many partitions gets as many messages.
    entityMailboxCapacity: "unbounded"
  }
}

/** The workflow engine on the cluster, for a worker or a planner (the layer's scope holds the membership). */
export const layer = (
  config: ClusterConfig.ClusterConfig,
  prefix: string,
  membership: Membership
): Layer.Layer<WorkflowEngine, StateError> => {
  const sharding = shardingConfig(config, membership)
  const target = SqlDatabase.postgresTarget(config.postgres)
  const storage = oneAtATime(prefix, Layer.mergeAll(SqlMessageStorage.layerWith({ prefix }), SqlRunnerStorage.layerWith({ prefix })))
  const cluster = NodeClusterSocket.layer({ clientOnly: membership.clientOnly, storage: "byo", shardingConfig: sharding }).pipe(
    Layer.provideMerge(storage),
    Layer.provide(ShardingConfig.layer(sharding))
  )
  return ClusterWorkflowEngine.layer.pipe(
    Layer.provide(cluster),
    Layer.provide(PgClient.layer({ url: config.postgres, applicationName: "effetl-cluster" })),
    Layer.mapError((e) =>
      new StateError({
        message: `cluster: cannot join the cluster at ${SqlDatabase.locationOf(target)}${membership.clientOnly ? "" : ` as ${sharding.runnerAddress?.pipe(Option.map((a) => `${a.host}:${a.port}`), Option.getOrElse(() => "?"))}`}: ${SqlDatabase.describe(target, e)}`,
        path: SqlDatabase.locationOf(target)
      })
    )
  )
}

/**
 * Builds the engine's storage (whose layers create the `<prefix>_*` tables on first use) while
 * holding a PostgreSQL advisory lock of the prefix: two workers starting together on a new prefix
 * otherwise race on `CREATE TABLE` ("type <prefix>_locks already exists") and one of them dies.
 */
const oneAtATime = <ROut, E, RIn>(prefix: string, layer: Layer.Layer<ROut, E, RIn>): Layer.Layer<ROut, E | unknown, RIn | SqlClient.SqlClient> =>
  Layer.scopedContext(
    Effect.flatMap(SqlClient.SqlClient, (sql) => withAdvisoryLock(sql, `effetl-cluster:${prefix}:engine`, Layer.build(layer)))
  )
