/**
 * Paginate: small pagination strategies that turn "fetch one page" into a `Stream` of pages.
 *
 * Each page carries what a checkpoint needs, so a source can resume after the last page it
 * committed:
 * - {@link tokenFeed}: a change feed; send back the token of the last lot, stop when done
 *   (resume: the page's `next` token);
 * - {@link pageNumber}: page 1, 2, 3... until an end answer (204 / 404), an empty page or the
 *   last page (resume: `page + 1`);
 * - {@link cursor}: cursor plus `has_more` (resume: the page's `next` cursor);
 * - {@link drf}: Django REST Framework `{count, next, previous, results}` over an
 *   {@link ApiClient.ApiClient}, following `next` (same origin only) or, with `concurrency > 1`,
 *   fetching the remaining page numbers in parallel once `count` is known, still emitted in order
 *   (resume: `page + 1`);
 * - {@link linkHeader}: RFC 8288 `Link: <...>; rel="next"` headers over an {@link ApiClient.ApiClient}
 *   (GitHub, Shopify REST, many others), following the next link on the client's origin only
 *   (resume: the page's `next` URL).
 *
 * The generic strategies take a `fetch` function, so a source composes them with its own requests
 * and wire schemas and writes no loop of its own.
 */
import type * as Headers from "@effect/platform/Headers"
import LinkHeader from "http-link-header"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as MutableHashSet from "effect/MutableHashSet"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { ApiError, DecodeError, type HttpError } from "../Errors.js"
import * as Text from "../Text.js"
import type * as ApiClient from "./ApiClient.js"
import * as SafeUrl from "./SafeUrl.js"

// ---------------------------------------------------------------------------------------------
// Token feed
// ---------------------------------------------------------------------------------------------

/** One lot of a token feed. */
export interface TokenPage<T, A> {
  /** The token sent to get this lot. */
  readonly token: T
  /** The token to send next: the resume position after this lot. */
  readonly next: T
  /** The decoded response. */
  readonly value: A
  /** Whether this lot ended the cycle. */
  readonly done: boolean
}

/** Options of {@link tokenFeed}. */
export interface TokenFeedOptions<T, A, E, R> {
  /** The source name, for errors. */
  readonly source: string
  /** The token to start from (the saved checkpoint, or the feed's initial token). */
  readonly start: T
  /** Fetches the lot after `token`. */
  readonly fetch: (token: T) => Effect.Effect<A, E, R>
  /** The token to send next, from a response. */
  readonly nextToken: (value: A) => T
  /** Whether a response ends the cycle (e.g. `queuecount === 0` or an empty lot). */
  readonly isDone: (value: A) => boolean
}

/**
 * A token feed: fetch with the start token, then with each response's token, until `isDone`.
 * Every lot is emitted, the last one too. A feed that does not move (same token, not done) or sends
 * back a token it already gave in this stream fails with an `ApiError` instead of looping forever.
 */
export const tokenFeed = <T, A, E, R>(options: TokenFeedOptions<T, A, E, R>): Stream.Stream<TokenPage<T, A>, E | ApiError, R> =>
  Stream.suspend(() => {
    const seen = MutableHashSet.make(options.start)
    return Stream.paginateChunkEffect(options.start, (token) =>
      Effect.flatMap(options.fetch(token), (value) => {
        const next = options.nextToken(value)
        const done = options.isDone(value)
        if (!done && MutableHashSet.has(seen, next)) {
          const same = Equal.equals(next, token)
          return Effect.fail(
            new ApiError({
              source: options.source,
              message: `source '${options.source}': the feed answered token ${shown(token)} with ${
                same ? "the same token" : `token ${shown(next)}, which it already gave in this run,`
              } and no end; stopping rather than looping forever`
            })
          )
        }
        MutableHashSet.add(seen, next)
        return Effect.succeed([Chunk.of({ token, next, value, done }), done ? Option.none() : Option.some(next)] as const)
      }))
  })

// ---------------------------------------------------------------------------------------------
// Page number
// ---------------------------------------------------------------------------------------------

/** One page of a page-numbered list. */
export interface NumberedPage<A> {
  /** The page number (resume after it at `page + 1`). */
  readonly page: number
  readonly value: A
}

