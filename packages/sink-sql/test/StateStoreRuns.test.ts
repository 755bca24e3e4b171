/**
 * What `effetl runs` needs of the SQL state stores: the run history saved and loaded with the state
 * (SQLite and Postgres), and on Postgres whether a run holds the pipeline's lock, seen from another
 * connection pool (as from another machine).
 */
import { describe, expect, it } from "@effect/vitest"
import { RunHistory, StateStore } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as SqlStateStore from "../src/SqlStateStore.js"
import { backends, pgUrl, withSchema } from "./Support.js"

const withHistory = RunHistory.record(
  { ...StateStore.empty, run: { id: "r2", status: "failed", startedAt: "2026-01-01T00:01:00.000Z", error: "boom" } },
  { id: "r2", status: "failed", startedAt: "2026-01-01T00:01:00.000Z", error: "boom", sources: { shop: { counts: { read: 3 }, dropped: { "too small": 2 } } } }
)

for (const backend of backends) {
  describe(`${backend.name} state store`, () => {
    it.effect("keeps the run history with the state", () =>
      backend.run((db) =>
        Effect.gen(function*() {
          const store = yield* SqlStateStore.make({ target: db.target, schema: db.schema, table: "effetl_state" })
          yield* store.save("p", withHistory)
          const loaded = yield* store.load("p")
          expect(loaded).toEqual(withHistory)
          expect(RunHistory.list(loaded, false).map((r) => [r.id, r.status])).toEqual([["r2", "failed"]])
        }).pipe(Effect.scoped)
      ))
  })
}

describe("postgres state store", () => {
  it.effect("says whether a run holds the pipeline's lock, from another pool too", () =>
    withSchema((schema) =>
      Effect.gen(function*() {
        const store = yield* SqlStateStore.make({ target: { _tag: "postgres", url: Redacted.make(pgUrl) }, schema, table: "effetl_state" })
        const other = yield* SqlStateStore.make({
          target: { _tag: "postgres", url: Redacted.make(`${pgUrl}${pgUrl.includes("?") ? "&" : "?"}application_name=other`) },
          schema,
          table: "effetl_state"
        })
        expect(yield* other.running!("p")).toBe(false)
        yield* Effect.scoped(
          Effect.gen(function*() {
            yield* store.lock!("p")
            expect(yield* other.running!("p")).toBe(true)
            expect(yield* other.running!("q")).toBe(false)
          })
        )
        expect(yield* other.running!("p")).toBe(false)
      })
    ))
})
