/**
 * The pipeline YAML file: parsing, `${ENV_VAR}` interpolation, decoding with the plugins' config
 * schemas (errors name the path and line), and the file's JSON Schema for editor completion.
 */
import * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as YAML from "yaml"
import * as Config from "./Config.js"
import { ConfigError, type ConfigProblem } from "./Errors.js"
import * as ErrorBody from "./http/ErrorBody.js"
import {
  decodeConfig,
  defaults,
  type Hidden,
  HistoryLimit,
  Name,
  type Pipeline,
  type PipelineSink,
  type PipelineSource,
  type PipelineStateStore,
  type PipelineTransform,
  scrubSecrets
} from "./Pipeline.js"
import * as PipelineSchema from "./PipelineSchema.js"
import * as Registry from "./Registry.js"
import * as RunHistory from "./RunHistory.js"
import { jsonStateStore } from "./StateStores.js"
import * as Suggest from "./Suggest.js"
import * as Text from "./Text.js"

const historyDescription =
  `How many past runs the state keeps for 'effetl runs' (the newest; default ${RunHistory.defaultLimit}).`

/** A `use:` + `with:` entry. */
const PluginRef = Schema.Struct({
  use: Schema.String.annotations({ description: "The plugin: a built-in name, an npm package or a relative module path." }),
  with: Config.withDefault(Schema.Unknown, {}, { description: "The plugin's options (see `effetl plugins <name>`)." })
})

/** The shape of the file before plugin configs are decoded. */
export const FileSchema = Schema.Struct({
  version: Schema.Literal(1).annotations({
    description: "The file format version. Always 1.",
    message: () => ({ message: "expected 1 (the only pipeline file version)", override: true })
  }),
  name: Config.required(Name, { description: "The pipeline's name: keys its state.", examples: ["demo"] }),
  state: Config.withDefault(
    Schema.Struct({
      path: Config.withDefault(Schema.String, defaults.statePath, {
        description:
          "The JSON state file (checkpoints, runs). With another store (`use:`), the local file next to which the run lock and spill files go."
      }),
      use: Config.optional(Schema.String, {
        description:
          "The state store: `json` (the default: the file at `path`), a built-in such as `sqlite` or `postgres`, an npm package or a relative module path.",
        examples: ["sqlite", "postgres"]
      }),
      with: Config.optional(Schema.Unknown, { description: "The state store's options (see `effetl plugins <name>` or its README)." }),
      history: Config.optional(HistoryLimit, { description: historyDescription, examples: [50] })
    }),
    { path: defaults.statePath },
    { description: "Where checkpoints and run state are kept." }
  ),
  checkpoint: Config.withDefault(
    Schema.Struct({
      everyRecords: Config.withDefault(Config.intAtLeast(1), defaults.everyRecords, {
        description:
          "Commit every sink and save checkpoints after this many records. A kill re-reads at most this many records (or everySeconds of reading) on the next run; nothing is lost or written twice either way."
      }),
      everySeconds: Config.withDefault(Schema.Number.pipe(Schema.positive()), defaults.everySeconds, {
        description: "Also commit after this many seconds, whichever comes first (a slow API commits at least this often)."
      })
    }),
    { everyRecords: defaults.everyRecords, everySeconds: defaults.everySeconds },
    { description: "How often the run commits (the end of a run always commits)." }
  ),
  grouping: Config.withDefault(
    Schema.Struct({
      maxBuffered: Config.withDefault(Config.intAtLeast(1), defaults.maxBuffered, {
        description: "Records held in memory when regrouping by product before spilling to disk."
      })
    }),
    { maxBuffered: defaults.maxBuffered },
    { description: "Product grouping for sources whose batches are not product-complete (a blocking step)." }
  ),
  deadLetter: Config.withDefault(
    Schema.Struct({
      path: Config.withDefault(Schema.String, defaults.deadLetterPath, { description: "The dead-letter JSONL file." })
    }),
    { path: defaults.deadLetterPath },
    { description: "Where rejected records go, with the reason, the source and its checkpoint." }
  ),
  sources: Schema.Record({ key: Schema.String, value: PluginRef }).annotations({ description: "Source instances by name." }),
  transforms: Config.withDefault(Schema.Array(PluginRef), [], { description: "Transforms, applied in order." }),
  sinks: Schema.Record({ key: Schema.String, value: PluginRef }).annotations({ description: "Sink instances by name." }),
  cluster: Config.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }), {
    description:
      "Settings of distributed runs (`effetl worker`, `effetl run --distributed`): postgres, redis, shardLockExpiration, ... " +
      "Decoded by @effetl/cluster (see its README); a local run ignores them."
  })
})

