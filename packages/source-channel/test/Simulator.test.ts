import { createHash } from "node:crypto"
import * as http from "node:http"
import * as zlib from "node:zlib"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type CatalogueImage,
  type ChannelSimulator,
  imageSources,
  make,
  productTypes,
  startChannelSimulator
} from "@effetl/source-channel/simulator"

const plainKeys = [
  "pk",
  "product",
  "source",
  "modified_date",
  "created_date",
  "height",
  "width",
  "hash",
  "status",
  "is_active",
  "order",
  "object_id",
  "content_type"
]

interface Page {
  readonly count: number
  readonly next: string | null
  readonly previous: string | null
  readonly results: ReadonlyArray<Record<string, unknown>>
}

/** The plain wire record the simulator should serve for a catalogue image. */
const plain = (image: CatalogueImage): Record<string, unknown> =>
  Object.fromEntries(plainKeys.map((key) => [key, image[key as keyof CatalogueImage]]))

const authHeader: Record<string, string> = { Authorization: "Token sim-token" }

const api = (sim: ChannelSimulator, rest = ""): string => `${sim.url}/api/v1/channel/${sim.channelId}/product_images/${rest}`

const get = async (sim: ChannelSimulator, url: string, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { headers: { Authorization: `Token ${sim.token}`, ...headers }, redirect: "manual" })
  const text = await response.text()
  return { status: response.status, headers: response.headers, text, body: text === "" ? undefined : (JSON.parse(text) as unknown) }
}

const getPage = async (sim: ChannelSimulator, url: string): Promise<Page> => {
  const response = await get(sim, url)
  expect(response.status).toBe(200)
  return response.body as Page
}

/** Follows `next` links from `url` and returns every page. */
const walk = async (sim: ChannelSimulator, url: string): Promise<Array<Page>> => {
  const pages: Array<Page> = []
  let next: string | null = url
  while (next !== null) {
    const page = await getPage(sim, next)
    pages.push(page)
    next = page.next
  }
  return pages
}

const pks = (pages: ReadonlyArray<Page>): Array<number> => pages.flatMap((page) => page.results.map((r) => r.pk as number))

type RawResult =
  | { readonly kind: "response"; readonly status: number; readonly headers: http.IncomingHttpHeaders; readonly body: Buffer; readonly complete: boolean }
  | { readonly kind: "error"; readonly code: string | undefined }

/** A raw HTTP GET on a fresh connection, reporting resets and cut bodies instead of throwing. */
const raw = (url: string, headers: Record<string, string> = {}): Promise<RawResult> =>
  new Promise((resolve) => {
    let settled = false
    const settle = (result: RawResult): void => {
      if (!settled) {
        settled = true
        resolve(result)
      }
    }
    const request = http.get(url, { headers, agent: false }, (response) => {
      const chunks: Array<Buffer> = []
      const result = (complete: boolean): RawResult => ({
        kind: "response",
        status: response.statusCode ?? 0,
        headers: response.headers,
        body: Buffer.concat(chunks),
        complete
      })
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => settle(result(true)))
      response.on("error", () => settle(result(false)))
      response.on("close", () => settle(result(response.complete)))
    })
    request.on("error", (error: NodeJS.ErrnoException) => settle({ kind: "error", code: error.code }))
  })

