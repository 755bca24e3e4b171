import { createHash } from "node:crypto"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type BigCommerceSimulator, make, startBigCommerceSimulator } from "@effetl/source-bigcommerce/simulator"

const imageKeys = [
  "id",
  "product_id",
  "image_file",
  "zoom_url",
  "standard_url",
  "thumbnail_url",
  "tiny_url",
  "is_thumbnail",
  "sort_order",
  "description",
  "date_created"
]

const api = (sim: BigCommerceSimulator, rest: string): string => `${sim.url}/stores/${sim.storeHash}/v2/${rest}`

const get = async (sim: BigCommerceSimulator, url: string, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { headers: { "X-Auth-Token": sim.accessToken, Accept: "application/json", ...headers } })
  const text = await response.text()
  return { status: response.status, headers: response.headers, text, body: text === "" ? undefined : (JSON.parse(text) as unknown) }
}

/** The wire record the simulator should serve for a catalogue image. */
const wire = (image: BigCommerceSimulator["catalogue"][number]) =>
  Object.fromEntries(imageKeys.map((key) => [key, image[key as keyof typeof image]]))

const rateHeaderNames = ["x-rate-limit-requests-quota", "x-rate-limit-requests-left", "x-rate-limit-time-window-ms", "x-rate-limit-time-reset-ms"]

