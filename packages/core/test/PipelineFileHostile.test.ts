/**
 * Hostile pipeline files: alias bombs and broken aliases, and secrets that must never be quoted in a
 * config error. Each case is a `ConfigError` (exit 2) of one line, with the line where it applies.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../src/Config.js"
import * as PipelineFile from "../src/PipelineFile.js"
import * as Registry from "../src/Registry.js"
import * as Sink from "../src/Sink.js"
import * as Source from "../src/Source.js"

const fake = Source.define({
  name: "fake",
  description: "test source",
  config: Schema.Struct({
    baseUrl: Config.required(Config.BaseUrl, { description: "base" }),
    token: Config.required(Config.Secret, { description: "token" }),
    channelId: Config.required(Schema.Int, { description: "channel" }),
    ids: Config.withDefault(Schema.Array(Schema.String), [], { description: "ids" }),
    dsn: Config.optional(Config.Secret, { description: "a secret whose name does not say so" }),
    pageSize: Config.withDefault(Config.intRange(1, 1000), 100, { description: "page size" })
  }),
  make: () => Effect.succeed({ productComplete: true, stream: Stream.empty, check: Effect.void })
})
const sink = Sink.define({
  name: "nowhere",
  description: "test sink",
  config: Schema.Struct({ path: Schema.String, password: Config.optional(Config.Secret, { description: "p" }) }),
  make: () => Effect.die("not used")
})
const registry = Registry.make({ sources: [fake], transforms: [], sinks: [sink] })
const file = "hostile.yaml"

const parseErr = (text: string, env: Record<string, string> = {}) =>
  PipelineFile.parse(text, { registry, env, file }).pipe(Effect.flip)

const valid = (sourceWith: string) => `version: 1
name: t
sources:
  s1:
    use: fake
    with:
${sourceWith}
sinks:
  out:
    use: nowhere
    with: { path: out/x.csv }
`

/** A one-line config error naming the file and the line. */
const oneLine = (e: { readonly _tag: string; readonly message: string; readonly line?: number | undefined }, line: number) => {
  expect(e._tag).toBe("ConfigError")
  expect(e.message).not.toContain("\n")
  expect(e.message.startsWith(`${file}:${line}: `)).toBe(true)
  expect(e.line).toBe(line)
}

const laughs = `version: 1
name: t
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
sources: {}
sinks: {}
`

