/**
 * Test harness for the `bigcommerce` source: runs the plugin the way the runner does (config
 * decoded from a plain object, a source context with a recording progress), over real HTTP on
 * 127.0.0.1, and builds the records the simulator's catalogue should turn into, independently of
 * `Api.ts`.
 */
import { type Batch, type ProductImage } from "@effetl/core"
import { SourceHarness } from "@effetl/core/testing"
import * as Chunk from "effect/Chunk"
import * as Option from "effect/Option"
import type { BigCommerceSimulator, CatalogueImage } from "../src/Simulator.js"
import { bigcommerce } from "../src/Source.js"

/** The services the runner gives a source: real HTTP (undici), file system, path and fresh counters. */
export const env = SourceHarness.nodeServices

/** Runs a test body in a scope with the runner's services (real HTTP). */
export const live = SourceHarness.live

/** Fast retries, so fault tests take milliseconds of backoff. */
export const fastRetry = SourceHarness.fastRetry

/** A quota window short enough for tests: 20 requests per second. */
export const fastQuota = { quota: 20, windowMs: 1000 } as const

/** The `with:` block of a pipeline file pointing at a simulator. */
export const simConfig = (sim: BigCommerceSimulator, more: Record<string, unknown> = {}): Record<string, unknown> => ({
  baseUrl: sim.url,
  storeHash: sim.storeHash,
  accessToken: sim.accessToken,
  retry: fastRetry,
  ...more
})

/** What one run produced. */
export interface RunResult {
  readonly batches: ReadonlyArray<Batch.Batch>
  readonly records: ReadonlyArray<ProductImage>
  readonly rejected: ReadonlyArray<Batch.DeadLetter>
  /** The checkpoint values of the batches, in order: the position only (no scope, no scan filter). */
  readonly checkpoints: ReadonlyArray<unknown>
  /** The last batch's checkpoint, as the source made it (none when no batch had one). */
  readonly last: Option.Option<Batch.Checkpoint>
  /** The checkpoints as the source made them. */
  readonly raw: ReadonlyArray<Option.Option<Batch.Checkpoint>>
  /** Every `progress.total` call. */
  readonly totals: ReadonlyArray<number>
  /** How many times `progress.page` was called. */
  readonly pages: number
  /** The `retries` counter of the source in `RunStats`. */
  readonly retries: number
  /** The `warnings` counter of the source in `RunStats`. */
  readonly warnings: number
  /** The log lines while the source was made and read, as `LEVEL message`. */
  readonly logs: ReadonlyArray<string>
}

/** How to run the source (core's `SourceHarness.Options`). */
export type RunOptions = SourceHarness.Options

/** The run's result in this package's shape. */
const toResult = (run: SourceHarness.Run): RunResult => {
  return {
    batches: run.batches,
    records: run.records,
    rejected: run.rejected,
    checkpoints: run.checkpoints.map((c) => Option.getOrUndefined(Option.map(c, (cp) => positionOf(cp.value)))),
    last: Option.flatten(Option.fromNullable(run.checkpoints.at(-1))),
    raw: run.checkpoints,
    totals: run.totals,
    pages: run.pages,
    retries: run.counts.retries,
    warnings: run.counts.warnings,
    logs: run.logs
  }
}

/**
 * Decodes `input` as a pipeline file would (unknown options are errors), makes the source and reads
 * its stream until it ends, fails or `take` batches came (core's `SourceHarness`): `runUntil` keeps
 * the batches read before a failure, `run` fails with it, `check` runs the dry-run check.
 */
export const { check, run, runUntil } = SourceHarness.bind(bigcommerce, toResult)

// ---------------------------------------------------------------------------------------------
// Expected records
// ---------------------------------------------------------------------------------------------

/** A record as plain data (dates as epoch ms, bytes as their sha256): what tests compare. */
export const plain = SourceHarness.plain

/** The URL fields of the simulator's catalogue, by the config's `imageUrl` names. */
const variantOf = { zoom: "zoom_url", standard: "standard_url", thumbnail: "thumbnail_url", tiny: "tiny_url" } as const

/** The record a catalogue image must become (from the simulator's own fields, not from `Api.ts`). */
export const expected = (image: CatalogueImage, imageUrl: keyof typeof variantOf = "zoom"): Record<string, unknown> => ({
  source: "bigcommerce",
  productId: String(image.product_id),
  imageId: String(image.id),
  position: image.sort_order,
  url: image[variantOf[imageUrl]],
  filename: image.image_file,
  width: null,
  height: null,
  alt: image.description,
  contentHash: null,
  createdAt: image.created,
  updatedAt: null,
  extra: {
    isThumbnail: image.is_thumbnail,
    zoomUrl: image.zoom_url,
    standardUrl: image.standard_url,
    thumbnailUrl: image.thumbnail_url,
    tinyUrl: image.tiny_url
  }
})

/** The expected records of some products, in the order a sync emits them (product order, then image id). */
export const expectedOf = (sim: BigCommerceSimulator, productIds: ReadonlyArray<number>, imageUrl: keyof typeof variantOf = "zoom") =>
  productIds.flatMap((id) =>
    sim.catalogue.filter((image) => image.product_id === id).sort((a, b) => a.id - b.id).map((image) => expected(image, imageUrl))
  )

/** The expected records of the whole catalogue (products by id). */
export const expectedAll = (sim: BigCommerceSimulator, skip: ReadonlySet<number> = new Set()) =>
  expectedOf(sim, sim.products.map((p) => p.id).filter((id) => !skip.has(id)))

/** The product ids of a run's batches that carry records, one entry per batch. */
export const productsByBatch = (batches: ReadonlyArray<Batch.Batch>): Array<string> =>
  batches.flatMap((b) => (Chunk.isEmpty(b.records) ? [] : [Chunk.unsafeHead(b.records).productId]))

const positionOf = (value: unknown): unknown => {
  if (typeof value !== "object" || value === null) return value
  const { scope: _scope, from: _from, startedAt: _startedAt, highWater: _highWater, keep: _keep, ...rest } = value as Record<string, unknown>
  return rest
}
