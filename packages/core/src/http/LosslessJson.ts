/**
 * LosslessJson: `JSON.parse` for APIs that send 64-bit integers (ids, change-feed tokens) as JSON
 * numbers. `JSON.parse` rounds an integer beyond 2^53 to the nearest double, silently changing the
 * id; {@link parse} keeps every such integer as a string of its exact digits instead. Safe integers,
 * fractions and exponents come back as ordinary numbers, so a schema can accept "a number or a
 * string of digits" and always see the exact value.
 */
import * as Either from "effect/Either"

/** Parses JSON text like `JSON.parse`, but an integer literal outside ±(2^53 − 1) becomes a string of its digits. */
export const parse = (text: string): unknown => JSON.parse(quoteUnsafeIntegers(text))

/**
 * {@link parse} as an `Either`: the value, or why the text is not JSON. Fits `ApiClient`'s request
 * option `parse`, so a body cut short is retried like a reset.
 */
export const parseEither = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(parse(text))
  } catch (e) {
    return Either.left(`the body is not valid JSON (${e instanceof Error ? e.message : String(e)})`)
  }
}

/**
 * Rewrites JSON text so that every integer literal outside the safe range is a string literal. The
 * text is scanned once, skipping string literals; anything that is not a valid JSON integer token is
 * copied unchanged (so invalid JSON stays invalid and `JSON.parse` reports it).
 */
export const quoteUnsafeIntegers = (text: string): string => {
  let out: Array<string> | undefined
  let copied = 0
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 34 /* " */) {
      // Skip a string literal, honouring backslash escapes.
      i++
      while (i < n) {
        const d = text.charCodeAt(i)
        if (d === 92 /* \ */) i += 2
        else if (d === 34) {
          i++
          break
        } else i++
      }
      continue
    }
    if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
      const start = i
      if (c === 45) i++
      const digitsStart = i
      while (i < n && isDigit(text.charCodeAt(i))) i++
      const digits = i - digitsStart
      const next = i < n ? text.charCodeAt(i) : -1
      const fractionOrExponent = next === 46 /* . */ || next === 101 /* e */ || next === 69 /* E */
      if (fractionOrExponent) {
        // A decimal number: leave it to JSON.parse (skip the rest of the token).
        i++
        while (i < n && /[0-9eE+\-.]/.test(text[i]!)) i++
        continue
      }
      const leadingZero = digits > 1 && text.charCodeAt(digitsStart) === 48
      // 16 digits or more can exceed 2^53 - 1 (9007199254740991, 16 digits); compare exactly.
      if (digits >= 16 && !leadingZero && !Number.isSafeInteger(Number(text.slice(start, i)))) {
        out ??= []
        out.push(text.slice(copied, start), '"', text.slice(start, i), '"')
        copied = i
      }
      continue
    }
    i++
  }
  if (out === undefined) return text
  out.push(text.slice(copied))
  return out.join("")
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57
