import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Simulator from "../src/Simulator.js"

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** A GET with the simulator's token (or `token`), answered as status, headers and parsed JSON (or text). */
const get = async (sim: Simulator.ShoplazzaSimulator, path: string, token: string | null = sim.accessToken) => {
  const res = await fetch(`${sim.url}${path}`, { headers: token === null ? {} : { "access-token": token } })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body }
}

/** Runs a test with a simulator that is closed afterwards. */
const withSim = (options: Simulator.SimulatorOptions, body: (sim: Simulator.ShoplazzaSimulator) => Promise<void>) =>
  Effect.scoped(Effect.flatMap(Simulator.make(options), (sim) => Effect.promise(() => body(sim))))

const noBucket = { bucket: false } as const

/** Every product of the list, walking the cursor with `limit`. */
const walk = async (sim: Simulator.ShoplazzaSimulator, limit: number) => {
  const pages: Array<{ ids: Array<string>; cursor: string; has_more: boolean }> = []
  let cursor = ""
  for (;;) {
    const { status, body } = await get(sim, `/openapi/2022-01/products?limit=${limit}${cursor === "" ? "" : `&cursor=${encodeURIComponent(cursor)}`}`)
    expect(status).toBe(200)
    const page = body as { products: Array<{ id: string }>; cursor: string; has_more: boolean }
    pages.push({ ids: page.products.map((p) => p.id), cursor: page.cursor, has_more: page.has_more })
    if (!page.has_more) return pages
    cursor = page.cursor
  }
}

describe("shoplazza simulator: the catalogue", () => {
  it.live("is the same for the same seed and has the awkward cases", () =>
    Effect.gen(function*() {
      const a = yield* Effect.promise(() => Simulator.startShoplazzaSimulator({ seed: 3 }))
      const b = yield* Effect.promise(() => Simulator.startShoplazzaSimulator({ seed: 3 }))
      const c = yield* Effect.promise(() => Simulator.startShoplazzaSimulator({ seed: 4 }))
      const strip = (sim: Simulator.ShoplazzaSimulator) =>
        sim.catalogue.map((p) => ({ ...p, images: p.images.map(({ src: _s, bytes: _b, ...rest }) => rest) }))
      expect(strip(a)).toEqual(strip(b))
      expect(strip(a)).not.toEqual(strip(c))
      yield* Effect.promise(() => Promise.all([a.close(), b.close(), c.close()]))
      const images = a.catalogue.flatMap((p) => p.images)
      expect(a.catalogue.length).toBe(30)
      expect(a.catalogue.every((p) => uuid.test(p.id))).toBe(true)
      expect(images.every((i) => uuid.test(i.id))).toBe(true)
      expect(a.catalogue.some((p) => p.images.length === 0)).toBe(true)
      expect(a.catalogue.some((p) => p.images.length >= 12)).toBe(true)
      expect(images.some((i) => i.alt === "")).toBe(true)
      expect(images.every((i) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(i.created_at) && i.updated_at >= i.created_at)).toBe(true)
      // The same bytes twice within a product (what dedupe-by-hash is for).
      expect(a.catalogue.some((p) => new Set(p.images.map((i) => i.sha256)).size < p.images.length)).toBe(true)
      for (const p of a.catalogue) expect(p.images.map((i) => i.position)).toEqual(p.images.map((_, k) => k + 1))
    }))

  it.live("refuses a host that is not loopback", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.tryPromise(() => Simulator.startShoplazzaSimulator({ host: "0.0.0.0" })))
      expect(String(error.cause)).toContain("only listens on a loopback address")
    }))
})

