/**
 * What each `effetl` command does, once its arguments are parsed (main.ts). Loaded only when a
 * command runs: it brings core, Effect and the plugin registry (whose plugins load on first use).
 * Each command returns its exit code; failures become one `error:` line, never a stack trace.
 */
import { ConfigError, PathConflicts, PipelineFile, Registry, RunHistory, RunLock, Runner, StateStore } from "@effetl/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Inspectable from "effect/Inspectable"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import { registry } from "./Builtins.js"
import * as Logging from "./Logging.js"
import { ExitCode, type Io } from "./main.js"
import * as Plugins from "./Plugins.js"
import * as Progress from "./Progress.js"
import * as Runs from "./Runs.js"
import * as Scaffold from "./Scaffold.js"
import * as Simulators from "./Simulators.js"
import * as Summary from "./Summary.js"

/** The options every command takes. */
export interface Common {
  readonly logFormat: Logging.LogFormat
  readonly verbose: boolean
}

/**
 * The command's output with every secret of the environment hidden (see `Logging.redact`), the last
 * guard behind the redaction the config and errors do themselves.
 */
const guarded = (io: Io): Io => {
  const secrets = Logging.secretsOf(io.env)
  return {
    ...io,
    stdout: (text) => io.stdout(Logging.redact(text, secrets)),
    stderr: (text) => io.stderr(Logging.redact(text, secrets))
  }
}

/** `effetl run <file>`. */
export const run = (
  a: Common & {
    readonly file: string
    readonly dryRun: boolean
    readonly fullRefresh: boolean
    readonly restart: boolean
    readonly limit?: number
    readonly state?: string
    readonly progress?: boolean
    /** Run on the workers of the pipeline's `cluster:` section (`@effetl/cluster`, loaded only then). */
    readonly distributed?: boolean
  },
  unsafeIo: Io
): Promise<number> => {
  const io = guarded(unsafeIo)
  const useBars = (a.progress ?? io.stderrIsTTY) && a.logFormat === "pretty"
  const ui = useBars ? Progress.bars() : undefined
  const write = ui ? ui.log : (l: string) => io.stderr(l + "\n")
  const reporter = ui?.reporter ?? Progress.lines((source, line) => write(Logging.line(a.logFormat, "info", line, { source })))
  const keepsState = !a.dryRun && a.limit === undefined
  return execute(
    {
      ...a,
      write,
      interrupted: a.distributed === true
        ? `stopped waiting: the run goes on on the workers; 'effetl run ${a.file} --distributed' waits for it again`
        : keepsState
        ? `stopped: committed work is kept; the next 'effetl run ${a.file}' resumes this run (--restart discards it)`
        : "stopped",
      release: () => reporter.close?.()
    },
    io,
    Effect.gen(function*() {
      const pipeline = yield* loadPipeline(a.file, io, a.state, a.distributed === true)
      yield* PathConflicts.check(pipeline).pipe(Effect.mapError(prefix(a.file)))
      const options = {
        dryRun: a.dryRun,
        fullRefresh: a.fullRefresh,
        restart: a.restart,
        reporter,
        ...(a.limit !== undefined ? { limit: a.limit } : {})
      }
      const summary = a.distributed === true
        ? yield* Effect.flatMap(Effect.promise(() => import("@effetl/cluster")), (cluster) => cluster.Distributed.run(pipeline, options))
        : yield* Runner.runNode(pipeline, options)
      reporter.close?.()
      io.stdout((a.logFormat === "json" ? Summary.json(summary) : Summary.text(summary, pipeline)) + "\n")
    }).pipe(Effect.ensuring(Effect.sync(() => reporter.close?.())))
  )
}

/** `effetl worker <file>`: serves the pipeline's partitions on its cluster until stopped (`@effetl/cluster`). */
export const worker = (
  a: Common & { readonly file: string; readonly host?: string; readonly port?: number },
  unsafeIo: Io
): Promise<number> => {
  const io = guarded(unsafeIo)
  return execute(
    { ...a, interrupted: "worker stopped: its unfinished partitions move to the other workers" },
    io,
    Effect.gen(function*() {
      const pipeline = yield* loadPipeline(a.file, io, undefined, true)
      yield* PathConflicts.check(pipeline).pipe(Effect.mapError(prefix(a.file)))
      const cluster = yield* Effect.promise(() => import("@effetl/cluster"))
      return yield* cluster.Distributed.worker(pipeline, { host: a.host, port: a.port })
    })
  )
}

