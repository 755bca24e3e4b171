/**
 * Server: the HTTP side every API simulator shares. A simulator supplies a `respond` function
 * (request → complete {@link Reply}) and its own 5xx and 429 answers; `serve` listens on a loopback
 * address only, counts requests, injects seeded faults (5xx, 429, connection resets, truncated
 * bodies, latency) and closes cleanly.
 */
import * as http from "node:http"
import type * as net from "node:net"
import { type Fault, FaultInjector, type FaultOptions, malformedBody } from "./Faults.js"

/** A complete HTTP answer, built before it is sent (so faults can delay or cut it). */
export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
}

/** Counters of the requests a simulator has received. */
export interface RequestStats {
  readonly total: number
  readonly faults: number
  /** requests per URL path (without the query) */
  readonly byPath: Record<string, number>
}

/** How a simulator answers: its routes and what its faults look like. */
export interface ServeOptions {
  /** The simulator's name, for messages (`channel`, `acceo`, ...). */
  readonly name: string
  /** TCP port; 0 (default) picks an ephemeral port. */
  readonly port?: number
  /** Default "127.0.0.1"; anything that is not a loopback address is refused. */
  readonly host?: string
  /** Faults to inject; none by default. */
  readonly faults?: FaultOptions
  /** Answers one request. `origin` is the simulator's own `http://host:port`. */
  readonly respond: (req: http.IncomingMessage, origin: string) => Reply | Promise<Reply>
  /** The simulator's 5xx answers (a fault picks one). */
  readonly serverErrors: ReadonlyArray<Reply>
  /** The simulator's answer to a throttled request (a `429` fault). */
  readonly throttled: (fault: Extract<Fault, { kind: "429" }>) => Reply
  /**
   * Headers added to every reply, fault replies included, made afresh for each one (a vendor's
   * per-response `Request-Id`, say). A header the reply already has wins.
   */
  readonly everyReply?: () => Readonly<Record<string, string>>
}

/** A running server. */
export interface Served {
  /** "http://127.0.0.1:<port>" */
  readonly origin: string
  readonly port: number
  /** A snapshot of the request counters. */
  readonly requests: () => RequestStats
  /** Sets or clears faults while running (restarts the fault PRNG from its seed). */
  readonly setFaults: (faults: FaultOptions | undefined) => void
  /**
   * Holds back every answer `match` picks (given the request's path and query and the answer it
   * would get) until the hold is released: a test's way to keep a client at a known point, say a
   * listing's last page, for as long as it needs, whatever the machine's speed.
   */
  readonly hold: (match: (target: string, reply: Reply) => boolean) => Hold
  /** Stops listening and drops every open connection. */
  readonly close: () => Promise<void>
}

/** A hold on some answers (see {@link Served.hold}). */
export interface Hold {
  /** How many answers it has held back so far (released ones included). */
  readonly held: () => number
  /** Sends the answers held back (to the clients still connected) and holds no more. Idempotent. */
  readonly release: () => void
}

