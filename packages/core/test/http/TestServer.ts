/**
 * Test support for the HTTP toolkit: a tiny real HTTP server on 127.0.0.1 (node:http) that records
 * what it was asked, and helpers to drive the TestClock through a client's retries.
 */
import * as http from "node:http"
import type * as net from "node:net"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"

/** One request the server received. */
export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
}

/** A running test server. */
export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  readonly requests: Array<Received>
  /** Requests being answered right now, and the most there ever were. */
  readonly load: { inFlight: number; maxInFlight: number }
}

/** Handles one request; `n` is its index (0-based) among all requests received. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => unknown

/** Starts a server on 127.0.0.1 for the scope; closes every connection at the end. */
export const start = (handler: Handler): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ server: http.Server; info: TestServer }>((resolve) => {
          const requests: Array<Received> = []
          const load = { inFlight: 0, maxInFlight: 0 }
          const server = http.createServer((req, res) => {
            const n = requests.length
            requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers })
            load.inFlight += 1
            load.maxInFlight = Math.max(load.maxInFlight, load.inFlight)
            res.on("close", () => {
              load.inFlight -= 1
            })
            Promise.resolve(handler(req, res, n)).catch((e) => {
              res.statusCode = 599
              res.end(String(e))
            })
          })
          server.listen(0, "127.0.0.1", () => {
            const port = (server.address() as net.AddressInfo).port
            resolve({ server, info: { url: `http://127.0.0.1:${port}`, port, requests, load } })
          })
        })
    ),
    ({ server }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections()
            server.close(() => resolve())
          })
      )
  ).pipe(Effect.map(({ info }) => info))

/** Sends a JSON body. */
export const json = (
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {}
): void => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** A port on 127.0.0.1 where nothing listens (connections are refused). */
export const closedPort: Effect.Effect<number> = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = http.createServer()
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        server.close(() => resolve(port))
      })
    })
)

/** Waits a little real time (lets sockets and the server make progress; the TestClock does not move). */
export const settle = (ms = 5): Effect.Effect<void> =>
  Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** Waits (real time, polling) until `condition` holds; dies with `what` after 10 s. */
export const waitFor = (condition: () => boolean, what: string): Effect.Effect<void> =>
  Effect.gen(function*() {
    const deadline = Date.now() + 10_000
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for: ${what}`)
      yield* settle(2)
    }
  })

/** A log line captured by {@link captureLogs}. */
export interface Logged {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/** A logger layer that records every log line into `into`. */
export const captureLogs = (into: Array<Logged>): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ annotations, logLevel, message }) => {
        const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
        into.push({ level: logLevel.label, message: text, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
      })
    ),
    Logger.minimumLogLevel(LogLevel.All)
  )

/** The retry announcements among captured logs (debug for the first two, warnings after). */
export const retries = (logs: ReadonlyArray<Logged>): ReadonlyArray<Logged> =>
  logs.filter((l) => typeof l.annotations["delayMillis"] === "number")

/**
 * Runs `effect` in a fiber and drives the TestClock through its retries: each time the client
 * logs a retry, the clock is moved by exactly the announced delay. Returns the result and the
 * delays (ms) in order. `beforeEachRetry` may move the clock itself (then return true).
 */
export const drive = <A, E>(
  effect: Effect.Effect<A, E>,
  logs: Array<Logged>,
  options: {
    /** Called when a retry was announced, before the clock moves; return true if it moved the clock itself. */
    readonly onRetry?: (delayMillis: number, index: number) => Effect.Effect<boolean>
    /** Called while nothing is announced and the fiber runs; e.g. to fire attempt timeouts. */
    readonly whileWaiting?: Effect.Effect<void>
  } = {}
): Effect.Effect<{ readonly exit: import("effect/Exit").Exit<A, E>; readonly delays: ReadonlyArray<number> }> =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    const delays: Array<number> = []
    for (;;) {
      const polled = yield* Fiber.poll(fiber)
      if (Option.isSome(polled)) return { exit: polled.value, delays }
      const announced = retries(logs)
      if (announced.length > delays.length) {
        const delay = announced[delays.length]!.annotations["delayMillis"] as number
        delays.push(delay)
        const moved = options.onRetry ? yield* options.onRetry(delay, delays.length - 1) : false
        if (!moved) yield* TestClock.adjust(delay)
        continue
      }
      if (options.whileWaiting) yield* options.whileWaiting
      yield* settle(2)
    }
  })
