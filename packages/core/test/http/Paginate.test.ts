import type * as http from "node:http"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as UndiciClient from "../../src/http/UndiciClient.js"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ApiClient from "../../src/http/ApiClient.js"
import * as Paginate from "../../src/http/Paginate.js"
import { json, start } from "./TestServer.js"

const live = <A, E>(body: Effect.Effect<A, E, HttpClient.HttpClient | Scope.Scope>) =>
  body.pipe(Effect.scoped, Effect.provide(UndiciClient.layer))

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const query = (req: http.IncomingMessage): URLSearchParams => new URL(req.url ?? "/", "http://x").searchParams

// ---------------------------------------------------------------------------------------------
// Token feed (Acceo-like)
// ---------------------------------------------------------------------------------------------

const Lot = Schema.Struct({
  token: Schema.String,
  queuecount: Schema.Number,
  images: Schema.Array(Schema.Struct({ id: Schema.Number }))
})

/** A change feed of entries 1..total, `count` per lot; the token is the last entry's id. */
const feedServer = (total: number, options: { stuck?: boolean } = {}) =>
  start((req, res) => {
    const q = query(req)
    const after = Number(q.get("token") ?? "0")
    const count = Number(q.get("count") ?? "100")
    const ids = Array.from({ length: Math.max(0, Math.min(count, total - after)) }, (_, i) => after + i + 1)
    const last = ids.at(-1) ?? after
    json(res, 200, {
      token: String(options.stuck ? after : last),
      queuecount: total - last,
      images: ids.map((id) => ({ id }))
    })
  })

const feed = (client: ApiClient.ApiClient, startToken: string) =>
  Paginate.tokenFeed({
    source: "acceo",
    start: startToken,
    fetch: (token) => client.getJson("/products/images", { params: { token, count: 3 } }, Lot),
    nextToken: (lot) => lot.token,
    isDone: (lot) => lot.queuecount === 0 || lot.images.length === 0
  })

describe("Paginate.tokenFeed", () => {
  it.effect("sends back the last token until the queue is empty", () =>
    live(Effect.gen(function*() {
      const server = yield* feedServer(7)
      const client = yield* ApiClient.make({ source: "acceo", baseUrl: server.url })
      const pages = yield* collect(feed(client, "0"))
      expect(pages.map((p) => [p.token, p.next, p.value.images.map((i) => i.id), p.done])).toEqual([
        ["0", "3", [1, 2, 3], false],
        ["3", "6", [4, 5, 6], false],
        ["6", "7", [7], true]
      ])
      expect(server.requests.map((r) => query({ url: r.url } as http.IncomingMessage).get("token"))).toEqual(["0", "3", "6"])
    })))

  it.effect("resumes from a saved token", () =>
    live(Effect.gen(function*() {
      const server = yield* feedServer(7)
      const client = yield* ApiClient.make({ source: "acceo", baseUrl: server.url })
      const pages = yield* collect(feed(client, "6"))
      expect(pages.map((p) => p.value.images.map((i) => i.id))).toEqual([[7]])
      const none = yield* collect(feed(client, "7"))
      expect(none.map((p) => [p.value.images.length, p.done])).toEqual([[0, true]])
    })))

  it.effect("fails instead of looping when the token does not move", () =>
    live(Effect.gen(function*() {
      const server = yield* feedServer(7, { stuck: true })
      const client = yield* ApiClient.make({ source: "acceo", baseUrl: server.url })
      const error = yield* Effect.flip(collect(feed(client, "0")))
      expect(error._tag).toBe("ApiError")
      expect(error.message).toContain(`source 'acceo': the feed answered token "0" with the same token`)
      expect(server.requests.length).toBe(1)
    })))

  it.effect("fails when the feed sends back a token it already gave (a cycle), and can run again from scratch", () =>
    live(Effect.gen(function*() {
      // token 0 -> 3 -> 6 -> 3 -> ...: never done.
      const server = yield* start((req, res) => {
        const after = Number(query(req).get("token") ?? "0")
        json(res, 200, { token: after === 6 ? "3" : String(after + 3), queuecount: 99, images: [{ id: after + 1 }] })
      })
      const client = yield* ApiClient.make({ source: "acceo", baseUrl: server.url })
      const stream = feed(client, "0")
      const error = yield* Effect.flip(collect(stream))
      expect(error._tag).toBe("ApiError")
      expect(error.message).toBe(
        `source 'acceo': the feed answered token "6" with token "3", which it already gave in this run, and no end; stopping rather than looping forever`
      )
      expect(server.requests.length).toBe(3)
      // Each run of the stream remembers its own tokens only.
      yield* Effect.flip(collect(stream))
      expect(server.requests.length).toBe(6)
    })))
})

