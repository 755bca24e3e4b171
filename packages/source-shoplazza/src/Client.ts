/**
 * The Shoplazza client: core's `ApiClient` (the `access-token` header as a `Redacted`, timeouts,
 * retries with backoff on 429, the per-token rate limiter, typed errors carrying the `Request-Id`)
 * plus the two endpoints a product-image sync needs. No loops of its own: the product list is
 * core's cursor pagination.
 */
import { Http, type HttpError, Unauthorized } from "@effetl/core"
import type { HttpClient } from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { imagesPath, productsPath, WireImages, WireProductsPage } from "./Api.js"

/** How to reach a shop. */
export interface ClientOptions {
  readonly source: string
  /** The API base, `{origin}/openapi/{version}`. */
  readonly apiBase: string
  /** How messages name the shop (`shop 'acme'`, `the shop at http://127.0.0.1:8080`). */
  readonly shopLabel: string
  readonly accessToken: Redacted.Redacted<string>
  /** One attempt's timeout, e.g. `"30 seconds"`. */
  readonly timeout: string
  readonly retry: Http.HttpConfig.RetrySettings
  /** The proactive budget; none: no pacing (429s are still retried with backoff). */
  readonly rateLimit: Option.Option<Http.HttpConfig.RateLimitSettings>
}

/** A page of product ids; its key is the cursor that fetched it (`null` for the first page). */
export type ProductPage = Http.ProductFanout.ProductPage<string | null>

/** A product's images, or the API's 422 for it (deleted, or not a valid id). */
export type ProductImages =
  | { readonly _tag: "Images"; readonly images: ReadonlyArray<unknown>; readonly requestId: Option.Option<string> }
  | { readonly _tag: "Rejected"; readonly status: number; readonly message: string; readonly requestId: Option.Option<string> }

/** The shop's endpoints. */
export interface ShoplazzaClient {
  /** The pages of the product list (`limit` per page), from the page fetched by cursor `from` (none: the first). */
  readonly productPages: (limit: number, from: Option.Option<string | null>) => Stream.Stream<ProductPage, HttpError>
  /** The images of one product. */
  readonly images: (productId: string) => Effect.Effect<ProductImages, HttpError>
  /** One cheap request (`products?limit=1`) that proves the base URL, version and token work. */
  readonly check: Effect.Effect<void, HttpError>
}

/** Makes a Shoplazza client. */
export const make = (options: ClientOptions): Effect.Effect<ShoplazzaClient, never, HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const api = yield* Http.ApiClient.make({
      source: options.source,
      baseUrl: options.apiBase,
      auth: { header: "access-token", value: options.accessToken },
      timeout: Http.HttpConfig.toDuration(options.timeout),
      retry: Http.HttpConfig.toRetry(options.retry),
      requestIdHeaders: ["Request-Id"],
      ...(Option.isSome(options.rateLimit) ? { rateLimit: Http.HttpConfig.toRateLimit(options.rateLimit.value) } : {})
    })
    const named = nameTheShop(options.shopLabel)

    const listPage = (limit: number, cursor: Option.Option<string>) =>
      api.getJson(productsPath, { params: { limit, ...(Option.isSome(cursor) ? { cursor: cursor.value } : {}) } }, WireProductsPage)

    const productPages: ShoplazzaClient["productPages"] = (limit, from) =>
      Http.Paginate.cursor({
        source: options.source,
        start: Option.flatMap(from, Option.fromNullable),
        fetch: (cursor) => listPage(limit, cursor),
        nextCursor: (page) => page.cursor,
        hasMore: (page) => page.has_more
      }).pipe(
        Stream.map((page): ProductPage => ({
          key: Option.getOrNull(page.cursor),
          next: page.next,
          ids: page.value.products.map((p) => p.id)
        })),
        Stream.mapError(named)
      )

    const images: ShoplazzaClient["images"] = (productId) =>
      api.requestJson({ path: imagesPath(productId), answers: [422] }, WireImages).pipe(
        Effect.map((reply): ProductImages =>
          reply._tag === "Ok"
            ? { _tag: "Images", images: reply.value.images, requestId: reply.requestId }
            : {
              _tag: "Rejected",
              status: reply.status,
              message: Option.getOrElse(reply.vendorMessage, () => "no message"),
              requestId: reply.requestId
            }
        ),
        Effect.mapError(named)
      )

    const check = Effect.asVoid(listPage(1, Option.none())).pipe(Effect.mapError(named))
    return { productPages, images, check }
  })

/** An `Unauthorized` says which shop refused the token (the token itself is never in a message). */
const nameTheShop = (label: string) => (error: HttpError): HttpError => {
  if (error._tag !== "Unauthorized") return error
  const prefix = `source '${error.source}': `
  const rest = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message
  return new Unauthorized({
    source: error.source,
    status: error.status,
    requestId: error.requestId,
    message: `${prefix}${label} refused the access token: ${rest}`
  })
}
