/**
 * A faithful fake of the LinkShop API on 127.0.0.1, for the source's tests and for trying it by hand
 * (`effetl simulate <this module or package>`): bearer auth, the product list with `Link` headers
 * and `X-Total-Count`, the fixed-window rate limit with its headers and its 429, and test controls
 * (touch a product, break one, count requests); the image URLs serve small PNGs. Built on core's `Server.serve`, which adds loopback
 * only listening, request counters and seeded faults.
 */
import { Images, Server, Simulator } from "@effetl/core/simulator"
import type * as http from "node:http"

/** One product of the catalogue. */
export interface Product {
  readonly id: number
  updatedAt: Date
  readonly images: ReadonlyArray<{ readonly id: number; readonly position: number }>
  /** When set, the product is sent in this shape instead (a vendor bug, for dead-letter tests). */
  broken?: unknown
}

/** How to start the simulator. */
export interface Options {
  readonly port?: number
  readonly faults?: Server.ServeOptions["faults"]
  /** How many products (default 12); product `i` has `i % 4` images. */
  readonly products?: number
  /** Requests per window (default 100). */
  readonly quota?: number
  /** The window's length in milliseconds (default 10 000). */
  readonly windowMs?: number
}

/** A running simulator with its controls. */
export interface LinkShopSimulator {
  readonly url: string
  readonly token: string
  readonly catalogue: ReadonlyArray<Product>
  /** Marks a product as updated now (the next incremental run lists it). */
  readonly touch: (id: number) => void
  /** Requests answered, and how many got a 429 because the window was spent. */
  readonly requests: () => Server.RequestStats & { readonly throttled: number; readonly lowestRemaining: number }
  readonly close: () => Promise<void>
}

/** The simulator's made-up token. */
export const token = "sim-linkshop-token"

/** Starts the simulator. */
export const start = async (options: Options = {}): Promise<LinkShopSimulator> => {
  const quota = options.quota ?? 100
  const windowMs = options.windowMs ?? 10_000
  const base = Date.UTC(2026, 0, 1)
  const catalogue: Array<Product> = Array.from({ length: options.products ?? 12 }, (_, i) => ({
    id: 1001 + i,
    updatedAt: new Date(base + i * 60_000),
    images: Array.from({ length: i % 4 }, (_, j) => ({ id: 5000 + i * 10 + j, position: j + 1 }))
  }))
  const png = Images.encodePng(4, 4, () => [200, 120, 40])
  const window = { end: 0, used: 0, throttled: 0, lowest: quota }

  const budget = (): Record<string, string> => ({
    "X-RateLimit-Limit": String(quota),
    "X-RateLimit-Remaining": String(Math.max(0, quota - window.used)),
    "X-RateLimit-Reset": String(Math.ceil(window.end / 1000))
  })

  const respond = (req: http.IncomingMessage, origin: string): Server.Reply => {
    const url = new URL(req.url ?? "/", origin)
    // The image bytes, like a CDN: no auth, outside the quota.
    if (url.pathname.startsWith("/images/")) return { status: 200, headers: { "Content-Type": "image/png" }, body: png }
    if (req.headers.authorization !== `Bearer ${token}`) return Server.json(401, { error: "invalid token" })
    const now = Date.now()
    if (now >= window.end) Object.assign(window, { end: now + windowMs, used: 0 })
    if (window.used >= quota) {
      window.throttled++
      return Server.json(429, { error: "rate limit exceeded" }, { ...budget(), "Retry-After": String(Math.ceil((window.end - now) / 1000)) })
    }
    window.used++
    window.lowest = Math.min(window.lowest, quota - window.used)
    if (url.pathname !== "/api/v1/products") return Server.json(404, { error: "not found" }, budget())
    const perPage = Math.min(250, Math.max(1, Number(url.searchParams.get("per_page") ?? "50")))
    const page = Math.max(1, Number(url.searchParams.get("page") ?? "1"))
    const since = url.searchParams.get("updated_since")
    const listed = catalogue
      .filter((p) => since === null || p.updatedAt.getTime() >= Date.parse(since))
      .sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime() || a.id - b.id)
    const slice = listed.slice((page - 1) * perPage, page * perPage)
    const link = (n: number) => {
      const next = new URL(url.href)
      next.searchParams.set("page", String(n))
      return next.href
    }
    const links = [
      ...(page * perPage < listed.length ? [`<${link(page + 1)}>; rel="next"`] : []),
      ...(page > 1 ? [`<${link(page - 1)}>; rel="prev"`] : [])
    ]
    return Server.json(
      200,
      slice.map((p) =>
        p.broken ?? {
          id: p.id,
          updated_at: p.updatedAt.toISOString(),
          images: p.images.map((img) => ({
            id: img.id,
            src: `${origin}/images/${img.id}.png`,
            position: img.position,
            width: 640,
            height: 480,
            alt: null
          }))
        }
      ),
      { ...budget(), "X-Total-Count": String(listed.length), ...(links.length > 0 ? { Link: links.join(", ") } : {}) }
    )
  }

  const served = await Server.serve({
    name: "linkshop",
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.faults !== undefined ? { faults: options.faults } : {}),
    respond,
    serverErrors: [Server.json(503, { error: "service unavailable" })],
    throttled: (fault) => Server.json(429, { error: "rate limit exceeded" }, { "Retry-After": String(fault.retryAfterSeconds) })
  })
  return {
    url: served.origin,
    token,
    catalogue,
    touch: (id) => {
      const product = catalogue.find((p) => p.id === id)
      if (product !== undefined) product.updatedAt = new Date()
    },
    requests: () => ({ ...served.requests(), throttled: window.throttled, lowestRemaining: window.lowest }),
    close: served.close
  }
}

/** What `effetl simulate` serves: this simulator, in core's `Simulator` shape. */
export const simulator = Simulator.define({
  name: "linkshop",
  description: "The LinkShop API: products with inline images, Link-header pagination, a fixed-window rate limit",
  start: async ({ port, faults }) => {
    const sim = await start({ port, ...(faults !== undefined ? { faults } : {}) })
    return {
      url: sim.url,
      lines: [
        `  token: ${sim.token}   products: ${sim.catalogue.length}`,
        `  try: curl -i -H 'Authorization: Bearer ${sim.token}' '${sim.url}/api/v1/products?per_page=2'`
      ],
      close: sim.close
    }
  }
})