// ---------------------------------------------------------------------------------------------
// Page number (BigCommerce-like: 204 past the end)
// ---------------------------------------------------------------------------------------------

const Products = Schema.Array(Schema.Struct({ id: Schema.Number }))

/** Items 1..total, `limit` per page; past the end: 204 (or `[]` with `emptyArray`). */
const pagedServer = (total: number, options: { emptyArray?: boolean } = {}) =>
  start((req, res) => {
    const q = query(req)
    const page = Number(q.get("page"))
    const limit = Number(q.get("limit"))
    const ids = Array.from({ length: total }, (_, i) => i + 1).slice((page - 1) * limit, page * limit)
    if (ids.length === 0 && !options.emptyArray) {
      res.writeHead(204)
      res.end()
    } else json(res, 200, ids.map((id) => ({ id })))
  })

const byPage = (client: ApiClient.ApiClient, startPage?: number) =>
  Paginate.pageNumber({
    ...(startPage !== undefined ? { start: startPage } : {}),
    fetch: (page) =>
      Effect.map(
        client.requestJson({ path: "/products", params: { page, limit: 2 }, answers: [204] }, Products),
        (reply) => (reply._tag === "Ok" ? Option.some(reply.value) : Option.none())
      ),
    isEmpty: (items) => items.length === 0
  })

describe("Paginate.pageNumber", () => {
  it.effect("walks pages until the 204 end answer", () =>
    live(Effect.gen(function*() {
      const server = yield* pagedServer(5)
      const client = yield* ApiClient.make({ source: "bc", baseUrl: server.url })
      const pages = yield* collect(byPage(client))
      expect(pages.map((p) => [p.page, p.value.map((i) => i.id)])).toEqual([[1, [1, 2]], [2, [3, 4]], [3, [5]]])
      expect(server.requests.length).toBe(4)
    })))

  it.effect("resumes at a page and stops on an empty page", () =>
    live(Effect.gen(function*() {
      const server = yield* pagedServer(6, { emptyArray: true })
      const client = yield* ApiClient.make({ source: "bc", baseUrl: server.url })
      const pages = yield* collect(byPage(client, 2))
      expect(pages.map((p) => [p.page, p.value.map((i) => i.id)])).toEqual([[2, [3, 4]], [3, [5, 6]]])
      expect(server.requests.map((r) => query({ url: r.url } as http.IncomingMessage).get("page"))).toEqual(["2", "3", "4"])
    })))

  it.effect("stops after a page that says it is the last", () =>
    live(Effect.gen(function*() {
      const server = yield* pagedServer(5)
      const client = yield* ApiClient.make({ source: "bc", baseUrl: server.url })
      const pages = yield* collect(
        Paginate.pageNumber({
          fetch: (page) => Effect.map(client.getJson("/products", { params: { page, limit: 2 } }, Products), Option.some),
          isLast: (items) => items.length < 2
        })
      )
      expect(pages.map((p) => p.page)).toEqual([1, 2, 3])
      expect(server.requests.length).toBe(3)
    })))
})

