/**
 * The `bigcommerce` source plugin: product images of a BigCommerce store, through the V2 catalog API.
 *
 * V2 has no store-wide image list, so the source lists the products by id range (`GET /products`
 * with `min_id` after the last id of the previous page) and asks for each product's images
 * (`GET /products/{id}/images`), `concurrency` products at a time, with core's `ProductFanout`:
 * one product-complete batch per product, in order.
 *
 * How a run reads (see {@link make}):
 * - a first run (or `--full-refresh`) reads every product;
 * - a finished run leaves a cursor checkpoint with the scan's mark, and the next run lists only the
 *   products modified since (`min_date_modified`, less `overlap`);
 * - a resumed run continues the same scan after the last product it finished;
 * - `productIds` reads named products only; a partition reads one id range.
 */
import { Batch, Config, ConfigError, Http, type HttpError, type ProductImage, RunStats, Source } from "@effetl/core"
import { createHash } from "node:crypto"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { defaultBaseUrl, type ImageUrl, maxPageSize, parseDate, toProductImage, urlFields } from "./Api.js"
import * as Client from "./Client.js"

/** The store's `rateLimit` options: how the source paces itself under the store's shared quota. */
export const RateSettings = Schema.Struct({
  reserve: Config.withDefault(Config.intRange(0, 10_000), 1, {
    description:
      "Requests of each quota window the source never uses, left for the other apps on the store. At least 1 keeps " +
      "X-Rate-Limit-Requests-Left from ever reaching 0 by our doing.",
    examples: [1, 20]
  }),
  slowDownBelow: Config.withDefault(
    Schema.Number.pipe(
      Schema.between(0, 1),
      Schema.annotations({ message: () => ({ message: "expected a fraction from 0 to 1", override: true }) })
    ),
    0.1,
    {
      description:
        "While more than this fraction of the quota is left, requests go at once; below it they are paced, never slower " +
        "than the quota's own rate (window ÷ quota), until only the reserve is left, then wait for the window to reset.",
      examples: [0.1, 0.5]
    }
  )
})
export type RateSettings = typeof RateSettings.Type

/** The page size: 1 to 250, since BigCommerce answers 413 to a larger `limit`. */
const PageSize = Schema.Int.pipe(
  Schema.greaterThanOrEqualTo(1),
  Schema.lessThanOrEqualTo(maxPageSize),
  Schema.annotations({
    message: () => ({ message: `expected an integer from 1 to ${maxPageSize} (BigCommerce answers 413 to a larger limit)`, override: true })
  })
)

/** The default `partitionSize`. */
export const defaultPartitionSize = 5000

/** The `with:` options of the `bigcommerce` source. */
export const BigCommerceConfig = Schema.Struct({
  storeHash: Config.required(
    Schema.String.pipe(
      Schema.pattern(/^[a-z0-9]+$/i),
      Schema.annotations({ message: () => ({ message: "expected the store hash: letters and digits only", override: true }) })
    ),
    { description: "The store hash, as in https://api.bigcommerce.com/stores/{storeHash}/v2.", examples: ["abc123def"] }
  ),
  baseUrl: Config.withDefault(Config.BaseUrl, defaultBaseUrl, {
    description: "The API root, scheme://host[:port]; the source adds /stores/{storeHash}/v2. Change it for proxies and tests.",
    examples: [defaultBaseUrl, "http://127.0.0.1:8080"]
  }),
  accessToken: Config.secret({
    description: "The API account's access token, sent as X-Auth-Token. Use ${ENV_VAR}.",
    examples: ["${BIGCOMMERCE_TOKEN}"]
  }),
  ...Http.ProductFanout.idsFields({ idDescription: "BigCommerce product ids, positive integers", examples: ["77", "80"] }),
  pageSize: Config.withDefault(PageSize, maxPageSize, {
    description:
      "Products per page of the product list, and images per page of a product's images (`limit`; at most 250: " +
      "BigCommerce answers 413 to more).",
    examples: [250, 50]
  }),
  imageUrl: Config.withDefault(Schema.Literal(...(Object.keys(urlFields) as Array<ImageUrl>)), "zoom" as ImageUrl, {
    description: "Which of the image's URL variants becomes `url`: zoom (the largest), standard, thumbnail or tiny. All four are kept in `extra`.",
    examples: ["zoom", "standard"]
  }),
  concurrency: Config.withDefault(Config.intRange(1, 32), 4, {
    description: "Products whose images are fetched at the same time (the batches stay in product order).",
    examples: [4, 1]
  }),
  overlap: Config.withDefault(Http.HttpConfig.DurationString, "1 second", {
    description:
      "How far before the last run's mark an incremental run starts (`min_date_modified` = mark − overlap), so that " +
      "products modified in the same second, or under a little clock skew, are read again rather than missed.",
    examples: ["1 second", "5 minutes"]
  }),
  partitionSize: Config.withDefault(Config.intRange(1, 1_000_000), defaultPartitionSize, {
    description: "Products per partition when a distributed run splits the store into product id ranges (about this many each, never more when the store does not change meanwhile).",
    examples: [5000, 500]
  }),
  timeout: Http.HttpConfig.timeoutField,
  retry: Http.HttpConfig.retryField,
  rateLimit: Config.withDefault(RateSettings, { reserve: 1, slowDownBelow: 0.1 }, {
    description:
      "Pacing under the store's quota, read from the X-Rate-Limit-* headers of every response (a 429 still waits " +
      "X-Rate-Limit-Time-Reset-Ms, or X-Retry-After when longer, and is retried).",
    examples: [{ reserve: 1, slowDownBelow: 0.1 }]
  })
})
export type BigCommerceConfig = typeof BigCommerceConfig.Type

