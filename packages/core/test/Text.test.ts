import { describe, expect, it } from "@effect/vitest"
import * as ErrorBody from "../src/http/ErrorBody.js"
import * as SafeUrl from "../src/http/SafeUrl.js"
import * as Text from "../src/Text.js"

/** Every character a terminal could act on, or that could split or reorder a log line. */
const hostile = "ok\u001b[2J\u001b[31mred\r\nINFO forged\tx\u0007\u0000\u007f\u009b\u2028\u202e\u2066\ufeffend"

describe("Text.escapeControl", () => {
  it("turns every control character into a visible escape, leaving ordinary text alone", () => {
    const out = Text.escapeControl(hostile)
    expect(out).toBe(
      "ok\\x1b[2J\\x1b[31mred\\r\\nINFO forged\\tx\\x07\\x00\\x7f\\x9b\\u2028\\u202e\\u2066\\ufeffend"
    )
    expect(Text.hasControl(out)).toBe(false)
    expect(Text.escapeControl("café ü 日本 — “quotes” 🙂")).toBe("café ü 日本 — “quotes” 🙂")
  })

  it("keeps line breaks when asked (a multi-line message core built), escaping the rest", () => {
    expect(Text.escapeControl("a\u001b[0m\nb\r\n", { keepNewlines: true })).toBe("a\\x1b[0m\nb\\r\n")
  })

  it("hasControl finds any of them, every time (no regex state carried between calls)", () => {
    for (let i = 0; i < 3; i++) {
      expect(Text.hasControl("a\u001bb")).toBe(true)
      expect(Text.hasControl("plain")).toBe(false)
    }
  })

  it("ErrorBody.oneLine and SafeUrl.describe escape vendor text", () => {
    const line = ErrorBody.oneLine(`{"x":1}\u001b[2J all 418 images synced\u001b[0m`)
    expect(line).toBe(`{"x":1}\\x1b[2J all 418 images synced\\x1b[0m`)
    expect(ErrorBody.parse(JSON.stringify({ detail: "bad\u001b[2Jthing\u202e" })).message).toEqual(
      expect.objectContaining({ value: "bad\\x1b[2Jthing\\u202e" })
    )
    expect(Text.hasControl(SafeUrl.describe("not a url\u009b\u202e"))).toBe(false)
  })
})
