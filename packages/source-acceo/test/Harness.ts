/**
 * Test harness for the `acceo` source: runs the plugin the way the runner does (config decoded from a
 * plain object, a source context with a recording progress), over real HTTP on 127.0.0.1, and builds
 * the records the simulator's catalogue and feed should turn into, independently of `Api.ts`.
 */
import { createHash } from "node:crypto"
import * as http from "node:http"
import type * as net from "node:net"
import { type Batch, type ProductImage } from "@effetl/core"
import { SourceHarness } from "@effetl/core/testing"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { AcceoSimulator, CatalogueProduct } from "../src/Simulator.js"
import { acceo } from "../src/Source.js"

/** The services the runner gives a source: real HTTP (undici), file system, path and fresh counters. */
export const env = SourceHarness.nodeServices

/** Runs a test body in a scope with the runner's services (real HTTP). */
export const live = SourceHarness.live

/** Fast retries, so fault tests take milliseconds of backoff. */
export const fastRetry = SourceHarness.fastRetry

/** The `with:` block of a pipeline file pointing at a simulator. */
export const simConfig = (sim: AcceoSimulator, more: Record<string, unknown> = {}): Record<string, unknown> => ({
  baseUrl: sim.url,
  apiKey: sim.apiKey,
  retry: fastRetry,
  ...more
})

/** What one run produced. */
export interface RunResult {
  readonly productComplete: boolean
  readonly batches: ReadonlyArray<Batch.Batch>
  readonly records: ReadonlyArray<ProductImage>
  readonly rejected: ReadonlyArray<Batch.DeadLetter>
  /** The checkpoints of the batches, in order (undefined for none). */
  readonly checkpoints: ReadonlyArray<Batch.Checkpoint | undefined>
  /** Every `progress.total` call. */
  readonly totals: ReadonlyArray<number>
  /** How many times `progress.page` was called. */
  readonly pages: number
  /** The source's counters in `RunStats`. */
  readonly retries: number
  readonly warnings: number
  /** Every log line, as `LEVEL message`. */
  readonly logs: ReadonlyArray<string>
}

/** How to run the source (core's `SourceHarness.Options`). */
export type RunOptions = SourceHarness.Options

/** The run's result in this package's shape. */
const toResult = (run: SourceHarness.Run): RunResult => {
  return {
    productComplete: run.productComplete,
    batches: run.batches,
    records: run.records,
    rejected: run.rejected,
    checkpoints: run.checkpoints.map(Option.getOrUndefined),
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
export const { check, run, runUntil } = SourceHarness.bind(acceo, toResult)

// ---------------------------------------------------------------------------------------------
// Expected records
// ---------------------------------------------------------------------------------------------

/** Hex sha256 of some bytes. */
export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

/** A record as plain data (dates as epoch ms, bytes as their sha256): what tests compare. */
export const plain = SourceHarness.plain

/** The records one product must become, in the order its images are served. */
export const expectedProduct = (sim: AcceoSimulator, product: CatalogueProduct, images: "binary" | "url" = "binary") =>
  product.images.map((image) => ({
    source: "acceo",
    productId: product.product_id,
    imageId: image.imagefilename === "" ? String(image.sequence) : image.imagefilename,
    position: image.sequence,
    url: images === "url" ? `${sim.url}${image.path}` : null,
    filename: image.imagefilename === "" ? null : image.imagefilename,
    width: null,
    height: null,
    alt: null,
    contentHash: null,
    createdAt: null,
    updatedAt: null,
    extra: {},
    ...(images === "binary" ? { bytes: image.sha256 } : {})
  }))

/** The catalogue product with this id. */
export const productOf = (sim: AcceoSimulator, id: string): CatalogueProduct => {
  const product = sim.catalogue.find((p) => p.product_id === id)
  if (product === undefined) throw new Error(`no product ${id} in the simulator`)
  return product
}

/** The records of every feed entry after `token` (all of them without one), in feed order. */
export const expectedFeed = (sim: AcceoSimulator, images: "binary" | "url" = "binary", after?: string) =>
  sim.feed()
    .filter((e) => after === undefined || BigInt(e.token) > BigInt(after))
    .flatMap((e) => expectedProduct(sim, productOf(sim, e.productId), images))

/** Splits `items` into lots of `size`. */
export const lotsOf = <A>(items: ReadonlyArray<A>, size: number): Array<Array<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

/** The cursor checkpoint of a token. */
export const cursorOf = (token: string): Batch.Checkpoint => ({ kind: "cursor", value: { token } })

// ---------------------------------------------------------------------------------------------
// A tiny HTTP server for answers the simulator never gives
// ---------------------------------------------------------------------------------------------

/** A request the tiny server received. */
export interface Seen {
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
}

/** A running tiny server. */
export interface TinyServer {
  readonly url: string
  readonly requests: Array<Seen>
}

/** A handler of the tiny server: answers with a status, content type and body (`seen`: requests so far, this one included). */
export type Handler = (
  url: URL,
  seen: number,
  headers: http.IncomingHttpHeaders
) => { readonly status?: number; readonly type?: string; readonly body: string }

/** Starts a `node:http` server on 127.0.0.1 for the scope. */
export const tinyServer = (handler: Handler): Effect.Effect<TinyServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; info: TinyServer }>((resume) => {
      const requests: Array<Seen> = []
      let origin = ""
      const server = http.createServer((req, res) => {
        requests.push({ url: req.url ?? "/", headers: req.headers })
        const answer = handler(new URL(req.url ?? "/", origin), requests.length, req.headers)
        const body = Buffer.from(answer.body, "utf8")
        res.writeHead(answer.status ?? 200, { "Content-Type": answer.type ?? "application/json; charset=utf-8", "Content-Length": String(body.length) })
        res.end(body)
      })
      server.listen(0, "127.0.0.1", () => {
        origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
        resume(Effect.succeed({ server, info: { url: origin, requests } }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(Effect.map(({ info }) => info))

/** A feed envelope as JSON text, with the given raw `product` array text and fields. */
export const envelopeJson = (fields: { product?: string; token?: string; count?: number; queuecount?: number; returncode?: number; warnings?: ReadonlyArray<string> }) =>
  `{"product":${fields.product ?? "[]"},"token":${fields.token ?? '""'},"count":${fields.count ?? 0},"queuecount":${fields.queuecount ?? 0},` +
  `"returncode":${fields.returncode ?? 0},"returnmsg":"","warnings":${JSON.stringify(fields.warnings ?? [])},"version":"1"}`