// ---------------------------------------------------------------------------------------------
// Partitions
// ---------------------------------------------------------------------------------------------

/** One partition: the products with ids from `minId` to `maxId` (null: no upper bound). */
export const Partition = Schema.Struct({
  minId: Schema.Int.pipe(Schema.positive()),
  maxId: Schema.NullOr(Schema.Int.pipe(Schema.positive()))
})
export type Partition = typeof Partition.Type
const decodePartition = Schema.decodeUnknownOption(Partition)

/** Whether a product id lies in a partition. */
const inPartition = (partition: Partition, id: number): boolean => id >= partition.minId && (partition.maxId === null || id <= partition.maxId)

/**
 * Contiguous ranges from id 1 up with no upper bound on the last, each holding at most `size` of
 * the `counts` (id range → products in it) given, merged while they fit.
 */
const toRanges = (leaves: ReadonlyArray<{ readonly minId: number; readonly maxId: number; readonly count: number }>, size: number): Array<Partition> => {
  const merged: Array<{ minId: number; maxId: number; count: number }> = []
  for (const leaf of leaves) {
    const last = merged.at(-1)
    if (last !== undefined && last.count + leaf.count <= size) {
      last.maxId = leaf.maxId
      last.count += leaf.count
    } else merged.push({ ...leaf })
  }
  if (merged.length === 0) return [{ minId: 1, maxId: null }]
  return merged.map((range, i) => ({ minId: i === 0 ? 1 : merged[i - 1]!.maxId + 1, maxId: i === merged.length - 1 ? null : range.maxId }))
}

/** The highest id a listing may name (the largest safe integer). */
const maxProductId = Number.MAX_SAFE_INTEGER

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

const IsoDate = Schema.String.pipe(Schema.filter((s) => !Number.isNaN(Date.parse(s))))

/** A scan that has not finished: ProductFanout's position (page = its `min_id`) and the scan's filter. */
const Scanning = Schema.extend(
  Http.ProductFanout.PositionSchema(Schema.Int),
  Schema.Struct({
    scope: Schema.String,
    /** This scan lists the products modified since this instant (less the overlap); none: every product. */
    from: Schema.optional(IsoDate),
    /** The server's clock when the scan began. */
    startedAt: Schema.optional(IsoDate),
    /** The highest `date_modified` listed so far (or carried from the last run). */
    highWater: Schema.optional(IsoDate)
  })
)
type Scanning = typeof Scanning.Type

/** A finished scan: where the next run reads from (`mark`, less the overlap) and the highest `date_modified` seen. */
const Finished = Schema.Struct({
  scope: Schema.String,
  complete: Schema.Literal(true),
  mark: Schema.NullOr(IsoDate),
  highWater: Schema.NullOr(IsoDate)
})
type Finished = typeof Finished.Type

/** A `productIds` run's position (offset pages), keeping the store's cursor that came in with it. */
const ByIds = Schema.extend(
  Http.ProductFanout.PositionSchema(Schema.Int),
  Schema.Struct({ scope: Schema.String, keep: Schema.optional(Schema.Union(Finished, Scanning)) })
)

const decodeCursor = Schema.decodeUnknownOption(Schema.Union(Finished, Scanning))
const decodeByIds = Schema.decodeUnknownOption(ByIds)

/** How many ids of an explicit `productIds` list make one page of the fan-out (and of its checkpoint). */
const idsPageSize = 100

const iso = (ms: number): string => new Date(ms).toISOString()
const millis = (text: string | undefined): number | undefined => (text === undefined ? undefined : Date.parse(text))

