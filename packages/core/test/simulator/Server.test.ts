import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Server from "../../src/simulator/Server.js"

/** Serves `/ok` (200, with its own `X-Own` header) and everything else 404, with a fresh header on every reply. */
const start = (faults?: Server.ServeOptions["faults"]) => {
  let n = 0
  return Server.serve({
    name: "test",
    ...(faults ? { faults } : {}),
    respond: (req) =>
      req.url === "/ok" ? Server.json(200, { ok: true }, { "X-Own": "mine", "X-Seq": "reply's own" }) : Server.json(404, { error: "no" }),
    serverErrors: [Server.json(503, { error: "down" })],
    throttled: () => Server.json(429, { errors: ["Too Many Requests"] }),
    everyReply: () => ({ "X-Seq": String(++n), "X-Own": "everyReply" })
  })
}

describe("Server.serve everyReply", () => {
  it.live("adds fresh headers to every reply, fault replies included; a reply's own header wins", () =>
    Effect.promise(async () => {
      const plain = await start()
      try {
        const ok = await fetch(`${plain.origin}/ok`)
        expect(ok.headers.get("x-own")).toBe("mine")
        expect(ok.headers.get("x-seq")).toBe("reply's own")
        const missing = await fetch(`${plain.origin}/nope`)
        expect(missing.status).toBe(404)
        expect(missing.headers.get("x-seq")).toBe("2")
      } finally {
        await plain.close()
      }
      const faulty = await start({ kinds: ["5xx", "429"], rate: 1, maxConsecutive: 100 })
      try {
        const seen: Array<[number, string | null]> = []
        for (let i = 0; i < 6; i++) {
          const res = await fetch(`${faulty.origin}/nope`)
          seen.push([res.status, res.headers.get("x-seq")])
        }
        expect(seen.every(([status]) => status === 503 || status === 429)).toBe(true)
        expect(seen.map(([, seq]) => seq)).toEqual(["1", "2", "3", "4", "5", "6"])
      } finally {
        await faulty.close()
      }
    }))
})

describe("Server.serve stall and malformed faults", () => {
  it.live("malformed: a 200 with the first half of the body; stall: no answer at all, until the client gives up", () =>
    Effect.promise(async () => {
      const malformed = await start({ kinds: ["malformed"], rate: 1, maxConsecutive: 100 })
      try {
        const res = await fetch(`${malformed.origin}/ok`)
        expect(res.status).toBe(200)
        const body = await res.text()
        expect(body).toBe(`{"ok":true}`.slice(0, Math.floor(`{"ok":true}`.length / 2)))
        expect(() => JSON.parse(body)).toThrow()
      } finally {
        await malformed.close()
      }
      const stall = await start({ kinds: ["stall"], rate: 1, maxConsecutive: 100 })
      try {
        const outcome = await fetch(`${stall.origin}/ok`, { signal: AbortSignal.timeout(500) }).then(
          (r) => `answered ${r.status}`,
          (e: Error) => e.name
        )
        expect(outcome).toBe("TimeoutError")
      } finally {
        await stall.close()
      }
    }))
})

describe("Server.serve hold", () => {
  it.live("holds back the answers it picks until released, answers the others at once, and holds no more once released", () =>
    Effect.promise(async () => {
      const served = await start()
      try {
        const hold = served.hold((target, reply) => target === "/ok" && reply.status === 200)
        let settled = false
        const held = fetch(`${served.origin}/ok`).then(async (res) => {
          settled = true
          return [res.status, await res.json()] as const
        })
        // Another answer is not held: the server answers it while /ok waits.
        expect((await fetch(`${served.origin}/nope`)).status).toBe(404)
        for (let i = 0; i < 3000 && hold.held() === 0; i++) await new Promise((r) => setTimeout(r, 10))
        expect(hold.held()).toBe(1)
        expect(settled).toBe(false)
        hold.release()
        expect(await held).toEqual([200, { ok: true }])
        // Released: /ok is answered straight away, and the count stays.
        expect((await fetch(`${served.origin}/ok`)).status).toBe(200)
        expect(hold.held()).toBe(1)
        hold.release()
      } finally {
        await served.close()
      }
    }))

  it.live("a held answer whose client went away is dropped on release; close() drops every hold", () =>
    Effect.promise(async () => {
      const served = await start()
      const hold = served.hold((target) => target === "/ok")
      const gone = new AbortController()
      const aborted = fetch(`${served.origin}/ok`, { signal: gone.signal }).catch((e: unknown) => e)
      for (let i = 0; i < 3000 && hold.held() === 0; i++) await new Promise((r) => setTimeout(r, 10))
      gone.abort()
      expect(await aborted).toBeInstanceOf(Error)
      hold.release()
      expect((await fetch(`${served.origin}/ok`)).status).toBe(200)
      served.hold(() => true)
      const never = fetch(`${served.origin}/ok`).then(() => "answered", () => "dropped")
      for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 10))
      await served.close()
      expect(await never).toBe("dropped")
    }))
})
