/**
 * Test harness for the `shoplazza` source: runs the plugin the way the runner does (config decoded
 * from a plain object, a source context with a recording progress), over real HTTP on 127.0.0.1,
 * and builds the records the simulator's catalogue should turn into, independently of `Api.ts`.
 */
import { type Batch, type ProductImage } from "@effetl/core"
import { SourceHarness } from "@effetl/core/testing"
import * as Chunk from "effect/Chunk"
import * as Option from "effect/Option"
import type { CatalogueImage, CatalogueProduct, ShoplazzaSimulator } from "../src/Simulator.js"
import { shoplazza } from "../src/Source.js"

/** The services the runner gives a source: real HTTP (undici), file system, path and fresh counters. */
export const env = SourceHarness.nodeServices

/** Runs a test body in a scope with the runner's services (real HTTP). */
export const live = SourceHarness.live

/** Fast retries, so fault tests take milliseconds of backoff. */
export const fastRetry = SourceHarness.fastRetry

/** A fast bucket for tests that are not about the rate: 40 requests, leaking 2000/s. */
export const fastBucket = { capacity: 40, leakPerSecond: 2000 }

/** The `with:` block of a pipeline file pointing at a simulator (its images are served over http). */
export const simConfig = (sim: ShoplazzaSimulator, more: Record<string, unknown> = {}): Record<string, unknown> => ({
  baseUrl: sim.url,
  accessToken: sim.accessToken,
  protocolRelativeScheme: "http",
  retry: fastRetry,
  rateLimit: false,
  ...more
})

/** What one run produced. */
export interface RunResult {
  readonly batches: ReadonlyArray<Batch.Batch>
  readonly records: ReadonlyArray<ProductImage>
  readonly rejected: ReadonlyArray<Batch.DeadLetter>
  /** The checkpoint values of the batches, in order. */
  readonly checkpoints: ReadonlyArray<unknown>
  /** How many times `progress.page` was called. */
  readonly pages: number
  /** The `retries` counter of the source in `RunStats`. */
  readonly retries: number
  /** The `warnings` counter of the source in `RunStats`. */
  readonly warnings: number
  /** Every `progress.total` call. */
  readonly totals: ReadonlyArray<number>
  /** Every log line, as `LEVEL message`. */
  readonly logs: ReadonlyArray<string>
  /** The checkpoint of the last batch (what the runner saves when the run finishes). */
  readonly last: Option.Option<Batch.Checkpoint>
  readonly productComplete: boolean
}

/** How to run the source (core's `SourceHarness.Options`). */
export type RunOptions = SourceHarness.Options

/** The run's result in this package's shape. */
const toResult = (run: SourceHarness.Run): RunResult => {
  return {
    batches: run.batches,
    records: run.records,
    rejected: run.rejected,
    checkpoints: run.checkpoints.map((c) => Option.getOrUndefined(Option.map(c, (cp) => cp.value))),
    pages: run.pages,
    retries: run.counts.retries,
    warnings: run.counts.warnings,
    totals: run.totals,
    logs: run.logs,
    last: run.checkpoints.at(-1) ?? Option.none(),
    productComplete: run.productComplete
  }
}

/**
 * Decodes `input` as a pipeline file would (unknown options are errors), makes the source and reads
 * its stream until it ends, fails or `take` batches came (core's `SourceHarness`): `runUntil` keeps
 * the batches read before a failure, `run` fails with it, `check` runs the dry-run check.
 */
export const { check, run, runUntil } = SourceHarness.bind(shoplazza, toResult)

// ---------------------------------------------------------------------------------------------
// Expected records
// ---------------------------------------------------------------------------------------------

/** The UTC instant of a `2024-04-08T07:13:28Z` timestamp, computed by hand rather than by `Date.parse`. */
export const utcMillis = (wire: string): number => {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(wire)
  if (m === null) throw new Error(`not a Shoplazza timestamp: ${wire}`)
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))
}

/** A record as plain data (dates as epoch ms, bytes as their sha256): what tests compare. */
export const plain = SourceHarness.plain

/** The record a catalogue image must become, its protocol-relative src given `scheme`. */
export const expected = (image: CatalogueImage, scheme = "http"): Record<string, unknown> => ({
  source: "shoplazza",
  productId: image.product_id,
  imageId: image.id,
  position: image.position,
  url: `${scheme}:${image.src}`,
  filename: image.path.split("/").pop(),
  width: image.width,
  height: image.height,
  alt: image.alt,
  contentHash: null,
  createdAt: utcMillis(image.created_at),
  updatedAt: utcMillis(image.updated_at),
  extra: {}
})

/** The expected records of some products, in their order. */
export const expectedOf = (products: ReadonlyArray<CatalogueProduct>, scheme = "http") =>
  products.flatMap((p) => p.images.map((image) => expected(image, scheme)))

/** The request path of a product's images on the simulator. */
export const imagesPathOf = (id: string): string => `/openapi/2022-01/products/${id}/images`

/** The request path of the product list on the simulator. */
export const listPath = "/openapi/2022-01/products"

/** The request path of the product count on the simulator. */
export const countPath = "/openapi/2022-01/products/count"

/** How many per-product image requests the simulator has answered. */
export const imageRequests = (byPath: Record<string, number>): number =>
  Object.entries(byPath).filter(([path]) => /\/products\/[^/]+\/images$/.test(path)).reduce((n, [, c]) => n + c, 0)

/**
 * What a store that merges product-complete batches holds after some runs (as the SQL sink's merge
 * does): per product, the records of the last batch that had it. Products sorted by id, each
 * product's records in their order, as plain data.
 */
export const merged = (...runs: ReadonlyArray<RunResult>): Record<string, ReadonlyArray<Record<string, unknown>>> => {
  const byProduct = new Map<string, ReadonlyArray<Record<string, unknown>>>()
  for (const run of runs) {
    for (const batch of run.batches) {
      const records = Chunk.toArray(batch.records)
      const products = new Set(records.map((r) => r.productId))
      for (const id of products) byProduct.set(id, records.filter((r) => r.productId === id).map(plain))
    }
  }
  return Object.fromEntries([...byProduct].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** The expected merged store of a catalogue (see {@link merged}): products with images, by id. */
export const mergedOf = (products: ReadonlyArray<CatalogueProduct>, scheme = "http") =>
  Object.fromEntries(
    products.filter((p) => p.images.length > 0).map((p) => [p.id, expectedOf([p], scheme)] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  )

/** The product ids of a run's batches that hold records, in order. */
export const productsRead = (run: RunResult): ReadonlyArray<string> =>
  run.batches.flatMap((b) => [...new Set(Chunk.toArray(b.records).map((r) => r.productId))])
