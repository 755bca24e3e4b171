/**
 * The `effetl` command line. Exit codes: 0 ok, 1 the run failed, 2 bad config or usage.
 * A user error prints its message, never a stack trace.
 */
import { ConfigError, JsonFileStateStore, PipelineFile, Runner, StateStore } from "@effetl/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import yargs from "yargs"
import { hideBin } from "yargs/helpers"
import { registry, simulators } from "./Builtins.js"
import * as Logging from "./Logging.js"
import * as Plugins from "./Plugins.js"
import * as Progress from "./Progress.js"
import * as Summary from "./Summary.js"

/** Exit codes. */
export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const

interface Common {
  readonly logFormat: Logging.LogFormat
  readonly verbose: boolean
}

/** Runs an Effect as a CLI command: maps failures to messages and exit codes, interrupts on SIGINT/SIGTERM. */
const execute = <A>(common: Common, program: Effect.Effect<A, unknown>, write: (line: string) => void = (l) => process.stderr.write(l + "\n")) =>
  new Promise<void>((resolve) => {
    const logger = Logging.make(common.logFormat, write)
    const fiber = Effect.runFork(
      program.pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(common.verbose ? LogLevel.Debug : LogLevel.Info)
      )
    )
    let signalled: NodeJS.Signals | undefined
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) process.exit(130)
      signalled = sig
      write(`received ${sig}: stopping; committed work is kept and the next 'effetl run' resumes`)
      Effect.runFork(Fiber.interrupt(fiber))
    }
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
    fiber.addObserver((exit) => {
      process.off("SIGINT", onSignal)
      process.off("SIGTERM", onSignal)
      if (Exit.isSuccess(exit)) return resolve()
      if (Cause.isInterruptedOnly(exit.cause)) {
        process.exitCode = 130
        return resolve()
      }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) {
        const e = failure.value
        const message = e instanceof Error || (typeof e === "object" && e !== null && "message" in e) ? String((e as { message: unknown }).message) : String(e)
        const isConfig = e instanceof ConfigError
        if (common.logFormat === "json") write(JSON.stringify({ level: "error", error: (e as { _tag?: string })._tag ?? "Error", message }))
        else write(`error: ${message}`)
        process.exitCode = isConfig ? ExitCode.usage : ExitCode.failed
      } else {
        // A defect is a bug in effetl or a plugin: show everything.
        write(`internal error (please report it): ${Cause.pretty(exit.cause)}`)
        process.exitCode = ExitCode.failed
      }
      resolve()
    })
  })

const loadPipeline = (file: string, statePath?: string) =>
  PipelineFile.load(file, { registry, ...(statePath ? { statePath } : {}) })

