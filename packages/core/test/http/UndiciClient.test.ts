import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as UrlParams from "@effect/platform/UrlParams"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as AttemptSignal from "../../src/http/AttemptSignal.js"
import * as UndiciClient from "../../src/http/UndiciClient.js"
import { closedPort, start, waitFor } from "./TestServer.js"

const live = <A, E>(body: Effect.Effect<A, E, HttpClient.HttpClient | Scope.Scope>) =>
  body.pipe(Effect.scoped, Effect.provide(UndiciClient.layer))

/** Reads a request's body on the test server. */
const bodyOf = (req: import("node:http").IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
  })

/**
 * Sends `request` by the client's direct send (AttemptSignal.Direct) on the current fiber, runs
 * `during` with its abort function at once (before the request can have been written), then gives
 * the outcome and how many times `done` was called.
 */
const direct = (
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  limit: AttemptSignal.DirectHandler["limit"],
  during: (abort: () => void) => Effect.Effect<void> = () => Effect.void
) =>
  Effect.withFiberRuntime<{
    calls: number
    failure: HttpClientError.RequestError | undefined
    reply: AttemptSignal.DirectReply | undefined
    abort: () => void
  }>((fiber) => {
    const send = AttemptSignal.directOf(client)!
    expect(send.accepts(request)).toBe(true)
    let calls = 0
    let settle: (outcome: [HttpClientError.RequestError | undefined, AttemptSignal.DirectReply | undefined]) => void = () => {}
    const ended = new Promise<[HttpClientError.RequestError | undefined, AttemptSignal.DirectReply | undefined]>((resolve) => (settle = resolve))
    const abort = send.send(request, new URL(request.url), fiber, {
      limit,
      done: (failure, reply) => {
        calls++
        settle([failure, reply])
      }
    })
    return Effect.gen(function*() {
      yield* during(abort)
      const [failure, reply] = yield* Effect.promise(() => ended)
      // A second call, if there were one, would come with the abort's own error: give it a moment.
      yield* Effect.sleep("20 millis")
      return { calls, failure, reply, abort }
    })
  })

