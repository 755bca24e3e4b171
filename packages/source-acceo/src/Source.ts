/**
 * The `acceo` source plugin: product images of Acceo Ogasys, from the change feed (by token) or by
 * product id, in JSON or XML, as base64 bytes or URLs.
 */
import { createHash, randomUUID } from "node:crypto"
import { Batch, Config, ConfigError, Http, type ProductImage, Source } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { canonicalInteger, countRange, type Format, type IdsEndpoint, type ImageMode, mapProduct, maxSessionLength } from "./Api.js"
import * as Client from "./Client.js"

/** The most product ids in one partition. */
const maxPartitionSize = 10_000

/** 25 MiB: the default per-image cap. */
export const defaultMaxImageBytes = 25 * 1024 * 1024

/** 256 MiB: the default response cap (a lot of `count` products with their base64 images). */
export const defaultMaxResponseBytes = 256 * 1024 * 1024

/** What the API answers for a product id it does not know: the returncode assumed by default. */
export const defaultNotFoundReturncodes: ReadonlyArray<number> = [2]

const Token = Schema.String.pipe(
  Schema.pattern(/^\d+$/, { message: () => "expected a token: a non-negative decimal integer, written as a string" })
)

/** An HTTP header name (RFC 9110 token). */
const HeaderName = Schema.String.pipe(
  Schema.pattern(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: () => "expected an HTTP header name, e.g. Authorization" })
)

/** A header value template holding `{key}`. */
const Template = Schema.String.pipe(
  Schema.filter((s) => (s.includes("{key}") ? true : "expected a template holding {key}, e.g. \"Bearer {key}\" or \"ApiKey {key}\"")),
  Schema.filter((s) => (/[\r\n]/.test(s) ? "must not contain line breaks" : true), {
    // Without it the JSON Schema (and so `effetl plugins acceo`) would drop the field's description and default.
    jsonSchema: { pattern: "^[^\\r\\n]*\\{key\\}[^\\r\\n]*$" }
  })
)

/** How the API key is sent (not public: the defaults are an assumption). */
export const AuthConfig = Schema.Struct({
  header: Config.withDefault(HeaderName, "Authorization", {
    description: "The header that carries the API key.",
    examples: ["Authorization", "X-Api-Key"]
  }),
  template: Config.withDefault(Template, "Bearer {key}", {
    description: "The header's value; {key} is replaced by apiKey.",
    examples: ["Bearer {key}", "ApiKey {key}", "{key}"]
  })
})

