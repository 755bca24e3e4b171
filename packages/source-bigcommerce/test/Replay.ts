/**
 * A replay server for contract tests: serves fixed answers on 127.0.0.1, shaped like a store's V2
 * API (`/stores/{storeHash}/v2/...`), with core's simulator Server (no faults). Each route answers
 * from the query: a `Server.Reply` as it is (e.g. a vendor example file's bytes), `undefined` for
 * BigCommerce's 204 with an empty body, anything else as JSON.
 */
import { Server } from "@effetl/core/simulator"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** A route's answer to one request. */
export type Route = (query: URLSearchParams) => unknown

/** A running replay server. */
export interface Replay {
  /** The base URL to configure (`http://127.0.0.1:<port>`). */
  readonly url: string
  /** The store hash the routes live under. */
  readonly storeHash: string
  /** Path and query of every request, in order. */
  readonly log: () => ReadonlyArray<string>
}

const isReply = (u: unknown): u is Server.Reply =>
  typeof u === "object" && u !== null && "status" in u && "body" in u && (u as { body: unknown }).body instanceof Uint8Array

/** A reply with a file's bytes exactly as they are, as JSON. */
export const raw = (bytes: Uint8Array, status = 200): Server.Reply => ({ status, headers: { "Content-Type": "application/json" }, body: bytes })

/** Starts a replay server for the scope: `routes` by path under `/stores/{storeHash}/v2` (e.g. `/products`). */
export const startReplay = (routes: Readonly<Record<string, Route>>, storeHash = "abc123"): Effect.Effect<Replay, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const log: Array<string> = []
      const prefix = `/stores/${storeHash}/v2`
      const served = await Server.serve({
        name: "bigcommerce replay",
        respond: (req) => {
          const url = new URL(req.url ?? "/", "http://replay")
          log.push(`${url.pathname}${url.search}`)
          const route = url.pathname.startsWith(`${prefix}/`) ? routes[url.pathname.slice(prefix.length)] : undefined
          if (route === undefined) return Server.json(404, [{ status: 404, message: "The requested resource was not found." }])
          const answer = route(url.searchParams)
          if (answer === undefined) return { status: 204, headers: {}, body: new Uint8Array(0) }
          return isReply(answer) ? answer : Server.json(200, answer)
        },
        serverErrors: [Server.json(500, [{ status: 500, message: "Internal Server Error" }])],
        throttled: () => Server.json(429, [{ status: 429, message: "Too many requests." }])
      })
      return { served, replay: { url: served.origin, storeHash, log: () => [...log] } }
    }),
    ({ served }) => Effect.promise(() => served.close())
  ).pipe(Effect.map(({ replay }) => replay))