/** Starts a server on a loopback address; rejects for a non-loopback host or a bad port. */
export const serve = async (options: ServeOptions): Promise<Served> => {
  const host = loopbackHost(options.host ?? "127.0.0.1", options.name)
  const port = options.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`Simulator port must be 0..65535, got ${port}`)
  if (options.serverErrors.length === 0) throw new RangeError("A simulator needs at least one 5xx answer")
  const faults = new FaultInjector(options.faults, options.serverErrors.length)
  const stats = { total: 0, faults: 0, byPath: new Map<string, number>() }
  const timers = new Set<NodeJS.Timeout>()
  const holds = new Set<{ readonly match: (target: string, reply: Reply) => boolean; readonly waiting: Array<() => void>; count: number }>()
  let origin = ""
  /** Sends now, or when the first hold that picks this answer is released. */
  const sendOrHold = (target: string, res: http.ServerResponse, reply: Reply, go: () => void): void => {
    for (const hold of holds) {
      if (hold.match(target, reply)) {
        hold.count++
        hold.waiting.push(() => {
          if (!res.destroyed) go()
        })
        return
      }
    }
    go()
  }
  const decorate = (reply: Reply): Reply =>
    options.everyReply === undefined ? reply : { ...reply, headers: { ...options.everyReply(), ...reply.headers } }

  const answer = (req: http.IncomingMessage, res: http.ServerResponse, then: (reply: Reply) => void): void => {
    let reply: Reply | Promise<Reply>
    try {
      reply = options.respond(req, origin)
    } catch (error) {
      return send(res, decorate(internalError(error)))
    }
    if (reply instanceof Promise) reply.then((r) => then(decorate(r)), (error) => send(res, decorate(internalError(error))))
    else then(decorate(reply))
  }

  const server = http.createServer((req, res) => {
    const target = req.url ?? "/"
    const pathname = target.split("?", 1)[0] ?? "/"
    stats.total++
    stats.byPath.set(pathname, (stats.byPath.get(pathname) ?? 0) + 1)
    const fault = faults.next(target)
    if (fault === undefined) return answer(req, res, (reply) => sendOrHold(target, res, reply, () => send(res, reply)))
    stats.faults++
    switch (fault.kind) {
      case "reset":
        return resetConnection(res)
      case "5xx":
        return send(res, decorate(options.serverErrors[fault.variant % options.serverErrors.length]!))
      case "429":
        return send(res, decorate(options.throttled(fault)))
      case "truncate":
        return answer(req, res, (reply) => sendTruncated(res, reply))
      case "latency":
        return answer(req, res, (reply) => {
          const timer = setTimeout(() => {
            timers.delete(timer)
            sendOrHold(target, res, reply, () => send(res, reply))
          }, fault.latencyMs)
          timers.add(timer)
        })
      case "stall":
        // Never answer: only the client's timeout ends it (close() drops the connection).
        return
      case "malformed":
        // A complete 2xx whose body is not what it claims (a proxy's error page, a half-written file).
        return answer(req, res, (reply) =>
          send(res, reply.status >= 200 && reply.status < 300 ? { ...reply, body: malformedBody(reply.body) } : reply))
    }
  })

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const boundPort = (server.address() as net.AddressInfo).port
  origin = `http://${host.includes(":") ? `[${host}]` : host}:${boundPort}`

  return {
    origin,
    port: boundPort,
    requests: () => ({ total: stats.total, faults: stats.faults, byPath: Object.fromEntries(stats.byPath) }),
    setFaults: (next) => faults.reset(next),
    hold: (match) => {
      const hold = { match, waiting: [] as Array<() => void>, count: 0 }
      holds.add(hold)
      return {
        held: () => hold.count,
        release: () => {
          holds.delete(hold)
          for (const go of hold.waiting.splice(0)) go()
        }
      }
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer)
        timers.clear()
        for (const hold of holds) hold.waiting.length = 0
        holds.clear()
        server.close((error) => (error === undefined ? resolve() : reject(error)))
        server.closeAllConnections()
      })
  }
}

/** A JSON reply. */
export const json = (status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): Reply => ({
  status,
  headers: { "Content-Type": "application/json; charset=utf-8", ...headers },
  body: Buffer.from(JSON.stringify(body), "utf8")
})

/** A text reply (HTML, XML, plain), with its content type. */
export const text = (status: number, contentType: string, body: string, headers: Readonly<Record<string, string>> = {}): Reply => ({
  status,
  headers: { "Content-Type": contentType, ...headers },
  body: Buffer.from(body, "utf8")
})

/** An nginx-style error page (what a proxy in front of an API answers). */
export const nginxPage = (title: string): string =>
  `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`

/** Writes a reply with its exact Content-Length. */
export const send = (res: http.ServerResponse, reply: Reply): void => {
  if (res.destroyed) return
  res.writeHead(reply.status, { ...reply.headers, "Content-Length": String(reply.body.length) })
  res.end(reply.body)
}

/** Drops the connection with a TCP reset and no answer. */
export const resetConnection = (res: http.ServerResponse): void => {
  res.socket?.resetAndDestroy()
}

/** Announces the full Content-Length, sends about half the body, then closes the connection. */
export const sendTruncated = (res: http.ServerResponse, reply: Reply): void => {
  const claimed = Math.max(reply.body.length, 2)
  res.writeHead(reply.status, { ...reply.headers, "Content-Length": String(claimed) })
  res.write(reply.body.subarray(0, Math.floor(reply.body.length / 2)), () => res.socket?.destroy())
}

/** Loopback hosts only: 127.0.0.0/8, ::1 and localhost (bound as 127.0.0.1). */
export const loopbackHost = (host: string, name = "API"): string => {
  if (host === "localhost") return "127.0.0.1"
  if (/^127(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(host) || host === "::1") return host
  throw new Error(`The ${name} simulator only listens on a loopback address (127.0.0.1, ::1 or localhost), not "${host}".`)
}

/** The query parameters of a request. */
export const query = (req: http.IncomingMessage): URLSearchParams => new URL(req.url ?? "/", "http://simulator").searchParams

/** A bug in a simulator answers 500 with its message rather than hanging the client. */
const internalError = (error: unknown): Reply =>
  text(500, "text/plain; charset=utf-8", `simulator error: ${error instanceof Error ? error.message : String(error)}`)