/** The `with:` options of the `acceo` source. */
export const AcceoConfig = Schema.Struct({
  baseUrl: Config.required(Config.BaseUrl, {
    description: "The web API root; the source adds products/images... to it (a path prefix is kept).",
    examples: ["https://api.ogasys.acceo.com", "http://127.0.0.1:8080"]
  }),
  apiKey: Config.secret({
    description: "The API key, sent in the auth header (see auth). Use ${ENV_VAR}.",
    examples: ["${ACCEO_API_KEY}"]
  }),
  auth: Config.withDefault(AuthConfig, { header: "Authorization", template: "Bearer {key}" }, {
    description: "How the key is sent. Acceo's auth is not public: the default, `Authorization: Bearer <apiKey>`, is an assumption.",
    examples: [{ header: "Authorization", template: "ApiKey {key}" }]
  }),
  mode: Config.withDefault(Schema.Literal("feed", "products"), "feed" as "feed" | "products", {
    description:
      "`feed`: the change feed (products/images?token=...), resumed from the saved token on every run, so each run " +
      "reads only what changed. `products`: the products in productIds/productIdsFile (products/images/{product_id}).",
    examples: ["feed", "products"]
  }),
  ...Http.ProductFanout.idsFields({ idDescription: "mode: products only; Acceo product ids, decimal integers", examples: ["1001", "1002"] }),
  idsEndpoint: Config.withDefault(Schema.Literal("images", "url"), "images" as IdsEndpoint, {
    description:
      "mode: products: the route of each product. `images`: products/images/{product_id} (the images in the mode " +
      "`images` asks for). `url`: products/images/URL/{product_id}, download URLs only (needs images: url).",
    examples: ["images", "url"]
  }),
  images: Config.withDefault(Schema.Literal("binary", "url"), "binary" as ImageMode, {
    description: "`binary`: base64 images decoded into the record's bytes (the API's default). `url`: download links (options=URL) in url.",
    examples: ["binary", "url"]
  }),
  format: Config.withDefault(Schema.Literal("json", "xml"), "json" as Format, {
    description: "The return format asked for with the Accept header. Both give identical records.",
    examples: ["json", "xml"]
  }),
  count: Config.withDefault(Config.intRange(countRange.min, countRange.max), countRange.max, {
    description: "Products per lot of the change feed (count, 1..500).",
    examples: [500, 100]
  }),
  startToken: Config.optional(Token, {
    description: "The token the very first run starts from (when no token is saved yet). Leave it out to read the feed from its start.",
    examples: ["1152921504606846976"]
  }),
  session: Config.optional(
    Schema.String.pipe(Schema.minLength(1), Schema.maxLength(maxSessionLength, { message: () => `expected at most ${maxSessionLength} characters` })),
    {
      description: "The session value sent with every request. Leave it out for a new unique one per run (effetl-<uuid>).",
      examples: ["nightly-sync"]
    }
  ),
  partitionSize: Config.withDefault(Config.intRange(1, maxPartitionSize), 100, {
    description:
      "Distributed runs, mode: products only: product ids per partition (the id list is split into chunks of this size). " +
      "The change feed is always one partition.",
    examples: [100, 1000]
  }),
  concurrency: Config.withDefault(Config.intRange(1, 32), 4, {
    description: "mode: products: how many products are fetched at once (results stay in order).",
    examples: [4, 1]
  }),
  maxImageBytes: Config.withDefault(Config.intAtLeast(1), defaultMaxImageBytes, {
    description: "The largest image accepted, checked from the base64 length before decoding; a bigger one is a dead letter.",
    examples: [defaultMaxImageBytes]
  }),
  maxResponseBytes: Config.withDefault(Config.intRange(1024, 512 * 1024 * 1024), defaultMaxResponseBytes, {
    description: "The largest response body accepted (a lot carries its products' base64 images: lower count if you hit it).",
    examples: [defaultMaxResponseBytes]
  }),
  notFoundReturncodes: Config.withDefault(Schema.Array(Schema.Int), defaultNotFoundReturncodes, {
    description:
      "mode: products: the returncodes that mean \"no such product\" (a dead letter, the run goes on). An assumption: " +
      "Acceo does not document it. Any other returncode ≠ 0 fails the run.",
    examples: [[2], [2, 404]]
  }),
  regroup: Config.withDefault(Schema.Boolean, true, {
    description:
      "mode: feed: the feed may send a product again later in the same cycle, so one product can span several lots. " +
      "true: say so, and core regroups each product's images over the run before product-scoped transforms " +
      "(dedupe-by-hash then drops the repeats; blocking, spilled to disk). false: stream lot by lot (each lot's " +
      "entries are complete products; a product sent again is written again).",
    examples: [true, false]
  }),
  timeout: Http.HttpConfig.timeoutField,
  retry: Http.HttpConfig.retryField,
  rateLimit: Config.optional(Http.HttpConfig.RateLimitSettings, {
    description: "A proactive request rate, shared by every source with the same key. Leave it out for none (429s are still retried, honouring Retry-After).",
    examples: [{ requestsPerSecond: 5 }]
  })
})
export type AcceoConfig = typeof AcceoConfig.Type

/**
 * One partition: the change feed (a singleton: a token feed cannot be split), or a chunk of the
 * by-id list.
 */
const Partition = Schema.Union(
  Schema.Literal("feed"),
  Schema.Struct({ productIds: Schema.NonEmptyArray(Schema.String.pipe(Schema.pattern(/^\d+$/))) })
)
type Partition = typeof Partition.Type
const decodePartition = Schema.decodeUnknownOption(Partition)

/** The feed's checkpoint: the token of the last lot read (a cursor: it carries over to the next run). */
const FeedCursor = Schema.Struct({ token: Token })
const decodeFeedCursor = Schema.decodeUnknownOption(FeedCursor)

/** The by-id checkpoint: core's fan-out position, and what was being read (the id list). */
const ProductsPosition = Schema.extend(
  Http.ProductFanout.PositionSchema(Schema.Int),
  Schema.Struct({ mode: Schema.Literal("products"), reading: Schema.String })
)
const decodeProductsPosition = Schema.decodeUnknownOption(ProductsPosition)

