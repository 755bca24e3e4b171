/**
 * The BigCommerce V2 client: core's `ApiClient` (auth, timeouts, retries, typed errors) with the
 * store's header-driven rate limit, plus the catalog endpoints. The product list is read by id
 * range (keyset: `min_id` = the last id of the previous page + 1), so a product added or deleted
 * during a scan shifts nothing. No loops of its own: pagination and pacing are core's.
 */
import { ApiError, type HttpError, Http } from "@effetl/core"
import type { HttpClient } from "@effect/platform/HttpClient"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { formatRfc2822, paths, productFields, rateHeaders, readQuota, storePath, WireCount, WireProduct } from "./Api.js"

/** How to pace requests under the store's quota. */
export interface RateSettings {
  /** Requests of each window never used by us, left for the other apps on the store (and so `Requests-Left` never reaches 0 by our doing). */
  readonly reserve: number
  /** Below this fraction of the quota left, requests are paced (never slower than the quota's own rate) instead of sent at once. */
  readonly slowDownBelow: number
}

/** How to reach a store. */
export interface ClientOptions {
  readonly source: string
  readonly baseUrl: string
  readonly storeHash: string
  readonly accessToken: Redacted.Redacted<string>
  /** One attempt's timeout, e.g. `"30 seconds"`. */
  readonly timeout: string
  readonly retry: Http.HttpConfig.RetrySettings
  readonly rate: RateSettings
}

/** Which products a listing covers: an id range and, for an incremental run, a modified-since date. */
export interface ProductFilter {
  /** The lowest product id (`min_id`). */
  readonly minId: number
  /** The highest product id (`max_id`), none for no upper bound. */
  readonly maxId: Option.Option<number>
  /** `min_date_modified`: only products modified at or after this instant. */
  readonly modifiedSince: Option.Option<Date>
}

/** One page of the product list: ProductFanout's page (keyed by its `min_id`) plus what a cursor needs. */
export interface ProductPage extends Http.ProductFanout.ProductPage<number> {
  /** Each product's `date_modified` as sent (same order as `ids`; undefined when it sent none). */
  readonly modified: ReadonlyArray<string | undefined>
  /**
   * The server's clock when the request was sent, by its `Date` header less the request's duration
   * (whole seconds, rounded down); none without a `Date` header.
   */
  readonly serverTime: Option.Option<number>
  /** The local clock when the request was sent (epoch ms). */
  readonly sentAt: number
}

/** What one product's images endpoint gave: every image (all pages), or that the product is gone. */
export type ProductImages =
  | { readonly _tag: "Found"; readonly items: ReadonlyArray<unknown> }
  | { readonly _tag: "NotFound"; readonly status: number; readonly vendorMessage: Option.Option<string> }

/** The store's catalog endpoints. */
export interface BigCommerceClient {
  /**
   * The product list under `filter`, page after page by id range from `min_id` = `from` (the first
   * page's key; later pages start after the last id of the one before), until a 204, an empty or a
   * short page.
   */
  readonly productPages: (from: number, filter: ProductFilter, pageSize: number) => Stream.Stream<ProductPage, HttpError>
  /** `GET /products/count` under `filter`. */
  readonly productCount: (filter: ProductFilter) => Effect.Effect<number, HttpError>
  /** Every image of one product, page after page until a 204, an empty or a short page. */
  readonly images: (productId: string, pageSize: number) => Effect.Effect<ProductImages, HttpError>
  /** `GET /products/images/count`: the number of product images in the store. */
  readonly imageCount: Effect.Effect<number, HttpError>
}

