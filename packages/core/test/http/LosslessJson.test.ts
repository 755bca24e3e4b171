import { describe, expect, it } from "@effect/vitest"
import * as Option from "effect/Option"
import * as ErrorBody from "../../src/http/ErrorBody.js"
import * as LosslessJson from "../../src/http/LosslessJson.js"

describe("LosslessJson", () => {
  it("keeps integers beyond 2^53 as exact digit strings, safe numbers as numbers", () => {
    const text = `{"id":18446744073709551615,"small":1001,"edge":9007199254740991,"over":9007199254740993,` +
      `"neg":-9223372036854775808,"f":1.5,"e":1e300,"big_e":12345678901234567890e2,"s":"12345678901234567890","arr":[0,-1,90071992547409930]}`
    expect(LosslessJson.parse(text)).toEqual({
      id: "18446744073709551615",
      small: 1001,
      edge: 9007199254740991,
      over: "9007199254740993",
      neg: "-9223372036854775808",
      f: 1.5,
      e: 1e300,
      big_e: 12345678901234567890e2,
      s: "12345678901234567890",
      arr: [0, -1, "90071992547409930"]
    })
  })

  it("never touches digits inside strings, escaped quotes included", () => {
    const text = `{"a":"x\\" 12345678901234567890 \\\\","b":12345678901234567890}`
    expect(LosslessJson.parse(text)).toEqual({ a: `x" 12345678901234567890 \\`, b: "12345678901234567890" })
  })

  it("returns the text unchanged when nothing needs quoting, and invalid JSON stays invalid", () => {
    const plain = `{"a":[1,2,3],"b":"9007199254740993"}`
    expect(LosslessJson.quoteUnsafeIntegers(plain)).toBe(plain)
    // A leading zero is not a JSON number: it must not be turned into a valid string.
    expect(() => LosslessJson.parse(`{"a":01234567890123456789}`)).toThrow()
    expect(() => LosslessJson.parse(`{"a":12345678901234567890`)).toThrow()
  })
})

describe("ErrorBody: ASP.NET Web API", () => {
  it("reads the capitalised Message of an ASP.NET Web API error", () => {
    expect(ErrorBody.parse(`{"Message":"An error has occurred."}`).message).toEqual(Option.some("An error has occurred."))
  })
})
