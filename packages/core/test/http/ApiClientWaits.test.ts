/**
 * Trouble an ApiClient meets is visible: each retry is one warning line (never the credential) and
 * is counted (`retries`); a 429 and a wait the budget headers call for are counted as rate-limit
 * waits (`waits`), and the reporter's listener hears every count as it happens.
 */
import * as UndiciClient from "../../src/http/UndiciClient.js"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as ApiClient from "../../src/http/ApiClient.js"
import * as RateLimit from "../../src/http/RateLimit.js"
import * as RunStats from "../../src/RunStats.js"
import { captureLogs, drive, json, type Logged, retries, start, waitFor } from "./TestServer.js"

const Ok = Schema.Struct({ ok: Schema.Boolean })
const secret = "Token s3cr3t-value-never-logged"

describe("ApiClient: retries and rate-limit waits", () => {
  it.effect("each retry is one warning line without the credential, counted; a 429 is a rate-limit wait too; the listener hears them live", () => {
    const logs: Array<Logged> = []
    const heard: Array<string> = []
    return Effect.gen(function*() {
      const server = yield* start((_req, res, n) => {
        if (n === 0) return json(res, 503, { errors: [`down ${secret}`] })
        if (n === 1) return json(res, 429, { errors: ["Too Many Requests"] }, { "Retry-After": "0" })
        return json(res, 200, { ok: true })
      })
      const client = yield* ApiClient.make({
        source: "shop",
        baseUrl: server.url,
        auth: { header: "Authorization", value: Redacted.make(secret) }
      })
      const { exit } = yield* drive(client.getJson("/x", {}, Ok), logs).pipe(
        RunStats.reporting((source, counter, n) => void heard.push(`${source}:${counter}:${n}`))
      )
      expect(Exit.isSuccess(exit)).toBe(true)
      const announced = retries(logs)
      expect(announced.map((l) => l.level)).toEqual(["WARN", "WARN"])
      expect(announced[0]!.message).toMatch(/^source 'shop': GET \S+\/x failed \(HTTP 503\); retry 1 of 5 in \d+ms$/)
      expect(announced[1]!.message).toMatch(/^source 'shop': GET \S+\/x failed \(HTTP 429\); the server asked to wait 0 \(Retry-After: 0\); retry 2 of 5 in \d+ms$/)
      for (const l of logs) {
        expect(l.message).not.toContain("s3cr3t")
        expect(l.message).not.toContain("\n")
      }
      const counts = (yield* Effect.flatMap(RunStats.RunStats, (s) => s.snapshot)).get("shop")!
      expect(counts).toMatchObject({ retries: 2, waits: 1 })
      expect(heard).toEqual(["shop:retries:1", "shop:retries:1", "shop:waits:1"])
    }).pipe(Effect.scoped, Effect.provide(UndiciClient.layer), Effect.provide(RunStats.layer), Effect.provide(captureLogs(logs)))
  })

  it.effect("a wait the budget headers call for is a warning and a counted rate-limit wait", () => {
    const logs: Array<Logged> = []
    return Effect.gen(function*() {
      const server = yield* start((_req, res) => json(res, 200, { ok: true }, { "x-rate-limit-requests-left": "0", "x-rate-limit-time-reset-ms": "2000" }))
      const policy = RateLimit.fromHeaders({ left: "X-Rate-Limit-Requests-Left", reset: "X-Rate-Limit-Time-Reset-Ms", reserve: 0 })
      const client = yield* ApiClient.make({ source: "bc", baseUrl: server.url, rateLimit: policy, rateLimitKey: "test-waits-counted" })
      yield* client.getJson("/1", {}, Ok) // learns: nothing left for 2 s
      const second = yield* Effect.fork(client.getJson("/2", {}, Ok))
      yield* waitFor(() => logs.some((l) => l.message.includes("rate budget is spent")), "the announced wait")
      expect(logs.find((l) => l.message.includes("rate budget is spent"))!.level).toBe("WARN")
      yield* TestClock.adjust(2000)
      yield* Fiber.join(second)
      const counts = (yield* Effect.flatMap(RunStats.RunStats, (s) => s.snapshot)).get("bc")!
      expect(counts).toMatchObject({ retries: 0, waits: 1 })
    }).pipe(Effect.scoped, Effect.provide(UndiciClient.layer), Effect.provide(RunStats.layer), Effect.provide(captureLogs(logs)))
  })
})