/** Options for loading a pipeline file. */
export interface LoadOptions {
  readonly registry: Registry.Registry
  /** Environment for `${VAR}` interpolation (default: `process.env`). */
  readonly env?: Record<string, string | undefined>
  /** Overrides the state path (`--state`). */
  readonly statePath?: string
  /**
   * Schemas of top-level sections that another package decodes (e.g. `cluster` from @effetl/cluster),
   * loaded only when the file has that section, to check it with the rest (`effetl validate`).
   */
  readonly sections?: Readonly<Record<string, () => Promise<Schema.Schema<any, any>>>>
}

/**
 * Reads, interpolates and decodes a pipeline file. A problem is a `ConfigError` naming path and
 * line; a file with several has them all in `problems`, sorted by line (see `parse`).
 */
export const load = (file: string, options: LoadOptions): Effect.Effect<Pipeline, ConfigError> =>
  Effect.gen(function*() {
    const text = yield* readText(file)
    return yield* parse(text, { ...options, file })
  })

/** The file's top level as decoded before the plugins are: each plugin entry is checked on its own. */
const TopSchema = Schema.Struct({
  ...FileSchema.fields,
  sources: Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({ description: "Source instances by name." }),
  transforms: Config.withDefault(Schema.Array(Schema.Unknown), [], { description: "Transforms, applied in order." }),
  sinks: Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({ description: "Sink instances by name." })
})

/**
 * Parses pipeline YAML text (see `load`). `file` names it in messages and anchors relative plugin paths.
 * Every section is checked (top level, each source, transform and sink with its plugin's options,
 * the state store, `options.sections`), so one run finds every problem: a file that cannot be read
 * as YAML stops at once, anything else is collected. A variable that is not set is named once, and
 * nothing more is said of the values that used it.
 */
