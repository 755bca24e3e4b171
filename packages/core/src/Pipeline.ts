/**
 * A pipeline: sources, transforms and sinks with their decoded configs, plus the run settings.
 * Build one in code with `Pipeline.make` (library use) or from a YAML file with `PipelineFile.load`.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { ConfigError } from "./Errors.js"
import type { SinkPlugin } from "./Sink.js"
import type { SourcePlugin } from "./Source.js"
import type { StateStorePlugin } from "./StateStore.js"
import * as Suggest from "./Suggest.js"
import * as Text from "./Text.js"
import type { TransformPlugin } from "./Transform.js"

/** A source instance: its pipeline name, plugin and decoded config. */
export interface PipelineSource {
  readonly name: string
  readonly plugin: SourcePlugin
  readonly config: unknown
}

/** A transform step: its key (`<index>:<use>`), plugin and decoded config. */
export interface PipelineTransform {
  readonly key: string
  readonly plugin: TransformPlugin
  readonly config: unknown
}

/** A sink instance: its pipeline name, plugin and decoded config. */
export interface PipelineSink {
  readonly name: string
  readonly plugin: SinkPlugin
  readonly config: unknown
}

/** A state store chosen by the pipeline (`state: { use: ..., with: ... }`): its plugin and decoded config. */
export interface PipelineStateStore {
  readonly plugin: StateStorePlugin
  readonly config: unknown
}

/** A ready-to-run pipeline. */
export interface Pipeline {
  readonly name: string
  /**
   * The JSON state file. With another `stateStore`, the local file that anchors the run lock
   * (`<statePath>.<pipeline>.lock`) and the run's spill directory (`<dir of statePath>/runs/`).
   */
  readonly statePath: string
  /** Where the state lives when it is not the JSON file at `statePath` (e.g. a SQL table). */
  readonly stateStore?: PipelineStateStore
  /** How many past runs the state keeps for `effetl runs` (default `RunHistory.defaultLimit`, 50). */
  readonly history?: number
  /** Commit (and save checkpoints) after this many records... */
  readonly everyRecords: number
  /** ...or after this many seconds, whichever comes first (undefined: by records only). */
  readonly everySeconds: number | undefined
  /** Records held in memory by product grouping before it spills to disk. */
  readonly maxBuffered: number
  /** The dead-letter JSONL file. */
  readonly deadLetterPath: string
  readonly sources: ReadonlyArray<PipelineSource>
  readonly transforms: ReadonlyArray<PipelineTransform>
  readonly sinks: ReadonlyArray<PipelineSink>
  /** The file's `cluster:` section as written (interpolated), for distributed runs; decoded by `@effetl/cluster`. */
  readonly cluster?: Readonly<Record<string, unknown>>
}

/** Defaults of the run settings. */
export const defaults = {
  statePath: ".effetl/state.json",
  everyRecords: 10_000,
  everySeconds: 10,
  maxBuffered: 10_000,
  deadLetterPath: "out/dead-letter.jsonl"
} as const

/** A name of a pipeline, source or sink: letters, digits, `_`, `-` and `.`. */
export const Name = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/),
  Schema.annotations({
    message: () => ({ message: "expected a name made of letters, digits, '_', '-' and '.'", override: true })
  })
)

/** How many past runs a pipeline's state keeps: an integer of at least 1. */
export const HistoryLimit = Schema.Int.pipe(
  Schema.greaterThanOrEqualTo(1),
  Schema.annotations({ message: () => ({ message: "expected an integer ≥ 1", override: true }) })
)

/** What `Pipeline.make` takes: plugins as objects and their configs in encoded (YAML-like) form. */
export interface PipelineSpec {
  readonly name: string
  readonly statePath?: string
  /** A state store plugin instead of the JSON file at `statePath`. */
  readonly stateStore?: { readonly use: StateStorePlugin; readonly with?: unknown }
  /** How many past runs the state keeps (default 50). */
  readonly history?: number
  /** Commit after this many records (default 10,000). */
  readonly everyRecords?: number
  /** Also commit after this many seconds, whichever comes first (default 10). */
  readonly everySeconds?: number
  readonly maxBuffered?: number
  readonly deadLetterPath?: string
  readonly sources: Record<string, { readonly use: SourcePlugin; readonly with?: unknown }>
  readonly transforms?: ReadonlyArray<{ readonly use: TransformPlugin; readonly with?: unknown }>
  readonly sinks: Record<string, { readonly use: SinkPlugin; readonly with?: unknown }>
}