// ---------------------------------------------------------------------------------------------
// Cursor + has_more (Shoplazza-like)
// ---------------------------------------------------------------------------------------------

const CursorPage = Schema.Struct({
  products: Schema.Array(Schema.Struct({ id: Schema.String })),
  cursor: Schema.NullOr(Schema.String),
  has_more: Schema.Boolean
})

const cursorServer = (total: number, options: { repeat?: boolean } = {}) =>
  start((req, res) => {
    const q = query(req)
    const after = q.get("cursor") === null ? 0 : Number(Buffer.from(q.get("cursor")!, "base64url").toString())
    const limit = Number(q.get("limit"))
    const ids = Array.from({ length: total }, (_, i) => i + 1).slice(after, after + limit)
    const end = after + ids.length
    json(res, 200, {
      products: ids.map((id) => ({ id: `p${id}` })),
      cursor: Buffer.from(String(options.repeat ? after : end)).toString("base64url"),
      has_more: end < total
    })
  })

const byCursor = (client: ApiClient.ApiClient, from: Option.Option<string> = Option.none()) =>
  Paginate.cursor({
    source: "shop",
    start: from,
    fetch: (cursor) =>
      client.getJson("/products", { params: { limit: 2, cursor: Option.getOrUndefined(cursor) } }, CursorPage),
    nextCursor: (page) => page.cursor,
    hasMore: (page) => page.has_more
  })

describe("Paginate.cursor", () => {
  it.effect("follows the cursor while has_more, and resumes from a saved cursor", () =>
    live(Effect.gen(function*() {
      const server = yield* cursorServer(5)
      const client = yield* ApiClient.make({ source: "shop", baseUrl: server.url })
      const pages = yield* collect(byCursor(client))
      expect(pages.map((p) => p.value.products.map((x) => x.id))).toEqual([["p1", "p2"], ["p3", "p4"], ["p5"]])
      expect(Option.isNone(pages[0]!.cursor)).toBe(true)
      expect(Option.isNone(pages[2]!.next)).toBe(true)
      const saved = pages[0]!.next
      const resumed = yield* collect(byCursor(client, saved))
      expect(resumed.map((p) => p.value.products.map((x) => x.id))).toEqual([["p3", "p4"], ["p5"]])
      expect(resumed[0]!.cursor).toEqual(saved)
    })))

  it.effect("fails when has_more comes with the same cursor again", () =>
    live(Effect.gen(function*() {
      const server = yield* cursorServer(5, { repeat: true })
      const client = yield* ApiClient.make({ source: "shop", baseUrl: server.url })
      const from = Option.some(Buffer.from("0").toString("base64url"))
      const error = yield* Effect.flip(collect(byCursor(client, from)))
      expect(error.message).toContain("gave the same cursor again")
    })))

  it.effect("fails when a cursor already followed comes back (A -> B -> A)", () =>
    live(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        const cursor = query(req).get("cursor")
        json(res, 200, { products: [{ id: `p-${cursor}` }], cursor: cursor === "B" ? "A" : "B", has_more: true })
      })
      const client = yield* ApiClient.make({ source: "shop", baseUrl: server.url })
      const error = yield* Effect.flip(collect(byCursor(client, Option.some("A"))))
      expect(error._tag).toBe("ApiError")
      expect(error.message).toBe(
        `source 'shop': the API says there are more pages but gave cursor "A", which it already gave in this run; stopping rather than losing or repeating pages`
      )
      expect(server.requests.length).toBe(2)
    })))
})

// ---------------------------------------------------------------------------------------------
// DRF (Akinon-like)
// ---------------------------------------------------------------------------------------------

const Image = Schema.Struct({ pk: Schema.Number })

/**
 * A DRF list of `total` items under /api/v1/channel/1/images/ with absolute `next` links; past
 * the end: 404 Invalid page. Pages can be slowed down (real ms) to let concurrent requests overlap.
 */
