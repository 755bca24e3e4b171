/**
 * The pipeline file's `cluster:` section: where the workers of a distributed run coordinate
 * (PostgreSQL, and Redis for a shared rate budget), how they reach each other, and how fast a
 * dead worker's partitions move elsewhere. Decoded with the same config helpers as every plugin, so
 * errors name the path (`cluster.shardLockExpiration: ...`).
 */
import { Config, ConfigError, Http, Pipeline } from "@effetl/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/** The default port a worker listens on for the other workers. */
export const defaultPort = 34431

/** The `cluster:` section of a pipeline file. */
export const ClusterConfig = Schema.Struct({
  postgres: Config.secret({
    description:
      "The PostgreSQL URL every worker and the planner share: the engine's tables (messages, replies, runners, shard locks), " +
      "each partition's state, the staged records of file sinks and the run's bookkeeping. Use ${PG_URL}.",
    examples: ["${PG_URL}"]
  }),
  redis: Config.optional(Schema.Redacted(Schema.String), {
    description:
      "A Redis URL (redis://host:6379/0): requests to one vendor credential then share one rate budget across every worker. " +
      "Leave it out to keep each worker's in-process limiter (the budget is then per worker).",
    examples: ["${REDIS_URL}"]
  }),
  prefix: Config.optional(
    Schema.String.pipe(
      Schema.pattern(/^[a-z_][a-z0-9_]{0,39}$/),
      Schema.annotations({ message: () => ({ message: "expected a lowercase SQL name prefix: a-z, 0-9 and _, at most 40 characters", override: true }) })
    ),
    {
      description:
        "The prefix of every table of the distributed run (`<prefix>_messages`, `<prefix>_runs`, ...). Default `effetl_<pipeline name>`: " +
        "each pipeline gets its own tables, so workers of two pipelines never take each other's work.",
      examples: ["effetl_demo"]
    }
  ),
  host: Config.withDefault(Schema.String.pipe(Schema.minLength(1)), "127.0.0.1", {
    description: "The address the other workers reach this worker at (`effetl worker --host` overrides it). On Kubernetes: the pod IP.",
    examples: ["127.0.0.1", "${POD_IP}"]
  }),
  port: Config.withDefault(Config.intRange(1, 65535), defaultPort, {
    description: "The port this worker listens on for the other workers (`effetl worker --port` overrides it).",
    examples: [defaultPort]
  }),
  listenHost: Config.optional(Schema.String.pipe(Schema.minLength(1)), {
    description: "The address to listen on, when it is not `host` (e.g. 0.0.0.0 in a container).",
    examples: ["0.0.0.0"]
  }),
  shardLockExpiration: Config.withDefault(Http.HttpConfig.DurationString, "35 seconds", {
    description:
      "How long a worker's hold on its shards lasts without a refresh: a killed worker's partitions move to the others about this " +
      "long after it died (sooner when its database connection is seen to close). Shorter means faster failover and more lock traffic.",
    examples: ["35 seconds", "5 seconds"]
  }),
  partitionsPerWorker: Config.withDefault(Config.intRange(1, 64), 2, {
    description:
      "Partitions one worker runs at once (the others placed on it wait). Each is an ordinary run with its own source concurrency.",
    examples: [2, 1]
  }),
  shardsPerGroup: Config.withDefault(Config.intRange(1, 10_000), 300, {
    description: "How many shards the workflows are spread over. Every worker of a pipeline must use the same value.",
    examples: [300]
  })
}).annotations({ title: "cluster" })
export type ClusterConfig = typeof ClusterConfig.Type

/** Decodes a raw `cluster:` section (as the pipeline file gave it, interpolated). */
export const decode = (raw: unknown, where = "cluster"): Effect.Effect<ClusterConfig, ConfigError> =>
  raw === undefined || raw === null
    ? Effect.fail(
      new ConfigError({
        message: `${where}: a distributed run needs a cluster section, e.g. cluster: { postgres: \${PG_URL} } (see the @effetl/cluster README)`,
        path: where
      })
    )
    : Pipeline.decodeConfig(ClusterConfig, raw, where)

/** The table prefix of a pipeline's distributed runs. */
export const prefixOf = (config: ClusterConfig, pipeline: string): string =>
  config.prefix ?? `effetl_${pipeline.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`.slice(0, 40)

/** The shard lock expiration as a duration. */
export const shardLockExpiration = (config: ClusterConfig): Duration.Duration => Http.HttpConfig.toDuration(config.shardLockExpiration)

/** A config made in code (tests, library use): `postgres` as a plain URL, the rest defaulted. */
export const make = (
  fields: Partial<Omit<ClusterConfig, "postgres" | "redis">> & { readonly postgres: string; readonly redis?: string }
): ClusterConfig => {
  const { postgres, redis, ...rest } = fields
  return {
    host: "127.0.0.1",
    port: defaultPort,
    shardLockExpiration: "35 seconds",
    partitionsPerWorker: 2,
    shardsPerGroup: 300,
    ...rest,
    postgres: Redacted.make(postgres),
    ...(redis !== undefined ? { redis: Redacted.make(redis) } : {})
  }
}
