/**
 * A hostile vendor: core's HTTP toolkit (ApiClient, Download, Paginate) against a server on
 * 127.0.0.1 (core's simulator `Server`) that answers every way a real API or CDN can go wrong, or
 * worse. Every case asserts the error's type, a one-line message naming the problem (no control
 * characters, never a stack), and that the credential (a known fake token) appears nowhere: not in
 * the error, not in any log line.
 */
import type * as http from "node:http"
import * as zlib from "node:zlib"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as UndiciClient from "../src/http/UndiciClient.js"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ApiClient from "../src/http/ApiClient.js"
import * as Download from "../src/http/Download.js"
import * as Paginate from "../src/http/Paginate.js"
import * as RateLimit from "../src/http/RateLimit.js"
import * as RunStats from "../src/RunStats.js"
import type { FaultOptions } from "../src/simulator/Faults.js"
import * as Server from "../src/simulator/Server.js"
import { captureLogs, closedPort, type Logged } from "./http/TestServer.js"

/** The fake credential: it must never appear in any error or log line. */
const secret = "hostile-FAKE-0123456789abcdef"
const auth = { header: "Authorization", value: Redacted.make(`Token ${secret}`) }

type Route = (req: http.IncomingMessage, origin: string) => Server.Reply | Promise<Server.Reply>

/** Starts the hostile server for the scope: `routes` by path, anything else 404. */
const hostile = (routes: Record<string, Route>, faults?: FaultOptions) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      Server.serve({
        name: "hostile",
        ...(faults ? { faults } : {}),
        respond: (req, origin) => {
          const route = routes[(req.url ?? "/").split("?")[0]!]
          return route ? route(req, origin) : Server.json(404, { detail: "Not found." })
        },
        serverErrors: [Server.text(502, "text/html", Server.nginxPage("502 Bad Gateway"))],
        throttled: (fault) => Server.json(429, { detail: "Request was throttled." }, { "Retry-After": String(fault.retryAfterSeconds) })
      })
    ),
    (served) => Effect.promise(() => served.close())
  )

/** A client of the hostile server: quick retries (real time), the fake credential. */
const clientOf = (origin: string, options: Partial<ApiClient.Options> = {}) =>
  ApiClient.make({
    source: "hostile",
    baseUrl: origin,
    auth,
    retry: { maxRetries: 2, baseDelay: "1 millis", maxDelay: "5 millis", jitter: 0 },
    ...options
  })

/** Runs a case with a real HTTP client, run counters and captured logs. */
const live = (body: (logs: Array<Logged>) => Effect.Effect<void, unknown, HttpClient.HttpClient | RunStats.RunStats | Scope.Scope>) => {
  const logs: Array<Logged> = []
  return body(logs).pipe(
    Effect.scoped,
    Effect.provide(UndiciClient.layer),
    Effect.provide(RunStats.layer),
    Effect.provide(captureLogs(logs))
  )
}

