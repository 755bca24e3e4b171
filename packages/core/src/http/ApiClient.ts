/**
 * ApiClient: the one way a source talks to a REST API, over `@effect/platform`'s `HttpClient`.
 *
 * A client is made once per source instance with {@link make}. Every request it sends:
 * - resolves its path against the base URL (absolute URLs only on the same origin);
 * - carries the default headers and the auth header (a `Redacted` value, never printed);
 * - waits for the shared rate limiter (when one is configured) and feeds it the response headers; a
 *   wait the server's budget headers call for is counted in `RunStats` (`waits`) and logged as a
 *   warning when it starts, and one longer than `retry.maxWait` fails the request (`RateLimited`)
 *   rather than sleeping;
 * - is cut after the timeout (default 30 s) with a `TransportError`;
 * - is retried by the {@link Retry} policy (5xx, 429, resets, timeouts, unparseable bodies), each
 *   retry counted in `RunStats` (`retries`, and `waits` too for a 429) and logged as one warning line
 *   (with the wait the server asked for, if any; never the credential); a server asking for more than `retry.maxWait` (`Retry-After`, reset headers) is
 *   not obeyed: the request fails at once, saying what it asked and the cap;
 * - maps statuses to the tagged errors: 401/403 → `Unauthorized` (never retried), 429 →
 *   `RateLimited`, other statuses → `ApiError` with the vendor's message, code and request id.
 *   Statuses a caller declares as *answers* (BigCommerce's 204 end of list, DRF's 404
 *   `Invalid page.`) come back as an `Answer` reply instead.
 * JSON bodies are decoded with an Effect Schema; a body that cannot be read (not JSON, cut short,
 * or refused by the request's own `parse`, e.g. XML) is retried like a reset and then a
 * `DecodeError`, a body that does not match the schema is a `DecodeError` at once, with the path and
 * a snippet. Messages name the source (`source 'channel': ...`) and never carry the credential.
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Batch from "../Batch.js"
import { ApiError, DecodeError, type HttpError, RateLimited, TransportError, Unauthorized } from "../Errors.js"
import * as RunStats from "../RunStats.js"
import * as Text from "../Text.js"
import * as AttemptSignal from "./AttemptSignal.js"
import * as ContentEncoding from "./ContentEncoding.js"
import * as ErrorBody from "./ErrorBody.js"
import * as RateLimit from "./RateLimit.js"
import * as Retry from "./Retry.js"
import * as SafeUrl from "./SafeUrl.js"

// ---------------------------------------------------------------------------------------------
// Options and requests
// ---------------------------------------------------------------------------------------------

/** The auth header: its name and its full value (the caller applies any template, e.g. `Token <key>`). */
export interface Auth {
  readonly header: string
  readonly value: Redacted.Redacted<string>
}

/** How to make a client. */
export interface Options {
  /** The pipeline's name of the source instance; every message names it. */
  readonly source: string
  /**
   * The API's base URL (`https://host/api/v1/channel/5`). Relative paths are appended to it and
   * absolute URLs must share its origin. Without it, only absolute http(s) URLs are accepted.
   */
  readonly baseUrl?: string
  /** Headers sent with every request. Default: `Accept: application/json`, `User-Agent: effetl`. */
  readonly headers?: Readonly<Record<string, string>>
  /** The credential header. */
  readonly auth?: Auth
  /** How long one attempt may take, from sending to the last body byte. Default 30 seconds. */
  readonly timeout?: Duration.DurationInput
  /** Retry settings over {@link Retry.defaults}. */
  readonly retry?: Retry.PolicyInput
  /** A proactive rate limit, shared by every client with the same {@link rateLimitKey}. */
  readonly rateLimit?: RateLimit.Policy
  /** The budget's registry key. Default: a hash of the auth value, or the base URL's origin without auth. */
  readonly rateLimitKey?: string
  /** Response headers that carry the vendor's request id, first found wins. Default `Request-Id`, `X-Request-Id`. */
  readonly requestIdHeaders?: ReadonlyArray<string>
  /** Query parameter names printed as `***`, in addition to {@link SafeUrl.defaultSecretParams}. */
  readonly secretParams?: ReadonlyArray<string>
  /** Follow redirects (at most 10). Default false: an API redirect is an `ApiError`. Never with auth. */
  readonly followRedirects?: boolean
}

/** A status that is an answer rather than an error, optionally only with a given vendor message. */
export type Answer = number | { readonly status: number; readonly vendorMessage?: string | RegExp }

/** Per-request settings. */
export interface RequestOptions {
  /** Query parameters (set on top of those already in the path). */
  readonly params?: SafeUrl.Params
  /** Extra headers for this request. */
  readonly headers?: Readonly<Record<string, string>>
  /** This request's attempt timeout, instead of the client's. */
  readonly timeout?: Duration.DurationInput
  /**
   * How `requestJson`/`getJson` read a 2xx body before the schema decodes it, for an API whose body
   * is XML or needs a special JSON reader (e.g. {@link LosslessJson.parseEither}): `Right` the
   * parsed value, `Left` why the text cannot be read. Default: `JSON.parse`. A `Left` is retried like
   * a connection reset (the body was most likely cut or garbled on the way), then it is a
   * `DecodeError` naming the request with a snippet. A parsed value that does not match the schema
   * is the vendor's contract broken: a `DecodeError` at once, never retried.
   */
  readonly parse?: (text: string) => Either.Either<unknown, string>
}

/** A request. */
export interface Request extends RequestOptions {
  readonly method?: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE"
  /**
   * A path relative to the base URL, or an absolute URL on its origin (a `URL` is not parsed again:
   * without a base URL it is checked as `SafeUrl.fetchable` checks a string).
   */
  readonly path: string | URL
  /** A JSON body (POST, PUT, PATCH). */
  readonly body?: unknown
  /** Statuses that are answers, not errors. */
  readonly answers?: ReadonlyArray<Answer>
  /** The most bytes a body may have; reading stops as soon as it is exceeded (an `ApiError`, not retried). */
  readonly maxBytes?: number
}

/** What every reply carries. */
export interface ReplyInfo {
  readonly status: number
  readonly headers: Headers.Headers
  /** The vendor's request id, when the response carried one. */
  readonly requestId: Option.Option<string>
  /** The URL requested, printable (no secrets). */
  readonly url: string
}

/** A successful JSON reply. */
export interface Ok<A> extends ReplyInfo {
  readonly _tag: "Ok"
  readonly value: A
}

/** A status the caller declared an answer (end of list, ...). */
export interface Answered extends ReplyInfo {
  readonly _tag: "Answer"
  readonly vendorMessage: Option.Option<string>
}

/** The reply to a JSON request. */
export type JsonReply<A> = Ok<A> | Answered

/** The reply to a bytes request: the status, headers and body bytes. */
export interface BytesReply extends ReplyInfo {
  readonly _tag: "Ok" | "Answer"
  readonly bytes: Uint8Array
}