/** `effetl validate <file>`: everything a run checks before it reaches an API. */
export const validate = (a: Common & { readonly file: string }, unsafeIo: Io): Promise<number> => {
  const io = guarded(unsafeIo)
  return execute(
    a,
    io,
    Effect.gen(function*() {
      const p = yield* loadPipeline(a.file, io, undefined, true)
      yield* PathConflicts.check(p).pipe(Effect.mapError(prefix(a.file)))
      const list = (xs: ReadonlyArray<{ name: string; plugin: { name: string } }>) => xs.map((s) => `${s.name}:${s.plugin.name}`).join(", ")
      io.stdout(
        Logging.escapeControl(
          `${a.file}: valid pipeline '${p.name}' with ${count(p.sources.length, "source")} [${list(p.sources)}], ` +
            `${count(p.transforms.length, "transform")}${p.transforms.length > 0 ? ` [${p.transforms.map((t) => t.plugin.name).join(", ")}]` : ""} ` +
            `and ${count(p.sinks.length, "sink")} [${list(p.sinks)}]`
        ) + "\n"
      )
    })
  )
}

/** `effetl plugins [name]` (loads every built-in). */
export const plugins = (a: Common & { readonly name?: string | undefined }, io: Io): Promise<number> =>
  execute(
    a,
    io,
    Effect.gen(function*() {
      const all = yield* Registry.loadAll(registry)
      if (!a.name) return io.stdout(Plugins.list(all, width(io)) + "\n")
      const found = yield* Plugins.find(all, a.name)
      io.stdout(found.map((f) => Plugins.describe(f.kind, f.plugin, width(io))).join("\n\n") + "\n")
    })
  )

/** `effetl schema [--plugin <name>]... [--for <file>]` (loads every built-in and the named outside plugins). */
export const schema = (a: Common & { readonly plugins?: ReadonlyArray<string>; readonly for?: string }, io: Io): Promise<number> =>
  execute(
    a,
    io,
    Effect.gen(function*() {
      const all = yield* Registry.loadAll(registry)
      const kindOf = { source: "source", transform: "transform", sink: "sink", "state store": "state" } as const
      const named = yield* Effect.forEach(a.plugins ?? [], (name) =>
        Effect.map(Plugins.find(all, name), (found) =>
          found.map((f) => ({ kind: kindOf[f.kind as keyof typeof kindOf], use: name, plugin: f.plugin }))))
      const used = a.for === undefined ? [] : yield* Effect.zipRight(pipelineFile(a.for), PipelineFile.outsidePlugins(a.for, all))
      const { ClusterConfig } = yield* Effect.promise(() => import("@effetl/cluster"))
      io.stdout(JSON.stringify(PipelineFile.jsonSchema(all, [...named.flat(), ...used], { cluster: ClusterConfig.ClusterConfig }), null, 2) + "\n")
    })
  )

/** `effetl state show|reset <file>`: reads only the file's name and state section. */
export const state = (
  a: Common & { readonly action: "show" | "reset"; readonly file: string; readonly state?: string },
  unsafeIo: Io
): Promise<number> => {
  const io = guarded(unsafeIo)
  return execute(
    a,
    io,
    withStateStore(a, io, (pipeline, store) =>
      Effect.gen(function*() {
        // A corrupt state file can still be reset (the store keeps it aside as <file>.corrupt-<time>).
        const saved = yield* store.load(pipeline.name).pipe(
          Effect.catchIf((e) => a.action === "reset" && e.corrupt === true, () => Effect.succeed(StateStore.empty))
        )
        if (a.action === "show") {
          io.stdout(JSON.stringify({ pipeline: pipeline.name, state: store.location, ...saved }, null, 2) + "\n")
        } else {
          yield* store.reset(pipeline.name)
          const what = saved.run === null ? "it had no saved run" : `forgot run ${saved.run.id} (${saved.run.status}) and its checkpoints`
          io.stdout(Logging.escapeControl(`state of pipeline '${pipeline.name}' reset in ${store.location}: ${what}`) + "\n")
        }
      }))
  )
}

/**
 * Runs `body` with the pipeline file's state store, reading only the file's name and state section
 * (`--state` overrides its path): what `effetl state` and `effetl runs` share.
 */
