/**
 * A fault proxy on 127.0.0.1, for the fault-mix tests: it forwards every request to an upstream
 * simulator (run without faults of its own) and answers every `every`-th request badly instead, the
 * kinds taken in turn from {@link faultKinds}. The schedule depends only on the request count, so a
 * run of at least `every × faultKinds.length` requests meets every kind, however the machine is
 * loaded. Unlike the seeded faults of `Server.serve`, the schedule does not depend on a PRNG or on
 * which requests come first: a source's own fault-mix test uses it to show that every kind is met and
 * survived. `cut-body` is a 2xx whose body is cut short under a matching Content-Length (a complete
 * answer with half a document); `stall` is no answer at all, until the client gives up.
 */
import * as http from "node:http"
import type * as net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** What the proxy does instead of answering. */
export type FaultKind = "5xx" | "503-retry-after" | "reset" | "truncate" | "cut-body" | "stall"

/** The kinds, in the order the proxy takes them. */
export const faultKinds: ReadonlyArray<FaultKind> = ["5xx", "503-retry-after", "reset", "truncate", "cut-body", "stall"]

/** A canned answer. */
export interface Canned {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** How to proxy. */
export interface FaultProxyOptions {
  /** The upstream origin, `http://127.0.0.1:<port>`. */
  readonly upstream: string
  /** One request in `every` gets a fault (10: a 10 % mix). */
  readonly every: number
  /** The vendor's 5xx answer. */
  readonly serverError: Canned
  /** The vendor's 503 answer; it must carry `Retry-After`. */
  readonly unavailable: Canned
}

/** A running proxy. */
export interface FaultProxy {
  /** Its origin: what the source's baseUrl points at. */
  readonly url: string
  /** How many requests it received. */
  readonly requests: () => number
  /** How many faults of each kind it injected. */
  readonly injected: () => Readonly<Record<FaultKind, number>>
}

/** Starts a fault proxy for the scope. */
export const make = (options: FaultProxyOptions): Effect.Effect<FaultProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: http.Server; readonly proxy: FaultProxy }>((resume) => {
      let received = 0
      const injected: Record<FaultKind, number> = { "5xx": 0, "503-retry-after": 0, reset: 0, truncate: 0, "cut-body": 0, stall: 0 }
      const server = http.createServer((req, res) => {
        received++
        const kind = received % options.every === 0 ? faultKinds[(received / options.every - 1) % faultKinds.length]! : undefined
        const send = (answer: Canned): void => {
          const body = Buffer.from(answer.body, "utf8")
          res.writeHead(answer.status, { ...answer.headers, "Content-Length": String(body.length) })
          res.end(body)
        }
        switch (kind) {
          case "5xx":
            injected[kind]++
            return send(options.serverError)
          case "503-retry-after":
            injected[kind]++
            return send(options.unavailable)
          case "reset":
            injected[kind]++
            return void req.socket.resetAndDestroy()
          case "stall":
            // Nothing is ever sent: the client's timeout ends the attempt and closes the connection.
            injected[kind]++
            return
        }
        forward(options.upstream, req, (upstream) => {
          if (upstream === undefined) return void res.socket?.destroy()
          const { status, headers, body } = upstream
          if (kind === "truncate") {
            injected[kind]++
            res.writeHead(status, { ...headers, "content-length": String(Math.max(body.length, 2)) })
            return void res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy())
          }
          if (kind === "cut-body" && status >= 200 && status < 300 && body.length >= 2) {
            injected[kind]++
            const half = body.subarray(0, Math.floor(body.length / 2))
            res.writeHead(status, { ...headers, "content-length": String(half.length) })
            return void res.end(half)
          }
          res.writeHead(status, { ...headers, "content-length": String(body.length) })
          res.end(body)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
        resume(Effect.succeed({ server, proxy: { url, requests: () => received, injected: () => ({ ...injected }) } }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(Effect.map(({ proxy }) => proxy))

interface Upstream {
  readonly status: number
  readonly headers: http.OutgoingHttpHeaders
  readonly body: Buffer
}

/** Forwards a request as it came (Host included, so absolute links name the proxy) and reads the whole answer. */
const forward = (upstream: string, req: http.IncomingMessage, then: (answer: Upstream | undefined) => void): void => {
  const target = new URL(req.url ?? "/", upstream)
  const outgoing = http.request(target, { method: req.method, headers: req.headers, agent: false }, (response) => {
    const chunks: Array<Buffer> = []
    response.on("data", (chunk: Buffer) => chunks.push(chunk))
    response.on("end", () => {
      const headers: http.OutgoingHttpHeaders = { ...response.headers }
      delete headers["content-length"]
      delete headers["transfer-encoding"]
      delete headers["connection"]
      delete headers["keep-alive"]
      then({ status: response.statusCode ?? 502, headers, body: Buffer.concat(chunks) })
    })
    response.on("error", () => then(undefined))
  })
  outgoing.on("error", () => then(undefined))
  req.pipe(outgoing)
}