/** A client for one source. */
export interface ApiClient {
  /** The source name in messages and counters. */
  readonly source: string
  /** The base URL, when one was configured. */
  readonly baseUrl: Option.Option<URL>
  /** GETs `path` and decodes its JSON body with `schema`; every non-2xx status is an error. */
  readonly getJson: <A, I>(
    path: string,
    options: RequestOptions,
    schema: Schema.Schema<A, I>
  ) => Effect.Effect<A, HttpError>
  /** Sends a request and decodes its JSON body with `schema`; declared answers come back as `Answer`. */
  readonly requestJson: <A, I>(request: Request, schema: Schema.Schema<A, I>) => Effect.Effect<JsonReply<A>, HttpError>
  /** Sends a request and returns status, headers and body bytes (capped by `maxBytes`). */
  readonly requestBytes: (request: Request) => Effect.Effect<BytesReply, HttpError>
  /** Resolves a path (or same-origin URL) and params to the URL a request would use. */
  readonly resolve: (path: string | URL, params?: SafeUrl.Params) => Either.Either<URL, DecodeError>
  /** The same client under another source name (shares the limiter and settings). */
  readonly withSource: (source: string) => ApiClient
}

// ---------------------------------------------------------------------------------------------
// Constructor
// ---------------------------------------------------------------------------------------------

/** The default attempt timeout. */
export const defaultTimeout: Duration.Duration = Duration.seconds(30)

/** The default request id headers. */
export const defaultRequestIdHeaders: ReadonlyArray<string> = ["Request-Id", "X-Request-Id"]

/** The platform's tracer predicate that turns off every HTTP client span. */
const noSpans = (): boolean => true

/**
 * Runs `effect` without the platform's HTTP client spans when no tracer is installed (Effect's own
 * records spans nowhere), in one step for all its requests: clients made inside then skip the
 * per-request `HttpClient.withTracerDisabledWhen` (an `Effect.locally` around every request). With
 * a tracer installed (OpenTelemetry, ...) every request keeps its span.
 */
export const withoutHttpSpans = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.tracer, (tracer) =>
    tracer === defaultTracer ? Effect.locally(effect, HttpClient.currentTracerDisabledWhen, noSpans) : effect)

/** Makes a client; its rate limiter (if any) is shared while the scope is open. */
export const make = (options: Options): Effect.Effect<ApiClient, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const base = options.baseUrl === undefined ? Option.none() : Option.some(new URL(options.baseUrl))
    const httpClient = yield* HttpClient.HttpClient
    const limiter = options.rateLimit === undefined
      ? RateLimit.unlimited
      : yield* RateLimit.shared(
        options.rateLimitKey ??
          (options.auth !== undefined
            ? RateLimit.credentialKey(options.auth.value)
            : `origin:${Option.match(base, { onNone: () => "*", onSome: (u) => u.origin })}`),
        options.rateLimit
      )
    const redirects = options.followRedirects === true && options.auth === undefined
    const followed = redirects ? HttpClient.followRedirects(httpClient, 10) : httpClient
    // A client that takes each attempt's abort signal (UndiciClient) needs no scope per request; a
    // followed redirect is a new request, which only a scope reaches.
    const direct = !redirects && AttemptSignal.honoured(httpClient)
    // Effect's own tracer records spans nowhere: without a real one (OpenTelemetry, ...) installed,
    // a span per request (its attributes, header redaction and trace headers) is pure cost. A run
    // turns them off once for all its requests (withoutHttpSpans); elsewhere each request does.
    const traced = (yield* Effect.tracer) !== defaultTracer
    const inRun = (yield* FiberRef.get(HttpClient.currentTracerDisabledWhen)) === noSpans
    const spanned = traced === inRun ? HttpClient.withTracerDisabledWhen(followed, traced ? () => false : noSpans) : followed
    const settings: Settings = {
      base,
      headers: { accept: "application/json", "user-agent": "effetl", ...lowerKeys(options.headers ?? {}) },
      auth: Option.fromNullable(options.auth),
      timeout: options.timeout === undefined ? defaultTimeout : Duration.decode(options.timeout),
      policy: Retry.policy(options.retry),
      limiter,
      requestIdHeaders: (options.requestIdHeaders ?? defaultRequestIdHeaders).map((h) => h.toLowerCase()),
      secretParams: [...SafeUrl.defaultSecretParams, ...(options.secretParams ?? [])],
      // A request sets its own switch only where the one it inherits is wrong: spans are on outside
      // a run with no tracer (turned off), and off inside a run whose client has a tracer (turned on).
      http: direct ? spanned : HttpClient.withScope(spanned),
      // Only a request without a span goes straight to the client: never when the client's requests
      // all have one; when the switch is the fiber's, each request asks it.
      direct: direct && !(traced && inRun) ? AttemptSignal.directOf(httpClient) : undefined,
      spansAsFiber: traced !== inRun,
      cut: direct ? signalCut : scopeCut,
      redactedNames: options.auth === undefined ? [] : [options.auth.header.toLowerCase()],
      templates: new Map(),
      scrub: scrubber(options.auth)
    }
    return makeClient(options.source, settings)
  })

// ---------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------

interface Settings {
  readonly base: Option.Option<URL>
  readonly headers: Readonly<Record<string, string>>
  readonly auth: Option.Option<Auth>
  readonly timeout: Duration.Duration
  readonly policy: Retry.Policy
  readonly limiter: RateLimit.Limiter
  readonly requestIdHeaders: ReadonlyArray<string>
  readonly secretParams: ReadonlyArray<string>
  readonly http: HttpClient.HttpClient.With<HttpClientError.HttpClientError, Scope.Scope>
  /** The client's direct send, when it has one and requests go to it as they are (no redirects followed). */
  readonly direct: AttemptSignal.Direct | undefined
  /** Whether a request has a span as its fiber says (else the client turned them all off, or on). */
  readonly spansAsFiber: boolean
  /** How each attempt's request is cut short: a Scope (withScope), or its abort signal (AttemptSignal). */
  readonly cut: CutMaker
  /** The credential's header, redacted wherever the platform prints headers (none without auth). */
  readonly redactedNames: ReadonlyArray<string>
  /** Per method, a request with the client's headers and credential, for requests that add none. */
  readonly templates: Map<string, HttpClientRequest.HttpClientRequest>
  readonly scrub: (text: string) => string
}

/** What one request knows while it runs (for messages). */
interface Context {
  readonly source: string
  readonly method: string
  readonly url: string
  readonly prefix: string
  readonly settings: Settings
}

/** What an attempt read before post-processing. */
interface Raw extends BytesReply {
  readonly vendorMessage: Option.Option<string>
}

