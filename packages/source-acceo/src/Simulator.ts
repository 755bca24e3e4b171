/**
 * A faithful fake of the Acceo Ogasys product-image web API (ASP.NET Web API) on a loopback address,
 * for the source's tests, `npm run demo`, `effetl simulate acceo` and benchmarks.
 *
 * It follows the vendor pages (the seeds) and APIS.md:
 * - `GET products/images?token=&count=&session=&options=`: the change feed. Tokens are 64-bit
 *   integers above 2^53 carried as strings; each entry is one product with all its images; the
 *   initial feed sends some products again later (as a real feed does when a product changes twice
 *   in a cycle); `count` is 1..500 (default 100), out of range a returncode error.
 * - `GET products/images/{product_id}?session=&options=`: one product in the same envelope; an unknown
 *   id is HTTP 200 with returncode 2 (an assumption: Acceo does not document it).
 * - `GET products/images/URL/{product_id}`: the same, URLs only, in `images.image[].imageURL` (where
 *   the other routes have `binaryimage`); `imagesURL` is null.
 * - JSON or XML by the `Accept` header (XML exactly in the seed's attribute shape), base64 images or
 *   URLs (`options=URL`; the bytes are served under `/media/`, public like a CDN).
 * - `warnings[]` on some lots, returncode errors on demand, hostile `imagefilename` values, and the
 *   core kit's seeded faults (5xx answers as ASP.NET/IIS gives them, 429 with Retry-After, resets,
 *   truncated bodies, latency).
 * Auth is not public; the simulator expects `Authorization: Bearer <apiKey>` unless told otherwise.
 */
import { createHash } from "node:crypto"
import type * as http from "node:http"
import { Faults, Images, Prng, Server } from "@effetl/core/simulator"
import { Effect, type Scope } from "effect"

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** The fault kinds the simulator can inject. */
export type FaultKind = Faults.FaultKind

/** Which faults to inject, how often, and how (all repeatable from `seed`). */
export type FaultOptions = Faults.FaultOptions

/** How to start a simulator. */
export interface SimulatorOptions {
  /** TCP port; 0 (default) picks an ephemeral port */
  readonly port?: number
  /** default "127.0.0.1"; anything that is not a loopback address is refused */
  readonly host?: string
  /** default "sim-acceo-key" */
  readonly apiKey?: string
  /** the header that must carry the key; default "Authorization" */
  readonly authHeader?: string
  /** the header's value, `{key}` standing for the key; default "Bearer {key}" */
  readonly authTemplate?: string
  /** number of products in the catalogue; default 12 */
  readonly products?: number
  /** catalogue seed; default 7 */
  readonly seed?: number
  /** give some images hostile file names (`../../etc/passwd.jpg`, `a/b\c.png`, `CON.jpg`, ...); default true */
  readonly hostileNames?: boolean
  /** the initial feed sends some products again later in the same cycle; default true */
  readonly resend?: boolean
  /** some products carry a warning whenever they are served; default true */
  readonly warnings?: boolean
  /** faults to inject; none by default */
  readonly faults?: FaultOptions
}

/** One image of the catalogue: its wire fields and its bytes. */
export interface CatalogueImage {
  readonly sequence: number
  readonly imagefilename: string
  readonly bytes: Uint8Array
  /** hex sha256 of `bytes` */
  readonly sha256: string
  /** the media path its `imageURL` points at (`/media/{product_id}/{sequence}.png`) */
  readonly path: string
}

/** One product of the catalogue. */
export interface CatalogueProduct {
  /** the product id, a decimal integer (some exceed 2^53) */
  readonly product_id: string
  readonly images: ReadonlyArray<CatalogueImage>
  /** the warning served with this product, if any */
  readonly warning: string | null
}

/** One entry of the change feed: its token and the product it names. */
export interface FeedEntry {
  readonly token: string
  readonly productId: string
}

/** Counters of the requests a simulator has received. */
export type RequestStats = Server.RequestStats