/** Options of {@link pageNumber}. */
export interface PageNumberOptions<A, E, R> {
  /** The first page to fetch (default 1; the saved checkpoint to resume). */
  readonly start?: number
  /** Fetches a page; `None` means the list ended (a declared end answer such as 204 or 404). */
  readonly fetch: (page: number) => Effect.Effect<Option.Option<A>, E, R>
  /** Whether a page is empty: an empty page ends the list and is not emitted. */
  readonly isEmpty?: (value: A) => boolean
  /** Whether a page is the last one (e.g. fewer results than the limit): it is emitted, then the list ends. */
  readonly isLast?: (value: A, page: number) => boolean
}

/** Page-number pagination from `start` until an end answer, an empty page or the last page. */
export const pageNumber = <A, E, R>(options: PageNumberOptions<A, E, R>): Stream.Stream<NumberedPage<A>, E, R> =>
  Stream.paginateChunkEffect(options.start ?? 1, (page) =>
    Effect.map(options.fetch(page), (fetched) => {
      if (Option.isNone(fetched) || (options.isEmpty?.(fetched.value) ?? false)) {
        return [Chunk.empty<NumberedPage<A>>(), Option.none<number>()] as const
      }
      const last = options.isLast?.(fetched.value, page) ?? false
      return [Chunk.of({ page, value: fetched.value }), last ? Option.none<number>() : Option.some(page + 1)] as const
    }))

// ---------------------------------------------------------------------------------------------
// Cursor
// ---------------------------------------------------------------------------------------------

/** One page of a cursor-paginated list. */
export interface CursorPage<A> {
  /** The cursor sent for this page (none for the first page). */
  readonly cursor: Option.Option<string>
  /** The cursor of the next page: the resume position after this one (none at the end). */
  readonly next: Option.Option<string>
  readonly value: A
}

/** Options of {@link cursor}. */
export interface CursorOptions<A, E, R> {
  /** The source name, for errors. */
  readonly source: string
  /** The cursor to resume from (none: the beginning). */
  readonly start?: Option.Option<string>
  /** Fetches the page at a cursor (none: the first page). */
  readonly fetch: (cursor: Option.Option<string>) => Effect.Effect<A, E, R>
  /** The next cursor in a response. */
  readonly nextCursor: (value: A) => string | null | undefined
  /** Whether more pages follow (`has_more`). */
  readonly hasMore: (value: A) => boolean
}

/**
 * Cursor pagination: follow the response's cursor while `has_more`. A response that says there is
 * more but gives no cursor, or a cursor already followed in this stream (a loop), fails with an
 * `ApiError` (rather than stopping early or looping).
 */
export const cursor = <A, E, R>(options: CursorOptions<A, E, R>): Stream.Stream<CursorPage<A>, E | ApiError, R> =>
  Stream.suspend(() => {
    const seen = new Set<string>()
    const start = options.start ?? Option.none<string>()
    if (Option.isSome(start)) seen.add(start.value)
    return Stream.paginateChunkEffect(start, (current) =>
      Effect.flatMap(options.fetch(current), (value) => {
        const raw = options.nextCursor(value)
        const next = raw === null || raw === undefined || raw === "" ? Option.none<string>() : Option.some(raw)
        const more = options.hasMore(value)
        if (more && (Option.isNone(next) || seen.has(next.value))) {
          const what = Option.isNone(next)
            ? "no cursor"
            : Equal.equals(next, current)
            ? "the same cursor again"
            : `cursor ${shown(next.value)}, which it already gave in this run`
          return Effect.fail(
            new ApiError({
              source: options.source,
              message: `source '${options.source}': the API says there are more pages but gave ${what}; stopping rather than losing or repeating pages`
            })
          )
        }
        if (more && Option.isSome(next)) seen.add(next.value)
        const page: CursorPage<A> = { cursor: current, next: more ? next : Option.none(), value }
        return Effect.succeed([Chunk.of(page), more ? Option.some(next) : Option.none()] as const)
      }))
  })

// ---------------------------------------------------------------------------------------------
// Django REST Framework
// ---------------------------------------------------------------------------------------------

/** The DRF page envelope `{count, next, previous, results}` around an item schema. */
export const drfEnvelope = <A, I>(item: Schema.Schema<A, I>) =>
  Schema.Struct({
    count: Schema.Number,
    next: Schema.NullOr(Schema.String),
    previous: Schema.optional(Schema.NullOr(Schema.String)),
    results: Schema.Array(item)
  })

