/**
 * The `shoplazza` source plugin: product images of a Shoplazza shop (OpenAPI 2022-01).
 *
 * A sync reads the product list (`GET products?per_page=&cursor=&fields=id,updated_at,images`), whose
 * products carry their images: one request per page of products. A product listed without an
 * `images` key has its images asked for on their own (`GET products/{id}/images`), and so has every
 * product of `productIds`: core's `ProductFanout`, one product-complete batch per product, in list
 * order, each with the checkpoint after it.
 *
 * Reads are incremental: the checkpoint after a finished run holds the highest product `updated_at`
 * seen (the high-water mark), and the next run lists only the products updated since (minus an
 * overlap). Within a run the checkpoint also holds the list position, so a killed run resumes it.
 */
import { createHash } from "node:crypto"
import { Batch, Config, ConfigError, Http, type HttpError, type ProductImage, RunStats, Source } from "@effetl/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { defaultVersion, filterTime, isUuid, maxPerPage, type Scheme, shopOrigin, toProductImage, versionPath } from "./Api.js"
import * as Client from "./Client.js"

/** A shop's subdomain: `acme` in `acme.myshoplaza.com`. */
const ShopName = Schema.String.pipe(
  Schema.filter((s) =>
    /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i.test(s)
      ? true
      : `expected the shop's subdomain (letters, digits and dashes, as in acme for acme.myshoplaza.com), got ${JSON.stringify(s)}`, {
    jsonSchema: { pattern: "^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$" }
  })
)

/** An API version such as `2022-01`. */
const Version = Schema.String.pipe(
  Schema.filter((s) => (/^\d{4}-\d{2}$/.test(s) ? true : `expected a version like "2022-01", got ${JSON.stringify(s)}`), {
    jsonSchema: { pattern: "^\\d{4}-\\d{2}$" }
  })
)

/**
 * The default budget: the shop's bucket leaks 2 requests/s, so that is the sustained rate; the
 * burst is half the bucket (20 of 40), because other apps on the shop fill the same bucket.
 */
export const defaultRateLimit: Http.HttpConfig.RateLimitSettings = { requestsPerSecond: 2, burst: 20 }

/** The default retries: 500 ms (one leak of the bucket) doubling to 30 s, 8 times, for 429s that carry no Retry-After. */
export const defaultRetry: Http.HttpConfig.RetryDefaults = { maxRetries: 8, baseDelay: "500 millis", maxDelay: "30 seconds" }

/** The default page size of the product list. */
export const defaultPageSize = 250

/** The default `partitionSize`. */
export const defaultPartitionSize = 100

/**
 * A partition of a distributed run: the product ids it reads (with the list's `ids` filter, or, with
 * `productIds`, those of the named products), or `null` for the whole shop.
 */
export const Partition = Schema.Struct({ ids: Schema.NullOr(Schema.Array(Schema.String)) })
export type Partition = typeof Partition.Type
const decodePartition = Schema.decodeUnknownOption(Partition)

/** The default overlap of an incremental read: one second, the resolution of `updated_at`. */
export const defaultOverlap = "1 second"

/**
 * How many products a finished run's checkpoint may name as read at its high-water mark (within the
 * overlap before it). The next run skips them while their `updated_at` is unchanged; past this many
 * none are named, and the next run reads the overlap again (merged by the sinks' keys).
 */
export const rememberedAtMark = 1_000

/**
 * How many product ids a run remembers to drop a product listed twice. Past it the oldest are
 * forgotten (a repeat of one of them would be emitted again, and merged by the sinks' keys).
 */
export const rememberedProducts = 250_000

