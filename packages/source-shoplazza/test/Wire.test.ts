/**
 * Answers the simulator never gives (a broken image, an image of another product, list pages that
 * end or loop in each way the contract allows or breaks, a product listed twice), from a tiny
 * `node:http` server on 127.0.0.1.
 */
import * as http from "node:http"
import type * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { fastRetry, live, productsRead, run, runUntil } from "./Harness.js"

const p1 = "11111111-1111-4111-8111-111111111111"
const p2 = "22222222-2222-4222-8222-222222222222"
const p3 = "33333333-3333-4333-8333-333333333333"

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

/** A product of the list, with its images. */
const product = (id: string, updatedAt: string, images: ReadonlyArray<unknown> = [image(`${id.slice(0, 1)}-img`, id)]) => ({ id, updated_at: updatedAt, images })

interface Tiny {
  readonly url: string
  readonly seen: Array<{ readonly url: string; readonly token: string | undefined }>
}

/** A server answering `routes(pathname, query)` (JSON, 200) and 404 elsewhere, for the scope. */
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

const config = (url: string, more: Record<string, unknown> = {}) => ({ baseUrl: url, accessToken: "t0ken-abc", retry: fastRetry, rateLimit: false, ...more })

const list = "/openapi/2022-01/products"
const count = "/openapi/2022-01/products/count"

/** The list requests a server saw, as their cursors (`-` for none). */
const cursorsAsked = (server: Tiny) =>
  server.seen.filter((r) => r.url.split("?")[0] === list).map((r) => new URL(r.url, "http://tiny").searchParams.get("cursor") ?? "-")