describe("catalogue and list endpoints", () => {
  let sim: BigCommerceSimulator
  beforeAll(async () => {
    sim = await startBigCommerceSimulator()
  })
  afterAll(() => sim.close())

  it("listens on 127.0.0.1 with the default store, token and quota", () => {
    expect(sim.url).toBe(`http://127.0.0.1:${sim.port}`)
    expect(sim.storeHash).toBe("s1mst0re")
    expect(sim.accessToken).toBe("sim-token")
    expect([sim.quota, sim.windowMs]).toEqual([150, 30_000])
  })

  it("is deterministic for a seed", async () => {
    const again = await startBigCommerceSimulator()
    const other = await startBigCommerceSimulator({ seed: 8 })
    try {
      const strip = (s: BigCommerceSimulator) => s.catalogue.map((i) => JSON.parse(JSON.stringify(wire(i)).replaceAll(s.url, "")) as unknown)
      expect(strip(again)).toEqual(strip(sim))
      expect(strip(other)).not.toEqual(strip(sim))
    } finally {
      await again.close()
      await other.close()
    }
  })

  it("GET /products pages the products by id; limit defaults to 50; above 250 it is a 413; past the end is a 204 with no body", async () => {
    const first = await get(sim, api(sim, "products?page=1&limit=15"))
    expect(first.status).toBe(200)
    expect((first.body as Array<{ id: number }>).map((p) => p.id)).toEqual(sim.products.slice(0, 15).map((p) => p.id))
    const third = await get(sim, api(sim, "products?page=3&limit=15"))
    expect((third.body as Array<{ id: number }>).map((p) => p.id)).toEqual(sim.products.slice(30, 40).map((p) => p.id))
    const past = await get(sim, api(sim, "products?page=4&limit=15"))
    expect(past.status).toBe(204)
    expect(past.text).toBe("")
    for (const name of rateHeaderNames) expect(past.headers.get(name)).not.toBeNull()

    const big = await startBigCommerceSimulator({ products: 300 })
    try {
      expect(((await get(big, api(big, "products"))).body as Array<unknown>).length).toBe(50)
      expect(((await get(big, api(big, "products?limit=250&page=2"))).body as Array<unknown>).length).toBe(50)
      for (const path of ["products?limit=251", "products?limit=1000&page=2", `products/${big.products[0]!.id}/images?limit=251`]) {
        const refused = await get(big, api(big, path))
        expect(refused.status).toBe(413)
        expect(refused.body).toEqual([{ status: 413, message: expect.stringContaining("at most 250") }])
      }
    } finally {
      await big.close()
    }
  })

  it("GET /products/{id}/images: exactly the product's images, sorted by id, paged; 204 for a product with none", async () => {
    const many = sim.products.find((p) => p.images.length > 8)!
    const all = sim.catalogue.filter((i) => i.product_id === many.id)
    expect(all.map((i) => i.id)).toEqual([...all.map((i) => i.id)].sort((a, b) => a - b))
    const page1 = await get(sim, api(sim, `products/${many.id}/images?limit=4&page=1`))
    const page3 = await get(sim, api(sim, `products/${many.id}/images?limit=4&page=3`))
    expect(page1.body).toEqual(all.slice(0, 4).map(wire))
    expect(page3.body).toEqual(all.slice(8, 12).map(wire))
    expect((await get(sim, api(sim, `products/${many.id}/images?limit=4&page=${Math.ceil(all.length / 4) + 1}`))).status).toBe(204)
    const none = sim.products.find((p) => p.images.length === 0)!
    const empty = await get(sim, api(sim, `products/${none.id}/images`))
    expect([empty.status, empty.text]).toEqual([204, ""])
    const one = await get(sim, api(sim, `products/${many.id}/images/${all[2]!.id}`))
    expect(one.body).toEqual(wire(all[2]!))
  })

  it("serves sort_order ties, RFC 2822 dates and nullable descriptions", async () => {
    const products = sim.products.map((p) => sim.catalogue.filter((i) => i.product_id === p.id))
    expect(products.some((images) => new Set(images.map((i) => i.sort_order)).size < images.length)).toBe(true)
    for (const image of sim.catalogue.slice(0, 20)) {
      expect(image.date_created).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/)
      expect(Date.parse(image.date_created)).toBe(image.created)
    }
    // Exactly one thumbnail per product with images: the one shown first.
    for (const images of products.filter((list) => list.length > 0)) {
      expect(images.filter((i) => i.is_thumbnail).length).toBe(1)
      expect(images.find((i) => i.is_thumbnail)!.sort_order).toBe(Math.min(...images.map((i) => i.sort_order)))
    }
  })

  it("GET /products/images/count and /products/count", async () => {
    expect((await get(sim, api(sim, "products/images/count"))).body).toEqual({ count: sim.catalogue.length })
    expect((await get(sim, api(sim, "products/count"))).body).toEqual({ count: sim.products.length })
  })

  it("every URL variant serves the image's bytes (outside the quota); the rest of the CDN is a 404", async () => {
    const image = sim.catalogue[3]!
    for (const url of [image.zoom_url, image.standard_url, image.thumbnail_url, image.tiny_url]) {
      expect(url.startsWith(`${sim.url}/s-${sim.storeHash}/products/${image.product_id}/images/${image.id}/`)).toBe(true)
      const response = await fetch(url)
      expect(response.status).toBe(200)
      expect(response.headers.get("x-rate-limit-requests-left")).toBeNull()
      expect(createHash("sha256").update(new Uint8Array(await response.arrayBuffer())).digest("hex")).toBe(image.sha256)
    }
    expect((await fetch(`${sim.url}/s-${sim.storeHash}/products/1/images/1/nothing.jpg`)).status).toBe(404)
  })

  it("errors have BigCommerce's shape: unknown routes, another store, a non-JSON Accept", async () => {
    expect(await get(sim, api(sim, "nothing"))).toMatchObject({ status: 404, body: [{ status: 404, message: "The requested resource was not found." }] })
    expect((await get(sim, `${sim.url}/stores/other/v2/products`)).status).toBe(404)
    expect((await get(sim, api(sim, "products"), { Accept: "application/xml" })).status).toBe(406)
  })
})

describe("auth", () => {
  it("refuses a missing or wrong X-Auth-Token with 401 in BigCommerce's shape; such requests do not spend the quota", async () => {
    const sim = await startBigCommerceSimulator({ quota: 5 })
    try {
      for (const headers of [{}, { "X-Auth-Token": "wrong" }] as Array<Record<string, string>>) {
        const response = await fetch(api(sim, "products"), { headers })
        expect(response.status).toBe(401)
        const body = (await response.json()) as Array<{ status: number; message: string }>
        expect(body[0]!.status).toBe(401)
        expect(response.headers.get("x-rate-limit-requests-left")).toBe("5")
      }
      expect((await get(sim, api(sim, "products"))).headers.get("x-rate-limit-requests-left")).toBe("4")
    } finally {
      await sim.close()
    }
  })
})

