/**
 * The Acceo Ogasys product-image web API (ASP.NET Web API): endpoints, wire schemas, the parsing of
 * both return formats, and the mapping to `ProductImage`. This module is the only place where the
 * vendor's quirks live.
 *
 * - `GET products/images?token=&count=&session=&options=`: the change feed. `token` is a 64-bit
 *   integer carried as a string; send back the response's `token` to get the next lot.
 * - `GET products/images/{product_id}?session=&options=`: one product, in the same envelope.
 * - `GET products/images/URL/{product_id}`: one product's download URLs only, in the same envelope,
 *   the URLs in `product[].images.image[].imageURL` (where the other routes carry `binaryimage`).
 * - Images: base64 `images.image[].binaryimage` by default, `imagesURL[].imageURL` with `options=URL`.
 * - The envelope: `returncode` (0 = success; anything else is an error even under HTTP 200),
 *   `returnmsg`, `warnings[]` (the call worked but data may be partly lost), `version`.
 * - JSON (`application/json`) or XML (`application/xml`): the same data, XML as attributes on
 *   `<result>`, `<product product_id>`, `<imagesURL .../>` and `<images><image .../></images>`.
 *
 * Integers that may exceed 2^53 (tokens, product ids) never pass through a JS `number`: JSON is
 * parsed with core's `LosslessJson`, XML attributes stay strings, and both become canonical decimal
 * strings (via `BigInt`). XML is parsed by fast-xml-parser with entity processing off and any DOCTYPE
 * refused, so no entity is ever expanded (no XXE, no billion laughs); the five predefined entities and
 * character references are decoded here, strictly.
 */
import { Batch, Http, ProductImage } from "@effetl/core"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { XMLParser, XMLValidator } from "fast-xml-parser"

// ---------------------------------------------------------------------------------------------
// Endpoints and request parameters
// ---------------------------------------------------------------------------------------------

/** The change feed, relative to the base URL. */
export const feedPath = "products/images"

/** One product's images, relative to the base URL. */
export const productPath = (productId: string): string => `products/images/${productId}`

/** One product's download URLs only, relative to the base URL. */
export const productUrlPath = (productId: string): string => `products/images/URL/${productId}`

/**
 * Which route reads a product by id: `images` (`products/images/{product_id}`, the images of the
 * image mode asked for) or `url` (`products/images/URL/{product_id}`, URLs only).
 */
export type IdsEndpoint = "images" | "url"

/** The return formats and the `Accept` header that asks for each. */
export const accept = { json: "application/json", xml: "application/xml" } as const
export type Format = keyof typeof accept

/** How images come: base64 bytes (the API's default) or download URLs (`options=URL`). */
export type ImageMode = "binary" | "url"

/** The `options` parameter for an image mode (none for the default, binary). */
export const optionsFor = (images: ImageMode): string | undefined => (images === "url" ? "URL" : undefined)

/** The `count` range of the change feed. */
export const countRange = { min: 1, max: 500 } as const

/** The longest `session` the API accepts. */
export const maxSessionLength = 100

/** A decimal integer (a token or product id): digits only, optionally signed. */
export const integerPattern = /^-?\d+$/

/** A decimal integer in canonical form (`"0012"` → `"12"`), exact for any size. */
export const canonicalInteger = (digits: string): string => BigInt(digits).toString()

// ---------------------------------------------------------------------------------------------
// Wire schemas
// ---------------------------------------------------------------------------------------------

/** An integer written as a digit string (XML attributes; JSON integers beyond 2^53). */
const Digits = Schema.String.pipe(Schema.pattern(integerPattern, { message: () => "expected a decimal integer" }))

/** A 64-bit integer: a JSON number (safe), or a digit string; decoded to its canonical decimal string. */
export const IntegerString = Schema.transform(Schema.Union(Schema.Int, Digits), Schema.String, {
  strict: true,
  decode: (value) => (typeof value === "number" ? String(value) : canonicalInteger(value)),
  encode: (s) => s
})

/** A small integer: a JSON number, or a digit string (XML attributes). */
export const IntOrDigits = Schema.Union(
  Schema.Int,
  Schema.transformOrFail(Schema.String, Schema.Int, {
    strict: true,
    decode: (s, _, ast) =>
      /^-?\d{1,15}$/.test(s) ? ParseResult.succeed(Number(s)) : ParseResult.fail(new ParseResult.Type(ast, s, "expected an integer")),
    encode: (n) => ParseResult.succeed(String(n))
  })
)