/** The `with:` options of the `shoplazza` source. */
export const ShoplazzaConfig = Schema.Struct({
  shop: Config.optional(ShopName, {
    description: "The shop's subdomain: the source reads https://{shop}.myshoplaza.com/openapi/{version}. Give shop or baseUrl, not both: leave it out when you give baseUrl.",
    examples: ["acme"]
  }),
  baseUrl: Config.optional(Config.BaseUrl, {
    description:
      "Instead of shop: the shop's root, scheme://host[:port] (a proxy, or the simulator); the source adds /openapi/{version}. Give shop or baseUrl, not both: leave it out when you give shop.",
    examples: ["https://acme.myshoplaza.com", "http://127.0.0.1:8080"]
  }),
  version: Config.withDefault(Version, defaultVersion, {
    description: "The OpenAPI version in the path. The wire schemas are those of 2022-01 (newer versions wrap responses in {code, message, data}).",
    examples: ["2022-01"]
  }),
  accessToken: Config.secret({
    description: "The app's OAuth access token, sent as the `access-token` header. Use ${ENV_VAR}.",
    examples: ["${SHOPLAZZA_TOKEN}"]
  }),
  ...Http.ProductFanout.idsFields({
    idDescription: "product UUIDs; each is fetched with GET products/{id}/images, and the product list is not read",
    examples: ["9fb9f3c6-2300-42c1-8593-d9008d7cfc09", "636a07da-39eb-4829-bde9-b65fae1c28b0"]
  }),
  pageSize: Config.withDefault(Config.intRange(1, maxPerPage), defaultPageSize, {
    description: `Products per page of the product list (\`per_page\`, at most ${maxPerPage}; the API's own default is 1). ` +
      "Each page is one request of the budget and carries its products' images.",
    examples: [250, 100]
  }),
  partitionSize: Config.withDefault(Config.intRange(1, maxPerPage), defaultPartitionSize, {
    description:
      "Distributed runs (`effetl run --distributed`): the most products in one partition. A listing pass (`fields=id`) " +
      "splits the shop into chunks of this many product ids, each read with the list's `ids` filter; a shop of at most " +
      "this many products is one partition. Local runs ignore it.",
    examples: [100, 250]
  }),
  overlap: Config.withDefault(Http.HttpConfig.DurationString, defaultOverlap, {
    description:
      "How far before the last run's high-water mark (its highest product updated_at) the next run starts reading: it sends " +
      "updated_at_min = mark - overlap, so a product saved in the same second as the mark but after the list was read is not missed. " +
      "The products listed again are merged by the sinks' keys (one the last run read at the mark, unchanged since, is skipped).",
    examples: ["1 second", "1 minute"]
  }),
  concurrency: Config.withDefault(Config.intRange(1, 16), 4, {
    description:
      "Products whose images are fetched on their own at the same time (productIds, or a product listed without images); batches still come in list order. " +
      "The rate limit, not this, sets the pace; a few in flight hide the latency.",
    examples: [4, 1]
  }),
  rateLimit: Config.withDefault(Schema.Union(Schema.Literal(false), Http.HttpConfig.RateLimitSettings), defaultRateLimit, {
    description:
      "The proactive budget, shared by every source with the same token: the shop's leaky bucket holds 40 requests and leaks 2/s. " +
      "The default keeps the sustained rate at 2/s and bursts at most 20, leaving the rest of the bucket to other apps. " +
      "`false` turns pacing off (429s are still retried with backoff).",
    examples: [{ requestsPerSecond: 2, burst: 20 }, { requestsPerSecond: 1.5, burst: 10 }, false]
  }),
  protocolRelativeScheme: Config.withDefault(Schema.Literal("https", "http"), "https" as Scheme, {
    description:
      "The scheme a protocol-relative image src (//cdn.shoplazza.com/...) gets. Shoplazza's CDN is https; `http` is for a simulator or proxy that serves images over plain http.",
    examples: ["https", "http"]
  }),
  timeout: Http.HttpConfig.timeoutField,
  retry: Http.HttpConfig.retryFieldWith(
    defaultRetry,
    "Retry policy for HTTP requests (5xx, 429, resets, timeouts, truncated bodies). Shoplazza's 429 has no Retry-After, so the backoff alone decides the wait."
  )
})
export type ShoplazzaConfig = typeof ShoplazzaConfig.Type

/**
 * Where a listing is within a run: core's fan-out position (the page's key, the products finished
 * on it, the last of them), what was being read (a position means nothing under other settings),
 * and what the listing has learned so far for the next high-water mark. The page key is the list
 * cursor that fetched the page (`null`: the first page), or, for `productIds`, the offset of the page
 * in the id list.
 */
const Listing = Schema.Struct({
  reading: Schema.String,
  page: Schema.Union(Schema.Null, Schema.String, Schema.Int),
  done: Schema.Int.pipe(Schema.nonNegative()),
  lastId: Schema.optional(Schema.String),
  /** the highest product `updated_at` listed so far */
  seen: Schema.optional(Schema.String),
  /** the shop's clock (its `Date` header) when the listing began */
  began: Schema.optional(Schema.String),
  /** the oldest new `updated_at` of a product listed twice with a change in between */
  held: Schema.optional(Schema.String)
})
type Listing = typeof Listing.Type