export const parse = (
  text: string,
  options: LoadOptions & { readonly file?: string }
): Effect.Effect<Pipeline, ConfigError> => {
  // What no message may quote, once the environment variables are known.
  let hidden: Hidden = {}
  return Effect.gen(function*() {
    const file = options.file ?? "pipeline.yaml"
    // The file's name as messages show it (control characters escaped).
    const label = Text.printablePath(file)
    const { doc, lineCounter, locate } = yield* parseYaml(text, label)
    const vars = interpolate(doc, options.env ?? process.env, label, lineCounter)
    hidden = vars.hidden
    const raw: unknown = yield* toPlain(doc, label)
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      return yield* new ConfigError({ message: `${label}: expected a YAML mapping with version, name, sources and sinks` })
    }
    const input = raw as Record<string, unknown>
    const problems: Array<ConfigProblem> = []
    /** Runs a check, keeping its problems: `None` when it failed. */
    const check = <A>(effect: Effect.Effect<A, ConfigError>): Effect.Effect<Option.Option<A>> =>
      effect.pipe(
        Effect.map(Option.some),
        Effect.catchAll((e) => Effect.sync(() => (problems.push(...problemsOf(e, label)), Option.none())))
      )

    // The top level, one key at a time.
    const top: { -readonly [K in keyof typeof TopSchema.Type]?: typeof TopSchema.Type[K] } = {}
    for (const [key, field] of Object.entries(TopSchema.fields)) {
      const one = Schema.Struct({ [key]: field }) as unknown as Schema.Schema<Record<string, unknown>, unknown>
      const decoded = yield* check(decodeConfig(one, key in input ? { [key]: input[key] } : {}, "", locate, hidden))
      if (Option.isSome(decoded)) (top as Record<string, unknown>)[key] = decoded.value[key]
    }
    for (const key of Object.keys(input).filter((k) => !(k in TopSchema.fields))) {
      const line = locate([key])
      problems.push({
        message: `${label}: ${Text.escapeControl(key)}: unknown option ${Suggest.didYouMean(key, Object.keys(TopSchema.fields)).trim() || "(check the spelling; see 'effetl plugins <name>')"}${line !== undefined ? ` (line ${line})` : ""}`,
        path: key,
        ...(line !== undefined ? { line } : {})
      })
    }

    const baseDir = path.dirname(path.resolve(file))
    /** Checks one `use:` + `with:` entry: its shape, its plugin, and its options with the plugin's own schema. */
    const entry = <K extends Registry.Kind>(kind: K, where: string, value: unknown) =>
      Effect.gen(function*() {
        const ref = yield* check(decodeConfig(PluginRef, value, where, locate, hidden))
        if (Option.isNone(ref)) return Option.none()
        const plugin = yield* check(
          Registry.resolve(options.registry, kind, ref.value.use, baseDir, `${where}.use`).pipe(
            Effect.mapError((e) => withLine(e, locate([...where.split("."), "use"])))
          )
        )
        if (Option.isNone(plugin)) return Option.none()
        const config = yield* check(decodeConfig(plugin.value.config as Schema.Schema<unknown, unknown>, ref.value.with, `${where}.with`, locate, hidden))
        return Option.map(config, (config) => ({ plugin: plugin.value, config }))
      })
    const named = <K extends "source" | "sink">(kind: K, group: string, refs: Record<string, unknown>) =>
      Effect.forEach(Object.entries(refs), ([name, ref]) =>
        Effect.gen(function*() {
          const ok = yield* check(decodeConfig(Name, name, `${group}.${name}`, locate, hidden))
          const e = yield* entry(kind, `${group}.${name}`, ref)
          return Option.isSome(ok) ? Option.map(e, (e) => ({ name, ...e })) : Option.none()
        }))
    const sources: Array<PipelineSource> = Arr.getSomes(yield* named("source", "sources", top.sources ?? {}))
    const transforms: Array<PipelineTransform> = Arr.getSomes(
      yield* Effect.forEach(top.transforms ?? [], (ref, i) =>
        Effect.map(entry("transform", `transforms.${i}`, ref), Option.map((e) => ({ key: `${i}:${e.plugin.name}`, ...e }))))
    )
    const sinks: Array<PipelineSink> = Arr.getSomes(yield* named("sink", "sinks", top.sinks ?? {}))
    const empty = (section: "sources" | "sinks", what: string) => {
      const line = locate([section])
      problems.push({
        message: `${label}: ${section}: a pipeline needs at least one ${what}${line !== undefined ? ` (line ${line})` : ""}`,
        path: section,
        ...(line !== undefined ? { line } : {})
      })
    }
    if (top.sources !== undefined && Object.keys(top.sources).length === 0) empty("sources", "source")
    if (top.sinks !== undefined && Object.keys(top.sinks).length === 0) empty("sinks", "sink")
    const state = top.state === undefined ? Option.none() : yield* check(stateOf(top.state, options, label, baseDir, locate, hidden))
    for (const [key, load] of Object.entries(options.sections ?? {})) {
      if (input[key] === undefined || input[key] === null) continue
      const schema = yield* check(
        Effect.tryPromise({ try: load, catch: (e) => new ConfigError({ message: `${key}: cannot load the schema of this section: ${String(e)}`, path: key }) })
      )
      if (Option.isSome(schema)) yield* check(decodeConfig(schema.value, input[key], key, locate, hidden))
    }

    // A value whose variable is not set is only reported as that.
    const under = (p: string | undefined) => p !== undefined && vars.unsetPaths.some((u) => p === u || p.startsWith(`${u}.`))
    const found = [...vars.missing, ...problems.filter((p) => !under(p.path))]
    if (found.length > 0) return yield* failWith(found, label)
    return {
      name: top.name!,
      ...Option.getOrThrow(state),
      ...(top.state?.history !== undefined ? { history: top.state.history } : {}),
      everyRecords: top.checkpoint!.everyRecords,
      everySeconds: top.checkpoint!.everySeconds,
      maxBuffered: top.grouping!.maxBuffered,
      deadLetterPath: top.deadLetter!.path,
      sources,
      transforms,
      sinks,
      ...(top.cluster !== undefined ? { cluster: top.cluster } : {})
    }
  }).pipe(Effect.mapError((e) => scrubError(e, hidden)))
}

/** A failure's problems, each naming the file (its own `problems`, or itself). */
const problemsOf = (e: ConfigError, file: string): ReadonlyArray<ConfigProblem> =>
  (e.problems ?? [{ message: e.message, ...(e.path !== undefined ? { path: e.path } : {}), ...(e.line !== undefined ? { line: e.line } : {}) }])
    .map((p) => ({ ...p, message: p.message.startsWith(file) ? p.message : `${file}: ${p.message}` }))

/**
 * One error for every problem of a file, sorted by line (those with no line last): the problem
 * itself when there is one, else a heading (`p.yaml: 3 problems`) and their messages, one a line.
 */