const drfServer = (
  total: number,
  options: { nextOrigin?: string; delayMs?: (page: number) => number } = {}
) => {
  let origin = ""
  const effect = start((req, res) => {
    const q = query(req)
    const page = Number(q.get("page") ?? "1")
    const limit = Number(q.get("limit") ?? "10")
    const items = Array.from({ length: total }, (_, i) => i + 1).slice((page - 1) * limit, page * limit)
    const respond = () => {
      if (items.length === 0 && !(page === 1 && total === 0)) return json(res, 404, { detail: "Invalid page." })
      const more = page * limit < total
      const base = options.nextOrigin ?? origin
      json(res, 200, {
        count: total,
        next: more ? `${base}/api/v1/channel/1/images/?limit=${limit}&page=${page + 1}` : null,
        previous: page > 1 ? `${base}/api/v1/channel/1/images/?limit=${limit}&page=${page - 1}` : null,
        results: items.map((pk) => ({ pk }))
      })
    }
    const delay = options.delayMs?.(page) ?? 0
    if (delay > 0) setTimeout(respond, delay)
    else respond()
  })
  return Effect.tap(effect, (server) => Effect.sync(() => void (origin = server.url)))
}

describe("Paginate.drf", () => {
  it.effect("follows next links and yields { page, results, count }", () =>
    live(Effect.gen(function*() {
      const server = yield* drfServer(7)
      const client = yield* ApiClient.make({ source: "channel", baseUrl: `${server.url}/api/v1/channel/1` })
      const pages = yield* collect(Paginate.drf(client, { path: "/images/", item: Image, limit: 3 }))
      expect(pages.map((p) => [p.page, p.results.map((r) => r.pk), p.count])).toEqual([
        [1, [1, 2, 3], 7],
        [2, [4, 5, 6], 7],
        [3, [7], 7]
      ])
      expect(server.requests.map((r) => r.url)).toEqual([
        "/api/v1/channel/1/images/?page=1&limit=3",
        "/api/v1/channel/1/images/?limit=3&page=2",
        "/api/v1/channel/1/images/?limit=3&page=3"
      ])
    })))

  it.effect("resumes from a page, and a start past the end (404 Invalid page.) is an empty list", () =>
    live(Effect.gen(function*() {
      const server = yield* drfServer(7)
      const client = yield* ApiClient.make({ source: "channel", baseUrl: `${server.url}/api/v1/channel/1` })
      const resumed = yield* collect(Paginate.drf(client, { path: "/images/", item: Image, limit: 3, startPage: 2 }))
      expect(resumed.map((p) => p.page)).toEqual([2, 3])
      const past = yield* collect(Paginate.drf(client, { path: "/images/", item: Image, limit: 3, startPage: 9 }))
      expect(past).toEqual([])
    })))

  it.effect("a next link that repeats a page already requested is an ApiError, not thousands of requests", () =>
    live(Effect.gen(function*() {
      let origin = ""
      const server = yield* start((req, res) => {
        const page = Number(query(req).get("page") ?? "1")
        // Page 1 and 2 are fine; page 3 links back to page 2 (parameters in another order).
        const next = page === 3 ? `${origin}/api/v1/channel/1/images/?page=2&limit=3` : `${origin}/api/v1/channel/1/images/?limit=3&page=${page + 1}`
        json(res, 200, { count: 99, next, previous: null, results: [{ pk: page }] })
      })
      origin = server.url
      const client = yield* ApiClient.make({ source: "channel", baseUrl: `${server.url}/api/v1/channel/1` })
      const seen: Array<number> = []
      const error = yield* Effect.flip(
        Stream.runForEach(Paginate.drf(client, { path: "/images/", item: Image, limit: 3 }), (p) => Effect.sync(() => void seen.push(p.page)))
      )
      expect(seen).toEqual([1, 2])
      expect(error._tag).toBe("ApiError")
      expect(error.message).toBe(
        `source 'channel': the API's next link on page 3 points back to page 2, already requested in this list (${server.url}/api/v1/channel/1/images/?page=2&limit=3); stopping rather than reading the same pages forever`
      )
      expect(server.requests.length).toBe(3)
    })))

  it.effect("a next link to the page itself, or to one without a page number already requested, stops at once", () =>
    live(Effect.gen(function*() {
      let origin = ""
      const server = yield* start((req, res) => {
        const url = new URL(req.url!, "http://x")
        const next = url.searchParams.has("cursor") ? `${origin}/q/?cursor=z` : `${origin}/q/?page=1&limit=3`
        json(res, 200, { count: 99, next, previous: null, results: [{ pk: 1 }] })
      })
      origin = server.url
      const client = yield* ApiClient.make({ source: "channel", baseUrl: server.url })
      const self = yield* Effect.flip(collect(Paginate.drf(client, { path: "/q/", item: Image, limit: 3 })))
      expect(self.message).toContain("the API's next link on page 1 points back to page 1, already requested")
      expect(server.requests.length).toBe(1)
      const cursorLoop = yield* Effect.flip(collect(Paginate.drf(client, { path: "/q/", item: Image, limit: 3, params: { cursor: "z" } })))
      expect(cursorLoop.message).toContain("points back to a page, already requested in this list")
      expect(server.requests.length).toBe(3)
    })))

  it.effect("refuses a next link on another origin", () =>
    live(Effect.gen(function*() {
      const server = yield* drfServer(7, { nextOrigin: "https://attacker.example" })
      const client = yield* ApiClient.make({ source: "channel", baseUrl: `${server.url}/api/v1/channel/1` })
      const seen: Array<number> = []
      const error = yield* Effect.flip(
        Stream.runForEach(
          Paginate.drf(client, { path: "/images/", item: Image, limit: 3 }),
          (p) => Effect.sync(() => void seen.push(p.page))
        )
      )
      expect(seen).toEqual([1])
      expect(error._tag).toBe("DecodeError")
      expect(error.message).toContain("https://attacker.example/api/v1/channel/1/images/?limit=3&page=2 is not on")
      expect(server.requests.length).toBe(1)
    })))

  it.effect("with concurrency, fetches pages in parallel but emits them in order, from a resume page", () =>
    live(Effect.gen(function*() {
      // Later pages answer faster, so they complete out of order.
      const server = yield* drfServer(20, { delayMs: (page) => (10 - page) * 15 })
      const client = yield* ApiClient.make({ source: "channel", baseUrl: `${server.url}/api/v1/channel/1` })
      const order: Array<number> = []
      yield* Stream.runForEach(
        Paginate.drf(client, { path: "/images/", item: Image, limit: 2, startPage: 2, concurrency: 3 }),
        (p) => Effect.sync(() => void order.push(p.page))
      )
      expect(order).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10])
      expect(server.load.maxInFlight).toBe(3)
      expect(server.requests.length).toBe(9)
    })))

  it.effect("with concurrency, stops at a 404 when the list shrank under us", () =>
    live(Effect.gen(function*() {
      let total = 10
      const server = yield* start((req, res) => {
        const q = query(req)
        const page = Number(q.get("page"))
        const items = Array.from({ length: total }, (_, i) => i + 1).slice((page - 1) * 2, page * 2)
        if (page === 1) total = 5 // shrinks after the first page
        if (items.length === 0) return json(res, 404, { detail: "Invalid page." })
        json(res, 200, { count: page === 1 ? 10 : total, next: null, results: items.map((pk) => ({ pk })) })
      })
      const client = yield* ApiClient.make({ source: "channel", baseUrl: server.url })
      const pages = yield* collect(Paginate.drf(client, { path: "/i/", item: Image, limit: 2, concurrency: 2 }))
      expect(pages.map((p) => p.page)).toEqual([1, 2, 3])
      expect(pages.at(-1)!.results.map((r) => r.pk)).toEqual([5])
    })))

  it.effect("with concurrency, numbers pages by the size a capping server really uses (max_page_size)", () =>
    live(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        const q = query(req)
        const page = Number(q.get("page"))
        const size = Math.min(3, Number(q.get("limit"))) // the server caps every page at 3
        const all = Array.from({ length: 10 }, (_, i) => i + 1)
        const items = all.slice((page - 1) * size, page * size)
        if (items.length === 0) return json(res, 404, { detail: "Invalid page." })
        json(res, 200, { count: 10, next: page * size < 10 ? `${server.url}/i/?limit=5&page=${page + 1}` : null, results: items.map((pk) => ({ pk })) })
      })
      const client = yield* ApiClient.make({ source: "channel", baseUrl: server.url })
      const pages = yield* collect(Paginate.drf(client, { path: "/i/", item: Image, limit: 5, concurrency: 4 }))
      expect(pages.flatMap((p) => p.results.map((r) => r.pk))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      expect(pages.map((p) => p.page)).toEqual([1, 2, 3, 4])
      // resuming after page 2 under the same cap reads the rest exactly once
      const rest = yield* collect(Paginate.drf(client, { path: "/i/", item: Image, limit: 5, concurrency: 4, startPage: 3 }))
      expect(rest.flatMap((p) => p.results.map((r) => r.pk))).toEqual([7, 8, 9, 10])
    })))
})