/** The envelope of every answer. `product` entries are decoded one by one (a bad one is a dead letter). */
export const WireEnvelope = Schema.Struct({
  product: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown))),
  token: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Int))),
  count: Schema.optional(Schema.NullOr(IntOrDigits)),
  queuecount: Schema.optional(Schema.NullOr(IntOrDigits)),
  returncode: IntOrDigits,
  returnmsg: Schema.optional(Schema.NullOr(Schema.String)),
  warnings: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  version: Schema.optional(Schema.NullOr(Schema.String))
})
export type WireEnvelope = typeof WireEnvelope.Type

/** One product entry: its id and its images (each decoded on its own). */
export const WireProduct = Schema.Struct({
  product_id: IntegerString,
  imagesURL: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown))),
  images: Schema.optional(Schema.NullOr(Schema.Struct({ image: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown))) })))
})
export type WireProduct = typeof WireProduct.Type

/** One image, binary (`binaryimage`) or URL (`imageURL`). */
export const WireImage = Schema.Struct({
  sequence: IntOrDigits,
  imagefilename: Schema.optional(Schema.NullOr(Schema.String)),
  binaryimage: Schema.optional(Schema.NullOr(Schema.String)),
  imageURL: Schema.optional(Schema.NullOr(Schema.String))
})
export type WireImage = typeof WireImage.Type

// ---------------------------------------------------------------------------------------------
// Parsing a body (JSON or XML) into the wire tree
// ---------------------------------------------------------------------------------------------

/** A body parsed into the JSON shape of the envelope, or why it could not be. */
export type Parsed = Either.Either<unknown, string>

/** Parses a body by its content: XML when it starts with `<`, JSON otherwise. */
export const parseBody = (text: string): Parsed => {
  const body = text.replace(/^\uFEFF/, "").trimStart()
  if (body.startsWith("<")) return parseXml(body)
  if (body.startsWith("{")) return parseJson(body)
  return Either.left(body === "" ? "the body is empty" : "the body is neither JSON nor XML")
}

/** Parses JSON, keeping integers beyond 2^53 exact (as digit strings). */
export const parseJson = (text: string): Parsed => {
  try {
    return Either.right(Http.LosslessJson.parse(text))
  } catch (e) {
    return Either.left(`the body is not valid JSON (${e instanceof Error ? e.message : String(e)})`)
  }
}

/** Elements that repeat: always arrays, even when there is one. */
const repeated = new Set(["warnings", "product", "imagesURL", "image"])

/** Elements whose content is text. */
const textElements = new Set(["warnings", "returnmsg", "version"])

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  // Values stay exact strings: no number guessing (a token or product id must keep every digit).
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  // No entity processing at all: nothing is ever expanded. Character and predefined entity
  // references are decoded below, strictly.
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (name) => repeated.has(name)
})

/**
 * Parses XML in the seed's attribute shape into the JSON shape of the same data. A body that is not
 * well-formed, has a DOCTYPE (and so could declare entities) or uses an undefined entity is refused.
 */
export const parseXml = (text: string): Parsed => {
  const valid = XMLValidator.validate(text)
  if (valid !== true) return Either.left(`the body is not well-formed XML (${valid.err.msg}, line ${valid.err.line})`)
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) {
    return Either.left("the XML body has a DOCTYPE; document type declarations (and the entities they define) are refused")
  }
  let tree: unknown
  try {
    tree = xmlParser.parse(text)
  } catch (e) {
    return Either.left(`the body is not well-formed XML (${e instanceof Error ? e.message : String(e)})`)
  }
  const roots = Object.keys(tree as Record<string, unknown>)
  const root = (tree as Record<string, unknown>).result
  if (Array.isArray(root)) return Either.left(`expected one <result> root element, got ${root.length}`)
  if (roots.length !== 1 || roots[0] !== "result") {
    return Either.left(`expected one <result> root element, got ${roots.length === 0 ? "none" : roots.map((r) => `<${r}>`).join(", ")}`)
  }
  try {
    return Either.right(element("result", root))
  } catch (e) {
    if (e instanceof XmlContentError) return Either.left(e.message)
    throw e
  }
}

class XmlContentError extends Error {}

/** Converts one parsed element: attributes and child elements become fields, text elements their text. */
const element = (name: string, value: unknown): unknown => {
  if (Array.isArray(value)) return value.map((v) => element(name, v))
  if (textElements.has(name)) {
    if (typeof value === "string") return decodeText(value)
    throw new XmlContentError(`<${name}> must hold text only`)
  }
  if (typeof value === "string") {
    if (value.trim() === "") return {}
    throw new XmlContentError(`unexpected text in <${name}>`)
  }
  if (typeof value !== "object" || value === null) return {}
  const out: Record<string, unknown> = {}
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (key === "#text") {
      if (typeof child === "string" && child.trim() === "") continue
      throw new XmlContentError(`unexpected text in <${name}>`)
    }
    if (key.startsWith("@_")) {
      out[key.slice(2)] = decodeAttribute(String(child))
    } else {
      out[key] = element(key, child)
    }
  }
  return out
}