const makeClient = (source: string, settings: Settings): ApiClient => {
  const resolve = (path: string | URL, params?: SafeUrl.Params): Either.Either<URL, DecodeError> =>
    Either.mapLeft(resolveUrl(settings, path, params), (refusal) =>
      new DecodeError({ source, message: `source '${source}': ${settings.scrub(refusal.reason)}` }))

  const requestJson = <A, I>(request: Request, schema: Schema.Schema<A, I>): Effect.Effect<JsonReply<A>, HttpError> => {
    const decode = Schema.decodeUnknownEither(schema, { errors: "all" })
    // A body the plain decoder accepts needs no Schema parser (a page of 1,000 raw items is 1,000
    // of its steps); anything it leaves goes through Schema, which then decides and says why.
    const plain = Batch.plainDecoder(schema)
    return exchange(source, settings, resolve, request, (raw, ctx) => {
      const info = replyInfo(raw)
      if (raw._tag === "Answer") {
        return Effect.succeed<JsonReply<A>>({ _tag: "Answer", ...info, vendorMessage: raw.vendorMessage })
      }
      const text = new TextDecoder().decode(raw.bytes)
      if (text.trim() === "") {
        const error = new DecodeError({
          source,
          message: `${ctx.prefix}: the response to ${ctx.method} ${ctx.url} has an empty body where JSON was expected (HTTP ${raw.status})`,
          url: ctx.url
        })
        return Effect.fail(raw.status === 204 ? Retry.fatal(error) : Retry.transient(error, "empty body"))
      }
      const parsed = (request.parse ?? parseJson)(text)
      if (Either.isLeft(parsed)) {
        return Effect.fail(Retry.transient(
          new DecodeError({
            source,
            message: `${ctx.prefix}: the response to ${ctx.method} ${ctx.url} could not be read: ${
              ErrorBody.oneLine(settings.scrub(parsed.left), 200)
            } (HTTP ${raw.status}, ${raw.bytes.length} bytes)`,
            snippet: snippet(settings, text),
            url: ctx.url
          }),
          "unreadable body"
        ))
      }
      const json = parsed.right
      const fast = plain === undefined ? Option.none() : plain(json)
      if (Option.isSome(fast)) return Effect.succeed<JsonReply<A>>({ _tag: "Ok", ...info, value: fast.value })
      return Either.match(decode(json), {
        onRight: (value) => Effect.succeed<JsonReply<A>>({ _tag: "Ok", ...info, value }),
        onLeft: (error) => {
          const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
          const first = issues[0]
          const path = first === undefined ? "" : formatPath(first.path)
          const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""
          const where = path === "" ? "" : `at ${path}: `
          return Effect.fail(Retry.fatal(
            new DecodeError({
              source,
              message: `${ctx.prefix}: the response to ${ctx.method} ${ctx.url} does not have the expected shape: ${where}${
                settings.scrub(ErrorBody.oneLine(first?.message ?? "invalid", 200))
              }${more}`,
              path: path === "" ? "(root)" : path,
              snippet: snippet(settings, text),
              url: ctx.url
            }),
            "schema mismatch"
          ))
        }
      })
    })
  }

  return {
    source,
    baseUrl: settings.base,
    resolve,
    requestJson,
    requestBytes: (request) => exchange(source, settings, resolve, request, bytesReply),
    getJson: (path, options, schema) =>
      Effect.flatMap(requestJson({ ...options, path }, schema), (reply) =>
        reply._tag === "Ok"
          ? Effect.succeed(reply.value)
          // Unreachable: without declared answers every non-2xx status is an error.
          : Effect.dieMessage(`an answer (HTTP ${reply.status}) to a request that declared none`)),
    withSource: (other) => makeClient(other, settings)
  }
}

/** A jittered delay to the millisecond, for messages (`297ms`, not `297ms 81787ns`). */
const roundedMillis = (d: Duration.Duration): Duration.Duration => Duration.millis(Math.round(Duration.toMillis(d)))

/** A bytes request's reply (its fields named one by one: a spread costs more in code not yet optimised). */
const bytesReply = (raw: Raw): Effect.Effect<BytesReply> =>
  Effect.succeed<BytesReply>({
    _tag: raw._tag,
    status: raw.status,
    headers: raw.headers,
    requestId: raw.requestId,
    url: raw.url,
    bytes: raw.bytes
  })

const replyInfo = (raw: Raw): ReplyInfo => ({
  status: raw.status,
  headers: raw.headers,
  requestId: raw.requestId,
  url: raw.url
})

/** The client's headers, a request's own over them, and the credential. */
const requestHeaders = (settings: Settings, own?: Readonly<Record<string, string>>): Record<string, string> => {
  const headers: Record<string, string> = own === undefined ? { ...settings.headers } : { ...settings.headers, ...lowerKeys(own) }
  if (Option.isSome(settings.auth)) headers[settings.auth.value.header.toLowerCase()] = Redacted.value(settings.auth.value.value)
  return headers
}

/** A request of `method` with the client's headers and credential (made once per client and method). */
const template = (settings: Settings, method: HttpClientRequest.HttpClientRequest["method"]): HttpClientRequest.HttpClientRequest => {
  let made = settings.templates.get(method)
  if (made === undefined) {
    made = HttpClientRequest.make(method)("", { headers: requestHeaders(settings) })
    settings.templates.set(method, made)
  }
  return made
}

