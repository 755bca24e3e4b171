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

interface Page {
  readonly cursor: string
  readonly pre_cursor: string
  readonly products: ReadonlyArray<Record<string, unknown> & { id: string }>
}

/** Every page of the list, walking the cursor with `per_page` and more query parameters. */
const walk = async (sim: Simulator.ShoplazzaSimulator, perPage: number, more = "") => {
  const pages: Array<Page> = []
  let cursor = ""
  for (;;) {
    const { status, body } = await get(sim, `/openapi/2022-01/products?per_page=${perPage}${more}${cursor === "" ? "" : `&cursor=${encodeURIComponent(cursor)}`}`)
    expect(status).toBe(200)
    const page = body as Page
    pages.push(page)
    if (page.cursor === "") return pages
    cursor = page.cursor
  }
}

const ids = (pages: ReadonlyArray<Page>) => pages.flatMap((p) => p.products.map((q) => q.id))

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
      const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/
      expect(images.every((i) => iso.test(i.created_at) && i.updated_at >= i.created_at)).toBe(true)
      // A product's updated_at is never older than its images', and the list is in created_at order.
      expect(a.catalogue.every((p) => iso.test(p.updated_at) && p.images.every((i) => i.updated_at <= p.updated_at))).toBe(true)
      expect(a.catalogue.map((p) => p.created_at)).toEqual(a.catalogue.map((p) => p.created_at).sort())
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
  it.live("the product list: per_page and cursor over every product once, in order; an empty cursor at the end; no has_more", () =>
    withSim(noBucket, async (sim) => {
      const pages = await walk(sim, 7)
      expect(ids(pages)).toEqual(sim.catalogue.map((p) => p.id))
      expect(pages.map((p) => p.products.length)).toEqual([7, 7, 7, 7, 2])
      for (const page of pages) expect(Object.keys(page)).toEqual(["cursor", "pre_cursor", "products"])
      // The cursor is the vendor's form: base64 of `<sort key>#<product id>`, the last product of the page.
      expect(Buffer.from(pages[0]!.cursor, "base64").toString("utf8")).toBe(`${sim.catalogue[6]!.created_at}#${sim.catalogue[6]!.id}`)
      expect(pages[0]!.pre_cursor).toBe("")
      expect(Buffer.from(pages[1]!.pre_cursor, "base64").toString("utf8")).toBe(`${sim.catalogue[7]!.created_at}#${sim.catalogue[7]!.id}`)
      // An exact multiple of per_page ends with a full page, not an empty one.
      expect((await walk(sim, 10)).map((p) => p.products.length)).toEqual([10, 10, 10])
      expect((await walk(sim, 250)).length).toBe(1)
    }))

  it.live("per_page defaults to 1, as documented; limit is not a parameter; out of range or a bad cursor is 422", () =>
    withSim(noBucket, async (sim) => {
      expect(((await get(sim, "/openapi/2022-01/products")).body as Page).products.length).toBe(1)
      expect(((await get(sim, "/openapi/2022-01/products?limit=50")).body as Page).products.length).toBe(1)
      for (const bad of ["0", "251", "x"]) {
        const res = await get(sim, `/openapi/2022-01/products?per_page=${bad}`)
        expect(res.status).toBe(422)
        expect(res.body).toEqual({ errors: ["per_page must be an integer from 1 to 250"] })
      }
      for (const bad of ["nonsense", Buffer.from("not#a-cursor").toString("base64")]) {
        expect(await get(sim, `/openapi/2022-01/products?cursor=${encodeURIComponent(bad)}`).then((r) => [r.status, r.body])).toEqual([422, { errors: ["cursor is invalid"] }])
      }
      expect(await get(sim, "/openapi/2022-01/products?updated_at_min=yesterday").then((r) => [r.status, r.body])).toEqual([422, { errors: ["updated_at_min is not a valid date"] }])
    }))

  it.live("every product carries its images, and the main image; fields trims them", () =>
    withSim(noBucket, async (sim) => {
      const full = (await get(sim, "/openapi/2022-01/products?per_page=250")).body as Page
      const product = sim.catalogue.find((p) => p.images.length >= 2)!
      const listed = full.products.find((p) => p.id === product.id)!
      expect(listed["images"]).toEqual(product.images.map(({ bytes: _b, sha256: _s, path: _p, ...wire }) => wire))
      expect(listed["image"]).toEqual({ src: product.images[0]!.src, width: product.images[0]!.width, height: product.images[0]!.height, alt: product.images[0]!.alt, path: product.images[0]!.path.slice(1) })
      expect(full.products.find((p) => p.id === sim.catalogue.find((q) => q.images.length === 0)!.id)!["images"]).toEqual([])
      const trimmed = (await get(sim, "/openapi/2022-01/products?per_page=250&fields=id,updated_at,images")).body as Page
      expect(trimmed.products.map((p) => Object.keys(p))).toEqual(trimmed.products.map(() => ["id", "updated_at", "images"]))
      expect(trimmed.products.find((p) => p.id === product.id)).toEqual({ id: product.id, updated_at: product.updated_at, images: listed["images"] })
      const onlyId = (await get(sim, "/openapi/2022-01/products?per_page=2&fields=id,nonsense")).body as Page
      expect(onlyId.products).toEqual(sim.catalogue.slice(0, 2).map((p) => ({ id: p.id })))
    }))

  it.live("setListImages: a list that leaves images out, for every product or for some", () =>
    withSim(noBucket, async (sim) => {
      const chosen = sim.catalogue[3]!.id
      sim.setListImages([chosen])
      const page = (await get(sim, "/openapi/2022-01/products?per_page=250&fields=id,images")).body as Page
      expect(page.products.filter((p) => !("images" in p)).map((p) => p.id)).toEqual([chosen])
      sim.setListImages(false)
      expect(((await get(sim, "/openapi/2022-01/products?per_page=250")).body as Page).products.every((p) => !("images" in p))).toBe(true)
      sim.setListImages(true)
      expect(((await get(sim, "/openapi/2022-01/products?per_page=250")).body as Page).products.every((p) => "images" in p)).toBe(true)
    }))

  it.live("updated_at_min (and max) filter the list and the count; the cursor walks the filtered list", () =>
    withSim(noBucket, async (sim) => {
      const sorted = [...sim.catalogue].map((p) => p.updated_at).sort()
      const min = sorted[20]!
      const want = sim.catalogue.filter((p) => p.updated_at >= min).map((p) => p.id)
      expect(want.length).toBeGreaterThanOrEqual(10)
      expect(ids(await walk(sim, 3, `&updated_at_min=${encodeURIComponent(min)}`))).toEqual(want)
      expect((await get(sim, `/openapi/2022-01/products/count?updated_at_min=${encodeURIComponent(min)}`)).body).toEqual({ count: want.length })
      // An offset is honoured.
      const shifted = new Date(Date.parse(min)).toISOString().replace(/\.000Z$/, "+00:00")
      expect(ids(await walk(sim, 50, `&updated_at_min=${encodeURIComponent(shifted)}`))).toEqual(want)
      expect(ids(await walk(sim, 50, `&updated_at_max=${encodeURIComponent(min)}`))).toEqual(sim.catalogue.filter((p) => p.updated_at <= min).map((p) => p.id))
      expect((await get(sim, "/openapi/2022-01/products/count")).body).toEqual({ count: 30 })
    }))

  it.live("a product's images and their count: the vendor's fields, a protocol-relative src, the bytes served under it", () =>
    withSim(noBucket, async (sim) => {
      const product = sim.catalogue.find((p) => p.images.length >= 2)!
      const res = await get(sim, `/openapi/2022-01/products/${product.id}/images`)
      expect(res.status).toBe(200)
      const images = (res.body as { images: Array<Record<string, unknown>> }).images
      expect(images.map((i) => Object.keys(i))).toEqual(images.map(() => ["id", "product_id", "position", "src", "width", "height", "alt", "created_at", "updated_at"]))
      expect(images).toEqual(product.images.map(({ bytes: _b, sha256: _s, path: _p, ...wire }) => wire))
      expect((await get(sim, `/openapi/2022-01/products/${product.id}/images/count`)).body).toEqual({ count: product.images.length })
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
      for (const suffix of ["images", "images/count"]) {
        expect(await get(sim, `/openapi/2022-01/products/123/${suffix}`).then((r) => [r.status, r.body])).toEqual([422, { errors: ["product_id has an invalid UUID"] }])
        expect(await get(sim, `/openapi/2022-01/products/00000000-0000-4000-8000-000000000000/${suffix}`).then((r) => [r.status, r.body])).toEqual([
          422,
          { errors: ["Record not found"] }
        ])
      }
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

  it.live("every response carries a fresh Request-Id and the shop's clock as its Date, errors and faults included", () =>
    withSim(noBucket, async (sim) => {
      const ids: Array<string | null> = []
      const dates: Array<string | null> = []
      for (const [path, token] of [
        ["/openapi/2022-01/products", sim.accessToken],
        [`/openapi/2022-01/products/${sim.catalogue[0]!.id}/images`, sim.accessToken],
        ["/openapi/2022-01/products", "wrong"],
        ["/openapi/2022-01/products/123/images", sim.accessToken],
        ["/nowhere", sim.accessToken]
      ] as const) {
        const res = await get(sim, path, token)
        ids.push(res.headers.get("request-id"))
        dates.push(res.headers.get("date"))
      }
      sim.setFaults({ kinds: ["5xx", "429"], rate: 1, maxConsecutive: 100 })
      for (let i = 0; i < 4; i++) {
        const res = await get(sim, "/openapi/2022-01/products")
        expect([429, 500, 502, 503, 504]).toContain(res.status)
        ids.push(res.headers.get("request-id"))
      }
      expect(ids.every((id) => id !== null && uuid.test(id))).toBe(true)
      expect(new Set(ids).size).toBe(ids.length)
      expect(dates.every((d) => d === new Date(sim.now()).toUTCString())).toBe(true)
      expect(sim.now()).toBeGreaterThan(Math.max(...sim.catalogue.map((p) => Date.parse(p.updated_at))))
    }))
})

describe("shoplazza simulator: the leaky bucket", () => {
  it.live("capacity requests at once, then 429 {\"errors\":[\"Too Many Requests\"]} with no Retry-After; it leaks over time", () =>
    withSim({ bucket: { capacity: 3, leakPerSecond: 10 } }, async (sim) => {
      const statuses: Array<number> = []
      for (let i = 0; i < 4; i++) statuses.push((await get(sim, "/openapi/2022-01/products?per_page=1")).status)
      expect(statuses).toEqual([200, 200, 200, 429])
      const throttled = await get(sim, "/openapi/2022-01/products?per_page=1")
      expect(throttled.status).toBe(429)
      expect(throttled.body).toEqual({ errors: ["Too Many Requests"] })
      expect(throttled.headers.get("retry-after")).toBeNull()
      expect(throttled.headers.get("request-id")).toMatch(uuid)
      expect(sim.rateLimited()).toBe(2)
      await new Promise((resolve) => setTimeout(resolve, 250))
      expect((await get(sim, "/openapi/2022-01/products?per_page=1")).status).toBe(200)
      // Image bytes come from the CDN: no token, no budget.
      const image = sim.catalogue.flatMap((p) => p.images)[0]!
      for (let i = 0; i < 5; i++) expect((await fetch(`http:${image.src}`)).status).toBe(200)
    }))

  it.live("consume: another app on the same token drains the budget", () =>
    withSim({ bucket: { capacity: 5, leakPerSecond: 1 } }, async (sim) => {
      expect((await get(sim, "/openapi/2022-01/products?per_page=1")).status).toBe(200)
      sim.consume(5)
      expect((await get(sim, "/openapi/2022-01/products?per_page=1")).status).toBe(429)
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
  it.live("touchProducts: the clock moves on, each product gets a new updated_at, an edited alt, one image fewer and one new", () =>
    withSim(noBucket, async (sim) => {
      const before = sim.catalogue
      const clock = sim.now()
      const touched = sim.touchProducts(5)
      expect(sim.now()).toBe(clock + 60_000)
      const at = new Date(sim.now()).toISOString().replace(/\.000Z$/, "Z")
      expect(touched.length).toBe(5)
      expect(new Set(touched.map((p) => p.id)).size).toBe(5)
      // Spread over the list, and the list order is kept.
      expect(sim.catalogue.map((p) => p.id)).toEqual(before.map((p) => p.id))
      for (const p of touched) {
        const old = before.find((q) => q.id === p.id)!
        expect(p.updated_at).toBe(at)
        expect(p.images.map((i) => i.position)).toEqual(p.images.map((_, k) => k + 1))
        expect(p.images.length).toBe(old.images.length >= 2 ? old.images.length : old.images.length + 1)
        const added = p.images.at(-1)!
        expect(old.images.some((i) => i.id === added.id || i.sha256 === added.sha256)).toBe(false)
        expect(added.created_at).toBe(at)
        if (old.images.length > 0) expect(p.images[0]!.alt).not.toBe(old.images[0]!.alt)
        // The new bytes are served.
        const media = await fetch(`http:${added.src}`)
        expect(createHash("sha256").update(new Uint8Array(await media.arrayBuffer())).digest("hex")).toBe(added.sha256)
      }
      // What the API says now.
      const filtered = await walk(sim, 50, `&updated_at_min=${encodeURIComponent(at)}`)
      expect(ids(filtered)).toEqual(sim.catalogue.filter((p) => touched.some((t) => t.id === p.id)).map((p) => p.id))
      expect(filtered.flatMap((p) => p.products.map((q) => q["images"]))).toEqual(touched.map((p) => p.images.map(({ bytes: _b, sha256: _s, path: _p, ...wire }) => wire)))
      // By id, and with reorder: the product moves to the end of the list.
      const [moved] = sim.touchProducts([sim.catalogue[0]!.id], { reorder: true })
      expect(sim.catalogue.at(-1)!.id).toBe(moved!.id)
      expect(ids(await walk(sim, 7)).at(-1)).toBe(moved!.id)
      expect(() => sim.touchProducts(["00000000-0000-4000-8000-000000000000"])).toThrow(RangeError)
    }))

  it.live("a cursor taken before a product moves to the end still leads on from where it was, and meets the product again", () =>
    withSim(noBucket, async (sim) => {
      const first = (await get(sim, "/openapi/2022-01/products?per_page=5")).body as Page
      const moved = sim.catalogue[2]!.id
      sim.touchProducts([moved], { reorder: true })
      const rest: Array<string> = []
      let cursor = first.cursor
      while (cursor !== "") {
        const page = (await get(sim, `/openapi/2022-01/products?per_page=5&cursor=${encodeURIComponent(cursor)}`)).body as Page
        rest.push(...page.products.map((p) => p.id))
        cursor = page.cursor
      }
      expect(first.products.map((p) => p.id)).toContain(moved)
      expect(rest.at(-1)).toBe(moved)
      expect(rest.length).toBe(26)
    }))

  it.live("deleteProduct: the product leaves the list without shifting later pages, and its images answer 422", () =>
    withSim(noBucket, async (sim) => {
      const first = await get(sim, "/openapi/2022-01/products?per_page=5")
      const cursor = (first.body as Page).cursor
      const victim = sim.catalogue[2]!
      const later = sim.catalogue[6]!
      expect(sim.deleteProduct(victim.id)).toBe(true)
      expect(sim.deleteProduct(victim.id)).toBe(false)
      expect(sim.deleteProduct(later.id)).toBe(true)
      expect(sim.products().map((p) => p.id)).toEqual(sim.catalogue.filter((p) => p.id !== victim.id && p.id !== later.id).map((p) => p.id))
      const images = await get(sim, `/openapi/2022-01/products/${victim.id}/images`)
      expect([images.status, images.body]).toEqual([422, { errors: ["Record not found"] }])
      // The cursor taken before the deletions still leads on from product 5.
      const next = await get(sim, `/openapi/2022-01/products?per_page=5&cursor=${encodeURIComponent(cursor)}`)
      expect((next.body as Page).products.map((p) => p.id)).toEqual(sim.catalogue.slice(5, 11).filter((p) => p.id !== later.id).map((p) => p.id))
      expect(ids(await walk(sim, 4))).toEqual(sim.products().map((p) => p.id))
      expect((await get(sim, "/openapi/2022-01/products/count")).body).toEqual({ count: 28 })
    }))

  it.live("requests() counts per path", () =>
    withSim(noBucket, async (sim) => {
      await get(sim, "/openapi/2022-01/products?per_page=2")
      await get(sim, "/openapi/2022-01/products?per_page=3")
      await get(sim, `/openapi/2022-01/products/${sim.catalogue[0]!.id}/images`)
      expect(sim.requests()).toEqual({
        total: 3,
        faults: 0,
        byPath: { "/openapi/2022-01/products": 2, [`/openapi/2022-01/products/${sim.catalogue[0]!.id}/images`]: 1 }
      })
    }))
})