const withStateStore = <A, E>(
  a: { readonly file: string; readonly state?: string },
  io: Io,
  body: (pipeline: PipelineFile.Peek, store: StateStore.StateStore["Type"]) => Effect.Effect<A, E, never>
) =>
  Effect.gen(function*() {
    yield* pipelineFile(a.file)
    const pipeline = yield* PipelineFile.peek(a.file, { registry, env: io.env, ...(a.state ? { statePath: a.state } : {}) })
    return yield* Effect.flatMap(StateStore.StateStore, (store) => body(pipeline, store)).pipe(Effect.provide(Runner.nodeLayerFor(pipeline)))
  })

/**
 * `effetl runs <file> [id]`: the pipeline's past runs from its state store's run history (the current
 * run first when it is unfinished: `running` while a process holds its lock, else `interrupted`), or
 * one run in detail. Reads only the file's name and state section.
 */
export const runs = (
  a: Common & { readonly file: string; readonly id?: string | undefined; readonly state?: string },
  unsafeIo: Io
): Promise<number> => {
  const io = guarded(unsafeIo)
  return execute(
    a,
    io,
    withStateStore(a, io, (pipeline, store) =>
      Effect.gen(function*() {
        const saved = yield* store.load(pipeline.name)
        // A run still `running` in the state is going when a process holds its lock (here, or in a shared store).
        const live = saved.run?.status === "running" &&
          ((yield* RunLock.held(pipeline.statePath, pipeline.name)) || (store.running !== undefined && (yield* store.running(pipeline.name))))
        const limit = pipeline.history ?? RunHistory.defaultLimit
        // A pipeline with a `cluster:` section also has distributed runs, kept by its cluster database.
        const distributed = yield* distributedRuns(pipeline, limit)
        if (distributed.note !== undefined) io.stderr(Logging.escapeControl(`warning: distributed runs not listed: ${distributed.note}`) + "\n")
        const listed = [...RunHistory.list(saved, live), ...distributed.runs].sort((x, y) => (x.startedAt < y.startedAt ? 1 : x.startedAt > y.startedAt ? -1 : 0))
        const where = {
          pipeline: pipeline.name,
          state: store.location,
          limit,
          ...(distributed.location !== undefined ? { cluster: distributed.location } : {})
        }
        const json = a.logFormat === "json"
        if (a.id === undefined) return io.stdout((json ? Runs.json(listed, where) : Runs.table(listed, where, Date.now())) + "\n")
        const found = Runs.find(listed, a.id)
        if (found === undefined || Array.isArray(found)) {
          const candidates = found === undefined ? listed : found
          const known = candidates.slice(0, 5).map((r) => r.id).join(", ")
          return yield* new ConfigError({
            message: found === undefined
              ? `pipeline '${pipeline.name}' has no run '${a.id}' in its history${known ? ` (the newest: ${known})` : " (it has no runs yet)"}`
              : `'${a.id}' names ${candidates.length} runs of pipeline '${pipeline.name}' (${known}${candidates.length > 5 ? ", ..." : ""}); give more of the id`
          })
        }
        const run = found as RunHistory.Listed
        io.stdout((json ? Runs.jsonOne(run, where) : Runs.detail(run, where, Date.now())) + "\n")
      }))
  )
}

/**
 * The distributed runs of a pipeline whose file has a `cluster:` section (`@effetl/cluster`, loaded
 * only then), or why they cannot be listed (the local runs are listed all the same).
 */
const distributedRuns = (
  pipeline: PipelineFile.Peek,
  limit: number
): Effect.Effect<{ readonly runs: ReadonlyArray<RunHistory.Listed>; readonly location?: string; readonly note?: string }> => {
  const cluster = pipeline.cluster
  if (cluster === undefined) return Effect.succeed({ runs: [] })
  if ("unavailable" in cluster) return Effect.succeed({ runs: [], note: cluster.unavailable })
  return Effect.promise(() => import("@effetl/cluster")).pipe(
    Effect.flatMap((m) => m.Distributed.history(pipeline.name, cluster.section, limit)),
    Effect.catchAll((e) => Effect.succeed({ runs: [], note: e.message }))
  )
}