describe("catalogue and list endpoint", () => {
  let sim: ChannelSimulator
  beforeAll(async () => {
    sim = await startChannelSimulator()
  })
  afterAll(() => sim.close())

  it("listens on 127.0.0.1 with the default channel and token", () => {
    expect(sim.url).toBe(`http://127.0.0.1:${sim.port}`)
    expect(sim.port).toBeGreaterThan(0)
    expect(sim.channelId).toBe(5)
    expect(sim.token).toBe("sim-token")
  })

  it("walks every page through `next` links and gets exactly the catalogue, ordered by pk", async () => {
    const pages = await walk(sim, api(sim, "?limit=7"))
    const results = pages.flatMap((page) => page.results)
    expect(results).toEqual(sim.catalogue.map(plain))
    expect(pages.length).toBe(Math.ceil(sim.catalogue.length / 7))
    for (const page of pages) expect(page.count).toBe(sim.catalogue.length)
    expect(sim.catalogue.map((image) => image.pk)).toEqual(sim.catalogue.map((_, i) => i + 1))
  })

  it("chains `next` and `previous` as absolute URLs, keeping the other query parameters", async () => {
    const first = await getPage(sim, api(sim, "?limit=5"))
    expect(first.previous).toBeNull()
    expect(first.next).toBe(api(sim, "?limit=5&page=2"))
    const second = await getPage(sim, first.next!)
    // DRF drops `page` from the link back to page 1.
    expect(second.previous).toBe(api(sim, "?limit=5"))
    expect(second.next).toBe(api(sim, "?limit=5&page=3"))
    const third = await getPage(sim, second.next!)
    expect(third.previous).toBe(api(sim, "?limit=5&page=2"))
    const back = await getPage(sim, third.previous!)
    expect(back).toEqual(second)
    const last = await getPage(sim, api(sim, "?limit=5&page=last"))
    expect(last.next).toBeNull()
    expect(last.results.at(-1)?.pk).toBe(sim.catalogue.length)
  })

  it("builds links from the request's Host header", async () => {
    const result = await raw(api(sim, "?limit=3"), { ...authHeader, Host: "omnitron.example:8443" })
    expect(result.kind).toBe("response")
    if (result.kind !== "response") return
    const page = JSON.parse(result.body.toString("utf8")) as Page
    expect(page.next).toBe(`http://omnitron.example:8443/api/v1/channel/5/product_images/?limit=3&page=2`)
  })

  it("uses 10 rows when `limit` is absent or not a positive integer", async () => {
    for (const query of ["", "?limit=abc", "?limit=0", "?limit=-3"]) {
      const page = await getPage(sim, api(sim, query))
      expect(page.results.map((r) => r.pk)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    }
  })

  it("answers 404 Invalid page for a page past the end, below 1 or not an integer", async () => {
    const lastPage = Math.ceil(sim.catalogue.length / 10)
    expect((await get(sim, api(sim, `?page=${lastPage}`))).status).toBe(200)
    for (const page of [`${lastPage + 1}`, "0", "-1", "abc", "1.5"]) {
      const response = await get(sim, api(sim, `?page=${page}`))
      expect(response.status).toBe(404)
      expect(response.body).toEqual({ detail: "Invalid page." })
    }
  })

  it("answers an empty first page for a filter that matches nothing", async () => {
    const response = await get(sim, api(sim, "?id__in=999999"))
    expect(response.body).toEqual({ count: 0, next: null, previous: null, results: [] })
    expect((await get(sim, api(sim, "?id__in=999999&page=2"))).status).toBe(404)
  })

  it("serves plain records with exactly the vendor's fields", async () => {
    const page = await getPage(sim, api(sim, "?limit=50"))
    for (const record of page.results) expect(Object.keys(record).sort()).toEqual([...plainKeys].sort())
    const one = await get(sim, api(sim, "3/"))
    expect(one.status).toBe(200)
    expect(one.body).toEqual(plain(sim.catalogue[2]!))
  })

  it("serves detailed records with an absolute media `image` URL and the `alt` text", async () => {
    const pages = await walk(sim, api(sim, "detailed/?limit=100"))
    const results = pages.flatMap((page) => page.results)
    expect(results).toEqual(sim.catalogue.map((image) => ({ ...plain(image), image: `${sim.url}${image.path}`, alt: image.alt })))
    const alts = results.map((r) => r.alt)
    expect(alts).toContain(null)
    expect(alts).toContain("First line\nsecond line")
    expect(alts).toContain("Sneaker \"Classic\" – side view")
    expect(alts.some((alt) => typeof alt === "string" && /\p{Extended_Pictographic}/u.test(alt))).toBe(true)
    expect(alts.some((alt) => typeof alt === "string" && /\p{Script=Cyrillic}|\p{Script=Han}|\p{Script=Arabic}/u.test(alt))).toBe(true)
    const one = await get(sim, api(sim, "4/detailed/"))
    const image = sim.catalogue[3]!
    expect(one.body).toEqual({ ...plain(image), image: `${sim.url}${image.path}`, alt: image.alt })
    for (const result of results) expect(String(result.image)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/media\/products\/.+\.(png|jpg)$/)
  })

  it("answers 404 Not found for an unknown image, channel or route", async () => {
    for (const path of [api(sim, "999999/"), api(sim, "999999/detailed/"), api(sim, "abc/"), api(sim, "1/other/")]) {
      const response = await get(sim, path)
      expect(response.status).toBe(404)
      expect(response.body).toEqual({ detail: "Not found." })
    }
    for (const url of [`${sim.url}/api/v1/channel/6/product_images/`, `${sim.url}/api/v1/channel/5/products/`, `${sim.url}/`]) {
      const response = await get(sim, url)
      expect(response.status).toBe(404)
      expect(response.body).toEqual({ detail: "Not found." })
    }
  })

  it("redirects a path without its trailing slash, as Django's APPEND_SLASH does", async () => {
    const response = await get(sim, `${sim.url}/api/v1/channel/5/product_images?limit=2`)
    expect(response.status).toBe(301)
    expect(response.headers.get("location")).toBe("/api/v1/channel/5/product_images/?limit=2")
  })

  it("refuses methods other than GET, HEAD and OPTIONS", async () => {
    for (const method of ["POST", "DELETE", "PATCH"]) {
      const response = await fetch(api(sim, "1/"), { method, headers: authHeader })
      expect(response.status).toBe(405)
      expect(response.headers.get("allow")).toBe("GET, HEAD, OPTIONS")
      expect(await response.json()).toEqual({ detail: `Method "${method}" not allowed.` })
    }
    expect((await fetch(api(sim), { method: "OPTIONS", headers: authHeader })).status).toBe(200)
    const head = await fetch(api(sim), { method: "HEAD", headers: authHeader })
    expect(head.status).toBe(200)
    expect(Number(head.headers.get("content-length"))).toBeGreaterThan(0)
  })

  it("generates the awkward shapes a source has to cope with", () => {
    const catalogue = sim.catalogue
    const byProduct = new Map<number, Array<CatalogueImage>>()
    for (const image of catalogue) byProduct.set(image.product, [...(byProduct.get(image.product) ?? []), image])
    expect(sim.products.map((p) => p.id)).toEqual(Array.from({ length: 40 }, (_, i) => 1001 + i))
    // 1..8 images per product, some products with none.
    expect(sim.products.some((p) => p.images.length === 0)).toBe(true)
    for (const images of byProduct.values()) expect(images.length).toBeLessThanOrEqual(8)
    for (const product of sim.products) expect(product.images).toEqual((byProduct.get(product.id) ?? []).map((i) => i.pk))
    // Identical bytes twice within a product, and the same bytes in two products.
    const withinDuplicate = [...byProduct.values()].some((images) => new Set(images.map((i) => i.sha256)).size < images.length)
    expect(withinDuplicate).toBe(true)
    const owners = new Map<string, Set<number>>()
    for (const image of catalogue) owners.set(image.sha256, (owners.get(image.sha256) ?? new Set()).add(image.product))
    expect([...owners.values()].some((products) => products.size > 1)).toBe(true)
    // Gappy orders and ties.
    expect([...byProduct.values()].some((images) => new Set(images.map((i) => i.order)).size < images.length)).toBe(true)
    expect([...byProduct.values()].some((images) => images.some((a) => images.some((b) => b.order - a.order >= 10)))).toBe(true)
    // Nulls, statuses, sources and date formats.
    expect(catalogue.some((i) => i.width === null && i.height === null)).toBe(true)
    expect(catalogue.some((i) => i.hash === null)).toBe(true)
    expect(catalogue.some((i) => i.source === null)).toBe(true)
    // `source` takes every value of the vendor's enum (unified, integration, seller_center) and null.
    expect(new Set(catalogue.map((i) => i.source))).toEqual(new Set([null, ...imageSources]))
    // `status` is the vendor's enum, active or disabled: never anything else.
    expect(new Set(catalogue.map((i) => i.status))).toEqual(new Set(["active", "disabled"]))
    expect(catalogue.some((i) => i.status === "disabled" && !i.is_active)).toBe(true)
    for (const image of catalogue) expect(image.is_active).toBe(image.status === "active")
    const dates = catalogue.flatMap((i) => [i.created_date, i.modified_date])
    for (const date of dates) {
      expect(date).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?(Z|\+03:00)$/)
      expect(Number.isNaN(Date.parse(date))).toBe(false)
    }
    expect(dates.some((d) => d.endsWith("Z"))).toBe(true)
    expect(dates.some((d) => d.endsWith("+03:00"))).toBe(true)
    for (const image of catalogue) expect(Date.parse(image.modified_date)).toBeGreaterThanOrEqual(Date.parse(image.created_date))
    // One product's images spread over several pages of 10.
    const spread = Math.max(...[...byProduct.values()].map((images) => new Set(images.map((i) => Math.ceil(i.pk / 10))).size))
    expect(spread).toBeGreaterThanOrEqual(3)
  })
})