/** Builds a pipeline in code, decoding every plugin config with its schema (errors name the path). */
export const make = (spec: PipelineSpec): Effect.Effect<Pipeline, ConfigError> =>
  Effect.gen(function*() {
    yield* decodeConfig(Name, spec.name, "name")
    if (spec.history !== undefined) yield* decodeConfig(HistoryLimit, spec.history, "history")
    const sources: Array<PipelineSource> = []
    for (const [name, s] of Object.entries(spec.sources)) {
      yield* decodeConfig(Name, name, `sources.${name}`)
      sources.push({ name, plugin: s.use, config: yield* decodeConfig(s.use.config, s.with ?? {}, `sources.${name}.with`) })
    }
    const transforms: Array<PipelineTransform> = []
    for (const [i, t] of (spec.transforms ?? []).entries()) {
      transforms.push({
        key: `${i}:${t.use.name}`,
        plugin: t.use,
        config: yield* decodeConfig(t.use.config, t.with ?? {}, `transforms.${i}.with`)
      })
    }
    const sinks: Array<PipelineSink> = []
    for (const [name, s] of Object.entries(spec.sinks)) {
      yield* decodeConfig(Name, name, `sinks.${name}`)
      sinks.push({ name, plugin: s.use, config: yield* decodeConfig(s.use.config, s.with ?? {}, `sinks.${name}.with`) })
    }
    if (sources.length === 0) return yield* new ConfigError({ message: "sources: a pipeline needs at least one source", path: "sources" })
    if (sinks.length === 0) return yield* new ConfigError({ message: "sinks: a pipeline needs at least one sink", path: "sinks" })
    const stateStore = spec.stateStore
      ? { plugin: spec.stateStore.use, config: yield* decodeConfig(spec.stateStore.use.config, spec.stateStore.with ?? {}, "state.with") }
      : undefined
    return {
      name: spec.name,
      statePath: spec.statePath ?? defaults.statePath,
      ...(stateStore ? { stateStore } : {}),
      ...(spec.history !== undefined ? { history: spec.history } : {}),
      everyRecords: spec.everyRecords ?? defaults.everyRecords,
      everySeconds: spec.everySeconds ?? defaults.everySeconds,
      maxBuffered: spec.maxBuffered ?? defaults.maxBuffered,
      deadLetterPath: spec.deadLetterPath ?? defaults.deadLetterPath,
      sources,
      transforms,
      sinks
    }
  })

/** One config problem: where and what. */
export interface ConfigIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/**
 * What a config error must never quote: the values that came from environment variables (by config
 * path from the file's root, with the variables' names) and the variables' values themselves.
 */
export interface Hidden {
  /** Dot-joined config paths whose value came from `${VAR}` interpolation, with the variables used. */
  readonly fromEnv?: ReadonlyMap<string, ReadonlyArray<string>>
  /** Values never to appear in a message (e.g. the environment variables' values). */
  readonly values?: ReadonlyArray<string>
}

/**
 * Decodes a config value with a schema, rejecting unknown keys. A failure is a `ConfigError` whose
 * message names the full path, e.g. `sources.channel.with.pageSize: expected an integer ≥ 1, got "x"`.
 * `locate` may turn a path into a line number of the file the value came from.
 *
 * A value is quoted only when it is a plain scalar that is neither a secret (a field whose schema is
 * `Redacted`, or whose name says token/secret/password/key) nor from an environment variable
 * (`hidden`): those are named by path and expected type only, lists and mappings by their shape
 * only, and every secret value and URL password is scrubbed from the whole message as well.
 */