/**
 * The checkpoint, always a `cursor` (it carries into the next run): `highWater` is the mark the
 * listing reads from (null: everything); `atMark` names the products already read whose `updated_at`
 * falls in the overlap before the mark (id → `updated_at`), which the listing skips while unchanged;
 * `listing` is the position within a run, absent once the run has finished.
 */
const Saved = Schema.Struct({
  highWater: Schema.NullOr(Schema.String),
  atMark: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  listing: Schema.optional(Listing)
})
type Saved = typeof Saved.Type
const decodeSaved = Schema.decodeUnknownEither(Saved)

/** How many ids one page of an explicit `productIds` list holds (a checkpoint names a page and the products done on it). */
const idsPageSize = 100

/** Where the API is, and how messages name the shop. */
export const endpoint = (
  config: Pick<ShoplazzaConfig, "shop" | "baseUrl" | "version">,
  source: string
): Either.Either<{ readonly apiBase: string; readonly shopLabel: string }, ConfigError> => {
  if (config.shop !== undefined && config.baseUrl !== undefined) {
    return Either.left(
      new ConfigError({
        message: `source '${source}': give shop or baseUrl, not both (baseUrl replaces https://{shop}.myshoplaza.com)`,
        path: `sources.${source}.with.baseUrl`
      })
    )
  }
  if (config.shop !== undefined) {
    const origin = shopOrigin(config.shop)
    return Either.right({ apiBase: origin + versionPath(config.version), shopLabel: `shop '${config.shop}' (${origin})` })
  }
  if (config.baseUrl !== undefined) {
    const root = config.baseUrl.replace(/\/+$/, "")
    return Either.right({ apiBase: root + versionPath(config.version), shopLabel: `the shop at ${root}` })
  }
  return Either.left(
    new ConfigError({
      message: `source '${source}': give shop (the subdomain of {shop}.myshoplaza.com) or baseUrl`,
      path: `sources.${source}.with.shop`
    })
  )
}

/** How the source reads, for its docs and `effetl plugins shoplazza`. */
export const reads: Source.Reads = {
  fullScan: "GET /products?per_page=&cursor=&fields=id,updated_at,images: one request per page of products, their images inline " +
    "(GET /products/{id}/images only for a product listed without them); GET /products/count gives the progress total",
  incremental: "a cursor holding the highest product updated_at of the last finished run; the next run sends updated_at_min = " +
    "that minus `overlap` (1 s) and reads only the products updated since (one it already read at that mark is skipped while unchanged), " +
    "merged by the sinks' keys; --full-refresh reads everything",
  byId: "productIds / productIdsFile: GET /products/{id}/images for each product, in the order given (the high-water mark is kept as it was)"
}

/** The `shoplazza` source. */
/** The named products (`productIds` / `productIdsFile`), each checked to be a UUID. */
const loadIds = (config: ShoplazzaConfig, source: string) =>
  Http.ProductFanout.loadIds(config, {
    source,
    validate: (id) => (isUuid(id) ? undefined : "expected a UUID (Shoplazza product ids are UUIDs)")
  })

/** The shop's client for a source. */
const makeClient = (config: ShoplazzaConfig, source: string) =>
  Effect.flatMap(endpoint(config, source), (where) =>
    Client.make({
      source,
      apiBase: where.apiBase,
      shopLabel: where.shopLabel,
      accessToken: config.accessToken,
      timeout: config.timeout,
      retry: config.retry,
      rateLimit: config.rateLimit === false ? Option.none() : Option.some(config.rateLimit)
    }))