describe("filters", () => {
  let sim: ChannelSimulator
  beforeAll(async () => {
    sim = await startChannelSimulator({ products: 30, seed: 11 })
  })
  afterAll(() => sim.close())

  const expected = (keep: (image: CatalogueImage) => boolean): Array<number> => sim.catalogue.filter(keep).map((i) => i.pk)
  const productOf = (image: CatalogueImage) => sim.products.find((p) => p.id === image.product)!
  const filtered = async (query: string, rest = ""): Promise<Array<number>> =>
    pks(await walk(sim, api(sim, `${rest}?limit=1000&${query}`)))

  it("filters by `product`", async () => {
    const product = sim.products.find((p) => p.images.length >= 3)!
    expect(await filtered(`product=${product.id}`)).toEqual(product.images)
  })

  it("filters by `product__pk__in` (comma-separated)", async () => {
    const ids = [sim.products[0]!.id, sim.products[4]!.id, sim.products[9]!.id]
    const result = await filtered(`product__pk__in=${ids.join(",")}`)
    expect(result).toEqual(expected((i) => ids.includes(i.product)))
    expect(result.length).toBeGreaterThan(0)
  })

  it("filters by `id__in` (comma-separated)", async () => {
    expect(await filtered("id__in=9,2,5,7777")).toEqual([2, 5, 9])
  })

  it("filters by `is_seller_product` in any case, and ignores an unrecognised value as django-filter does", async () => {
    const sellers = expected((i) => productOf(i).is_seller_product)
    const others = expected((i) => !productOf(i).is_seller_product)
    expect(sellers.length).toBeGreaterThan(0)
    expect(others.length).toBeGreaterThan(0)
    for (const value of ["true", "True", "1"]) expect(await filtered(`is_seller_product=${value}`)).toEqual(sellers)
    for (const value of ["false", "False", "0"]) expect(await filtered(`is_seller_product=${value}`)).toEqual(others)
    expect(await filtered("is_seller_product=maybe")).toEqual(expected(() => true))
  })

  it("filters by `product_type`, repeated or comma-separated", async () => {
    const types = new Set(sim.products.map((p) => p.product_type))
    expect(types.size).toBeGreaterThanOrEqual(4)
    for (const type of types) expect(productTypes).toContain(type)
    expect(await filtered("product_type=pack")).toEqual(expected((i) => productOf(i).product_type === "pack"))
    const packOrBundle = expected((i) => ["pack", "bundle"].includes(productOf(i).product_type))
    expect(await filtered("product_type=pack&product_type=bundle")).toEqual(packOrBundle)
    expect(await filtered("product_type=pack,bundle")).toEqual(packOrBundle)
    expect(await filtered("product_type=offer")).toEqual([])
  })

  it("combines filters and keeps them in the `next` link", async () => {
    const first = await getPage(sim, api(sim, "?limit=2&product_type=simple,grouped&is_seller_product=false"))
    expect(first.next).toBe(api(sim, "?is_seller_product=false&limit=2&page=2&product_type=simple%2Cgrouped"))
    const all = pks(await walk(sim, api(sim, "?limit=2&product_type=simple,grouped&is_seller_product=false")))
    expect(all).toEqual(expected((i) => ["simple", "grouped"].includes(productOf(i).product_type) && !productOf(i).is_seller_product))
  })

  it("applies filters to the detailed list, the queues and single-image lookups", async () => {
    const product = sim.products.find((p) => p.images.length >= 2)!
    expect(await filtered(`product=${product.id}`, "detailed/")).toEqual(product.images)
    const queued = new Set([...sim.queues.inserts, ...sim.queues.updates])
    const someQueued = sim.catalogue.find((i) => queued.has(i.pk))!
    expect(await filtered(`product=${someQueued.product}`, "inserts_or_updates/")).toEqual(
      expected((i) => i.product === someQueued.product && queued.has(i.pk))
    )
    const image = sim.catalogue.find((i) => i.product !== product.id)!
    expect((await get(sim, api(sim, `${image.pk}/?product=${product.id}`))).status).toBe(404)
    expect((await get(sim, api(sim, `${image.pk}/?product=${image.product}`))).status).toBe(200)
  })

  it("answers 400 with DRF field errors for invalid filter values", async () => {
    const cases: Array<[string, unknown]> = [
      ["id__in=abc", { id__in: ["Enter a whole number."] }],
      ["id__in=1,x,3", { id__in: ["Enter a whole number."] }],
      ["product=shoe", { product: ["Enter a whole number."] }],
      ["product__pk__in=1001,1.5", { product__pk__in: ["Enter a whole number."] }],
      ["product_type=widget", { product_type: ["Select a valid choice. widget is not one of the available choices."] }],
      ["product=x&id__in=y", { product: ["Enter a whole number."], id__in: ["Enter a whole number."] }]
    ]
    for (const [query, body] of cases) {
      const response = await get(sim, api(sim, `?${query}`))
      expect(response.status).toBe(400)
      expect(response.body).toEqual(body)
    }
  })
})

