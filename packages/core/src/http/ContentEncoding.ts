/**
 * ContentEncoding: decoding a response body sent with `Content-Encoding: gzip`, `deflate` or `br`,
 * bounded.
 *
 * The body is inflated with `node:zlib` as a stream, counting the decoded bytes as they come: as soon
 * as they pass the cap, decoding stops. So the size cap of a request applies to what the body really
 * holds, and a small "gzip bomb" that would inflate to gigabytes is refused after reading no more than
 * the cap. Encodings listed together (`gzip, br`) are undone in reverse order; `identity` (or no
 * header) leaves the body as it is; any other coding is refused, never passed on as if it were the
 * content.
 */
import * as Effect from "effect/Effect"
import * as zlib from "node:zlib"

/** The codings this module decodes. */
export const supported: ReadonlyArray<string> = ["gzip", "x-gzip", "deflate", "br"]

/** Why a body could not be decoded. */
export type Failure =
  /** The header names a coding this module does not decode (`compress`, `zstd`, ...). */
  | { readonly _tag: "Unsupported"; readonly coding: string }
  /** The decoded body passed the cap; `partial` holds its first `limit` bytes. */
  | { readonly _tag: "TooLarge"; readonly coding: string; readonly partial: Uint8Array }
  /** The coded data is corrupt or cut short. */
  | { readonly _tag: "Corrupt"; readonly coding: string; readonly reason: string }

/** The codings of a `Content-Encoding` header in the order they were applied (lower case, `identity` dropped). */
export const codings = (header: string | undefined): ReadonlyArray<string> =>
  (header ?? "")
    .split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "" && c !== "identity")

/**
 * Decodes `body` coded with the `Content-Encoding` header `header`, stopping as soon as the decoded
 * bytes pass `limit` (a `TooLarge` failure). No header, or `identity`, returns the body as it is.
 */
export const decode = (header: string | undefined, body: Uint8Array, limit: number): Effect.Effect<Uint8Array, Failure> => {
  const applied = codings(header)
  const unsupported = applied.find((c) => !supported.includes(c))
  if (unsupported !== undefined) return Effect.fail({ _tag: "Unsupported", coding: unsupported })
  return applied.reduceRight<Effect.Effect<Uint8Array, Failure>>(
    (bytes, coding) => Effect.flatMap(bytes, (b) => inflate(coding, b, limit)),
    Effect.succeed(body)
  )
}

/** Inflates one coding as a stream with a byte counter; stops (destroying the inflater) once past `limit`. */
const inflate = (coding: string, input: Uint8Array, limit: number): Effect.Effect<Uint8Array, Failure> =>
  Effect.async<Uint8Array, Failure>((resume) => {
    const inflater = decoderFor(coding, input)
    const chunks: Array<Buffer> = []
    let size = 0
    let settled = false
    const settle = (result: Effect.Effect<Uint8Array, Failure>) => {
      if (settled) return
      settled = true
      resume(result)
    }
    inflater.on("data", (chunk: Buffer) => {
      if (settled) return
      if (size + chunk.length > limit) {
        chunks.push(chunk.subarray(0, limit - size))
        settle(Effect.fail({ _tag: "TooLarge", coding, partial: Buffer.concat(chunks) }))
        inflater.destroy()
        return
      }
      size += chunk.length
      chunks.push(chunk)
    })
    inflater.on("error", (error: Error) =>
      settle(Effect.fail({ _tag: "Corrupt", coding, reason: error.message.replace(/\s+/g, " ").slice(0, 100) })))
    inflater.on("end", () => settle(Effect.succeed(new Uint8Array(Buffer.concat(chunks)))))
    inflater.end(input)
    return Effect.sync(() => inflater.destroy())
  })

/** The inflater of a coding. `deflate` is zlib-wrapped by the standard, raw from some servers: both are read. */
const decoderFor = (coding: string, input: Uint8Array): zlib.Gunzip | zlib.Inflate | zlib.InflateRaw | zlib.BrotliDecompress => {
  switch (coding) {
    case "br":
      return zlib.createBrotliDecompress()
    case "deflate":
      return hasZlibHeader(input) ? zlib.createInflate() : zlib.createInflateRaw()
    default:
      return zlib.createGunzip()
  }
}

/** Whether data starts with a zlib header (RFC 1950: deflate method, header checksum). */
const hasZlibHeader = (input: Uint8Array): boolean =>
  input.length >= 2 && (input[0]! & 0x0f) === 8 && ((input[0]! << 8) | input[1]!) % 31 === 0