/** `effetl simulate <api>`: serves a built-in or an outside simulator (module path or package) until SIGINT or SIGTERM. */
export const simulate = async (
  a: Common & { readonly api: string; readonly port: number; readonly faults: string; readonly faultRate: number },
  io: Io
): Promise<number> => {
  // Not guarded: it prints the simulator's own made-up credentials on purpose.
  let sim: Simulators.SimulatorEntry
  try {
    sim = Simulators.simulators.find((s) => s.api === a.api) ?? (await Simulators.outside(a.api, process.cwd()))
  } catch (e) {
    io.stderr(Logging.errorLine(a.logFormat, e instanceof Error ? e.message : String(e)) + "\n")
    return e instanceof Simulators.SimulatorNotFound ? ExitCode.usage : ExitCode.failed
  }
  const faults = a.faults.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  let running: Awaited<ReturnType<typeof sim.start>>
  try {
    running = await sim.start({ port: a.port, faults, faultRate: a.faultRate })
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why = code === "EADDRINUSE" ? `port ${a.port} is already in use` : e instanceof Error ? e.message : String(e)
    io.stderr(Logging.errorLine(a.logFormat, `cannot start the ${a.api} simulator: ${why}`) + "\n")
    return ExitCode.failed
  }
  io.stdout(running.lines.join("\n") + "\n(Ctrl-C to stop)\n")
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop)
      process.off("SIGTERM", stop)
      void running.close().then(() => {
        io.stdout("simulator stopped\n")
        resolve()
      })
    }
    process.on("SIGINT", stop)
    process.on("SIGTERM", stop)
  })
  return ExitCode.ok
}

/** `effetl new source|sink <name>`: makes a plugin package (see `Scaffold`). */
export const newPackage = (
  a: Common & { readonly kind: Scaffold.Kind; readonly name: string; readonly dir?: string },
  io: Io
): Promise<number> =>
  execute(
    a,
    io,
    Effect.gen(function*() {
      const made = yield* Scaffold.make({ kind: a.kind, name: a.name, cwd: process.cwd(), ...(a.dir !== undefined ? { dir: a.dir } : {}) })
      io.stdout(Logging.escapeControl(Scaffold.nextSteps(made, process.cwd()), { keepNewlines: true }) + "\n")
    })
  )

// ---------------------------------------------------------------------------------------------

interface Execution extends Common {
  /** Where log and error lines go (stderr, or above the progress bars). */
  readonly write?: (line: string) => void
  /** Said when Ctrl-C stopped the command. */
  readonly interrupted?: string
  /** Gives the terminal back (cursor, line wrapping) before a second Ctrl-C quits at once. */
  readonly release?: () => void
}

/** Runs an Effect as a CLI command: maps failures to one line and an exit code, interrupts on SIGINT/SIGTERM. */
const execute = <A>(common: Execution, io: Io, program: Effect.Effect<A, unknown>): Promise<number> =>
  new Promise<number>((resolve) => {
    const write = common.write ?? ((l: string) => io.stderr(l + "\n"))
    const fiber = Effect.runFork(
      program.pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger(common.logFormat, write))),
        Logger.withMinimumLogLevel(common.verbose ? LogLevel.Debug : LogLevel.Info)
      )
    )
    let signalled: NodeJS.Signals | undefined
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) {
        // A second Ctrl-C: quit at once (still safe: state never runs ahead of data).
        common.release?.()
        io.exit?.(ExitCode.interrupted)
        return
      }
      signalled = sig
      write(Logging.line(common.logFormat, "warn", `received ${sig}: stopping (press Ctrl-C again to quit at once)`))
      Effect.runFork(Fiber.interrupt(fiber))
    }
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
    fiber.addObserver((exit) => {
      process.off("SIGINT", onSignal)
      process.off("SIGTERM", onSignal)
      if (Exit.isSuccess(exit)) return resolve(ExitCode.ok)
      if (Cause.isInterruptedOnly(exit.cause)) {
        write(Logging.line(common.logFormat, "warn", common.interrupted ?? "stopped"))
        return resolve(ExitCode.interrupted)
      }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) {
        const e = failure.value
        if (e instanceof ConfigError && e.problems !== undefined && e.problems.length > 1) {
          for (const l of problemLines(common.logFormat, e, e.problems)) write(l)
          return resolve(ExitCode.usage)
        }
        write(Logging.errorLine(common.logFormat, messageOf(e), tagOf(e)))
        return resolve(e instanceof ConfigError ? ExitCode.usage : ExitCode.failed)
      }
      // A defect is a bug in effetl or a plugin: show everything, each line escaped.
      for (const [i, l] of `internal error (please report it): ${Cause.pretty(exit.cause)}`.split("\n").entries()) {
        write(i === 0 ? Logging.errorLine(common.logFormat, l, "Defect") : Logging.escapeControl(l))
      }
      resolve(ExitCode.failed)
    })
  })