describe("auth", () => {
  let sim: ChannelSimulator
  beforeAll(async () => {
    sim = await startChannelSimulator({ token: "s3cret", channelId: 42, products: 5 })
  })
  afterAll(() => sim.close())

  const attempt = async (authorization: string | undefined) => {
    const response = await fetch(api(sim), { headers: authorization === undefined ? {} : { Authorization: authorization } })
    return { status: response.status, challenge: response.headers.get("www-authenticate"), body: await response.json() }
  }

  it("answers 401 with a Token challenge for missing, malformed or wrong credentials", async () => {
    const cases: Array<[string | undefined, string]> = [
      [undefined, "Authentication credentials were not provided."],
      ["Bearer s3cret", "Authentication credentials were not provided."],
      ["Token", "Invalid token header. No credentials provided."],
      ["Token s3 cret", "Invalid token header. Token string should not contain spaces."],
      ["Token wrong", "Invalid token."],
      ["Token sim-token", "Invalid token."]
    ]
    for (const [authorization, detail] of cases) {
      expect(await attempt(authorization)).toEqual({ status: 401, challenge: "Token", body: { detail } })
    }
  })

  it("accepts the configured token (the keyword in any case) on the configured channel", async () => {
    expect((await attempt("Token s3cret")).status).toBe(200)
    expect((await attempt("token s3cret")).status).toBe(200)
    expect(sim.url.endsWith(`:${sim.port}`)).toBe(true)
    const other = await fetch(`${sim.url}/api/v1/channel/5/product_images/`, { headers: { Authorization: "Token s3cret" } })
    expect(other.status).toBe(404)
  })

  it("serves media without credentials", async () => {
    const response = await fetch(`${sim.url}${sim.catalogue[0]!.path}`)
    expect(response.status).toBe(200)
  })
})

