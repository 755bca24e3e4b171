/**
 * Log output of the CLI: human lines (`pretty`) or one JSON object per line (`json`), on stderr.
 * Every line goes through `line` or `errorLine`, which escape control characters: vendor text (an
 * API's error message, a file name, a URL) can never move the cursor, clear the screen or start a
 * line of its own. This module loads nothing but itself and core's Text (no imports of its own), so usage errors
 * print before anything heavy loads.
 */

import { escapeControl } from "@effetl/core/Text"

/** The log formats of `--log-format`. */
export type LogFormat = "pretty" | "json"

/** The levels the CLI writes. */
export type Level = "debug" | "info" | "warn" | "error" | "fatal" | "trace"

/** Text with every control character written as a visible escape (`\n`, `\x1b`, `\u202e`), so it stays on one line as it is. */
export { escapeControl }

/** JSON text whose strings carry no raw C1, separator or bidi characters (JSON.stringify escapes only C0). */
const safeJson = (value: unknown): string =>
  JSON.stringify(value).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

const fieldText = (v: unknown): string => escapeControl(typeof v === "string" ? v : JSON.stringify(v) ?? String(v))

/** Formats one log line: `HH:MM:SS LEVEL message  (key=value ...)` or a JSON object with `time`, `level`, `message`. */
export const line = (
  format: LogFormat,
  level: Level,
  message: string,
  fields: Record<string, unknown> = {},
  date: Date = new Date()
): string => {
  if (format === "json") return safeJson({ time: date.toISOString(), level, message, ...fields })
  const extras = Object.entries(fields)
    .map(([k, v]) => `${escapeControl(k)}=${fieldText(v)}`)
    .join(" ")
  return `${date.toISOString().slice(11, 19)} ${level.toUpperCase().padEnd(5)} ${escapeControl(message)}${extras ? `  (${extras})` : ""}`
}

/**
 * A final error for the user: `error: <message>` (no timestamp, so it reads as the command's verdict),
 * or a JSON log line with level `error` and the error's tag. Always one line.
 */
export const errorLine = (format: LogFormat, message: string, tag?: string): string =>
  format === "json" ? line("json", "error", message, tag !== undefined ? { error: tag } : {}) : `error: ${escapeControl(message)}`

/** Names of environment variables that hold secrets (`CHANNEL_TOKEN`, `PG_PASSWORD`, `ACCEO_API_KEY`, ...). */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH/i

/** A URL's user and password, `://user:password@` (anchored on `://` and bounded, so linear on any text). */
const URL_PASSWORD = /:\/\/([^\s/:@]{0,256}):([^\s/@]{1,256})@/g

/**
 * The secrets in an environment: the values of variables named like secrets, and the password of
 * every URL in any variable (`PG_URL=postgres://user:password@host/db`), as they may be printed
 * (as is, escaped, inside JSON, URL-encoded). Values shorter than 6 characters are left out.
 */
export const secretsOf = (env: Record<string, string | undefined>): ReadonlyArray<string> => {
  const found = new Set<string>()
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue
    if (SECRET_NAME.test(name)) found.add(value)
    for (const m of value.matchAll(URL_PASSWORD)) {
      found.add(m[2]!)
      try {
        found.add(decodeURIComponent(m[2]!))
      } catch {
        // not URL-encoded
      }
    }
  }
  const forms = new Set<string>()
  for (const s of found) {
    if (s.length < 6) continue
    for (const form of [s, escapeControl(s), JSON.stringify(s).slice(1, -1), encodeURIComponent(s)]) forms.add(form)
  }
  // Longest first, so that a secret inside another is not replaced half-way.
  return [...forms].sort((a, b) => b.length - a.length)
}

/**
 * Text with every secret replaced by `***` and every URL password hidden: the CLI's last guard, so a
 * secret that reached an error message by mistake is still never printed.
 */
export const redact = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join("***")
  return out.replace(URL_PASSWORD, "://$1:***@")
}

/** The text of an Effect log message (a string, a value, or several of them). */
export const messageText = (message: unknown, toString: (u: unknown) => string = String): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((m) => (typeof m === "string" ? m : toString(m))).join(" ")
}

/** The CLI's level of an Effect log level label (`WARN` → `warn`). */
export const levelOf = (label: string): Level => {
  const l = label.toLowerCase()
  return l === "warning" ? "warn" : (["debug", "info", "warn", "error", "fatal", "trace"].includes(l) ? l : "info") as Level
}
