/**
 * Progress of a run. On a terminal: a line with the elapsed time and the commits so far, and a bar per
 * source, drawn with cli-progress: records read (of the total when the API gives one, with the ETA
 * cli-progress estimates; a spinner from cli-spinners when there is no total), the rate in records
 * per second, pages, the problems so far (retries, rate-limit waits, warnings, invalid and dropped
 * records, counted live as they happen) and what the source is doing. A finished source's bar is full.
 * Off a terminal: a log line per commit and per finished source instead, with the same counts.
 */
import type { Reporter, RunStats } from "@effetl/core"
import cliProgress from "cli-progress"
import spinners from "cli-spinners"

/** What the progress display needs to know to write above the bars. */
export interface Display {
  readonly reporter: Reporter.Reporter
  /** Prints a log line above the bars (or straight to stderr when no bars are drawn). */
  readonly log: (line: string) => void
}

/** Options of {@link bars}. */
export interface BarsOptions {
  /** The clock for elapsed times and rates (tests pass their own). */
  readonly now?: () => number
}

/**
 * Progress bars on `stream` (stderr by default). When the stream is not a terminal (`--progress`
 * forced), the bars are printed as plain lines every two seconds instead of being redrawn in place.
 */
export const bars = (stream: NodeJS.WriteStream = process.stderr, options: BarsOptions = {}): Display => {
  const now = options.now ?? Date.now
  const started = now()
  const sources = new Map<string, SourceRow>()
  let commits = 0
  let written = 0
  let closed = false
  const multi = new cliProgress.MultiBar({
    stream,
    format: (_options, params, payload: { readonly row?: string }) =>
      fit(payload.row === undefined ? header() : sourceLine(payload.row, params.eta), params.maxWidth),
    hideCursor: true,
    clearOnComplete: false,
    // Redraw every tick: a log line printed above the bars (or a ^C echo) must never leave a stale row.
    forceRedraw: true,
    // A forced display off a terminal: print the rows as lines now and then.
    noTTYOutput: stream.isTTY !== true,
    notTTYSchedule: 2000,
    // cli-progress's ETA from the rate over the last ~15 s of redraws (10 a second), kept current while
    // no record arrives (a page can take seconds): a source that stalls sees its ETA grow, not freeze.
    etaAsynchronousUpdate: true,
    etaBuffer: 150
  })
  let active = false

  const header = () => ` ${elapsed(now() - started)} elapsed · ${written} records written · ${commits} ${plural(commits, "commit")}`
  const sourceLine = (name: string, eta: number | string) => {
    const r = sources.get(name)!
    const nameWidth = Math.max(...[...sources.keys()].map((s) => s.length))
    const count = r.total === undefined ? `${r.read}` : `${r.read}/${r.total}`
    const going = !r.finished && !r.stopped && !r.ended
    const facts = [
      `${count} records`,
      ...rateOf(r, now()),
      ...(going && r.total !== undefined && r.read < r.total && typeof eta === "number" ? [`ETA ${cliProgress.Format.TimeFormat(eta, timeFormat, 1)}`] : []),
      `${r.pages} ${plural(r.pages, "page")}`,
      ...problems(r.counts),
      stateOf(r)
    ]
    const tail = ` ${facts.join(" · ")}`
    const head = ` ${name.padEnd(nameWidth)} `
    const size = Math.min(30, (stream.columns ?? 80) - head.length - tail.length - 3)
    return size < 8 ? head + tail.trimStart() : `${head}|${bar(r, size, now() - started)}|${tail}`
  }

  const row = (source: string): SourceRow => {
    let r = sources.get(source)
    if (r === undefined) {
      if (!active) {
        multi.create(1, 0, {}) // the header row
        active = true
      }
      r = {
        read: 0, pages: 0, total: undefined, ended: false, finished: false, stopped: false, counts: {}, since: now(), until: undefined,
        // Holds the read count and total, for cli-progress's ETA.
        bar: multi.create(1, 0, { row: source })
      }
      sources.set(source, r)
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
      total: (s, n) => {
        const r = row(s)
        r.total = n
        r.bar.setTotal(Math.max(n, 1))
      },
      page: (s) => void row(s).pages++,
      read: (s, n) => {
        const r = row(s)
        r.read += n
        r.bar.update(r.read)
      },
      counted: (s, counter, n) => {
        const c = row(s).counts
        c[counter] = (c[counter] ?? 0) + n
      },
      sourceFinished: (s) => {
        const r = row(s)
        r.ended = true
        r.until = now()
      },
      committed: (n) => {
        commits++
        written += n
        // A source whose stream ended before a commit ended well (a failed or interrupted one is followed by no commit).
        for (const r of sources.values()) if (r.ended) r.finished = true
      },
      close: () => {
        if (closed) return
        closed = true
        for (const r of sources.values()) {
          if (!r.finished) r.stopped = true
          r.until ??= now()
        }
        if (active) multi.stop()
      }
    }
  }
}