/** The error checks every case shares; returns the error for the case's own checks. */
const refused = <E extends { readonly _tag: string; readonly message: string }>(
  error: E,
  tag: E["_tag"],
  logs: ReadonlyArray<Logged>,
  ...says: ReadonlyArray<string | RegExp>
): E => {
  expect(error._tag).toBe(tag)
  expect(error.message.startsWith("source 'hostile': ")).toBe(true)
  expect(error.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/)
  expect(error.message).not.toMatch(/\n|\s+at\s+\S+\s+\(/)
  for (const s of says) {
    if (typeof s === "string") expect(error.message).toContain(s)
    else expect(error.message).toMatch(s)
  }
  expect(JSON.stringify(error)).not.toContain(secret)
  expect(JSON.stringify(logs)).not.toContain(secret)
  for (const line of logs) expect(line.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
  return error
}

const Page = Schema.Struct({ count: Schema.Number, results: Schema.Array(Schema.Struct({ pk: Schema.Number })) })
const okPage = Server.json(200, { count: 1, results: [{ pk: 1 }] })
const retried = (logs: ReadonlyArray<Logged>) => logs.filter((l) => typeof l.annotations["delayMillis"] === "number")

describe("Hostile vendor: every error shape", () => {
  it.live("400 with DRF field errors: an ApiError with the vendor's words, not retried", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.json(400, { limit: ["Ensure this value is less than or equal to 100."] }) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "ApiError", logs, "HTTP 400: limit: Ensure this value is less than or equal to 100.")
        expect(server.requests().total).toBe(1)
      })))

  it.live("401 Invalid token: Unauthorized at once, never retried", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.json(401, { detail: "Invalid token." }) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "Unauthorized", logs, "the API refused the credentials (HTTP 401: Invalid token.). Check the token.")
        expect(server.requests().total).toBe(1)
      })))

  it.live("403 with an errors list: Unauthorized naming permissions", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.json(403, { errors: ["You do not have permission."] }) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "Unauthorized", logs, "HTTP 403: You do not have permission.", "permissions")
      })))

  it.live("404 Record not found, 410 plain text, 422 JSON:API errors: ApiErrors with the vendor's message", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/404": () => Server.json(404, { error: "Record not found" }),
          "/410": () => Server.text(410, "text/plain", "This resource is gone.\r\n"),
          "/422": () => Server.json(422, { errors: [{ title: "Invalid", detail: "id must be a UUID" }], code: "E_UUID" })
        })
        const client = yield* clientOf(server.origin)
        refused(yield* Effect.flip(client.getJson("/404", {}, Page)), "ApiError", logs, "HTTP 404: Record not found")
        refused(yield* Effect.flip(client.getJson("/410", {}, Page)), "ApiError", logs, "HTTP 410: This resource is gone.")
        const e422 = refused(yield* Effect.flip(client.getJson("/422", {}, Page)), "ApiError", logs, "HTTP 422: id must be a UUID")
        expect(e422._tag === "ApiError" && e422.code).toBe("E_UUID")
      })))

  it.live("a 502 HTML page from a proxy: retried and counted, then an ApiError without the HTML", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.text(502, "text/html", Server.nginxPage("502 Bad Gateway")) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "ApiError", logs, "(HTTP 502)", "(gave up after 2 retries)")
        expect(error.message).not.toContain("<")
        expect(retried(logs).map((l) => l.level)).toEqual(["WARN", "WARN"])
        const stats = yield* RunStats.RunStats
        expect((yield* stats.snapshot).get("hostile")?.retries).toBe(2)
      })))

  it.live("a vendor echoing the credential in its message and in its request id header: scrubbed to ***", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/x": (req) =>
            Server.json(400, { detail: `bad header: ${req.headers["authorization"]}` }, { "Request-Id": `rid-${req.headers["authorization"]}` })
        })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "ApiError", logs, "bad header: ***", "[request id rid-***]")
      })))

  it.live("a 1 MiB error body: the message is cut to a readable length", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.json(418, { detail: "tea ".repeat(256 * 1024) }) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "ApiError", logs, "HTTP 418: tea tea")
        expect(error.message.length).toBeLessThan(600)
      })))

  it.live("ANSI escapes and a forged log line in a 422 message are escaped: one line, nothing acts on the terminal", () =>
    live((logs) =>
      Effect.gen(function*() {
        const forged = "\u001b[2J\u001b[H\u001b[32mall 418 images synced\u001b[0m\r\n2026-01-01T00:00:00Z INFO run finished\u202e"
        const server = yield* hostile({ "/x": () => Server.json(422, { message: forged }) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "ApiError", logs, "\\x1b[2J\\x1b[H\\x1b[32mall 418 images synced\\x1b[0m 2026-01-01T00:00:00Z INFO run finished\\u202e")
      })))

  it.live("a redirect from the API (with a token in the Location) is not followed: an ApiError, the token masked", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/x": () => ({ status: 302, headers: { Location: `http://evil.example/steal?access_token=${secret}` }, body: new Uint8Array() })
        })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "ApiError", logs, "redirected GET", "http://evil.example/steal?access_token=***", "redirects are not followed")
      })))

  it.live("connection refused and connection reset: TransportErrors saying which, after the retries", () =>
    live((logs) =>
      Effect.gen(function*() {
        const port = yield* closedPort
        const refusedError = yield* Effect.flip((yield* clientOf(`http://127.0.0.1:${port}`)).getJson("/x", {}, Page))
        refused(refusedError, "TransportError", logs, "connection refused", "(gave up after 2 retries)")
        const server = yield* hostile({ "/x": () => okPage }, { kinds: ["reset"], rate: 1, maxConsecutive: 100 })
        const reset = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(reset, "TransportError", logs, /could not talk to 127\.0\.0\.1:\d+ \(.+\)/, "(gave up after 2 retries)")
        expect(server.requests().total).toBe(3)
      })))
})