// ---------------------------------------------------------------------------------------------
// The plugin
// ---------------------------------------------------------------------------------------------

/** The `bigcommerce` source. */
export const bigcommerce = Source.define<BigCommerceConfig>({
  name: "bigcommerce",
  description: "BigCommerce V2 catalog product images (every product by id range, incrementally by date_modified, or productIds), paced by the store's quota headers",
  config: BigCommerceConfig,
  reads: {
    fullScan:
      "GET /products by id range (min_id = the last id of the previous page + 1, limit = pageSize), then GET " +
      "/products/{id}/images for each product, concurrency products at a time; GET /products/images/count gives the total",
    incremental:
      "a finished run's cursor holds the scan's mark (the server's clock when it began) and the highest date_modified " +
      "seen; the next run lists only products with min_date_modified = mark − overlap (RFC 2822), by id range as above",
    byId: "productIds / productIdsFile: GET /products/{id}/images for each id, in the order given"
  },
  partitions: (config, context) =>
    Effect.gen(function*() {
      const ids = yield* Http.ProductFanout.loadIds(config, { source: context.name, validate: validId })
      const size = config.partitionSize
      if (Option.isSome(ids)) {
        const sorted = [...ids.value].map(Number).sort((a, b) => a - b)
        const leaves = sorted.map((id) => ({ minId: id, maxId: id, count: 1 }))
        return toRanges(leaves, size)
      }
      const client = yield* makeClient(config, context.name)
      const count = (minId: number, maxId: number) =>
        client.productCount({ minId, maxId: maxId >= maxProductId ? Option.none() : Option.some(maxId), modifiedSince: Option.none() })
      const total = yield* count(1, maxProductId)
      if (total <= size) return [{ minId: 1, maxId: null }]
      // Every id lies below `top`: the first power of two from which no product is listed.
      let top = 1024
      while (top < maxProductId && (yield* count(top, maxProductId)) > 0) top = Math.min(top * 2, maxProductId)
      // Halve id ranges (one count each) until each holds at most `size` products, then merge neighbours that fit.
      const split = (minId: number, maxId: number, n: number): Effect.Effect<Array<{ minId: number; maxId: number; count: number }>, HttpError> =>
        Effect.gen(function*() {
          if (n <= size || minId >= maxId) return [{ minId, maxId, count: n }]
          const mid = Math.floor((minId + maxId) / 2)
          const left = yield* count(minId, mid)
          return [...(yield* split(minId, mid, left)), ...(yield* split(mid + 1, maxId, Math.max(0, n - left)))]
        })
      return toRanges(yield* split(1, top - 1, total), size)
    }),
  make: (config, ctx) =>
    Effect.gen(function*() {
      const ids = yield* Http.ProductFanout.loadIds(config, { source: ctx.name, validate: validId })
      const partition = yield* Option.match(ctx.partition, {
        onNone: () => Effect.succeed(Option.none<Partition>()),
        onSome: (spec) =>
          Option.match(decodePartition(spec), {
            onNone: () =>
              Effect.fail(new ConfigError({ message: `source '${ctx.name}': partition ${JSON.stringify(spec)} is not one this source made ({ minId, maxId })` })),
            onSome: (p) => Effect.succeed(Option.some(p))
          })
      })
      const client = yield* makeClient(config, ctx.name)
      const range = Option.getOrElse(partition, (): Partition => ({ minId: 1, maxId: null }))
      const rangeText = Option.match(partition, { onNone: () => "", onSome: (p) => `, ids ${p.minId}..${p.maxId ?? ""}` })
      const fetch = fetchProduct(client, config, ctx)

      // -----------------------------------------------------------------------------------------
      // productIds: the named products (those in the partition), in the order given
      // -----------------------------------------------------------------------------------------
      if (Option.isSome(ids)) {
        const list = ids.value.filter((id) => inPartition(range, Number(id)))
        const scope = `productIds (${ids.value.length}, sha256:${createHash("sha256").update(ids.value.join(",")).digest("hex").slice(0, 16)})${rangeText}`
        const saved = Option.getOrUndefined(ctx.checkpoint)
        let resume: Option.Option<Http.ProductFanout.Position<number>> = Option.none()
        let keep: unknown = undefined
        if (saved?.kind === "cursor") {
          // The store's cursor, kept for the next whole-store run; but an unfinished scan of this run is not ours to take over.
          const scanning = Option.filter(decodeCursor(saved.value), (c): c is Scanning => !("complete" in c))
          if (ctx.resumed && Option.isSome(scanning)) return yield* changed(ctx.name, scanning.value.scope, scope)
          keep = saved.value
        } else if (saved !== undefined) {
          const position = decodeByIds(saved.value)
          if (Option.isNone(position)) return yield* foreign(ctx.name)
          if (position.value.scope !== scope) return yield* changed(ctx.name, position.value.scope, scope)
          const { scope: _s, keep: kept, ...at } = position.value
          resume = Option.some(at)
          keep = kept
        }
        const fanout = Http.ProductFanout.stream({
          resume,
          pages: Http.ProductFanout.listPages(list, idsPageSize),
          fetch,
          concurrency: config.concurrency,
          checkpoint: (position) => Batch.position({ ...position, scope, ...(keep === undefined ? {} : { keep }) })
        })
        const end = keep === undefined ? Stream.empty : Stream.succeed(Batch.checkpointOnly(Batch.cursor(keep)))
        // The count request comes first: it proves the store hash and the token before any product is read.
        return {
          productComplete: true,
          stream: Stream.unwrap(Effect.as(client.imageCount, Stream.concat(fanout, end))),
          check: Effect.asVoid(client.imageCount)
        }
      }

      // -----------------------------------------------------------------------------------------
      // Every product (of the partition), by id range: a full scan or the changes since the mark
      // -----------------------------------------------------------------------------------------
      const scope = `every product${rangeText}`
      const saved = Option.getOrUndefined(ctx.checkpoint)
      const cursor = saved === undefined ? undefined : saved.kind === "cursor" ? decodeCursor(saved.value) : Option.none()
      if (saved !== undefined && cursor !== undefined && Option.isNone(cursor)) {
        if (ctx.resumed) {
          const byIds = decodeByIds(saved.value)
          return yield* Option.isSome(byIds) ? changed(ctx.name, byIds.value.scope, scope) : foreign(ctx.name)
        }
        yield* Effect.logWarning(`source '${ctx.name}': the last run's cursor is not one this version of the source wrote; reading every product`)
      }
      const previous = cursor === undefined ? undefined : Option.getOrUndefined(cursor)
      if (previous !== undefined && previous.scope !== scope && ctx.resumed) return yield* changed(ctx.name, previous.scope, scope)

      /** Where this scan starts, what it filters on, and what it already knows. */
      let scan: { from?: number; startedAt?: number; highWater?: number; resume: Option.Option<Http.ProductFanout.Position<number>> } = {
        resume: Option.none()
      }
      if (previous !== undefined && previous.scope !== scope) {
        yield* Effect.logWarning(
          `source '${ctx.name}': the last run's cursor was for [${previous.scope}] and this run reads [${scope}]; reading every product`
        )
      } else if (previous !== undefined && "complete" in previous) {
        // The next scan after a finished one: the changes since its mark (a whole scan when it had none).
        scan = { ...optionalMs("from", previous.mark), ...optionalMs("highWater", previous.highWater), resume: Option.none() }
      } else if (previous !== undefined) {
        const base = { ...optionalMs("from", previous.from), ...optionalMs("highWater", previous.highWater) }
        scan = ctx.resumed
          // The same scan, after the last product it finished (a deleted or added product shifts nothing).
          ? {
            ...base,
            ...optionalMs("startedAt", previous.startedAt),
            resume: Option.some(previous.lastId === undefined ? { page: previous.page, done: 0 } : { page: Number(previous.lastId) + 1, done: 0 })
          }
          // A run that restarts an unfinished scan reads under the same filter from the start.
          : { ...base, resume: Option.none() }
      }

      const overlap = Duration.toMillis(Http.HttpConfig.toDuration(config.overlap))
      const filter: Client.ProductFilter = {
        minId: range.minId,
        maxId: Option.fromNullable(range.maxId),
        modifiedSince: scan.from === undefined ? Option.none() : Option.some(new Date(Math.max(0, scan.from - overlap)))
      }
      let { highWater, startedAt } = scan
      // Only a scan's own first page says when it began (a resumed scan keeps the time it saved).
      const fresh = Option.isNone(scan.resume)
      const observe = (page: Client.ProductPage) =>
        Effect.gen(function*() {
          if (fresh && startedAt === undefined && Option.isSome(page.serverTime)) startedAt = page.serverTime.value
          const unreadable: Array<string> = []
          for (const [i, text] of page.modified.entries()) {
            const at = text === undefined ? undefined : parseDate(text)
            if (at !== undefined) highWater = Math.max(highWater ?? at.getTime(), at.getTime())
            else unreadable.push(`product ${page.ids[i]}: ${JSON.stringify(text ?? null)}`)
          }
          if (unreadable.length === 0) return
          yield* RunStats.add(ctx.name, "warnings", unreadable.length)
          yield* Effect.logWarning(
            `source '${ctx.name}': ${unreadable.length} product(s) listed from min_id=${page.key} have a date_modified that is neither ` +
              `RFC 2822 nor ISO-8601 (${unreadable.slice(0, 3).join(", ")}${unreadable.length > 3 ? ", ..." : ""}); they are read, ` +
              `but do not count toward the high-water mark`
          )
        })
      const state = (): Omit<Scanning, "page" | "done" | "lastId"> => ({
        scope,
        ...(scan.from === undefined ? {} : { from: iso(scan.from) }),
        ...(startedAt === undefined ? {} : { startedAt: iso(startedAt) }),
        ...(highWater === undefined ? {} : { highWater: iso(highWater) })
      })
      const finished = (): Finished => ({
        scope,
        complete: true,
        // Everything modified before the scan began was listed; later changes come in the next run.
        mark: startedAt !== undefined ? iso(startedAt) : highWater !== undefined ? iso(highWater) : null,
        highWater: highWater === undefined ? null : iso(highWater)
      })
      const fanout = Http.ProductFanout.stream({
        resume: scan.resume,
        pages: (from) => client.productPages(Option.getOrElse(from, () => range.minId), filter, config.pageSize).pipe(Stream.tap(observe)),
        fetch,
        concurrency: config.concurrency,
        checkpoint: (position) => Batch.cursor({ ...state(), ...position })
      })
      const stream = Stream.concat(fanout, Stream.fromEffect(Effect.sync(() => Batch.checkpointOnly(Batch.cursor(finished())))))
      // A whole-store full scan starts with the image count: the progress total.
      const whole = scan.from === undefined && Option.isNone(partition)
      return {
        productComplete: true,
        stream: whole ? Stream.unwrap(Effect.map(client.imageCount, (count) => Stream.concat(Stream.execute(ctx.progress.total(count)), stream))) : stream,
        check: Effect.asVoid(client.imageCount)
      }
    })
})

