/**
 * The end-of-run summary table: every counter a column (dropped and rate-limit waits too), a total
 * row for several sources, and the records transforms dropped listed per source and reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Pipeline, RunStats, type Runner } from "@effetl/core"
import * as Schema from "effect/Schema"
import * as Summary from "../src/Summary.js"

const counts = (c: Partial<RunStats.SourceCounts>): RunStats.SourceCounts => ({ ...RunStats.emptyCounts(), ...c })

const summary: Runner.RunSummary = {
  pipeline: "shop",
  runId: "20261205T000102Z-abcdef",
  status: "finished",
  resumed: false,
  sources: [
    {
      name: "channel",
      use: "channel",
      counts: counts({ read: 186, written: 14, dropped: 172, retries: 91, waits: 12, warnings: 2 }),
      dropped: { "out of stock": 170, "dropped by transform 'x' (no reason given)": 2 },
      seconds: 3
    },
    { name: "acceo", use: "acceo", counts: counts({ read: 10, written: 9, invalid: 1 }), seconds: 1 }
  ],
  sinks: [],
  deadLetters: 1,
  deadLetterPath: "out/dead.jsonl",
  statePath: ".effetl/state.json",
  seconds: 3.5
}

describe("Summary.text", () => {
  it("shows read, written, invalid, deduped, dropped, warnings, retries and waits per source and in total, and the dropped records per reason", () => {
    // The text reads only the pipeline's sinks (for the outputs under the table): none here.
    const pipeline = { sinks: [] } as unknown as Pipeline.Pipeline
    const text = Summary.text(summary, pipeline)
    const lines = text.split("\n")
    const head = lines.find((l) => l.startsWith("source "))!.split(/\s+/)
    expect(head).toEqual(["source", "use", "read", "written", "invalid", "deduped", "dropped", "unhashed", "warnings", "retries", "waits", "time"])
    const row = (name: string) => {
      const cells = lines.find((l) => l.startsWith(`${name} `))!.split(/\s+/)
      if (name === "total") cells.splice(1, 0, "") // its use cell is empty
      return Object.fromEntries(cells.map((c, i) => [head[i], c]))
    }
    expect(row("channel")).toMatchObject({ read: "186", written: "14", dropped: "172", retries: "91", waits: "12", warnings: "2" })
    expect(row("total")).toMatchObject({ read: "196", written: "23", invalid: "1", dropped: "172" })
    expect(text).toContain(
      [
        "dropped by transforms:",
        "  channel  170  out of stock",
        "  channel    2  dropped by transform 'x' (no reason given)"
      ].join("\n")
    )
  })

  it("lists no dropped section when nothing was dropped, and escapes control characters in a reason", () => {
    expect(Summary.droppedLines([{ name: "a" }, { name: "b", dropped: {} }])).toEqual([])
    expect(Summary.droppedLines([{ name: "a", dropped: { "bad\x1b[2Jreason\nforged": 1 } }])).toEqual([
      "",
      "dropped by transforms:",
      "  a  1  bad\\x1b[2Jreason\\nforged"
    ])
  })

  it("the JSON summary carries the dropped records per reason", () => {
    const parsed = Schema.decodeUnknownSync(Schema.parseJson(Schema.Struct({ summary: Schema.Struct({ sources: Schema.Array(Schema.Any) }) })))(Summary.json(summary))
    expect(parsed.summary.sources[0].dropped).toEqual({ "out of stock": 170, "dropped by transform 'x' (no reason given)": 2 })
  })
})