/** One DRF page. */
export interface DrfPage<A> {
  /** The page number (resume after it at `page + 1`). */
  readonly page: number
  readonly results: ReadonlyArray<A>
  /** The total number of results the API reported for the list. */
  readonly count: number
}

/** DRF's "page past the end" answer: 404 `{"detail": "Invalid page."}`. */
export const drfEndOfList: ReadonlyArray<ApiClient.Answer> = [{ status: 404, vendorMessage: "Invalid page." }]

/** Options of {@link drf}. */
export interface DrfOptions<A, I> {
  /** The list path, relative to the client's base URL (e.g. `/product_images/detailed/`). */
  readonly path: string
  /** The schema of one result. Use `Schema.Unknown` to decode results one by one yourself (bad ones to dead letters). */
  readonly item: Schema.Schema<A, I>
  /** Results per page (always sent). */
  readonly limit: number
  /** Other query parameters (filters). */
  readonly params?: SafeUrl.Params
  /** The first page to fetch (default 1; the checkpoint to resume from). */
  readonly startPage?: number
  /** 1 (default): follow `next`. More: once `count` is known, fetch page numbers this many at a time, emitted in order. */
  readonly concurrency?: number
  /** The page parameter name (default `page`). */
  readonly pageParam?: string
  /** The page size parameter name (default `limit`). */
  readonly limitParam?: string
  /** Statuses that mean "past the end" (default: 404 `Invalid page.`). */
  readonly endOfList?: ReadonlyArray<ApiClient.Answer>
}

/**
 * A DRF list as a stream of pages, from `startPage`. Pages with no results are not emitted. `next`
 * links are only followed on the client's origin (another origin fails with a `DecodeError`), and a
 * `next` that points back to a page already requested in this stream (the same URL, or a page
 * number not after the current one) is an `ApiError`: a vendor loop ends at once, never thousands of
 * requests.
 */
export const drf = <A, I>(client: ApiClient.ApiClient, options: DrfOptions<A, I>): Stream.Stream<DrfPage<A>, HttpError> => {
  const envelope = drfEnvelope(options.item)
  const pageParam = options.pageParam ?? "page"
  const limitParam = options.limitParam ?? "limit"
  const answers = options.endOfList ?? drfEndOfList
  const start = Math.max(1, Math.floor(options.startPage ?? 1))
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1))

  type Body = typeof envelope.Type
  const byNumber = (page: number): Effect.Effect<Option.Option<Body>, HttpError> =>
    Effect.map(
      client.requestJson(
        { path: options.path, params: { ...options.params, [pageParam]: page, [limitParam]: options.limit }, answers },
        envelope
      ),
      (reply) => (reply._tag === "Ok" ? Option.some(reply.value) : Option.none())
    )
  const byLink = (url: string): Effect.Effect<Option.Option<Body>, HttpError> =>
    Effect.map(
      client.requestJson({ path: url, answers }, envelope),
      (reply) => (reply._tag === "Ok" ? Option.some(reply.value) : Option.none())
    )
  const toPage = (page: number, body: Body): Chunk.Chunk<DrfPage<A>> =>
    body.results.length === 0 ? Chunk.empty() : Chunk.of({ page, results: body.results, count: body.count })

  if (concurrency === 1) {
    type Step = { readonly page: number; readonly link: Option.Option<string> }
    /** The request a path or link stands for, to spot a repeat: resolved, query sorted. */
    const requestKey = (pathOrLink: string, params?: SafeUrl.Params): string =>
      Either.match(client.resolve(pathOrLink, params), {
        onLeft: () => pathOrLink,
        onRight: (url) => {
          url.searchParams.sort()
          url.hash = ""
          return url.href
        }
      })
    return Stream.suspend(() => {
      const requested = new Set([requestKey(options.path, { ...options.params, [pageParam]: start, [limitParam]: options.limit })])
      return Stream.paginateChunkEffect<Step, DrfPage<A>, HttpError, never>(
        { page: start, link: Option.none() },
        (step) =>
          Effect.flatMap(Option.match(step.link, { onNone: () => byNumber(step.page), onSome: byLink }), (fetched) => {
            if (Option.isNone(fetched)) return Effect.succeed([Chunk.empty(), Option.none()] as const)
            const body = fetched.value
            if (body.next === null || body.results.length === 0) return Effect.succeed([toPage(step.page, body), Option.none()] as const)
            const linked = pageOf(body.next, pageParam)
            const key = requestKey(body.next)
            if (requested.has(key) || (linked !== undefined && linked <= step.page)) {
              return Effect.fail(
                new ApiError({
                  source: client.source,
                  status: 200,
                  url: SafeUrl.printable(key),
                  message: `source '${client.source}': the API's next link on page ${step.page} points back to ${
                    linked === undefined ? "a page" : `page ${linked}`
                  }, already requested in this list (${
                    SafeUrl.printable(body.next)
                  }); stopping rather than reading the same pages forever`
                })
              )
            }
            requested.add(key)
            return Effect.succeed(
              [toPage(step.page, body), Option.some({ page: linked ?? step.page + 1, link: Option.some(body.next) })] as const
            )
          })
      )
    })
  }

  return Stream.unwrap(
    Effect.map(byNumber(start), (first) => {
      if (Option.isNone(first)) return Stream.empty
      const body = first.value
      // A server may cap the page size below `limit` (DRF's max_page_size): number the pages by the
      // size it really used, or the parallel reads would skip results.
      const size = body.next !== null && body.results.length > 0 && body.results.length < options.limit
        ? body.results.length
        : options.limit
      const lastPage = Math.max(1, start - 1 + Math.ceil(Math.max(0, body.count - (start - 1) * size) / size))
      const rest = start + 1 > lastPage
        ? Stream.empty
        : Stream.range(start + 1, lastPage).pipe(
          Stream.mapEffect((page) => Effect.map(byNumber(page), (fetched) => [page, fetched] as const), {
            concurrency
          }),
          Stream.takeWhile(([, fetched]) => Option.isSome(fetched) && fetched.value.results.length > 0),
          Stream.mapConcat(([page, fetched]) => Option.isSome(fetched) ? toPage(page, fetched.value) : Chunk.empty())
        )
      return Stream.concat(Stream.fromChunk(toPage(start, body)), rest)
    })
  )
}