/** An attribute value: `<` is not allowed, literal tabs and line breaks become spaces (XML normalisation), then references are decoded. */
const decodeAttribute = (raw: string): string => {
  if (raw.includes("<")) throw new XmlContentError("an attribute value contains '<'")
  return decodeReferences(raw.replace(/[\t\n\r]/g, " "))
}

/** Text content: references decoded, line ends normalised to `\n`. */
const decodeText = (raw: string): string => decodeReferences(raw.replace(/\r\n?/g, "\n"))

const predefined: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'" }
const reference = /&(?:(amp|lt|gt|quot|apos)|#([0-9]{1,7})|#x([0-9A-Fa-f]{1,6}));/y

/** Decodes the five predefined entities and character references; any other `&` is refused. */
const decodeReferences = (raw: string): string => {
  if (!raw.includes("&")) return raw
  let out = ""
  let at = 0
  for (;;) {
    const amp = raw.indexOf("&", at)
    if (amp === -1) return out + raw.slice(at)
    out += raw.slice(at, amp)
    reference.lastIndex = amp
    const m = reference.exec(raw)
    if (m === null) {
      throw new XmlContentError(`undefined entity or bare '&' at ${JSON.stringify(raw.slice(amp, amp + 12))}`)
    }
    if (m[1] !== undefined) out += predefined[m[1]]!
    else {
      const code = m[2] !== undefined ? Number(m[2]) : parseInt(m[3]!, 16)
      if (!isXmlChar(code)) throw new XmlContentError(`character reference ${m[0]} is not an XML character`)
      out += String.fromCodePoint(code)
    }
    at = reference.lastIndex
  }
}

const isXmlChar = (c: number): boolean =>
  c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff)

// ---------------------------------------------------------------------------------------------
// The envelope
// ---------------------------------------------------------------------------------------------

const decodeEnvelopeEither = Schema.decodeUnknownEither(WireEnvelope, { errors: "all" })

/** Decodes the envelope of a parsed body, or says where it does not fit (`path: message`). */
export const decodeEnvelope = (tree: unknown): Either.Either<WireEnvelope, { readonly path: string; readonly message: string }> =>
  Either.mapLeft(decodeEnvelopeEither(tree), (error) => {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
    const first = issues[0]
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""
    return {
      path: first === undefined ? "(root)" : Http.ApiClient.formatPath(first.path) || "(root)",
      message: `${first?.message ?? "invalid"}${more}`
    }
  })

/** The response token as a canonical decimal string; `undefined` when the lot has none (empty or missing). */
export const tokenOf = (envelope: WireEnvelope): Either.Either<string | undefined, string> => {
  const raw = envelope.token
  if (raw === undefined || raw === null || raw === "") return Either.right(undefined)
  const text = String(raw).trim()
  if (!/^\d+$/.test(text)) return Either.left(`the token ${JSON.stringify(String(raw).slice(0, 40))} is not a non-negative decimal integer`)
  return Either.right(canonicalInteger(text))
}

// ---------------------------------------------------------------------------------------------
// Mapping to ProductImage
// ---------------------------------------------------------------------------------------------

/** How entries become records. */
export interface MapOptions {
  /** The pipeline's name of the source instance. */
  readonly source: string
  readonly images: ImageMode
  /**
   * The route the entry came from: `url` (`products/images/URL/{product_id}`) carries its URLs in
   * `images.image[].imageURL`; every other route in `imagesURL[]` (default `images`).
   */
  readonly endpoint?: IdsEndpoint
  /** The largest decoded image accepted (checked from the base64 length, before decoding). */
  readonly maxImageBytes: number
}

/** The records and dead letters of one product entry, and its id when it had a valid one. */
export interface Mapped {
  readonly productId: string | undefined
  readonly records: ReadonlyArray<ProductImage>
  readonly rejected: ReadonlyArray<Batch.DeadLetter>
}

const decodeProduct = Schema.decodeUnknownEither(WireProduct, { errors: "all" })
const decodeImage = Schema.decodeUnknownEither(WireImage, { errors: "all" })

/**
 * Maps one product entry: every image of the mode asked for becomes a record, built unchecked (the
 * `validate` transform checks it). An entry or image of the wrong shape, invalid base64 or an image
 * over the size cap is a dead letter; the other images of the product still come through.
 */