describe("the quota: a fixed window with four headers on every answer", () => {
  it("counts every API request, answers the documented 429 (Time-Reset-Ms and X-Retry-After only) when the quota is spent, and opens a new window after it", async () => {
    // A window long enough that three requests fit in it on a loaded machine.
    const sim = await startBigCommerceSimulator({ quota: 3, windowMs: 3000 })
    try {
      const lefts: Array<string | null> = []
      for (let i = 0; i < 3; i++) {
        const r = await get(sim, api(sim, "products/count"))
        expect(r.status).toBe(200)
        expect(r.headers.get("x-rate-limit-requests-quota")).toBe("3")
        expect(r.headers.get("x-rate-limit-time-window-ms")).toBe("3000")
        const reset = Number(r.headers.get("x-rate-limit-time-reset-ms"))
        expect(reset).toBeGreaterThan(0)
        expect(reset).toBeLessThanOrEqual(3000)
        lefts.push(r.headers.get("x-rate-limit-requests-left"))
      }
      expect(lefts).toEqual(["2", "1", "0"])
      expect(sim.lowestLeft()).toBe(0)
      const throttled = await get(sim, api(sim, "products"))
      expect(throttled.status).toBe(429)
      expect(throttled.headers.get("x-rate-limit-requests-left")).toBeNull()
      const resetMs = Number(throttled.headers.get("x-rate-limit-time-reset-ms"))
      expect(resetMs).toBeGreaterThan(0)
      expect(throttled.headers.get("x-retry-after")).toBe(String(Math.ceil(resetMs / 1000)))
      expect((throttled.body as Array<{ status: number }>)[0]!.status).toBe(429)
      expect(sim.throttled()).toBe(1)
      await new Promise((resolve) => setTimeout(resolve, Number(throttled.headers.get("x-rate-limit-time-reset-ms")) + 5))
      const fresh = await get(sim, api(sim, "products"))
      expect(fresh.status).toBe(200)
      expect(fresh.headers.get("x-rate-limit-requests-left")).toBe("2")
    } finally {
      await sim.close()
    }
  })

  it("consume(n): another app spends the window's quota", async () => {
    const sim = await startBigCommerceSimulator({ quota: 10, windowMs: 60_000 })
    try {
      expect((await get(sim, api(sim, "products/count"))).headers.get("x-rate-limit-requests-left")).toBe("9")
      sim.consume(7)
      expect((await get(sim, api(sim, "products/count"))).headers.get("x-rate-limit-requests-left")).toBe("1")
      sim.consume(50)
      expect((await get(sim, api(sim, "products/count"))).status).toBe(429)
      // Our own lowest stays what our requests saw.
      expect(sim.lowestLeft()).toBe(1)
    } finally {
      await sim.close()
    }
  })
})

