import { createHash } from "node:crypto"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type AcceoSimulator, hostileNames, make, startAcceoSimulator } from "@effetl/source-acceo/simulator"

const twoTo53 = 2n ** 53n
const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

/** A GET with the simulator's key, as text and (for JSON) parsed with every integer kept as text. */
const get = async (sim: AcceoSimulator, path: string, headers: Record<string, string> = {}) => {
  const response = await fetch(`${sim.url}${path}`, { headers: { [sim.auth.header]: sim.auth.value, ...headers } })
  const text = await response.text()
  return { status: response.status, headers: response.headers, text }
}

/** Parses a JSON answer, turning every bare integer into a string first so nothing is rounded. */
const exact = (text: string): any => JSON.parse(text.replace(/([:\[,])(-?\d+)(?=[,}\]])/g, "$1\"$2\""))

describe("acceo simulator: the change feed", () => {
  let sim: AcceoSimulator
  beforeAll(async () => {
    sim = await startAcceoSimulator()
  })
  afterAll(() => sim.close())

  it("serves the seed's JSON envelope: every key, in the seed's order; token a string; product_id a bare number", async () => {
    const { status, headers, text } = await get(sim, "/products/images?count=4")
    expect(status).toBe(200)
    expect(headers.get("content-type")).toBe("application/json; charset=utf-8")
    const body = exact(text)
    expect(Object.keys(body)).toEqual(["product", "token", "count", "queuecount", "returncode", "returnmsg", "warnings", "version"])
    expect(Object.keys(body.product[0])).toEqual(["product_id", "imagesURL", "images"])
    expect(Object.keys(body.product[0].images.image[0])).toEqual(["sequence", "imagefilename", "binaryimage"])
    expect(text).toContain(`"token":"${sim.feed()[3]!.token}"`)
    expect(text).toMatch(/"product_id":\d+,/)
    expect(body).toMatchObject({ count: "4", queuecount: String(sim.feed().length - 4), returncode: "0", returnmsg: "" })
  })

  it("serves the seed's XML by Accept: attributes in the seed's order, images as <images><image/></images>", async () => {
    const { headers, text } = await get(sim, "/products/images?count=2", { Accept: "application/xml" })
    expect(headers.get("content-type")).toBe("application/xml; charset=utf-8")
    const [e1, e2] = sim.feed()
    expect(text.split("\r\n")[0]).toBe(`<result returncode="0" returnmsg="" version="2.4.0" token="${e2!.token}" count="2" queuecount="${sim.feed().length - 2}">`)
    expect(text).toContain(`<product product_id="${e1!.productId}">`)
    expect(text).toMatch(/<images>\r\n\s+<image sequence="\d+" imagefilename="[^"]*" binaryimage="[A-Za-z0-9+/=]+" \/>/)
    expect(text).not.toContain("imagesURL")
    const urls = await get(sim, "/products/images?count=2&options=URL", { Accept: "text/xml" })
    expect(urls.text).toMatch(/<imagesURL sequence="\d+" imagefilename="[^"]*" imageURL="http:\/\/127\.0\.0\.1:\d+\/media\/\d+\/\d+\.(png|jpg)" \/>/)
    expect(urls.text).not.toContain("<images>")
  })

  it("tokens are above 2^53, grow unevenly, and the lot's token is its last entry's", async () => {
    const feed = sim.feed()
    const tokens = feed.map((e) => BigInt(e.token))
    expect(tokens.every((t) => t > twoTo53)).toBe(true)
    expect(tokens.every((t, i) => i === 0 || t > tokens[i - 1]!)).toBe(true)
    expect(new Set(tokens.slice(1).map((t, i) => t - tokens[i]!)).size).toBeGreaterThan(1)
    let token = ""
    const seen: Array<string> = []
    for (;;) {
      const body = exact((await get(sim, `/products/images?count=5${token === "" ? "" : `&token=${token}`}`)).text)
      seen.push(...body.product.map((p: { product_id: string }) => p.product_id))
      if (body.count !== "0") expect(body.token).toBe(feed[seen.length - 1]!.token)
      token = body.token
      if (body.queuecount === "0") break
    }
    expect(seen).toEqual(feed.map((e) => e.productId))
    // After the end: an empty lot that answers the token it was sent.
    const after = exact((await get(sim, `/products/images?token=${token}`)).text)
    expect(after).toMatchObject({ product: [], token, count: "0", queuecount: "0", returncode: "0" })
  })

  it("re-sends some products later in the same cycle", () => {
    const ids = sim.feed().map((e) => e.productId)
    expect(new Set(ids).size).toBeLessThan(ids.length)
    expect(new Set(ids.slice(0, sim.catalogue.length)).size).toBe(sim.catalogue.length)
  })

  it("count defaults to 100; out of 1..500, a bad token or a session over 100 characters is a returncode error", async () => {
    expect(exact((await get(sim, "/products/images")).text).count).toBe(String(Math.min(100, sim.feed().length)))
    for (const query of ["count=0", "count=501", "count=abc", "token=12x", "session=" + "s".repeat(101)]) {
      const body = exact((await get(sim, `/products/images?${query}`)).text)
      expect(body.returncode, query).toBe("1")
      expect(body.returnmsg).toMatch(/^Invalid parameter: /)
      expect(body.product).toEqual([])
    }
  })

  it("every image's base64 decodes to the catalogue's bytes, and the media URLs serve them", async () => {
    const body = exact((await get(sim, `/products/images?count=500`)).text)
    const urls = exact((await get(sim, `/products/images?count=500&options=URL`)).text)
    for (const [i, p] of body.product.entries()) {
      const product = sim.catalogue.find((c) => c.product_id === p.product_id)!
      expect(p.images.image.map((x: { binaryimage: string }) => sha(Buffer.from(x.binaryimage, "base64")))).toEqual(product.images.map((x) => x.sha256))
      expect(p.imagesURL).toBe(null)
      expect(urls.product[i].images).toBe(null)
      for (const [j, u] of urls.product[i].imagesURL.entries()) {
        const bytes = new Uint8Array(await (await fetch(u.imageURL)).arrayBuffer())
        expect(sha(bytes)).toBe(product.images[j]!.sha256)
      }
    }
  })

  it("the catalogue has hostile file names, empty ones, in-product duplicates and ids above 2^53", () => {
    const names = sim.catalogue.flatMap((p) => p.images.map((i) => i.imagefilename))
    for (const name of hostileNames) expect(names).toContain(name)
    expect(sim.catalogue.some((p) => BigInt(p.product_id) > twoTo53)).toBe(true)
    expect(sim.catalogue.some((p) => p.images.length === 0)).toBe(true)
    expect(sim.catalogue.some((p) => new Set(p.images.map((i) => i.sha256)).size < p.images.length)).toBe(true)
    for (const p of sim.catalogue) expect(new Set(p.images.map((i) => i.imagefilename)).size).toBe(p.images.length)
  })
})

