/**
 * The __plugin__ source over real HTTP against its simulator, run by core's `SourceHarness` exactly
 * as the runner runs it (the `with:` block decoded as a pipeline file's, checkpoints, `--limit`).
 */
import { ConfigDocs, SourceHarness } from "@effetl/core/testing"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { __ident__, __Ident__Config } from "../src/index.js"
import { start__Ident__Simulator, type __Ident__Simulator } from "../src/Simulator.js"

let sim: __Ident__Simulator
beforeAll(async () => {
  sim = await start__Ident__Simulator({ images: 23 })
})
afterAll(() => sim.close())

/** A `with:` block for the simulator. */
const config = (extra: Record<string, unknown> = {}) => ({ baseUrl: sim.url, token: sim.token, pageSize: 5, retry: SourceHarness.fastRetry, ...extra })

const run = (input: unknown, options: SourceHarness.Options = {}) => Effect.runPromise(SourceHarness.live(SourceHarness.run(__ident__, input, options)))
const runUntil = (input: unknown, options: SourceHarness.Options = {}) =>
  Effect.runPromise(SourceHarness.live(SourceHarness.runUntil(__ident__, input, options)))

describe("__plugin__ source", () => {
  it("reads every image, one batch per page, each with its checkpoint", async () => {
    const r = await run(config())
    expect(r.records.map((x) => x.imageId)).toEqual(sim.catalogue.map((x) => String(x.id)))
    expect(r.batches.length).toBe(5) // 23 images, 5 a page
    expect(r.pages).toBe(5)
    expect(r.rejected).toEqual([])
    expect(r.checkpoints.every(Option.isSome)).toBe(true)
    const first = r.records[0]!
    expect(first.source).toBe("__plugin__")
    expect(first.productId).toBe(String(sim.catalogue[0]!.product_id))
    expect(first.url).toBe(sim.catalogue[0]!.url)
    expect(first.updatedAt?.toISOString()).toBe(sim.catalogue[0]!.updated_at)
  })

  it("resumes after the last committed page", async () => {
    const killed = await run(config(), { take: 2 })
    expect(killed.records.length).toBe(10)
    const rest = await run(config(), { checkpoint: killed.checkpoints[1]! })
    expect([...killed.records, ...rest.records].map((x) => x.imageId)).toEqual(sim.catalogue.map((x) => String(x.id)))
    const done = await run(config(), { checkpoint: rest.checkpoints.at(-1)! })
    expect(done.records).toEqual([])
  })

  it("retries 5xx answers, resets and cut bodies, and reads everything once", async () => {
    sim.setFaults({ kinds: ["5xx", "reset", "truncate"], rate: 0.4, seed: 7 })
    try {
      const r = await run(config())
      expect(r.records.map((x) => x.imageId)).toEqual(sim.catalogue.map((x) => String(x.id)))
      expect(r.counts.retries).toBeGreaterThan(0)
    } finally {
      sim.setFaults(undefined)
    }
  })

  it("stops at once with Unauthorized on a wrong token", async () => {
    const { error } = await runUntil(config({ token: "wrong" }))
    expect(Option.map(error, (e) => e._tag)).toEqual(Option.some("Unauthorized"))
  })

  it("refuses a bad option with the path a pipeline file would show", async () => {
    const error = await Effect.runPromise(Effect.flip(SourceHarness.live(SourceHarness.run(__ident__, config({ pageSize: 0 })))))
    expect(error.message).toContain("sources.__plugin__.with.pageSize")
  })

  it("reaches the API in one request for --dry-run", async () => {
    const before = sim.requests().total
    await Effect.runPromise(SourceHarness.live(SourceHarness.check(__ident__, config())))
    expect(sim.requests().total).toBe(before + 1)
  })

  it("every option is documented in the README, with its default", () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, "..", "README.md"), "utf8")
    expect(ConfigDocs.readmeGaps(readme, __Ident__Config, { baseUrl: "https://api.example.com", token: "t" }, "Config (`with:`)")).toEqual([])
  })
})