export const shoplazza = Source.define<ShoplazzaConfig>({
  name: "shoplazza",
  description:
    "Shoplazza OpenAPI product images from the product list (images inline, one request per page), incremental by updated_at, or a list of product ids",
  config: ShoplazzaConfig,
  reads,
  // The product list carries its high-water mark into the next run; named products are read whole every run.
  incremental: (config) => config.productIds === undefined && config.productIdsFile === undefined,
  // Chunks of product ids: of the named products, or from a listing pass of ids only (one request per 250 products).
  partitions: (config, context) =>
    Effect.gen(function*() {
      const size = config.partitionSize
      const named = yield* loadIds(config, context.name)
      const chunks = (list: ReadonlyArray<string>): Array<Partition> => Source.chunks(list, size).map((ids) => ({ ids }))
      if (Option.isSome(named)) return named.value.length <= size ? [{ ids: null }] : chunks(named.value)
      const client = yield* makeClient(config, context.name)
      const listed: Array<string> = []
      const seen = new Set<string>()
      yield* Stream.runForEach(client.productPages({ perPage: maxPerPage, updatedAtMin: Option.none() }, Option.none(), "id,updated_at"), (page) =>
        Effect.sync(() => {
          for (const p of page.products) if (!seen.has(p.id)) (seen.add(p.id), listed.push(p.id))
        }))
      return listed.length <= size ? [{ ids: null }] : chunks(listed)
    }),
  make: (config, ctx) =>
    Effect.gen(function*() {
      const partition = yield* Option.match(ctx.partition, {
        onNone: () => Effect.succeed<Partition>({ ids: null }),
        onSome: (spec) =>
          Option.match(decodePartition(spec), {
            onNone: () =>
              Effect.fail(new ConfigError({ message: `source '${ctx.name}': partition ${JSON.stringify(spec)} is not one this source made ({ ids })` })),
            onSome: (p) => Effect.succeed(p)
          })
      })
      const inPartition = partition.ids === null ? undefined : new Set(partition.ids)
      const named = yield* loadIds(config, ctx.name)
      // The named products of this partition (all of them outside a distributed run).
      const ids = Option.map(named, (list) => (inPartition === undefined ? list : list.filter((id) => inPartition.has(id))))
      const client = yield* makeClient(config, ctx.name)
      const perPage = Option.match(ctx.limit, { onNone: () => config.pageSize, onSome: (n) => Math.min(config.pageSize, Math.max(1, n)) })
      const overlapMs = Duration.toMillis(Http.HttpConfig.toDuration(config.overlap))

      const saved = yield* Option.match(ctx.checkpoint, {
        onNone: () => Effect.succeed(Option.none<Saved>()),
        onSome: (cp) =>
          Either.match(decodeSaved(cp.value), {
            onRight: (s) => Effect.succeed(Option.some(s)),
            onLeft: () =>
              Effect.fail(
                new ConfigError({
                  message: `source '${ctx.name}': the saved checkpoint ${JSON.stringify(cp.value)} is not one this source wrote; ` +
                    `pass --restart to start an unfinished run over, or --full-refresh to read everything again.`
                })
              )
          })
      })
      const highWater = Option.flatMap(saved, (s) => Option.fromNullable(s.highWater))
      const highWaterMs = Option.flatMap(highWater, (s) => {
        const ms = Date.parse(s)
        return Number.isFinite(ms) ? Option.some(ms) : Option.none()
      })
      const updatedAtMin = Option.map(highWaterMs, (ms) => filterTime(ms - overlapMs))
      const partitionText = partition.ids === null
        ? ""
        : ` partition ${partition.ids.length} ids sha256:${createHash("sha256").update(partition.ids.join("\n")).digest("hex").slice(0, 16)}`
      const reading = Option.match(ids, {
        onNone: () => `products per_page=${perPage} updated_at_min=${Option.getOrElse(updatedAtMin, () => "none")}`,
        onSome: (list) => `productIds ${list.length} sha256:${createHash("sha256").update(list.join("\n")).digest("hex").slice(0, 16)}`
      }) + partitionText
      // A position resumes only the run that wrote it; a new run (a carried-over cursor) starts a new listing from the mark.
      const resume = ctx.resumed ? Option.flatMap(saved, (s) => Option.fromNullable(s.listing)) : Option.none<Listing>()
      if (Option.isSome(resume) && resume.value.reading !== reading) {
        return yield* new ConfigError({
          message: `source '${ctx.name}': the unfinished run was reading [${resume.value.reading}] and the config now says [${reading}]; ` +
            `a saved position means nothing under other settings. Finish the run with its old settings, or pass --restart.`
        })
      }
      const resumeAt = <K>(key: (page: Listing["page"]) => Option.Option<K>): Option.Option<Http.ProductFanout.Position<K>> =>
        Option.flatMap(resume, (p) =>
          Option.map(key(p.page), (page) => ({ page, done: p.done, ...(p.lastId !== undefined ? { lastId: p.lastId } : {}) })))
      const savedMark: Mark = { highWater: Option.getOrNull(highWater), atMark: Option.getOrUndefined(Option.flatMap(saved, (s) => Option.fromNullable(s.atMark))) }
      const cursorAt = (listing: Listing | undefined, mark: Mark = savedMark) =>
        Batch.cursor({
          highWater: mark.highWater,
          ...(mark.atMark !== undefined ? { atMark: mark.atMark } : {}),
          ...(listing !== undefined ? { listing } : {})
        })

      /** The images of one product, asked for on their own; a 422 (gone, or not a valid id) is a dead letter. */
      const fetchImages = (productId: string): Effect.Effect<Http.ProductFanout.ProductResult, HttpError> =>
        Effect.flatMap(client.images(productId), (reply): Effect.Effect<Http.ProductFanout.ProductResult> => {
          if (reply._tag === "Rejected") {
            const rid = Option.match(reply.requestId, { onNone: () => "", onSome: (id) => ` [request id ${id}]` })
            const error = `product ${productId}: the API answered HTTP ${reply.status} (${reply.message}): ` +
              `the shop has no such product (deleted since it was listed or named, or never there)${rid}`
            return Effect.as(
              Effect.logWarning(`source '${ctx.name}': ${error}; sent to the dead-letter output, the run goes on`).pipe(
                Effect.annotateLogs({
                  source: ctx.name,
                  productId,
                  status: reply.status,
                  ...Option.match(reply.requestId, { onNone: () => ({}), onSome: (requestId) => ({ requestId }) })
                })
              ),
              { records: [], rejected: [{ source: ctx.name, stage: "source", error, payload: { product_id: productId } }] }
            )
          }
          return Effect.as(ctx.progress.page(), mapImages(ctx.name, productId, reply.images, config.protocolRelativeScheme))
        })

      const stream = Option.match(ids, {
        onNone: () =>
          listing({
            source: ctx.name,
            client,
            query: { perPage, updatedAtMin, ...(partition.ids !== null ? { ids: partition.ids } : {}) },
            highWater: highWaterMs,
            atMark: new Map(Object.entries(savedMark.atMark ?? {}).flatMap(([id, t]) => {
              const ms = instant(t)
              return ms === undefined ? [] : [[id, ms] as const]
            })),
            overlapMs,
            resume,
            resumeAt: resumeAt((page) => (typeof page === "number" ? Option.none() : Option.some(page))),
            reading,
            concurrency: config.concurrency,
            fetchImages,
            scheme: config.protocolRelativeScheme,
            progress: ctx.progress,
            checkpoint: cursorAt
          }),
        onSome: (list) =>
          Http.ProductFanout.stream({
            resume: resumeAt((page) => (typeof page === "number" ? Option.some(page) : Option.none())),
            pages: Http.ProductFanout.listPages(list, idsPageSize),
            fetch: fetchImages,
            concurrency: config.concurrency,
            checkpoint: (p) => cursorAt({ reading, ...p })
          }).pipe(
            // Named products say nothing about the rest of the shop: the mark stays as it was.
            Stream.concat(Stream.sync(() => Batch.checkpointOnly(cursorAt(undefined))))
          )
      })
      return {
        // One batch per product, with every image of it.
        productComplete: true,
        stream,
        check: client.check
      }
    })
})

