/**
 * Two outputs on one path are found from the configs, before a run: sinks, the dead-letter file,
 * the JSON state file and the run directory, each conflict named by both config options.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as PathConflicts from "../src/PathConflicts.js"
import * as Pipeline from "../src/Pipeline.js"
import * as Sink from "../src/Sink.js"
import * as Source from "../src/Source.js"

const source = Source.define({
  name: "fake",
  description: "test source",
  config: Schema.Struct({}),
  make: () => Effect.succeed({ productComplete: true, stream: Stream.empty, check: Effect.void })
})

/** A file sink: a file in overwrite mode, a directory in append mode. */
const fileSink = Sink.define({
  name: "file",
  description: "test sink",
  config: Schema.Struct({ path: Schema.String, mode: Schema.optionalWith(Schema.Literal("overwrite", "append"), { default: () => "overwrite" }) }),
  outputs: (c) => [{ option: "path", path: path.resolve(c.path), kind: c.mode === "append" ? "directory" : "file" }],
  make: () => Effect.die("not used")
})

/** A database sink: tables of one file do not conflict. */
const dbSink = Sink.define({
  name: "db",
  description: "test sink",
  config: Schema.Struct({ path: Schema.String, table: Schema.String }),
  outputs: (c) => [{ option: "path", path: path.resolve(c.path), kind: "file", part: `table ${c.table}` }],
  make: () => Effect.die("not used")
})

/** A store: a directory and a manifest inside it (one sink: no conflict with itself). */
const storeSink = Sink.define({
  name: "store",
  description: "test sink",
  config: Schema.Struct({ dir: Schema.String }),
  outputs: (c) => [
    { option: "dir", path: path.resolve(c.dir), kind: "directory" },
    { option: "dir", path: path.resolve(c.dir, "manifest.csv"), kind: "file" }
  ],
  make: () => Effect.die("not used")
})

/** A sink that declares nothing (no local files). */
const remoteSink = Sink.define({ name: "remote", description: "test sink", config: Schema.Struct({}), make: () => Effect.die("not used") })

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effetl-conflicts-"))
const at = (p: string) => path.join(dir, p)

const pipeline = (
  sinks: Record<string, { use: Sink.SinkPlugin; with?: unknown }>,
  extra: { deadLetterPath?: string; statePath?: string } = {}
) =>
  Effect.runSync(
    Pipeline.make({
      name: "p",
      sources: { s: { use: source } },
      sinks,
      deadLetterPath: extra.deadLetterPath ?? at("out/dead-letter.jsonl"),
      statePath: extra.statePath ?? at(".effetl/state.json")
    })
  )

const messageOf = (p: Pipeline.Pipeline) => Effect.runSync(PathConflicts.check(p).pipe(Effect.flip)).message

describe("PathConflicts", () => {
  it("separate paths: no conflict", () => {
    const p = pipeline({
      csv: { use: fileSink, with: { path: at("out/images.csv") } },
      parts: { use: fileSink, with: { path: at("out/parts"), mode: "append" } },
      db1: { use: dbSink, with: { path: at("out/images.db"), table: "a" } },
      db2: { use: dbSink, with: { path: at("out/images.db"), table: "b" } },
      store: { use: storeSink, with: { dir: at("out/images") } },
      remote: { use: remoteSink }
    })
    expect(PathConflicts.find(PathConflicts.outputsOf(p))).toEqual([])
    Effect.runSync(PathConflicts.check(p))
  })

  it("two sinks on one path: both named", () => {
    const p = pipeline({ a: { use: fileSink, with: { path: at("out/x.csv") } }, b: { use: fileSink, with: { path: at("out/./x.csv") } } })
    const message = messageOf(p)
    expect(message).toContain("sinks.a.with.path and sinks.b.with.path are the same path")
    expect(message).toContain("x.csv")
    expect(message.split("\n")).toHaveLength(1)
  })

  it("a sink on the dead-letter file or on the state file", () => {
    expect(messageOf(pipeline({ a: { use: fileSink, with: { path: at("out/dead-letter.jsonl") } } }))).toContain(
      "sinks.a.with.path and deadLetter.path are the same path"
    )
    expect(messageOf(pipeline({ a: { use: fileSink, with: { path: at(".effetl/state.json") } } }))).toContain(
      "sinks.a.with.path and state.path are the same path"
    )
    expect(messageOf(pipeline({ a: { use: fileSink, with: { path: at("x.csv") } } }, { deadLetterPath: at(".effetl/state.json") }))).toContain(
      "deadLetter.path and state.path are the same path"
    )
  })

  it("the same database table twice, or a file sink on a database", () => {
    expect(
      messageOf(pipeline({ a: { use: dbSink, with: { path: at("d.db"), table: "t" } }, b: { use: dbSink, with: { path: at("d.db"), table: "t" } } }))
    ).toContain("sinks.a.with.path and sinks.b.with.path are the same path (table t)")
    expect(
      messageOf(pipeline({ a: { use: dbSink, with: { path: at("d.db"), table: "t" } }, b: { use: fileSink, with: { path: at("d.db") } } }))
    ).toContain("sinks.a.with.path and sinks.b.with.path are the same path")
  })

  it("an output inside another sink's directory, or under a file", () => {
    expect(
      messageOf(pipeline({ parts: { use: fileSink, with: { path: at("out/parts"), mode: "append" } }, b: { use: fileSink, with: { path: at("out/parts/b.csv") } } }))
    ).toMatch(/^sinks\.b\.with\.path \(.*b\.csv\) is inside the directory of sinks\.parts\.with\.path/)
    expect(messageOf(pipeline({ store: { use: storeSink, with: { dir: at("out") } } }))).toMatch(
      /^deadLetter\.path \(.*dead-letter\.jsonl\) is inside the directory of sinks\.store\.with\.dir/
    )
    expect(
      messageOf(pipeline({ a: { use: fileSink, with: { path: at("out/a.csv") } }, b: { use: fileSink, with: { path: at("out/a.csv/b.csv") } } }))
    ).toContain("which is a file")
    expect(messageOf(pipeline({ a: { use: fileSink, with: { path: at(".effetl/runs"), mode: "append" } } }))).toContain(
      "the run directory beside state.path"
    )
  })

  it("a symbolic link to a directory is followed", () => {
    fs.mkdirSync(at("real"), { recursive: true })
    fs.symlinkSync(at("real"), at("link"))
    const message = messageOf(pipeline({ a: { use: fileSink, with: { path: at("real/x.csv") } }, b: { use: fileSink, with: { path: at("link/x.csv") } } }))
    expect(message).toContain("sinks.a.with.path and sinks.b.with.path are the same path")
  })

  it("with a state store plugin, the JSON state path is not an output (only its run directory is)", () => {
    const outputs = PathConflicts.outputsOf({ ...pipeline({ a: { use: fileSink, with: { path: at("x.csv") } } }), stateStore: { plugin: {} as never, config: {} } })
    expect(outputs.map((o) => o.owner)).toEqual(["sinks.a.with.path", "deadLetter.path", "the run directory beside state.path"])
  })
})
