/**
 * What the file sinks share: the `path` and `mode` config fields, and a sink instance that encodes
 * each batch and hands it to core's staged parts (commit, resume, atomic publish).
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import { Config, type ProductImage, Sink, SinkError, StagedParts } from "@effetl/core"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import type * as Scope from "effect/Scope"

/** `overwrite`: one file, replaced atomically at the end of the run. `append`: a directory of part files. */
export const Mode = Schema.Literal("overwrite", "append")
export type Mode = typeof Mode.Type

/** The `path` field: the output file (overwrite) or directory (append). */
export const pathField = (example: string) =>
  Config.required(Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty", title: "path" })), {
    description:
      "Where to write. In overwrite mode: the output file, replaced atomically at the end of the run. " +
      "In append mode: a directory that receives one part file per commit, named by run id and sequence " +
      "(part-<runId>-<seq>.<ext>). Parent directories are created.",
    examples: [example, example.replace(/\.[a-z]+$/, "")]
  })

/** The `mode` field. */
export const modeField = Config.withDefault<Mode, Mode>(Mode, "overwrite", {
  description:
    "overwrite: stage the run's parts and publish them as one complete file at the end (a reader sees the " +
    "previous file until then). append: publish each commit's part file into the `path` directory at once.",
  examples: ["overwrite", "append"]
})

/** The `mode` setting: a mode, or `auto` to choose by whether the pipeline reads incrementally. */
export const ModeSetting = Schema.Literal("auto", "overwrite", "append")
export type ModeSetting = typeof ModeSetting.Type

/** The `mode` field with `auto` as its default: safe for incremental pipelines. */
export const autoModeField = Config.withDefault<ModeSetting, ModeSetting>(ModeSetting, "auto", {
  description:
    "auto (default): append when a source of the pipeline reads incrementally (acceo's feed, shoplazza's and " +
    "bigcommerce's updated-since cursors: each run then brings only what changed, and replacing the output " +
    "with it would drop the rest), overwrite otherwise. overwrite: stage the run's parts and publish them as " +
    "one complete file at the end (a reader sees the previous file until then; a run that read nothing new " +
    "leaves it as it was). append: publish each commit's part file into the `path` directory at once.",
  examples: ["auto", "overwrite", "append"]
})

/** The mode a setting means for a pipeline: `auto` is `append` when it reads incrementally, else `overwrite`. */
export const resolveMode = (setting: ModeSetting, incremental: boolean): Mode =>
  setting === "auto" ? (incremental ? "append" : "overwrite") : setting

/** How a format encodes records. */
export interface Format {
  /** The file extension, without the dot. */
  readonly ext: string
  /** Written at the top of the published file (overwrite) or of each part (append). */
  readonly header?: () => string
  /** Encodes a non-empty batch of records into text. */
  readonly encode: (records: Chunk.Chunk<ProductImage>) => string
}

/** Makes a file sink instance for a format, following the commit protocol through staged parts. */
export const make = (
  config: { readonly path: string; readonly mode: ModeSetting },
  context: Sink.SinkContext,
  format: Format
): Effect.Effect<Sink.SinkInstance, SinkError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const mode = resolveMode(config.mode, context.incremental)
    if (config.mode === "auto") {
      yield* Effect.logDebug(`sink '${context.name}': mode auto is ${mode}${context.incremental ? " (a source reads incrementally)" : ""}`)
    }
    const parts = yield* StagedParts.make({
      name: context.name,
      path: context.trial === true ? Sink.trialPath(config.path) : config.path,
      mode,
      runId: context.runId,
      ext: format.ext,
      committed: context.committed,
      ...(format.header ? { header: format.header } : {})
    })
    return {
      write: (records) => encodeThen(records, format, context.name, parts.write),
      commit: parts.commit,
      finish: parts.finish,
      cleanup: parts.cleanup
    }
  })

/**
 * Encodes `records` and writes the text with `write`. The effect lets go of the records once it has
 * encoded them (run again, it writes the same text): the write that follows, a file write it waits
 * for, reaches only the text. A closure that kept the records through the write kept every record
 * of a run alive until it was promoted to the old generation.
 */
const encodeThen = <R>(
  records: Chunk.Chunk<ProductImage>,
  format: Format,
  sink: string,
  write: (chunk: string) => Effect.Effect<void, SinkError, R>
): Effect.Effect<void, SinkError, R> => {
  if (Chunk.isEmpty(records)) return Effect.void
  let pending: Chunk.Chunk<ProductImage> | undefined = records
  let encoded: string | undefined
  return Effect.suspend(() => {
    if (encoded === undefined) {
      try {
        encoded = format.encode(pending!)
      } catch (e) {
        return Effect.fail(
          new SinkError({
            sink,
            message: `sink '${sink}': could not encode a batch as ${format.ext}: ${e instanceof Error ? e.message : String(e)}`,
            cause: e
          })
        )
      }
      pending = undefined
    }
    return write(encoded)
  })
}

/** The file or directory a file sink writes for a config (its trial location in a trial run). */
export const outputPath = (config: { readonly path: string }, context: { readonly trial?: boolean }): string =>
  path.resolve(context.trial === true ? Sink.trialPath(config.path) : config.path)
