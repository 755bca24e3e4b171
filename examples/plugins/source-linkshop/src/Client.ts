/**
 * The LinkShop client: core's `ApiClient` (auth, timeouts, retries, typed errors) with the API's
 * rate-limit headers driving the pacing, and the product list as a stream of pages, paginated by
 * core's `Paginate.linkHeader`. No loops of its own.
 */
import { Http, type HttpError } from "@effetl/core"
import type { HttpClient } from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { apiPath, paths, rateHeaders, readBudget, WirePage } from "./Api.js"

/** How to make a client. */
export interface ClientOptions {
  /** The pipeline's name of the source (messages name it). */
  readonly source: string
  readonly baseUrl: string
  readonly token: Redacted.Redacted<string>
  readonly retry: Http.HttpConfig.RetrySettings
  readonly timeout: string
}

/** Which products to list, and where to resume. */
export interface ListOptions {
  readonly pageSize: number
  /** Only products updated at or after this instant (ISO-8601). */
  readonly updatedSince: Option.Option<string>
  /** A `next` URL saved in a checkpoint: resume there. */
  readonly resume: Option.Option<string>
}

/** The client. */
export interface LinkShopClient {
  /** The product list, page by page; each page knows its `next` URL (the resume position). */
  readonly products: (options: ListOptions) => Stream.Stream<Http.Paginate.LinkPage<ReadonlyArray<unknown>>, HttpError>
  /** One cheap request, for `effetl run --dry-run`. */
  readonly check: Effect.Effect<void, HttpError>
}

/** Makes a client; its rate limiter is shared by every client with the same token. */
export const make = (options: ClientOptions): Effect.Effect<LinkShopClient, never, HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const api = yield* Http.ApiClient.make({
      source: options.source,
      baseUrl: options.baseUrl.replace(/\/+$/, "") + apiPath,
      auth: { header: "Authorization", value: bearer(options.token) },
      timeout: Http.HttpConfig.toDuration(options.timeout),
      retry: Http.HttpConfig.toRetry(options.retry),
      // The open header policy: our own reader of the API's budget headers.
      rateLimit: Http.RateLimit.headerPolicy({
        name: "linkshop-window",
        read: readBudget(),
        said: [rateHeaders.remaining, rateHeaders.reset]
      })
    })
    return {
      products: (list) =>
        Http.Paginate.linkHeader(api, {
          path: paths.products,
          params: {
            per_page: list.pageSize,
            ...Option.match(list.updatedSince, { onNone: () => ({}), onSome: (since) => ({ updated_since: since }) })
          },
          schema: WirePage,
          resume: list.resume
        }),
      check: Effect.asVoid(api.getJson(paths.products, { params: { per_page: 1 } }, WirePage))
    }
  })

/** `Bearer <token>`, still redacted. */
const bearer = (token: Redacted.Redacted<string>): Redacted.Redacted<string> => Redacted.make(`Bearer ${Redacted.value(token)}`)