// ---------------------------------------------------------------------------------------------
// Link header (RFC 8288)
// ---------------------------------------------------------------------------------------------

const Items = Schema.Array(Schema.Struct({ id: Schema.Number }))

/**
 * Items 1..total, `per_page` a page, under `/api/items`; each page's `Link` header gives `next`
 * (and `prev`/`first`/`last`) as `style` says: absolute URLs, or references relative to the page.
 */
const linkServer = (total: number, style: "absolute" | "relative" = "absolute", link?: (page: number, origin: string) => string | undefined) =>
  Effect.gen(function*() {
    let origin = ""
    const server = yield* start((req, res) => {
      const q = query(req)
      const page = Number(q.get("page") ?? "1")
      const per = Number(q.get("per_page") ?? "2")
      const last = Math.max(1, Math.ceil(total / per))
      const ids = Array.from({ length: total }, (_, i) => i + 1).slice((page - 1) * per, page * per)
      const at = (n: number) => (style === "absolute" ? `${origin}/api/items?per_page=${per}&page=${n}` : `items?page=${n}&per_page=${per}`)
      const links = [
        page > 1 ? `<${at(page - 1)}>; rel="prev"` : undefined,
        page < last ? `<${at(page + 1)}>; rel="next"` : undefined,
        `<${at(last)}>; rel="last"; title="the, last page"`
      ].filter((l) => l !== undefined)
      const header = link === undefined ? links.join(", ") : link(page, origin)
      json(res, 200, ids.map((id) => ({ id })), { ...(header === undefined ? {} : { link: header }), "x-total-count": String(total) })
    })
    origin = server.url
    return server
  })