describe("media", () => {
  let sim: ChannelSimulator
  beforeAll(async () => {
    sim = await startChannelSimulator({ products: 25, seed: 3 })
  })
  afterAll(() => sim.close())

  it("serves bytes whose sha256 matches the catalogue, with type and length, at the detailed `image` URL", async () => {
    const records = (await walk(sim, api(sim, "detailed/?limit=1000"))).flatMap((page) => page.results)
    expect(records.length).toBe(sim.catalogue.length)
    for (const [index, record] of records.entries()) {
      const image = sim.catalogue[index]!
      const response = await fetch(String(record.image))
      const bytes = new Uint8Array(await response.arrayBuffer())
      expect(response.status).toBe(200)
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(image.sha256)
      expect(Buffer.from(bytes).equals(Buffer.from(image.bytes))).toBe(true)
      expect(response.headers.get("content-length")).toBe(String(bytes.length))
      expect(response.headers.get("content-type")).toBe(image.path.endsWith(".png") ? "image/png" : "image/jpeg")
      if (image.hash !== null) expect(createHash("md5").update(bytes).digest("hex")).toBe(image.hash)
    }
  })

  it("serves real PNG and JPEG files whose dimensions match width and height", () => {
    const kinds = new Set<string>()
    for (const image of sim.catalogue) {
      const bytes = Buffer.from(image.bytes)
      const size = image.path.endsWith(".png") ? pngSize(bytes) : jpegSize(bytes)
      kinds.add(image.path.slice(-3))
      if (image.width !== null) expect(size).toEqual({ width: image.width, height: image.height })
    }
    expect(kinds).toEqual(new Set(["png", "jpg"]))
  })

  it("answers HEAD with the headers of GET and no body", async () => {
    const image = sim.catalogue[0]!
    const response = await fetch(`${sim.url}${image.path}`, { method: "HEAD" })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-length")).toBe(String(image.bytes.length))
    expect((await response.arrayBuffer()).byteLength).toBe(0)
  })

  it("answers 404 for unknown media", async () => {
    expect((await fetch(`${sim.url}/media/products/nope.png`)).status).toBe(404)
    expect((await fetch(`${sim.url}${sim.catalogue[0]!.path}.txt`)).status).toBe(404)
  })
})

