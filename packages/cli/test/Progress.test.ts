/**
 * The progress display: bars drawn on a terminal stream (a writable that says it is a TTY, so the
 * real cli-progress drawing runs), and log lines for non-terminals.
 */
import { describe, expect, it } from "@effect/vitest"
import spinners from "cli-spinners"
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
    // cli-progress's ETA shows once it has an estimate (it depends on the real clock: not asserted)
    expect(row).toMatch(/^ channel \|█{9}░{21}\| 30\/100 records · (ETA \S+ · )?1 page · reading$/)

    ui.reporter.read!("channel", 70)
    ui.reporter.page!("channel")
    ui.reporter.committed!(100)
    ui.reporter.sourceFinished!("channel")
    ui.reporter.committed!(0) // the final commit: the source ended well
    ui.reporter.close!()
    const final = t.pieces()
    expect(final.filter((l) => l.includes("elapsed")).at(-1)).toMatch(/· 100 records written · 2 commits$/)
    expect(final.filter((l) => l.startsWith(" channel |")).at(-1)).toMatch(/^ channel \|█{30}\| 100\/100 records · 2 pages · done$/)
    expect(final.join("\n")).not.toMatch(/done.*ETA|ETA.*done/)
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

  it("counts retries, rate-limit waits, warnings, invalid and dropped records live, and shows the rate in records per second", () => {
    const t = terminal(160)
    let clock = 1_000_000
    const ui = Progress.bars(t.stream, { now: () => clock })
    ui.reporter.sourceStarted!("shop")
    ui.reporter.total!("shop", 200)
    for (let i = 0; i < 3; i++) ui.reporter.counted!("shop", "retries", 1)
    ui.reporter.counted!("shop", "waits", 1)
    ui.reporter.counted!("shop", "warnings", 2)
    ui.reporter.counted!("shop", "read", 50) // counters the row shows otherwise are not repeated
    clock += 2000
    ui.reporter.read!("shop", 50)
    ui.reporter.counted!("shop", "dropped", 4)
    ui.reporter.counted!("shop", "invalid", 1)
    ui.log("flush")
    const row = t.pieces().filter((l) => l.startsWith(" shop |")).at(-1)!
    expect(row).toMatch(/^ shop \|█{8}░{22}\| 50\/200 records · 25\/s · (ETA \S+ · )?0 pages · 3 retries · 1 rate-limit wait · 2 warnings · 1 invalid · 4 dropped · reading$/)
    // After the source ends the rate stays the one of its reading time.
    ui.reporter.sourceFinished!("shop")
    clock += 60_000
    ui.reporter.committed!(50)
    ui.reporter.close!()
    expect(t.pieces().filter((l) => l.startsWith(" shop |")).at(-1)).toMatch(/ 50\/200 records · 25\/s · 0 pages · 3 retries .* · done$/)
  })

  it("without a total: a spinner and the count while reading; a full bar when done", () => {
    const t = terminal(100)
    const ui = Progress.bars(t.stream)
    ui.reporter.sourceStarted!("feed")
    ui.reporter.read!("feed", 12)
    ui.log("flush")
    const frames = spinners.dots.frames.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")
    const reading = t.pieces().filter((l) => l.startsWith(" feed |")).at(-1)!
    expect(reading).toMatch(new RegExp(`^ feed \\|(${frames})░{29}\\| 12 records · 0 pages · reading$`))
    ui.reporter.read!("feed", 3)
    ui.reporter.sourceFinished!("feed")
    ui.reporter.committed!(15)
    ui.reporter.close!()
    expect(t.pieces().filter((l) => l.startsWith(" feed |")).at(-1)).toMatch(/^ feed \|█{30}\| 15 records · 0 pages · done$/)
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

  it("says the problems of each source so far: retries, rate-limit waits, warnings", () => {
    const logged: Array<string> = []
    const r = Progress.lines((_source, line) => logged.push(line))
    r.read!("shop", 10)
    r.counted!("shop", "retries", 2)
    r.counted!("shop", "waits", 1)
    r.counted!("shop", "warnings", 1)
    r.committed!(10)
    r.sourceFinished!("shop")
    r.counted!("shop", "dropped", 3)
    r.committed!(0)
    expect(logged).toEqual([
      "committed: 10 records read · 2 retries · 1 rate-limit wait · 1 warning",
      "source done: 10 records read · 2 retries · 1 rate-limit wait · 1 warning · 3 dropped"
    ])
  })
})