describe("Hostile vendor: waits it asks for", () => {
  it.live("429 with Retry-After: 999999999 fails at once: the ask and the cap in the error and in a warning", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.json(429, { detail: "slow down" }, { "Retry-After": "999999999" }) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(
          error,
          "RateLimited",
          logs,
          "HTTP 429 Too Many Requests: slow down",
          "the server asked to wait 11574d 1h 46m 39s (Retry-After: 999999999), more than retry.maxWait (1m): failing rather than waiting"
        )
        expect(server.requests().total).toBe(1)
        const warning = logs.find((l) => l.message.includes("more than retry.maxWait"))!
        expect(warning.level).toBe("WARN")
        expect(warning.message).toContain("(Retry-After: 999999999), more than retry.maxWait (1m); not waiting: the source fails")
      })))

  it.live("429 with a negative Retry-After is no ask: the backoff retries, each a warning, then RateLimited", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.json(429, { detail: "slow down" }, { "Retry-After": "-3600" }) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "RateLimited", logs, "HTTP 429", "(gave up after 2 retries)")
        expect(server.requests().total).toBe(3)
        expect(retried(logs).every((l) => l.level === "WARN" && l.annotations["serverWaitMillis"] === undefined)).toBe(true)
      })))

  it.live("429 with an HTTP-date in 2100, and a 503 asking for 10^20 seconds: both refused at once", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/date": () => Server.json(429, {}, { "Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT" }),
          "/huge": () => Server.json(503, { detail: "maintenance" }, { "Retry-After": "100000000000000000000" })
        })
        const client = yield* clientOf(server.origin, { retry: { maxRetries: 2, baseDelay: "1 millis", maxWait: "5 minutes" } })
        refused(yield* Effect.flip(client.getJson("/date", {}, Page)), "RateLimited", logs, "(Retry-After: Fri, 01 Jan 2100 00:00:00 GMT)", "retry.maxWait (5m)")
        refused(yield* Effect.flip(client.getJson("/huge", {}, Page)), "ApiError", logs, "HTTP 503: maintenance", "(Retry-After: 100000000000000000000)")
        expect(server.requests().total).toBe(2)
      })))

  it.live("a vendor reset header of 11.6 days on a 429 is refused like a Retry-After", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.json(429, { title: "Too many requests" }, { "X-Rate-Limit-Time-Reset-Ms": "999999999" }) })
        const client = yield* clientOf(server.origin, {
          retry: { maxRetries: 2, baseDelay: "1 millis", resetHeaders: [{ name: "X-Rate-Limit-Time-Reset-Ms", unit: "milliseconds" }] }
        })
        refused(yield* Effect.flip(client.getJson("/x", {}, Page)), "RateLimited", logs, "(X-Rate-Limit-Time-Reset-Ms: 999999999), more than retry.maxWait")
        expect(server.requests().total).toBe(1)
      })))

  it.live("budget headers saying nothing is left until a reset 11.6 days away: the next request fails, never sleeps", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/x": () => Server.json(200, { count: 1, results: [{ pk: 1 }] }, { "X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "999999999" })
        })
        const client = yield* clientOf(server.origin, {
          rateLimit: RateLimit.fromHeaders({ left: "X-Rate-Limit-Requests-Left", reset: "X-Rate-Limit-Time-Reset-Ms", reserve: 0 }),
          rateLimitKey: "hostile-budget"
        })
        yield* client.getJson("/x", {}, Page)
        const error = yield* Effect.flip(client.getJson("/x", {}, Page))
        refused(error, "RateLimited", logs, "the API's rate-limit headers ask to wait 11d 13h 46m 39s", "more than retry.maxWait (1m)")
        expect(server.requests().total).toBe(1)
      })))

  it.live("a response that stalls before its headers: cut at the timeout, retried, then a TransportError saying so", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => okPage }, { kinds: ["latency"], rate: 1, latencyMs: 60_000, maxConsecutive: 100 })
        const client = yield* clientOf(server.origin, { timeout: "300 millis", retry: { maxRetries: 1, baseDelay: "1 millis" } })
        const error = yield* Effect.flip(client.getJson("/x", {}, Page))
        refused(error, "TransportError", logs, "GET", "timed out after 300ms", "(gave up after 1 retry)")
      })))

  it.live("a response that never resolves: the same timeout, never a hang", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => new Promise<Server.Reply>(() => {}) })
        const client = yield* clientOf(server.origin, { timeout: "300 millis", retry: { maxRetries: 0 } })
        refused(yield* Effect.flip(client.getJson("/x", {}, Page)), "TransportError", logs, "timed out after 300ms")
      })))
})

