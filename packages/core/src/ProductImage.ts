/**
 * The one canonical record every source emits: a product image.
 */
import * as Schema from "effect/Schema"

/** A non-empty string identifier (product ids, image ids, source names). */
const Id = Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" }))

/** An integer that is zero or more (pixel sizes). */
const Dimension = Schema.Int.pipe(Schema.nonNegative())

/** `sha256:<64 hex>` when effetl computed it, or `<vendor>:<value>` when a vendor supplied it. */
const ContentHash = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9-]+:.+$/, { message: () => "must look like '<algorithm>:<value>', e.g. 'sha256:<hex>'" })
)

/** A valid date (never `Invalid Date`). */
const ValidDate = Schema.ValidDateFromSelf

/**
 * `ProductImage` is the canonical record. Sources build it from their vendor's wire format
 * (the only place vendor quirks live); transforms and sinks only ever see this shape.
 */
export class ProductImage extends Schema.Class<ProductImage>("ProductImage")({
  /** The pipeline's name for the source instance that produced the record. */
  source: Id,
  /** The vendor's product id, as a string whatever the vendor's type. */
  productId: Id,
  /** The vendor's image id, unique within the product, as a string. */
  imageId: Id,
  /** Display order of the image within its product. */
  position: Schema.Int,
  url: Schema.NullOr(Schema.String),
  /** The vendor's file name. Data only: never used as a path. */
  filename: Schema.NullOr(Schema.String),
  width: Schema.NullOr(Dimension),
  height: Schema.NullOr(Dimension),
  alt: Schema.NullOr(Schema.String),
  /** `sha256:<hex>` once `hash-content` ran; null before. */
  contentHash: Schema.NullOr(ContentHash),
  /** UTC creation date. */
  createdAt: Schema.NullOr(ValidDate),
  /** UTC modification date. */
  updatedAt: Schema.NullOr(ValidDate),
  /** The image's bytes, for sources that deliver binary images. */
  bytes: Schema.optional(Schema.Uint8ArrayFromSelf),
  /** Vendor fields with no canonical slot. JSON values only. */
  extra: Schema.Record({ key: Schema.String, value: Schema.Unknown })
}) {
  /**
   * Builds a record without validating it (sources map fast; the `validate` transform checks). The
   * same object as `new ProductImage(fields, { disableValidation: true })` (an instance of this
   * class with the fields as its own properties), made by a plain constructor that sets them in one
   * order: V8 then keeps every record in one shape with its fields inside the object, where the
   * class constructor copies them twice and looks for defaults. This runs once per record.
   */
  static unchecked(fields: ConstructorParameters<typeof ProductImage>[0]): ProductImage {
    return new Unchecked(fields)
  }

  /** A copy with some fields replaced (no validation; one copy, like {@link ProductImage.unchecked}). */
  with(fields: Partial<ConstructorParameters<typeof ProductImage>[0]>): ProductImage {
    return Object.assign(new Unchecked(this), fields)
  }
}

type Fields = ConstructorParameters<typeof ProductImage>[0]

/**
 * The records `unchecked` and `with` make: a constructor whose prototype is `ProductImage`'s, so
 * `instanceof`, `with` and Schema's class checks see a `ProductImage`. `bytes` is set last and only
 * when present, as an optional field is (absent, not `undefined`).
 */
const Unchecked = function(this: { -readonly [K in keyof Fields]: Fields[K] }, f: Fields) {
  this.source = f.source
  this.productId = f.productId
  this.imageId = f.imageId
  this.position = f.position
  this.url = f.url
  this.filename = f.filename
  this.width = f.width
  this.height = f.height
  this.alt = f.alt
  this.contentHash = f.contentHash
  this.createdAt = f.createdAt
  this.updatedAt = f.updatedAt
  this.extra = f.extra
  if (f.bytes !== undefined) this.bytes = f.bytes
} as unknown as new(fields: Fields) => ProductImage
Unchecked.prototype = ProductImage.prototype

