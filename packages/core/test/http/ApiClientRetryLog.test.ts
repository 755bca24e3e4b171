import * as UndiciClient from "../../src/http/UndiciClient.js"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import * as ApiClient from "../../src/http/ApiClient.js"
import * as RunStats from "../../src/RunStats.js"
import { captureLogs, drive, json, type Logged, retries, start } from "./TestServer.js"

describe("ApiClient retry logs", () => {
  it.effect("name the vendor's request id of the failed answer, in the message and as an annotation", () => {
    const logs: Array<Logged> = []
    return Effect.gen(function*() {
      const server = yield* start((_req, res, n) => {
        if (n === 0) return json(res, 503, { errors: ["down"] }, { "Request-Id": "rid-503" })
        if (n === 1) return json(res, 429, { errors: ["Too Many Requests"] }, { "Request-Id": "rid-429" })
        if (n === 2) return json(res, 500, { errors: ["no id"] })
        return json(res, 200, { ok: true })
      })
      const client = yield* ApiClient.make({ source: "s", baseUrl: server.url })
      const { exit } = yield* drive(client.getJson("/x", {}, Schema.Struct({ ok: Schema.Boolean })), logs)
      expect(Exit.isSuccess(exit)).toBe(true)
      const announced = retries(logs)
      expect(announced.map((l) => l.annotations["requestId"])).toEqual(["rid-503", "rid-429", undefined])
      expect(announced[0]!.message).toContain("[request id rid-503]")
      expect(announced[1]!.message).toContain("[request id rid-429]")
      expect(announced[2]!.message).not.toContain("request id")
    }).pipe(Effect.scoped, Effect.provide(UndiciClient.layer), Effect.provide(RunStats.layer), Effect.provide(captureLogs(logs)))
  })
})