/** Runs one request with limiter, timeout, retries, status mapping, then `finish` (inside the retried attempt). */
const exchange = <B>(
  source: string,
  settings: Settings,
  resolve: (path: string | URL, params?: SafeUrl.Params) => Either.Either<URL, DecodeError>,
  request: Request,
  finish: (raw: Raw, ctx: Context) => Effect.Effect<B, Retry.Failure<HttpError>>
): Effect.Effect<B, HttpError> =>
  Effect.suspend(() => {
    const resolved = resolve(request.path, request.params)
    if (Either.isLeft(resolved)) return Effect.fail(resolved.left)
    const url = resolved.right
    const method = request.method ?? "GET"
    const ctx: Context = {
      source,
      method,
      url: SafeUrl.printable(url, settings.secretParams),
      prefix: `source '${source}'`,
      settings
    }
    // Without headers of its own, a request is the client's template for its method (made once).
    let httpRequest = request.headers === undefined
      ? HttpClientRequest.setUrl(template(settings, method), url.href)
      : HttpClientRequest.make(method)(url.href, { headers: requestHeaders(settings, request.headers) })
    if (request.body !== undefined) httpRequest = HttpClientRequest.bodyUnsafeJson(httpRequest, request.body)
    const timeout = request.timeout === undefined ? settings.timeout : Duration.decode(request.timeout)
    const idempotent = method !== "POST" && method !== "PATCH"

    // The limiter hears when every attempt it let through ends (answered, failed, timed out or
    // interrupted), so a header-driven limiter knows how many requests are still in flight.
    const limit = (attempt: Effect.Effect<B, Retry.Failure<HttpError>>): Effect.Effect<B, Retry.Failure<HttpError>> => {
      const take = RateLimit.takeWithin(settings.limiter, {
        maxWait: settings.policy.maxWait,
        onServerWait: (wait, said) =>
          Effect.zipRight(RunStats.add(source, "waits"), Effect.logWarning(
            `${ctx.prefix}: the API's rate budget is spent (${said}); waiting ${Duration.format(wait)} before ${method} ${ctx.url}`
          ).pipe(Effect.annotateLogs({ source, url: ctx.url, waitMillis: Duration.toMillis(wait), said })))
      }).pipe(
        Effect.mapError((tooLong) =>
          Retry.fatal<HttpError>(
            new RateLimited({
              source,
              retryAfterMillis: Duration.toMillis(tooLong.wait),
              message: `${ctx.prefix}: the API's rate-limit headers ask to wait ${Duration.format(tooLong.wait)} before ${method} ${ctx.url} (${tooLong.said}), more than retry.maxWait (${
                Duration.format(tooLong.maxWait)
              }): failing rather than waiting`
            }),
            "rate budget wait over retry.maxWait"
          )
        )
      )
      return Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(restore(take), restore(attempt).pipe(Effect.ensuring(settings.limiter.release ?? Effect.void)))
      )
    }
    // The request's own failures (transport, invalid URL) classified; the rest are already.
    const classifyError = (e: Retry.Failure<HttpError> | HttpClientError.HttpClientError) =>
      HttpClientError.isHttpClientError(e) ? transportFailure(ctx, e) : e
    const onTimeout = () =>
      Retry.transient<HttpError>(
        new TransportError({
          source,
          message: `${ctx.prefix}: ${method} ${ctx.url} timed out after ${Duration.format(timeout)}`,
          url: ctx.url
        }),
        `timed out after ${Duration.format(timeout)}`
      )
    const then = (raw: Raw) => finish(raw, ctx)
    const platform = (): Effect.Effect<B, Retry.Failure<HttpError>> => withDeadline(
      timeout,
      settings.cut,
      (cut, readInFull) =>
        Effect.flatMap(cut.provide(settings.http.execute(httpRequest)), (response) => {
          // Read once: the platform builds a new Headers object on every read of `headers`.
          const headers = response.headers
          const read = classify(ctx, request, response.status, headers, (cap, onOver) =>
            readBody(ctx, response, headers, cap, onOver, readInFull), then)
          // Without a limiter there is nothing to tell it.
          return settings.limiter === RateLimit.unlimited ? read : Effect.zipRight(settings.limiter.observe(headers), read)
        }),
      classifyError,
      onTimeout
    ).pipe(
      // The auth header's value is redacted wherever the platform prints the request's headers.
      settings.redactedNames.length === 0
        ? identity
        : Effect.locallyWith(Headers.currentRedactedNames, (names) => [...names, ...settings.redactedNames])
    )
    // A client with a direct send (UndiciClient) takes it for a request without a span.
    const direct = settings.direct
    const once: Effect.Effect<B, Retry.Failure<HttpError>> = direct === undefined ? platform() : Effect.withFiberRuntime((fiber) => {
      if (
        !direct.accepts(httpRequest) ||
        (settings.spansAsFiber && fiber.getFiberRef(FiberRef.currentTracerEnabled) &&
          !fiber.getFiberRef(HttpClient.currentTracerDisabledWhen)(httpRequest))
      ) return platform()
      const attempt = new DirectAttempt<B>(direct, fiber, httpRequest, url, (reply, readInFull) => {
        const rest = classify(ctx, request, reply.status, reply.headers, (cap, onOver) => readBuffered(ctx, reply, cap, onOver, readInFull), then)
        return settings.limiter === RateLimit.unlimited ? rest : Effect.zipRight(settings.limiter.observe(reply.headers), rest)
      }, (status, headers) => {
        // A 2xx body declared longer than the cap is refused unread, as readBody refuses it.
        const cap = bodyCap(request, status)
        const declared = declaredLength(headers)
        return declared !== undefined && declared > cap && isOk(request, status) ? 0 : cap
      }, classifyError, onTimeout)
      return Effect.uninterruptibleMask((restore) => {
        const run = Effect.matchCauseEffect(restore(Effect.async(attempt.start)), attempt)
        const timer = startTimer(Context.get(fiber.currentDefaultServices, Clock.Clock), timeout, Effect.sync(attempt.expire))
        if (typeof timer === "function") {
          attempt.cancelTimer = timer
          return run
        }
        return Effect.flatMap(timer, (cancel) => {
          attempt.cancelTimer = cancel
          return run
        })
      })
    })
    // Without a limiter there is nothing to take before the attempt or to release after it.
    const limited: Effect.Effect<B, Retry.Failure<HttpError>> = settings.limiter === RateLimit.unlimited
      ? once
      : limit(once)
    const attempt = idempotent
      ? limited
      : Effect.mapError(limited, (f) => (f.error._tag === "RateLimited" ? f : { ...f, retryable: false }))

    // The retry's settings (closures over this request) are only made once an attempt has failed.
    return Retry.retry(attempt, () => ({
      policy: settings.policy,
      onRetry: (info) => {
        // The vendor's request id of the failed answer (when it sent one), so support can find it.
        const requestId = "requestId" in info.failure.error ? info.failure.error.requestId : undefined
        const asked = Option.match(info.serverWait, {
          onNone: () => "",
          onSome: (w) => `; the server asked to wait ${Duration.format(w)}${info.failure.serverSaid === undefined ? "" : ` (${info.failure.serverSaid})`}`
        })
        // Every retry is a warning (and counted in the run summary): a user sees trouble as it happens.
        return Effect.zipRight(
          Effect.zipRight(
            RunStats.add(source, "retries"),
            info.failure.error._tag === "RateLimited" ? RunStats.add(source, "waits") : Effect.void
          ),
          Effect.logWarning(
            `${ctx.prefix}: ${method} ${ctx.url} failed (${info.failure.reason})${asked}; retry ${info.retry} of ${settings.policy.maxRetries} in ${
              Duration.format(roundedMillis(info.delay))
            }${requestId === undefined ? "" : ` [request id ${requestId}]`}`
          ).pipe(
            Effect.annotateLogs({
              source,
              url: ctx.url,
              attempt: info.retry,
              delay: Duration.format(roundedMillis(info.delay)),
              delayMillis: Duration.toMillis(info.delay),
              reason: info.failure.reason,
              ...(Option.isSome(info.serverWait) ? { serverWaitMillis: Duration.toMillis(info.serverWait.value) } : {}),
              ...(requestId === undefined ? {} : { requestId })
            })
          )
        )
      },
      onGiveUp: (error, retries) => withSuffix(error, ` (gave up after ${retries} ${retries === 1 ? "retry" : "retries"})`),
      onWaitRefused: (asked, said) =>
        Effect.logWarning(
          `${ctx.prefix}: ${method} ${ctx.url}: the server asked to wait ${Duration.format(asked)}${said === undefined ? "" : ` (${said})`}, more than retry.maxWait (${
            Duration.format(settings.policy.maxWait)
          }); not waiting: the source fails`
        ).pipe(Effect.annotateLogs({ source, url: ctx.url, serverWaitMillis: Duration.toMillis(asked), maxWaitMillis: Duration.toMillis(settings.policy.maxWait) })),
      onWaitTooLong: (error, asked, said, retries) =>
        withSuffix(
          error,
          `; the server asked to wait ${Duration.format(asked)}${said === undefined ? "" : ` (${said})`}, more than retry.maxWait (${
            Duration.format(settings.policy.maxWait)
          }): failing rather than waiting${retries > 0 ? ` (after ${retries} ${retries === 1 ? "retry" : "retries"})` : ""}`
        )
    }))
  })

