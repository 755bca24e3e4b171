/**
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
 * `withScope` as before. Since the attempt cuts its request on every way it can end, the client
 * sends it without the platform's own abort wrapper when it has no span (see `UndiciClient`).
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
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

/** An attempt's signal, and the URL it requests (so that a client need not parse it again). */
export interface Attempt {
  readonly signal: AbortSignal | Abort
  readonly url?: URL
}

/** The attempt a fiber is running, set while the attempt runs. */
export const signals = new WeakMap<Fiber.RuntimeFiber<unknown, unknown>, Attempt>()

const brand: unique symbol = Symbol.for("@effetl/core/http/AttemptSignal")

/** Marks a client as one that sends each request with its fiber's signal in {@link signals} when there is one. */
export const mark = <C extends HttpClient.HttpClient>(client: C): C => Object.assign(client, { [brand]: true })

/** Whether a client sends each request with its fiber's signal in {@link signals}. */
export const honoured = (client: HttpClient.HttpClient): boolean => brand in client