/** A running simulator. */
export interface AcceoSimulator {
  /** "http://127.0.0.1:<port>" (what a user puts in baseUrl) */
  readonly url: string
  readonly port: number
  readonly apiKey: string
  /** the auth header name and the value it must have */
  readonly auth: { readonly header: string; readonly value: string }
  /** the products as they are now, in feed order of their first change */
  readonly catalogue: ReadonlyArray<CatalogueProduct>
  /** the token before the first entry (what an empty feed answers when no token was sent) */
  readonly startToken: string
  /** every feed entry so far, in token order */
  readonly feed: () => ReadonlyArray<FeedEntry>
  /** the distinct `session` values received, in order of first use */
  readonly sessions: () => ReadonlyArray<string>
  /**
   * Records a change of these products: each gets a new feed entry (a new token), so the next run
   * reads them. With `addImage`, each also gets one new image (new bytes) first.
   */
  readonly change: (productIds: ReadonlyArray<string>, options?: { readonly addImage?: boolean }) => ReadonlyArray<FeedEntry>
  /** The next answer (feed or product) carries these warnings. */
  readonly warnNext: (warnings: ReadonlyArray<string>) => void
  /** The next `times` answers (feed or product) are HTTP 200 with this returncode and message. */
  readonly failNext: (returncode: number, returnmsg: string, times?: number) => void
  /** Serves this text as the `binaryimage` of one image from now on (to test invalid base64). */
  readonly overrideBinary: (productId: string, sequence: number, text: string) => void
  /** a snapshot of the request counters */
  readonly requests: () => RequestStats
  /** set or clear faults while running (restarts the fault PRNG from its seed) */
  readonly setFaults: (faults: FaultOptions | undefined) => void
  /** holds back the answers `match` picks until released (core's `Server.hold`: a test's fixed point, whatever the machine's speed) */
  readonly hold: Server.Served["hold"]
  /** stops listening and drops every open connection */
  readonly close: () => Promise<void>
}

/** The file names that trip careless writers; `hostileNames` spreads them over the first products. */
export const hostileNames: ReadonlyArray<string> = [
  "../../etc/passwd.jpg",
  "a/b\\c.png",
  "CON.jpg",
  "line one\nline two.jpg",
  "Ünïcödé 白色 👟.jpg",
  "",
  "/abs/root.png",
  "C:\\Windows\\win.ini.jpg",
  "..",
  "quote\"&<amp>'.png",
  "  padded  .png",
  "tab\there.jpg",
  "%2e%2e%2fencoded.png",
  ".hidden"
]

/** The version string in every envelope. */
export const apiVersion = "2.4.0"

/** Starts a simulator on a loopback address; rejects for a non-loopback host or bad options. */
export const startAcceoSimulator = async (options: SimulatorOptions = {}): Promise<AcceoSimulator> => {
  Server.loopbackHost(options.host ?? "127.0.0.1", "acceo")
  const apiKey = options.apiKey ?? "sim-acceo-key"
  const authHeader = (options.authHeader ?? "Authorization").toLowerCase()
  const authTemplate = options.authTemplate ?? "Bearer {key}"
  const productCount = options.products ?? 12
  const seed = options.seed ?? 7
  if (!Number.isSafeInteger(productCount) || productCount < 0) throw new RangeError(`Simulator products must be a non-negative integer, got ${productCount}`)
  if (apiKey.length === 0 || /\s/.test(apiKey)) throw new RangeError("Simulator apiKey must be non-empty and contain no whitespace")
  if (!authTemplate.includes("{key}")) throw new RangeError("Simulator authTemplate must hold {key}")

  const state = generate(productCount, seed, options.hostileNames ?? true, options.resend ?? true, options.warnings ?? true)
  const authValue = authTemplate.split("{key}").join(apiKey)
  const served = await Server.serve({
    name: "acceo",
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.faults !== undefined ? { faults: options.faults } : {}),
    respond: (req, origin) => respond(req, { state, authHeader, authValue, origin }),
    serverErrors,
    throttled: (fault) => throttled(fault.retryAfterSeconds)
  })

  return {
    url: served.origin,
    port: served.port,
    apiKey,
    auth: { header: options.authHeader ?? "Authorization", value: authValue },
    get catalogue() {
      return state.order.map((id) => state.products.get(id)!)
    },
    startToken: String(state.startToken),
    feed: () => state.feed.map((e) => ({ token: String(e.token), productId: e.productId })),
    sessions: () => [...state.sessions],
    change: (productIds, changeOptions) => {
      const added: Array<FeedEntry> = []
      for (const id of productIds) {
        const product = state.products.get(id)
        if (product === undefined) throw new RangeError(`Simulator has no product ${id}`)
        if (changeOptions?.addImage === true) state.products.set(id, withNewImage(product, state))
        const entry = { token: state.nextToken(), productId: id }
        state.feed.push(entry)
        added.push({ token: String(entry.token), productId: id })
      }
      return added
    },
    warnNext: (warnings) => void state.nextWarnings.push(...warnings),
    failNext: (returncode, returnmsg, times = 1) => {
      for (let i = 0; i < times; i++) state.failures.push({ returncode, returnmsg })
    },
    overrideBinary: (productId, sequence, text) => void state.overrides.set(`${productId}/${sequence}`, text),
    requests: served.requests,
    setFaults: served.setFaults,
    hold: served.hold,
    close: served.close
  }
}

