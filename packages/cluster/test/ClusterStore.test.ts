/**
 * The bookkeeping tables: a run's life (recorded, failed, resumed as a new attempt, finished with its
 * staged rows dropped), a partition's result with its dead letters, and `drop`, which removes every
 * table of a prefix (the engine's `_migrations` with the others) and nothing else.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { afterEach, describe, expect, it } from "vitest"
import * as ClusterStore from "../src/ClusterStore.js"
import { dropAll, pgUrl, query, uniqueName } from "./support/Cluster.js"

const prefixes: Array<string> = []
afterEach(async () => {
  for (const prefix of prefixes.splice(0)) await dropAll({ prefix })
})

describe("ClusterStore", () => {
  it("records a run from start to finish", async () => {
    const prefix = uniqueName("effetl_b")
    prefixes.push(prefix)
    const out = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          const store = yield* ClusterStore.make({ postgres: Redacted.make(pgUrl), prefix })
          yield* store.insertRun({
            runId: "r1",
            pipeline: "p",
            status: "running",
            attempt: 1,
            fullRefresh: false,
            previousRun: null,
            fingerprint: "f",
            startedAt: new Date("2024-01-01T00:00:00Z"),
            error: null
          })
          yield* store.setPlanned("r1", 2)
          yield* store.claimPartition("r1", { key: "s.0000", source: "s", ordinal: 0, spec: { products: [1, 2] } }, "here")
          yield* store.finishPartition("r1", "s.0000", 0, { any: "result" }, ["{\"a\":1}", "{\"b\":2}"])
          yield* store.insertStaged("r1", "s.0000", [{ ordinal: 0, seq: 1, idx: 0, record: "{}", bytes: null }])
          yield* store.failRun("r1", "partition s.0001: 401")
          const failed = yield* store.latestRun("p")
          yield* store.startAttempt("r1", 2)
          const lines = yield* store.deadLetterLines("r1")
          const partition = yield* store.partition("r1", "s.0000")
          yield* store.finishRun("r1", { done: true })
          return { failed, lines, partition, finished: yield* store.lastFinishedRun("p"), staged: yield* store.countStaged("r1") }
        })
      )
    )
    expect(Option.getOrThrow(out.failed)).toMatchObject({ status: "failed", error: "partition s.0001: 401", planned: 2, attempt: 1 })
    expect(out.lines).toEqual(["{\"a\":1}", "{\"b\":2}"])
    expect(Option.getOrThrow(out.partition)).toMatchObject({ status: "finished", place: "here", result: { any: "result" }, spec: { products: [1, 2] } })
    expect(Option.getOrThrow(out.finished)).toMatchObject({ runId: "r1", status: "finished", attempt: 2 })
    expect(out.staged).toBe(0)
    expect(await query(`SELECT 1 FROM "${prefix}_dead_letters"`)).toEqual([])
  }, 60_000)

  it("drop removes every table of the prefix, the engine's migrations included, and leaves other tables", async () => {
    const prefix = uniqueName("effetl_d")
    prefixes.push(prefix)
    await Effect.runPromise(Effect.scoped(ClusterStore.make({ postgres: Redacted.make(pgUrl), prefix })))
    // What the engine and the partitions' state store create next to the bookkeeping.
    for (const t of [`${prefix}_messages`, `${prefix}_replies`, `${prefix}_runners`, `${prefix}_migrations`, `${prefix}_state`, `effetl_migrations_${prefix}_state`, `${prefix}_mine`]) {
      await query(`CREATE TABLE IF NOT EXISTS "${t}" (x int)`)
    }
    const dropped = await Effect.runPromise(ClusterStore.drop({ postgres: Redacted.make(pgUrl), prefix }))
    expect([...dropped].sort()).toEqual(
      [
        `${prefix}_dead_letters`,
        `${prefix}_effetl_migrations`,
        `${prefix}_messages`,
        `${prefix}_migrations`,
        `${prefix}_partitions`,
        `${prefix}_replies`,
        `${prefix}_runners`,
        `${prefix}_runs`,
        `${prefix}_seen`,
        `${prefix}_staged`,
        `${prefix}_state`,
        `effetl_migrations_${prefix}_state`
      ].sort()
    )
    const left = await query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE tablename LIKE $1 OR tablename = $2", [
      `${prefix}%`,
      `effetl_migrations_${prefix}_state`
    ])
    expect(left.map((r) => r.name)).toEqual([`${prefix}_mine`])
  }, 60_000)
})