const failWith = (problems: ReadonlyArray<ConfigProblem>, file: string): Effect.Effect<never, ConfigError> => {
  const sorted = problems.map((p, i) => [p, i] as const)
    .sort(([a, i], [b, j]) => (a.line ?? Infinity) - (b.line ?? Infinity) || i - j)
    .map(([p]) => p)
  const first = sorted[0]!
  if (sorted.length === 1) return Effect.fail(new ConfigError(first))
  return Effect.fail(
    new ConfigError({
      message: [`${file}: ${sorted.length} problems`, ...sorted.map((p) => p.message)].join("\n"),
      ...(first.path !== undefined ? { path: first.path } : {}),
      ...(first.line !== undefined ? { line: first.line } : {}),
      problems: sorted
    })
  )
}

/** A pipeline's name and where its state lives: what `effetl state` needs. */
export interface Peek {
  readonly name: string
  readonly statePath: string
  readonly stateStore?: PipelineStateStore
  /** How many past runs the state keeps (`state.history`), when the file says. */
  readonly history?: number
  /**
   * The file's `cluster:` section (interpolated, undecoded) when it has one, for `effetl runs` to
   * list distributed runs too; or why it cannot be read (an environment variable it uses is not
   * set), which leaves the local runs listed.
   */
  readonly cluster?: { readonly section: Readonly<Record<string, unknown>> } | { readonly unavailable: string }
}

/**
 * Reads only `version`, `name` and `state` of a pipeline file, without resolving the sources, transforms
 * and sinks or needing the environment variables of those sections (for `effetl state show|reset`).
 * A `state.use` store is resolved from `registry` (default: core's `json` store only).
 */
export const peek = (
  file: string,
  options: {
    readonly registry?: Registry.Registry
    readonly env?: Record<string, string | undefined>
    readonly statePath?: string
  } = {}
): Effect.Effect<Peek, ConfigError> =>
  Effect.gen(function*() {
    const text = yield* readText(file)
    const label = Text.printablePath(file)
    const { doc, lineCounter, locate } = yield* parseYaml(text, label)
    if (!YAML.isMap(doc.contents)) {
      return yield* new ConfigError({ message: `${label}: expected a YAML mapping with version, name, sources and sinks` })
    }
    const kept = new Set(["version", "name", "state"])
    doc.contents.items = doc.contents.items.filter((pair) => kept.has(String(YAML.isScalar(pair.key) ? pair.key.value : pair.key)))
    const vars = interpolate(doc, options.env ?? process.env, label, lineCounter)
    if (vars.missing.length > 0) return yield* failWith(vars.missing, label)
    const hidden = vars.hidden
    const head = Schema.Struct({ version: FileSchema.fields.version, name: FileSchema.fields.name, state: FileSchema.fields.state })
    const top = yield* decodeConfig(head, yield* toPlain(doc, label), "", locate, hidden).pipe(
      Effect.mapError((e) => scrubError(prefixFile(label)(e), hidden))
    )
    const registry = options.registry ?? Registry.make({ sources: [], transforms: [], sinks: [] })
    const state = yield* stateOf(top.state, { ...options, registry }, label, path.dirname(path.resolve(file)), locate, hidden).pipe(
      Effect.mapError((e) => scrubError(e, hidden))
    )
    const cluster = yield* peekCluster(text, label, options.env ?? process.env)
    return {
      name: top.name,
      ...state,
      ...(top.state.history !== undefined ? { history: top.state.history } : {}),
      ...(cluster !== undefined ? { cluster } : {})
    }
  })

/** The `cluster:` section of a pipeline file's text, interpolated on its own (see {@link Peek.cluster}). */
const peekCluster = (text: string, label: string, env: Record<string, string | undefined>) =>
  Effect.gen(function*() {
    const { doc, lineCounter } = yield* parseYaml(text, label)
    if (!YAML.isMap(doc.contents)) return undefined
    doc.contents.items = doc.contents.items.filter((pair) => String(YAML.isScalar(pair.key) ? pair.key.value : pair.key) === "cluster")
    if (doc.contents.items.length === 0) return undefined
    const vars = interpolate(doc, env, label, lineCounter)
    if (vars.missing.length > 0) return { unavailable: vars.missing.map((p) => p.message).join("; ") }
    const section = ((yield* toPlain(doc, label)) as { readonly cluster?: unknown }).cluster
    if (typeof section !== "object" || section === null || Array.isArray(section)) {
      return { unavailable: `${label}: cluster: expected a mapping` }
    }
    return { section: section as Readonly<Record<string, unknown>> }
  })

/**
 * Where a pipeline's state lives: the JSON file at `state.path` (also for `use: json`, whose `with.path`
 * wins), or a state store plugin. `--state` (`options.statePath`) names a JSON file, so it cannot
 * be combined with another store.
 */