/** Effect wrapper: starts a simulator on acquire and closes it on release (start failures are defects). */
export const make = (options?: SimulatorOptions): Effect.Effect<AcceoSimulator, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startAcceoSimulator(options)),
    (simulator) => Effect.promise(() => simulator.close())
  )

// ---------------------------------------------------------------------------------------------
// Catalogue and feed
// ---------------------------------------------------------------------------------------------

interface State {
  readonly products: Map<string, CatalogueProduct>
  /** product ids in catalogue order */
  readonly order: ReadonlyArray<string>
  readonly feed: Array<{ readonly token: bigint; readonly productId: string }>
  readonly startToken: bigint
  readonly nextToken: () => bigint
  readonly rng: Prng
  readonly sessions: Set<string>
  readonly nextWarnings: Array<string>
  readonly failures: Array<{ readonly returncode: number; readonly returnmsg: string }>
  readonly overrides: Map<string, string>
}

/** 2^60: every token is above 2^53, so a client that parses one into a number loses digits. */
const tokenBase = 1n << 60n

const generate = (productCount: number, seed: number, hostile: boolean, resend: boolean, warnings: boolean): State => {
  const rng = new Prng(seed)
  const startToken = tokenBase + BigInt(seed) * 1_000_003n
  let last = startToken
  // Tokens grow by uneven steps, so a client must send back the token it got, not compute one.
  const nextToken = (): bigint => (last += BigInt(1 + rng.int(97)))

  const hostileLeft = hostile ? [...hostileNames] : []
  const seen: Array<Images.GeneratedImage> = []
  const products = new Map<string, CatalogueProduct>()
  const order: Array<string> = []
  for (let i = 0; i < productCount; i++) {
    // Every fourth product id is above 2^53 (Acceo ids are bigint).
    const productId = i % 4 === 3 ? String(9_007_199_254_740_993n + BigInt(i) * 1_000n) : String(1001 + i)
    const count = i % 7 === 5 ? 0 : 1 + rng.int(5)
    const images: Array<CatalogueImage> = []
    const names = new Set<string>()
    let sequence = 0
    for (let j = 0; j < count; j++) {
      sequence += rng.chance(0.2) ? 2 : 1
      let content: Images.GeneratedImage
      if (j > 0 && rng.chance(0.25)) content = { ...imageOf(images[rng.int(images.length)]!) } // same bytes, another name
      else if (seen.length > 0 && rng.chance(0.1)) content = rng.pick(seen) // shared with an earlier product
      else content = Images.randomImage(rng)
      seen.push(content)
      let name = hostileLeft.length > 0 && (j < 3 || i < 2) ? hostileLeft.shift()! : `${rng.hex(10)}.${content.kind === "png" ? "png" : "jpg"}`
      if (names.has(name)) name = `${rng.hex(10)}_${name}`
      names.add(name)
      images.push(catalogueImage(productId, sequence, name, content))
    }
    const warning = warnings && i % 5 === 2 ? `Image data of product ${productId} exceeds the export limit and may be truncated` : null
    products.set(productId, { product_id: productId, images, warning })
    order.push(productId)
  }

  const feed = order.map((productId) => ({ token: nextToken(), productId }))
  if (resend) {
    // Products that changed again later in the cycle: sent again, as they are.
    for (const [i, productId] of order.entries()) {
      if (i % 3 === 1) feed.push({ token: nextToken(), productId })
    }
  }
  return {
    products,
    order,
    feed,
    startToken,
    nextToken,
    rng,
    sessions: new Set(),
    nextWarnings: [],
    failures: [],
    overrides: new Map()
  }
}