/** Checks a PNG's signature, every chunk's CRC and the inflated pixel data, and returns its size. */
const pngSize = (bytes: Buffer): { width: number; height: number } => {
  expect(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true)
  let offset = 8
  const types: Array<string> = []
  const idat: Array<Buffer> = []
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset)
    const type = bytes.subarray(offset + 4, offset + 8).toString("latin1")
    const data = bytes.subarray(offset + 8, offset + 8 + length)
    expect(bytes.readUInt32BE(offset + 8 + length)).toBe(zlib.crc32(bytes.subarray(offset + 4, offset + 8 + length)))
    types.push(type)
    if (type === "IDAT") idat.push(data)
    offset += 12 + length
  }
  expect(types[0]).toBe("IHDR")
  expect(types.at(-1)).toBe("IEND")
  const width = bytes.readUInt32BE(16)
  const height = bytes.readUInt32BE(20)
  expect(zlib.inflateSync(Buffer.concat(idat)).length).toBe((width * 3 + 1) * height)
  return { width, height }
}

/** Checks a JPEG's SOI/EOI markers and walks its segments to the baseline SOF0, returning its size. */
const jpegSize = (bytes: Buffer): { width: number; height: number } => {
  expect([bytes[0], bytes[1]]).toEqual([0xff, 0xd8])
  expect([bytes.at(-2), bytes.at(-1)]).toEqual([0xff, 0xd9])
  let offset = 2
  for (;;) {
    expect(bytes[offset]).toBe(0xff)
    const marker = bytes[offset + 1]!
    const length = bytes.readUInt16BE(offset + 2)
    if (marker === 0xc0) return { height: bytes.readUInt16BE(offset + 5), width: bytes.readUInt16BE(offset + 7) }
    expect(marker).not.toBe(0xda)
    offset += 2 + length
  }
}

describe("pending-change queues", () => {
  let sim: ChannelSimulator
  beforeAll(async () => {
    sim = await startChannelSimulator({ products: 30 })
  })
  afterAll(() => sim.close())

  it("serves deterministic subsets, their union, ordered by pk, and reading does not drain them", async () => {
    const { inserts, updates } = sim.queues
    const all = new Set(sim.catalogue.map((i) => i.pk))
    expect(inserts.length).toBeGreaterThan(0)
    expect(updates.length).toBeGreaterThan(0)
    expect(inserts.length).toBeLessThan(all.size)
    for (const pk of [...inserts, ...updates]) expect(all.has(pk)).toBe(true)
    expect(inserts.some((pk) => updates.includes(pk))).toBe(true)
    const union = [...new Set([...inserts, ...updates])].sort((a, b) => a - b)
    for (let round = 0; round < 2; round++) {
      const insertPages = await walk(sim, api(sim, "inserts/?limit=4"))
      expect(pks(insertPages)).toEqual([...inserts])
      expect(insertPages.flatMap((page) => page.results)).toEqual(inserts.map((pk) => plain(sim.catalogue[pk - 1]!)))
      expect(pks(await walk(sim, api(sim, "updates/?limit=4")))).toEqual([...updates])
      expect(pks(await walk(sim, api(sim, "inserts_or_updates/?limit=4")))).toEqual(union)
    }
    const past = await get(sim, api(sim, `inserts/?limit=4&page=${Math.ceil(inserts.length / 4) + 1}`))
    expect(past.body).toEqual({ detail: "Invalid page." })
  })
})

describe("determinism", () => {
  it("builds the same catalogue, products and queues from the same seed, and another from another seed", async () => {
    const a = await startChannelSimulator({ seed: 99, products: 20 })
    const b = await startChannelSimulator({ seed: 99, products: 20 })
    const c = await startChannelSimulator({ seed: 100, products: 20 })
    try {
      expect(b.catalogue).toEqual(a.catalogue)
      expect(b.products).toEqual(a.products)
      expect(b.queues).toEqual(a.queues)
      expect(c.catalogue.map((i) => i.sha256)).not.toEqual(a.catalogue.map((i) => i.sha256))
      // The served records differ only in the port of the media URLs.
      const pageA = (await get(a, api(a, "detailed/?limit=1000"))).text.replaceAll(a.url, "")
      const pageB = (await get(b, api(b, "detailed/?limit=1000"))).text.replaceAll(b.url, "")
      expect(pageB).toBe(pageA)
    } finally {
      await Promise.all([a.close(), b.close(), c.close()])
    }
  })

  it("serves an empty catalogue for zero products", async () => {
    const sim = await startChannelSimulator({ products: 0 })
    try {
      expect(sim.catalogue).toEqual([])
      expect((await get(sim, api(sim))).body).toEqual({ count: 0, next: null, previous: null, results: [] })
    } finally {
      await sim.close()
    }
  })
})

