/**
 * Log output of the CLI: human lines (`pretty`) or one JSON object per line (`json`), on stderr.
 */
import * as HashMap from "effect/HashMap"
import * as Inspectable from "effect/Inspectable"
import * as Logger from "effect/Logger"

/** The log formats of `--log-format`. */
export type LogFormat = "pretty" | "json"

/** The levels the CLI writes. */
export type Level = "debug" | "info" | "warn" | "error" | "fatal" | "trace"

/** Formats one log line: `HH:MM:SS LEVEL message  (key=value ...)` or a JSON object with `time`, `level`, `message`. */
export const line = (
  format: LogFormat,
  level: Level,
  message: string,
  fields: Record<string, unknown> = {},
  date: Date = new Date()
): string => {
  if (format === "json") return JSON.stringify({ time: date.toISOString(), level, message, ...fields })
  const extras = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ")
  return `${date.toISOString().slice(11, 19)} ${level.toUpperCase().padEnd(5)} ${message}${extras ? `  (${extras})` : ""}`
}

/**
 * A final error for the user: `error: <message>` (no timestamp, so it reads as the command's verdict),
 * or a JSON log line with level `error` and the error's tag.
 */
export const errorLine = (format: LogFormat, message: string, tag?: string): string =>
  format === "json" ? line("json", "error", message, tag !== undefined ? { error: tag } : {}) : `error: ${message}`

/** A logger that formats and hands each line to `write` (stderr, or above the progress bars). */
export const make = (format: LogFormat, write: (line: string) => void): Logger.Logger<unknown, void> =>
  Logger.make(({ annotations, date, logLevel, message }) => {
    const fields: Record<string, unknown> = {}
    for (const [k, v] of HashMap.toEntries(annotations)) fields[k] = v
    write(line(format, levelOf(logLevel.label), messageText(message), fields, date))
  })

const levelOf = (label: string): Level => {
  const l = label.toLowerCase()
  return l === "warning" ? "warn" : (["debug", "info", "warn", "error", "fatal", "trace"].includes(l) ? l : "info") as Level
}

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((m) => (typeof m === "string" ? m : Inspectable.toStringUnknown(m))).join(" ")
}