/** Builds the yargs parser (exported for tests of the help text). */
export const cli = (argv: ReadonlyArray<string>) =>
  yargs(argv as string[])
    .scriptName("effetl")
    .usage("$0 <command> [options]\n\nAn Effect-based stream ETL for product images: run a pipeline YAML file, or serve an API simulator to try one.")
    .option("log-format", { choices: ["pretty", "json"] as const, default: "pretty" as const, describe: "Log lines for people or one JSON object per line (logs go to stderr)" })
    .option("verbose", { type: "boolean", default: false, describe: "Also log debug messages" })
    .command(
      "run <file>",
      "Run a pipeline: read every source, transform, write every sink. Resumes an unfinished run.",
      (y) =>
        y
          .positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file" })
          .option("dry-run", { type: "boolean", default: false, describe: "Validate the config and reach every source; write nothing" })
          .option("limit", { type: "number", describe: "Read at most N records per source (a trial: writes output, saves no state)" })
          .option("full-refresh", { type: "boolean", default: false, describe: "Ignore saved cursors and transform state; read everything again" })
          .option("restart", { type: "boolean", default: false, describe: "Discard an unfinished run and start a new one" })
          .option("state", { type: "string", describe: "The state file (overrides the pipeline's state.path)" })
          .option("progress", { type: "boolean", describe: "Progress bars (default: on when stderr is a terminal and --log-format is pretty)" })
          .check((a) => {
            if (a.limit !== undefined && (!Number.isInteger(a.limit) || a.limit < 1)) throw new Error("--limit must be an integer ≥ 1")
            return true
          }),
      async (a) => {
        const common = { logFormat: a["log-format"], verbose: a.verbose }
        const useBars = (a.progress ?? (process.stderr.isTTY === true)) && common.logFormat === "pretty"
        const ui = useBars ? Progress.bars() : undefined
        const write = ui ? ui.log : (l: string) => process.stderr.write(l + "\n")
        const reporter =
          ui?.reporter ??
          Progress.lines((source, line) =>
            write(common.logFormat === "json" ? JSON.stringify({ time: new Date().toISOString(), level: "info", message: line, source }) : `${new Date().toISOString().slice(11, 19)} INFO  ${line}  (source=${source})`)
          )
        await execute(
          common,
          Effect.gen(function*() {
            const pipeline = yield* loadPipeline(a.file, a.state)
            const summary = yield* Runner.runNode(pipeline, {
              dryRun: a["dry-run"],
              fullRefresh: a["full-refresh"],
              restart: a.restart,
              reporter,
              ...(a.limit !== undefined ? { limit: a.limit } : {})
            }).pipe(Effect.ensuring(Effect.sync(() => reporter.close?.())))
            process.stdout.write((common.logFormat === "json" ? Summary.json(summary) : Summary.text(summary, pipeline)) + "\n")
          }),
          write
        )
      }
    )
    .command(
      "validate <file>",
      "Check a pipeline file: YAML, environment variables, plugins and every option.",
      (y) => y.positional("file", { type: "string", demandOption: true }),
      async (a) => {
        await execute(
          { logFormat: a["log-format"], verbose: a.verbose },
          Effect.gen(function*() {
            const p = yield* loadPipeline(a.file)
            process.stdout.write(
              `${a.file}: valid pipeline '${p.name}' with ${p.sources.length} source(s) [${p.sources.map((s) => `${s.name}:${s.plugin.name}`).join(", ")}], ` +
                `${p.transforms.length} transform(s) and ${p.sinks.length} sink(s) [${p.sinks.map((s) => `${s.name}:${s.plugin.name}`).join(", ")}]\n`
            )
          })
        )
      }
    )
    .command(
      "plugins [name]",
      "List the built-in plugins, or show one plugin's options.",
      (y) => y.positional("name", { type: "string", describe: "A plugin name, npm package or ./module path" }),
      async (a) => {
        await execute(
          { logFormat: a["log-format"], verbose: a.verbose },
          Effect.gen(function*() {
            if (!a.name) return process.stdout.write(Plugins.list(registry) + "\n")
            const found = yield* Plugins.find(registry, a.name)
            process.stdout.write(Plugins.describe(found.kind, found.plugin) + "\n")
          })
        )
      }
    )
    .command(
      "schema",
      "Print the JSON Schema of pipeline files (for '# yaml-language-server: $schema=...').",
      (y) => y,
      () => {
        process.stdout.write(JSON.stringify(PipelineFile.jsonSchema(registry), null, 2) + "\n")
      }
    )
    .command(
      "state <action> <file>",
      "Show or reset the saved state (runs, checkpoints) of a pipeline.",
      (y) =>
        y
          .positional("action", { choices: ["show", "reset"] as const, demandOption: true })
          .positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file" })
          .option("state", { type: "string", describe: "The state file (overrides the pipeline's state.path)" }),
      async (a) => {
        await execute(
          { logFormat: a["log-format"], verbose: a.verbose },
          Effect.gen(function*() {
            const pipeline = yield* loadPipeline(a.file, a.state)
            yield* Effect.gen(function*() {
              const store = yield* StateStore.StateStore
              if (a.action === "show") {
                const s = yield* store.load(pipeline.name)
                process.stdout.write(JSON.stringify({ pipeline: pipeline.name, state: store.location, ...s }, null, 2) + "\n")
              } else {
                yield* store.reset(pipeline.name)
                process.stdout.write(`state of pipeline '${pipeline.name}' reset in ${store.location}\n`)
              }
            }).pipe(Effect.provide(JsonFileStateStore.layer(pipeline.statePath)))
          })
        )
      }
    )
    .command(
      "simulate <api>",
      "Serve a built-in API simulator on 127.0.0.1 to try effetl without a real store.",
      (y) =>
        y
          .positional("api", { choices: simulators.map((s) => s.api), demandOption: true })
          .option("port", { type: "number", default: 0, describe: "Port (0 = any free port)" })
          .option("faults", { type: "string", default: "", describe: "Faults to inject: comma-separated 5xx,429,reset,truncate,latency" })
          .option("fault-rate", { type: "number", default: 0.2, describe: "Share of requests that get a fault (0..1)" }),
      async (a) => {
        const sim = simulators.find((s) => s.api === a.api)!
        const faults = a.faults.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
        const known = ["5xx", "429", "reset", "truncate", "latency"]
        const bad = faults.filter((f) => !known.includes(f))
        if (bad.length > 0) {
          process.stderr.write(`error: unknown fault(s) ${bad.join(", ")}; known: ${known.join(", ")}\n`)
          process.exitCode = ExitCode.usage
          return
        }
        if (!(a["fault-rate"] >= 0 && a["fault-rate"] <= 1)) {
          process.stderr.write(`error: --fault-rate must be from 0 to 1\n`)
          process.exitCode = ExitCode.usage
          return
        }
        const running = await sim.start({ port: a.port, faults, faultRate: a["fault-rate"] })
        process.stdout.write(running.lines.join("\n") + "\n(Ctrl-C to stop)\n")
        await new Promise<void>((resolve) => {
          const stop = () => void running.close().then(resolve)
          process.once("SIGINT", stop)
          process.once("SIGTERM", stop)
        })
      }
    )
    .demandCommand(1, "Give a command: run, validate, plugins, schema, state or simulate (see --help).")
    .strict()
    .recommendCommands()
    .help()
    .alias("h", "help")
    .version(false)
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err
      process.stderr.write(`error: ${msg}\nRun 'effetl --help' for usage.\n`)
      process.exit(ExitCode.usage)
    })

/** Entry point. */
export const main = async (argv: ReadonlyArray<string>): Promise<void> => {
  await cli(argv).parseAsync()
}

await main(hideBin(process.argv))
