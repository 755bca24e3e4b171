/**
 * Every line the CLI prints goes through Logging: control characters of vendor text are escaped
 * (one line, nothing acts on the terminal), and the environment's secrets are hidden.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Logging from "../src/Logging.js"

const at = new Date("2026-01-01T12:00:01.000Z")

describe("escapeControl", () => {
  it("escapes C0, DEL, C1, separators and bidi controls; keeps other text", () => {
    expect(Logging.escapeControl("a\u001b[2Jb\nc\rd\te\u0000f\u007fg\u009bh\u2028i\u202ej\u2066k\ufeffl é 日本")).toBe(
      "a\\x1b[2Jb\\nc\\rd\\te\\x00f\\x7fg\\x9bh\\u2028i\\u202ej\\u2066k\\ufeffl é 日本"
    )
  })
})

describe("line and errorLine", () => {
  it("pretty: a vendor message with escape codes and a forged log line stays one escaped line", () => {
    const l = Logging.line("pretty", "warn", "422: \u001b[2J\u001b[Hall synced\n12:00:00 INFO  run finished", { source: "x\ny" }, at)
    expect(l).toBe("12:00:01 WARN  422: \\x1b[2J\\x1b[Hall synced\\n12:00:00 INFO  run finished  (source=x\\ny)")
    expect(l.split("\n")).toHaveLength(1)
    expect(Logging.errorLine("pretty", "bad\u001b]0;title\u0007")).toBe("error: bad\\x1b]0;title\\x07")
  })

  it("json: valid JSON holding the text as it was, with no raw control character in the line", () => {
    const text = "a\u001b[2J\u009b1m\u202e\nb"
    const l = Logging.line("json", "error", text, { error: "ApiError" }, at)
    expect(l).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/)
    expect(JSON.parse(l)).toEqual({ time: at.toISOString(), level: "error", message: text, error: "ApiError" })
  })
})

describe("secretsOf and redact", () => {
  const env = {
    CHANNEL_TOKEN: "Tok3n-abc\r\n",
    ACCEO_API_KEY: "key-123456",
    PG_URL: "postgres://effetl:p%40ss-w0rd@db:5432/x",
    CHANNEL_BASE_URL: "http://127.0.0.1:8080",
    SHORT_TOKEN: "abc",
    PWD: "/home/me/project"
  }
  const secrets = Logging.secretsOf(env)

  it("takes variables named like secrets and URL passwords, in every printed form; not paths or short values", () => {
    for (const s of ["Tok3n-abc\r\n", "Tok3n-abc\\r\\n", "key-123456", "p%40ss-w0rd", "p@ss-w0rd"]) expect(secrets).toContain(s)
    expect(secrets).not.toContain("abc")
    expect(secrets).not.toContain("/home/me/project")
    expect(secrets).not.toContain("http://127.0.0.1:8080")
  })

  it("hides them and any URL's password, and nothing else", () => {
    expect(Logging.redact("error: token Tok3n-abc\\r\\n refused by http://127.0.0.1:8080", secrets)).toBe("error: token *** refused by http://127.0.0.1:8080")
    expect(Logging.redact("cannot reach postgres://effetl:p@ss-w0rd@db:5432/x", secrets)).toBe("cannot reach postgres://effetl:***@db:5432/x")
    expect(Logging.redact("mysql://u:other-secret@h/db in /home/me/project", [])).toBe("mysql://u:***@h/db in /home/me/project")
  })

  it("stays linear on a megabyte of text", () => {
    const big = `http://${"a".repeat(1024 * 1024)}`
    const many = Logging.secretsOf({ X: big })
    expect(Logging.redact(big, many)).toBe(big)
  })
})
