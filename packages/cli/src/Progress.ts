/**
 * Progress on a terminal: one bar per source (records, pages, the total when the API gives one),
 * drawn with cli-progress. Off a terminal, a log line per commit instead.
 */
import type { Reporter } from "@effetl/core"
import cliProgress from "cli-progress"

/** A reporter drawing progress bars on stderr, and a `log` that prints above them. */
export const bars = (): { reporter: Reporter.Reporter; log: (line: string) => void } => {
  const multi = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      clearOnComplete: false,
      hideCursor: true,
      format: " {source} |{bar}| {value}/{totalText} records · {pages} pages",
      barsize: 30,
      etaBuffer: 50
    },
    cliProgress.Presets.shades_classic
  )
  const rows = new Map<string, { bar: cliProgress.SingleBar; value: number; pages: number; total: number | undefined }>()
  const row = (source: string) => {
    let r = rows.get(source)
    if (!r) {
      const width = Math.max(...[...rows.keys(), source].map((s) => s.length))
      r = { bar: multi.create(0, 0, { source: source.padEnd(width), totalText: "?", pages: 0 }), value: 0, pages: 0, total: undefined }
      rows.set(source, r)
    }
    return r
  }
  const draw = (r: { bar: cliProgress.SingleBar; value: number; pages: number; total: number | undefined }) => {
    r.bar.setTotal(Math.max(r.total ?? r.value, r.value, 1))
    r.bar.update(r.value, { totalText: r.total === undefined ? "?" : String(r.total), pages: r.pages })
  }
  let closed = false
  return {
    log: (line) => (closed ? process.stderr.write(line + "\n") : multi.log(line + "\n")),
    reporter: {
      sourceStarted: (s) => draw(row(s)),
      total: (s, n) => {
        const r = row(s)
        r.total = n
        draw(r)
      },
      page: (s) => {
        const r = row(s)
        r.pages++
        draw(r)
      },
      read: (s, n) => {
        const r = row(s)
        r.value += n
        draw(r)
      },
      close: () => {
        if (closed) return
        closed = true
        multi.stop()
      }
    }
  }
}

/** A reporter for non-terminals: a log line per commit with records so far. */
export const lines = (log: (source: string, line: string) => void): Reporter.Reporter => {
  const read = new Map<string, number>()
  const totals = new Map<string, number>()
  return {
    total: (s, n) => totals.set(s, n),
    read: (s, n) => read.set(s, (read.get(s) ?? 0) + n),
    committed: () => {
      for (const [s, n] of read) log(s, `committed: ${n}${totals.has(s) ? `/${totals.get(s)}` : ""} records read`)
    }
  }
}