/**
 * A reporter for non-terminals: after each commit a line per source still reading with the records
 * read so far and its problems so far (retries, waits, warnings, ...), and a line when a source is done.
 */
export const lines = (log: (source: string, line: string) => void): Reporter.Reporter => {
  const read = new Map<string, number>()
  const totals = new Map<string, number>()
  const counts = new Map<string, Partial<Record<RunStats.Counter, number>>>()
  const ended = new Set<string>()
  const done = new Set<string>()
  const count = (s: string) => `${read.get(s) ?? 0}${totals.has(s) ? `/${totals.get(s)}` : ""}`
  const also = (s: string) => problems(counts.get(s) ?? {}).map((p) => ` · ${p}`).join("")
  return {
    total: (s, n) => void totals.set(s, n),
    read: (s, n) => void read.set(s, (read.get(s) ?? 0) + n),
    counted: (s, counter, n) => {
      const c = counts.get(s) ?? {}
      c[counter] = (c[counter] ?? 0) + n
      counts.set(s, c)
    },
    sourceFinished: (s) => void ended.add(s),
    committed: () => {
      for (const s of read.keys()) {
        if (done.has(s)) continue
        // A source whose stream ended before a commit ended well (a failed or interrupted one is followed by no commit).
        if (ended.has(s)) {
          done.add(s)
          log(s, `source done: ${count(s)} records read${also(s)}`)
        } else log(s, `committed: ${count(s)} records read${also(s)}`)
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
  /** the counters moved so far (retries, waits, warnings, ...) */
  readonly counts: Partial<Record<RunStats.Counter, number>>
  /** when it started and when it stopped reading (for its rate) */
  readonly since: number
  until: number | undefined
  readonly bar: cliProgress.SingleBar
}

/** The counters shown when not zero, in this order, with their names. */
const shown: ReadonlyArray<readonly [RunStats.Counter, string, string]> = [
  ["retries", "retry", "retries"],
  ["waits", "rate-limit wait", "rate-limit waits"],
  ["warnings", "warning", "warnings"],
  ["invalid", "invalid", "invalid"],
  ["dropped", "dropped", "dropped"]
]

/** The problems so far: `3 retries`, `1 rate-limit wait`, ... (only those that happened). */
const problems = (counts: Partial<Record<RunStats.Counter, number>>): Array<string> =>
  shown.flatMap(([counter, one, many]) => {
    const n = counts[counter] ?? 0
    return n === 0 ? [] : [`${n} ${n === 1 ? one : many}`]
  })

/** Records per second since the source started (until it stopped), once a second has passed. */
const rateOf = (r: SourceRow, now: number): Array<string> => {
  const seconds = ((r.until ?? now) - r.since) / 1000
  if (seconds < 1 || r.read === 0) return []
  const rate = r.read / seconds
  return [`${rate < 10 ? rate.toFixed(1) : Math.round(rate)}/s`]
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

const dots = spinners.dots
const timeFormat = { autopaddingChar: "" } as cliProgress.Options

/** cli-progress's bar: full when done, the share read of a known total, else a spinner while reading. */
const bar = (r: SourceRow, size: number, sinceStart: number): string => {
  const options = { barsize: size, barCompleteString: "█".repeat(size), barIncompleteString: "░".repeat(size), barGlue: "" } as cliProgress.Options
  if (r.finished) return cliProgress.Format.BarFormat(1, options)
  if (r.total === undefined) {
    // No total from the API: the count says how far; a spinner says it is alive.
    const going = !r.stopped && !r.ended
    const frame = dots.frames[Math.floor(sinceStart / dots.interval) % dots.frames.length]!
    return going ? frame + cliProgress.Format.BarFormat(0, { ...options, barsize: size - 1 }) : cliProgress.Format.BarFormat(0, options)
  }
  return cliProgress.Format.BarFormat(Math.min(1, r.read / Math.max(r.total, 1)), options)
}

const fit = (s: string, width: number): string => (s.length <= width - 1 ? s : s.slice(0, Math.max(0, width - 2)) + "…")

const plural = (n: number, word: string): string => (n === 1 ? word : `${word}s`)

const elapsed = (ms: number): string => {
  const s = Math.floor(ms / 1000)
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`
}
