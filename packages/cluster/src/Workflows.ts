/**
 * The durable workflows of a distributed run, as the planner and the workers both know them
 * (`@effect/workflow` definitions; the workers register their handlers in `Worker`):
 *
 * - `Run`: one per run attempt, its execution id the run id (`<run id>~<attempt>` from the second
 *   attempt of a failed run on). Its activities: `plan` (the units of the pipeline), then one
 *   `Partition` child workflow per unit, all at once, then `finalize` (publish and record the run as
 *   finished), or `fail` (record the failed partitions) when some failed.
 * - `Partition`: one per unit of an attempt, execution id `<run execution id>/<partition key>`. Its
 *   one activity, `run`, runs the ordinary runner over the partition (`PartitionRun`).
 *
 * Payloads and results are small: the engine stores them.
 */
import * as Workflow from "@effect/workflow/Workflow"
import * as Schema from "effect/Schema"
import { Counts, PartitionResult } from "./PartitionRun.js"
import { Unit } from "./Plan.js"

/** What every activity of a run checks against its worker's pipeline. */
const RunFields = {
  /** The pipeline's name. */
  pipeline: Schema.String,
  runId: Schema.String,
  attempt: Schema.Int,
  /** The planner's pipeline fingerprint: a worker with another definition refuses the work. */
  fingerprint: Schema.String,
  /** The last finished run (its partitions' incremental cursors carry over), none on a full refresh. */
  previousRun: Schema.NullOr(Schema.String),
  /** A full refresh: no cursor carried over, and a global dedupe takes over earlier runs' claims. */
  fullRefresh: Schema.Boolean
}

/** A partition that failed: its key and why. */
export class PartitionFailed extends Schema.TaggedError<PartitionFailed>()("PartitionFailed", {
  key: Schema.String,
  message: Schema.String
}) {}

/** A source's line of the run's result. */
export const SourceResult = Schema.Struct({
  name: Schema.String,
  counts: Counts,
  /** The longest time one of its partitions took. */
  seconds: Schema.Number,
  partitions: Schema.Int
})

/** What a run attempt ends with. */
export const RunResult = Schema.Struct({
  status: Schema.Literal("finished", "failed"),
  partitions: Schema.Int,
  sources: Schema.Array(SourceResult),
  deadLetters: Schema.Int,
  /** Why the attempt failed: the failed partitions (or the plan, or finalize). */
  failures: Schema.Array(Schema.Struct({ key: Schema.String, message: Schema.String }))
})
export type RunResult = typeof RunResult.Type

/** One attempt of a distributed run. */
export const Run = Workflow.make({
  name: "effetl/Run",
  payload: RunFields,
  success: RunResult,
  idempotencyKey: (p) => executionIdOf(p.runId, p.attempt)
})

/** One partition of a run attempt. */
export const Partition = Workflow.make({
  name: "effetl/Partition",
  payload: { ...RunFields, unit: Unit },
  success: PartitionResult,
  error: PartitionFailed,
  idempotencyKey: (p) => `${executionIdOf(p.runId, p.attempt)}/${p.unit.key}`
})

/** The execution id of a run attempt: the run id, then `<run id>~<attempt>` for the attempts after a failure. */
export const executionIdOf = (runId: string, attempt: number): string => (attempt <= 1 ? runId : `${runId}~${attempt}`)
