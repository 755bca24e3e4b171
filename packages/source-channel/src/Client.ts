/**
 * The Akinon sales-channel client: core's `ApiClient` (auth, timeouts, retries, rate limit, typed
 * errors) plus the channel's endpoints and DRF pagination. No loops of its own: pagination is core's.
 */
import { Http, type HttpError } from "@effetl/core"
import type { HttpClient } from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { channelPath, imagePath, type Mode, modePaths } from "./Api.js"

/** How to reach a channel. */
export interface ClientOptions {
  readonly source: string
  readonly baseUrl: string
  readonly channelId: number
  readonly token: Redacted.Redacted<string>
  /** One attempt's timeout, e.g. `"30 seconds"`. */
  readonly timeout: string
  readonly retry: Http.HttpConfig.RetrySettings
  readonly rateLimit?: Http.HttpConfig.RateLimitSettings
}

/** List filters, already in the API's parameter names (an array repeats the parameter). */
export type Filters = Http.SafeUrl.Params

/** A page of raw items (each decoded later on its own, so one bad item is a dead letter). */
export type Page = Http.Paginate.DrfPage<unknown>

/** The channel's endpoints. */
export interface ChannelClient {
  /** The pages of a list endpoint from `startPage`, `concurrency` at a time once `count` is known. */
  readonly pages: (options: {
    readonly mode: Mode
    readonly filters: Filters
    readonly pageSize: number
    readonly startPage: number
    readonly concurrency: number
  }) => Stream.Stream<Page, HttpError>
  /** One image by id (`{id}/` or `{id}/detailed/`); `None` when the API says it does not exist. */
  readonly image: (id: number, detailed: boolean) => Effect.Effect<{ readonly found: boolean; readonly item: unknown }, HttpError>
  /** One cheap request that proves the base URL, channel and token work. */
  readonly check: Effect.Effect<void, HttpError>
}

/** Makes a channel client. */
export const make = (options: ClientOptions): Effect.Effect<ChannelClient, never, HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const api = yield* Http.ApiClient.make({
      source: options.source,
      // The channel is the base and every path ends in "/": an empty path would lose the trailing
      // slash of `product_images/`, and Django answers that with a 301.
      baseUrl: options.baseUrl.replace(/\/+$/, "") + channelPath(options.channelId),
      auth: { header: "Authorization", value: tokenHeader(options.token) },
      timeout: Http.HttpConfig.toDuration(options.timeout),
      retry: Http.HttpConfig.toRetry(options.retry),
      ...(options.rateLimit ? { rateLimit: Http.HttpConfig.toRateLimit(options.rateLimit) } : {})
    })
    const pages: ChannelClient["pages"] = (o) => {
      // The pending-change queues may shrink while read: follow `next` one page at a time there.
      const concurrency = o.mode === "list" || o.mode === "detailed" ? o.concurrency : 1
      return Http.Paginate.drf(api, {
        path: modePaths[o.mode],
        item: Schema.Unknown,
        limit: o.pageSize,
        params: o.filters,
        startPage: o.startPage,
        concurrency
      })
    }
    const image: ChannelClient["image"] = (id, detailed) =>
      Effect.map(
        api.requestJson({ path: imagePath(id, detailed), answers: [404] }, Schema.Unknown),
        (reply) => (reply._tag === "Ok" ? { found: true, item: reply.value } : { found: false, item: { pk: id } })
      )
    const check = Effect.asVoid(api.getJson(modePaths.list, { params: { page: 1, limit: 1 } }, Http.Paginate.drfEnvelope(Schema.Unknown)))
    return { pages, image, check }
  })

/** The header value `Token <key>`, still redacted. */
const tokenHeader = (token: Redacted.Redacted<string>): Redacted.Redacted<string> =>
  Redacted.make(`Token ${Redacted.value(token)}`)