describe("acceo simulator: products by id, auth, errors", () => {
  let sim: AcceoSimulator
  beforeAll(async () => {
    sim = await startAcceoSimulator({ products: 6, seed: 3 })
  })
  afterAll(() => sim.close())

  it("GET products/images/{id}: one product in the envelope; URL/{id} with URLs in images.image[].imageURL; an unknown id is returncode 2", async () => {
    const product = sim.catalogue.find((p) => p.images.length > 0)!
    const one = exact((await get(sim, `/products/images/${product.product_id}`)).text)
    expect(one.product.map((p: { product_id: string }) => p.product_id)).toEqual([product.product_id])
    expect(one.returncode).toBe("0")
    // The URL route: the URLs where the other routes have binaryimage, whatever options says.
    for (const query of ["", "?options=URL"]) {
      const urls = exact((await get(sim, `/products/images/URL/${product.product_id}${query}`)).text)
      expect(urls.product[0].imagesURL).toBeNull()
      expect(urls.product[0].images.image).toEqual(product.images.map((i) => ({
        sequence: String(i.sequence),
        imagefilename: i.imagefilename,
        imageURL: `${sim.url}${i.path}`
      })))
    }
    const urlsXml = (await get(sim, `/products/images/URL/${product.product_id}`, { Accept: "application/xml" })).text
    expect(urlsXml).toMatch(/<images>\r\n\s+<image sequence="\d+" imagefilename="[^"]*" imageURL="http:\/\/127\.0\.0\.1:\d+\/media\/\d+\/\d+\.(png|jpg)" \/>/)
    expect(urlsXml).not.toContain("imagesURL")
    expect(urlsXml).not.toContain("binaryimage")
    const unknown = exact((await get(sim, "/products/images/777")).text)
    expect(unknown).toMatchObject({ product: [], returncode: "2", returnmsg: "Product 777 not found" })
    const xml = await get(sim, "/products/images/777", { Accept: "application/xml" })
    expect(xml.text.split("\r\n")[0]).toBe(`<result returncode="2" returnmsg="Product 777 not found" version="2.4.0" token="" count="0" queuecount="0">`)
  })

  it("ASP.NET Web API errors: 401 without the key, 404 for no route or a non-numeric id, 405 for other methods", async () => {
    const anonymous = await fetch(`${sim.url}/products/images`)
    expect(anonymous.status).toBe(401)
    expect(await anonymous.json()).toEqual({ Message: "Authorization has been denied for this request." })
    const wrong = await fetch(`${sim.url}/products/images`, { headers: { Authorization: "Bearer nope" } })
    expect(wrong.status).toBe(401)
    for (const path of ["/products", "/products/images/abc", "/products/images/1/2"]) {
      const r = await get(sim, path)
      expect(r.status, path).toBe(404)
      expect(JSON.parse(r.text).Message).toContain("No HTTP resource was found that matches the request URI")
    }
    const post = await fetch(`${sim.url}/products/images`, { method: "POST", headers: { [sim.auth.header]: sim.auth.value } })
    expect(post.status).toBe(405)
  })

  it("a custom auth header and template", async () => {
    const custom = await startAcceoSimulator({ products: 1, authHeader: "X-Api-Key", authTemplate: "ApiKey {key}", apiKey: "k-123" })
    try {
      expect(custom.auth).toEqual({ header: "X-Api-Key", value: "ApiKey k-123" })
      expect((await fetch(`${custom.url}/products/images`, { headers: { "X-Api-Key": "ApiKey k-123" } })).status).toBe(200)
      expect((await fetch(`${custom.url}/products/images`, { headers: { Authorization: "Bearer k-123" } })).status).toBe(401)
    } finally {
      await custom.close()
    }
  })

  it("failNext, warnNext, overrideBinary, change and sessions drive the next answers", async () => {
    sim.failNext(9, "Service in maintenance", 2)
    for (let i = 0; i < 2; i++) expect(exact((await get(sim, "/products/images")).text)).toMatchObject({ returncode: "9", returnmsg: "Service in maintenance" })
    expect(exact((await get(sim, "/products/images")).text).returncode).toBe("0")
    sim.warnNext(["careful"])
    expect(exact((await get(sim, "/products/images/1001")).text).warnings).toEqual(["careful"])
    const product = sim.catalogue.find((p) => p.images.length > 0)!
    sim.overrideBinary(product.product_id, product.images[0]!.sequence, "not base64!")
    expect(exact((await get(sim, `/products/images/${product.product_id}`)).text).product[0].images.image[0].binaryimage).toBe("not base64!")
    const before = sim.feed()
    const added = sim.change([product.product_id], { addImage: true })
    expect(sim.feed()).toEqual([...before, ...added])
    expect(BigInt(added[0]!.token) > BigInt(before.at(-1)!.token)).toBe(true)
    const next = exact((await get(sim, `/products/images?token=${before.at(-1)!.token}`)).text)
    expect(next.product.map((p: { product_id: string }) => p.product_id)).toEqual([product.product_id])
    expect(next.product[0].images.image.length).toBe(product.images.length + 1)
    await get(sim, "/products/images?session=abc")
    await get(sim, "/products/images?session=abc")
    expect(sim.sessions()).toContain("abc")
    expect(sim.sessions().filter((s) => s === "abc").length).toBe(1)
    expect(() => sim.change(["5"])).toThrow(RangeError)
  })

  it("is deterministic per seed; hostileNames, resend and warnings can be turned off", async () => {
    const [a, b, c] = await Promise.all([
      startAcceoSimulator({ products: 8, seed: 5 }),
      startAcceoSimulator({ products: 8, seed: 5 }),
      startAcceoSimulator({ products: 8, seed: 6, hostileNames: false, resend: false, warnings: false })
    ])
    try {
      expect(a.catalogue).toEqual(b.catalogue)
      expect(a.feed()).toEqual(b.feed())
      expect(c.catalogue.flatMap((p) => p.images.map((i) => i.imagefilename)).some((n) => hostileNames.includes(n))).toBe(false)
      expect(c.feed().length).toBe(8)
      expect(c.catalogue.every((p) => p.warning === null)).toBe(true)
    } finally {
      await Promise.all([a.close(), b.close(), c.close()])
    }
  })
})