/** What {@link listing} needs. */
interface ListingOptions {
  readonly source: string
  readonly client: Client.ShoplazzaClient
  readonly query: Client.ListQuery
  /** The mark the listing reads from (none: everything). */
  readonly highWater: Option.Option<number>
  /** The products read at that mark, by id, with their `updated_at`: skipped while unchanged. */
  readonly atMark: ReadonlyMap<string, number>
  readonly overlapMs: number
  /** The position within this run to go on from (none: a new listing). */
  readonly resume: Option.Option<Listing>
  readonly resumeAt: Option.Option<Http.ProductFanout.Position<string | null>>
  readonly reading: string
  readonly concurrency: number
  readonly fetchImages: (productId: string) => Effect.Effect<Http.ProductFanout.ProductResult, HttpError>
  readonly scheme: Scheme
  readonly progress: Source.Progress
  readonly checkpoint: (listing: Listing | undefined, mark?: Mark) => Batch.Checkpoint
}

/** What a finished run hands the next: the high-water mark and the products read at it. */
interface Mark {
  readonly highWater: string | null
  readonly atMark: Readonly<Record<string, string>> | undefined
}

/**
 * The product list as product-complete batches (core's `ProductFanout`), then a last checkpoint-only
 * batch with the new high-water mark. Products carry their images; one listed without them is
 * fetched on its own. A product listed a second time in this run is dropped with a warning, and one
 * the last run read at its mark, still with the same `updated_at`, is skipped.
 *
 * The new mark is the highest `updated_at` listed, but never later than the shop's clock when the
 * listing began, nor than the new `updated_at` of a product that changed while it was being listed
 * (dropped as a repeat): a product changed during the run, behind the cursor, is read by the next run.
 */