const stateOf = (
  state: typeof FileSchema.Type["state"],
  options: { readonly registry: Registry.Registry; readonly statePath?: string },
  file: string,
  baseDir: string,
  locate: (path: ReadonlyArray<PropertyKey>) => number | undefined,
  hidden: Hidden
): Effect.Effect<{ readonly statePath: string; readonly stateStore?: PipelineStateStore }, ConfigError> =>
  Effect.gen(function*() {
    if (state.use === undefined) {
      if (state.with !== undefined) {
        const line = locate(["state", "with"])
        return yield* new ConfigError({
          message: `${file}: state.with: options need a store: add state.use (e.g. sqlite), or use state.path for the JSON file${line !== undefined ? ` (line ${line})` : ""}`,
          path: "state.with",
          ...(line !== undefined ? { line } : {})
        })
      }
      return { statePath: options.statePath ?? state.path }
    }
    const fail = Effect.mapError(prefixFile(file))
    const plugin = yield* fail(
      Registry.resolve(options.registry, "state", state.use, baseDir, "state.use").pipe(
        Effect.mapError((e) => withLine(e, locate(["state", "use"])))
      )
    )
    const config = yield* fail(decodeConfig(plugin.config as Schema.Schema<unknown, unknown>, state.with ?? {}, "state.with", locate, hidden))
    if (plugin === jsonStateStore) return { statePath: options.statePath ?? (config as typeof jsonStateStore.config.Type).path }
    if (options.statePath !== undefined) {
      return yield* new ConfigError({
        message: `${file}: --state names a JSON state file, but this pipeline keeps its state in '${plugin.name}' (state.use); drop --state, or change state.use`,
        path: "state.use"
      })
    }
    return { statePath: state.path, stateStore: { plugin, config } }
  })

/** Reads a pipeline file's text. */
const readText = (file: string): Effect.Effect<string, ConfigError> =>
  Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: (e) =>
      new ConfigError({
        message: `cannot read pipeline file '${Text.printablePath(file)}': ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(e)}`
      })
  })

/** The most values a pipeline file may expand to through its aliases (a "billion laughs" file is refused). */
export const maxAliasedValues = 10_000

/**
 * Parses YAML keeping positions; `locate` turns a config path into the line of its nearest node.
 * Anything the `yaml` library refuses, an alias with no anchor before it, an alias inside the node
 * it names (a cycle) and aliases expanding to more than {@link maxAliasedValues} values are a
 * `ConfigError` of one line, with the line. `<<` merge keys are supported.
 */
const parseYaml = (text: string, file: string) =>
  Effect.gen(function*() {
    const lineCounter = new YAML.LineCounter()
    const refuse = (message: string, line: number | undefined) =>
      new ConfigError({ message: `${file}${line ? `:${line}` : ""}: ${message}`, ...(line ? { line } : {}) })
    const parsed = Either.try({
      try: () => YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true }),
      catch: (e) => refuse(`invalid YAML: ${ErrorBody.oneLine(e instanceof Error ? e.message : String(e), 200)}`, undefined)
    })
    if (Either.isLeft(parsed)) return yield* parsed.left
    const doc = parsed.right
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!
      const line = e.linePos?.[0]?.line ?? (e.pos ? lineCounter.linePos(e.pos[0]).line : undefined)
      return yield* refuse(`invalid YAML: ${ErrorBody.oneLine(e.message.split("\n")[0] ?? "", 200)}`, line)
    }
    const aliasProblem = Either.try(() => checkAliases(doc, lineCounter))
    if (Either.isLeft(aliasProblem)) return yield* refuse("the YAML is nested too deeply to be a pipeline file", undefined)
    if (aliasProblem.right !== undefined) return yield* refuse(aliasProblem.right.message, aliasProblem.right.line)
    const locate = (p: ReadonlyArray<PropertyKey>): number | undefined => {
      for (let n = p.length; n >= 0; n--) {
        const node = doc.getIn(p.slice(0, n).map(String), true) as YAML.Node | undefined
        if (node && YAML.isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line
      }
      return undefined
    }
    return { doc, lineCounter, locate }
  })