describe("UndiciClient: the platform HttpClient over undici", () => {
  it.live("sends the method, headers and query, and gives the status, headers and cookies", () =>
    live(Effect.gen(function*() {
      const server = yield* start((_req, res) => {
        res.writeHead(201, { "content-type": "application/json", "x-request-id": "r-1", "set-cookie": ["a=1; Path=/", "b=2"] })
        res.end(JSON.stringify({ ok: true }))
      })
      const client = yield* HttpClient.HttpClient
      const response = yield* client.execute(
        HttpClientRequest.get(`${server.url}/items`, { urlParams: { page: 2, q: "a b" }, headers: { "x-test": "yes" } })
      )
      expect(response.status).toBe(201)
      expect(response.headers["x-request-id"]).toBe("r-1")
      expect(response.cookies.cookies["a"]?.value).toBe("1")
      expect(response.cookies.cookies["b"]?.value).toBe("2")
      expect(yield* response.json).toEqual({ ok: true })
      expect(server.requests[0]!.method).toBe("GET")
      expect(server.requests[0]!.url).toBe("/items?page=2&q=a+b")
      expect(server.requests[0]!.headers["x-test"]).toBe("yes")
    })))

  it.live("the platform's combinators apply: a request mapped, mapped by an effect, or given a base URL", () =>
    live(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        res.end(`${req.url} ${req.headers["x-mapped"] ?? "-"} ${req.headers["x-effect"] ?? "-"}`)
      })
      const base = yield* HttpClient.HttpClient
      const client = base.pipe(
        HttpClient.mapRequest(HttpClientRequest.prependUrl(server.url)),
        HttpClient.mapRequest(HttpClientRequest.setHeader("x-mapped", "yes")),
        HttpClient.mapRequestEffect((request) => Effect.succeed(HttpClientRequest.setHeader(request, "x-effect", "yes")))
      )
      const text = yield* Effect.flatMap(client.get("/a", { urlParams: { q: "1" } }), (r) => r.text)
      expect(text).toBe("/a?q=1 yes yes")
      // The client as it is still sends a request with its own URL.
      expect(yield* Effect.flatMap(base.get(`${server.url}/b`), (r) => r.text)).toBe("/b - -")
    })))

  it.live("sends JSON, bytes, URL-encoded and streamed bodies", () =>
    live(Effect.gen(function*() {
      const got: Array<{ type: string | undefined; body: string }> = []
      const server = yield* start(async (req, res) => {
        got.push({ type: req.headers["content-type"], body: await bodyOf(req) })
        res.end("ok")
      })
      const client = yield* HttpClient.HttpClient
      const send = (request: HttpClientRequest.HttpClientRequest) => Effect.flatMap(client.execute(request), (r) => r.text)
      yield* send(HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(`${server.url}/json`), { a: 1 }))
      yield* send(HttpClientRequest.bodyUint8Array(HttpClientRequest.post(`${server.url}/bytes`), new TextEncoder().encode("raw")))
      yield* send(HttpClientRequest.bodyUrlParams(HttpClientRequest.post(`${server.url}/form`), UrlParams.fromInput({ x: "1", y: "z" })))
      yield* send(HttpClientRequest.bodyStream(
        HttpClientRequest.post(`${server.url}/stream`),
        Stream.make("he", "llo").pipe(Stream.encodeText)
      ))
      expect(got).toEqual([
        { type: "application/json", body: `{"a":1}` },
        { type: "application/octet-stream", body: "raw" },
        { type: "application/x-www-form-urlencoded", body: "x=1&y=z" },
        { type: "application/octet-stream", body: "hello" }
      ])
    })))

  it.live("reads a body as bytes, text, URL params or a stream; a body read twice gives the same result", () =>
    live(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        res.writeHead(200, { "content-type": "text/plain" })
        res.end(req.url === "/params" ? "a=1&b=two" : "hello, world")
      })
      const client = yield* HttpClient.HttpClient
      const bytes = yield* Effect.flatMap(client.get(`${server.url}/b`), (r) => r.arrayBuffer)
      expect(Buffer.from(bytes).toString("utf8")).toBe("hello, world")
      const twice = yield* Effect.flatMap(client.get(`${server.url}/t`), (r) => Effect.zip(r.text, r.text))
      expect(twice).toEqual(["hello, world", "hello, world"])
      const params = yield* Effect.flatMap(client.get(`${server.url}/params`), (r) => r.urlParamsBody)
      expect(params).toEqual([["a", "1"], ["b", "two"]])
      const streamed = yield* Effect.flatMap(client.get(`${server.url}/s`), (r) => Stream.runCollect(Stream.decodeText(r.stream)))
      expect(Chunk.join(streamed, "")).toBe("hello, world")
    })))

  it.live("a body that is not JSON is a Decode error, and a refused connection a Transport error", () =>
    live(Effect.gen(function*() {
      const server = yield* start((_req, res) => res.end("not json"))
      const client = yield* HttpClient.HttpClient
      const bad = yield* Effect.exit(Effect.flatMap(client.get(server.url), (r) => r.json))
      expect(Exit.isFailure(bad) && JSON.stringify(bad.cause)).toContain('"reason":"Decode"')
      const port = yield* closedPort
      const refused = yield* Effect.exit(client.get(`http://127.0.0.1:${port}/`))
      expect(Exit.isFailure(refused) && JSON.stringify(refused.cause)).toContain('"reason":"Transport"')
    })))

  it.live("an interrupted request is aborted: the server sees the connection end", () =>
    live(Effect.gen(function*() {
      let seen = false
      const server = yield* start((_req, res) => {
        seen = true
        res.writeHead(200)
        res.write("part") // and never ends
      })
      const client = yield* HttpClient.HttpClient
      const fiber = yield* Effect.fork(Effect.flatMap(client.get(server.url), (r) => r.text))
      yield* waitFor(() => seen && server.load.inFlight === 1, "the request to reach the server")
      yield* Fiber.interrupt(fiber)
      yield* waitFor(() => server.load.inFlight === 0, "the server to see the abort")
    })))

  it.live("an attempt's Abort signal (an EventEmitter, not an AbortController) cuts the request sent under it", () =>
    live(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        if (req.url === "/part") {
          res.writeHead(200)
          res.write("part") // and never ends
        } // "/never": no headers
      })
      const client = yield* HttpClient.HttpClient
      for (const path of ["/never", "/part"]) {
        const abort = new AttemptSignal.Abort()
        const exit = yield* Effect.fork(
          Effect.withFiberRuntime<string, unknown>((fiber) => {
            AttemptSignal.signals.set(fiber, { signal: abort })
            return Effect.flatMap(client.get(`${server.url}${path}`), (r) => r.text)
          })
        ).pipe(
          Effect.tap(() => waitFor(() => server.load.inFlight === 1, `${path} to reach the server`)),
          Effect.tap(() => Effect.sync(() => {
            abort.abort()
            abort.abort() // a second abort does nothing
          })),
          Effect.flatMap(Fiber.await)
        )
        expect(Exit.isFailure(exit)).toBe(true)
        expect(abort.aborted).toBe(true)
        expect(abort.reason).toBeInstanceOf(DOMException)
        expect((abort.reason as DOMException).name).toBe("AbortError")
        expect(abort.listenerCount("abort")).toBe(0)
        yield* waitFor(() => server.load.inFlight === 0, `the server to see ${path} aborted`)
      }
    })))

  it.live("the direct send: the body read within the limit into an array of its own, 1xx answers passed over, options from the fiber", () =>
    live(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        if (req.url === "/hints") res.writeEarlyHints({ link: "</a.css>; rel=preload" })
        res.writeHead(200, { "content-type": "image/png", "x-request-id": "r-9" })
        res.end(Buffer.alloc(3000, 7))
      })
      const client = yield* HttpClient.HttpClient
      for (const path of ["/plain", "/hints"]) {
        const { calls, failure, reply } = yield* direct(client, HttpClientRequest.get(`${server.url}${path}`), () => 4096)
        expect(calls).toBe(1)
        expect(failure).toBeUndefined()
        expect(reply!.status).toBe(200)
        expect(reply!.headers["x-request-id"]).toBe("r-9")
        expect(reply!.body).toEqual(new Uint8Array(3000).fill(7))
        // Its own buffer, exactly the body's size: not a view of the socket's read buffer.
        expect(reply!.body.buffer.byteLength).toBe(3000)
        expect([reply!.received, reply!.over, reply!.bodyError]).toEqual([3000, false, undefined])
      }
      // The limit is asked once, with the status and headers of the response (not of an early hint).
      const asked: Array<[number, string | undefined]> = []
      yield* direct(client, HttpClientRequest.get(`${server.url}/hints`), (status, headers) => (asked.push([status, headers["content-type"]]), 10_000))
      expect(asked).toEqual([[200, "image/png"]])
      // UndiciRequestOptions from the fiber's context.
      yield* direct(client, HttpClientRequest.get(`${server.url}/reset`), () => 10_000).pipe(
        Effect.provideService(NodeHttpClient.UndiciRequestOptions, { reset: true } as NodeHttpClient.UndiciRequestOptions["Type"])
      )
      expect(server.requests.at(-1)!.headers["connection"]).toBe("close")
    })))

  it.live("the direct send stops past the limit: the first bytes kept, the request aborted (the server sees it end)", () =>
    live(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        if (req.url === "/declared") {
          res.writeHead(500, { "content-length": "100000" })
          res.write(Buffer.alloc(100_000, 1))
          return
        }
        res.writeHead(200) // chunked, and never ends
        res.write(Buffer.alloc(1000, 2))
        const timer = setInterval(() => res.write(Buffer.alloc(1000, 2)), 5)
        res.on("close", () => clearInterval(timer))
      })
      const client = yield* HttpClient.HttpClient
      const endless = yield* direct(client, HttpClientRequest.get(`${server.url}/endless`), () => 2500)
      expect(endless.calls).toBe(1)
      expect(endless.reply!.over).toBe(true)
      expect(endless.reply!.bodyError).toBeUndefined()
      expect(endless.reply!.body).toEqual(new Uint8Array(2500).fill(2))
      expect(endless.reply!.received).toBeGreaterThan(2500)
      yield* waitFor(() => server.load.inFlight === 0, "the server to see the request aborted")
      // A limit of 0: nothing kept (the API client's answer to a declared length over its cap).
      const declared = yield* direct(client, HttpClientRequest.get(`${server.url}/declared`), () => 0)
      expect([declared.reply!.status, declared.reply!.over, declared.reply!.body.length]).toEqual([500, true, 0])
      expect(declared.reply!.headers["content-length"]).toBe("100000")
    })))

  it.live("the direct send's abort: before the headers a Transport failure, during the body a body error; once ended it does nothing", () =>
    live(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        if (req.url === "/part") {
          res.writeHead(200, { "content-length": "100" })
          res.write("part") // and never ends
        } else if (req.url === "/done") res.end("done")
        // "/never": no headers
      })
      const client = yield* HttpClient.HttpClient
      for (const path of ["/never", "/part"]) {
        const got = yield* direct(client, HttpClientRequest.get(`${server.url}${path}`), () => 1000, (abort) =>
          Effect.zipRight(
            waitFor(() => server.load.inFlight === 1 && (path === "/never" || server.requests.length > 0), `${path} to reach the server`),
            Effect.sync(() => {
              abort()
              abort() // a second abort does nothing
            })
          ))
        expect(got.calls).toBe(1)
        if (path === "/never") {
          expect(got.failure).toBeInstanceOf(HttpClientError.RequestError)
          expect(got.failure!.reason).toBe("Transport")
        } else {
          expect(got.failure).toBeUndefined()
          expect(got.reply!.bodyError).toBeInstanceOf(Error)
          expect(new TextDecoder().decode(got.reply!.body)).toBe("part")
        }
        yield* waitFor(() => server.load.inFlight === 0, `the server to see ${path} aborted`)
      }
      // Aborted before it is sent (no connection is open: the aborted ones were closed): it fails,
      // and the server never sees it.
      const before = server.requests.length
      const early = yield* direct(client, HttpClientRequest.get(`${server.url}/done`), () => 1000, (abort) => Effect.sync(abort))
      expect(early.calls).toBe(1)
      expect(early.failure).toBeInstanceOf(HttpClientError.RequestError)
      expect(server.requests.length).toBe(before)
      // Once it has ended, an abort does nothing: the next request reuses its connection.
      const sockets = new Set<unknown>()
      const reused = yield* start((req, res) => {
        sockets.add(req.socket)
        res.end("done")
      })
      const done = yield* direct(client, HttpClientRequest.get(`${reused.url}/1`), () => 1000)
      done.abort()
      expect(new TextDecoder().decode(done.reply!.body)).toBe("done")
      yield* direct(client, HttpClientRequest.get(`${reused.url}/2`), () => 1000)
      expect(sockets.size).toBe(1)
      const refused = yield* direct(client, HttpClientRequest.get(`http://127.0.0.1:${yield* closedPort}/`), () => 1000)
      expect(refused.failure!.reason).toBe("Transport")
    })))

  it.live("the direct send over a dispatcher that throws: a Transport failure through done, not a defect", () =>
    Effect.gen(function*() {
      const boom = new Error("this dispatcher refuses everything")
      const client = UndiciClient.make({ dispatch: () => { throw boom } } as unknown as import("@effect/platform-node/Undici").Dispatcher)
      const got = yield* direct(client, HttpClientRequest.get("http://127.0.0.1:9/x"), () => 1000)
      expect(got.calls).toBe(1)
      expect(got.failure!.reason).toBe("Transport")
      expect(got.failure!.cause).toBe(boom)
    }))

  it.live("with HttpClient.withScope, closing the scope aborts the request", () =>
    live(Effect.gen(function*() {
      let seen = false
      const server = yield* start((_req, res) => {
        seen = true
        res.writeHead(200)
        res.write("part")
      })
      const client = HttpClient.withScope(yield* HttpClient.HttpClient)
      const scope = yield* Scope.make()
      const response = yield* Scope.extend(client.get(server.url), scope)
      expect(response.status).toBe(200)
      yield* waitFor(() => seen && server.load.inFlight === 1, "the request to reach the server")
      yield* Scope.close(scope, Exit.void)
      yield* waitFor(() => server.load.inFlight === 0, "the server to see the abort")
    })))

  it.live("keeps connections alive: requests one after another share one socket", () =>
    live(Effect.gen(function*() {
      const sockets = new Set<unknown>()
      const server = yield* start((req, res) => {
        sockets.add(req.socket)
        res.end("x")
      })
      const client = yield* HttpClient.HttpClient
      yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => Effect.flatMap(client.get(`${server.url}/${i}`), (r) => r.arrayBuffer), {
        discard: true
      })
      expect(server.requests.length).toBe(20)
      // One socket; two only if the server closed an idle one between two requests (it keeps them 5 s).
      expect(sockets.size).toBeLessThanOrEqual(2)
    })))

  it.live("honours UndiciRequestOptions from the context", () =>
    live(Effect.gen(function*() {
      const server = yield* start((_req, res) => res.end("x"))
      const client = yield* HttpClient.HttpClient
      // `reset: true` asks undici to close the connection after the request: it says so in a header.
      yield* Effect.flatMap(client.get(`${server.url}/reset`), (r) => r.text).pipe(
        // (its type asks for a path and a method too, which the request itself always sets)
        Effect.provideService(NodeHttpClient.UndiciRequestOptions, { reset: true } as NodeHttpClient.UndiciRequestOptions["Type"])
      )
      yield* Effect.flatMap(client.get(`${server.url}/plain`), (r) => r.text)
      expect(server.requests.map((r) => [r.url, r.headers["connection"]])).toEqual([["/reset", "close"], ["/plain", "keep-alive"]])
    })))
  it.live("honours UndiciRequestOptions given to the layer", () =>
    Effect.gen(function*() {
      const server = yield* start((_req, res) => res.end("x"))
      const client = yield* HttpClient.HttpClient
      yield* Effect.flatMap(client.get(`${server.url}/reset`), (r) => r.text)
      // A request's own options win over the layer's.
      yield* Effect.flatMap(client.get(`${server.url}/plain`), (r) => r.text).pipe(
        Effect.provideService(NodeHttpClient.UndiciRequestOptions, { reset: false } as NodeHttpClient.UndiciRequestOptions["Type"])
      )
      expect(server.requests.map((r) => [r.url, r.headers["connection"]])).toEqual([["/reset", "close"], ["/plain", "keep-alive"]])
    }).pipe(
      Effect.scoped,
      Effect.provide(UndiciClient.layer.pipe(
        Layer.provide(Layer.succeed(NodeHttpClient.UndiciRequestOptions, { reset: true } as NodeHttpClient.UndiciRequestOptions["Type"]))
      ))
    ))
})
