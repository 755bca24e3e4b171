/**
 * The progress display: bars drawn on a terminal stream (a writable that says it is a TTY, so the
 * real cli-progress drawing runs), and log lines for non-terminals.
 */
import { describe, expect, it } from "@effect/vitest"
import { Writable } from "node:stream"
import * as Progress from "../src/Progress.js"

/** A stream that records what is written and presents itself as a terminal of `columns` columns. */
const terminal = (columns: number) => {
  const chunks: Array<string> = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk))
      done()
    }
  }) as Writable & { isTTY: boolean; columns: number }
  stream.isTTY = true
  stream.columns = columns
  const raw = () => chunks.join("")
  // The text as drawn: ANSI control sequences removed, split into the pieces each \r or \n starts.
  const pieces = () =>
    raw()
      .replace(/\x1B\[[0-9;?]*[A-Za-z]/g, "\n")
      .split(/[\r\n]/)
      .filter((s) => s.length > 0)
  return { stream: stream as unknown as NodeJS.WriteStream, raw, pieces }
}

describe("Progress.bars", () => {
  it("draws a header and a bar per source with records, total, pages and state; logs print above and are never lost", () => {
    const t = terminal(100)
    const ui = Progress.bars(t.stream)
    ui.log("before any bar") // no bars yet: straight through
    ui.reporter.sourceStarted!("channel")
    ui.reporter.total!("channel", 100)
    ui.reporter.page!("channel")
    ui.reporter.read!("channel", 30)
    ui.log("12:00:00 INFO  a log line") // flushed at once, with the bars redrawn under it
    const drawn = t.pieces()
    expect(drawn[0]).toBe("before any bar")
    const logAt = drawn.indexOf("12:00:00 INFO  a log line")
    expect(logAt).toBeGreaterThan(0)
    const header = drawn.slice(logAt).find((l) => l.includes("elapsed"))
    expect(header).toMatch(/^ \d+s elapsed · 0 records written · 0 commits$/)
    const row = drawn.slice(logAt).find((l) => l.startsWith(" channel |"))
    expect(row).toMatch(/^ channel \|█{9}░{21}\| 30\/100 records · 1 page · reading$/)

    ui.reporter.read!("channel", 70)
    ui.reporter.page!("channel")
    ui.reporter.committed!(100)
    ui.reporter.sourceFinished!("channel")
    ui.reporter.committed!(0) // the final commit: the source ended well
    ui.reporter.close!()
    const final = t.pieces()
    expect(final.filter((l) => l.includes("elapsed")).at(-1)).toMatch(/· 100 records written · 2 commits$/)
    expect(final.filter((l) => l.startsWith(" channel |")).at(-1)).toMatch(/^ channel \|█{30}\| 100\/100 records · 2 pages · done$/)
    // The cursor is shown again.
    expect(t.raw()).toContain("\x1B[?25h")
    // After close, a line goes straight to the stream.
    ui.log("after")
    expect(t.pieces().at(-1)).toBe("after")
  })

  it("a source whose run was stopped or failed (no commit after its end) is shown as stopped, not done", () => {
    const t = terminal(100)
    const ui = Progress.bars(t.stream)
    ui.reporter.sourceStarted!("a")
    ui.reporter.read!("a", 5)
    ui.reporter.sourceFinished!("a") // the runner ends a source's stream on interruption too
    ui.reporter.close!()
    expect(t.pieces().filter((l) => l.startsWith(" a |")).at(-1)).toMatch(/5 records · 0 pages · stopped$/)
  })

  it("without a total, shows the count and an empty bar; names of several sources line up; rows fit a narrow terminal", () => {
    const t = terminal(60)
    const ui = Progress.bars(t.stream)
    ui.reporter.sourceStarted!("short")
    ui.reporter.sourceStarted!("a-much-longer-source-name")
    ui.reporter.read!("short", 7)
    ui.reporter.total!("a-much-longer-source-name", 1000)
    ui.reporter.read!("a-much-longer-source-name", 999)
    ui.reporter.close!()
    const drawn = t.pieces()
    const shortRow = drawn.filter((l) => l.startsWith(" short ")).at(-1)!
    const longRow = drawn.filter((l) => l.startsWith(" a-much-longer-source-name ")).at(-1)!
    expect(shortRow).toMatch(/^ short {21}(\|░+\| )?7 records · 0 pages · stopped$/)
    expect(longRow).toContain("999/1000 records")
    for (const line of drawn) expect(line.length, line).toBeLessThan(60)
  })
})

describe("Progress.lines", () => {
  it("logs records read per source at each commit, and 'source done' only after a commit that follows its end", () => {
    const logged: Array<[string, string]> = []
    const r = Progress.lines((source, line) => logged.push([source, line]))
    r.total!("channel", 40)
    r.read!("channel", 10)
    r.read!("other", 3)
    r.committed!(13)
    expect(logged).toEqual([
      ["channel", "committed: 10/40 records read"],
      ["other", "committed: 3 records read"]
    ])
    logged.length = 0
    r.read!("channel", 30)
    r.sourceFinished!("channel")
    r.sourceFinished!("other") // e.g. a failure ending the streams: no commit follows
    expect(logged).toEqual([])
    r.committed!(30)
    expect(logged).toEqual([
      ["channel", "source done: 40/40 records read"],
      ["other", "source done: 3 records read"]
    ])
    logged.length = 0
    r.committed!(0)
    expect(logged).toEqual([]) // a done source is not repeated
  })
})