export const mapProduct = (entry: unknown, options: MapOptions): Mapped => {
  const product = decodeProduct(entry)
  if (Either.isLeft(product)) {
    return {
      productId: undefined,
      records: [],
      rejected: [reject(options, `unexpected product entry shape: ${Batch.describeIssues(product.left)}`, summarise(entry))]
    }
  }
  const { product_id: productId } = product.right
  const items = options.images === "binary"
    ? product.right.images?.image ?? []
    : options.endpoint === "url"
    ? urlRouteItems(product.right)
    : product.right.imagesURL ?? []
  const records: Array<ProductImage> = []
  const rejected: Array<Batch.DeadLetter> = []
  for (const item of items) {
    const image = decodeImage(item)
    if (Either.isLeft(image)) {
      rejected.push(reject(options, `product ${productId}: unexpected image shape: ${Batch.describeIssues(image.left)}`, summarise({ product_id: productId, ...asObject(item) })))
      continue
    }
    const w = image.right
    const name = w.imagefilename ?? ""
    const base = {
      source: options.source,
      productId,
      imageId: name !== "" ? name : String(w.sequence),
      position: w.sequence,
      filename: name !== "" ? name : null,
      width: null,
      height: null,
      alt: null,
      contentHash: null,
      createdAt: null,
      updatedAt: null,
      extra: {}
    }
    if (options.images === "url") {
      const url = w.imageURL ?? ""
      if (url.trim() === "") {
        rejected.push(reject(options, `product ${productId}: image ${JSON.stringify(base.imageId)} has no imageURL`, summarise({ product_id: productId, ...w })))
        continue
      }
      records.push(ProductImage.unchecked({ ...base, url }))
      continue
    }
    const decoded = decodeBase64(w.binaryimage ?? "", options.maxImageBytes)
    if (Either.isLeft(decoded)) {
      rejected.push(reject(options, `product ${productId}: image ${JSON.stringify(base.imageId)}: ${decoded.left}`, summarise({ product_id: productId, ...w })))
      continue
    }
    records.push(ProductImage.unchecked({ ...base, url: null, bytes: decoded.right }))
  }
  return { productId, records, rejected }
}

/**
 * Decodes standard base64 strictly: length a multiple of 4, only `A-Z a-z 0-9 + /`, `=` padding at
 * the end only, canonical padding bits. The decoded size is checked against `maxBytes` from the
 * length alone, before anything is decoded.
 */
export const decodeBase64 = (text: string, maxBytes: number): Either.Either<Uint8Array, string> => {
  if (text.length === 0) return Either.left("binaryimage is empty")
  if (text.length % 4 !== 0) return Either.left(`binaryimage is not valid base64 (length ${text.length} is not a multiple of 4)`)
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0
  const size = (text.length / 4) * 3 - padding
  if (size > maxBytes) {
    return Either.left(`the image is ${size} bytes, over maxImageBytes (${Http.ApiClient.formatBytes(maxBytes)})`)
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    const at = text.search(/[^A-Za-z0-9+/=]|=(?=[^=])/)
    return Either.left(`binaryimage is not valid base64 (unexpected ${JSON.stringify(text.charAt(at))} at offset ${at})`)
  }
  const bytes = Buffer.from(text, "base64")
  if (bytes.length !== size || bytes.toString("base64") !== text) {
    return Either.left("binaryimage is not valid base64 (non-canonical padding)")
  }
  return Either.right(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length))
}

/**
 * The images of an entry from `products/images/URL/{product_id}`: `images.image[]` (its documented
 * shape), or `imagesURL[]` when an answer carries its URLs there instead and `images.image` is empty.
 */
const urlRouteItems = (entry: WireProduct): ReadonlyArray<unknown> => {
  const images = entry.images?.image ?? []
  return images.length > 0 ? images : entry.imagesURL ?? []
}

const reject = (options: MapOptions, error: string, payload: unknown): Batch.DeadLetter => ({
  source: options.source,
  stage: "source",
  error,
  payload
})


const asObject = (u: unknown): Record<string, unknown> => (typeof u === "object" && u !== null && !Array.isArray(u) ? (u as Record<string, unknown>) : { value: u })

/** A payload for the dead-letter output, with long base64 cut short (the reason says what was wrong). */
const summarise = (payload: unknown): unknown => {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return payload
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(payload)) {
    if (key === "binaryimage" && typeof value === "string" && value.length > 64) {
      out[key] = `${value.slice(0, 64)}… (${value.length} characters)`
    } else if (key === "images" || key === "imagesURL") {
      out[key] = "(left out)"
    } else out[key] = value
  }
  return out
}