/**
 * How an attempt's request is cut short: `provide` runs the request so that `cut` aborts it (the
 * request's `Scope` with the platform's `HttpClient.withScope`, or the attempt's own abort signal
 * with a client that takes one: see AttemptSignal).
 */
interface Cut {
  readonly provide: <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.Effect<A, E>
  readonly cut: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
  /** Called once the attempt has ended, whatever the outcome. */
  readonly end: () => void
}

/** How a client's attempts are cut: made for each attempt, on its fiber (an effect when it needs one). */
type CutMaker = (fiber: Fiber.RuntimeFiber<unknown, unknown>) => Cut | Effect.Effect<Cut>

/** A scope per attempt: closing it aborts the request (`HttpClient.withScope`). */
const scopeCut: CutMaker = () =>
  Effect.map(Scope.make(), (scope) => ({
    provide: Scope.extend(scope),
    cut: (exit) => Scope.close(scope, exit),
    end: () => {}
  }))

/** An abort signal per attempt, handed to the client through AttemptSignal for the attempt's fiber. */
const signalCut: CutMaker = (fiber) => {
  const controller = new AttemptSignal.Abort()
  const attempt: AttemptSignal.Attempt = { signal: controller }
  AttemptSignal.signals.set(fiber, attempt)
  return {
    // The client needs no Scope here (it was not wrapped in withScope).
    provide: identity as Cut["provide"],
    cut: () => Effect.sync(() => controller.abort()),
    end: () => {
      if (AttemptSignal.signals.get(fiber) === attempt) AttemptSignal.signals.delete(fiber)
    }
  }
}

/**
 * What an attempt that ended in `cause` fails with: an interruption as it is; a failure
 * `onTimeout()` when the deadline passed before the body was read in full, else `classify`'s (a
 * failure after the body was read in full, such as a schema mismatch, is its own).
 */
const attemptFailure = <E, E1>(
  cause: Cause.Cause<E | E1>,
  timedOut: boolean,
  classify: (e: E | E1) => E,
  onTimeout: () => E
): Cause.Cause<E> => {
  if (Cause.isInterrupted(cause)) return cause as Cause.Cause<E>
  const failure = Cause.failureOrCause(cause)
  return Either.isLeft(failure) ? Cause.fail(timedOut ? onTimeout() : classify(failure.left)) : (cause as Cause.Cause<E>)
}

/**
 * One attempt over a client's direct send (see `AttemptSignal.Direct`): {@link withDeadline}'s
 * guarantees in one wait. Its deadline ({@link startTimer}) aborts the request; the send reads the
 * body into memory within {@link bodyCap} for the status and calls back once; the reply is then
 * classified and finished (`reply`) as any other. Run as
 * `uninterruptibleMask(restore => matchCauseEffect(restore(async(start)), attempt))` with the timer
 * started inside: however the attempt ends (answered, failed, timed out, interrupted), the timer is
 * cancelled and a request still in flight is aborted.
 */
class DirectAttempt<B> {
  private expired = false
  private complete = false
  private ended = false
  /** Cancels the deadline's timer (set before the attempt starts). */
  cancelTimer: () => void = ignore
  private abort: (() => void) | undefined
  private resume: ((effect: Effect.Effect<B, Retry.Failure<HttpError> | HttpClientError.HttpClientError>) => void) | undefined

  constructor(
    private readonly direct: AttemptSignal.Direct,
    private readonly fiber: Fiber.RuntimeFiber<unknown, unknown>,
    private readonly request: HttpClientRequest.HttpClientRequest,
    private readonly url: URL,
    private readonly reply: (reply: AttemptSignal.DirectReply, readInFull: () => void) => Effect.Effect<B, Retry.Failure<HttpError>>,
    readonly limit: (status: number, headers: Headers.Headers) => number,
    private readonly classify: (e: Retry.Failure<HttpError> | HttpClientError.HttpClientError) => Retry.Failure<HttpError>,
    private readonly onTimeout: () => Retry.Failure<HttpError>
  ) {}

  /** The `Effect.async` registration: sends the request. */
  readonly start = (resume: (effect: Effect.Effect<B, Retry.Failure<HttpError> | HttpClientError.HttpClientError>) => void): void => {
    this.resume = resume
    this.abort = this.direct.send(this.request, this.url, this.fiber, this)
  }

  /** The send's callback (once): the request's failure, or the reply classified and finished. */
  readonly done = (failure: HttpClientError.RequestError | undefined, reply: AttemptSignal.DirectReply | undefined): void => {
    this.ended = true
    if (failure !== undefined) return this.resume!(Effect.fail(failure))
    this.resume!(this.reply(reply!, this.readInFull))
  }

  private readonly readInFull = (): void => {
    this.complete = true
  }

  /** The deadline passed: the request is aborted (the attempt then fails with `onTimeout()`). */
  readonly expire = (): void => {
    this.expired = true
    this.abort?.()
  }

  /** Cancels the timer and aborts the request if it is still in flight. */
  private settle(): void {
    this.cancelTimer()
    if (!this.ended) this.abort?.()
  }

  readonly onFailure = (cause: Cause.Cause<Retry.Failure<HttpError> | HttpClientError.HttpClientError>) => {
    this.settle()
    return Effect.failCause(attemptFailure(cause, this.expired && !this.complete, this.classify, this.onTimeout))
  }

  readonly onSuccess = (b: B) => {
    this.settle()
    return Effect.succeed(b)
  }
}

/**
 * Runs one attempt under a deadline. The attempt's request runs under `open`'s {@link Cut}: cutting
 * it aborts the request. When `timeout` passes first, the request is cut wherever it waits
 * (connecting, headers, body), and the attempt fails with `onTimeout()` (a failure after its body
 * was read in full, such as a schema mismatch, stays its own); any other failure is `classify`'s.
 * An attempt that ends any other way is cut too, unless it called `readInFull` (its body was read
 * to the end, so there is nothing left to cut) and succeeded.
 *
 * This is `Effect.timeoutFail` without its two fibers per attempt, and `catchAll` with `onExit` in
 * one uninterruptible region: on the live clock the deadline is one timer; on another clock
 * (`TestClock`) it is a fiber sleeping on that clock.
 */