describe("filters, fields and changes between runs", () => {
  const ids = (body: unknown) => (body as Array<{ id: number }>).map((p) => p.id)

  it("min_id and max_id select an id range (on the list and the count); the list stays sorted by id", async () => {
    const sim = await startBigCommerceSimulator({ products: 30 })
    try {
      const [a, b] = [sim.products[4]!.id, sim.products[12]!.id]
      const want = sim.products.filter((p) => p.id >= a && p.id <= b).map((p) => p.id)
      expect(ids((await get(sim, api(sim, `products?min_id=${a}&max_id=${b}&limit=250`))).body)).toEqual(want)
      expect((await get(sim, api(sim, `products/count?min_id=${a}&max_id=${b}`))).body).toEqual({ count: want.length })
      expect(ids((await get(sim, api(sim, `products?min_id=${b + 1}&limit=3`))).body)).toEqual(sim.products.filter((p) => p.id > b).slice(0, 3).map((p) => p.id))
      expect((await get(sim, api(sim, `products?min_id=${sim.products.at(-1)!.id + 1}`))).status).toBe(204)
      expect(await get(sim, api(sim, "products?min_id=abc"))).toMatchObject({ status: 400, body: [{ status: 400 }] })
    } finally {
      await sim.close()
    }
  })

  it("products carry date_modified; min_date_modified and max_date_modified (RFC 2822 or ISO-8601) filter on it, inclusive", async () => {
    const sim = await startBigCommerceSimulator({ products: 30 })
    try {
      const list = (await get(sim, api(sim, "products?limit=250"))).body as Array<{ id: number; date_modified: string }>
      expect(list.map((p) => p.date_modified)).toEqual(sim.products.map((p) => p.date_modified))
      for (const p of sim.products) expect(Date.parse(p.date_modified)).toBe(p.modified)
      const cut = [...sim.products].sort((x, y) => x.modified - y.modified)[15]!
      const since = sim.products.filter((p) => p.modified >= cut.modified).map((p) => p.id)
      for (const text of [cut.date_modified, new Date(cut.modified).toISOString()]) {
        expect(ids((await get(sim, api(sim, `products?limit=250&min_date_modified=${encodeURIComponent(text)}`))).body)).toEqual(since)
        expect(ids((await get(sim, api(sim, `products?limit=250&max_date_modified=${encodeURIComponent(text)}`))).body)).toEqual(
          sim.products.filter((p) => p.modified <= cut.modified).map((p) => p.id)
        )
      }
      expect((await get(sim, api(sim, `products/count?min_date_modified=${encodeURIComponent(cut.date_modified)}`))).body).toEqual({ count: since.length })
      expect((await get(sim, api(sim, "products?min_date_modified=yesterday"))).status).toBe(400)
    } finally {
      await sim.close()
    }
  })

  it("include= returns the named fields plus the mandatory ones (id, name, date_modified, primary_image); exclude= drops fields but not those", async () => {
    const sim = await startBigCommerceSimulator({ products: 3 })
    try {
      const included = ((await get(sim, api(sim, "products?include=id,date_modified"))).body as Array<Record<string, unknown>>)[0]!
      expect(Object.keys(included).sort()).toEqual(["date_modified", "id", "metadata", "name", "primary_image"])
      const summary = ((await get(sim, api(sim, `products/${sim.products[0]!.id}?include=@summary`))).body as Record<string, unknown>)
      expect(Object.keys(summary)).toContain("calculated_price")
      expect(Object.keys(summary)).not.toContain("description")
      const excluded = ((await get(sim, api(sim, "products?exclude=description,id"))).body as Array<Record<string, unknown>>)[0]!
      expect(Object.keys(excluded)).not.toContain("description")
      expect(Object.keys(excluded)).toContain("id")
      expect(Object.keys(excluded)).toContain("weight")
    } finally {
      await sim.close()
    }
  })

  it("touchProducts(n) gives n products a new image and date_modified = now; addProducts(n) adds products after the highest id", async () => {
    const sim = await startBigCommerceSimulator({ products: 10 })
    try {
      const before = sim.products
      const imagesBefore = sim.catalogue.length
      const start = Math.floor(Date.now() / 1000) * 1000
      const touched = sim.touchProducts(3)
      expect(touched.length).toBe(3)
      expect(sim.catalogue.length).toBe(imagesBefore + 3)
      for (const id of touched) {
        const now = sim.products.find((p) => p.id === id)!
        expect(now.modified).toBeGreaterThanOrEqual(start)
        expect(now.images.length).toBe(before.find((p) => p.id === id)!.images.length + 1)
        const served = await get(sim, api(sim, `products/${id}/images?limit=250`))
        expect((served.body as Array<{ id: number }>).map((i) => i.id)).toEqual(now.images)
      }
      const since = encodeURIComponent(new Date(start).toISOString())
      expect(ids((await get(sim, api(sim, `products?limit=250&min_date_modified=${since}`))).body)).toEqual(touched)
      const added = sim.addProducts(2)
      expect(added[0]).toBeGreaterThan(before.at(-1)!.id)
      expect(ids((await get(sim, api(sim, `products?limit=250&min_id=${added[0]}`))).body)).toEqual(added)
      expect(sim.touchProducts([touched[0]!, 999_999])).toEqual([touched[0]])
    } finally {
      await sim.close()
    }
  })

  it("dates: iso8601 writes ISO-8601 instead of RFC 2822", async () => {
    const sim = await startBigCommerceSimulator({ products: 3, dates: "iso8601" })
    try {
      const product = ((await get(sim, api(sim, "products"))).body as Array<{ date_modified: string; date_created: string }>)[0]!
      expect(product.date_modified).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/)
      expect(product.date_created).toMatch(/^\d{4}-\d{2}-\d{2}T/)
      expect(sim.catalogue[0]!.date_created).toMatch(/^\d{4}-\d{2}-\d{2}T/)
    } finally {
      await sim.close()
    }
  })
})