const imageOf = (image: CatalogueImage): Images.GeneratedImage => ({
  kind: image.path.endsWith(".png") ? "png" : "jpeg",
  width: 0,
  height: 0,
  bytes: image.bytes
})

const catalogueImage = (productId: string, sequence: number, name: string, content: Images.GeneratedImage): CatalogueImage => ({
  sequence,
  imagefilename: name,
  bytes: content.bytes,
  sha256: createHash("sha256").update(content.bytes).digest("hex"),
  path: `/media/${productId}/${sequence}.${content.kind === "png" ? "png" : "jpg"}`
})

const withNewImage = (product: CatalogueProduct, state: State): CatalogueProduct => {
  const sequence = product.images.reduce((max, image) => Math.max(max, image.sequence), 0) + 1
  const content = Images.randomImage(state.rng)
  const name = `added-${sequence}-${state.rng.hex(6)}.${content.kind === "png" ? "png" : "jpg"}`
  return { ...product, images: [...product.images, catalogueImage(product.product_id, sequence, name, content)] }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

type Reply = Server.Reply

interface Context {
  readonly state: State
  readonly authHeader: string
  readonly authValue: string
  readonly origin: string
}

/**
 * How an answer carries its images: base64 in `images.image[]` (the default), URLs in `imagesURL[]`
 * (`options=URL`), or URLs in `images.image[]` (the `products/images/URL/{product_id}` route).
 */
type Shape = "binary" | "imagesURL" | "urlRoute"

/** What an answer holds, before it is written as JSON or XML. */
interface Envelope {
  readonly products: ReadonlyArray<CatalogueProduct>
  readonly shape: Shape
  readonly token: string
  readonly count: number
  readonly queuecount: number
  readonly returncode: number
  readonly returnmsg: string
  readonly warnings: ReadonlyArray<string>
}

/** Answers one request (no faults). */
const respond = (req: http.IncomingMessage, ctx: Context): Reply => {
  const target = req.url ?? "/"
  const url = new URL(target, "http://simulator")
  const path = url.pathname
  const method = req.method ?? "GET"

  const media = /^\/media\/(\d+)\/(\d+)\.(png|jpg)$/.exec(path)
  if (media !== null) {
    const image = ctx.state.products.get(media[1]!)?.images.find((i) => i.path === path)
    if (image === undefined || (method !== "GET" && method !== "HEAD")) return Server.text(404, "text/html", iisPage("404 - File or directory not found."))
    return { status: 200, headers: { "Content-Type": media[3] === "png" ? "image/png" : "image/jpeg" }, body: image.bytes }
  }

  const feed = path === "/products/images"
  const byId = /^\/products\/images\/(?:(URL)\/)?([^/]+)$/i.exec(path)
  if (!feed && byId === null) return noResource(ctx, target)
  if (method !== "GET") return message(405, `The requested resource does not support http method '${method}'.`, { Allow: "GET" })
  if (req.headers[ctx.authHeader] !== ctx.authValue) return message(401, "Authorization has been denied for this request.")

  const xml = wantsXml(req.headers.accept)
  const query = url.searchParams
  const session = query.get("session") ?? ""
  const options = query.get("options") ?? ""
  const shape: Shape = byId !== null && byId[1] !== undefined ? "urlRoute" : options.toUpperCase() === "URL" ? "imagesURL" : "binary"
  const fail = (returnmsg: string, returncode = 1): Reply => render(xml, { ...empty(shape), returncode, returnmsg }, ctx)
  if (session.length > 100) return fail("Invalid parameter: session must be at most 100 characters")
  if (options.length > 100) return fail("Invalid parameter: options must be at most 100 characters")
  if (session !== "") ctx.state.sessions.add(session)
  const failure = ctx.state.failures.shift()
  if (failure !== undefined) return fail(failure.returnmsg, failure.returncode)

  if (byId !== null) {
    // The route's {product_id} is a bigint: anything else matches no route.
    if (!/^\d{1,19}$/.test(byId[2]!)) return noResource(ctx, target)
    const product = ctx.state.products.get(BigInt(byId[2]!).toString())
    if (product === undefined) return fail(`Product ${byId[2]} not found`, 2)
    return render(xml, { ...empty(shape), products: [product], count: 1, warnings: warningsFor(ctx.state, [product]) }, ctx)
  }

  const countRaw = query.get("count")
  const count = countRaw === null || countRaw === "" ? 100 : /^\d{1,4}$/.test(countRaw) ? Number(countRaw) : Number.NaN
  if (!(count >= 1 && count <= 500)) return fail("Invalid parameter: count must be between 1 and 500")
  const tokenRaw = query.get("token") ?? ""
  if (tokenRaw !== "" && !/^\d{1,20}$/.test(tokenRaw)) return fail("Invalid parameter: token must be an integer")
  const after = tokenRaw === "" ? ctx.state.startToken : BigInt(tokenRaw)
  const pending = ctx.state.feed.filter((e) => e.token > after)
  const lot = pending.slice(0, count)
  const products = lot.map((e) => ctx.state.products.get(e.productId)!)
  return render(xml, {
    products,
    shape,
    token: String(lot.length > 0 ? lot[lot.length - 1]!.token : after),
    count: lot.length,
    queuecount: pending.length - lot.length,
    returncode: 0,
    returnmsg: "",
    warnings: warningsFor(ctx.state, products)
  }, ctx)
}

const empty = (shape: Shape): Envelope => ({ products: [], shape, token: "", count: 0, queuecount: 0, returncode: 0, returnmsg: "", warnings: [] })

/** The warnings of an answer: those queued by `warnNext`, then those of its products. */
const warningsFor = (state: State, products: ReadonlyArray<CatalogueProduct>): Array<string> => [
  ...state.nextWarnings.splice(0, state.nextWarnings.length),
  ...products.flatMap((p) => (p.warning === null ? [] : [p.warning]))
]

/** Web API content negotiation: the first of JSON or XML in `Accept` wins; JSON by default. */
const wantsXml = (accept: string | undefined): boolean => {
  for (const part of (accept ?? "").split(",")) {
    const type = part.split(";")[0]!.trim().toLowerCase()
    if (type === "application/xml" || type === "text/xml") return true
    if (type === "application/json" || type === "text/json") return false
  }
  return false
}

const render = (xml: boolean, envelope: Envelope, ctx: Context): Reply =>
  xml
    ? Server.text(200, "application/xml; charset=utf-8", toXml(envelope, ctx))
    : Server.text(200, "application/json; charset=utf-8", toJson(envelope, ctx))

const binaryOf = (ctx: Context, product: CatalogueProduct, image: CatalogueImage): string =>
  ctx.state.overrides.get(`${product.product_id}/${image.sequence}`) ?? Buffer.from(image.bytes).toString("base64")

/** The JSON answer, as Json.NET writes it: `product_id` a bare number (however large), the unused image list null. */
const toJson = (e: Envelope, ctx: Context): string => {
  const products = e.products.map((p) => {
    const id = `"product_id":${p.product_id}`
    if (e.shape !== "binary") {
      const list = p.images.map((i) =>
        `{"sequence":${i.sequence},"imagefilename":${JSON.stringify(i.imagefilename)},"imageURL":${JSON.stringify(ctx.origin + i.path)}}`
      )
      return e.shape === "urlRoute"
        ? `{${id},"imagesURL":null,"images":{"image":[${list.join(",")}]}}`
        : `{${id},"imagesURL":[${list.join(",")}],"images":null}`
    }
    const list = p.images.map((i) =>
      `{"sequence":${i.sequence},"imagefilename":${JSON.stringify(i.imagefilename)},"binaryimage":${JSON.stringify(binaryOf(ctx, p, i))}}`
    )
    return `{${id},"imagesURL":null,"images":{"image":[${list.join(",")}]}}`
  })
  return `{"product":[${products.join(",")}],"token":${JSON.stringify(e.token)},"count":${e.count},"queuecount":${e.queuecount},` +
    `"returncode":${e.returncode},"returnmsg":${JSON.stringify(e.returnmsg)},"warnings":${JSON.stringify(e.warnings)},"version":${JSON.stringify(apiVersion)}}`
}

/** The XML answer, in the seed's attribute shape. */
const toXml = (e: Envelope, ctx: Context): string => {
  const lines = [
    `<result returncode="${e.returncode}" returnmsg="${attr(e.returnmsg)}" version="${apiVersion}" token="${e.token}" count="${e.count}" queuecount="${e.queuecount}">`
  ]
  for (const w of e.warnings) lines.push(`  <warnings>${text(w)}</warnings>`)
  for (const p of e.products) {
    lines.push(`  <product product_id="${p.product_id}">`)
    if (e.shape === "imagesURL") {
      for (const i of p.images) {
        lines.push(`    <imagesURL sequence="${i.sequence}" imagefilename="${attr(i.imagefilename)}" imageURL="${attr(ctx.origin + i.path)}" />`)
      }
    } else if (e.shape === "urlRoute") {
      lines.push("    <images>")
      for (const i of p.images) {
        lines.push(`      <image sequence="${i.sequence}" imagefilename="${attr(i.imagefilename)}" imageURL="${attr(ctx.origin + i.path)}" />`)
      }
      lines.push("    </images>")
    } else {
      lines.push("    <images>")
      for (const i of p.images) {
        lines.push(`      <image sequence="${i.sequence}" imagefilename="${attr(i.imagefilename)}" binaryimage="${attr(binaryOf(ctx, p, i))}" />`)
      }
      lines.push("    </images>")
    }
    lines.push("  </product>")
  }
  lines.push("</result>")
  return lines.join("\r\n")
}

const attr = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/\n/g, "&#xA;").replace(/\r/g, "&#xD;").replace(/\t/g, "&#x9;")

