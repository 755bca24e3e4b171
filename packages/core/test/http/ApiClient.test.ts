import * as HttpClient from "@effect/platform/HttpClient"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import * as zlib from "node:zlib"
import * as ApiClient from "../../src/http/ApiClient.js"
import * as LosslessJson from "../../src/http/LosslessJson.js"
import * as UndiciClient from "../../src/http/UndiciClient.js"
import * as RunStats from "../../src/RunStats.js"
import { captureLogs, closedPort, drive, json, type Logged, retries, settle, start, waitFor } from "./TestServer.js"

/** The runner's client, and the platform's own undici layer: the API client behaves the same over both. */
const clients = [
  ["UndiciClient", UndiciClient.layer],
  ["NodeHttpClient.layerUndici", NodeHttpClient.layerUndici]
] as const

const envWith = (layer: Layer.Layer<HttpClient.HttpClient>) =>
<A, E>(
  body: (logs: Array<Logged>) => Effect.Effect<A, E, HttpClient.HttpClient | RunStats.RunStats | Scope.Scope>
) => {
  const logs: Array<Logged> = []
  return body(logs).pipe(
    Effect.scoped,
    Effect.provide(layer),
    Effect.provide(RunStats.layer),
    Effect.provide(captureLogs(logs))
  )
}

/** Effect's own tracer, recording the names of the spans it starts. */
const recordingTracer = Effect.map(Effect.tracer, (native) => {
  const spans: Array<string> = []
  const tracer = Tracer.make({
    span: (name, ...rest) => {
      spans.push(name)
      return native.span(name, ...rest)
    },
    context: (f, fiber) => native.context(f, fiber)
  })
  return { spans, tracer }
})

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const Item = Schema.Struct({ pk: Schema.Number, name: Schema.String })
const Page = Schema.Struct({ count: Schema.Number, results: Schema.Array(Item) })

const secret = "Token s3cr3t-0123456789abcdef"
const auth = { header: "Authorization", value: Redacted.make(secret) }

