/**
 * Planning a distributed run: the list of units of work (one source, one partition of it) a
 * pipeline splits into. Each source that declares `partitions` contributes one unit per spec it
 * returns; a source that declares nothing is one unit. Several sources are several units, so a
 * pipeline reading many stores or channels spreads over machines even when no source splits.
 */
import { ConfigError, type Pipeline, type PluginServices, type SourceError } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

/** A partition spec: a small JSON value (the same shape as core's `Source.PartitionSpec`). */
export type SpecValue = null | boolean | number | string | ReadonlyArray<SpecValue> | { readonly [key: string]: SpecValue }

/** A partition spec as JSON (the value a source's `partitions` returned). */
export const Spec: Schema.Schema<SpecValue> = Schema.suspend(() =>
  Schema.Union(
    Schema.Null,
    Schema.Boolean,
    Schema.Number,
    Schema.String,
    Schema.Array(Spec),
    Schema.Record({ key: Schema.String, value: Spec })
  )
) as unknown as Schema.Schema<SpecValue>

/** One unit of work: a source and one partition of it. */
export const Unit = Schema.Struct({
  /** `<source>.<index, 4 digits>`: names the partition's state, its staged records and its part files. */
  key: Schema.String,
  /** The pipeline's name for the source. */
  source: Schema.String,
  /** The unit's place in the plan: staged records of file sinks are published in this order. */
  ordinal: Schema.Int,
  /** The partition to read; null for a source that does not split (the whole source). */
  spec: Spec,
  /** Whether `spec` came from the source's `partitions` (false: the whole source). */
  partitioned: Schema.Boolean
})
export type Unit = typeof Unit.Type

/** The units of a pipeline, in source order then partition order. A source with no partitions is one unit. */
export const plan = (
  pipeline: Pipeline.Pipeline
): Effect.Effect<ReadonlyArray<Unit>, SourceError | ConfigError, PluginServices | Scope.Scope> =>
  Effect.gen(function*() {
    const units: Array<Unit> = []
    for (const s of pipeline.sources) {
      if (s.plugin.partitions === undefined) {
        units.push({ key: keyOf(s.name, 0), source: s.name, ordinal: units.length, spec: null, partitioned: false })
        continue
      }
      const specs = yield* s.plugin.partitions(s.config, { name: s.name })
      if (specs.length === 0) {
        // Nothing to read: still one unit, so the source shows in the summary and its run finishes.
        units.push({ key: keyOf(s.name, 0), source: s.name, ordinal: units.length, spec: null, partitioned: false })
        continue
      }
      for (const [i, spec] of specs.entries()) {
        const size = JSON.stringify(spec)?.length ?? 0
        if (size > maxSpecBytes) {
          return yield* new ConfigError({
            message: `source '${s.name}': partition ${i} is ${size} bytes of JSON; a partition spec must stay under ${maxSpecBytes} (it is stored by the engine)`
          })
        }
        units.push({ key: keyOf(s.name, i), source: s.name, ordinal: units.length, spec, partitioned: true })
      }
    }
    return units
  })

/** The largest partition spec accepted (JSON bytes): specs travel in workflow payloads. */
export const maxSpecBytes = 64 * 1024

/** The key of a source's i-th partition. */
export const keyOf = (source: string, index: number): string => `${source}.${String(index).padStart(4, "0")}`