const withDeadline = <A, E, E1>(
  timeout: Duration.Duration,
  open: CutMaker,
  use: (cut: Cut, readInFull: () => void) => Effect.Effect<A, E | E1>,
  classify: (e: E | E1) => E,
  onTimeout: () => E
): Effect.Effect<A, E> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.withFiberRuntime<A, E>((fiber) => {
      const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
      const run = (cut: Cut): Effect.Effect<A, E> => {
        let expired = false
        let complete = false
        const expire = Effect.suspend(() => {
          expired = true
          return cut.cut(Exit.void)
        })
        const guarded = (cancel: () => void) =>
          Effect.matchCauseEffect(restore(use(cut, () => (complete = true))), {
            onFailure: (cause) => {
              cancel()
              cut.end()
              const result = attemptFailure(cause, expired && !complete, classify, onTimeout)
              return Effect.zipRight(cut.cut(Exit.failCause(result)), Effect.failCause(result))
            },
            onSuccess: (a) => {
              cancel()
              cut.end()
              return complete && !expired ? Effect.succeed(a) : Effect.as(cut.cut(Exit.succeed(a)), a)
            }
          })
        const timer = startTimer(clock, timeout, expire)
        return typeof timer === "function" ? guarded(timer) : Effect.flatMap(timer, guarded)
      }
      const cut = open(fiber)
      return Effect.isEffect(cut) ? Effect.flatMap(cut, run) : run(cut)
    })
  )

const ignore = (): void => {}

/** The clock and tracer Effect runs with when none is installed. */
const liveClock = Effect.runSync(Effect.clock)
const defaultTracer = Effect.runSync(Effect.tracer)

/**
 * Runs `fire` once `duration` has passed on `clock`; the function given cancels it (at once on the
 * live clock, else by an effect that forks a fiber sleeping on `clock`).
 */
const startTimer = (clock: Clock.Clock, duration: Duration.Duration, fire: Effect.Effect<void>): (() => void) | Effect.Effect<() => void> => {
  const millis = Duration.toMillis(duration)
  // Beyond what a JS timer holds, a duration is as good as infinite (as Effect's own clock treats it).
  if (!Number.isFinite(millis) || millis > 2 ** 31 - 1) return () => {}
  if (clock === liveClock) {
    const handle = setTimeout(() => Effect.runFork(fire), millis)
    return () => clearTimeout(handle)
  }
  return Effect.map(
    Effect.forkDaemon(Effect.zipRight(clock.sleep(duration), fire)),
    (fiber) => () => fiber.unsafeInterruptAsFork(FiberId.none)
  )
}

/**
 * Reads (a bounded part of) a response's body: up to `cap` bytes; with `"fail"` a longer body is a
 * failure, with `"truncate"` its first `cap` bytes. The platform's response is read by `readBody`,
 * a direct send's reply by `readBuffered`.
 */
type BodyReader = (cap: number, onOver: "fail" | "truncate") => Effect.Effect<Uint8Array, Retry.Failure<HttpError>>

/** Whether a status is a plain 2xx (its body is the reply), not one the request declared an answer. */
const isOk = (request: Request, status: number): boolean =>
  status >= 200 && status < 300 &&
  (request.answers === undefined || !request.answers.some((a) => (typeof a === "number" ? a : a.status) === status))

/** The most body bytes read for a status: the request's cap for a plain 2xx, else enough for the vendor's message. */
const bodyCap = (request: Request, status: number): number =>
  isOk(request, status) ? request.maxBytes ?? Number.POSITIVE_INFINITY : errorBodyCap

/** Maps a response to a raw reply (2xx or a declared answer), given to `then`, or a classified failure. */
const classify = <B>(
  ctx: Context,
  request: Request,
  status: number,
  headers: Headers.Headers,
  read: BodyReader,
  then: (raw: Raw) => Effect.Effect<B, Retry.Failure<HttpError>>
): Effect.Effect<B, Retry.Failure<HttpError>> => {
  if (isOk(request, status)) {
    // The common case, kept free of generators: a 2xx body read whole (within the cap).
    const ok = (bytes: Uint8Array) =>
      then({
        _tag: "Ok",
        status,
        headers,
        requestId: findRequestId(ctx.settings, headers),
        url: ctx.url,
        bytes,
        vendorMessage: Option.none()
      })
    const body = read(bodyCap(request, status), "fail")
    // A body already in hand (a direct send's) goes on without a step of its own.
    const exit = Exit.isExit(body) ? (body as Exit.Exit<Uint8Array, Retry.Failure<HttpError>>) : undefined
    return exit !== undefined && Exit.isSuccess(exit) ? ok(exit.value) : Effect.flatMap(body, ok)
  }
  return Effect.flatMap(classifyOther(ctx, request, status, headers, read), then)
}

/** {@link classify} for a status that is not a plain 2xx: a declared answer, or an error to classify. */
const classifyOther = (
  ctx: Context,
  request: Request,
  status: number,
  headers: Headers.Headers,
  read: BodyReader
): Effect.Effect<Raw, Retry.Failure<HttpError>> =>
  Effect.gen(function*() {
    const { settings } = ctx
    const requestId = findRequestId(settings, headers)
    const base = { status, headers, requestId, url: ctx.url }
    const rules = (request.answers ?? []).map((a) => (typeof a === "number" ? { status: a } : a))
    const matching = rules.filter((r) => r.status === status)

    // Read (a bounded part of) the body: the answer's, or the vendor's message.
    const bytes = yield* read(bodyCap(request, status), "truncate")
    const text = settings.scrub(new TextDecoder().decode(bytes))
    const vendor = ErrorBody.parse(text)
    const answer = matching.find((r) =>
      r.vendorMessage === undefined ||
      Option.match(vendor.message, {
        onNone: () => false,
        onSome: (m) => (typeof r.vendorMessage === "string" ? m === r.vendorMessage : r.vendorMessage!.test(m))
      })
    )
    if (answer !== undefined) return { _tag: "Answer", ...base, bytes, vendorMessage: vendor.message } satisfies Raw

    const said = Option.match(vendor.message, { onNone: () => "", onSome: (m) => `: ${m}` })
    const rid = Option.match(requestId, { onNone: () => "", onSome: (id) => ` [request id ${id}]` })
    const common = {
      source: ctx.source,
      requestId: Option.getOrUndefined(requestId)
    }
    const now = yield* Clock.currentTimeMillis
    const asked = Retry.serverWaitFrom(settings.policy, headers, now)
    const wait = Option.map(asked, (a) => a.wait)

    if ((status === 401 || status === 403) && Option.isSome(settings.auth)) {
      const check = status === 403 ? "Check the token and its permissions." : "Check the token."
      return yield* Effect.fail(Retry.fatal<HttpError>(
        new Unauthorized({
          ...common,
          status,
          message: `${ctx.prefix}: the API refused the credentials (HTTP ${status}${said}). ${check}${rid}`
        }),
        `HTTP ${status}`
      ))
    }
    if (status === 429) {
      return yield* Effect.fail(Retry.transient<HttpError>(
        new RateLimited({
          ...common,
          retryAfterMillis: Option.getOrUndefined(Option.map(wait, Duration.toMillis)),
          message: `${ctx.prefix}: the API is rate limiting us (HTTP 429 Too Many Requests${said}) on ${ctx.method} ${ctx.url}${rid}`
        }),
        "HTTP 429",
        asked
      ))
    }
    const apiError = (what: string) =>
      new ApiError({
        ...common,
        status,
        code: Option.getOrUndefined(vendor.code),
        vendorMessage: Option.getOrUndefined(vendor.message),
        url: ctx.url,
        message: `${ctx.prefix}: ${what}${rid}`
      })
    if (status >= 500 || status === 408) {
      return yield* Effect.fail(Retry.transient<HttpError>(
        apiError(`the API failed on ${ctx.method} ${ctx.url} (HTTP ${status}${said})`),
        `HTTP ${status}`,
        asked
      ))
    }
    if (status >= 300 && status < 400) {
      const location = headers["location"]
      const to = location === undefined ? "" : ` to ${SafeUrl.printable(location, settings.secretParams)}`
      return yield* Effect.fail(Retry.fatal<HttpError>(
        apiError(`the API redirected ${ctx.method} ${ctx.url}${to} (HTTP ${status}); redirects are not followed`),
        `HTTP ${status}`
      ))
    }
    return yield* Effect.fail(Retry.fatal<HttpError>(
      apiError(`the API answered HTTP ${status}${said} to ${ctx.method} ${ctx.url}`),
      `HTTP ${status}`
    ))
  })

