/**
 * The `shoplazza` source plugin: product images of a Shoplazza shop (OpenAPI 2022-01).
 *
 * Shoplazza has no store-wide image list, so the source lists the products (`GET products`, cursor
 * pagination) and asks for each product's images (`GET products/{id}/images`), `concurrency` at a
 * time, under a proactive budget below the shop's leaky bucket. It is core's `ProductFanout`: one
 * product-complete batch per product, in list order, each with the checkpoint after it.
 */
import { createHash } from "node:crypto"
import { Batch, Config, ConfigError, Http, type HttpError, type ProductImage, Source } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { defaultVersion, isUuid, maxLimit, type Scheme, shopOrigin, toProductImage, versionPath } from "./Api.js"
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
export const defaultRetry: Http.HttpConfig.RetrySettings = { maxRetries: 8, baseDelay: "500 millis", maxDelay: "30 seconds" }

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
  limit: Config.withDefault(Config.intRange(1, maxLimit), 100, {
    description: `Products per page of the product list (\`limit\`, at most ${maxLimit}). Each page is one request of the budget.`,
    examples: [100, 250]
  }),
  concurrency: Config.withDefault(Config.intRange(1, 16), 4, {
    description:
      "Products whose images are fetched at the same time (batches still come in list order). The rate limit, not this, sets the pace; a few in flight hide the latency.",
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
  retry: Config.withDefault(Http.HttpConfig.RetrySettings, defaultRetry, {
    description:
      "Retry policy for HTTP requests (5xx, 429, resets, timeouts, truncated bodies). Shoplazza's 429 has no Retry-After, so the backoff alone decides the wait.",
    examples: [defaultRetry]
  })
})
export type ShoplazzaConfig = typeof ShoplazzaConfig.Type

/**
 * A saved position: core's fan-out position (the page's key, the products finished on it, the last
 * of them) and what was being read, since a page key means nothing under other settings. The key
 * is the product-list cursor that fetched the page (`null`: the first page), or, for `productIds`,
 * the offset of the page in the id list.
 */
const Position = Schema.Struct({
  page: Schema.Union(Schema.Null, Schema.String, Schema.Int),
  done: Schema.Int.pipe(Schema.nonNegative()),
  lastId: Schema.optional(Schema.String),
  reading: Schema.String
})
const decodePosition = Schema.decodeUnknownEither(Position)

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

/** The `shoplazza` source. */
export const shoplazza = Source.define<ShoplazzaConfig>({
  name: "shoplazza",
  description: "Shoplazza OpenAPI product images (every product, or a list of product ids), under the shop's rate limit",
  config: ShoplazzaConfig,
  make: (config, ctx) =>
    Effect.gen(function*() {
      const where = yield* endpoint(config, ctx.name)
      const ids = yield* Http.ProductFanout.loadIds(config, {
        source: ctx.name,
        validate: (id) => (isUuid(id) ? undefined : "expected a UUID (Shoplazza product ids are UUIDs)")
      })
      const client = yield* Client.make({
        source: ctx.name,
        apiBase: where.apiBase,
        shopLabel: where.shopLabel,
        accessToken: config.accessToken,
        timeout: config.timeout,
        retry: config.retry,
        rateLimit: config.rateLimit === false ? Option.none() : Option.some(config.rateLimit)
      })
      const limit = Option.match(ctx.limit, { onNone: () => config.limit, onSome: (n) => Math.min(config.limit, Math.max(1, n)) })
      const reading = Option.match(ids, {
        onNone: () => `products limit=${limit}`,
        onSome: (list) => `productIds ${list.length} sha256:${createHash("sha256").update(list.join("\n")).digest("hex").slice(0, 16)}`
      })

      const saved = yield* Option.match(ctx.checkpoint, {
        onNone: () => Effect.succeed(Option.none<typeof Position.Type>()),
        onSome: (cp) =>
          Either.match(decodePosition(cp.value), {
            onRight: (p) => Effect.succeed(Option.some(p)),
            onLeft: () =>
              Effect.fail(
                new ConfigError({
                  message: `source '${ctx.name}': the unfinished run's saved position ${JSON.stringify(cp.value)} is not one this source wrote; ` +
                    `pass --restart to start the run over.`
                })
              )
          })
      })
      if (Option.isSome(saved) && saved.value.reading !== reading) {
        return yield* new ConfigError({
          message: `source '${ctx.name}': the unfinished run was reading [${saved.value.reading}] and the config now says [${reading}]; ` +
            `a saved position means nothing under other settings. Finish the run with its old settings, or pass --restart.`
        })
      }

      const fetch = (productId: string): Effect.Effect<Http.ProductFanout.ProductResult, HttpError> =>
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
          const records: Array<ProductImage> = []
          const rejected: Array<Batch.DeadLetter> = []
          for (const item of reply.images) {
            const mapped = toProductImage(ctx.name, item, config.protocolRelativeScheme)
            if (Either.isLeft(mapped)) {
              rejected.push({ source: ctx.name, stage: "source", error: `product ${productId}: ${mapped.left.error}`, payload: mapped.left.payload })
            } else if (mapped.right.productId !== productId) {
              // A batch holds whole products only: an image that says it belongs elsewhere is not trusted here.
              rejected.push({
                source: ctx.name,
                stage: "source",
                error: `product ${productId}: image ${mapped.right.imageId} says it belongs to product ${mapped.right.productId}`,
                payload: item
              })
            } else records.push(mapped.right)
          }
          return Effect.as(ctx.progress.page(), { records, rejected })
        })

      const checkpoint = <K>(p: Http.ProductFanout.Position<K>) => Batch.position({ ...p, reading })
      const resumeAt = <K>(key: (page: typeof Position.Type["page"]) => Option.Option<K>): Option.Option<Http.ProductFanout.Position<K>> =>
        Option.flatMap(saved, (p) =>
          Option.map(key(p.page), (page) => ({ page, done: p.done, ...(p.lastId !== undefined ? { lastId: p.lastId } : {}) })))
      const stream = Option.match(ids, {
        onNone: () =>
          Http.ProductFanout.stream({
            resume: resumeAt((page) => (typeof page === "number" ? Option.none() : Option.some(page))),
            pages: (from) => client.productPages(limit, from),
            fetch,
            concurrency: config.concurrency,
            checkpoint
          }),
        onSome: (list) =>
          Http.ProductFanout.stream({
            resume: resumeAt((page) => (typeof page === "number" ? Option.some(page) : Option.none())),
            pages: Http.ProductFanout.listPages(list, idsPageSize),
            fetch,
            concurrency: config.concurrency,
            checkpoint
          })
      })
      return {
        // One batch per product, with every image of it.
        productComplete: true,
        stream,
        check: client.check
      }
    })
})

export default shoplazza