describe("faults", () => {
  type Outcome = "ok" | "5xx" | "429" | "reset" | "truncate"

  const classify = async (url: string): Promise<{ outcome: Outcome; result: RawResult }> => {
    const result = await raw(url, authHeader)
    if (result.kind === "error") return { outcome: "reset", result }
    if (!result.complete) return { outcome: "truncate", result }
    if (result.status === 429) return { outcome: "429", result }
    if (result.status >= 500) return { outcome: "5xx", result }
    return { outcome: "ok", result }
  }

  it("injects every kind at roughly the requested rate, never more than maxConsecutive times in a row per URL", async () => {
    const sim = await startChannelSimulator({
      products: 10,
      faults: { kinds: ["5xx", "429", "reset", "truncate", "latency"], rate: 0.3, seed: 5, latencyMs: 5, maxConsecutive: 2 }
    })
    try {
      const urls = [
        api(sim, "?limit=5"),
        api(sim, "?limit=5&page=2"),
        api(sim, "detailed/?limit=3"),
        api(sim, "1/"),
        `${sim.url}${sim.catalogue[0]!.path}`
      ]
      const counts: Record<Outcome, number> = { ok: 0, "5xx": 0, "429": 0, reset: 0, truncate: 0 }
      const streaks = new Map<string, number>()
      let longest = 0
      const rounds = 120
      for (let round = 0; round < rounds; round++) {
        for (const url of urls) {
          const { outcome, result } = await classify(url)
          counts[outcome]++
          const streak = outcome === "ok" ? 0 : (streaks.get(url) ?? 0) + 1
          streaks.set(url, streak)
          longest = Math.max(longest, streak)
          if (outcome === "5xx" && result.kind === "response") expect([500, 502, 503]).toContain(result.status)
          if (outcome === "429" && result.kind === "response") {
            expect(result.headers["retry-after"]).toBe("1")
            expect(JSON.parse(result.body.toString())).toEqual({ detail: "Request was throttled. Expected available in 1 second." })
          }
          if (outcome === "truncate" && result.kind === "response") {
            expect(result.body.length).toBeLessThan(Number(result.headers["content-length"]))
          }
        }
      }
      const stats = sim.requests()
      const total = rounds * urls.length
      expect(stats.total).toBe(total)
      const visible = counts["5xx"] + counts["429"] + counts.reset + counts.truncate
      const latency = stats.faults - visible
      expect(stats.faults / total).toBeGreaterThan(0.2)
      expect(stats.faults / total).toBeLessThan(0.4)
      for (const kind of ["5xx", "429", "reset", "truncate"] as const) expect(counts[kind]).toBeGreaterThan(0)
      expect(latency).toBeGreaterThan(0)
      expect(longest).toBeLessThanOrEqual(2)
      expect(stats.byPath[new URL(api(sim)).pathname]).toBe(rounds * 2)
      expect(stats.byPath[sim.catalogue[0]!.path]).toBe(rounds)
    } finally {
      await sim.close()
    }
  })

  it("faults the same URL exactly maxConsecutive times before letting it through when the rate is 1", async () => {
    const sim = await startChannelSimulator({ products: 3, faults: { kinds: ["5xx"], rate: 1, maxConsecutive: 3 } })
    try {
      const outcomes: Array<Outcome> = []
      for (let i = 0; i < 8; i++) outcomes.push((await classify(api(sim, "?limit=2"))).outcome)
      expect(outcomes).toEqual(["5xx", "5xx", "5xx", "ok", "5xx", "5xx", "5xx", "ok"])
      expect(sim.requests().faults).toBe(6)
    } finally {
      await sim.close()
    }
  })

  it("makes each kind observable on its own, on API routes and media alike", async () => {
    const sim = await startChannelSimulator({ products: 3 })
    try {
      const url = api(sim, "?limit=2")
      const media = `${sim.url}${sim.catalogue[0]!.path}`

      sim.setFaults({ kinds: ["reset"], rate: 1 })
      for (const target of [url, media]) {
        const { result } = await classify(target)
        expect(result).toEqual({ kind: "error", code: "ECONNRESET" })
      }

      sim.setFaults({ kinds: ["truncate"], rate: 1 })
      const cut = await classify(url)
      expect(cut.outcome).toBe("truncate")
      if (cut.result.kind === "response") {
        expect(cut.result.status).toBe(200)
        expect(cut.result.body.length).toBeGreaterThan(0)
        expect(() => JSON.parse(cut.result.kind === "response" ? cut.result.body.toString() : "")).toThrow()
      }
      expect((await classify(media)).outcome).toBe("truncate")

      sim.setFaults({ kinds: ["429"], rate: 1, retryAfterSeconds: 3 })
      const throttled = await classify(media)
      expect(throttled.outcome).toBe("429")
      if (throttled.result.kind === "response") {
        expect(throttled.result.headers["retry-after"]).toBe("3")
        expect(JSON.parse(throttled.result.body.toString())).toEqual({ detail: "Request was throttled. Expected available in 3 seconds." })
      }

      sim.setFaults({ kinds: ["5xx"], rate: 1, maxConsecutive: 50 })
      const statuses = new Set<number>()
      for (let i = 0; i < 30; i++) {
        const { result } = await classify(i % 2 === 0 ? url : media)
        if (result.kind === "response") statuses.add(result.status)
      }
      expect([...statuses].every((status) => [500, 502, 503].includes(status))).toBe(true)
      expect(statuses.size).toBeGreaterThan(1)

      sim.setFaults({ kinds: ["latency"], rate: 1, latencyMs: 120 })
      const started = Date.now()
      const slow = await get(sim, url)
      expect(Date.now() - started).toBeGreaterThanOrEqual(110)
      expect(slow.status).toBe(200)
      expect((slow.body as Page).results.map((r) => r.pk)).toEqual([1, 2])

      sim.setFaults(undefined)
      const before = sim.requests().faults
      for (let i = 0; i < 10; i++) expect((await classify(url)).outcome).toBe("ok")
      expect(sim.requests().faults).toBe(before)
    } finally {
      await sim.close()
    }
  })

  it("repeats the same fault sequence for the same fault seed", async () => {
    const run = async (): Promise<Array<Outcome>> => {
      const sim = await startChannelSimulator({ products: 5, faults: { kinds: ["5xx", "429", "reset", "truncate"], rate: 0.5, seed: 42 } })
      try {
        const outcomes: Array<Outcome> = []
        for (let i = 0; i < 40; i++) outcomes.push((await classify(api(sim, `?limit=${1 + (i % 3)}`))).outcome)
        return outcomes
      } finally {
        await sim.close()
      }
    }
    const first = await run()
    expect(await run()).toEqual(first)
    expect(new Set(first).size).toBeGreaterThan(2)
  })

  it("rejects invalid fault options", async () => {
    await expect(startChannelSimulator({ faults: { kinds: ["5xx"], rate: 2 } })).rejects.toThrow(/rate/)
    await expect(startChannelSimulator({ faults: { kinds: ["boom" as "5xx"] } })).rejects.toThrow(/Unknown fault kind/)
  })
})