/** How much of an error body is read for its message. */
const errorBodyCap = 64 * 1024

/**
 * Reads a body. With a cap and `"fail"`, a body over the cap fails at once (not retried); with
 * `"truncate"`, reading stops at the cap. A body cut by the peer is a retryable `TransportError`.
 * `readInFull` is called once the body has been read to its end.
 *
 * A body whose length the response declares (`Content-Length`, no `Transfer-Encoding`) within the
 * cap is read in one piece: HTTP/1.1 framing ends the body at the declared length, so it cannot
 * pass the cap (and the length is checked again). Any other body is read as a stream, chunk by
 * chunk, and reading stops as soon as it passes the cap.
 */
const readBody = (
  ctx: Context,
  response: HttpClientResponse.HttpClientResponse,
  headers: Headers.Headers,
  limit: number,
  onOver: "fail" | "truncate",
  readInFull: () => void
): Effect.Effect<Uint8Array, Retry.Failure<HttpError>> => {
  const status = response.status
  const tooLarge = (got: string) => Effect.fail(bodyTooLarge(ctx, status, limit, got))
  const cut = (e: HttpClientError.ResponseError) => bodyCut(ctx, e.reason === "Decode" ? "" : ` (${e.reason})`)
  const declared = declaredLength(headers)
  if (onOver === "fail" && declared !== undefined && declared > limit) return tooLarge(`Content-Length ${declared}`)
  if (declared !== undefined && declared <= limit && headers["transfer-encoding"] === undefined) {
    return Effect.matchEffect(response.arrayBuffer, {
      onFailure: (e) => Effect.fail(cut(e)),
      onSuccess: (buffer) => {
        if (buffer.byteLength > limit) {
          if (onOver === "fail") return tooLarge(`read ${buffer.byteLength} bytes`)
          return decodeBody(ctx, status, headers, new Uint8Array(buffer, 0, limit), limit, onOver)
        }
        readInFull()
        return decodeBody(ctx, status, headers, new Uint8Array(buffer), limit, onOver)
      }
    })
  }
  return response.stream.pipe(
    Stream.runFoldWhile(
      { chunks: [] as Array<Uint8Array>, size: 0 },
      (s) => s.size <= limit,
      (s, chunk) => {
        s.chunks.push(chunk)
        return { chunks: s.chunks, size: s.size + chunk.length }
      }
    ),
    Effect.mapError(cut),
    Effect.flatMap((s) => {
      if (s.size > limit) {
        if (onOver === "fail") return tooLarge(`stopped reading after ${s.size} bytes`)
        return Effect.succeed(concat(s.chunks, limit))
      }
      readInFull()
      return Effect.succeed(concat(s.chunks, s.size))
    }),
    Effect.flatMap((bytes) => decodeBody(ctx, status, headers, bytes, limit, onOver))
  )
}

/**
 * {@link readBody} for a direct send's reply, whose body is already in memory: read up to the limit
 * the send was given for its status ({@link bodyCap}, the same `limit`; none of a 2xx body declared
 * longer), or stopped past it.
 */
const readBuffered = (
  ctx: Context,
  reply: AttemptSignal.DirectReply,
  limit: number,
  onOver: "fail" | "truncate",
  readInFull: () => void
): Effect.Effect<Uint8Array, Retry.Failure<HttpError>> => {
  const declared = declaredLength(reply.headers)
  if (onOver === "fail" && declared !== undefined && declared > limit) {
    return Effect.fail(bodyTooLarge(ctx, reply.status, limit, `Content-Length ${declared}`))
  }
  if (reply.bodyError !== undefined) return Effect.fail(bodyCut(ctx, ""))
  if (reply.over || reply.received > limit) {
    if (onOver === "truncate") return decodeBody(ctx, reply.status, reply.headers, reply.body.subarray(0, limit), limit, onOver)
    return Effect.fail(bodyTooLarge(ctx, reply.status, limit, `stopped reading after ${reply.received} bytes`))
  }
  readInFull()
  return decodeBody(ctx, reply.status, reply.headers, reply.body, limit, onOver)
}

/** A body's declared length (`Content-Length`), when it is a plain number. */
const declaredLength = (headers: Headers.Headers): number | undefined => {
  const length = headers["content-length"]
  return length !== undefined && /^\d{1,15}$/.test(length) ? Number(length) : undefined
}

/** A body over the request's cap (not retried): `got` says how that was seen. */
const bodyTooLarge = (ctx: Context, status: number, limit: number, got: string): Retry.Failure<HttpError> =>
  Retry.fatal<HttpError>(
    new ApiError({
      source: ctx.source,
      status,
      url: ctx.url,
      message: `${ctx.prefix}: the response to ${ctx.method} ${ctx.url} is larger than the ${formatBytes(limit)} cap (${got})`
    }),
    "body over the cap"
  )

/** A body cut short by the peer (retried like a reset); `why` is appended to the message. */
const bodyCut = (ctx: Context, why: string): Retry.Failure<HttpError> =>
  Retry.transient<HttpError>(
    new TransportError({
      source: ctx.source,
      url: ctx.url,
      message: `${ctx.prefix}: the connection closed before the whole response to ${ctx.method} ${ctx.url} arrived${why}`
    }),
    "truncated body"
  )

/**
 * Undoes a body's `Content-Encoding` (gzip, deflate, br), bounded: the cap applies to the decoded
 * bytes. With `"fail"`, a decoded body over the cap or an unknown coding fails (not retried) and
 * corrupt coded data is retried like a cut body; with `"truncate"` (an error body, read for its
 * message) the decoded part within the cap is kept, or the body as it came.
 */