export const decodeConfig = <A, I>(
  schema: Schema.Schema<A, I>,
  input: unknown,
  prefix: string,
  locate?: (path: ReadonlyArray<PropertyKey>) => number | undefined,
  hidden: Hidden = {}
): Effect.Effect<A, ConfigError> => {
  // `Schema.Struct({})` accepts any object even with onExcessProperty "error": a plugin with no
  // options must still refuse `with: { typo: 1 }`.
  const ast = schema.ast
  if (
    SchemaAST.isTypeLiteral(ast) && ast.propertySignatures.length === 0 && ast.indexSignatures.length === 0 &&
    typeof input === "object" && input !== null && !Array.isArray(input) && Object.keys(input).length > 0
  ) {
    const key = Object.keys(input)[0]!
    const full = [...(prefix === "" ? [] : prefix.split(".")), key]
    const line = locate?.(full)
    return Effect.fail(
      new ConfigError({
        message: `${full.join(".")}: unknown option (this plugin takes no options)${line !== undefined ? ` (line ${line})` : ""}`,
        path: full.join("."),
        ...(line !== undefined ? { line } : {})
      })
    )
  }
  return Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Effect.mapError((error) => {
      const issues = tidy(ParseResult.ArrayFormatter.formatErrorSync(error))
      const prefixPath = prefix === "" ? [] : prefix.split(".")
      const secrets = secretsIn(schema.ast, input)
      const secret = {
        paths: [
          ...secrets.map((s) => [...prefixPath, ...s.path.map(String)].join(".")),
          ...(hidden.fromEnv === undefined ? [] : [...hidden.fromEnv.keys()])
        ],
        fromEnv: hidden.fromEnv ?? new Map<string, ReadonlyArray<string>>(),
        values: [...secrets.flatMap((s) => s.values), ...(hidden.values ?? [])]
      }
      const problems = issues.map((issue) => {
        const full = [...prefixPath, ...issue.path]
        const at = locate?.(full)
        return {
          message: scrubSecrets(describeIssue(issue, input, prefixPath, secret, ast) + (at !== undefined ? ` (line ${at})` : ""), secret.values),
          path: full.map(String).join("."),
          ...(at !== undefined ? { line: at } : {})
        }
      })
      const first = issues[0]
      const fullPath = first ? [...prefixPath, ...first.path] : prefixPath
      const line = locate?.(fullPath)
      return new ConfigError({
        message: problems.map((p) => p.message).join("\n"),
        path: fullPath.map(String).join("."),
        ...(line !== undefined ? { line } : {}),
        ...(problems.length > 1 ? { problems } : {})
      })
    })
  )
}

/**
 * Removes secrets from a message: every occurrence of the given values (6 characters or more, so
 * that short values such as `5` cannot mangle the text) and the password of any URL
 * (`postgres://user:pw@host` → `postgres://user:***@host`); control characters are escaped.
 */
export const scrubSecrets = (message: string, values: ReadonlyArray<string> = []): string => {
  const long = [...new Set(values.filter((v) => v.length >= 6))].sort((a, b) => b.length - a.length)
  const scrubbed = long.reduce((text, v) => text.split(v).join("***"), message)
  return Text.escapeControl(
    scrubbed.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@:"]*):([^\s/@"]*)@/gi, "$1$2:***@"),
    { keepNewlines: true }
  )
}

/**
 * Makes Effect's issues read like one answer per field: an optional field's "expected undefined"
 * alternative goes, and a choice between literals becomes one "expected one of ..." issue.
 */
