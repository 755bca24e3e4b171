/**
 * The Shoplazza client: core's `ApiClient` (the `access-token` header as a `Redacted`, timeouts,
 * retries with backoff on 429, the per-token rate limiter, typed errors carrying the `Request-Id`)
 * plus the endpoints a product-image sync needs: the product list (core's cursor pagination, with
 * Shoplazza's end-of-list rule), its count, and one product's images.
 */
import { ApiError, DecodeError, Http, type HttpError, Unauthorized } from "@effetl/core"
import type { HttpClient } from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  decodeListedProduct,
  imagesPath,
  instantOf,
  listFields,
  productsCountPath,
  productsPath,
  WireCount,
  WireImages,
  WireProductsPage
} from "./Api.js"

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

/** One product of the list, as far as a sync reads it. */
export interface ListedProduct {
  readonly id: string
  /** Its `updated_at` in epoch milliseconds, when the entry has a readable one. */
  readonly updatedAt: number | undefined
  /** The images of the entry; none when the entry has no `images` key (they must be asked for on their own). */
  readonly images: Option.Option<ReadonlyArray<unknown>>
}

/** One page of the product list. */
export interface ListPage {
  /** The cursor that fetched it (`null`: the first page). */
  readonly key: string | null
  /** The cursor of the next page; none at the end of the list. */
  readonly next: Option.Option<string>
  readonly products: ReadonlyArray<ListedProduct>
  /** The shop's clock when it answered (its `Date` header), in epoch milliseconds. */
  readonly date: Option.Option<number>
}

/** A fetched page of the list, before core's pagination wraps it. */
interface Fetched {
  readonly products: ReadonlyArray<ListedProduct>
  readonly next: Option.Option<string>
  readonly date: Option.Option<number>
}

/** The filters and page size of a listing. */
export interface ListQuery {
  /** `per_page`. */
  readonly perPage: number
  /** `updated_at_min`, when the listing reads only what changed. */
  readonly updatedAtMin: Option.Option<string>
  /** `ids` (comma-separated), when the listing reads only these products (a partition). */
  readonly ids?: ReadonlyArray<string>
}

/** A product's images, or the API's 422 for it (deleted, or not a valid id). */
export type ProductImages =
  | { readonly _tag: "Images"; readonly images: ReadonlyArray<unknown>; readonly requestId: Option.Option<string> }
  | { readonly _tag: "Rejected"; readonly status: number; readonly message: string; readonly requestId: Option.Option<string> }

/** The shop's endpoints. */
export interface ShoplazzaClient {
  /**
   * The pages of the product list (`GET products?per_page=&cursor=&fields=id,updated_at,images`), from
   * the page fetched by cursor `from` (none, or `null`: the first). The list ends at an empty `cursor`,
   * an empty `products` or `has_more: false`; a cursor the list gave before in this listing is an
   * `ApiError` (never a loop, core's `Paginate.cursor`).
   */
  readonly productPages: (query: ListQuery, from: Option.Option<string | null>, fields?: string) => Stream.Stream<ListPage, HttpError>
  /** `GET products/count` with the listing's filters. */
  readonly count: (query: ListQuery) => Effect.Effect<number, HttpError>
  /** The images of one product (`GET products/{id}/images`). */
  readonly images: (productId: string) => Effect.Effect<ProductImages, HttpError>
  /** One cheap request (`products?per_page=1&fields=id`) that proves the base URL, version and token work. */
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
    const filters = (query: ListQuery) => ({
      ...Option.match(query.updatedAtMin, { onNone: () => ({}), onSome: (at) => ({ updated_at_min: at }) }),
      ...(query.ids !== undefined ? { ids: query.ids.join(",") } : {})
    })

    /** One page: the decoded body, and the shop's clock from the `Date` header. */
    const listPage = (query: ListQuery, cursor: Option.Option<string>, fields: string) =>
      Effect.flatMap(
        api.requestJson(
          {
            path: productsPath,
            params: { per_page: query.perPage, ...(Option.isSome(cursor) ? { cursor: cursor.value } : {}), fields, ...filters(query) }
          },
          WireProductsPage
        ),
        (reply) =>
          reply._tag === "Ok"
            ? Effect.succeed({ body: reply.value, date: dateOf(reply.headers["date"]), url: reply.url })
            : Effect.fail(new ApiError({ source: options.source, status: reply.status, message: `source '${options.source}': unexpected HTTP ${reply.status}` }))
      )

    // Core's cursor pagination, with Shoplazza's end of list; a cursor the list already gave in this
    // listing is core's `ApiError` (a list that hands one out again would read the same products forever).
    const productPages: ShoplazzaClient["productPages"] = (query, from, fields = listFields) =>
      Http.Paginate.cursor({
        source: options.source,
        start: Option.flatMap(from, Option.fromNullable),
        fetch: (cursor): Effect.Effect<Fetched, HttpError> =>
          Effect.flatMap(listPage(query, cursor, fields), (page) =>
            Effect.map(productsOf(options.source, page.body, page.url), (products) => ({ products, next: nextCursorOf(page.body), date: page.date }))),
        nextCursor: (page) => Option.getOrNull(page.next),
        hasMore: (page) => Option.isSome(page.next)
      }).pipe(
        Stream.map((page): ListPage => ({
          key: Option.getOrNull(page.cursor),
          next: page.next,
          products: page.value.products,
          date: page.value.date
        })),
        Stream.mapError(named)
      )

    const count: ShoplazzaClient["count"] = (query) =>
      Effect.map(api.getJson(productsCountPath, { params: filters(query) }, WireCount), (body) => body.count).pipe(Effect.mapError(named))

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

    const check = Effect.asVoid(listPage({ perPage: 1, updatedAtMin: Option.none() }, Option.none(), "id")).pipe(Effect.mapError(named))
    return { productPages, count, images, check }
  })

/**
 * The cursor of the next page, or none at the end of the list: an empty or missing `cursor`, an
 * empty `products`, or `has_more: false` (newer versions) ends it.
 */
export const nextCursorOf = (page: WireProductsPage): Option.Option<string> =>
  page.cursor === undefined || page.cursor === null || page.cursor === "" || page.products.length === 0 || page.has_more === false
    ? Option.none()
    : Option.some(page.cursor)

/** The products of a page; an entry without a string `id` breaks the list's contract (a `DecodeError`). */
const productsOf = (source: string, page: WireProductsPage, url: string): Effect.Effect<ReadonlyArray<ListedProduct>, DecodeError> => {
  const out: Array<ListedProduct> = []
  for (const [i, entry] of page.products.entries()) {
    const decoded = decodeListedProduct(entry)
    if (Either.isLeft(decoded)) {
      return Effect.fail(
        new DecodeError({
          source,
          url,
          path: `products[${i}]`,
          message: `source '${source}': the product list's entry ${i} cannot be read: ${decoded.left.error}`,
          snippet: JSON.stringify(entry)?.slice(0, 200) ?? String(entry)
        })
      )
    }
    const p = decoded.right
    out.push({ id: p.id, updatedAt: instantOf(p.updated_at), images: Option.fromNullable(p.images) })
  }
  return Effect.succeed(out)
}

/** An HTTP `Date` header in epoch milliseconds. */
const dateOf = (header: string | undefined): Option.Option<number> => {
  if (header === undefined) return Option.none()
  const ms = Date.parse(header)
  return Number.isFinite(ms) ? Option.some(ms) : Option.none()
}

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