/** What is wrong with a document's aliases, if anything, and where. */
const checkAliases = (doc: YAML.Document, lineCounter: YAML.LineCounter): { message: string; line: number | undefined } | undefined => {
  const lineOf = (node: YAML.Node) => (node.range ? lineCounter.linePos(node.range[0]).line : undefined)
  const anchors = new Map<string, YAML.Node>()
  const aliases: Array<{ alias: YAML.Alias; target: YAML.Node }> = []
  let problem: { message: string; line: number | undefined } | undefined
  YAML.visit(doc, {
    Node(_key, node) {
      if (YAML.isAlias(node)) {
        const name = Text.escapeControl(node.source)
        const target = anchors.get(node.source)
        if (target === undefined) {
          problem = { message: `the alias *${name} names no anchor (&${name}) defined before it`, line: lineOf(node) }
          return YAML.visit.BREAK
        }
        if (target.range && node.range && target.range[0] <= node.range[0] && node.range[1] <= target.range[2]) {
          problem = { message: `the alias *${name} is inside the value it names (&${name}): a cycle`, line: lineOf(node) }
          return YAML.visit.BREAK
        }
        aliases.push({ alias: node, target })
        return undefined
      }
      if ((YAML.isScalar(node) || YAML.isCollection(node)) && node.anchor !== undefined) anchors.set(node.anchor, node)
      return undefined
    }
  })
  if (problem !== undefined || aliases.length === 0) return problem
  // How many values a node stands for (memoised; no cycles here), with its aliases expanded or not:
  // the difference is what the aliases add.
  const targetOf = new Map(aliases.map((a) => [a.alias as YAML.Node, a.target]))
  const counter = (expand: boolean) => {
    const sizes = new Map<YAML.Node, number>()
    const size = (node: unknown): number => {
      if (!YAML.isNode(node)) return YAML.isPair(node) ? Math.min(size(node.key) + size(node.value), Number.MAX_SAFE_INTEGER) : 1
      const known = sizes.get(node)
      if (known !== undefined) return known
      let n = 1
      if (YAML.isAlias(node)) n = expand ? size(targetOf.get(node)) : 1
      else if (YAML.isCollection(node)) for (const item of node.items) n = Math.min(n + size(item), Number.MAX_SAFE_INTEGER)
      sizes.set(node, n)
      return n
    }
    return size
  }
  const expanded = counter(true)
  if (expanded(doc.contents) - counter(false)(doc.contents) <= maxAliasedValues) return undefined
  const worst = aliases.find((a) => expanded(a.alias) > maxAliasedValues / 10) ?? aliases[0]!
  return {
    message: `YAML aliases expand this file by more than ${maxAliasedValues} values (the alias *${
      Text.escapeControl(worst.alias.source)
    } alone stands for ${expanded(worst.alias)}): an alias bomb? Aliases may repeat small blocks only`,
    line: lineOf(worst.alias)
  }
}

/** The plain value of a checked document; anything `toJS` still refuses is a `ConfigError` of one line. */
const toPlain = (doc: YAML.Document, file: string): Effect.Effect<unknown, ConfigError> =>
  Effect.try({
    try: () => doc.toJS({ maxAliasCount: maxAliasedValues }) as unknown,
    catch: (e) =>
      new ConfigError({ message: `${file}: invalid YAML: ${ErrorBody.oneLine(e instanceof Error ? e.message : String(e), 200)}` })
  })

/** A config error with every environment variable's value and URL password scrubbed from its message. */
const scrubError = (e: ConfigError, hidden: Hidden): ConfigError =>
  new ConfigError({
    message: scrubSecrets(e.message, hidden.values ?? []),
    ...(e.path !== undefined ? { path: e.path } : {}),
    ...(e.line !== undefined ? { line: e.line } : {}),
    ...(e.problems !== undefined ? { problems: e.problems.map((p) => ({ ...p, message: scrubSecrets(p.message, hidden.values ?? []) })) } : {})
  })

/** Adds the line to an error that lacks one. */
const withLine = (e: ConfigError, line: number | undefined): ConfigError =>
  line === undefined || e.line !== undefined
    ? e
    : new ConfigError({ message: `${e.message} (line ${line})`, line, ...(e.path !== undefined ? { path: e.path } : {}) })

const prefixFile = (file: string) => (e: ConfigError): ConfigError =>
  new ConfigError({
    message: e.message.startsWith(file) ? e.message : `${file}: ${e.message}`,
    ...(e.path !== undefined ? { path: e.path } : {}),
    ...(e.line !== undefined ? { line: e.line } : {})
  })

const VAR = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

/**
 * Replaces `${VAR}` (and `${VAR:-default}`) in every string scalar; `$${` is a literal `${`.
 * A scalar that is exactly one `${VAR}` is re-read as YAML, so `channelId: ${ID}` gives a number.
 * Returns what error messages must never quote (the config paths whose values came from the
 * environment, with the variables' names, and the variables' values); each variable that is not
 * set, as a problem where it is first used; and the config paths of every use of those (left as written).
 */