describe.each(clients)("ApiClient over %s", (_name, layer) => {
  const withEnv = envWith(layer)

  it.effect("GETs JSON under the base path with params, default headers and the auth header", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 200, { count: 1, results: [{ pk: 1, name: "a" }] }))
        const client = yield* ApiClient.make({ source: "channel", baseUrl: `${server.url}/api/v1/channel/5`, auth })
        const page = yield* client.getJson("/product_images/", { params: { page: 2, limit: 50, skip: undefined } }, Page)
        expect(page).toEqual({ count: 1, results: [{ pk: 1, name: "a" }] })
        const got = server.requests[0]!
        expect(got.url).toBe("/api/v1/channel/5/product_images/?page=2&limit=50")
        expect(got.headers["authorization"]).toBe(secret)
        expect(got.headers["accept"]).toBe("application/json")
      })
    ))

  it.effect("never lets the credential reach errors or logs, even when the vendor echoes it", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((req, res, n) =>
          n === 0
            ? json(res, 500, { detail: `bad header ${req.headers["authorization"]}` })
            : json(res, 400, { detail: `token s3cr3t-0123456789abcdef is not allowed here` })
        )
        const client = yield* ApiClient.make({ source: "channel", baseUrl: server.url, auth })
        const { exit } = yield* drive(client.getJson("/x", {}, Page), logs)
        const error = failureOf(exit)!
        expect(error._tag).toBe("ApiError")
        const everything = JSON.stringify({ error, message: error.message, logs })
        expect(everything).not.toContain("s3cr3t")
        expect(error.message).toContain("token *** is not allowed here")
        expect(logs.some((l) => l.message.includes("retry 1 of 5"))).toBe(true)
      })
    ))

  it.effect("reads the vendor's message from common error shapes and the request id header", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const bodies: Array<unknown> = [
          { error: "Record not found" },
          { errors: ["invalid UUID", "another"] },
          { message: "nope", code: "E42" },
          { returncode: 7, returnmsg: "Session invalide" },
          { error: { message: "nested", code: 3 } }
        ]
        const server = yield* start((_req, res, n) => json(res, 422, bodies[n], { "request-id": `r-${n}` }))
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        const errors = []
        for (let i = 0; i < bodies.length; i++) errors.push(yield* Effect.flip(client.getJson("/x", {}, Page)))
        expect(errors.map((e) => (e._tag === "ApiError" ? [e.vendorMessage, e.code, e.requestId] : e._tag))).toEqual([
          ["Record not found", undefined, "r-0"],
          ["invalid UUID; another", undefined, "r-1"],
          ["nope", "E42", "r-2"],
          ["Session invalide", "7", "r-3"],
          ["nested", undefined, "r-4"]
        ])
        expect(errors[0]!.message).toBe(
          `source 's': the API answered HTTP 422: Record not found to GET ${server.url}/x [request id r-0]`
        )
      })
    ))

  it.effect("escapes control characters (ANSI escapes, forged log lines) of a vendor's message and request id", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) =>
          json(res, 422, { message: "\u001b[2J\u001b[Hall 418 images synced\nINFO run finished" }, { "request-id": "r\u009b31m1" })
        )
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        const error = yield* Effect.flip(client.getJson("/x", {}, Page))
        expect(error._tag).toBe("ApiError")
        expect(error.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
        expect(error.message).toContain("\\x1b[2J\\x1b[Hall 418 images synced INFO run finished")
        expect(error.message).toMatch(/\[request id r.*\\x9b31m1\]/)
      })
    ))

  it.effect("returns declared answers (204, 404 Invalid page.) and keeps other 404s errors", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((req, res) => {
          if (req.url === "/end") {
            res.writeHead(204)
            res.end()
          } else if (req.url === "/drf?page=9") json(res, 404, { detail: "Invalid page." })
          else json(res, 404, { detail: "Not found." })
        })
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        const end = yield* client.requestJson({ path: "/end", answers: [204] }, Page)
        expect(end).toMatchObject({ _tag: "Answer", status: 204 })
        const drf = yield* client.requestJson(
          { path: "/drf", params: { page: 9 }, answers: [{ status: 404, vendorMessage: "Invalid page." }] },
          Page
        )
        expect(drf).toMatchObject({ _tag: "Answer", status: 404, vendorMessage: Option.some("Invalid page.") })
        const other = yield* Effect.flip(
          client.requestJson({ path: "/other", answers: [{ status: 404, vendorMessage: "Invalid page." }] }, Page)
        )
        expect(other).toMatchObject({ _tag: "ApiError", status: 404, vendorMessage: "Not found." })
        // An undeclared 204 where JSON was expected is a decode error, not retried.
        const undeclared = yield* Effect.flip(client.getJson("/end", {}, Page))
        expect(undeclared._tag).toBe("DecodeError")
        expect(server.requests.filter((r) => r.url === "/end").length).toBe(2)
      })
    ))

  it.effect("a body that does not match the schema is a DecodeError with the path and a snippet, not retried", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) =>
          json(res, 200, { count: 2, results: [{ pk: 1, name: "a" }, { pk: "two", name: "b" }] })
        )
        const client = yield* ApiClient.make({ source: "channel", baseUrl: server.url })
        const error = yield* Effect.flip(client.getJson("/p", {}, Page))
        expect(server.requests.length).toBe(1)
        expect(error).toMatchObject({ _tag: "DecodeError", path: "results[1].pk", url: `${server.url}/p` })
        expect(error.message).toBe(
          `source 'channel': the response to GET ${server.url}/p does not have the expected shape: at results[1].pk: Expected number, actual "two"`
        )
        expect(error._tag === "DecodeError" && error.snippet).toBe(
          `{"count":2,"results":[{"pk":1,"name":"a"},{"pk":"two","name":"b"}]}`
        )
      })
    ))

  it.effect("a truncated (invalid) JSON body is retried, then a DecodeError", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => {
          const text = `{"count": 1, "resu`
          res.writeHead(200, { "content-type": "application/json", "content-length": text.length })
          res.end(text)
        })
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url, retry: { maxRetries: 2 } })
        const { exit } = yield* drive(client.getJson("/p", {}, Page), logs)
        expect(server.requests.length).toBe(3)
        const error = failureOf(exit)!
        expect(error._tag).toBe("DecodeError")
        expect(error.message).toContain("is not valid JSON")
        expect(error.message).toContain("(gave up after 2 retries)")
        expect(error._tag === "DecodeError" && error.snippet).toBe(`{"count": 1, "resu`)
      })
    ))

  it.effect("a body the request's own parse refuses (XML cut short) is retried and counted, then a DecodeError naming the request", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        // A proxy that lost the end of the body but sent a matching Content-Length: the transport
        // looks complete, only the parser can tell.
        const server = yield* start((_req, res) => {
          const text = `<result returncode="0" token="12"><product product_id="7"><imagesURL`
          res.writeHead(200, { "content-type": "application/xml", "content-length": text.length })
          res.end(text)
        })
        const parseXml = (text: string) =>
          text.trim().endsWith("</result>") ? Either.right(text) : Either.left("the body is not well-formed XML (unclosed <result>)")
        const client = yield* ApiClient.make({ source: "acceo", baseUrl: server.url, auth, retry: { maxRetries: 2 } })
        const { exit } = yield* drive(
          client.requestJson({ path: "/products/images", params: { token: "11", api_key: "k-123456" }, parse: parseXml }, Schema.String),
          logs
        )
        expect(server.requests.length).toBe(3)
        const error = failureOf(exit)!
        expect(error._tag).toBe("DecodeError")
        expect(error.message).toBe(
          `source 'acceo': the response to GET ${server.url}/products/images?token=11&api_key=*** could not be read: the body is not well-formed XML (unclosed <result>) (HTTP 200, 68 bytes) (gave up after 2 retries)`
        )
        expect(error._tag === "DecodeError" && error.snippet).toContain(`<result returncode="0" token="12">`)
        expect(retries(logs).map((l) => l.annotations["reason"])).toEqual(["unreadable body", "unreadable body"])
        const stats = yield* RunStats.RunStats
        expect((yield* stats.snapshot).get("acceo")?.retries).toBe(2)
        expect(JSON.stringify({ error, logs })).not.toContain("s3cr3t")
      })
    ))

  it.effect("with a parse option, a body cut once is read on the retry; a well-formed body of the wrong shape is not retried", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((req, res, n) => {
          const whole = `{"token": 9007199254740993123, "count": 1}`
          const text = req.url === "/shape" ? `{"token": "x"}` : n === 0 ? whole.slice(0, 20) : whole
          res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
          res.end(text)
        })
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        const Lot = Schema.Struct({ token: Schema.String, count: Schema.Number })
        const { exit } = yield* drive(client.getJson("/feed", { parse: LosslessJson.parseEither }, Lot), logs)
        expect(exit).toEqual(Exit.succeed({ token: "9007199254740993123", count: 1 }))
        expect(server.requests.length).toBe(2)
        const error = yield* Effect.flip(client.getJson("/shape", { parse: LosslessJson.parseEither }, Lot))
        expect(server.requests.length).toBe(3)
        expect(error._tag).toBe("DecodeError")
        expect(error.message).toContain("does not have the expected shape: at count")
      })
    ))

  it.effect("a gzip-encoded JSON body is decoded before it is parsed", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => {
          const body = zlib.gzipSync(JSON.stringify({ count: 1, results: [{ pk: 1, name: "a" }] }))
          res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": body.length })
          res.end(body)
        })
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        expect(yield* client.getJson("/p", {}, Page)).toEqual({ count: 1, results: [{ pk: 1, name: "a" }] })
      })
    ))

  it.effect("a body cut by the server is a retryable transport error", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start((_req, res, n) => {
          if (n === 0) {
            res.writeHead(200, { "content-type": "application/json", "content-length": 1000 })
            res.write(`{"count": 1,`)
            setTimeout(() => res.socket?.destroy(), 10)
          } else json(res, 200, { count: 0, results: [] })
        })
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        const { exit, delays } = yield* drive(client.getJson("/p", {}, Page), logs)
        expect(exit).toEqual(Exit.succeed({ count: 0, results: [] }))
        expect(delays.length).toBe(1)
        expect(retries(logs)[0]!.annotations["reason"]).toBe("truncated body")
      })
    ))

  it.effect("an attempt that takes too long is cut with 'timed out after 30s' and retried", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const server = yield* start(() => {
          // never answers
        })
        const client = yield* ApiClient.make({ source: "channel", baseUrl: server.url, retry: { maxRetries: 1 } })
        let fired = 0
        const { exit } = yield* drive(client.getJson("/slow", {}, Page), logs, {
          whileWaiting: Effect.suspend(() => {
            // Once the server holds the next attempt, move the clock by the attempt timeout.
            if (server.requests.length > fired) {
              fired += 1
              return TestClock.adjust("30 seconds")
            }
            return Effect.void
          })
        })
        expect(server.requests.length).toBe(2)
        const error = failureOf(exit)!
        expect(error._tag).toBe("TransportError")
        expect(error.message).toBe(
          `source 'channel': GET ${server.url}/slow timed out after 30s (gave up after 1 retry)`
        )
      })
    ))

  it.live("on the live clock, an attempt is cut at its timeout while it waits for the headers or for the rest of the body", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((req, res) => {
          if (req.url === "/body") {
            // The headers and a tenth of the declared body, then nothing more.
            res.writeHead(200, { "content-type": "application/json", "content-length": 100 })
            res.write(`{"count": 1,`)
          }
          // "/headers": never answers
        })
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url, timeout: "200 millis", retry: { maxRetries: 0 } })
        for (const path of ["/headers", "/body"]) {
          const error = yield* Effect.flip(client.getJson(path, {}, Page))
          expect(error._tag).toBe("TransportError")
          expect(error.message).toBe(`source 's': GET ${server.url}${path} timed out after 200ms`)
        }
        // Cut means cut: the server sees both requests end.
        yield* waitFor(() => server.requests.length === 2 && server.load.inFlight === 0, "both cut requests closed")
      })
    ))

  it.live("with a tracer installed (the platform sends a copy of the request, with trace headers), an attempt is still cut at its timeout", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((req, res) => {
          if (req.url === "/ok") json(res, 200, { count: 0, results: [] })
          // "/traced": never answers
        })
        const { spans, tracer } = yield* recordingTracer
        const error = yield* Effect.gen(function*() {
          const client = yield* ApiClient.make({ source: "s", baseUrl: server.url, timeout: "200 millis", retry: { maxRetries: 0 } })
          return yield* Effect.flip(client.getJson("/traced", {}, Page))
        }).pipe(Effect.withTracer(tracer))
        expect(error.message).toBe(`source 's': GET ${server.url}/traced timed out after 200ms`)
        expect(spans).toContain("http.client GET")
        expect(server.requests[0]!.headers["traceparent"]).toBeDefined()
        yield* waitFor(() => server.load.inFlight === 0, "the cut request closed")
        // The cut attempt leaves nothing behind on this fiber: a request of its own goes through.
        const after = yield* HttpClient.get(`${server.url}/ok`)
        expect(after.status).toBe(200)
      })
    ))

  it.live("an interrupted request is aborted, waiting for its headers or for the rest of its body: the server sees it end", () =>
    withEnv(() =>
      Effect.gen(function*() {
        let bodyStarted = false
        const server = yield* start((req, res) => {
          if (req.url === "/body") {
            // The headers and part of the declared body, then nothing more.
            res.writeHead(200, { "content-type": "application/json", "content-length": 100 })
            res.write(`{"count": 1,`, () => (bodyStarted = true))
          }
          // "/hang": never answers
        })
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        for (const path of ["/hang", "/body"]) {
          const fiber = yield* Effect.fork(client.getJson(path, {}, Page))
          yield* waitFor(() => server.load.inFlight === 1 && (path === "/hang" || bodyStarted), `${path}: the request reached the server`)
          yield* Fiber.interrupt(fiber)
          yield* waitFor(() => server.load.inFlight === 0, `${path}: the interrupted request closed`)
        }
      })
    ))

  it.effect("a response read in full leaves its connection open for the next request", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const sockets = new Set<unknown>()
        const server = yield* start((req, res) => {
          sockets.add(req.socket)
          json(res, 200, { count: 0, results: [] })
        })
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        for (let i = 0; i < 3; i++) {
          yield* client.getJson("/p", {}, Page)
          yield* settle() // the pool takes the socket back once undici has seen the response end
        }
        expect(server.requests.length).toBe(3)
        expect(sockets.size).toBe(1)
      })
    ))

  it.effect("sends no trace headers without a tracer; with one installed, each request is a client span", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 200, { count: 0, results: [] }))
        const plain = yield* ApiClient.make({ source: "s", baseUrl: server.url })
        yield* plain.getJson("/p", {}, Page)
        expect(server.requests[0]!.headers["traceparent"]).toBeUndefined()

        const { spans, tracer } = yield* recordingTracer
        yield* Effect.gen(function*() {
          const traced = yield* ApiClient.make({ source: "s", baseUrl: server.url })
          yield* traced.getJson("/p", {}, Page)
        }).pipe(Effect.withTracer(tracer))
        expect(spans).toContain("http.client GET")
        expect(server.requests[1]!.headers["traceparent"]).toBeDefined()
      })
    ))

  it.effect("withoutHttpSpans (a run) turns the spans off once: no trace headers; a tracer installed inside still gets its spans", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 200, { count: 0, results: [] }))
        const { spans, tracer } = yield* recordingTracer
        yield* ApiClient.withoutHttpSpans(Effect.gen(function*() {
          const plain = yield* ApiClient.make({ source: "s", baseUrl: server.url })
          yield* plain.getJson("/p", {}, Page)
          yield* Effect.gen(function*() {
            const traced = yield* ApiClient.make({ source: "s", baseUrl: server.url })
            yield* traced.getJson("/p", {}, Page)
          }).pipe(Effect.withTracer(tracer))
        }))
        expect(server.requests[0]!.headers["traceparent"]).toBeUndefined()
        expect(spans).toEqual(["http.client GET"])
        expect(server.requests[1]!.headers["traceparent"]).toBeDefined()
        // With a tracer installed around it, it changes nothing: every request is a span.
        yield* ApiClient.withoutHttpSpans(Effect.gen(function*() {
          const traced = yield* ApiClient.make({ source: "s", baseUrl: server.url })
          yield* traced.getJson("/p", {}, Page)
        })).pipe(Effect.withTracer(tracer))
        expect(spans).toEqual(["http.client GET", "http.client GET"])
        expect(server.requests[2]!.headers["traceparent"]).toBeDefined()
      })
    ))

  it.effect("connection refused is retried, then a TransportError that says so", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const port = yield* closedPort
        const client = yield* ApiClient.make({ source: "s", baseUrl: `http://127.0.0.1:${port}`, retry: { maxRetries: 2 } })
        const { exit, delays } = yield* drive(client.getJson("/x", {}, Page), logs)
        expect(delays.length).toBe(2)
        const error = failureOf(exit)!
        expect(error._tag).toBe("TransportError")
        expect(error.message).toContain(`could not talk to 127.0.0.1:${port} (connection refused)`)
      })
    ))

  it.effect("requestBytes returns status, headers and bytes, and stops reading over maxBytes", () =>
    withEnv(() =>
      Effect.gen(function*() {
        let finished = false
        const server = yield* start((req, res) => {
          if (req.url === "/small") {
            res.writeHead(200, { "content-type": "image/png", "x-extra": "1" })
            res.end(Buffer.from([1, 2, 3]))
            return
          }
          // A large body sent slowly, without Content-Length: the client must stop early.
          res.writeHead(200, { "content-type": "application/octet-stream" })
          let sent = 0
          const tick = setInterval(() => {
            if (res.destroyed) return clearInterval(tick)
            res.write(Buffer.alloc(1024, 7))
            sent += 1
            if (sent === 200) {
              clearInterval(tick)
              finished = true
              res.end()
            }
          }, 5)
        })
        const client = yield* ApiClient.make({ source: "img", baseUrl: server.url })
        const small = yield* client.requestBytes({ path: "/small" })
        expect(small).toMatchObject({ _tag: "Ok", status: 200 })
        expect([...small.bytes]).toEqual([1, 2, 3])
        expect(small.headers["x-extra"]).toBe("1")
        const error = yield* Effect.flip(client.requestBytes({ path: "/big", maxBytes: 3000 }))
        expect(error._tag).toBe("ApiError")
        expect(error.message).toContain("is larger than the 3000 bytes cap")
        yield* waitFor(() => server.load.inFlight === 0, "the server to see the abort")
        expect(finished).toBe(false)
        expect(server.requests.length).toBe(2)
      })
    ))

  it.effect("refuses absolute URLs on another origin without sending anything", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 200, {}))
        const client = yield* ApiClient.make({ source: "channel", baseUrl: `${server.url}/api` })
        const error = yield* Effect.flip(client.getJson("https://evil.example/api/x?page=2", {}, Page))
        expect(error._tag).toBe("DecodeError")
        expect(error.message).toBe(
          `source 'channel': https://evil.example/api/x?page=2 is not on ${server.url}; links from the API are only followed on the configured origin`
        )
        expect(server.requests.length).toBe(0)
        // The same origin is fine, and keeps the link's own path and query.
        const url = client.resolve(`${server.url}/api/x?page=2`)
        expect(Either.map(url, (u) => u.href)).toEqual(Either.right(`${server.url}/api/x?page=2`))
      })
    ))

  it.effect("does not follow redirects of an API, and does not retry a failed POST", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((req, res) => {
          if (req.url === "/moved") {
            res.writeHead(302, { location: "https://elsewhere.example/x?api_key=abc" })
            res.end()
          } else json(res, 500, { detail: "oops" })
        })
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url, auth })
        const redirect = yield* Effect.flip(client.getJson("/moved", {}, Page))
        expect(redirect.message).toContain("redirected GET")
        expect(redirect.message).toContain("https://elsewhere.example/x?api_key=***")
        const post = yield* Effect.flip(client.requestJson({ method: "POST", path: "/commit", body: { a: 1 } }, Page))
        expect(post).toMatchObject({ _tag: "ApiError", status: 500 })
        expect(server.requests.map((r) => r.url)).toEqual(["/moved", "/commit"])
      })
    ))

  it.effect("prints secret query parameters as ***", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => json(res, 418, { detail: "teapot" }))
        const client = yield* ApiClient.make({ source: "s", baseUrl: server.url, secretParams: ["session"] })
        const error = yield* Effect.flip(
          client.getJson("/x", { params: { api_key: "k-123", session: "abc", page: 1 } }, Page)
        )
        expect(server.requests[0]!.url).toBe("/x?api_key=k-123&session=abc&page=1")
        expect(error).toMatchObject({ url: `${server.url}/x?api_key=***&session=***&page=1` })
        expect(error.message).not.toContain("k-123")
      })
    ))

  it("formats schema paths", () => {
    expect(ApiClient.formatPath(["results", 0, "pk"])).toBe("results[0].pk")
    expect(ApiClient.formatPath(["a-b", "c"])).toBe(`["a-b"].c`)
    expect(ApiClient.formatBytes(25 * 1024 * 1024)).toBe("25 MiB")
  })
})
