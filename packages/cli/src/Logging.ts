/**
 * Log output of the CLI: human lines (`pretty`) or one JSON object per line (`json`), on stderr.
 */
import * as HashMap from "effect/HashMap"
import * as Inspectable from "effect/Inspectable"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

/** The log formats of `--log-format`. */
export type LogFormat = "pretty" | "json"

/** A logger that formats and hands each line to `write` (stderr, or above the progress bars). */
export const make = (format: LogFormat, write: (line: string) => void): Logger.Logger<unknown, void> =>
  Logger.make(({ annotations, date, logLevel, message }) => {
    const text = messageText(message)
    const ann: Record<string, unknown> = {}
    for (const [k, v] of HashMap.toEntries(annotations)) ann[k] = v
    if (format === "json") {
      write(JSON.stringify({ time: date.toISOString(), level: logLevel.label.toLowerCase(), message: text, ...ann }))
    } else {
      const extras = Object.entries(ann)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ")
      const time = date.toISOString().slice(11, 19)
      write(`${time} ${levelText(logLevel)} ${text}${extras ? `  (${extras})` : ""}`)
    }
  })

const levelText = (level: LogLevel.LogLevel): string => level.label.padEnd(5)

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((m) => (typeof m === "string" ? m : Inspectable.toStringUnknown(m))).join(" ")
}