const listing = (options: ListingOptions): Stream.Stream<Batch.Batch, HttpError, RunStats.RunStats> =>
  Stream.suspend(() => {
    const { client, overlapMs, query, source } = options
    const from = Option.getOrUndefined(options.resume)
    let seen = instant(from?.seen)
    let began = instant(from?.began)
    let held = instant(from?.held)
    /** Product id → its `updated_at` when first listed in this run (bounded, oldest forgotten first). */
    const listed = new Map<string, number | undefined>()
    let forgetting = false
    /** The products listed within the overlap before the highest `updated_at` so far (what the next run may skip). */
    const recent = new Map<string, number>()
    // A resumed listing did not see its first part: it names no products at its mark.
    let recentComplete = from === undefined
    /** The images of the listed products whose batches are not made yet. */
    const inline = new Map<string, ReadonlyArray<unknown>>()
    const tally = { listed: 0, toRead: 0, withImages: 0, images: 0 }
    let total: number | undefined

    const remember = (id: string, updatedAt: number | undefined): Effect.Effect<void> => {
      listed.set(id, updatedAt)
      if (listed.size <= rememberedProducts) return Effect.void
      listed.delete(listed.keys().next().value!)
      if (forgetting) return Effect.void
      forgetting = true
      return Effect.logInfo(
        `source '${source}': more than ${rememberedProducts} products listed; the check for products listed twice now covers the last ${rememberedProducts}`
      )
    }

    /** A product listed (read now, or skipped as read at the mark): it counts for the new mark. */
    const known = (id: string, updatedAt: number | undefined): void => {
      if (updatedAt === undefined) return
      seen = seen === undefined ? updatedAt : Math.max(seen, updatedAt)
      if (!recentComplete || updatedAt < seen - overlapMs) return
      recent.set(id, updatedAt)
      if (recent.size <= rememberedAtMark) return
      for (const [k, t] of recent) if (t < seen - overlapMs) recent.delete(k)
      if (recent.size > rememberedAtMark) {
        recentComplete = false
        recent.clear()
      }
    }

    const repeat = (id: string, first: number | undefined, again: number | undefined): Effect.Effect<void> => {
      const changed = again !== undefined && (first === undefined || again > first)
      if (changed) held = held === undefined ? again : Math.min(held, again)
      const why = changed
        ? `with a newer updated_at (${new Date(again).toISOString()}): it changed while the list was read. The repeat is dropped; the next run reads the new version`
        : "(the shop's list shifted under the cursor); the repeat is dropped"
      return Effect.zipRight(
        Effect.logWarning(`source '${source}': product ${id} was listed a second time in this run ${why}`).pipe(
          Effect.annotateLogs({ source, productId: id })
        ),
        RunStats.add(source, "warnings")
      )
    }

    /** A list page as core's fan-out page: the ids of the products to read, their images kept aside. */
    const admit = (page: Client.ListPage): Effect.Effect<Http.ProductFanout.ProductPage<string | null>> =>
      Effect.gen(function*() {
        if (began === undefined && Option.isSome(page.date)) began = page.date.value
        const ids: Array<string> = []
        for (const p of page.products) {
          if (listed.has(p.id)) {
            yield* repeat(p.id, listed.get(p.id), p.updatedAt)
            continue
          }
          yield* remember(p.id, p.updatedAt)
          known(p.id, p.updatedAt)
          tally.listed++
          // Read by the last run at its mark and not changed since: nothing to read.
          if (p.updatedAt !== undefined && options.atMark.get(p.id) === p.updatedAt) continue
          if (Option.isSome(p.images)) {
            inline.set(p.id, p.images.value)
            tally.withImages++
            tally.images += p.images.value.length
          }
          tally.toRead++
          ids.push(p.id)
        }
        if (page.products.length > 0) yield* options.progress.page()
        if (total !== undefined) {
          // Records expected: the images listed, and as many per product for those still to come or asked for on their own.
          const perProduct = tally.withImages === 0 ? 0 : tally.images / tally.withImages
          const rest = Option.isNone(page.next) ? 0 : Math.max(0, total - tally.listed)
          yield* options.progress.total(Math.round(tally.images + (tally.toRead - tally.withImages + rest) * perProduct))
        }
        return { key: page.key, next: page.next, ids }
      })

    const fetch = (productId: string): Effect.Effect<Http.ProductFanout.ProductResult, HttpError> => {
      const images = inline.get(productId)
      if (images === undefined) return options.fetchImages(productId)
      inline.delete(productId)
      return Effect.succeed(mapImages(source, productId, images, options.scheme))
    }

    const position = (p: Http.ProductFanout.Position<string | null>): Listing => ({
      reading: options.reading,
      page: p.page,
      done: p.done,
      ...(p.lastId !== undefined ? { lastId: p.lastId } : {}),
      ...(seen !== undefined ? { seen: iso(seen) } : {}),
      ...(began !== undefined ? { began: iso(began) } : {}),
      ...(held !== undefined ? { held: iso(held) } : {})
    })

    /**
     * The mark the next run reads from: what was listed, held back by the shop's clock and by changed
     * repeats, never below the old mark; and, when it is the highest `updated_at` listed, the products
     * listed within the overlap before it.
     */
    const nextMark = (): Mark => {
      const old = Option.getOrUndefined(options.highWater)
      const learned = seen === undefined ? undefined : Math.min(seen, began ?? Infinity, held ?? Infinity)
      const mark = learned === undefined ? old : old === undefined ? learned : Math.max(old, learned)
      if (mark === undefined) return { highWater: null, atMark: undefined }
      const atMark = recentComplete && mark === seen
        ? Object.fromEntries([...recent].filter(([, t]) => t >= mark - overlapMs).map(([id, t]) => [id, iso(t)]))
        : undefined
      return { highWater: iso(mark), atMark }
    }

    const counted = Stream.execute(
      client.count(query).pipe(
        // The count is of products; the total is of records, estimated page by page (see `admit`).
        Effect.tap((n) => {
          total = n
          return n === 0 ? options.progress.total(0) : Effect.void
        }),
        // A refused token fails the run at once; any other failure only costs the progress total.
        Effect.catchIf((error) => error._tag !== "Unauthorized", (error) =>
          Effect.zipRight(
            Effect.logWarning(`source '${source}': the product count is not available (${error.message}); the run goes on without a progress total`),
            RunStats.add(source, "warnings")
          ))
      )
    )
    const batches = Http.ProductFanout.stream({
      resume: options.resumeAt,
      pages: (from) => client.productPages(query, from).pipe(Stream.mapEffect(admit)),
      fetch,
      concurrency: options.concurrency,
      checkpoint: (p) => options.checkpoint(position(p))
    })
    return Stream.concat(
      Stream.concat(counted, batches),
      Stream.sync(() => Batch.checkpointOnly(options.checkpoint(undefined, nextMark())))
    )
  })

/** The batch of one product: its images as records, the ones that cannot be used as dead letters. */
const mapImages = (source: string, productId: string, items: ReadonlyArray<unknown>, scheme: Scheme): Http.ProductFanout.ProductResult => {
  const records: Array<ProductImage> = []
  const rejected: Array<Batch.DeadLetter> = []
  for (const item of items) {
    const mapped = toProductImage(source, productId, item, scheme)
    if (Either.isLeft(mapped)) rejected.push({ source, stage: "source", error: `product ${productId}: ${mapped.left.error}`, payload: mapped.left.payload })
    else records.push(mapped.right)
  }
  return { records, rejected }
}

/** An instant as it is saved in a checkpoint. */
const iso = (ms: number): string => new Date(ms).toISOString()

/** A saved instant, or undefined. */
const instant = (s: string | undefined): number | undefined => {
  if (s === undefined) return undefined
  const ms = Date.parse(s)
  return Number.isFinite(ms) ? ms : undefined
}

export default shoplazza