describe("Paginate.linkHeader", () => {
  it.effect("follows rel=\"next\" (absolute or relative to the page) until a page has none", () =>
    live(Effect.gen(function*() {
      for (const style of ["absolute", "relative"] as const) {
        const server = yield* linkServer(5, style)
        const client = yield* ApiClient.make({ source: "shop", baseUrl: `${server.url}/api` })
        const pages = yield* collect(Paginate.linkHeader(client, { path: "/items", params: { per_page: 2 }, schema: Items }))
        expect(pages.map((p) => p.value.map((i) => i.id))).toEqual([[1, 2], [3, 4], [5]])
        expect(pages.map((p) => Option.isSome(p.next))).toEqual([true, true, false])
        expect(pages[0]!.next).toEqual(Option.some(`${server.url}/api/items?${style === "absolute" ? "per_page=2&page=2" : "page=2&per_page=2"}`))
        expect(pages[0]!.headers["x-total-count"]).toBe("5")
        expect(server.requests.map((r) => new URL(r.url, server.url).searchParams.get("page"))).toEqual([null, "2", "3"])
      }
    })))

  it.effect("resumes from a saved next URL", () =>
    live(Effect.gen(function*() {
      const server = yield* linkServer(5)
      const client = yield* ApiClient.make({ source: "shop", baseUrl: `${server.url}/api` })
      const all = yield* collect(Paginate.linkHeader(client, { path: "/items", params: { per_page: 2 }, schema: Items }))
      const rest = yield* collect(Paginate.linkHeader(client, { path: "/items", schema: Items, resume: all[0]!.next }))
      expect(rest.map((p) => p.value.map((i) => i.id))).toEqual([[3, 4], [5]])
    })))

  it.effect("finds next among several links and relations, case-insensitively", () =>
    live(Effect.gen(function*() {
      const server = yield* linkServer(4, "absolute", (page, origin) =>
        page === 1 ? `<${origin}/api/items?page=1>; rel="first prev", <${origin}/api/items?page=2>; rel="NEXT last"` : undefined)
      const client = yield* ApiClient.make({ source: "shop", baseUrl: `${server.url}/api` })
      const pages = yield* collect(Paginate.linkHeader(client, { path: "/items", schema: Items }))
      expect(pages.map((p) => p.value.map((i) => i.id))).toEqual([[1, 2], [3, 4]])
    })))

  it.effect("a next link on another origin is refused (DecodeError), never requested", () =>
    live(Effect.gen(function*() {
      const server = yield* linkServer(4, "absolute", () => `<http://169.254.169.254/latest/meta-data?page=2>; rel="next"`)
      const client = yield* ApiClient.make({ source: "shop", baseUrl: `${server.url}/api` })
      const error = yield* Effect.flip(collect(Paginate.linkHeader(client, { path: "/items", schema: Items })))
      expect(error._tag).toBe("DecodeError")
      expect(error.message).toContain("is not on http://127.0.0.1")
      expect(server.requests).toHaveLength(1)
    })))

  it.effect("a next link already requested is an ApiError (a loop ends at once)", () =>
    live(Effect.gen(function*() {
      // Page 2 links back to page 1 with the query in another order.
      const server = yield* linkServer(6, "absolute", (page, origin) =>
        `<${origin}/api/items?${page === 1 ? "page=2&per_page=2" : "per_page=2&page=1"}>; rel="next"`)
      const client = yield* ApiClient.make({ source: "shop", baseUrl: `${server.url}/api` })
      const error = yield* Effect.flip(collect(Paginate.linkHeader(client, { path: "/items", params: { page: 1, per_page: 2 }, schema: Items })))
      expect(error._tag).toBe("ApiError")
      expect(error.message).toContain("already requested in this list")
      expect(server.requests).toHaveLength(2)
    })))

  it.effect("an unreadable Link header is a DecodeError with a snippet", () =>
    live(Effect.gen(function*() {
      const server = yield* linkServer(4, "absolute", () => `page=2; rel=next`)
      const client = yield* ApiClient.make({ source: "shop", baseUrl: `${server.url}/api` })
      const error = yield* Effect.flip(collect(Paginate.linkHeader(client, { path: "/items", schema: Items })))
      expect(error._tag).toBe("DecodeError")
      expect(error.message).toContain("Link header")
      expect(error._tag === "DecodeError" ? error.snippet : undefined).toBe("page=2; rel=next")
    })))

  it.effect("a declared end-of-list status ends the stream without a page", () =>
    live(Effect.gen(function*() {
      const server = yield* start((_req, res) => json(res, 404, { message: "Not Found" }))
      const client = yield* ApiClient.make({ source: "shop", baseUrl: server.url })
      const pages = yield* collect(Paginate.linkHeader(client, { path: "/items", schema: Items, endOfList: [404] }))
      expect(pages).toEqual([])
    })))
})
