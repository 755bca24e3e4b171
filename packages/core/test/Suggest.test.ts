import { describe, expect, it } from "@effect/vitest"
import * as Suggest from "../src/Suggest.js"

describe("Suggest", () => {
  it("finds the name one or two edits away: case, a letter left out, added, changed or swapped", () => {
    const options = ["pageSize", "partitionSize", "concurrency", "mode", "path"]
    expect(Suggest.closest("pagesize", options)).toBe("pageSize")
    expect(Suggest.closest("pageSze", options)).toBe("pageSize")
    expect(Suggest.closest("concurency", options)).toBe("concurrency")
    expect(Suggest.closest("mdoe", options)).toBe("mode")
    expect(Suggest.closest("pth", options)).toBe("path")
    expect(Suggest.closest("cvs", ["csv", "jsonl"])).toBe("csv")
  })

  it("else the only name containing it; nothing when nothing is near", () => {
    expect(Suggest.closest("token", ["accessToken", "store"])).toBe("accessToken")
    expect(Suggest.closest("size", ["pageSize", "partitionSize"])).toBeUndefined()
    expect(Suggest.closest("colour", ["pageSize", "mode"])).toBeUndefined()
    expect(Suggest.closest("mode", ["mode"])).toBeUndefined()
    expect(Suggest.didYouMean("scop", ["scope"])).toBe(" (did you mean scope?)")
    expect(Suggest.didYouMean("zzz", ["scope"])).toBe("")
  })

  it("counts a change of case as half an edit", () => {
    expect(Suggest.distance("pagesize", "pageSize")).toBe(0.5)
    expect(Suggest.distance("ab", "ba")).toBe(1)
    expect(Suggest.distance("", "abc")).toBe(3)
  })
})