// ---------------------------------------------------------------------------------------------
// Link header (RFC 8288)
// ---------------------------------------------------------------------------------------------

/** One page of a list paginated by `Link` headers. */
export interface LinkPage<A> {
  /** The URL this page was read from (absolute; it may carry query parameters the API needs). */
  readonly url: string
  /** The next page's URL: the resume position after this page (none: this was the last page). */
  readonly next: Option.Option<string>
  /** The decoded body. */
  readonly value: A
  /** The response headers (a total such as `X-Total-Count`, say). */
  readonly headers: Headers.Headers
}

/** Options of {@link linkHeader}. */
export interface LinkHeaderOptions<A, I> {
  /** The first page's path, relative to the client's base URL (e.g. `/products`). */
  readonly path: string
  /** The first page's query parameters (page size, filters); the next links carry their own. */
  readonly params?: SafeUrl.Params
  /** The schema of one page's body. */
  readonly schema: Schema.Schema<A, I>
  /** Where to resume: a `next` URL saved from an earlier page (checked like any link). None: the first page. */
  readonly resume?: Option.Option<string>
  /** The link relation to follow (default `next`; matched case-insensitively, as RFC 8288 says). */
  readonly rel?: string
  /** Statuses that end the list without a page (e.g. a 404 past the end); none by default. */
  readonly endOfList?: ReadonlyArray<ApiClient.Answer>
  /** Extra headers sent with every page request. */
  readonly headers?: Readonly<Record<string, string>>
}

/**
 * A list paginated by RFC 8288 `Link` headers, as a stream of pages: GET `path`, then each
 * response's `rel="next"` link until a response has none. Links are parsed with `http-link-header`
 * (quoted parameters, several links in one header, several relations in one `rel`). A relative link
 * is resolved against the URL of the page that sent it. Every next URL is checked like any URL from
 * the vendor: only on the client's origin ({@link SafeUrl.resolve}; another origin, credentials in
 * the URL or an unparseable header are a `DecodeError`), and a next URL already requested in this
 * stream (query order and fragment aside) is an `ApiError`: a vendor loop ends at once.
 */