describe("Hostile vendor: bodies", () => {
  it.live("malformed JSON on a 200 (cut with a matching Content-Length): retried, counted, then a DecodeError with a snippet", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.text(200, "application/json", `{"count": 1, "results": [{"pk"`) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "DecodeError", logs, "the response to GET", "could not be read: the body is not valid JSON", "(gave up after 2 retries)")
        expect(error._tag === "DecodeError" && error.snippet).toBe(`{"count": 1, "results": [{"pk"`)
        expect((yield* (yield* RunStats.RunStats).snapshot).get("hostile")?.retries).toBe(2)
      })))

  it.live("malformed JSON once, then a good answer: the run goes on after one retry", () =>
    live(() =>
      Effect.gen(function*() {
        let n = 0
        const server = yield* hostile({ "/x": () => (n++ === 0 ? Server.text(200, "application/json", `{"count": 1, "res`) : okPage) })
        expect(yield* (yield* clientOf(server.origin)).getJson("/x", {}, Page)).toEqual({ count: 1, results: [{ pk: 1 }] })
        expect(server.requests().total).toBe(2)
      })))

  it.live("a body cut by the connection closing (Content-Length not reached): a TransportError after the retries", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => okPage }, { kinds: ["truncate"], rate: 1, maxConsecutive: 100 })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "TransportError", logs, "the connection closed before the whole response to GET", "(gave up after 2 retries)")
      })))

  it.live("an XML body a source's own parser refuses (cut short): retried like a reset, then a DecodeError", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/feed": () => Server.text(200, "application/xml", `<result returncode="0"><product product_id="1">`) })
        const parse = (text: string) => (text.trimEnd().endsWith("</result>") ? Either.right(text) : Either.left("the body is not well-formed XML"))
        const error = yield* Effect.flip((yield* clientOf(server.origin)).requestJson({ path: "/feed", parse }, Schema.String))
        refused(error, "DecodeError", logs, "could not be read: the body is not well-formed XML", "(gave up after 2 retries)")
        expect(server.requests().total).toBe(3)
      })))

  it.live("a well-formed body of the wrong shape: a DecodeError with the path at once, not retried", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({ "/x": () => Server.json(200, { count: "many", results: [] }) })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page))
        refused(error, "DecodeError", logs, "does not have the expected shape: at count")
        expect(server.requests().total).toBe(1)
      })))

  it.live("an empty 200 and an HTML page where JSON was expected: DecodeErrors", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/empty": () => Server.text(200, "application/json", ""),
          "/html": () => Server.text(200, "text/html", "<html><body>Welcome to nginx!</body></html>")
        })
        const client = yield* clientOf(server.origin)
        refused(yield* Effect.flip(client.getJson("/empty", {}, Page)), "DecodeError", logs, "has an empty body where JSON was expected")
        refused(yield* Effect.flip(client.getJson("/html", {}, Page)), "DecodeError", logs, "could not be read: the body is not valid JSON")
      })))

  it.live("an oversized page (8 MiB of base64 in one field) over a 1 MiB cap: an ApiError naming the cap, not retried", () =>
    live((logs) =>
      Effect.gen(function*() {
        const base64 = Buffer.alloc(6 * 1024 * 1024, 7).toString("base64")
        const server = yield* hostile({ "/x": () => Server.json(200, { count: 1, results: [{ pk: 1, binaryimage: base64 }] }) })
        const client = yield* clientOf(server.origin)
        const error = yield* Effect.flip(client.requestJson({ path: "/x", maxBytes: 1024 * 1024 }, Page))
        refused(error, "ApiError", logs, "is larger than the 1 MiB cap (Content-Length")
        expect(server.requests().total).toBe(1)
      })))

  it.live("an oversized page with no Content-Length (chunked): reading stops at the cap", () =>
    live((logs) =>
      Effect.gen(function*() {
        // A reply the simulator Server cannot express (no Content-Length, endless): a plain node server.
        const chunked = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const { createServer } = await import("node:http")
            const s = createServer((_req, res) => {
              res.writeHead(200, { "content-type": "application/json" })
              res.write(`{"count": 1, "results": [{"pk": 1, "x": "`)
              const tick = setInterval(() => {
                if (res.destroyed) return clearInterval(tick)
                res.write("A".repeat(64 * 1024))
              }, 1)
              res.on("close", () => clearInterval(tick))
            })
            await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))
            return s
          }),
          (s) => Effect.promise(() => new Promise<void>((resolve) => (s.closeAllConnections(), s.close(() => resolve()))))
        )
        const address = chunked.address() as { port: number }
        const client = yield* clientOf(`http://127.0.0.1:${address.port}`)
        const error = yield* Effect.flip(client.requestJson({ path: "/x", maxBytes: 256 * 1024 }, Page))
        refused(error, "ApiError", logs, "is larger than the 256 KiB cap (stopped reading after")
      })))

  it.live("a gzip bomb as a JSON page: refused once the decoded bytes pass the cap", () =>
    live((logs) =>
      Effect.gen(function*() {
        const bomb = zlib.gzipSync(Buffer.alloc(16 * 1024 * 1024, 32), { level: 9 })
        const server = yield* hostile({
          "/x": () => ({ status: 200, headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" }, body: bomb })
        })
        const error = yield* Effect.flip((yield* clientOf(server.origin)).requestJson({ path: "/x", maxBytes: 1024 * 1024 }, Page))
        refused(error, "ApiError", logs, "is larger than the 1 MiB cap once decoded (Content-Encoding: gzip")
        expect(server.requests().total).toBe(1)
      })))

  it.live("a body in a coding effetl does not read (zstd): refused, never passed on as content", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/x": () => ({ status: 200, headers: { "Content-Type": "application/json", "Content-Encoding": "zstd" }, body: Buffer.from("(\u00b5/\u00fd") })
        })
        refused(yield* Effect.flip((yield* clientOf(server.origin)).getJson("/x", {}, Page)), "ApiError", logs, "Content-Encoding: zstd, which effetl does not decode")
      })))
})

