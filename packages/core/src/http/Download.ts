/**
 * Download: fetching the bytes of a vendor's image URL, safely.
 *
 * Only `http:` and `https:` URLs are fetched (a protocol-relative `//host/x` becomes
 * `https://host/x`); `file:`, `data:`, `javascript:`, relative paths and URLs with credentials are
 * refused with a `DecodeError` that says why. Bodies are capped (`maxBytes`, reading stops as soon
 * as the cap is passed: an `ApiError` naming the cap), each attempt has a timeout, and failures are
 * retried with the same {@link Retry} policy as API calls. Redirects are followed (no credentials
 * are ever sent with a download). The image-file sink and `hash-content` use it.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import { DecodeError, type HttpError } from "../Errors.js"
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
      followRedirects: true,
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      ...(options.retry !== undefined ? { retry: options.retry } : {})
    }),
    (client): Downloader => {
      const maxBytes = options.maxBytes ?? defaultMaxBytes
      return {
        maxBytes,
        fetch: (url, fetchOptions = {}) => {
          const source = fetchOptions.source ?? options.source
          return Either.match(SafeUrl.fetchable(url), {
            onLeft: (refusal) =>
              Effect.fail(
                new DecodeError({
                  source,
                  message: `source '${source}': refused to fetch the image URL ${SafeUrl.describe(url)}: ${refusal.reason}`
                })
              ),
            onRight: (target) =>
              Effect.map(
                client.withSource(source).requestBytes({ path: target.href, maxBytes }),
                (reply) => reply.bytes
              )
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
