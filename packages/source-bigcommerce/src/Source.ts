/**
 * The `bigcommerce` source plugin: product images of a BigCommerce store, through the V2 catalog API.
 *
 * V2 has no store-wide image list, so the source enumerates the products (`GET /products`) and asks
 * for each product's images (`GET /products/{id}/images`), `concurrency` products at a time, with
 * core's `ProductFanout`: one product-complete batch per product, in order, each with the
 * checkpoint of the products page plus the products finished on it.
 */
import { Batch, Config, ConfigError, Http, type HttpError, type ProductImage, Source } from "@effetl/core"
import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { defaultBaseUrl, type ImageUrl, maxPageSize, toProductImage, urlFields } from "./Api.js"
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
  pageSize: Config.withDefault(Config.intRange(1, maxPageSize), maxPageSize, {
    description: "Products per page of the product list, and images per page of a product's images (`limit`; the API allows 250).",
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
  timeout: Http.HttpConfig.timeoutField,
  retry: Http.HttpConfig.retryField,
  rateLimit: Config.withDefault(RateSettings, { reserve: 1, slowDownBelow: 0.1 }, {
    description:
      "Pacing under the store's quota, read from the X-Rate-Limit-* headers of every response (a 429 still waits " +
      "X-Rate-Limit-Time-Reset-Ms and is retried).",
    examples: [{ reserve: 1, slowDownBelow: 0.1 }]
  })
})
export type BigCommerceConfig = typeof BigCommerceConfig.Type

/** Where a run is: ProductFanout's position (page, products done, last id) and what it was reading. */
const Position = Schema.extend(Http.ProductFanout.PositionSchema(Schema.Int), Schema.Struct({ reading: Schema.String }))
const decodePosition = Schema.decodeUnknownOption(Position)

/** How many ids of an explicit `productIds` list make one page of the fan-out (and of its checkpoint). */
const idsPageSize = 100

/** The `bigcommerce` source. */
export const bigcommerce = Source.define<BigCommerceConfig>({
  name: "bigcommerce",
  description: "BigCommerce V2 catalog product images (every product, or productIds), paced by the store's quota headers",
  config: BigCommerceConfig,
  make: (config, ctx) =>
    Effect.gen(function*() {
      const ids = yield* Http.ProductFanout.loadIds(config, {
        source: ctx.name,
        validate: (id) => (/^[1-9]\d{0,15}$/.test(id) ? undefined : "expected a positive integer")
      })
      const client = yield* Client.make({
        source: ctx.name,
        baseUrl: config.baseUrl,
        storeHash: config.storeHash,
        accessToken: config.accessToken,
        timeout: config.timeout,
        retry: config.retry,
        rate: config.rateLimit
      })

      const reading = Option.match(ids, {
        onNone: () => `every product, pageSize=${config.pageSize}`,
        onSome: (list) => `productIds (${list.length}, sha256:${createHash("sha256").update(list.join(",")).digest("hex").slice(0, 16)})`
      })
      const resume = Option.flatMap(ctx.checkpoint, (cp) => decodePosition(cp.value))
      if (Option.isSome(ctx.checkpoint) && Option.isNone(resume)) {
        return yield* new ConfigError({
          message: `source '${ctx.name}': the unfinished run's checkpoint is not one this source wrote; pass --restart to start over.`
        })
      }
      if (Option.isSome(resume) && resume.value.reading !== reading) {
        return yield* new ConfigError({
          message: `source '${ctx.name}': the unfinished run was reading [${resume.value.reading}] and the config now says [${reading}]; ` +
            `a saved page means nothing under other settings. Finish the run with its old settings, or pass --restart.`
        })
      }

      const fetch = (productId: string) =>
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

      const pages: (from: Option.Option<number>) => Stream.Stream<Http.ProductFanout.ProductPage<number>, HttpError> = Option.match(ids, {
        onNone: () => (from: Option.Option<number>) => client.productPages(from, config.pageSize),
        onSome: (list) => Http.ProductFanout.listPages(list, idsPageSize)
      })
      const fanout = Http.ProductFanout.stream({
        resume: Option.map(resume, ({ reading: _, ...position }) => position),
        pages,
        fetch,
        concurrency: config.concurrency,
        checkpoint: (position) => Batch.position({ ...position, reading })
      })

      // The first request proves the store and the token, and (for a whole-store sync) gives the total.
      const stream = Stream.unwrap(
        Effect.map(client.imageCount, (count) => Stream.concat(Option.isNone(ids) ? Stream.execute(ctx.progress.total(count)) : Stream.empty, fanout))
      )
      return {
        productComplete: true,
        stream,
        check: Effect.asVoid(client.imageCount)
      }
    })
})

export default bigcommerce