describe("PipelineFile: YAML aliases", () => {
  it.effect("a billion-laughs alias bomb is a one-line ConfigError with the line, found without expanding it", () =>
    Effect.gen(function*() {
      const e = yield* parseErr(laughs)
      // Line 7: the first alias that alone stands for over a thousand values.
      oneLine(e, 7)
      expect(e.message).toBe(
        `${file}:7: YAML aliases expand this file by more than 10000 values (the alias *d alone stands for 7381): an alias bomb? Aliases may repeat small blocks only`
      )
    }))

  it.effect("an alias with no anchor before it, or inside the value it names, is a one-line ConfigError with its line", () =>
    Effect.gen(function*() {
      const before = yield* parseErr(`version: 1\nname: *n\nsources: {}\nsinks: {}\nx: &n demo\n`)
      oneLine(before, 2)
      expect(before.message).toBe(`${file}:2: the alias *n names no anchor (&n) defined before it`)

      const cycle = yield* parseErr(`version: 1\nname: t\nsources: &s\n  a: { use: fake, with: *s }\nsinks: {}\n`)
      oneLine(cycle, 4)
      expect(cycle.message).toBe(`${file}:4: the alias *s is inside the value it names (&s): a cycle`)
    }))

  it.effect("an alias used as a value works like the value it names; a << merge key shares a block", () =>
    Effect.gen(function*() {
      const p = yield* PipelineFile.parse(
        `version: 1
name: &n demo
defaults: &d { baseUrl: "http://127.0.0.1:9", token: t0ken-abc, channelId: 5 }
sources:
  s1: { use: fake, with: { <<: *d, pageSize: 10 } }
  s2: { use: fake, with: *d }
sinks:
  out: { use: nowhere, with: { path: *n } }
`.replace("defaults: &d", "x-defaults: &d"),
        { registry, env: {}, file }
      ).pipe(Effect.flip, Effect.map((e) => e.message))
      // Only the extra top-level key is refused: aliases and merges resolved fine.
      expect(p).toBe(`${file}: x-defaults: unknown option (check the spelling; see 'effetl plugins <name>') (line 3)`)
    }))

  it.effect("a non-scalar alias where a string is expected is a type error at its line, not a crash", () =>
    Effect.gen(function*() {
      const e = yield* parseErr(valid(`      baseUrl: &u { a: 1 }\n      token: *u\n      channelId: 5`))
      expect(e._tag).toBe("ConfigError")
      expect(e.message).toContain("sources.s1.with.baseUrl")
      expect(e.message).toContain("(line 7)")
    }))

  it.effect("whatever the yaml library refuses is a ConfigError of one line (exit 2), never a crash", () =>
    Effect.gen(function*() {
      const cases = [
        "version: 1\nname: [unclosed\n",
        "version: 1\nversion: 1\n",
        "\t- tab indented\n",
        "version: 1\nname: !!binary \"%%%\"\nsources: {}\nsinks: {}\n",
        "version: 1\nname: &a &b x\n",
        `${"[".repeat(5000)}${"]".repeat(5000)}\n`,
        "key: \"\\u001b[2J unterminated\n",
        `version: 1\nname: &n t\nx: ${"[".repeat(20000)}*n${"]".repeat(20000)}\n`
      ]
      for (const text of cases) {
        const e = yield* parseErr(text)
        expect(e._tag, text).toBe("ConfigError")
        // One line, or with several problems (each collected) a heading and one line each.
        const lines = e.message.split("\n")
        expect(lines.length, text).toBe(e.problems === undefined ? 1 : e.problems.length + 1)
        for (const line of lines) {
          expect(line, text).not.toMatch(/[\u0000-\u001f]/)
          expect(line.startsWith(file), text).toBe(true)
        }
      }
    }))

  it.effect("a long file with a few aliases is fine: only what the aliases add counts", () =>
    Effect.gen(function*() {
      const ids = Array.from({ length: 12_000 }, (_, i) => `      - "${i}"`).join("\n")
      const p = yield* PipelineFile.parse(
        valid(`      baseUrl: &u "http://127.0.0.1:9"\n      token: *u\n      channelId: 5\n      ids:\n${ids}`),
        { registry, env: {}, file }
      )
      expect((p.sources[0]!.config as { ids: ReadonlyArray<string> }).ids.length).toBe(12_000)
    }))

  it.effect("validate (load from a file) finds the bomb too, and peek (effetl state) as well", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effetl-yaml-"))
      const bomb = path.join(dir, "bomb.yaml")
      fs.writeFileSync(bomb, laughs)
      const loaded = yield* Effect.flip(PipelineFile.load(bomb, { registry, env: {} }))
      expect(loaded._tag).toBe("ConfigError")
      expect(loaded.message).toMatch(new RegExp(`^${bomb.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:7: YAML aliases expand`))
      const peeked = yield* Effect.flip(PipelineFile.peek(bomb, { env: {} }))
      expect(peeked.message).toBe(loaded.message)
    }))
})

const TOKEN = "ghp_FAKEtoken0123456789abcdef"
const PG = "postgres://app:hunter2-pw-0123@db.internal:5432/images"

/** The error of a file, and checks that holds for all of them: a ConfigError naming the path, no secret anywhere. */
const refused = (text: string, env: Record<string, string> = {}) =>
  Effect.map(parseErr(text, env), (e) => {
    expect(e._tag).toBe("ConfigError")
    const everything = JSON.stringify(e) + e.message
    for (const secret of [TOKEN, "hunter2-pw-0123", ...Object.values(env)]) expect(everything).not.toContain(secret)
    expect(e.message).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/)
    return e
  })