const decodeBody = (
  ctx: Context,
  status: number,
  headers: Headers.Headers,
  bytes: Uint8Array,
  limit: number,
  onOver: "fail" | "truncate"
): Effect.Effect<Uint8Array, Retry.Failure<HttpError>> => {
  const header = headers["content-encoding"]
  if (header === undefined || bytes.length === 0 || ContentEncoding.codings(header).length === 0) return Effect.succeed(bytes)
  const coding = Text.escapeControl(header!.trim().slice(0, 40))
  return Effect.catchAll(ContentEncoding.decode(header, bytes, limit), (failure) => {
    if (onOver === "truncate") return Effect.succeed(failure._tag === "TooLarge" ? failure.partial : bytes)
    switch (failure._tag) {
      case "TooLarge":
        return Effect.fail(Retry.fatal<HttpError>(
          new ApiError({
            source: ctx.source,
            status,
            url: ctx.url,
            message: `${ctx.prefix}: the response to ${ctx.method} ${ctx.url} is larger than the ${formatBytes(limit)} cap once decoded (Content-Encoding: ${coding}; decoding stopped at the cap)`
          }),
          "decoded body over the cap"
        ))
      case "Unsupported":
        return Effect.fail(Retry.fatal<HttpError>(
          new ApiError({
            source: ctx.source,
            status,
            url: ctx.url,
            message: `${ctx.prefix}: the response to ${ctx.method} ${ctx.url} is sent with Content-Encoding: ${coding}, which effetl does not decode (it reads ${
              ContentEncoding.supported.join(", ")
            })`
          }),
          "unsupported Content-Encoding"
        ))
      case "Corrupt":
        return Effect.fail(Retry.transient<HttpError>(
          new DecodeError({
            source: ctx.source,
            url: ctx.url,
            message: `${ctx.prefix}: the ${coding}-encoded response to ${ctx.method} ${ctx.url} could not be decoded (${
              Text.escapeControl(failure.reason)
            })`
          }),
          "undecodable Content-Encoding"
        ))
    }
  })
}

/** Maps a request error (refused, reset, DNS, invalid URL) to a classified failure. */
const transportFailure = (ctx: Context, error: HttpClientError.HttpClientError): Retry.Failure<HttpError> => {
  const code = errorCode(error)
  const host = (() => {
    try {
      return new URL(ctx.url).host
    } catch {
      return ctx.url
    }
  })()
  const what = code === undefined ? "a network error" : describeCode(code)
  const retryable = error._tag === "RequestError" ? error.reason === "Transport" : true
  const failure = new TransportError({
    source: ctx.source,
    url: ctx.url,
    message: `${ctx.prefix}: ${ctx.method} ${ctx.url} did not complete: could not talk to ${host} (${what})`
  })
  return retryable ? Retry.transient<HttpError>(failure, what) : Retry.fatal<HttpError>(failure, what)
}

const describeCode = (code: string): string => {
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused"
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
    case "EPIPE":
      return "connection reset"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found"
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return "connection timed out"
    default:
      return code
  }
}

/** Finds a Node/undici error code (`ECONNREFUSED`, ...) in an error's cause chain. */
const errorCode = (error: unknown): string | undefined => {
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number): string | undefined => {
    if (typeof e !== "object" || e === null || seen.has(e) || depth > 6) return undefined
    seen.add(e)
    const o = e as { code?: unknown; cause?: unknown; errors?: unknown }
    if (typeof o.code === "string" && /^[A-Z_]+$/.test(o.code)) return o.code
    if (Array.isArray(o.errors)) {
      for (const inner of o.errors) {
        const c = visit(inner, depth + 1)
        if (c !== undefined) return c
      }
    }
    return visit(o.cause, depth + 1)
  }
  return visit(error, 0)
}

const resolveUrl = (settings: Settings, path: string | URL, params?: SafeUrl.Params): Either.Either<URL, SafeUrl.Refusal> =>
  Option.match(settings.base, {
    onSome: (base) => SafeUrl.resolve(base, typeof path === "string" ? path : path.href, params),
    // Without a base, a URL that may be fetched is its own base: with no params to set, it is the
    // request's URL as it is (a download hands over the URL it checked, which is not parsed again).
    onNone: () =>
      Either.flatMap(SafeUrl.fetchable(path), (url) =>
        params === undefined || Object.keys(params).length === 0 ? Either.right(url) : SafeUrl.resolve(new URL(url.origin), url.href, params))
  })

const findRequestId = (settings: Settings, headers: Headers.Headers): Option.Option<string> => {
  for (const name of settings.requestIdHeaders) {
    const v = headers[name]
    if (v !== undefined && v !== "") return Option.some(ErrorBody.oneLine(settings.scrub(v), 100))
  }
  return Option.none()
}

/** Replaces every occurrence of the credential (and its key part) in a text by `***`. */
const scrubber = (auth: Auth | undefined): ((text: string) => string) => {
  if (auth === undefined) return (text) => text
  const value = Redacted.value(auth.value)
  const parts = [value, ...value.split(/\s+/).filter((p) => p.length >= 8)]
    .filter((p) => p.length >= 4)
    .sort((a, b) => b.length - a.length)
  return (text) => parts.reduce((t, p) => t.split(p).join("***"), text)
}

const snippet = (settings: Settings, text: string): string => ErrorBody.oneLine(settings.scrub(text), 200)

/** The default body reader of `requestJson`: `JSON.parse`, or why the text is not JSON. */
export const parseJson = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(text))
  } catch (e) {
    return Either.left(`the body is not valid JSON (${e instanceof Error ? e.message : String(e)})`)
  }
}

/** Formats a schema issue path like `results[0].pk`. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path
    .map((key, i) => {
      if (typeof key === "number") return `[${key}]`
      const k = String(key)
      if (/^\d+$/.test(k)) return `[${k}]`
      if (/^[A-Za-z_$][\w$]*$/.test(k)) return i === 0 ? k : `.${k}`
      return `[${JSON.stringify(k)}]`
    })
    .join("")

const withSuffix = (error: HttpError, suffix: string): HttpError => {
  const message = `${error.message}${suffix}`
  switch (error._tag) {
    case "Unauthorized":
      return new Unauthorized({ source: error.source, status: error.status, requestId: error.requestId, message })
    case "RateLimited":
      return new RateLimited({
        source: error.source,
        retryAfterMillis: error.retryAfterMillis,
        requestId: error.requestId,
        message
      })
    case "ApiError":
      return new ApiError({
        source: error.source,
        status: error.status,
        code: error.code,
        vendorMessage: error.vendorMessage,
        requestId: error.requestId,
        url: error.url,
        message
      })
    case "DecodeError":
      return new DecodeError({
        source: error.source,
        path: error.path,
        snippet: error.snippet,
        url: error.url,
        message
      })
    case "TransportError":
      return new TransportError({ source: error.source, url: error.url, message })
  }
}

const lowerKeys = (headers: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))

const concat = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    if (offset >= size) break
    const part = chunk.length > size - offset ? chunk.subarray(0, size - offset) : chunk
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/** Formats a byte count: `25 MiB`, `512 KiB`, `100 bytes`. */
export const formatBytes = (n: number): string => {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`
  return `${n} bytes`
}
