/**
 * ErrorBody: reading the vendor's own error message and code out of an error response body.
 *
 * Understands the common JSON shapes: `{"detail": ...}` (Django REST Framework), `{"error": ...}`,
 * `{"errors": [...]}` (strings or objects with a message, or a field → messages map),
 * `{"message": ...}`, ASP.NET Web API's `{"Message": ...}`, `{"title": ...}` and `{"returnmsg": ..., "returncode": ...}` (Acceo), plus a
 * short plain-text body. Everything is cut to a readable length, on one line, control characters escaped.
 */
import * as Option from "effect/Option"
import * as Text from "../Text.js"

/** What a vendor said about an error. */
export interface VendorError {
  /** The vendor's message, one line, at most ~300 characters. */
  readonly message: Option.Option<string>
  /** The vendor's own code (`code`, `error_code`, `returncode`), as a string. */
  readonly code: Option.Option<string>
}

/** The longest vendor message kept. */
export const maxMessageLength = 300

/** Reads the vendor message and code from a response body (JSON or short plain text). */
export const parse = (body: string): VendorError => {
  const text = body.trim()
  if (text === "") return { message: Option.none(), code: Option.none() }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    // JSON cut short (an error body is read up to a cap): the first message-like field, as far as it goes.
    if (/^(\{\s*"|\[\s*[{"])/.test(text)) {
      const field = /"(detail|error|message|Message|returnmsg|title|error_description)"\s*:\s*"((?:[^"\\]|\\.)*)/.exec(text)
      const value = field === null ? undefined : field[2]!.replace(/\\(.)/g, "$1")
      return { message: Option.map(Option.fromNullable(value === "" ? undefined : value), oneLine), code: Option.none() }
    }
    // Plain text: keep it unless it is an HTML page.
    const plain = /^<(!doctype|html|\?xml|body|head)/i.test(text) ? undefined : text
    return { message: Option.map(Option.fromNullable(plain), oneLine), code: Option.none() }
  }
  return { message: Option.map(Option.fromNullable(messageOf(json, 0)), oneLine), code: codeOf(json) }
}

/**
 * Collapses whitespace, cuts a text to `max` characters and escapes control characters (ANSI
 * escapes and the like, see {@link Text.escapeControl}): vendor text fit for a one-line message.
 */
export const oneLine = (text: string, max = maxMessageLength): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return Text.escapeControl(flat.length > max ? `${flat.slice(0, max - 1)}…` : flat)
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const messageKeys = ["detail", "error", "errors", "message", "Message", "returnmsg", "title", "error_description", "non_field_errors"]

const messageOf = (json: unknown, depth: number): string | undefined => {
  if (depth > 3) return undefined
  if (typeof json === "string") return json === "" ? undefined : json
  if (typeof json === "number" || typeof json === "boolean") return undefined
  if (Array.isArray(json)) {
    const parts = json.map((item) => messageOf(item, depth + 1)).filter((s): s is string => s !== undefined)
    return parts.length === 0 ? undefined : parts.join("; ")
  }
  if (typeof json === "object" && json !== null) {
    const obj = json as Record<string, unknown>
    for (const key of messageKeys) {
      if (key in obj) {
        const m = messageOf(obj[key], depth + 1)
        if (m !== undefined) return m
      }
    }
    // DRF validation errors: {"field": ["msg", ...], ...}
    if (depth === 0) {
      const fields = Object.entries(obj)
        .filter(([, v]) => Array.isArray(v) && v.every((x) => typeof x === "string"))
        .map(([k, v]) => `${k}: ${(v as Array<string>).join(", ")}`)
      if (fields.length > 0) return fields.join("; ")
    }
  }
  return undefined
}

const codeKeys = ["code", "error_code", "returncode", "errorCode"]

const codeOf = (json: unknown): Option.Option<string> => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return Option.none()
  const obj = json as Record<string, unknown>
  for (const key of codeKeys) {
    const v = obj[key]
    if (typeof v === "string" && v !== "") return Option.some(v)
    if (typeof v === "number") return Option.some(String(v))
  }
  return Option.none()
}