/** The JSON form of a `ProductImage` (dates as ISO strings, bytes as base64), for JSONL, dead letters and spill files. */
export const ProductImageJson = Schema.Struct({
  source: Schema.String,
  productId: Schema.String,
  imageId: Schema.String,
  position: Schema.Number,
  url: Schema.NullOr(Schema.String),
  filename: Schema.NullOr(Schema.String),
  width: Schema.NullOr(Schema.Number),
  height: Schema.NullOr(Schema.Number),
  alt: Schema.NullOr(Schema.String),
  contentHash: Schema.NullOr(Schema.String),
  createdAt: Schema.NullOr(Schema.String),
  updatedAt: Schema.NullOr(Schema.String),
  bytes: Schema.optional(Schema.String),
  extra: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
export type ProductImageJson = typeof ProductImageJson.Type

/** Encodes a record to its JSON form. `bytes` are base64 when `includeBytes` is set, left out otherwise. */
export const toJson = (r: ProductImage, options?: { readonly includeBytes?: boolean }): ProductImageJson =>
  // Two literal shapes rather than a spread (it runs once per record in every sink); `bytes` comes
  // before `extra` in both JSON texts.
  options?.includeBytes && r.bytes !== undefined
    ? {
      source: r.source,
      productId: r.productId,
      imageId: r.imageId,
      position: r.position,
      url: r.url,
      filename: r.filename,
      width: r.width,
      height: r.height,
      alt: r.alt,
      contentHash: r.contentHash,
      createdAt: isoDate(r.createdAt),
      updatedAt: isoDate(r.updatedAt),
      bytes: Buffer.from(r.bytes).toString("base64"),
      extra: r.extra
    }
    : {
      source: r.source,
      productId: r.productId,
      imageId: r.imageId,
      position: r.position,
      url: r.url,
      filename: r.filename,
      width: r.width,
      height: r.height,
      alt: r.alt,
      contentHash: r.contentHash,
      createdAt: isoDate(r.createdAt),
      updatedAt: isoDate(r.updatedAt),
      extra: r.extra
    }

const isoOrNull = (d: Date): string | null => {
  const ms = d.getTime()
  return Number.isNaN(ms) ? null : isoString(ms)
}

/** A record's date as its JSON form writes it: ISO-8601 UTC, or null (none, or an invalid date). */
export const isoDate = (d: Date | null): string | null => (d === null ? null : isoOrNull(d))

/**
 * `new Date(ms).toISOString()`, computed: every file sink writes two dates per record, and V8's
 * `toISOString` (a call into its C++ runtime) was about 10 % of a list run's CPU; this is about 4
 * times faster. Whole milliseconds in the years 1970 to 9999 take the fast path (the
 * civil-from-days arithmetic of Howard Hinnant's date algorithms); any other value is left to
 * `toISOString` (before 1970, its ±YYYYYY years, fractions). The string is made in one piece from
 * its 24 character codes: joining its parts with `+` made 13 intermediate strings (about 420 bytes
 * of garbage per date, 8 % of a list run's allocations).
 *
 * @internal
 */
export const isoString = (ms: number): string => {
  if (!(ms >= 0 && ms <= 253402300799999 && Number.isInteger(ms))) return new Date(ms).toISOString()
  const days = Math.floor(ms / 86400000)
  let rest = ms - days * 86400000
  // Days since 0000-03-01, split into 400-year eras of 146,097 days.
  const z = days + 719468
  const era = Math.floor(z / 146097)
  const dayOfEra = z - era * 146097
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524) - Math.floor(dayOfEra / 146096)) / 365
  )
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153) // 0 = March
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
  const hours = Math.floor(rest / 3600000)
  rest -= hours * 3600000
  const minutes = Math.floor(rest / 60000)
  rest -= minutes * 60000
  const seconds = Math.floor(rest / 1000)
  const millis = rest - seconds * 1000
  // "0" is 48; "-" 45, "T" 84, ":" 58, "." 46, "Z" 90.
  return String.fromCharCode(
    48 + Math.floor(year / 1000),
    48 + Math.floor(year / 100) % 10,
    48 + Math.floor(year / 10) % 10,
    48 + year % 10,
    45,
    48 + Math.floor(month / 10),
    48 + month % 10,
    45,
    48 + Math.floor(day / 10),
    48 + day % 10,
    84,
    48 + Math.floor(hours / 10),
    48 + hours % 10,
    58,
    48 + Math.floor(minutes / 10),
    48 + minutes % 10,
    58,
    48 + Math.floor(seconds / 10),
    48 + seconds % 10,
    46,
    48 + Math.floor(millis / 100),
    48 + Math.floor(millis / 10) % 10,
    48 + millis % 10,
    90
  )
}

/** Decodes the JSON form back into a record (no validation; the form came from `toJson`). */
export const fromJson = (j: ProductImageJson): ProductImage =>
  ProductImage.unchecked({
    source: j.source,
    productId: j.productId,
    imageId: j.imageId,
    position: j.position,
    url: j.url,
    filename: j.filename,
    width: j.width,
    height: j.height,
    alt: j.alt,
    contentHash: j.contentHash,
    createdAt: j.createdAt === null ? null : new Date(j.createdAt),
    updatedAt: j.updatedAt === null ? null : new Date(j.updatedAt),
    ...(j.bytes !== undefined ? { bytes: new Uint8Array(Buffer.from(j.bytes, "base64")) } : {}),
    extra: j.extra
  })

/**
 * Natural order of ids: ids that are both decimal integers compare as numbers (so "9" < "10"),
 * otherwise as strings, chunk by chunk ("img2" < "img10").
 */
export const naturalCompare = (a: string, b: string): number => {
  if (a === b) return 0
  // The usual case, two decimal ids, without splitting them: as numbers, then "1" before "01".
  if (allDigits(a) && allDigits(b)) {
    const x = stripZeros(a)
    const y = stripZeros(b)
    if (x.length !== y.length) return x.length < y.length ? -1 : 1
    if (x !== y) return x < y ? -1 : 1
    return a.length - b.length
  }
  const chunk = /(\d+|\D+)/g
  const as = a.match(chunk) ?? []
  const bs = b.match(chunk) ?? []
  const n = Math.min(as.length, bs.length)
  for (let i = 0; i < n; i++) {
    const x = as[i]!
    const y = bs[i]!
    if (x === y) continue
    const xd = /^\d/.test(x)
    const yd = /^\d/.test(y)
    if (xd && yd) {
      const xi = BigInt(x)
      const yi = BigInt(y)
      if (xi !== yi) return xi < yi ? -1 : 1
      if (x.length !== y.length) return x.length - y.length // "01" after "1"
      continue
    }
    return x < y ? -1 : 1
  }
  return as.length - bs.length
}

const allDigits = (s: string): boolean => {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

const stripZeros = (s: string): string => {
  let i = 0
  while (i < s.length - 1 && s.charCodeAt(i) === 48) i++
  return i === 0 ? s : s.slice(i)
}

/** The display order used by dedupe and renumbering: `position`, then `imageId` in natural order. */
export const displayOrder = (a: ProductImage, b: ProductImage): number =>
  a.position !== b.position ? a.position - b.position : naturalCompare(a.imageId, b.imageId)

/** The key of a product within a run: source and product id. */
export const productKey = (r: { readonly source: string; readonly productId: string }): string =>
  `${r.source}\u0000${r.productId}`
