/**
 * Download: fetching the bytes of a vendor's image URL, safely.
 *
 * Only `http:` and `https:` URLs are fetched (a protocol-relative `//host/x` becomes
 * `https://host/x`); `file:`, `data:`, `javascript:`, relative paths and URLs with credentials are
 * refused with a `DecodeError` that says why (`ftp:` and every other scheme too). Bodies are capped
 * (`maxBytes`, reading stops as soon as the cap is passed: an `ApiError` naming the cap); a body sent
 * with `Content-Encoding: gzip`, `deflate` or `br` is decoded, so the bytes stored and hashed are the
 * image's, and the cap applies to the decoded bytes (a gzip bomb is refused once it passes the cap;
 * an unknown coding is refused). Each attempt has a timeout, and failures are
 * retried with the same {@link Retry} policy as API calls. Redirects are followed one hop at a time
 * (at most 10), and every hop passes the same checks, including `allowedHosts` when it is set; no
 * credentials are ever sent with a download. The image-file sink and `hash-content` use it.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import { ApiError, DecodeError, type HttpError } from "../Errors.js"
import * as ApiClient from "./ApiClient.js"
import type * as Retry from "./Retry.js"
import * as SafeUrl from "./SafeUrl.js"

/** The default size cap: 25 MiB. */
export const defaultMaxBytes = 25 * 1024 * 1024

/** How to make a downloader. */
export interface Options {
  /** The source name used in messages and counters when a fetch names none. */
  readonly source: string
  /** The largest body accepted, in bytes. Default 25 MiB. */
  readonly maxBytes?: number
  /** How long one attempt may take. Default 30 seconds. */
  readonly timeout?: Duration.DurationInput
  /** Retry settings over {@link Retry.defaults}. */
  readonly retry?: Retry.PolicyInput
  /** Extra request headers. Default `Accept: image/*, *\/*;q=0.8`. */
  readonly headers?: Readonly<Record<string, string>>
  /**
   * When set, only these hosts are fetched (also on every redirect): exact names, or `*.example.com`
   * for any subdomain. Default: any host.
   */
  readonly allowedHosts?: ReadonlyArray<string>
}

/** The most redirects one download follows. */
export const maxRedirects = 10

const redirectStatuses = [301, 302, 303, 307, 308]

/** Whether a host is on an allow-list of exact names and `*.suffix` patterns (case-insensitive, no port). */
export const hostAllowed = (host: string, allowed: ReadonlyArray<string>): boolean => {
  const h = host.toLowerCase().replace(/\.$/, "")
  return allowed.some((pattern) => {
    const p = pattern.toLowerCase().trim().replace(/\.$/, "")
    return p.startsWith("*.") ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p
  })
}

/** Per-fetch settings. */
export interface FetchOptions {
  /** The source the record came from (messages, retry counters). */
  readonly source?: string
}

/** A made downloader. */
export interface Downloader {
  /** Fetches the bytes at a vendor URL, or fails with why (refused, over the cap, HTTP, transport). */
  readonly fetch: (url: string, options?: FetchOptions) => Effect.Effect<Uint8Array, HttpError>
  /** The size cap in bytes. */
  readonly maxBytes: number
}

/** Makes a downloader. */
export const make = (options: Options): Effect.Effect<Downloader, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.map(
    ApiClient.make({
      source: options.source,
      headers: { accept: "image/*, */*;q=0.8", ...options.headers },
      // Redirects are followed here, hop by hop, so that every hop is checked.
      followRedirects: false,
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      ...(options.retry !== undefined ? { retry: options.retry } : {})
    }),
    (client): Downloader => {
      const maxBytes = options.maxBytes ?? defaultMaxBytes
      const refuse = (source: string, url: string, reason: string) =>
        new DecodeError({ source, message: `source '${source}': refused to fetch the image URL ${SafeUrl.describe(url)}: ${reason}` })
      const check = (source: string, url: string): Either.Either<URL, DecodeError> =>
        Either.flatMap(
          Either.mapLeft(SafeUrl.fetchable(url), (refusal) => refuse(source, url, refusal.reason)),
          (target) =>
            options.allowedHosts === undefined || hostAllowed(target.hostname, options.allowedHosts)
              ? Either.right(target)
              : Either.left(refuse(source, url, `${target.hostname} is not in allowedHosts`))
        )
      // One client per source name (fetches name the source of their record).
      const clients = new Map<string, ApiClient.ApiClient>([[options.source, client]])
      const clientOf = (source: string): ApiClient.ApiClient => {
        let c = clients.get(source)
        if (c === undefined) clients.set(source, c = client.withSource(source))
        return c
      }
      const hop = (source: string, target: URL, redirects: number): Effect.Effect<Uint8Array, HttpError> =>
        Effect.flatMap(
          clientOf(source).requestBytes({ path: target, maxBytes, answers: redirectStatuses }),
          (reply) => {
            if (reply._tag === "Ok") return Effect.succeed(reply.bytes)
            const location = reply.headers["location"]
            if (location === undefined || redirects >= maxRedirects) {
              return Effect.fail(
                new ApiError({
                  source,
                  status: reply.status,
                  url: reply.url,
                  message: `source '${source}': the image URL ${reply.url} ${
                    location === undefined ? `answered HTTP ${reply.status} with no Location` : `redirected more than ${maxRedirects} times`
                  }`
                })
              )
            }
            let next: string
            try {
              next = new URL(location, target).href
            } catch {
              return Effect.fail(refuse(source, location, `a redirect from ${reply.url} to an invalid URL`))
            }
            return Either.match(check(source, next), {
              onLeft: (e) =>
                Effect.fail(new DecodeError({ ...e, message: `${e.message} (redirected from ${reply.url})` })),
              onRight: (url) => hop(source, url, redirects + 1)
            })
          }
        )
      return {
        maxBytes,
        fetch: (url, fetchOptions = {}) => {
          const source = fetchOptions.source ?? options.source
          return Either.match(check(source, url), {
            onLeft: Effect.fail,
            onRight: (target) => hop(source, target, 0)
          })
        }
      }
    }
  )

/** Fetches one URL with a one-off downloader (prefer {@link make} for many). */
export const fetch = (
  url: string,
  options: Options
): Effect.Effect<Uint8Array, HttpError, HttpClient.HttpClient> =>
  Effect.scoped(Effect.flatMap(make(options), (downloader) => downloader.fetch(url)))
