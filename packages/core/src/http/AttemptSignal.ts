/**
 * How an API client's attempt reaches an HTTP client made for it: the attempt's abort signal, and a
 * direct send.
 *
 * The abort signal of one request attempt, from the API client to an HTTP client that takes it.
 *
 * The API client cuts an attempt (its timeout, a failure before the body was read, an
 * interruption) by aborting its request. With any `@effect/platform` client that is done through
 * `HttpClient.withScope` and a `Scope` provided around each request, which cost about 15 % of the
 * CPU of a run that downloads images. A client made by `UndiciClient` instead looks up the signal
 * set here for the fiber that executes the request and hands it to undici in place of the
 * platform's own; the API client sets it just before the attempt's request, aborts it itself, and
 * removes it when the attempt ends. Keyed by fiber rather than by request: with spans on, the
 * platform executes a copy of the request (with trace headers). Any other client goes through
 * `withScope` as before. Requests without a span take the direct send below.
 *
 * A client may also offer a {@link Direct} send: the request handed to the dispatcher as it is and
 * its body read into memory up to a limit the attempt sets once it has the status, with a callback
 * when it ends. The API client then runs an attempt as one wait, without the platform's response
 * object, its body stream or the steps around them; it takes that way for every request with no
 * span (see `ApiClient`).
 *
 * @internal
 */
import type * as Headers from "@effect/platform/Headers"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as Fiber from "effect/Fiber"
import { EventEmitter } from "node:events"

/**
 * An attempt's abort signal: an `EventEmitter` with `aborted` and `reason`, which undici takes as a
 * request's `signal` as it takes an `AbortSignal` (its documented `AbortSignal | EventEmitter`).
 * Node's `AbortController` costs about 5 µs to make and to listen to, an attempt's largest single
 * cost after the request itself; this costs a few hundred nanoseconds. It is aborted once.
 */
export class Abort extends EventEmitter {
  aborted = false
  reason: unknown = undefined

  /** Aborts the request (once): its reason is an `AbortError`, as `AbortController.abort()` gives. */
  abort(): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = new DOMException("This operation was aborted", "AbortError")
    this.emit("abort")
  }
}

/** An attempt's signal. */
export interface Attempt {
  readonly signal: AbortSignal | Abort
}

/** The attempt a fiber is running, set while the attempt runs. */
export const signals = new WeakMap<Fiber.RuntimeFiber<unknown, unknown>, Attempt>()

/** What a {@link Direct} send hands back once the request has ended. */
export interface DirectReply {
  readonly status: number
  readonly headers: Headers.Headers
  /** The body: all of it, or its first `limit` bytes when it was longer (see {@link DirectHandler.limit}). */
  readonly body: Uint8Array
  /** How many body bytes arrived before reading stopped. */
  readonly received: number
  /** Reading stopped because more body bytes came than the limit; the request was aborted. */
  readonly over: boolean
  /** Why the body could not be read to its end (the connection closed, the request was aborted), when it could not. */
  readonly bodyError: unknown
}

/** What a {@link Direct} send asks of its caller. */
export interface DirectHandler {
  /** The most body bytes to read for this status and headers; past it reading stops and the request is aborted. */
  readonly limit: (status: number, headers: Headers.Headers) => number
  /** Called once: with the request's failure (nothing was answered), or with the reply. */
  readonly done: (failure: HttpClientError.RequestError | undefined, reply: DirectReply | undefined) => void
}

/** A client's direct send (see the module's note). */
export interface Direct {
  /** Whether `request` may be sent directly (its body is empty or bytes); the caller sees that it wants no span. */
  readonly accepts: (request: HttpClientRequest.HttpClientRequest) => boolean
  /**
   * Sends `request` to `url` (its own URL, parsed) with the options of `fiber`'s context; returns a
   * function that aborts it (before it is sent, while it waits, or while its body is read; once
   * `handler.done` has been called it does nothing).
   */
  readonly send: (
    request: HttpClientRequest.HttpClientRequest,
    url: URL,
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    handler: DirectHandler
  ) => () => void
}

const brand: unique symbol = Symbol.for("@effetl/core/http/AttemptSignal")

/**
 * Marks a client as one that sends each request with its fiber's signal in {@link signals} when
 * there is one, and that offers `direct`.
 */
export const mark = <C extends HttpClient.HttpClient>(client: C, direct: Direct): C => Object.assign(client, { [brand]: direct })

/** Whether a client sends each request with its fiber's signal in {@link signals}. */
export const honoured = (client: HttpClient.HttpClient): boolean => brand in client

/** A marked client's direct send. */
export const directOf = (client: HttpClient.HttpClient): Direct | undefined =>
  brand in client ? (client as unknown as { readonly [brand]: Direct })[brand] : undefined
