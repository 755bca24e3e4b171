/**
 * `effetl runs`: a pipeline's past runs (its run history, kept by its state store) as a table for
 * people or JSON for machines, and one run in detail.
 */
import type { RunHistory } from "@effetl/core"
import * as Logging from "./Logging.js"
import * as Summary from "./Summary.js"

/** What the listing says about where the history lives. */
export interface Where {
  readonly pipeline: string
  /** The state store's location. */
  readonly state: string
  /** How many runs the history keeps. */
  readonly limit: number
  /** Where the distributed runs were read from (a pipeline with a `cluster:` section). */
  readonly cluster?: string
}

/** The runs, newest first, as a table: one row per run, and one per source under it when there are several. */
export const table = (runs: ReadonlyArray<RunHistory.Listed>, where: Where, now: number): string => {
  const head = [
    `pipeline ${where.pipeline} · ${runs.length} ${runs.length === 1 ? "run" : "runs"} (the history keeps the last ${where.limit}) · state ${where.state}${
      where.cluster === undefined ? "" : ` · distributed runs from ${where.cluster}`
    }`
  ]
  if (runs.length === 0) return [...head, "", "no runs yet"].join("\n")
  const counters = ["read", "written", "invalid", "deduped", "dropped", "warnings", "retries", "waits"] as const
  const titles = ["run", "started", "duration", "status", ...counters, "error"]
  const rows: Array<Array<string>> = []
  for (const r of runs) {
    const names = Object.keys(r.sources)
    const total = (c: string) => names.reduce((n, s) => n + (r.sources[s]!.counts[c] ?? 0), 0)
    const known = names.length > 0
    rows.push([
      r.id,
      shortTime(r.startedAt),
      duration(r, now),
      status(r),
      ...counters.map((c) => (known ? String(total(c)) : c === "read" && r.read !== undefined ? String(r.read) : "-")),
      oneLine(r.error)
    ])
    if (names.length > 1) {
      for (const s of names) rows.push([`  ${s}`, "", "", "", ...counters.map((c) => String(r.sources[s]!.counts[c] ?? 0)), ""])
    }
  }
  const widths = titles.map((t, i) => Math.max(t.length, ...rows.map((r) => r[i]!.length)))
  const numeric = (i: number) => i >= 4 && i < 4 + counters.length
  const fmt = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : numeric(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return Logging.escapeControl([...head, "", fmt(titles), ...rows.map(fmt)].join("\n"), { keepNewlines: true })
}

/** One run in detail: status, times, attempts, error, the counts per source and the records dropped per reason. */
export const detail = (r: RunHistory.Listed, where: Where, now: number): string => {
  const out = [
    r.distributed === true
      ? `distributed run ${r.id} of pipeline ${where.pipeline} (${where.cluster ?? "its cluster database"})`
      : `run ${r.id} of pipeline ${where.pipeline} (state ${where.state})`,
    "",
    `status    ${status(r)}`,
    `started   ${r.startedAt}`,
    `ended     ${r.endedAt ?? "-"}`,
    `duration  ${duration(r, now)}${r.attempts !== undefined && r.attempts > 1 ? ` over ${r.attempts} attempts (resumed)` : ""}`
  ]
  if (r.error !== undefined) out.push(`error     ${r.error}`)
  const names = Object.keys(r.sources)
  if (names.length === 0) {
    out.push("", r.read !== undefined ? `${r.read} records read (the counts per source were not saved: the run did not end)` : "no counts were saved")
  } else {
    const head = ["source", ...Summary.columns]
    const rows = names.map((s) => [s, ...Summary.columns.map((c) => String(r.sources[s]!.counts[c] ?? 0))])
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)))
    const fmt = (x: ReadonlyArray<string>) => x.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
    out.push("", fmt(head), ...rows.map(fmt))
    out.push(...Summary.droppedLines(names.map((name) => ({ name, dropped: r.sources[name]!.dropped }))))
  }
  return Logging.escapeControl(out.join("\n"), { keepNewlines: true })
}

/** The runs as one JSON object. */
export const json = (runs: ReadonlyArray<RunHistory.Listed>, where: Where): string =>
  JSON.stringify({ pipeline: where.pipeline, state: where.state, ...(where.cluster !== undefined ? { cluster: where.cluster } : {}), history: where.limit, runs })

/** One run as one JSON object. */
export const jsonOne = (run: RunHistory.Listed, where: Where): string => JSON.stringify({ pipeline: where.pipeline, state: where.state, run })

/**
 * The run an id names: the run with that id, else the one run whose id starts with it. `undefined`
 * when none does; an array of the candidates when several do.
 */
export const find = (runs: ReadonlyArray<RunHistory.Listed>, id: string): RunHistory.Listed | ReadonlyArray<RunHistory.Listed> | undefined => {
  const exact = runs.find((r) => r.id === id)
  if (exact !== undefined) return exact
  const prefixed = runs.filter((r) => r.id.startsWith(id))
  return prefixed.length === 1 ? prefixed[0] : prefixed.length === 0 ? undefined : prefixed
}

// ---------------------------------------------------------------------------------------------

const status = (r: RunHistory.Listed): string => (r.distributed === true ? `${r.status} (distributed)` : r.status)

/** `2026-12-05 00:01:02Z`: an ISO time without its milliseconds. */
const shortTime = (iso: string): string => iso.replace("T", " ").replace(/\.\d+Z$/, "Z")

const duration = (r: RunHistory.Listed, now: number): string => {
  if (r.seconds !== undefined) return seconds(r.seconds)
  if (r.status === "running") {
    const since = Date.parse(r.startedAt)
    return Number.isNaN(since) ? "-" : `${seconds((now - since) / 1000)} so far`
  }
  return "-"
}

const seconds = (s: number): string =>
  s < 60 ? `${s.toFixed(1)}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s` : `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`

/** An error's first line, cut to 80 characters. */
const oneLine = (error: string | undefined): string => {
  if (error === undefined) return ""
  const first = error.split("\n")[0]!
  return first.length > 80 ? `${first.slice(0, 79)}…` : first
}