export const linkHeader = <A, I>(client: ApiClient.ApiClient, options: LinkHeaderOptions<A, I>): Stream.Stream<LinkPage<A>, HttpError> => {
  const rel = options.rel ?? "next"
  const answers = options.endOfList ?? []
  const source = client.source
  /** The key of a URL for loop detection: query sorted, no fragment. */
  const keyOf = (url: URL): string => {
    const copy = new URL(url.href)
    copy.searchParams.sort()
    copy.hash = ""
    return copy.href
  }
  /** The first URL: the saved next URL on resume (checked again: state files can be edited), else path + params. */
  const first: Effect.Effect<URL, DecodeError> = Option.match(options.resume ?? Option.none(), {
    onNone: () => client.resolve(options.path, options.params),
    onSome: (saved) => client.resolve(saved)
  })
  return Stream.unwrap(Effect.map(first, (start) =>
    Stream.suspend(() => {
      const requested = new Set([keyOf(start)])
      return Stream.paginateChunkEffect(start, (url: URL) =>
        Effect.flatMap(
          client.requestJson({ path: url.href, answers, ...(options.headers ? { headers: options.headers } : {}) }, options.schema),
          (reply): Effect.Effect<readonly [Chunk.Chunk<LinkPage<A>>, Option.Option<URL>], HttpError> => {
            if (reply._tag === "Answer") return Effect.succeed([Chunk.empty(), Option.none()] as const)
            return Effect.flatMap(nextLink(client, url, reply.headers, rel), (next) => {
              if (Option.isSome(next)) {
                const key = keyOf(next.value)
                if (requested.has(key)) {
                  return Effect.fail(
                    new ApiError({
                      source,
                      status: reply.status,
                      url: SafeUrl.printable(next.value),
                      message: `source '${source}': the API's Link header on ${SafeUrl.printable(url)} points back to ${
                        SafeUrl.printable(next.value)
                      }, already requested in this list; stopping rather than reading the same pages forever`
                    })
                  )
                }
                requested.add(key)
              }
              const page: LinkPage<A> = {
                url: url.href,
                next: Option.map(next, (u) => u.href),
                value: reply.value,
                headers: reply.headers
              }
              return Effect.succeed([Chunk.of(page), next] as const)
            })
          }
        ))
    })))
}

/**
 * The `rel` link of a response's `Link` header(s), resolved against the page's URL and checked to be
 * on the client's origin; none when there is no such link.
 */
const nextLink = (
  client: ApiClient.ApiClient,
  page: URL,
  headers: Headers.Headers,
  rel: string
): Effect.Effect<Option.Option<URL>, DecodeError> => {
  const raw = headers["link"]
  if (raw === undefined || raw.trim() === "") return Effect.succeed(Option.none())
  let target: string | undefined
  try {
    target = LinkHeader.parse(raw).rel(rel)[0]?.uri
  } catch (e) {
    return Effect.fail(
      new DecodeError({
        source: client.source,
        url: SafeUrl.printable(page),
        snippet: Text.escapeControl(raw.length > 200 ? `${raw.slice(0, 197)}...` : raw),
        message: `source '${client.source}': the Link header of ${SafeUrl.printable(page)} cannot be read (${
          e instanceof Error ? e.message : String(e)
        })`
      })
    )
  }
  if (target === undefined) return Effect.succeed(Option.none())
  let absolute: string
  try {
    // RFC 8288: a relative reference is resolved against the URL of the response that carried it.
    absolute = new URL(target, page).href
  } catch {
    return Effect.fail(
      new DecodeError({
        source: client.source,
        url: SafeUrl.printable(page),
        message: `source '${client.source}': the Link header of ${SafeUrl.printable(page)} gives ${SafeUrl.describe(target)} as rel="${rel}", which is not a URL`
      })
    )
  }
  return Effect.map(client.resolve(absolute), Option.some)
}

/** The page number in a `next` link, when it has one. */
const pageOf = (link: string, pageParam: string): number | undefined => {
  try {
    const value = new URL(link, "http://placeholder.invalid").searchParams.get(pageParam)
    const n = value === null ? Number.NaN : Number(value)
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}

/** A token or cursor as a message shows it: quoted, control characters escaped, cut to 60 characters. */
const shown = (value: unknown): string => {
  const text = String(value)
  return Text.escapeControl(JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text))
}