/** The `acceo` source. */
export const acceo = Source.define<AcceoConfig>({
  name: "acceo",
  description: "Acceo Ogasys product images (change feed by token, or by product id; JSON or XML; base64 or URL images)",
  config: AcceoConfig,
  reads: {
    fullScan:
      "mode: feed from startToken, or from the feed's start (GET products/images?count=), lot by lot until queuecount is 0; " +
      "the first run, or any run with --full-refresh. One partition: a token feed cannot be split.",
    incremental:
      "mode: feed: the change feed from the token the last run saved (GET products/images?token=&count=), committed with " +
      "the data, so each run reads only the products changed since",
    byId:
      "mode: products: GET products/images/{product_id} (idsEndpoint: url: products/images/URL/{product_id}) for each of " +
      "productIds/productIdsFile, concurrency at a time; partitions are chunks of partitionSize ids"
  },
  // The feed's token carries over into the next run; a by-id run reads its ids every time.
  incremental: (config) => config.mode === "feed",
  partitions: (config, ctx) =>
    Effect.gen(function*() {
      const ids = yield* checkedIds(config, ctx.name)
      if (Option.isNone(ids)) return ["feed"]
      return Source.chunks(ids.value, config.partitionSize).map((productIds): Partition => ({ productIds }))
    }),
  make: (config, ctx) =>
    Effect.gen(function*() {
      const source = ctx.name
      const prefix = `source '${source}'`
      const configured = yield* checkedIds(config, source)
      const partition = yield* partitionOf(ctx.partition, config, source)
      const ids: Option.Option<ReadonlyArray<string>> = partition === "all" || partition === "feed"
        ? configured
        : Option.some(partition.productIds)
      const client = yield* Client.make({
        source,
        baseUrl: config.baseUrl,
        apiKey: config.apiKey,
        auth: config.auth,
        format: config.format,
        images: config.images,
        idsEndpoint: config.idsEndpoint,
        session: config.session ?? `effetl-${randomUUID()}`,
        maxResponseBytes: config.maxResponseBytes,
        notFoundReturncodes: config.notFoundReturncodes,
        timeout: config.timeout,
        retry: config.retry,
        ...(config.rateLimit ? { rateLimit: config.rateLimit } : {})
      })
      const mapOptions = { source, images: config.images, endpoint: config.idsEndpoint, maxImageBytes: config.maxImageBytes }

      if (Option.isSome(ids)) {
        const list = ids.value
        const reading = `products n=${list.length} sha256=${createHash("sha256").update(list.join("\n")).digest("hex").slice(0, 16)}`
        const resume = yield* productsResume(ctx.checkpoint, reading, prefix)
        const stream = Http.ProductFanout.stream({
          resume,
          pages: Http.ProductFanout.listPages(list),
          concurrency: config.concurrency,
          checkpoint: (p) => Batch.position({ mode: "products", ...p, reading }),
          fetch: (productId) =>
            Effect.map(client.product(productId), (reply) => {
              if (reply._tag === "NotFound") {
                return { records: [], rejected: [{ source, stage: "source", error: reply.reason, payload: { product_id: productId } }] }
              }
              const mapped = reply.entries.map((entry) => mapProduct(entry, mapOptions))
              return { records: mapped.flatMap((m) => m.records), rejected: mapped.flatMap((m) => m.rejected) }
            })
        }).pipe(Stream.tap(() => ctx.progress.page()))
        return { productComplete: true, stream, check: client.check(list[0]) }
      }

      // The change feed.
      const saved = yield* feedResume(ctx.checkpoint, prefix)
      const start = Option.getOrElse(saved, () => config.startToken ?? "")
      const count = Option.match(ctx.limit, { onNone: () => config.count, onSome: (n) => Math.min(config.count, Math.max(1, n)) })
      let read = 0
      let products = 0
      const stream = client.feed(start, count).pipe(
        Stream.mapEffect((page) => {
          const records: Array<ProductImage> = []
          const rejected: Array<Batch.DeadLetter> = []
          for (const entry of page.value.entries) {
            const mapped = mapProduct(entry, mapOptions)
            records.push(...mapped.records)
            rejected.push(...mapped.rejected)
          }
          read += records.length
          products += page.value.entries.length
          const left = page.value.queuecount
          // The total is an estimate: queuecount counts products, the bar counts images.
          const total = left <= 0 || products === 0 ? read : read + Math.round((left * read) / products)
          const checkpoint = page.value.next === "" ? Option.none() : Option.some(Batch.cursor({ token: page.value.next }))
          return Effect.as(
            Effect.zipRight(page.value.entries.length > 0 ? ctx.progress.page() : Effect.void, ctx.progress.total(total)),
            Batch.make(records, checkpoint, rejected)
          )
        })
      )
      return { productComplete: !config.regroup, stream, check: client.check() }
    })
})

/**
 * The by-id list of a config (none in mode feed), after the checks every run and every partition
 * plan makes: ids only with mode products, decimal ids, and the URL route only with URL images.
 */