/** Makes a store client; its rate limiter is shared by every client of the same store and token. */
export const make = (options: ClientOptions): Effect.Effect<BigCommerceClient, never, HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const base = options.baseUrl.replace(/\/+$/, "") + storePath(options.storeHash)
    const api = yield* Http.ApiClient.make({
      source: options.source,
      baseUrl: base,
      headers: { Accept: "application/json" },
      auth: { header: "X-Auth-Token", value: options.accessToken },
      timeout: Http.HttpConfig.toDuration(options.timeout),
      retry: {
        ...Http.HttpConfig.toRetry(options.retry),
        // On 429, wait as long as the store says: its window's reset, or X-Retry-After when that is longer.
        resetHeaders: [
          { name: rateHeaders.reset, unit: "milliseconds" },
          { name: rateHeaders.retryAfter, unit: "seconds" }
        ]
      },
      rateLimit: Http.RateLimit.headerPolicy({
        name: "bigcommerce-quota",
        read: readQuota,
        said: [rateHeaders.left, rateHeaders.reset],
        slowDownBelow: options.rate.slowDownBelow,
        reserve: options.rate.reserve
      }),
      // The quota is the store's: one budget per store and token, whatever the number of sources.
      rateLimitKey: `bigcommerce:${new URL(base).origin}:${options.storeHash}:${Http.RateLimit.credentialKey(options.accessToken)}`
    })

    const filterParams = (filter: ProductFilter) => ({
      min_id: filter.minId,
      ...Option.match(filter.maxId, { onNone: () => ({}), onSome: (max) => ({ max_id: max }) }),
      ...Option.match(filter.modifiedSince, { onNone: () => ({}), onSome: (since) => ({ min_date_modified: formatRfc2822(since) }) })
    })

    interface Listed {
      readonly page: ProductPage
      readonly done: boolean
    }
    /** One page of products from `minId`: checked to be sorted by id inside the filter, as keyset paging needs. */
    const listFrom = (minId: number, filter: ProductFilter, pageSize: number): Effect.Effect<Listed, HttpError> =>
      Effect.gen(function*() {
        const sentAt = yield* Clock.currentTimeMillis
        const reply = yield* api.requestJson(
          { path: paths.products, params: { ...filterParams({ ...filter, minId }), include: productFields, limit: pageSize }, answers: [204] },
          Schema.Array(WireProduct)
        )
        const receivedAt = yield* Clock.currentTimeMillis
        const date = Option.flatMap(Option.fromNullable(reply.headers["date"]), (d) => {
          const ms = Date.parse(d)
          return Number.isNaN(ms) ? Option.none() : Option.some(ms)
        })
        const serverTime = Option.map(date, (ms) => Math.floor((ms - (receivedAt - sentAt)) / 1000) * 1000)
        const products = reply._tag === "Ok" ? reply.value : []
        let previous = minId - 1
        for (const product of products) {
          const beyond = Option.isSome(filter.maxId) && product.id > filter.maxId.value
          if (product.id <= previous || beyond) {
            return yield* new ApiError({
              source: options.source,
              url: reply.url,
              message: `source '${options.source}': the product list answered min_id=${minId} with product ${product.id} after ` +
                `${previous}; it must be sorted by id within min_id..max_id (the documented default), which reading by id range needs`
            })
          }
          previous = product.id
        }
        const done = products.length < pageSize
        const last = products.at(-1)?.id
        return {
          page: {
            key: minId,
            next: done || last === undefined ? Option.none() : Option.some(last + 1),
            ids: products.map((p) => String(p.id)),
            modified: products.map((p) => p.date_modified ?? undefined),
            serverTime,
            sentAt
          },
          done
        }
      })

    const productPages: BigCommerceClient["productPages"] = (from, filter, pageSize) =>
      Http.Paginate.tokenFeed({
        source: options.source,
        start: from,
        fetch: (minId) => listFrom(minId, filter, pageSize),
        nextToken: (listed) => Option.getOrElse(listed.page.next, () => listed.page.key),
        isDone: (listed) => listed.done
      }).pipe(Stream.map(({ value }) => value.page))

    const productCount: BigCommerceClient["productCount"] = (filter) =>
      Effect.map(api.getJson(paths.productCount, { params: filterParams(filter) }, WireCount), (body) => body.count)

    type ImagePage = { readonly items: ReadonlyArray<unknown> } | { readonly gone: ProductImages }
    const images: BigCommerceClient["images"] = (productId, pageSize) =>
      Http.Paginate.pageNumber<ImagePage, HttpError, never>({
        fetch: (page) =>
          Effect.map(
            api.requestJson({ path: paths.images(productId), params: { page, limit: pageSize }, answers: [204, 404] }, Schema.Array(Schema.Unknown)),
            (reply): Option.Option<ImagePage> => {
              if (reply._tag === "Ok") return Option.some({ items: reply.value })
              if (reply.status === 204) return Option.none()
              return Option.some({ gone: { _tag: "NotFound", status: reply.status, vendorMessage: reply.vendorMessage } })
            }
          ),
        isEmpty: (p) => "items" in p && p.items.length === 0,
        isLast: (p) => "gone" in p || p.items.length < pageSize
      }).pipe(
        Stream.runCollect,
        Effect.map((chunk): ProductImages => {
          const pages = Chunk.toReadonlyArray(chunk).map((p) => p.value)
          // A product deleted while its pages were read is gone as a whole: no partial product.
          const gone = pages.find((p): p is { readonly gone: ProductImages } => "gone" in p)
          if (gone !== undefined) return gone.gone
          return { _tag: "Found", items: pages.flatMap((p) => ("items" in p ? p.items : [])) }
        })
      )

    const imageCount = Effect.map(api.getJson(paths.imageCount, {}, WireCount), (body) => body.count)
    return { productPages, productCount, images, imageCount }
  })