describe("PipelineFile: secrets are never quoted in config errors", () => {
  it.effect("a token from the environment where a list of sources was expected: the path and the shape, not the token", () =>
    Effect.gen(function*() {
      const e = yield* refused(`version: 1\nname: t\nsources:\n  - token: \${TOKEN}\n    use: fake\nsinks: {}\n`, { TOKEN })
      expect(e.message).toContain("sources: expected Source instances by name., got a list of 1 item")
      expect(e.line).toBe(4)
    }))

  it.effect("a token written in the file, inside a list-shaped sources: shown by shape only", () =>
    Effect.gen(function*() {
      const e = yield* refused(`version: 1\nname: t\nsources: [ { use: fake, with: { token: ${TOKEN} } } ]\nsinks: {}\n`)
      expect(e.message).toContain("got a list of 1 item")
    }))

  it.effect("a Postgres URL with its password in a list-shaped sinks: (from the file or the environment) is never echoed", () =>
    Effect.gen(function*() {
      const literal = yield* refused(valid(`      baseUrl: "http://127.0.0.1:9"\n      token: x\n      channelId: 5`).replace(
        /sinks:[\s\S]*$/,
        `sinks: [ "${PG}" ]\n`
      ))
      expect(literal.message).toContain("sinks: expected Sink instances by name., got a list of 1 item")
      const fromEnv = yield* refused(
        valid(`      baseUrl: "http://127.0.0.1:9"\n      token: x\n      channelId: 5`).replace(/sinks:[\s\S]*$/, "sinks: ${PG_URL}\n"),
        { PG_URL: PG }
      )
      expect(fromEnv.message).toContain("sinks: expected Sink instances by name., got a value from ${PG_URL} (not shown)")
    }))

  it.effect("a secret option of the wrong type, whatever its name, is named by path and type only", () =>
    Effect.gen(function*() {
      const token = yield* refused(valid(`      baseUrl: "http://127.0.0.1:9"\n      token: [ "${TOKEN}" ]\n      channelId: 5`))
      expect(token.message).toContain("sources.s1.with.token: expected string, got a list of 1 item (not shown: secret)")
      const dsn = yield* refused(
        valid(`      baseUrl: "http://127.0.0.1:9"\n      token: x\n      channelId: 5\n      dsn: { url: "${PG}" }`)
      )
      expect(dsn.message).toContain("sources.s1.with.dsn: expected string, got a mapping (key url) (not shown: secret)")
      const number = yield* refused(valid(`      baseUrl: "http://127.0.0.1:9"\n      token: x\n      channelId: 5\n      dsn: 123456789`))
      expect(number.message).toContain("sources.s1.with.dsn: expected string, got a value (not shown: secret)")
      expect(number.message).not.toContain("123456789")
    }))

  it.effect("any value from an environment variable is never quoted, even in a field that is not secret", () =>
    Effect.gen(function*() {
      const id = yield* refused(valid(`      baseUrl: "http://127.0.0.1:9"\n      token: x\n      channelId: \${CHANNEL}`), { CHANNEL: "chan-9f8e7d6c" })
      expect(id.message).toContain("sources.s1.with.channelId: expected number, got a value from ${CHANNEL} (not shown)")
      const url = yield* refused(valid(`      baseUrl: \${BASE}\n      token: x\n      channelId: 5`), { BASE: "ftp://user:s3cr3t-base@example.com/" })
      expect(url.message).toContain("sources.s1.with.baseUrl: expected an http:// or https:// URL, got a value from ${BASE} (not shown)")
      const part = yield* refused(valid(`      baseUrl: "x\${HOST}y"\n      token: x\n      channelId: 5`), { HOST: "inner-host-secret" })
      expect(part.message).toContain("got a value from ${HOST} (not shown)")
    }))

  it.effect("an environment value that surfaces elsewhere (a plugin name, a key) is scrubbed from the whole message", () =>
    Effect.gen(function*() {
      const e = yield* refused(
        `version: 1\nname: t\nsources:\n  s1: { use: "\${TOKEN}" }\nsinks:\n  out: { use: nowhere, with: { path: x } }\n`,
        { TOKEN }
      )
      expect(e.message).toContain("sources.s1.use")
      expect(e.message).toContain("***")
    }))

  it.effect("a URL password is masked wherever a value is shown", () =>
    Effect.gen(function*() {
      const e = yield* refused(valid(`      baseUrl: "${PG}"\n      token: x\n      channelId: 5`))
      expect(e.message).toContain("sources.s1.with.baseUrl: expected an http:// or https:// URL, got \"postgres://app:***@db.internal:5432/images\"")
    }))

  it.effect("state show/reset (peek) hides them too", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effetl-peek-"))
      const f = path.join(dir, "p.yaml")
      fs.writeFileSync(f, `version: 1\nname: \${NAME}\nstate: { path: [ "${PG}" ] }\nsources: {}\nsinks: {}\n`)
      const e = yield* Effect.flip(PipelineFile.peek(f, { env: { NAME: "bad name with spaces-xyz" } }))
      expect(e.message).toContain("name: expected a name made of letters, digits, '_', '-' and '.', got a value from ${NAME} (not shown)")
      expect(e.message).toContain("state.path: expected string, got a list of 1 item")
      expect(e.message).not.toContain("bad name with spaces-xyz")
      expect(e.message).not.toContain("hunter2")
    }))
})