/** A logger that formats each line (control characters escaped) and hands it to `write`. */
const logger = (format: Logging.LogFormat, write: (line: string) => void): Logger.Logger<unknown, void> =>
  Logger.make(({ annotations, date, logLevel, message }) => {
    const fields: Record<string, unknown> = {}
    for (const [k, v] of HashMap.toEntries(annotations)) fields[k] = v
    write(Logging.line(format, Logging.levelOf(logLevel.label), Logging.messageText(message, Inspectable.toStringUnknown), fields, date))
  })

/**
 * A config error with several problems (sorted by line): `error: <file>: N problems` and one
 * indented line each; in JSON one error line with the problems (message, path, line) in `problems`.
 */
const problemLines = (format: Logging.LogFormat, e: ConfigError, problems: NonNullable<ConfigError["problems"]>): Array<string> => {
  const heading = e.message.split("\n")[0]!
  if (format === "json") return [Logging.line("json", "error", heading, { error: e._tag, problems })]
  return [Logging.errorLine("pretty", heading), ...problems.map((p) => `  ${Logging.escapeControl(p.message)}`)]
}

/** A failure's message for the user; a config error also names its line when the message does not. */
const messageOf = (e: unknown): string => {
  const message =
    typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e)
  if (e instanceof ConfigError && e.line !== undefined && !message.includes(`line ${e.line}`) && !message.includes(`:${e.line}:`)) {
    const [first, ...rest] = message.split("\n")
    return [`${first} (line ${e.line})`, ...rest].join("\n")
  }
  return message
}

const tagOf = (e: unknown): string =>
  typeof e === "object" && e !== null && typeof (e as { _tag?: unknown })._tag === "string" ? (e as { _tag: string })._tag : "Error"

/** The largest pipeline file read: anything bigger is not a pipeline someone wrote. */
const maxPipelineBytes = 4 * 1024 * 1024

/**
 * Refuses at once what cannot be a pipeline file: a FIFO, socket or device (reading one could wait
 * forever or never end), a directory, a huge file, and says what is wrong with a path it cannot read.
 */
export const pipelineFile = (file: string): Effect.Effect<void, ConfigError> =>
  Effect.suspend(() => {
    const refuse = (why: string) => Effect.fail(new ConfigError({ message: `cannot read pipeline file '${file}': ${why}` }))
    let stat: fs.Stats
    try {
      stat = fs.statSync(file)
    } catch (e) {
      return refuse(fsReason(e))
    }
    if (stat.isDirectory()) return refuse("it is a directory; give a pipeline YAML file")
    if (!stat.isFile()) {
      const kind = stat.isFIFO() ? "a FIFO (named pipe)" : stat.isSocket() ? "a socket" : stat.isCharacterDevice() || stat.isBlockDevice() ? "a device" : "not a regular file"
      return refuse(`it is ${kind}, not a regular file; give a pipeline YAML file`)
    }
    if (stat.size > maxPipelineBytes) return refuse(`it is ${stat.size} bytes, more than a pipeline file's limit of ${maxPipelineBytes}`)
    try {
      fs.accessSync(file, fs.constants.R_OK)
    } catch (e) {
      return refuse(fsReason(e))
    }
    return Effect.void
  })

/** What a file system error means, in words (`permission denied`, not a raw errno). */
const fsReason = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code
  switch (code) {
    case "ENOENT":
      return "no such file"
    case "EACCES":
    case "EPERM":
      return "permission denied"
    case "ENOTDIR":
      return "a part of the path is not a directory"
    case "ELOOP":
      return "too many symbolic links (a loop?)"
    case "ENAMETOOLONG":
      return "the name is too long"
    default:
      return e instanceof Error ? e.message : String(e)
  }
}

/**
 * Loads a pipeline file with every problem reported at once. With `cluster`, its `cluster:` section
 * is checked too (by @effetl/cluster, loaded only when the file has one); a local run ignores it.
 */
const loadPipeline = (file: string, io: Io, statePath?: string, cluster = false) =>
  Effect.zipRight(
    pipelineFile(file),
    PipelineFile.load(file, {
      registry,
      env: io.env,
      ...(statePath ? { statePath } : {}),
      ...(cluster ? { sections: { cluster: () => import("@effetl/cluster").then((m) => m.ClusterConfig.ClusterConfig) } } : {})
    })
  )

/** Names the pipeline file at the front of a config error that does not name it yet. */
const prefix = (file: string) => (e: ConfigError): ConfigError =>
  e.message.startsWith(file) ? e : new ConfigError({ message: `${file}: ${e.message}`, ...(e.path !== undefined ? { path: e.path } : {}) })

const count = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

const width = (io: Io): number => Math.max(40, Math.min(100, io.columns ?? 100))
