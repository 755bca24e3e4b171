/**
 * The __plugin__ client: core's `ApiClient` (auth, timeouts, retries honouring `Retry-After`, rate
 * limits, typed errors such as `Unauthorized`) plus the API's endpoint and its cursor pagination.
 * No loops of its own: pagination is core's (`Http.Paginate`).
 */
import { Http, type HttpError } from "@effetl/core"
import type { HttpClient } from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { imagesPath, WirePage } from "./Api.js"

/** How to reach the API. */
export interface ClientOptions {
  /** The pipeline's name for the source instance (every message names it). */
  readonly source: string
  readonly baseUrl: string
  readonly token: Redacted.Redacted<string>
  /** One attempt's timeout, e.g. `"30 seconds"`. */
  readonly timeout: string
  readonly retry: Http.HttpConfig.RetrySettings
}

/** The API's endpoints. */
export interface __Ident__Client {
  /** The pages of the image list from `start` (none: the first page), `pageSize` images each. */
  readonly pages: (options: { readonly pageSize: number; readonly start: Option.Option<string> }) => Stream.Stream<Http.Paginate.CursorPage<WirePage>, HttpError>
  /** One cheap request that proves the base URL and the token work (`effetl run --dry-run`). */
  readonly check: Effect.Effect<void, HttpError>
}

/** Makes a client; its rate limiter (if any) lives as long as the scope. */
export const make = (options: ClientOptions): Effect.Effect<__Ident__Client, never, HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const api = yield* Http.ApiClient.make({
      source: options.source,
      baseUrl: options.baseUrl,
      auth: { header: "Authorization", value: Redacted.make(`Bearer ${Redacted.value(options.token)}`) },
      timeout: Http.HttpConfig.toDuration(options.timeout),
      retry: Http.HttpConfig.toRetry(options.retry)
    })
    const page = (limit: number, cursor: Option.Option<string>) =>
      api.getJson(imagesPath, { params: { limit, cursor: Option.getOrUndefined(cursor) } }, WirePage)
    return {
      pages: ({ pageSize, start }) =>
        Http.Paginate.cursor({
          source: options.source,
          start,
          fetch: (cursor) => page(pageSize, cursor),
          nextCursor: (p) => p.next_cursor,
          hasMore: (p) => p.has_more
        }),
      check: Effect.asVoid(page(1, Option.none()))
    }
  })
