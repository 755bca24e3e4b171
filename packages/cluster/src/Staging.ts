/**
 * The part protocol of a distributed run, for every sink that cannot take partitions directly
 * (file sinks, and SQL sinks in `append` or `replace` mode): each partition writes its records as
 * numbered parts (`seq`) into the run's staging table, and once every partition is done the
 * `finalize` step feeds them, in plan order, to the pipeline's real sinks through an ordinary run.
 *
 * - `stagingSink`: a sink a partition writes to instead of those sinks. Records are inserted as they
 *   come, into part `committed + 1`; `commit` closes that part and returns `{ seq }`, which the runner
 *   saves with the partition's checkpoint. On resume the parts after the saved token are deleted
 *   (the source reads those records again), exactly like core's `StagedParts` does with files.
 * - `stagedSource`: the source the `finalize` run reads: every staged record of the run, in
 *   `(partition, part, index)` order, with its position as checkpoint.
 */
import {
  Batch,
  DeadLetterWriter,
  fromJson,
  type ProductImage,
  ProductImageJson,
  Sink,
  SinkError,
  Source,
  toJson,
  TransportError
} from "@effetl/core"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { ClusterStore } from "./ClusterStore.js"

/** The staging sink's commit token: the last committed part. */
export const Token = Schema.Struct({ seq: Schema.Int.pipe(Schema.nonNegative()) })

/** The pipeline name of the staging sink inside a partition run. */
export const sinkName = "effetl.staged"

/** A sink plugin that stages one partition's records in the run's staging table. */
export const stagingSink = (options: {
  readonly store: ClusterStore
  readonly runId: string
  readonly partition: string
  readonly ordinal: number
}) =>
  Sink.define<{}>({
    name: "staged",
    description: "Stages a partition's records for the finalize step of a distributed run (internal).",
    config: Schema.Struct({}),
    make: (_config, context) =>
      Effect.gen(function*() {
        const { ordinal, partition, runId, store } = options
        const fail = (message: string) => (e: unknown) =>
          new SinkError({ sink: context.name, message: `${message}: ${e instanceof Error ? e.message : String(e)}` })
        const token = yield* Option.match(context.committed, {
          onNone: () => Effect.succeed({ seq: 0 }),
          onSome: (u) => Schema.decodeUnknown(Token)(u).pipe(Effect.mapError(fail("the saved staging token is not valid")))
        })
        // A fresh partition run starts from nothing; a resumed one drops the parts after its token.
        yield* store.dropStagedAfter(runId, ordinal, token.seq).pipe(Effect.mapError(fail("cannot prepare the staging table")))
        let committed = token.seq
        let idx = 0
        return {
          write: (records) =>
            Effect.suspend(() => {
              if (Chunk.isEmpty(records)) return Effect.void
              const seq = committed + 1
              const rows = Chunk.toReadonlyArray(records).map((r) => ({
                ordinal,
                seq,
                idx: idx++,
                record: encode(r),
                bytes: r.bytes === undefined ? null : Buffer.from(r.bytes)
              }))
              return store.insertStaged(runId, partition, rows).pipe(Effect.mapError(fail("cannot stage records")))
            }),
          commit: Effect.sync(() => {
            if (idx > 0) {
              committed += 1
              idx = 0
            }
            return { seq: committed }
          }),
          finish: Effect.void,
          cleanup: Effect.void
        } satisfies Sink.SinkInstance
      })
  })

/** The position of the last staged record read: `[partition ordinal, part, index]`. */
const Position = Schema.Tuple(Schema.Int, Schema.Int, Schema.Int)

/**
 * A source plugin reading back every staged record of a run, in plan order (the finalize step's
 * source). `incremental` says whether the pipeline's own sources read incrementally, so the sinks
 * get the same `SinkContext.incremental` as in a local run (a file sink's default mode follows it).
 */
export const stagedSource = (options: {
  readonly store: ClusterStore
  readonly runId: string
  readonly incremental: boolean
  readonly pageSize?: number
}) =>
  Source.define<{}>({
    name: "staged",
    description: "Reads the records staged by the partitions of a distributed run (internal).",
    config: Schema.Struct({}),
    incremental: () => options.incremental,
    make: (_config, context) =>
      Effect.gen(function*() {
        const pageSize = options.pageSize ?? 1000
        const start = Option.match(Option.flatMap(context.checkpoint, (cp) => Schema.decodeUnknownOption(Position)(cp.value)), {
          onNone: () => [-1, 0, 0] as const,
          onSome: (p) => p
        })
        if (Option.isNone(context.checkpoint)) {
          const total = yield* options.store.countStaged(options.runId).pipe(Effect.orElseSucceed(() => -1))
          if (total >= 0) yield* context.progress.total(total)
        }
        const stream = Stream.paginateEffect(start as readonly [number, number, number], (after) =>
          options.store.readStaged(options.runId, after, pageSize).pipe(
            Effect.map((rows) => {
              const last = rows[rows.length - 1]
              const records = rows.map((row) => decode(row.record, row.bytes))
              const position: readonly [number, number, number] = last ? [last.ordinal, last.seq, last.idx] : after
              const batch = Batch.make(records, last ? Option.some(Batch.position(position)) : Option.none())
              return [batch, rows.length < pageSize ? Option.none() : Option.some(position)] as const
            })
          )).pipe(
            Stream.filter((b) => Chunk.isNonEmpty(b.records)),
            // The staging table could not be read: a failure of the transport to the database.
            Stream.mapError((e) => new TransportError({ source: context.name, message: e.message }))
          )
        return {
          productComplete: false,
          stream,
          check: Effect.void
        } satisfies Source.SourceInstance
      })
  })

/** A record as staged: its JSON form (JSON-safe `extra`), bytes kept aside. */
const encode = (r: ProductImage): string => DeadLetterWriter.safeJson(toJson(r))

const decodeJson = Schema.decodeUnknownSync(ProductImageJson)

/** A staged record back as a `ProductImage`. */
const decode = (record: string, bytes: Uint8Array | null): ProductImage => {
  const r = fromJson(decodeJson(JSON.parse(record)))
  return bytes === null ? r : r.with({ bytes })
}
