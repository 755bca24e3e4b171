/**
 * Answers the simulator never gives (a broken image, an image of another product, a broken list
 * contract), from a tiny `node:http` server on 127.0.0.1.
 */
import * as http from "node:http"
import type * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { fastRetry, live, run, runUntil } from "./Harness.js"

const p1 = "11111111-1111-4111-8111-111111111111"
const p2 = "22222222-2222-4222-8222-222222222222"

/** A wire image of product `product`. */
const image = (id: string, product: string, more: Record<string, unknown> = {}) => ({
  id,
  product_id: product,
  position: 1,
  src: `//cdn.shoplazza.com/${id}.png`,
  width: 10,
  height: 20,
  alt: "",
  created_at: "2024-04-08T07:13:28Z",
  updated_at: "2024-04-08T07:13:28Z",
  ...more
})

interface Tiny {
  readonly url: string
  readonly seen: Array<{ readonly url: string; readonly token: string | undefined }>
}

/** A server answering `routes[pathname]` (JSON, 200) and 404 elsewhere, for the scope. */
const tiny = (routes: (path: string, query: URLSearchParams) => unknown): Effect.Effect<Tiny, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; info: Tiny }>((resume) => {
      const seen: Tiny["seen"] = []
      const server = http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://tiny")
        const token = req.headers["access-token"]
        seen.push({ url: req.url ?? "/", token: typeof token === "string" ? token : undefined })
        const body = routes(url.pathname, url.searchParams)
        const text = JSON.stringify(body ?? { errors: ["Not Found"] })
        res.writeHead(body === undefined ? 404 : 200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) })
        res.end(text)
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        resume(Effect.succeed({ server, info: { url: `http://127.0.0.1:${port}`, seen } }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(Effect.map(({ info }) => info))

const config = (url: string) => ({ baseUrl: url, accessToken: "t0ken-abc", retry: fastRetry, rateLimit: false })

describe("shoplazza source: the wire", () => {
  it.live("a broken image and an image of another product are dead letters; the rest of the product is emitted", () =>
    live(Effect.gen(function*() {
      const bad = image("b", p1, { position: "first" })
      const stray = image("s", p2)
      const server = yield* tiny((path) => {
        if (path === "/openapi/2022-01/products") return { products: [{ id: p1 }], cursor: "", has_more: false }
        if (path === `/openapi/2022-01/products/${p1}/images`) return { images: [image("a", p1), bad, stray, image("c", p1, { position: 3 })] }
        return undefined
      })
      const result = yield* run(config(server.url))
      expect(result.records.map((r) => [r.productId, r.imageId, r.position, r.url])).toEqual([
        [p1, "a", 1, "https://cdn.shoplazza.com/a.png"],
        [p1, "c", 3, "https://cdn.shoplazza.com/c.png"]
      ])
      expect(result.rejected.map((d) => [d.stage, d.payload])).toEqual([["source", bad], ["source", stray]])
      expect(result.rejected[0]!.error).toContain("position")
      expect(result.rejected[1]!.error).toContain(`says it belongs to product ${p2}`)
      // The token goes in the access-token header, never in the URL.
      expect(server.seen.every((r) => r.token === "t0ken-abc" && !r.url.includes("t0ken"))).toBe(true)
      expect(server.seen.map((r) => r.url)).toEqual(["/openapi/2022-01/products?limit=100", `/openapi/2022-01/products/${p1}/images`])
    })))

  it.live("a list that says has_more but gives no cursor stops the run rather than looping or skipping", () =>
    live(Effect.gen(function*() {
      const server = yield* tiny((path) =>
        path === "/openapi/2022-01/products" ? { products: [{ id: p1 }], cursor: "", has_more: true } : { images: [] }
      )
      const { error } = yield* runUntil(config(server.url))
      expect(error._tag === "Some" && error.value).toMatchObject({ _tag: "ApiError" })
      expect(error._tag === "Some" && error.value.message).toContain("gave no cursor")
    })))

  it.live("a list page of the wrong shape is a DecodeError naming the path", () =>
    live(Effect.gen(function*() {
      const server = yield* tiny(() => ({ data: { products: [] }, code: "Success" }))
      const { error } = yield* runUntil(config(server.url))
      expect(error._tag === "Some" && error.value).toMatchObject({ _tag: "DecodeError", source: "shoplazza" })
      expect(error._tag === "Some" && error.value.message).toContain("products")
    })))
})