const text = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** An ASP.NET Web API error body: `{"Message": ...}`. */
const message = (status: number, text: string, headers: Record<string, string> = {}): Reply => Server.json(status, { Message: text }, headers)

const noResource = (ctx: Context, target: string): Reply =>
  message(404, `No HTTP resource was found that matches the request URI '${ctx.origin}${target}'.`)

const iisPage = (title: string): string =>
  `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n` +
  `<html xmlns="http://www.w3.org/1999/xhtml">\r\n<head>\r\n<title>${title}</title>\r\n</head>\r\n<body>\r\n<h2>${title}</h2>\r\n</body>\r\n</html>\r\n`

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/** The 5xx answers of an ASP.NET Web API app on IIS: Web API's 500 (with and without error details), IIS's 503, a gateway's 502. */
const serverErrors: ReadonlyArray<Reply> = [
  message(500, "An error has occurred."),
  Server.json(500, {
    Message: "An error has occurred.",
    ExceptionMessage: "Timeout expired.  The timeout period elapsed prior to completion of the operation or the server is not responding.",
    ExceptionType: "System.Data.SqlClient.SqlException",
    StackTrace: null
  }),
  Server.text(503, "text/html; charset=us-ascii",
    `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n` +
      `<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n<BODY><h2>Service Unavailable</h2>\r\n` +
      `<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n</BODY></HTML>\r\n`),
  Server.text(502, "text/html", iisPage("502 - Web server received an invalid response while acting as a gateway or proxy server."))
]

/** A gateway's throttling answer, with Retry-After. */
const throttled = (seconds: number): Reply =>
  message(429, `Too many requests. Retry after ${seconds} second${seconds === 1 ? "" : "s"}.`, { "Retry-After": String(seconds) })
