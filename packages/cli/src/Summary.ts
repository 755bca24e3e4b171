/**
 * The end-of-run summary: a table for people, or one JSON object for machines. The table accounts for
 * every record read: written, invalid (dead letters), deduped, or dropped by a transform, with the
 * dropped ones listed per reason under it; and for the trouble met: warnings, retries and rate-limit waits.
 */
import type { Pipeline, Runner } from "@effetl/core"
import * as path from "node:path"
import * as Logging from "./Logging.js"

/** The counters shown, in order. */
export const columns = ["read", "written", "invalid", "deduped", "dropped", "unhashed", "warnings", "retries", "waits"] as const

/** The summary as a text table with the outputs listed under it. */
export const text = (summary: Runner.RunSummary, pipeline: Pipeline.Pipeline): string => {
  const head = ["source", "use", ...columns, "time"]
  const rows = summary.sources.map((s) => [s.name, s.use, ...columns.map((c) => String(s.counts[c])), `${s.seconds.toFixed(1)}s`])
  if (summary.sources.length > 1) {
    const total = (c: (typeof columns)[number]) => String(summary.sources.reduce((n, s) => n + s.counts[c], 0))
    rows.push(["total", "", ...columns.map(total), `${summary.seconds.toFixed(1)}s`])
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const fmt = (r: ReadonlyArray<string>) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  const status =
    summary.status === "dry-run"
      ? "dry run: configuration valid, every source answered, nothing written"
      : summary.status === "trial"
        ? `trial run (--limit): written to each output's trial location (never the real one), no state saved`
        : `${summary.resumed ? "resumed and finished" : "finished"} in ${summary.seconds.toFixed(1)}s`
  const out = [`pipeline ${summary.pipeline} · run ${summary.runId} · ${status}`, "", fmt(head), ...rows.map(fmt)]
  out.push(...droppedLines(summary.sources))
  if (summary.status !== "dry-run") {
    out.push("", "outputs:")
    for (const s of pipeline.sinks) {
      const wrote = summary.sinks.find((w) => w.name === s.name)?.outputs ?? []
      out.push(`  ${s.name} (${s.plugin.name}) → ${wrote.length > 0 ? wrote.map(shown).join(", ") : describeTarget(s.config)}`)
    }
    out.push(`  dead letters: ${summary.deadLetters}${summary.deadLetters > 0 ? ` → ${summary.deadLetterPath}` : ""}`)
    out.push(`  state: ${summary.statePath}`)
  }
  return out.join("\n")
}

/** The records dropped by transforms, per source and reason (nothing when none were): `dropped by transforms:` and a line each. */
export const droppedLines = (
  sources: ReadonlyArray<{ readonly name: string; readonly dropped?: Readonly<Record<string, number>> | undefined }>
): Array<string> => {
  const rows = sources.flatMap((s) => Object.entries(s.dropped ?? {}).map(([reason, n]) => [s.name, String(n), reason] as const))
  if (rows.length === 0) return []
  const name = Math.max(...rows.map((r) => r[0].length))
  const count = Math.max(...rows.map((r) => r[1].length))
  return ["", "dropped by transforms:", ...rows.map(([s, n, reason]) => Logging.escapeControl(`  ${s.padEnd(name)}  ${n.padStart(count)}  ${reason}`))]
}

/** The summary as one JSON object. */
export const json = (summary: Runner.RunSummary): string => JSON.stringify({ summary })

/** A path as the user wrote it most likely: relative to the working directory when inside it. */
const shown = (p: string): string => {
  const rel = path.relative(process.cwd(), p)
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : p
}

const describeTarget = (config: unknown): string => {
  if (typeof config === "object" && config !== null) {
    const c = config as Record<string, unknown>
    for (const k of ["path", "dir", "table"]) if (typeof c[k] === "string") return String(c[k])
  }
  return "(see its config)"
}