describe("binding and lifecycle", () => {
  it("refuses to bind to anything but a loopback address", async () => {
    for (const host of ["0.0.0.0", "::", "192.168.1.10", "example.com", "128.0.0.1"]) {
      await expect(startChannelSimulator({ host })).rejects.toThrow(/loopback/)
    }
  })

  it("binds localhost as 127.0.0.1 and other 127/8 addresses as given", async () => {
    const local = await startChannelSimulator({ host: "localhost", products: 1 })
    const other = await startChannelSimulator({ host: "127.0.0.2", products: 1 })
    try {
      expect(local.url).toBe(`http://127.0.0.1:${local.port}`)
      expect(other.url).toBe(`http://127.0.0.2:${other.port}`)
      expect((await get(local, api(local))).status).toBe(200)
      expect((await get(other, api(other))).status).toBe(200)
    } finally {
      await Promise.all([local.close(), other.close()])
    }
  })

  it("starts on acquire and closes on release as an Effect", async () => {
    const url = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const sim = yield* make({ products: 2 })
          const response = yield* Effect.promise(() => get(sim, api(sim)))
          expect(response.status).toBe(200)
          return api(sim)
        })
      )
    )
    await expect(fetch(url)).rejects.toThrow()
  })

  it("closes while a delayed answer is pending", async () => {
    const sim = await startChannelSimulator({ products: 2, faults: { kinds: ["latency"], rate: 1, latencyMs: 60_000 } })
    const pending = raw(api(sim), authHeader)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await sim.close()
    const result = await pending
    expect(result.kind === "error" || (result.kind === "response" && !result.complete)).toBe(true)
  })
})
