/**
 * Crash safety with real kills: a child process runs a pipeline through core's Runner (an in-test
 * source, a SQL sink, the state in the same database or in a JSON file) and core's
 * `EFFETL_CRASH_AT` hook SIGKILLs it at a point of the commit protocol. Then it is run again.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import type { Spec } from "./fixtures/run-pipeline.js"
import { backends, pgUrl, type TestDb, tmp } from "./Support.js"

const packageDir = path.resolve(import.meta.dirname, "..")

/** Runs the child; `crashAt` is an EFFETL_CRASH_AT spec. */
const runChild = (spec: Spec, crashAt?: string) => {
  const out = spawnSync(process.execPath, ["--import", "tsx", path.join(packageDir, "test/fixtures/run-pipeline.ts")], {
    cwd: packageDir,
    encoding: "utf8",
    timeout: 60_000,
    env: {
      ...process.env,
      EFFETL_TEST_SPEC: JSON.stringify(spec),
      // tsx maps @effetl/core to core's sources, as vitest does
      TSX_TSCONFIG_PATH: path.join(packageDir, "tsconfig.check.json"),
      ...(crashAt ? { EFFETL_CRASH_AT: crashAt } : {})
    }
  })
  // stdout holds log lines, then the summary's JSON line (none when killed)
  const last = out.stdout.split("\n").filter((l) => l.startsWith("{")).at(-1)
  return { signal: out.signal, status: out.status, stderr: out.stderr, result: last === undefined ? undefined : JSON.parse(last) }
}

const specFor = (db: TestDb, dir: string, overrides: Partial<Spec>): Spec => ({
  db: db.target._tag,
  where: db.target._tag === "sqlite" ? db.target.path : pgUrl,
  ...(db.schema ? { schema: db.schema } : {}),
  mode: "merge",
  state: "same",
  statePath: path.join(dir, "state.json"),
  deadLetterPath: path.join(dir, "dead.jsonl"),
  products: 5,
  images: 2,
  version: 1,
  ...overrides
})

const productIds = (db: TestDb, table = "product_images") =>
  Effect.map(
    db.query<{ product_id: string; n: unknown }>(`SELECT product_id, count(*) AS n FROM ${db.q(table)} GROUP BY product_id ORDER BY product_id`),
    (rows) => rows.map((r) => `${r.product_id}x${Number(r.n)}`)
  )

const savedState = (db: TestDb) =>
  Effect.map(db.query<{ state: unknown }>(`SELECT state FROM ${db.q("effetl_state")} WHERE pipeline = 'crash'`), (rows) => {
    const s = rows[0]?.state
    return (typeof s === "string" ? JSON.parse(s) : s) as { run: { id: string; status: string }; sources: Record<string, { checkpoint: { value: number } | null }> }
  })

for (const backend of backends) {
  describe(`${backend.name}: kill and rerun`, () => {
    for (const maxBuffered of [undefined, 1]) {
      it.effect(`state in the same database: a kill between the sink's insert and the state save leaves neither; the rerun loads every row once${maxBuffered ? " (rows staged in the work table first)" : ""}`, () =>
      backend.run((db) =>
        Effect.gen(function*() {
          const dir = tmp()
          const spec = specFor(db, dir, { ...(maxBuffered ? { maxBuffered } : {}) })
          // Commit n writes product n-1 (one product per batch, a commit per batch): die inside the third.
          const killed = runChild(spec, "after-sink-commit:3")
          expect(killed.signal).toBe("SIGKILL")
          // The third commit's rows (product 2) and its state went together: neither is there.
          expect(yield* productIds(db)).toEqual(["0x2", "1x2"])
          const state = yield* savedState(db)
          expect(state.run.status).toBe("running")
          expect(state.sources.shop!.checkpoint!.value).toBe(1)
          const rerun = runChild(spec)
          expect(rerun.stderr).not.toContain("Error")
          expect(rerun.result).toMatchObject({ status: "finished", resumed: true, runId: state.run.id })
          expect(yield* productIds(db)).toEqual(["0x2", "1x2", "2x2", "3x2", "4x2"])
          expect((yield* savedState(db)).run.status).toBe("finished")
        })
      ))
    }

    it.effect("replace: a run killed midway leaves the previous table whole; the rerun resumes and swaps in the new one", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          const dir = tmp()
          expect(runChild(specFor(db, dir, { mode: "replace", version: 1 })).result).toMatchObject({ status: "finished" })
          const v2 = specFor(db, dir, { mode: "replace", version: 2, products: 4, maxBuffered: 1 })
          expect(runChild(v2, "after-state-save:3").signal).toBe("SIGKILL")
          const alts = () => db.query<{ alt: string; n: unknown }>(`SELECT alt, count(*) AS n FROM ${db.q("product_images")} GROUP BY alt`)
          expect((yield* alts()).map((r) => [r.alt, Number(r.n)])).toEqual([["v1", 10]])
          expect(yield* productIds(db, "product_images__staging")).toEqual(["0x2", "1x2", "2x2"])
          expect(runChild(v2).result).toMatchObject({ status: "finished", resumed: true })
          expect((yield* alts()).map((r) => [r.alt, Number(r.n)])).toEqual([["v2", 8]])
        })
      ))
  })
}

describe("sqlite: state in a JSON file", () => {
  it.effect("a kill between the sink's commit and the state save: the rerun replays that batch, and merge makes it harmless", () =>
    backends[0]!.run((db) =>
      Effect.gen(function*() {
        const dir = tmp()
        const spec = specFor(db, dir, { state: "json" })
        expect(runChild(spec, "after-sink-commit:3").signal).toBe("SIGKILL")
        // Unlike state in the same database, the third commit's rows are in, though its checkpoint is not.
        expect(yield* productIds(db)).toEqual(["0x2", "1x2", "2x2"])
        expect(runChild(spec).result).toMatchObject({ status: "finished", resumed: true })
        expect(yield* productIds(db)).toEqual(["0x2", "1x2", "2x2", "3x2", "4x2"])
      })
    ))
})