describe("acceo simulator: faults and lifecycle", () => {
  it("5xx answers look like ASP.NET/IIS; 429 carries Retry-After; counted as faults", async () => {
    const sim = await startAcceoSimulator({ products: 2, faults: { kinds: ["5xx", "429"], rate: 1, maxConsecutive: 100, retryAfterSeconds: 3, seed: 2 } })
    try {
      const seen = new Map<number, string>()
      for (let i = 0; i < 30; i++) {
        const r = await fetch(`${sim.url}/products/images?i=${i}`)
        seen.set(r.status, r.status === 429 ? `${r.headers.get("retry-after")} ${await r.text()}` : await r.text())
      }
      expect([...seen.keys()].sort()).toEqual([429, 500, 502, 503])
      expect(seen.get(429)).toBe(`3 {"Message":"Too many requests. Retry after 3 seconds."}`)
      expect(seen.get(503)).toContain("HTTP Error 503. The service is unavailable.")
      expect(sim.requests().faults).toBe(30)
    } finally {
      await sim.close()
    }
  })

  it("listens on loopback only; make() closes on scope exit", async () => {
    await expect(startAcceoSimulator({ host: "0.0.0.0" })).rejects.toThrow("only listens on a loopback address")
    const url = await Effect.runPromise(Effect.scoped(Effect.map(make({ products: 1 }), (s) => s.url)))
    await expect(fetch(`${url}/products/images`)).rejects.toThrow()
  })
})
