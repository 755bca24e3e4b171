/**
 * Progress of a run. On a terminal: a line with the elapsed time and the commits so far, and a bar per
 * source (records read of the total when the API gives one, pages, and what the source is doing),
 * drawn with cli-progress. Off a terminal: a log line per commit and per finished source instead.
 */
import type { Reporter } from "@effetl/core"
import cliProgress from "cli-progress"

/** What the progress display needs to know to write above the bars. */
export interface Display {
  readonly reporter: Reporter.Reporter
  /** Prints a log line above the bars (or straight to stderr when no bars are drawn). */
  readonly log: (line: string) => void
}

/**
 * Progress bars on `stream` (stderr by default). When the stream is not a terminal (`--progress`
 * forced), the bars are printed as plain lines every two seconds instead of being redrawn in place.
 */
export const bars = (stream: NodeJS.WriteStream = process.stderr): Display => {
  const started = Date.now()
  const sources = new Map<string, SourceRow>()
  let commits = 0
  let written = 0
  let closed = false
  const multi = new cliProgress.MultiBar({
    stream,
    format: (_options, params, payload: { readonly row?: string }) =>
      fit(payload.row === undefined ? header() : sourceLine(payload.row), params.maxWidth),
    hideCursor: true,
    clearOnComplete: false,
    // Redraw every tick: a log line printed above the bars (or a ^C echo) must never leave a stale row.
    forceRedraw: true,
    // A forced display off a terminal: print the rows as lines now and then.
    noTTYOutput: stream.isTTY !== true,
    notTTYSchedule: 2000
  })
  let active = false

  const header = () => ` ${elapsed(Date.now() - started)} elapsed · ${written} records written · ${commits} ${plural(commits, "commit")}`
  const sourceLine = (name: string) => {
    const r = sources.get(name)!
    const nameWidth = Math.max(...[...sources.keys()].map((s) => s.length))
    const count = r.total === undefined ? `${r.read}` : `${r.read}/${r.total}`
    const tail = ` ${count} records · ${r.pages} ${plural(r.pages, "page")} · ${stateOf(r)}`
    const head = ` ${name.padEnd(nameWidth)} `
    const size = Math.min(30, (stream.columns ?? 80) - head.length - tail.length - 3)
    return size < 8 ? head + tail.trimStart() : `${head}|${bar(r, size)}|${tail}`
  }

  const row = (source: string): SourceRow => {
    let r = sources.get(source)
    if (r === undefined) {
      if (!active) {
        multi.create(1, 0, {}) // the header row
        active = true
      }
      r = { read: 0, pages: 0, total: undefined, ended: false, finished: false, stopped: false }
      sources.set(source, r)
      multi.create(1, 0, { row: source })
    }
    return r
  }

  return {
    log: (line) => {
      if (!active || closed) {
        stream.write(line + "\n")
      } else {
        multi.log(line + "\n")
        multi.update() // flush the line now, so nothing is lost if the run stops right after
      }
    },
    reporter: {
      sourceStarted: (s) => void row(s),
      total: (s, n) => void (row(s).total = n),
      page: (s) => void row(s).pages++,
      read: (s, n) => void (row(s).read += n),
      sourceFinished: (s) => void (row(s).ended = true),
      committed: (n) => {
        commits++
        written += n
        // A source whose stream ended before a commit ended well (a failed or interrupted one is followed by no commit).
        for (const r of sources.values()) if (r.ended) r.finished = true
      },
      close: () => {
        if (closed) return
        closed = true
        for (const r of sources.values()) if (!r.finished) r.stopped = true
        if (active) multi.stop()
      }
    }
  }
}

/**
 * A reporter for non-terminals: after each commit a line per source still reading with the records
 * read so far, and a line when a source is done.
 */
export const lines = (log: (source: string, line: string) => void): Reporter.Reporter => {
  const read = new Map<string, number>()
  const totals = new Map<string, number>()
  const ended = new Set<string>()
  const done = new Set<string>()
  const count = (s: string) => `${read.get(s) ?? 0}${totals.has(s) ? `/${totals.get(s)}` : ""}`
  return {
    total: (s, n) => void totals.set(s, n),
    read: (s, n) => void read.set(s, (read.get(s) ?? 0) + n),
    sourceFinished: (s) => void ended.add(s),
    committed: () => {
      for (const s of read.keys()) {
        if (done.has(s)) continue
        // A source whose stream ended before a commit ended well (a failed or interrupted one is followed by no commit).
        if (ended.has(s)) {
          done.add(s)
          log(s, `source done: ${count(s)} records read`)
        } else log(s, `committed: ${count(s)} records read`)
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

interface SourceRow {
  read: number
  pages: number
  total: number | undefined
  /** its stream ended (well or not) */
  ended: boolean
  /** its stream ended well */
  finished: boolean
  stopped: boolean
}

const stateOf = (r: SourceRow): string =>
  r.finished
    ? "done"
    : r.stopped
      ? "stopped"
      : r.ended
        ? "finishing"
        : r.total !== undefined && r.read >= r.total
          ? "all read, processing"
          : "reading"

const bar = (r: SourceRow, size: number): string => {
  if (r.total === undefined) return "░".repeat(size) // no total from the API: the count says how far
  const done = r.finished ? size : Math.min(size, Math.floor((r.read / Math.max(r.total, 1)) * size))
  return "█".repeat(done) + "░".repeat(size - done)
}

const fit = (s: string, width: number): string => (s.length <= width - 1 ? s : s.slice(0, Math.max(0, width - 2)) + "…")

const plural = (n: number, word: string): string => (n === 1 ? word : `${word}s`)

const elapsed = (ms: number): string => {
  const s = Math.floor(ms / 1000)
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`
}