describe("deleteProduct", () => {
  it("a deleted product leaves the list and the counts; its images endpoint answers 404 in BigCommerce's shape", async () => {
    const sim = await startBigCommerceSimulator({ products: 5 })
    try {
      const victim = sim.products.find((p) => p.images.length > 0)!
      sim.deleteProduct(victim.id)
      const list = await get(sim, api(sim, "products"))
      expect((list.body as Array<{ id: number }>).map((p) => p.id)).toEqual(sim.products.filter((p) => p !== victim).map((p) => p.id))
      expect((await get(sim, api(sim, "products/images/count"))).body).toEqual({ count: sim.catalogue.length - victim.images.length })
      const gone = await get(sim, api(sim, `products/${victim.id}/images`))
      expect(gone.status).toBe(404)
      expect(gone.body).toEqual([{ status: 404, message: "The requested resource was not found." }])
    } finally {
      await sim.close()
    }
  })
})

describe("faults and options", () => {
  it("injects the kit's faults from a seed; a 429 fault has Time-Reset-Ms, the first and every other one X-Retry-After too", async () => {
    const sim = await startBigCommerceSimulator({ windowMs: 100, faults: { kinds: ["429"], rate: 1, maxConsecutive: 1, retryAfterSeconds: 60 } })
    try {
      const first = await get(sim, api(sim, "products"))
      expect(first.status).toBe(429)
      expect(first.headers.get("x-rate-limit-time-reset-ms")).not.toBeNull()
      expect(first.headers.get("x-retry-after")).toBe("60")
      expect(first.headers.get("x-rate-limit-requests-left")).toBeNull()
      // A retry before the X-Retry-After ran out is throttled again (with what is left of it), and counted.
      const early = await get(sim, api(sim, "products"))
      expect(early.status).toBe(429)
      expect(Number(early.headers.get("x-retry-after"))).toBeGreaterThan(0)
      expect(sim.early()).toBe(1)
      expect(sim.requests().faults).toBe(1)
      expect(sim.throttled()).toBe(0)
    } finally {
      await sim.close()
    }
    const other = await startBigCommerceSimulator({ windowMs: 100, faults: { kinds: ["429"], rate: 1, maxConsecutive: 1, retryAfterSeconds: 0 } })
    try {
      expect((await get(other, api(other, "products"))).headers.get("x-retry-after")).toBe("0")
      expect((await get(other, api(other, "products"))).status).toBe(200)
      const second = await get(other, api(other, "products/count"))
      expect([second.status, second.headers.get("x-retry-after")]).toEqual([429, null])
      expect(second.headers.get("x-rate-limit-time-reset-ms")).not.toBeNull()
      expect(other.early()).toBe(0)
      other.setFaults({ kinds: ["5xx"], rate: 1, maxConsecutive: 5 })
      expect((await fetch(api(other, "products"), { headers: { "X-Auth-Token": other.accessToken } })).status).toBeGreaterThanOrEqual(500)
    } finally {
      await other.close()
    }
  })

  it("refuses a non-loopback host and bad options", async () => {
    await expect(startBigCommerceSimulator({ host: "0.0.0.0" })).rejects.toThrow(/loopback/)
    await expect(startBigCommerceSimulator({ storeHash: "a/b" })).rejects.toThrow(/storeHash/)
    await expect(startBigCommerceSimulator({ quota: 0 })).rejects.toThrow(/quota/)
    await expect(startBigCommerceSimulator({ windowMs: -1 })).rejects.toThrow(/windowMs/)
  })

  it("make is scoped: the simulator is closed when the scope ends", async () => {
    const url = await Effect.runPromise(Effect.scoped(Effect.map(make({ products: 1 }), (sim) => sim.url)))
    await expect(fetch(`${url}/stores/s1mst0re/v2/products`)).rejects.toThrow()
  })
})