describe("shoplazza simulator: the API", () => {
  it.live("the product list: cursor pagination over every product once, in order, has_more false at the end", () =>
    withSim(noBucket, async (sim) => {
      const pages = await walk(sim, 7)
      expect(pages.flatMap((p) => p.ids)).toEqual(sim.catalogue.map((p) => p.id))
      expect(pages.map((p) => p.ids.length)).toEqual([7, 7, 7, 7, 2])
      expect(pages.map((p) => p.has_more)).toEqual([true, true, true, true, false])
      expect(pages.at(-1)!.cursor).toBe("")
      // No limit: 10 per page. A limit out of range or a bad cursor: 422 in the {"errors":[...]} shape.
      expect(((await get(sim, "/openapi/2022-01/products")).body as { products: Array<unknown> }).products.length).toBe(10)
      for (const bad of ["0", "251", "x"]) {
        const res = await get(sim, `/openapi/2022-01/products?limit=${bad}`)
        expect(res.status).toBe(422)
        expect(res.body).toEqual({ errors: ["limit must be an integer from 1 to 250"] })
      }
      expect(await get(sim, "/openapi/2022-01/products?cursor=nonsense").then((r) => [r.status, r.body])).toEqual([422, { errors: ["cursor is invalid"] }])
      expect((await walk(sim, 250)).length).toBe(1)
    }))

  it.live("a product's images: the vendor's fields, a protocol-relative src, the bytes served under it", () =>
    withSim(noBucket, async (sim) => {
      const product = sim.catalogue.find((p) => p.images.length >= 2)!
      const res = await get(sim, `/openapi/2022-01/products/${product.id}/images`)
      expect(res.status).toBe(200)
      const images = (res.body as { images: Array<Record<string, unknown>> }).images
      expect(images.map((i) => Object.keys(i))).toEqual(images.map(() => ["id", "product_id", "position", "src", "width", "height", "alt", "created_at", "updated_at"]))
      expect(images).toEqual(product.images.map(({ bytes: _b, sha256: _s, path: _p, ...wire }) => wire))
      for (const image of product.images) {
        expect(image.src).toBe(`//127.0.0.1:${sim.port}${image.path}`)
        const media = await fetch(`http:${image.src}`)
        expect(media.headers.get("content-type")).toMatch(/^image\/(png|jpeg)$/)
        expect(createHash("sha256").update(new Uint8Array(await media.arrayBuffer())).digest("hex")).toBe(image.sha256)
      }
      const empty = sim.catalogue.find((p) => p.images.length === 0)!
      expect((await get(sim, `/openapi/2022-01/products/${empty.id}/images`)).body).toEqual({ images: [] })
    }))

  it.live("422 for an id that is not a UUID and for one that does not exist", () =>
    withSim(noBucket, async (sim) => {
      expect(await get(sim, "/openapi/2022-01/products/123/images").then((r) => [r.status, r.body])).toEqual([
        422,
        { errors: ["product_id has an invalid UUID"] }
      ])
      expect(await get(sim, "/openapi/2022-01/products/00000000-0000-4000-8000-000000000000/images").then((r) => [r.status, r.body])).toEqual([
        422,
        { errors: ["Record not found"] }
      ])
    }))

  it.live("auth: the access-token header; a missing or wrong token is 401 in the {\"error\":...} shape", () =>
    withSim(noBucket, async (sim) => {
      expect(await get(sim, "/openapi/2022-01/products", null).then((r) => [r.status, r.body])).toEqual([401, { error: "Unauthorized" }])
      expect(await get(sim, "/openapi/2022-01/products", "wrong").then((r) => [r.status, r.body])).toEqual([401, { error: "Unauthorized" }])
      const res = await fetch(`${sim.url}/openapi/2022-01/products`, { headers: { "Access-Token": sim.accessToken } })
      expect(res.status).toBe(200)
    }))

  it.live("other versions and routes are 404, other methods 405", () =>
    withSim(noBucket, async (sim) => {
      expect((await get(sim, "/openapi/2025-06/products")).status).toBe(404)
      expect((await get(sim, "/openapi/2022-01/orders")).status).toBe(404)
      const post = await fetch(`${sim.url}/openapi/2022-01/products`, { method: "POST", headers: { "access-token": sim.accessToken } })
      expect(post.status).toBe(405)
    }))

  it.live("every response carries a fresh Request-Id, errors and faults included", () =>
    withSim(noBucket, async (sim) => {
      const ids: Array<string | null> = []
      for (const [path, token] of [
        ["/openapi/2022-01/products", sim.accessToken],
        [`/openapi/2022-01/products/${sim.catalogue[0]!.id}/images`, sim.accessToken],
        ["/openapi/2022-01/products", "wrong"],
        ["/openapi/2022-01/products/123/images", sim.accessToken],
        ["/nowhere", sim.accessToken]
      ] as const) {
        ids.push((await get(sim, path, token)).headers.get("request-id"))
      }
      sim.setFaults({ kinds: ["5xx", "429"], rate: 1, maxConsecutive: 100 })
      for (let i = 0; i < 4; i++) {
        const res = await get(sim, "/openapi/2022-01/products")
        expect([429, 500, 502, 503, 504]).toContain(res.status)
        ids.push(res.headers.get("request-id"))
      }
      expect(ids.every((id) => id !== null && uuid.test(id))).toBe(true)
      expect(new Set(ids).size).toBe(ids.length)
    }))
})