const interpolate = (
  doc: YAML.Document,
  env: Record<string, string | undefined>,
  file: string,
  lineCounter: YAML.LineCounter
): { readonly hidden: Hidden; readonly missing: ReadonlyArray<ConfigProblem>; readonly unsetPaths: ReadonlyArray<string> } => {
  const missing = new Map<string, ConfigProblem>()
  const unsetPaths: Array<string> = []
  const fromEnv = new Map<string, Array<string>>()
  const values = new Set<string>()
  YAML.visit(doc, {
    Scalar(_key, node, ancestors) {
      if (typeof node.value !== "string" || !node.value.includes("${")) return
      const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/.exec(node.value)
      const used: Array<string> = []
      let unset = false
      const at = configPath(ancestors, node)
      const replaced = node.value.replace(VAR, (m, name: string | undefined, def: string | undefined) => {
        if (m === "$${") return "${"
        const v = env[name!]
        used.push(name!)
        if (v !== undefined && v !== "") {
          values.add(v)
          return v
        }
        if (def !== undefined) return def
        unset = true
        if (!missing.has(name!)) {
          const line = node.range ? lineCounter.linePos(node.range[0]).line : undefined
          missing.set(name!, {
            message: `${file}${line ? `:${line}` : ""}: environment variable ${name} is not set (used as \${${name}})`,
            ...(at !== undefined ? { path: at } : {}),
            ...(line ? { line } : {})
          })
        }
        return m
      })
      if (used.length > 0 && at !== undefined) fromEnv.set(at, [...(fromEnv.get(at) ?? []), ...used])
      if (unset && at !== undefined) unsetPaths.push(at)
      node.value = whole && !unset ? scalarOf(replaced) : replaced
    }
  })
  return { hidden: { fromEnv, values: [...values] }, missing: [...missing.values()], unsetPaths }
}

/** An interpolated value as YAML would read it when it is a number or a boolean; otherwise the text itself. */
const scalarOf = (text: string): string | number | boolean => {
  if (!/^\s*([-+]?(\d[\d_]*\.?\d*([eE][-+]?\d+)?|\.\d+|0x[0-9a-fA-F]+|0o[0-7]+|\.inf|\.nan)|true|false|True|False|TRUE|FALSE)\s*$/.test(text)) return text
  try {
    const reread = YAML.parse(text) as unknown
    return typeof reread === "number" || typeof reread === "boolean" ? reread : text
  } catch {
    return text
  }
}

/** The dot-joined config path of a node from its ancestors (undefined for a mapping key). */
const configPath = (ancestors: ReadonlyArray<unknown>, node: unknown): string | undefined => {
  const chain = [...ancestors, node]
  const out: Array<string> = []
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i]
    const child = chain[i + 1]
    if (YAML.isPair(parent)) {
      if (parent.value !== child) return undefined
      out.push(String(YAML.isScalar(parent.key) ? parent.key.value : parent.key))
    } else if (YAML.isSeq(parent)) {
      out.push(String(parent.items.indexOf(child as never)))
    }
  }
  return out.join(".")
}

/** An outside plugin (not a built-in) to include in the JSON Schema, under the `use:` a pipeline file gives it. */
export interface OutsidePlugin {
  readonly kind: Registry.Kind
  readonly use: string
  readonly plugin: PipelineSchema.PluginInfo
}

/**
 * The JSON Schema of pipeline files for the given plugins (for `# yaml-language-server: $schema=...`):
 * every built-in of `registry` and the `outside` plugins, each with its options (see PipelineSchema).
 * `sections` gives the schemas of top-level sections another package decodes (e.g. `cluster`).
 */