export default bigcommerce

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** A BigCommerce product id: a positive integer. */
const validId = (id: string): string | undefined => (/^[1-9]\d{0,15}$/.test(id) ? undefined : "expected a positive integer")

const makeClient = (config: BigCommerceConfig, source: string) =>
  Client.make({
    source,
    baseUrl: config.baseUrl,
    storeHash: config.storeHash,
    accessToken: config.accessToken,
    timeout: config.timeout,
    retry: config.retry,
    rate: config.rateLimit
  })

/** `{ [key]: epoch ms }` for a date that is there, `{}` otherwise. */
const optionalMs = <K extends string>(key: K, text: string | null | undefined): { [P in K]?: number } => {
  const ms = millis(text ?? undefined)
  return ms === undefined || Number.isNaN(ms) ? {} : ({ [key]: ms } as { [P in K]?: number })
}

const foreign = (source: string) =>
  new ConfigError({
    message: `source '${source}': the unfinished run's checkpoint is not one this version of the source wrote; pass --restart to start over.`
  })

const changed = (source: string, was: string, now: string) =>
  new ConfigError({
    message: `source '${source}': the unfinished run was reading [${was}] and the config now says [${now}]; ` +
      `its saved position means nothing under other settings. Finish the run with its old settings, or pass --restart.`
  })

/** Fetches one product's images: one product-complete result, a deleted product a dead letter. */
const fetchProduct = (client: Client.BigCommerceClient, config: BigCommerceConfig, ctx: Source.SourceContext) => (productId: string) =>
  Effect.map(client.images(productId, config.pageSize), (answer): Http.ProductFanout.ProductResult => {
    if (answer._tag === "NotFound") {
      const said = Option.match(answer.vendorMessage, { onNone: () => "", onSome: (m) => `: ${m}` })
      return {
        records: [],
        rejected: [{
          source: ctx.name,
          stage: "source",
          error: `product ${productId} was not found (HTTP ${answer.status}${said}); it was deleted, or never existed`,
          payload: { product_id: Number(productId) }
        }]
      }
    }
    const records: Array<ProductImage> = []
    const rejected: Array<Batch.DeadLetter> = []
    for (const item of answer.items) {
      const mapped = toProductImage(ctx.name, productId, item, config.imageUrl)
      if (Either.isLeft(mapped)) rejected.push({ source: ctx.name, stage: "source", error: mapped.left.error, payload: mapped.left.payload })
      else records.push(mapped.right)
    }
    return { records, rejected }
  }).pipe(Effect.tap(() => ctx.progress.page()))