describe("shoplazza simulator: the leaky bucket", () => {
  it.live("capacity requests at once, then 429 {\"errors\":[\"Too Many Requests\"]} with no Retry-After; it leaks over time", () =>
    withSim({ bucket: { capacity: 3, leakPerSecond: 10 } }, async (sim) => {
      const statuses: Array<number> = []
      for (let i = 0; i < 4; i++) statuses.push((await get(sim, "/openapi/2022-01/products?limit=1")).status)
      expect(statuses).toEqual([200, 200, 200, 429])
      const throttled = await get(sim, "/openapi/2022-01/products?limit=1")
      expect(throttled.status).toBe(429)
      expect(throttled.body).toEqual({ errors: ["Too Many Requests"] })
      expect(throttled.headers.get("retry-after")).toBeNull()
      expect(throttled.headers.get("request-id")).toMatch(uuid)
      expect(sim.rateLimited()).toBe(2)
      await new Promise((resolve) => setTimeout(resolve, 250))
      expect((await get(sim, "/openapi/2022-01/products?limit=1")).status).toBe(200)
      // Image bytes come from the CDN: no token, no budget.
      const image = sim.catalogue.flatMap((p) => p.images)[0]!
      for (let i = 0; i < 5; i++) expect((await fetch(`http:${image.src}`)).status).toBe(200)
    }))

  it.live("consume: another app on the same token drains the budget", () =>
    withSim({ bucket: { capacity: 5, leakPerSecond: 1 } }, async (sim) => {
      expect((await get(sim, "/openapi/2022-01/products?limit=1")).status).toBe(200)
      sim.consume(5)
      expect((await get(sim, "/openapi/2022-01/products?limit=1")).status).toBe(429)
      expect(sim.rateLimited()).toBe(1)
    }))

  it.live("the 429 fault looks like the bucket's answer: no Retry-After", () =>
    withSim({ bucket: false, faults: { kinds: ["429"], rate: 1, retryAfterSeconds: 3 } }, async (sim) => {
      const res = await get(sim, "/openapi/2022-01/products")
      expect(res.status).toBe(429)
      expect(res.body).toEqual({ errors: ["Too Many Requests"] })
      expect(res.headers.get("retry-after")).toBeNull()
      expect(sim.rateLimited()).toBe(0)
      expect(sim.requests().faults).toBe(1)
    }))
})

describe("shoplazza simulator: test controls", () => {
  it.live("deleteProduct: the product leaves the list without shifting later pages, and its images answer 422", () =>
    withSim(noBucket, async (sim) => {
      const first = await get(sim, "/openapi/2022-01/products?limit=5")
      const cursor = (first.body as { cursor: string }).cursor
      const victim = sim.catalogue[2]!
      const later = sim.catalogue[6]!
      expect(sim.deleteProduct(victim.id)).toBe(true)
      expect(sim.deleteProduct(victim.id)).toBe(false)
      expect(sim.deleteProduct(later.id)).toBe(true)
      expect(sim.products().map((p) => p.id)).toEqual(sim.catalogue.filter((p) => p !== victim && p !== later).map((p) => p.id))
      const images = await get(sim, `/openapi/2022-01/products/${victim.id}/images`)
      expect([images.status, images.body]).toEqual([422, { errors: ["Record not found"] }])
      // The cursor taken before the deletions still leads on from product 5.
      const next = await get(sim, `/openapi/2022-01/products?limit=5&cursor=${encodeURIComponent(cursor)}`)
      expect((next.body as { products: Array<{ id: string }> }).products.map((p) => p.id)).toEqual(
        sim.catalogue.slice(5, 11).filter((p) => p !== later).map((p) => p.id)
      )
      expect((await walk(sim, 4)).flatMap((p) => p.ids)).toEqual(sim.products().map((p) => p.id))
    }))

  it.live("requests() counts per path", () =>
    withSim(noBucket, async (sim) => {
      await get(sim, "/openapi/2022-01/products?limit=2")
      await get(sim, "/openapi/2022-01/products?limit=3")
      await get(sim, `/openapi/2022-01/products/${sim.catalogue[0]!.id}/images`)
      expect(sim.requests()).toEqual({
        total: 3,
        faults: 0,
        byPath: { "/openapi/2022-01/products": 2, [`/openapi/2022-01/products/${sim.catalogue[0]!.id}/images`]: 1 }
      })
    }))
})