export const jsonSchema = (
  registry: Registry.Registry,
  outside: ReadonlyArray<OutsidePlugin> = [],
  sections: Readonly<Record<string, Schema.Schema<any, any>>> = {}
): unknown => {
  const kinds = ["source", "transform", "sink", "state"] as const
  const reserved = [...new Set(kinds.flatMap((k) => Registry.names(registry, k)))]
  const section = (kind: Registry.Kind, what: string): PipelineSchema.Section => ({
    plugins: [
      ...Registry.builtinsOf(registry, kind).map((plugin) => ({ use: plugin.name, plugin })),
      ...outside.filter((o) => o.kind === kind && !reserved.includes(o.use)).map((o) => ({ use: o.use, plugin: o.plugin }))
    ],
    reserved,
    outside: `An outside ${what} plugin: a module path or an npm package.`
  })
  const defs: Record<string, PipelineSchema.Json> = {}
  const top = PipelineSchema.of(FileSchema, defs)
  const properties = top.properties as Record<string, PipelineSchema.Json>
  const statePath: PipelineSchema.Json = {
    type: "string",
    description: "The JSON state file; with another store (`use:`), the local file next to which the run lock and spill files go.",
    default: defaults.statePath
  }
  const stores = PipelineSchema.pluginRef(section("state", "state store"), defs).anyOf as Array<PipelineSchema.Json>
  // `history` as FileSchema gives it (its description and the ${VAR} form), in every variant.
  const history = ((properties.state as PipelineSchema.Json | undefined)?.properties as Record<string, PipelineSchema.Json> | undefined)?.history
  const extra = history !== undefined ? { path: statePath, history } : { path: statePath }
  properties.state = {
    description: "Where checkpoints and run state are kept.",
    default: { path: defaults.statePath },
    anyOf: [
      {
        type: "object",
        title: "json file",
        description: "The JSON state file at `path` (the default).",
        properties: extra,
        additionalProperties: false
      },
      ...stores.map((s) => ({ ...s, properties: { ...(s.properties as PipelineSchema.Json), ...extra } }))
    ]
  }
  const names = { pattern: (JSONSchema.make(Name) as { pattern: string }).pattern }
  properties.sources = {
    type: "object",
    description: "Source instances by name.",
    propertyNames: names,
    additionalProperties: PipelineSchema.pluginRef(section("source", "source"), defs)
  }
  properties.transforms = {
    type: "array",
    description: "Transforms, applied in order.",
    default: [],
    items: PipelineSchema.pluginRef(section("transform", "transform"), defs)
  }
  properties.sinks = {
    type: "object",
    description: "Sink instances by name.",
    propertyNames: names,
    additionalProperties: PipelineSchema.pluginRef(section("sink", "sink"), defs)
  }
  for (const [key, schema] of Object.entries(sections)) {
    properties[key] = { ...PipelineSchema.of(schema, defs), ...(properties[key]?.description !== undefined ? { description: properties[key].description } : {}) }
  }
  return {
    $schema: "https://json-schema.org/draft/2019-09/schema",
    title: "effetl pipeline",
    description: "An effetl pipeline file (version 1).",
    ...top,
    ...(Object.keys(defs).length > 0 ? { $defs: defs } : {})
  }
}

/**
 * The outside plugins a pipeline file uses (every `use:` that is no built-in of its section), loaded
 * from the file's directory, for `effetl schema --for <file>`. Reads no environment variable: a
 * `use:` written with `${VAR}` is left out.
 */
export const outsidePlugins = (file: string, registry: Registry.Registry): Effect.Effect<Array<OutsidePlugin>, ConfigError> =>
  Effect.gen(function*() {
    const text = yield* readText(file)
    const label = Text.printablePath(file)
    const { doc, locate } = yield* parseYaml(text, label)
    const raw = yield* toPlain(doc, label)
    const baseDir = path.dirname(path.resolve(file))
    const uses: Array<{ kind: Registry.Kind; use: string; where: string }> = []
    const record = (o: unknown) => (typeof o === "object" && o !== null ? o as Record<string, unknown> : {})
    const add = (kind: Registry.Kind, where: string, ref: unknown) => {
      const use = record(ref).use
      if (typeof use === "string" && !use.includes("${") && !Registry.names(registry, kind).includes(use)) uses.push({ kind, use, where })
    }
    const top = record(raw)
    for (const [name, ref] of Object.entries(record(top.sources))) add("source", `sources.${name}`, ref)
    if (Array.isArray(top.transforms)) top.transforms.forEach((ref, i) => add("transform", `transforms.${i}`, ref))
    for (const [name, ref] of Object.entries(record(top.sinks))) add("sink", `sinks.${name}`, ref)
    add("state", "state", top.state)
    const seen = new Set<string>()
    const out: Array<OutsidePlugin> = []
    for (const u of uses) {
      if (seen.has(`${u.kind}:${u.use}`)) continue
      seen.add(`${u.kind}:${u.use}`)
      const plugin = yield* Registry.resolve(registry, u.kind, u.use, baseDir, `${u.where}.use`).pipe(
        Effect.mapError((e) => prefixFile(label)(withLine(e, locate([...u.where.split("."), "use"]))))
      )
      out.push({ kind: u.kind, use: u.use, plugin })
    }
    return out
  })
