/**
 * The last step of a distributed run, once every partition is done: publish what the partitions
 * staged, then record the run as finished.
 *
 * 1. The staged records go, in plan order, through the pipeline's staged sinks (files, SQL
 *    `append`/`replace`) in an ordinary run whose state is keyed `<pipeline>/<run>/finalize`: the
 *    sinks follow their own commit protocol (a file in `overwrite` mode is replaced atomically at the
 *    end), and a killed finalize resumes where it committed.
 * 2. The dead letters of every partition are written to the pipeline's dead-letter file, atomically.
 * 3. The run is recorded as finished, and its staged records and dead-letter rows are dropped, in
 *    one transaction.
 *
 * Each step is safe to repeat: the engine runs the step at least once.
 */
import { type ConfigError, type Pipeline, type PluginServices, type RunError, RunStats, Runner, Source, StagedParts, StateStore } from "@effetl/core"
import { StateError } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { ClusterStore } from "./ClusterStore.js"
import { stagedSinks, stateName } from "./PartitionRun.js"
import * as Staging from "./Staging.js"

/** Publishes a run whose partitions are all done, then records it as finished with `summary`. */
export const run = (
  context: {
    readonly pipeline: Pipeline.Pipeline
    readonly store: ClusterStore
    readonly stateStore: StateStore.StateStore["Type"]
    readonly runId: string
  },
  summary: unknown
): Effect.Effect<void, RunError | ConfigError, PluginServices> =>
  Effect.gen(function*() {
    const { pipeline, runId, stateStore, store } = context
    const recorded = yield* store.run(runId)
    if (Option.isSome(recorded) && recorded.value.status === "finished") return
    const sinks = stagedSinks(pipeline)
    const localDir = path.join(path.dirname(path.resolve(pipeline.statePath)), "cluster", pipeline.name.replace(/[^A-Za-z0-9_.-]/g, "_"), runId, "finalize")
    if (sinks.length > 0) {
      const name = stateName(pipeline.name, runId, "finalize")
      const saved = yield* stateStore.load(name)
      if (saved.run?.status !== "finished") {
        yield* Effect.logInfo(`finalize: publishing the staged records to ${sinks.map((s) => s.name).join(", ")}`)
        const { stateStore: _fileStore, ...local } = pipeline
        const finalizePipeline: Pipeline.Pipeline = {
          ...local,
          name,
          deadLetterPath: path.join(localDir, "dead-letter.jsonl"),
          sources: [{ name: "staged", plugin: Staging.stagedSource({ store, runId, incremental: Source.anyIncremental(pipeline.sources) }), config: {} }],
          transforms: [],
          sinks
        }
        yield* Runner.run(finalizePipeline, {}).pipe(
          Effect.provideService(StateStore.StateStore, stateStore),
          Effect.provide(RunStats.layer)
        )
      }
    }
    const lines = yield* store.deadLetterLines(runId)
    yield* writeDeadLetters(pipeline.deadLetterPath, runId, lines)
    yield* store.finishRun(runId, summary)
    yield* Effect.promise(() => fs.rm(path.dirname(localDir), { recursive: true, force: true }))
    yield* Effect.logInfo(`run ${runId} finished`)
  })

/** Replaces the dead-letter file with the run's lines, atomically (an empty file when there are none, as a local run does). */
const writeDeadLetters = (file: string, runId: string, lines: ReadonlyArray<string>) =>
  Effect.tryPromise({
    try: async () => {
      const target = path.resolve(file)
      await fs.mkdir(path.dirname(target), { recursive: true })
      const tmp = path.join(path.dirname(target), `.${path.basename(target)}.effetl-publish-${runId}.tmp`)
      await StagedParts.writeAtomically(target, tmp, async (out) => {
        for (let i = 0; i < lines.length; i += 1000) {
          await StagedParts.writeAll(out, Buffer.from(lines.slice(i, i + 1000).map((l) => l + "\n").join(""), "utf8"))
        }
      })
    },
    catch: (e) => new StateError({ message: `cannot write the dead-letter file ${file}: ${e instanceof Error ? e.message : String(e)}`, path: file })
  })