const checkedIds = (config: AcceoConfig, source: string) =>
  Effect.gen(function*() {
    const prefix = `source '${source}'`
    const ids = yield* Http.ProductFanout.loadIds(config, {
      source,
      validate: (id) => (/^\d+$/.test(id) ? undefined : "expected a decimal integer (Acceo product ids are bigint)")
    })
    if (config.mode === "feed" && Option.isSome(ids)) {
      return yield* new ConfigError({
        message: `${prefix}: productIds/productIdsFile are for mode: products; the change feed reads every change`,
        path: `sources.${source}.with.mode`
      })
    }
    if (config.mode === "products" && Option.isNone(ids)) {
      return yield* new ConfigError({
        message: `${prefix}: mode: products needs productIds or productIdsFile`,
        path: `sources.${source}.with.productIds`
      })
    }
    if (config.idsEndpoint === "url" && config.mode === "feed") {
      return yield* new ConfigError({
        message: `${prefix}: idsEndpoint: url is a route for mode: products; the change feed has its own (set images: url for URLs)`,
        path: `sources.${source}.with.idsEndpoint`
      })
    }
    if (config.idsEndpoint === "url" && config.images === "binary") {
      return yield* new ConfigError({
        message: `${prefix}: idsEndpoint: url answers download URLs only; set images: url (hash-content then fetches the bytes)`,
        path: `sources.${source}.with.images`
      })
    }
    // Canonical decimal strings ("0012" → "12"), exact for any size.
    return Option.map(ids, (list) => list.map(canonicalInteger))
  })

/** The partition to read: all of the work, the feed, or a chunk of ids that fits the mode (anything else is refused). */
const partitionOf = (
  spec: Option.Option<Source.PartitionSpec>,
  config: AcceoConfig,
  source: string
): Effect.Effect<Partition | "all", ConfigError> => {
  if (Option.isNone(spec)) return Effect.succeed("all")
  const decoded = decodePartition(spec.value)
  if (Option.isSome(decoded) && (decoded.value === "feed") === (config.mode === "feed")) return Effect.succeed(decoded.value)
  return Effect.fail(
    new ConfigError({
      message: `source '${source}': the partition ${JSON.stringify(spec.value).slice(0, 80)} is not one this config splits into ` +
        (config.mode === "feed" ? `(mode: feed is one partition, "feed")` : `(mode: products: a chunk of ids {"productIds":["1001",...]})`)
    })
  )
}

/** The token to resume the feed from, from a saved cursor; a by-id position of an unfinished run is refused. */
const feedResume = (checkpoint: Option.Option<Batch.Checkpoint>, prefix: string): Effect.Effect<Option.Option<string>, ConfigError> => {
  if (Option.isNone(checkpoint)) return Effect.succeed(Option.none())
  const cp = checkpoint.value
  const cursor = cp.kind === "cursor" ? decodeFeedCursor(cp.value) : Option.none()
  if (Option.isSome(cursor)) return Effect.succeed(Option.some(canonicalInteger(cursor.value.token)))
  return Effect.fail(
    new ConfigError({
      message: cp.kind === "position"
        ? `${prefix}: the unfinished run was reading products by id (mode: products) and the config now says mode: feed. ` +
          `Finish that run with its old settings, or pass --restart.`
        : `${prefix}: the saved checkpoint is not a change-feed token (${JSON.stringify(cp.value).slice(0, 80)}). ` +
          `Reset this source's state ('effetl state reset') to read the feed from its start.`
    })
  )
}

/** Where a by-id run resumes; a saved feed token or another id list is refused. */
const productsResume = (
  checkpoint: Option.Option<Batch.Checkpoint>,
  reading: string,
  prefix: string
): Effect.Effect<Option.Option<Http.ProductFanout.Position<number>>, ConfigError> => {
  if (Option.isNone(checkpoint)) return Effect.succeed(Option.none())
  const cp = checkpoint.value
  if (cp.kind === "cursor") {
    return Effect.fail(
      new ConfigError({
        message: `${prefix}: this source's state holds the change feed's token, and a by-id run (mode: products) would replace it ` +
          `(the next feed run would then read everything again). Give by-id runs their own source name, or pass --full-refresh.`
      })
    )
  }
  const position = decodeProductsPosition(cp.value)
  if (Option.isNone(position) || position.value.reading !== reading) {
    const was = Option.match(position, { onNone: () => "other settings", onSome: (p) => `[${p.reading}]` })
    return Effect.fail(
      new ConfigError({
        message: `${prefix}: the unfinished run was reading ${was} and the config now says [${reading}]; a saved position means ` +
          `nothing for another id list. Finish the run with its old settings, or pass --restart.`
      })
    )
  }
  const { page, done, lastId } = position.value
  return Effect.succeed(Option.some({ page, done, ...(lastId !== undefined ? { lastId } : {}) }))
}

export default acceo