describe("shoplazza source: the wire", () => {
  it.live("the list is asked for with per_page, the fields a sync uses and the filter; the count with the same filter", () =>
    live(Effect.gen(function*() {
      const server = yield* tiny((path) => {
        if (path === list) return { cursor: "", pre_cursor: "", products: [product(p1, "2024-04-08T07:13:28Z")] }
        if (path === count) return { count: 1 }
        return undefined
      })
      const first = yield* run(config(server.url))
      expect(first.records.map((r) => [r.productId, r.imageId])).toEqual([[p1, "1-img"]])
      expect(Option.getOrThrow(first.last).value).toEqual({ highWater: "2024-04-08T07:13:28.000Z", atMark: { [p1]: "2024-04-08T07:13:28.000Z" } })
      // The product at the mark, unchanged, is skipped.
      const second = yield* run(config(server.url, { pageSize: 50, overlap: "10 seconds" }), { checkpoint: first.last, resumed: false })
      expect(second.records).toEqual([])
      // The token goes in the access-token header, never in the URL.
      expect(server.seen.every((r) => r.token === "t0ken-abc" && !r.url.includes("t0ken"))).toBe(true)
      expect(server.seen.map((r) => r.url)).toEqual([
        "/openapi/2022-01/products/count",
        "/openapi/2022-01/products?per_page=250&fields=id%2Cupdated_at%2Cimages",
        "/openapi/2022-01/products/count?updated_at_min=2024-04-08T07%3A13%3A18Z",
        "/openapi/2022-01/products?per_page=50&fields=id%2Cupdated_at%2Cimages&updated_at_min=2024-04-08T07%3A13%3A18Z"
      ])
    })))

  it.live("a broken image and an image of another product are dead letters; the rest of the product is emitted", () =>
    live(Effect.gen(function*() {
      const bad = image("b", p1, { position: "first" })
      const stray = image("s", p2)
      const { product_id: _p, ...anonymous } = image("n", p1)
      const server = yield* tiny((path) =>
        path === list
          ? { cursor: "", pre_cursor: "", products: [product(p1, "2024-04-08T07:13:28Z", [image("a", p1), bad, stray, anonymous, image("c", p1, { position: 3 })])] }
          : path === count
          ? { count: 1 }
          : undefined
      )
      const result = yield* run(config(server.url))
      expect(result.records.map((r) => [r.productId, r.imageId, r.position, r.url])).toEqual([
        [p1, "a", 1, "https://cdn.shoplazza.com/a.png"],
        [p1, "n", 1, "https://cdn.shoplazza.com/n.png"],
        [p1, "c", 3, "https://cdn.shoplazza.com/c.png"]
      ])
      expect(result.rejected.map((d) => [d.stage, d.payload])).toEqual([["source", bad], ["source", stray]])
      expect(result.rejected[0]!.error).toContain("position")
      expect(result.rejected[1]!.error).toContain(`says it belongs to product ${p2}`)
    })))

  for (
    const [name, last] of [
      ["an empty cursor", { cursor: "", products: [product(p2, "2024-04-08T07:13:29Z")] }],
      ["a missing cursor", { products: [product(p2, "2024-04-08T07:13:29Z")] }],
      ["empty products (with a cursor)", { cursor: "Qw==", products: [] }],
      ["has_more: false (a newer version), with a cursor", { cursor: "Qw==", has_more: false, products: [product(p2, "2024-04-08T07:13:29Z")] }]
    ] as const
  ) {
    it.live(`the list ends at ${name}`, () =>
      live(Effect.gen(function*() {
        const server = yield* tiny((path, query) => {
          if (path === count) return { count: 2 }
          if (path !== list) return undefined
          return query.get("cursor") === null ? { cursor: "QQ==", pre_cursor: "", products: [product(p1, "2024-04-08T07:13:28Z")] } : last
        })
        const result = yield* run(config(server.url))
        expect(cursorsAsked(server)).toEqual(["-", "QQ=="])
        expect(productsRead(result)).toEqual(last.products.length === 0 ? [p1] : [p1, p2])
      })))
  }

  it.live("a cursor the list gave before (not just the last one) is an ApiError, never a loop", () =>
    live(Effect.gen(function*() {
      const next: Record<string, string> = { "-": "QQ==", "QQ==": "Qg==", "Qg==": "QQ==" }
      const server = yield* tiny((path, query) => {
        if (path === count) return { count: 3 }
        if (path !== list) return undefined
        const at = query.get("cursor") ?? "-"
        return { cursor: next[at], pre_cursor: "", products: [product(at === "-" ? p1 : at === "QQ==" ? p2 : p3, "2024-04-08T07:13:28Z")] }
      })
      const { error, result } = yield* runUntil(config(server.url))
      expect(Option.getOrThrow(error)).toMatchObject({ _tag: "ApiError", source: "shoplazza" })
      expect(Option.getOrThrow(error).message).toContain(`gave cursor "QQ==", which it already gave in this run`)
      expect(cursorsAsked(server)).toEqual(["-", "QQ==", "Qg=="])
      // What came before the failure came once and in order; the failed page's product never did.
      const read = productsRead(result)
      expect(read).toEqual([p1, p2].slice(0, read.length))
    })))

  it.live("a cursor that repeats at once is an ApiError too", () =>
    live(Effect.gen(function*() {
      const server = yield* tiny((path) =>
        path === list ? { cursor: "QQ==", pre_cursor: "", products: [product(p1, "2024-04-08T07:13:28Z")] } : path === count ? { count: 1 } : undefined
      )
      const { error } = yield* runUntil(config(server.url))
      expect(Option.getOrThrow(error)).toMatchObject({ _tag: "ApiError" })
      expect(cursorsAsked(server)).toEqual(["-", "QQ=="])
    })))

  it.live("a product listed on two pages is emitted once, the repeat dropped with a warning counted", () =>
    live(Effect.gen(function*() {
      const server = yield* tiny((path, query) => {
        if (path === count) return { count: 3 }
        if (path !== list) return undefined
        return query.get("cursor") === null
          ? { cursor: "QQ==", pre_cursor: "", products: [product(p1, "2024-04-08T07:13:28Z"), product(p2, "2024-04-08T07:13:30Z")] }
          : { cursor: "", pre_cursor: "QQ==", products: [product(p2, "2024-04-08T07:13:30Z"), product(p3, "2024-04-08T07:13:29Z")] }
      })
      const result = yield* run(config(server.url))
      expect(productsRead(result)).toEqual([p1, p2, p3])
      expect(result.records.length).toBe(3)
      expect(result.warnings).toBe(1)
      expect(result.logs.some((l) => l.startsWith("WARN") && l.includes(`product ${p2} was listed a second time in this run`))).toBe(true)
      // Unchanged: the mark is the highest updated_at listed, and the products within the overlap (1 s) before it are named.
      expect(Option.getOrThrow(result.last).value).toEqual({
        highWater: "2024-04-08T07:13:30.000Z",
        atMark: { [p2]: "2024-04-08T07:13:30.000Z", [p3]: "2024-04-08T07:13:29.000Z" }
      })
    })))

  it.live("a list entry without an id breaks the contract: a DecodeError naming the entry", () =>
    live(Effect.gen(function*() {
      const server = yield* tiny((path) =>
        path === list ? { cursor: "", products: [product(p1, "2024-04-08T07:13:28Z"), { title: "no id" }] } : path === count ? { count: 2 } : undefined
      )
      const { error } = yield* runUntil(config(server.url))
      expect(Option.getOrThrow(error)).toMatchObject({ _tag: "DecodeError", source: "shoplazza", path: "products[1]" })
    })))

  it.live("a list page of the wrong shape is a DecodeError naming the path", () =>
    live(Effect.gen(function*() {
      const server = yield* tiny(() => ({ data: { products: [] }, code: "Success" }))
      const { error } = yield* runUntil(config(server.url))
      expect(error._tag === "Some" && error.value).toMatchObject({ _tag: "DecodeError", source: "shoplazza" })
      expect(error._tag === "Some" && error.value.message).toContain("products")
    })))

  it.live("a shop without the count endpoint: a warning, and the run goes on without a progress total", () =>
    live(Effect.gen(function*() {
      const server = yield* tiny((path) => (path === list ? { cursor: "", products: [product(p1, "2024-04-08T07:13:28Z")] } : undefined))
      const result = yield* run(config(server.url))
      expect(productsRead(result)).toEqual([p1])
      expect(result.totals).toEqual([])
      expect(result.warnings).toBe(1)
      expect(result.logs.some((l) => l.includes("the product count is not available"))).toBe(true)
    })))

  it.live("products without a readable updated_at do not move the mark", () =>
    live(Effect.gen(function*() {
      const server = yield* tiny((path) =>
        path === list
          ? { cursor: "", products: [{ id: p1, images: [] }, { id: p2, updated_at: "not a date", images: [] }] }
          : path === count
          ? { count: 2 }
          : undefined
      )
      const first = yield* run(config(server.url))
      expect(Option.getOrThrow(first.last).value).toEqual({ highWater: null })
      const kept = yield* run(config(server.url), { checkpoint: Option.some({ kind: "cursor", value: { highWater: "2024-01-01T00:00:00.000Z" } }), resumed: false })
      expect(Option.getOrThrow(kept.last).value).toEqual({ highWater: "2024-01-01T00:00:00.000Z" })
    })))
})
