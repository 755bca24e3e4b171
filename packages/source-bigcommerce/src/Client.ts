/**
 * The BigCommerce V2 client: core's `ApiClient` (auth, timeouts, retries, typed errors) with the
 * store's header-driven rate limit, plus the catalog endpoints and their page-number pagination.
 * No loops of its own: pagination and pacing are core's.
 */
import { type HttpError, Http } from "@effetl/core"
import type { HttpClient } from "@effect/platform/HttpClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { paths, rateHeaders, storePath, WireCount, WireProduct } from "./Api.js"

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

/** What one product's images endpoint gave: every image (all pages), or that the product is gone. */
export type ProductImages =
  | { readonly _tag: "Found"; readonly items: ReadonlyArray<unknown> }
  | { readonly _tag: "NotFound"; readonly status: number; readonly vendorMessage: Option.Option<string> }

/** The store's catalog endpoints. */
export interface BigCommerceClient {
  /** The pages of the product list from page `from` (none: page 1), as pages of product ids. */
  readonly productPages: (from: Option.Option<number>, pageSize: number) => Stream.Stream<Http.ProductFanout.ProductPage<number>, HttpError>
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
        // On 429, wait as long as the store says its window has left.
        resetHeader: { name: rateHeaders.reset, unit: "milliseconds" }
      },
      rateLimit: Http.RateLimit.fromHeaders({
        left: rateHeaders.left,
        reset: rateHeaders.reset,
        resetUnit: "milliseconds",
        quota: rateHeaders.quota,
        window: rateHeaders.window,
        slowDownBelow: options.rate.slowDownBelow,
        reserve: options.rate.reserve
      }),
      // The quota is the store's: one budget per store and token, whatever the number of sources.
      rateLimitKey: `bigcommerce:${new URL(base).origin}:${options.storeHash}:${Http.RateLimit.credentialKey(options.accessToken)}`
    })

    /** One page of a list: `None` for the 204 past the end. */
    const listPage = <A, I>(path: string, page: number, pageSize: number, item: Schema.Schema<A, I>, answers: ReadonlyArray<number>) =>
      api.requestJson({ path, params: { page, limit: pageSize }, answers }, Schema.Array(item))

    const productPages: BigCommerceClient["productPages"] = (from, pageSize) =>
      Http.Paginate.pageNumber({
        start: Option.getOrElse(from, () => 1),
        fetch: (page) =>
          Effect.map(listPage(paths.products, page, pageSize, WireProduct, [204]), (reply) =>
            reply._tag === "Ok" ? Option.some(reply.value) : Option.none()),
        isEmpty: (products) => products.length === 0,
        isLast: (products) => products.length < pageSize
      }).pipe(
        Stream.map(({ page, value }) => ({
          key: page,
          // A short page is the last one; after a full page the next may be a 204.
          next: value.length < pageSize ? Option.none() : Option.some(page + 1),
          ids: value.map((product) => String(product.id))
        }))
      )

    type ImagePage = { readonly items: ReadonlyArray<unknown> } | { readonly gone: ProductImages }
    const images: BigCommerceClient["images"] = (productId, pageSize) =>
      Http.Paginate.pageNumber<ImagePage, HttpError, never>({
        fetch: (page) =>
          Effect.map(listPage(paths.images(productId), page, pageSize, Schema.Unknown, [204, 404]), (reply): Option.Option<ImagePage> => {
            if (reply._tag === "Ok") return Option.some({ items: reply.value })
            if (reply.status === 204) return Option.none()
            return Option.some({ gone: { _tag: "NotFound", status: reply.status, vendorMessage: reply.vendorMessage } })
          }),
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
    return { productPages, images, imageCount }
  })
