import { describe, expect, it } from "@effect/vitest"
import * as Faults from "../../src/simulator/Faults.js"

describe("Faults", () => {
  it("decides stall and malformed faults like the others, repeatably from the seed", () => {
    const decide = () => {
      const injector = new Faults.FaultInjector({ kinds: ["stall", "malformed"], rate: 1, seed: 7, maxConsecutive: 1000 })
      return Array.from({ length: 20 }, (_, i) => injector.next(`/x?${i}`)?.kind)
    }
    const first = decide()
    expect(first).toEqual(decide())
    expect(new Set(first)).toEqual(new Set(["stall", "malformed"]))
    expect(Faults.faultKinds).toContain("stall")
    expect(Faults.faultKinds).toContain("malformed")
    expect(() => Faults.normalise({ kinds: ["hang" as Faults.FaultKind] })).toThrow(/Unknown fault kind "hang"; expected one of .*stall, malformed/)
  })

  it("a malformed body is the first half of the reply's body", () => {
    const body = new TextEncoder().encode(`{"count": 2, "results": []}`)
    expect(new TextDecoder().decode(Faults.malformedBody(body))).toBe(`{"count": 2, `)
  })
})