describe("Hostile vendor: downloads", () => {
  const downloader = (options: Partial<Download.Options> = {}) =>
    Download.make({ source: "hostile", retry: { maxRetries: 1, baseDelay: "1 millis" }, ...options })

  it.live("a gzip bomb as an image: refused once the decoded bytes pass the cap (a dead letter for the caller)", () =>
    live((logs) =>
      Effect.gen(function*() {
        const bomb = zlib.gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 })
        const server = yield* hostile({ "/img.png": () => ({ status: 200, headers: { "Content-Type": "image/png", "Content-Encoding": "gzip" }, body: bomb }) })
        const error = yield* Effect.flip((yield* downloader({ maxBytes: 2 * 1024 * 1024 })).fetch(`${server.origin}/img.png`))
        refused(error, "ApiError", logs, "is larger than the 2 MiB cap once decoded (Content-Encoding: gzip; decoding stopped at the cap)")
      })))

  it.live("a gzip-encoded image is stored as the image, not as its compressed bytes", () =>
    live(() =>
      Effect.gen(function*() {
        const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(2048, 3)])
        const server = yield* hostile({
          "/img.png": () => ({ status: 200, headers: { "Content-Type": "image/png", "Content-Encoding": "gzip" }, body: zlib.gzipSync(png) })
        })
        const bytes = yield* (yield* downloader()).fetch(`${server.origin}/img.png`)
        expect(Buffer.from(bytes).equals(png)).toBe(true)
      })))

  for (const [scheme, target] of [
    ["file:", "file:///etc/passwd"],
    ["data:", "data:image/png;base64,iVBORw0KGgo="],
    ["javascript:", "javascript:alert(document.domain)"],
    ["ftp:", "ftp://ftp.example.com/pub/img.png"]
  ] as const) {
    it.live(`a redirect to a ${scheme} URL is refused before anything is fetched there, and so is the URL itself`, () =>
      live((logs) =>
        Effect.gen(function*() {
          const server = yield* hostile({ "/img.png": () => ({ status: 302, headers: { Location: target }, body: new Uint8Array() }) })
          const d = yield* downloader()
          const viaRedirect = yield* Effect.flip(d.fetch(`${server.origin}/img.png`))
          refused(viaRedirect, "DecodeError", logs, `only http: and https: URLs are fetched, not ${scheme}`, `(redirected from ${server.origin}/img.png)`)
          const direct = yield* Effect.flip(d.fetch(target))
          refused(direct, "DecodeError", logs, `only http: and https: URLs are fetched, not ${scheme}`)
          expect(server.requests().total).toBe(1)
        })))
  }

  it.live("an image URL with credentials and one with control characters: refused, printed safely", () =>
    live((logs) =>
      Effect.gen(function*() {
        const d = yield* downloader()
        const creds = yield* Effect.flip(d.fetch(`https://user:${secret}@cdn.example.com/a.png`))
        refused(creds, "DecodeError", logs, "URLs with credentials in them are refused")
        const weird = yield* Effect.flip(d.fetch("\u001b[2J/\u202e/a.png"))
        refused(weird, "DecodeError", logs, "is not an absolute http(s) URL")
      })))
})

