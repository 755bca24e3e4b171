/**
 * The Acceo Ogasys client: core's `ApiClient` (auth, timeouts, retries honouring Retry-After, rate
 * limit, typed errors, body cap) plus Acceo's two endpoints, both return formats and the envelope
 * rules (`returncode`, `warnings`). The change feed is core's `Paginate.tokenFeed`: no loops here.
 */
import { ApiError, DecodeError, Http, type HttpError, RunStats } from "@effetl/core"
import type { HttpClient } from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import {
  accept,
  feedPath,
  type Format,
  type IdsEndpoint,
  type ImageMode,
  optionsFor,
  parseBody,
  productPath,
  productUrlPath,
  tokenOf,
  WireEnvelope
} from "./Api.js"

/** How the API key goes out: the header and its value, where `{key}` stands for the key. */
export interface AuthSettings {
  readonly header: string
  readonly template: string
}

/** How to reach the API. */
export interface ClientOptions {
  readonly source: string
  readonly baseUrl: string
  readonly apiKey: Redacted.Redacted<string>
  readonly auth: AuthSettings
  readonly format: Format
  readonly images: ImageMode
  /** The route of a product by id. */
  readonly idsEndpoint: IdsEndpoint
  /** The `session` sent with every request of this run. */
  readonly session: string
  /** The largest response body accepted. */
  readonly maxResponseBytes: number
  /** The returncodes that mean "no such product" on `products/images/{product_id}`. */
  readonly notFoundReturncodes: ReadonlyArray<number>
  /** One attempt's timeout, e.g. `"30 seconds"`. */
  readonly timeout: string
  readonly retry: Http.HttpConfig.RetrySettings
  readonly rateLimit?: Http.HttpConfig.RateLimitSettings
}

/** One lot of the change feed: its envelope and the token to send next. */
export interface Lot {
  readonly envelope: WireEnvelope
  /** The token sent for this lot (`""`: none). */
  readonly sent: string
  /** The token to send next: the response token; for an empty lot, the token sent (if one was). */
  readonly next: string
  /** The product entries, raw (each mapped on its own). */
  readonly entries: ReadonlyArray<unknown>
  /** Entries left after this lot. */
  readonly queuecount: number
}

/** One product by id: its entries, or the API's "no such product". */
export type ProductReply =
  | { readonly _tag: "Found"; readonly entries: ReadonlyArray<unknown> }
  | { readonly _tag: "NotFound"; readonly reason: string }

/** Acceo's endpoints. */
export interface AcceoClient {
  /** The change feed from `start` (`""`: no token) until `queuecount` is 0 or a lot is empty. */
  readonly feed: (start: string, count: number) => Stream.Stream<Http.Paginate.TokenPage<string, Lot>, HttpError>
  /** One product's images, from the `idsEndpoint` route. */
  readonly product: (productId: string) => Effect.Effect<ProductReply, HttpError>
  /** One cheap request that proves the base URL and the key work: a feed lot of one, or one product. */
  readonly check: (productId?: string) => Effect.Effect<void, HttpError>
}

