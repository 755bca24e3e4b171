/**
 * A pipeline: sources, transforms and sinks with their decoded configs, plus the run settings.
 * Build one in code with `Pipeline.make` (library use) or from a YAML file with `PipelineFile.load`.
 */
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { ConfigError } from "./Errors.js"
import type { SinkPlugin } from "./Sink.js"
import type { SourcePlugin } from "./Source.js"
import type { StateStorePlugin } from "./StateStore.js"
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
  /** Commit (and save checkpoints) after this many records... */
  readonly everyRecords: number
  /** ...or after this many seconds, whichever comes first. */
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
  everyRecords: 1000,
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

/** What `Pipeline.make` takes: plugins as objects and their configs in encoded (YAML-like) form. */
export interface PipelineSpec {
  readonly name: string
  readonly statePath?: string
  /** A state store plugin instead of the JSON file at `statePath`. */
  readonly stateStore?: { readonly use: StateStorePlugin; readonly with?: unknown }
  readonly everyRecords?: number
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
      everyRecords: spec.everyRecords ?? defaults.everyRecords,
      everySeconds: spec.everySeconds,
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
 * Decodes a config value with a schema, rejecting unknown keys. A failure is a `ConfigError` whose
 * message names the full path, e.g. `sources.channel.with.pageSize: expected an integer ≥ 1, got "x"`.
 * `locate` may turn a path into a line number of the file the value came from.
 */
export const decodeConfig = <A, I>(
  schema: Schema.Schema<A, I>,
  input: unknown,
  prefix: string,
  locate?: (path: ReadonlyArray<PropertyKey>) => number | undefined
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
      const lines = issues.map((issue) => {
        const at = locate?.([...prefixPath, ...issue.path])
        return describeIssue(issue, input, prefixPath) + (at !== undefined ? ` (line ${at})` : "")
      })
      const first = issues[0]
      const fullPath = first ? [...prefixPath, ...first.path] : prefixPath
      const line = locate?.(fullPath)
      return new ConfigError({
        message: lines.join("\n"),
        path: fullPath.map(String).join("."),
        ...(line !== undefined ? { line } : {})
      })
    })
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

const describeIssue = (
  issue: ParseResult.ArrayFormatterIssue,
  input: unknown,
  prefixPath: ReadonlyArray<string>
): string => {
  const where = [...prefixPath, ...issue.path.map(String)].join(".") || "(top)"
  if (issue._tag === "Unexpected") return `${where}: unknown option (check the spelling; see 'effetl plugins <name>')`
  if (issue._tag === "Missing") return `${where}: is required`
  const value = valueAt(input, issue.path)
  // Effect's own messages read "Expected X, actual Y"; ours read "expected X". Show the value once.
  const message = issue.message.replace(/,\s*actual(\s[\s\S]*)?$/, "").replace(/^Expected /, "expected ")
  const last = String(issue.path[issue.path.length - 1] ?? "")
  const shown = /token|secret|password|passwd|api[-_]?key|credential/i.test(last) ? "a value (hidden: secret)" : preview(value)
  // A filter's own message may already say what it got.
  return /, got /.test(message) ? `${where}: ${message}` : `${where}: ${message}, got ${shown}`
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
  const s = JSON.stringify(v) ?? String(v)
  return s.length > 80 ? s.slice(0, 77) + "..." : s
}