describe("Hostile vendor: pagination loops", () => {
  it.live("a DRF next link that points back to the same page: an ApiError after one request, not 7,892", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/images/": (_req, origin) => Server.json(200, { count: 999, next: `${origin}/images/?page=1&limit=10`, previous: null, results: [{ pk: 1 }] })
        })
        const client = yield* clientOf(server.origin)
        const error = yield* Effect.flip(Stream.runDrain(Paginate.drf(client, { path: "/images/", item: Schema.Unknown, limit: 10 })))
        refused(error, "ApiError", logs, "the API's next link on page 1 points back to page 1, already requested in this list")
        expect(server.requests().total).toBe(1)
      })))

  it.live("a DRF next cycle over three pages (1 -> 2 -> 3 -> 2): stops at the repeat", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/images/": (req, origin) => {
            const page = Number(new URL(req.url!, origin).searchParams.get("page"))
            return Server.json(200, { count: 99, next: `${origin}/images/?limit=10&page=${page === 3 ? 2 : page + 1}`, results: [{ pk: page }] })
          }
        })
        const pages = yield* Effect.either(
          Stream.runCollect(Paginate.drf(yield* clientOf(server.origin), { path: "/images/", item: Schema.Unknown, limit: 10 }))
        )
        expect(Either.isLeft(pages)).toBe(true)
        if (Either.isLeft(pages)) refused(pages.left, "ApiError", logs, "next link on page 3 points back to page 2")
        expect(server.requests().total).toBe(3)
      })))

  it.live("a DRF next link to another origin: a DecodeError, nothing sent there", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/images/": () => Server.json(200, { count: 99, next: `https://evil.example/images/?page=2&api_key=${secret}`, results: [{ pk: 1 }] })
        })
        const error = yield* Effect.flip(
          Stream.runDrain(Paginate.drf(yield* clientOf(server.origin), { path: "/images/", item: Schema.Unknown, limit: 10 }))
        )
        refused(error, "DecodeError", logs, "https://evil.example/images/?page=2&api_key=*** is not on")
      })))

  it.live("a cursor feed that cycles (A -> B -> A) and a token feed that goes back: ApiErrors naming the repeat", () =>
    live((logs) =>
      Effect.gen(function*() {
        const server = yield* hostile({
          "/products": (req, origin) => {
            const cursor = new URL(req.url!, origin).searchParams.get("cursor")
            return Server.json(200, { products: [1], cursor: cursor === "B" ? "A" : "B", has_more: true })
          },
          "/feed": (req, origin) => {
            const token = Number(new URL(req.url!, origin).searchParams.get("token") ?? "0")
            return Server.json(200, { token: String(token === 20 ? 10 : token + 10), queuecount: 5 })
          }
        })
        const client = yield* clientOf(server.origin)
        const Cursor = Schema.Struct({ products: Schema.Array(Schema.Number), cursor: Schema.String, has_more: Schema.Boolean })
        const cursorError = yield* Effect.flip(Stream.runDrain(Paginate.cursor({
          source: "hostile",
          start: Option.some("A"),
          fetch: (c) => client.getJson("/products", { params: { cursor: Option.getOrUndefined(c) } }, Cursor),
          nextCursor: (p) => p.cursor,
          hasMore: (p) => p.has_more
        })))
        refused(cursorError, "ApiError", logs, `gave cursor "A", which it already gave in this run`)
        const Lot = Schema.Struct({ token: Schema.String, queuecount: Schema.Number })
        const lots: Array<string> = []
        const feedError = yield* Effect.flip(Stream.runForEach(
          Paginate.tokenFeed({
            source: "hostile",
            start: "0",
            fetch: (token) => client.getJson("/feed", { params: { token } }, Lot),
            nextToken: (lot) => lot.token,
            isDone: (lot) => lot.queuecount === 0
          }),
          (page) => Effect.sync(() => void lots.push(page.next))
        ))
        refused(feedError, "ApiError", logs, `the feed answered token "20" with token "10", which it already gave in this run`)
        expect(lots).toEqual(["10", "20"])
      })))
})