/** Makes a client. */
export const make = (options: ClientOptions): Effect.Effect<AcceoClient, never, HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const api = yield* Http.ApiClient.make({
      source: options.source,
      baseUrl: options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`,
      headers: { Accept: accept[options.format] },
      auth: { header: options.auth.header, value: authValue(options.auth.template, options.apiKey) },
      timeout: Http.HttpConfig.toDuration(options.timeout),
      retry: Http.HttpConfig.toRetry(options.retry),
      ...(options.rateLimit ? { rateLimit: Http.HttpConfig.toRateLimit(options.rateLimit) } : {})
    })
    const prefix = `source '${options.source}'`
    const common = { session: options.session, options: optionsFor(options.images) }

    /**
     * GETs a path and decodes its envelope (either format: the body is read as what it is, JSON with
     * 64-bit integers kept exact, or XML), counting and logging every warning. A body that cannot be
     * read (cut short, garbled) is retried by core like a reset; one that does not fit the envelope
     * is a DecodeError at once.
     */
    const get = (path: string, params: Http.SafeUrl.Params) =>
      Effect.gen(function*() {
        const reply = yield* api.requestJson({ path, params, maxBytes: options.maxResponseBytes, parse: parseBody }, WireEnvelope)
        if (reply._tag === "Answer") return yield* Effect.dieMessage(`an answer (HTTP ${reply.status}) to a request that declared none`)
        const envelope = reply.value
        for (const warning of envelope.warnings ?? []) {
          yield* RunStats.add(options.source, "warnings")
          yield* Effect.logWarning(`${prefix}: the API warned (data may be partly lost): ${Http.ErrorBody.oneLine(warning)}`).pipe(
            Effect.annotateLogs({ source: options.source, url: reply.url, warning })
          )
        }
        return { envelope, url: reply.url }
      })

    const returncodeError = (envelope: WireEnvelope, url: string) =>
      new ApiError({
        source: options.source,
        status: 200,
        code: String(envelope.returncode),
        ...(envelope.returnmsg ? { vendorMessage: envelope.returnmsg } : {}),
        url,
        message: `${prefix}: the API answered GET ${url} with returncode ${envelope.returncode}${
          envelope.returnmsg ? ` (${Http.ErrorBody.oneLine(envelope.returnmsg)})` : ""
        }`
      })

    const lot = (sent: string, count: number): Effect.Effect<Lot, HttpError> =>
      Effect.gen(function*() {
        const { envelope, url } = yield* get(feedPath, { ...common, ...(sent === "" ? {} : { token: sent }), count })
        if (envelope.returncode !== 0) return yield* returncodeError(envelope, url)
        const broken = (what: string) =>
          new DecodeError({ source: options.source, message: `${prefix}: the response to GET ${url} ${what}`, url })
        const entries = envelope.product ?? []
        if (envelope.queuecount === undefined || envelope.queuecount === null) return yield* broken("has no queuecount")
        const token = tokenOf(envelope)
        if (Either.isLeft(token)) return yield* broken(`is not usable: ${token.left}`)
        if (entries.length > 0 && token.right === undefined) return yield* broken(`has ${entries.length} entries but no token`)
        // An empty lot has no "last entry": keep the token sent, so a server answering it with "0" (or
        // any other token) can neither skip changes nor send the next run back to the start.
        const next = entries.length > 0 || sent === "" ? token.right ?? sent : sent
        // Tokens are 64-bit: compare them as BigInt, never as numbers.
        if (sent !== "" && entries.length > 0 && BigInt(next) < BigInt(sent)) {
          return yield* new ApiError({
            source: options.source,
            status: 200,
            url,
            message: `${prefix}: the feed went backwards (sent token ${sent}, got ${next}); stopping rather than reading changes twice`
          })
        }
        return { envelope, sent, next, entries, queuecount: envelope.queuecount }
      })

    const feed: AcceoClient["feed"] = (start, count) =>
      Http.Paginate.tokenFeed({
        source: options.source,
        start,
        fetch: (token) => lot(token, count),
        nextToken: (l) => l.next,
        isDone: (l) => l.queuecount === 0 || l.entries.length === 0 || l.envelope.count === 0
      })

    const product: AcceoClient["product"] = (productId) =>
      Effect.gen(function*() {
        // The URL route answers URLs whatever `options` says: only the session goes with it.
        const { envelope, url } = yield* options.idsEndpoint === "url"
          ? get(productUrlPath(productId), { session: options.session })
          : get(productPath(productId), common)
        if (options.notFoundReturncodes.includes(envelope.returncode)) {
          return {
            _tag: "NotFound",
            reason: `product ${productId} not found (returncode ${envelope.returncode}${envelope.returnmsg ? `: ${Http.ErrorBody.oneLine(envelope.returnmsg)}` : ""})`
          } as const
        }
        if (envelope.returncode !== 0) return yield* returncodeError(envelope, url)
        const entries = envelope.product ?? []
        if (entries.length === 0) return { _tag: "NotFound", reason: `product ${productId} not found (the answer has no entry for it)` } as const
        return { _tag: "Found", entries } as const
      })

    const check: AcceoClient["check"] = (productId) =>
      productId === undefined
        ? Effect.asVoid(lot("", 1))
        : Effect.asVoid(product(productId))

    return { feed, product, check }
  })

/** The auth header value: the template with `{key}` replaced by the key, still redacted. */
export const authValue = (template: string, apiKey: Redacted.Redacted<string>): Redacted.Redacted<string> =>
  Redacted.make(template.split("{key}").join(Redacted.value(apiKey)))
