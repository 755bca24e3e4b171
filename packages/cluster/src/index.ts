/**
 * @effetl/cluster: one pipeline run split into partitions across machines, run as durable
 * workflows on `@effect/cluster` and `@effect/workflow`, with PostgreSQL as the shared storage.
 */
export * as ClusterConfig from "./ClusterConfig.js"
export * as ClusterLayer from "./ClusterLayer.js"
export * as ClusterStore from "./ClusterStore.js"
export * as Distributed from "./Distributed.js"
export * as Finalize from "./Finalize.js"
export * as Fingerprint from "./Fingerprint.js"
export * as PartitionRun from "./PartitionRun.js"
export * as Plan from "./Plan.js"
export * as Planner from "./Planner.js"
export * as SharedDedupe from "./SharedDedupe.js"
export * as SharedRateLimit from "./SharedRateLimit.js"
export * as Staging from "./Staging.js"
export * as Worker from "./Worker.js"
export * as Workflows from "./Workflows.js"