const tidy = (issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>): Array<ParseResult.ArrayFormatterIssue> => {
  const meaningful = issues.filter((i) => !/^Expected undefined\b/.test(i.message))
  const kept = meaningful.length > 0 ? meaningful : [...issues]
  const out: Array<ParseResult.ArrayFormatterIssue> = []
  const literalsAt = new Map<string, { issue: ParseResult.ArrayFormatterIssue; literals: Array<string> }>()
  for (const issue of kept) {
    const literal = issue._tag === "Type" ? /^Expected ("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null), actual /.exec(issue.message) : null
    if (!literal) {
      out.push(issue)
      continue
    }
    const key = issue.path.map(String).join("\u0000")
    const group = literalsAt.get(key)
    if (group) group.literals.push(literal[1]!)
    else {
      const entry = { issue, literals: [literal[1]!] }
      literalsAt.set(key, entry)
      out.push(issue)
    }
  }
  return out.map((issue) => {
    const group = literalsAt.get(issue.path.map(String).join("\u0000"))
    if (!group || group.issue !== issue || group.literals.length < 2) return issue
    return { ...issue, message: `Expected one of ${group.literals.join(", ")}, actual` }
  })
}

/** What `describeIssue` must not quote. */
interface Secret {
  /** Full dot-joined paths of secret values (Redacted fields, values from environment variables). */
  readonly paths: ReadonlyArray<string>
  readonly fromEnv: ReadonlyMap<string, ReadonlyArray<string>>
  readonly values: ReadonlyArray<string>
}

const describeIssue = (
  issue: ParseResult.ArrayFormatterIssue,
  input: unknown,
  prefixPath: ReadonlyArray<string>,
  secret: Secret,
  ast: SchemaAST.AST
): string => {
  const full = [...prefixPath, ...issue.path.map(String)]
  const where = full.join(".") || "(top)"
  if (issue._tag === "Unexpected") {
    const key = String(issue.path[issue.path.length - 1] ?? "")
    const near = Suggest.closest(key, keysAt(ast, issue.path.slice(0, -1)))
    return `${where}: unknown option ${near !== undefined ? `(did you mean ${near}?)` : "(check the spelling; see 'effetl plugins <name>')"}`
  }
  if (issue._tag === "Missing") return `${where}: is required`
  const value = valueAt(input, issue.path)
  // Effect's own messages read "Expected X, actual Y" and filters' "expected X, got Y"; ours read
  // "expected X, got <our own preview>", so that what is shown of the value is decided here only.
  const message = issue.message
    .replace(/,\s*actual(\s[\s\S]*)?$/, "")
    .replace(/,\s*got\s[\s\S]*$/, "")
    .replace(/^Expected /, "expected ")
  return `${where}: ${message}, got ${shownValue(full, value, secret)}`
}

/** The option names a schema takes at a path of its input (the encoded side), for "did you mean". */
const keysAt = (ast: SchemaAST.AST, path: ReadonlyArray<PropertyKey>, depth = 0): Array<string> => {
  if (depth > 50) return []
  switch (ast._tag) {
    case "Transformation":
    case "Refinement":
      return keysAt(ast.from, path, depth + 1)
    case "Suspend":
      return keysAt(ast.f(), path, depth + 1)
    case "Union":
      return ast.types.flatMap((t) => keysAt(t, path, depth + 1))
    case "TypeLiteral": {
      if (path.length === 0) return ast.propertySignatures.map((p) => String(p.name))
      const field = ast.propertySignatures.find((p) => p.name === path[0])
      return field !== undefined
        ? keysAt(field.type, path.slice(1), depth + 1)
        : ast.indexSignatures.flatMap((sig) => keysAt(sig.type, path.slice(1), depth + 1))
    }
    case "TupleType": {
      const element = path.length === 0 ? undefined : ast.elements[Number(path[0])]?.type ?? ast.rest[0]?.type
      return element === undefined ? [] : keysAt(element, path.slice(1), depth + 1)
    }
    default:
      return []
  }
}

/** What a message may say of a value: a preview, or why it is not shown. */
const shownValue = (full: ReadonlyArray<string>, value: unknown, secret: Secret): string => {
  const here = full.join(".")
  const related = (p: string) => p === here || p.startsWith(`${here}.`) || here.startsWith(`${p}.`)
  const vars = [...secret.fromEnv].filter(([p]) => related(p)).flatMap(([, names]) => names)
  const described = describeShape(value)
  if (vars.length > 0) {
    return `${described ?? "a value"} from ${[...new Set(vars)].map((v) => `\${${v}}`).join(", ")} (not shown)`
  }
  const last = full[full.length - 1] ?? ""
  if (secret.paths.some(related) || /token|secret|password|passwd|api[-_]?key|credential/i.test(last)) {
    return `${described ?? "a value"} (not shown: secret)`
  }
  return described ?? preview(value)
}

/** A list or mapping by its shape only (never its content, which may hold a secret); undefined for a scalar. */
const describeShape = (v: unknown): string | undefined => {
  if (Array.isArray(v)) return `a list of ${v.length} ${v.length === 1 ? "item" : "items"}`
  if (typeof v === "object" && v !== null && !(v instanceof Date)) {
    const keys = Object.keys(v)
    if (keys.length === 0) return "an empty mapping"
    const shown = keys.slice(0, 5).map((k) => Text.escapeControl(k.length > 30 ? `${k.slice(0, 27)}...` : k)).join(", ")
    return `a mapping (${keys.length > 5 ? `keys ${shown}, ...` : `${keys.length === 1 ? "key" : "keys"} ${shown}`})`
  }
  return undefined
}

/** The input values at the schema's `Redacted` fields, with their paths (walking the encoded side). */
const secretsIn = (
  ast: SchemaAST.AST,
  input: unknown,
  path: ReadonlyArray<PropertyKey> = [],
  depth = 0
): Array<{ readonly path: ReadonlyArray<PropertyKey>; readonly values: ReadonlyArray<string> }> => {
  if (depth > 30 || input === undefined) return []
  const isRedacted = (a: SchemaAST.AST) =>
    Option.match(SchemaAST.getTypeConstructorAnnotation(a), { onNone: () => false, onSome: (t) => t._tag === "effect/Redacted" })
  switch (ast._tag) {
    case "Transformation":
      if (isRedacted(ast.to)) return [{ path, values: leaves(input, 0) }]
      return secretsIn(ast.from, input, path, depth + 1)
    case "Declaration":
      return isRedacted(ast) ? [{ path, values: leaves(input, 0) }] : []
    case "Refinement":
      return secretsIn(ast.from, input, path, depth + 1)
    case "Suspend":
      return secretsIn(ast.f(), input, path, depth + 1)
    case "Union":
      return ast.types.flatMap((t) => secretsIn(t, input, path, depth + 1))
    case "TypeLiteral": {
      if (typeof input !== "object" || input === null || Array.isArray(input)) return []
      const record = input as Record<PropertyKey, unknown>
      const named = new Set<PropertyKey>(ast.propertySignatures.map((p) => p.name))
      return [
        ...ast.propertySignatures.flatMap((p) => secretsIn(p.type, record[p.name], [...path, p.name], depth + 1)),
        ...ast.indexSignatures.flatMap((sig) =>
          Object.keys(record).filter((k) => !named.has(k)).flatMap((k) => secretsIn(sig.type, record[k], [...path, k], depth + 1))
        )
      ]
    }
    case "TupleType": {
      if (!Array.isArray(input)) return []
      return input.flatMap((item, i) => {
        const element = ast.elements[i]?.type ?? ast.rest[0]?.type
        return element === undefined ? [] : secretsIn(element, item, [...path, i], depth + 1)
      })
    }
    default:
      return []
  }
}

/** The strings (and numbers, as text) in a value, however nested. */
const leaves = (v: unknown, depth: number): Array<string> => {
  if (typeof v === "string") return [v]
  if (typeof v === "number" || typeof v === "bigint") return [String(v)]
  if (depth > 10 || typeof v !== "object" || v === null) return []
  return Object.values(v).flatMap((x) => leaves(x, depth + 1))
}

const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let v: unknown = input
  for (const k of path) {
    if (typeof v !== "object" || v === null) return undefined
    v = (v as Record<PropertyKey, unknown>)[k]
  }
  return v
}

const preview = (v: unknown): string => {
  if (v === undefined) return "nothing"
  const s = (() => {
    try {
      return JSON.stringify(v) ?? String(v)
    } catch {
      return String(v)
    }
  })()
  return Text.escapeControl(s.length > 80 ? s.slice(0, 77) + "..." : s)
}
