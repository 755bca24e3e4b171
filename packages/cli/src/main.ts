/**
 * The `effetl` command line. Exit codes: 0 ok, 1 the run failed, 2 bad config or usage, 130 stopped
 * by Ctrl-C (SIGINT) or SIGTERM. A user error prints its message, never a stack trace.
 */
import { ConfigError, PipelineFile, Runner, StateStore } from "@effetl/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import yargs from "yargs"
import { hideBin } from "yargs/helpers"
import { registry, simulators } from "./Builtins.js"
import * as Logging from "./Logging.js"
import * as Plugins from "./Plugins.js"
import * as Progress from "./Progress.js"
import * as Summary from "./Summary.js"

/** Exit codes. */
export const ExitCode = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const

/** The command names, for usage messages. */
const commands = ["run", "validate", "plugins", "schema", "state", "simulate"] as const

/** The fault kinds `effetl simulate --faults` accepts. */
const faultKinds = ["5xx", "429", "reset", "truncate", "latency"] as const

interface Common {
  readonly logFormat: Logging.LogFormat
  readonly verbose: boolean
  /** Where log and error lines go (stderr, or above the progress bars). */
  readonly write?: (line: string) => void
  /** Said when Ctrl-C stopped the command. */
  readonly interrupted?: string
  /** Gives the terminal back (cursor, line wrapping) before a second Ctrl-C quits at once. */
  readonly release?: () => void
}

/** Runs an Effect as a CLI command: maps failures to messages and exit codes, interrupts on SIGINT/SIGTERM. */
const execute = <A>(common: Common, program: Effect.Effect<A, unknown>) =>
  new Promise<void>((resolve) => {
    const write = common.write ?? ((l: string) => void process.stderr.write(l + "\n"))
    const logger = Logging.make(common.logFormat, write)
    const fiber = Effect.runFork(
      program.pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(common.verbose ? LogLevel.Debug : LogLevel.Info)
      )
    )
    let signalled: NodeJS.Signals | undefined
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) {
        // A second Ctrl-C: quit at once (still safe: state never runs ahead of data).
        common.release?.()
        process.exit(ExitCode.interrupted)
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
      if (Exit.isSuccess(exit)) return resolve()
      if (Cause.isInterruptedOnly(exit.cause)) {
        write(Logging.line(common.logFormat, "warn", common.interrupted ?? "stopped"))
        process.exitCode = ExitCode.interrupted
        return resolve()
      }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) {
        const e = failure.value
        write(Logging.errorLine(common.logFormat, messageOf(e), tagOf(e)))
        process.exitCode = e instanceof ConfigError ? ExitCode.usage : ExitCode.failed
      } else {
        // A defect is a bug in effetl or a plugin: show everything.
        write(Logging.errorLine(common.logFormat, `internal error (please report it): ${Cause.pretty(exit.cause)}`, "Defect"))
        process.exitCode = ExitCode.failed
      }
      resolve()
    })
  })

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

const loadPipeline = (file: string, statePath?: string) =>
  PipelineFile.load(file, { registry, ...(statePath ? { statePath } : {}) })

const version = (): string => {
  try {
    return (JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version
  } catch {
    return "unknown"
  }
}

/** Builds the yargs parser (exported for tests of the help text). */
export const cli = (argv: ReadonlyArray<string>) =>
  yargs(argv as string[])
    .scriptName("effetl")
    .usage(
      "$0 <command> [options]\n\nAn Effect-based stream ETL for product images: run a pipeline YAML file, or serve an API simulator to try one.\n\n" +
        "Exit codes: 0 ok, 1 the run failed, 2 bad config or usage, 130 stopped by Ctrl-C."
    )
    .option("log-format", {
      choices: ["pretty", "json"] as const,
      default: "pretty" as const,
      describe: "Log lines for people, or one JSON object per line (logs and errors go to stderr)"
    })
    .option("verbose", { type: "boolean", default: false, describe: "Also log debug messages" })
    .command(
      "run <file>",
      "Run a pipeline: read every source, transform, write every sink. Resumes an unfinished run.",
      (y) =>
        y
          .positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file" })
          .option("dry-run", { type: "boolean", default: false, describe: "Validate the config and reach every source (one request each); write nothing" })
          .option("limit", { type: "number", describe: "Read at most N records per source (a trial: writes output, saves no state)" })
          .option("full-refresh", { type: "boolean", default: false, describe: "Ignore saved cursors and transform state; read everything again" })
          .option("restart", { type: "boolean", default: false, describe: "Discard an unfinished run and start a new one" })
          .option("state", { type: "string", describe: "The JSON state file (overrides the pipeline's state.path; not with a SQL state store)" })
          .option("progress", {
            type: "boolean",
            describe: "Progress bars on stderr; --no-progress for log lines (default: bars when stderr is a terminal and --log-format is pretty)"
          })
          .check((a) =>
            a.limit !== undefined && (!Number.isInteger(a.limit) || a.limit < 1) ? "--limit must be an integer ≥ 1" : true
          )
          .example("$0 run pipeline.yaml", "run it (or resume its unfinished run)")
          .example("$0 run pipeline.yaml --limit 20", "a trial: 20 records per source, no state saved")
          .example("$0 run pipeline.yaml --dry-run", "check the config and the credentials"),
      async (a) => {
        const logFormat = a["log-format"]
        const useBars = (a.progress ?? process.stderr.isTTY === true) && logFormat === "pretty"
        const ui = useBars ? Progress.bars() : undefined
        const write = ui ? ui.log : (l: string) => void process.stderr.write(l + "\n")
        const reporter = ui?.reporter ?? Progress.lines((source, line) => write(Logging.line(logFormat, "info", line, { source })))
        const keepsState = !a["dry-run"] && a.limit === undefined
        await execute(
          {
            logFormat,
            verbose: a.verbose,
            write,
            interrupted: keepsState
              ? `stopped: committed work is kept; the next 'effetl run ${a.file}' resumes this run (--restart discards it)`
              : "stopped",
            release: () => reporter.close?.()
          },
          Effect.gen(function*() {
            const pipeline = yield* loadPipeline(a.file, a.state)
            const summary = yield* Runner.runNode(pipeline, {
              dryRun: a["dry-run"],
              fullRefresh: a["full-refresh"],
              restart: a.restart,
              reporter,
              ...(a.limit !== undefined ? { limit: a.limit } : {})
            })
            reporter.close?.()
            process.stdout.write((logFormat === "json" ? Summary.json(summary) : Summary.text(summary, pipeline)) + "\n")
          }).pipe(Effect.ensuring(Effect.sync(() => reporter.close?.())))
        )
      }
    )
    .command(
      "validate <file>",
      "Check a pipeline file: YAML, environment variables, plugins and every option. Reaches no API.",
      (y) => y.positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file" }),
      async (a) => {
        await execute(
          { logFormat: a["log-format"], verbose: a.verbose },
          Effect.gen(function*() {
            const p = yield* loadPipeline(a.file)
            const list = (xs: ReadonlyArray<{ name: string; plugin: { name: string } }>) => xs.map((s) => `${s.name}:${s.plugin.name}`).join(", ")
            process.stdout.write(
              `${a.file}: valid pipeline '${p.name}' with ${count(p.sources.length, "source")} [${list(p.sources)}], ` +
                `${count(p.transforms.length, "transform")}${p.transforms.length > 0 ? ` [${p.transforms.map((t) => t.plugin.name).join(", ")}]` : ""} ` +
                `and ${count(p.sinks.length, "sink")} [${list(p.sinks)}]\n`
            )
          })
        )
      }
    )
    .command(
      "plugins [name]",
      "List the built-in plugins, or show one plugin's options with their defaults.",
      (y) => y.positional("name", { type: "string", describe: "A built-in plugin name, an npm package or a ./module.js path" }),
      async (a) => {
        await execute(
          { logFormat: a["log-format"], verbose: a.verbose },
          Effect.gen(function*() {
            if (!a.name) return void process.stdout.write(Plugins.list(registry) + "\n")
            const found = yield* Plugins.find(registry, a.name)
            process.stdout.write(found.map((f) => Plugins.describe(f.kind, f.plugin)).join("\n\n") + "\n")
          })
        )
      }
    )
    .command(
      "schema",
      "Print the JSON Schema of pipeline files, for editor completion and checking.",
      (y) =>
        y
          .example("$0 schema > effetl.schema.json", "save it next to your pipelines, then start a pipeline file with")
          .example("# yaml-language-server: $schema=./effetl.schema.json", ""),
      () => {
        process.stdout.write(JSON.stringify(PipelineFile.jsonSchema(registry), null, 2) + "\n")
      }
    )
    .command(
      "state <action> <file>",
      "Show or reset the saved state (current run, checkpoints) of a pipeline. Needs only the file's name and state section.",
      (y) =>
        y
          .positional("action", {
            choices: ["show", "reset"] as const,
            demandOption: true,
            describe: "show: print the state as JSON; reset: forget it (the next run starts from scratch)"
          })
          .positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file" })
          .option("state", { type: "string", describe: "The JSON state file (overrides the pipeline's state.path; not with a SQL state store)" }),
      async (a) => {
        await execute(
          { logFormat: a["log-format"], verbose: a.verbose },
          Effect.gen(function*() {
            const pipeline = yield* PipelineFile.peek(a.file, { registry, ...(a.state ? { statePath: a.state } : {}) })
            yield* Effect.gen(function*() {
              const store = yield* StateStore.StateStore
              const saved = yield* store.load(pipeline.name)
              if (a.action === "show") {
                process.stdout.write(JSON.stringify({ pipeline: pipeline.name, state: store.location, ...saved }, null, 2) + "\n")
              } else {
                yield* store.reset(pipeline.name)
                const what = saved.run === null ? "it had no saved run" : `forgot run ${saved.run.id} (${saved.run.status}) and its checkpoints`
                process.stdout.write(`state of pipeline '${pipeline.name}' reset in ${store.location}: ${what}\n`)
              }
            }).pipe(Effect.provide(Runner.nodeLayerFor(pipeline)))
          })
        )
      }
    )
    .command(
      "simulate <api>",
      "Serve a built-in API simulator on 127.0.0.1 to try effetl without a real store. Ctrl-C stops it.",
      (y) =>
        y
          .positional("api", { choices: simulators.map((s) => s.api), demandOption: true, describe: "The API to simulate" })
          .option("port", { type: "number", default: 0, describe: "Port on 127.0.0.1 (0 = any free port)" })
          .option("faults", { type: "string", default: "", describe: `Faults to inject, comma-separated: ${faultKinds.join(",")}` })
          .option("fault-rate", { type: "number", default: 0.2, describe: "Share of requests that get a fault (0..1)" })
          .check((a) => {
            if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) return "--port must be an integer from 0 to 65535"
            const bad = a.faults.split(",").map((s) => s.trim()).filter((f) => f.length > 0 && !(faultKinds as ReadonlyArray<string>).includes(f))
            if (bad.length > 0) return `unknown fault(s) ${bad.join(", ")}; known: ${faultKinds.join(", ")}`
            if (!(a["fault-rate"] >= 0 && a["fault-rate"] <= 1)) return "--fault-rate must be from 0 to 1"
            return true
          }),
      async (a) => {
        const sim = simulators.find((s) => s.api === a.api)!
        const faults = a.faults.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
        let running: Awaited<ReturnType<typeof sim.start>>
        try {
          running = await sim.start({ port: a.port, faults, faultRate: a["fault-rate"] })
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code
          const why = code === "EADDRINUSE" ? `port ${a.port} is already in use` : e instanceof Error ? e.message : String(e)
          process.stderr.write(Logging.errorLine(a["log-format"], `cannot start the ${a.api} simulator: ${why}`) + "\n")
          process.exitCode = ExitCode.failed
          return
        }
        process.stdout.write(running.lines.join("\n") + "\n(Ctrl-C to stop)\n")
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.off("SIGINT", stop)
            process.off("SIGTERM", stop)
            void running.close().then(() => {
              process.stdout.write("simulator stopped\n")
              resolve()
            })
          }
          process.on("SIGINT", stop)
          process.on("SIGTERM", stop)
        })
      }
    )
    .demandCommand(1, `Give a command: ${commands.join(", ")} (see 'effetl --help').`)
    .strict()
    .strictCommands()
    .recommendCommands()
    .help()
    .alias("h", "help")
    .version(version())
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err !== undefined && !msg) {
        // Not a usage problem: a bug in the CLI itself.
        process.stderr.write(`internal error (please report it): ${err.stack ?? String(err)}\n`)
        process.exit(ExitCode.failed)
      }
      const first = argv.find((x) => !x.startsWith("-"))
      const command = commands.find((c) => c === first)
      let text = msg ?? err?.message ?? "bad usage"
      if (command === undefined && first !== undefined && /^(Did you mean|Unknown command)/.test(text)) {
        const guess = /^Did you mean (\S+)\?/.exec(text)
        text = `unknown command '${first}'${guess ? ` (did you mean ${guess[1]}?)` : ""}; the commands are ${commands.join(", ")}`
      }
      const json = argv.some((x, i) => x === "--log-format=json" || (x === "--log-format" && argv[i + 1] === "json"))
      process.stderr.write(
        Logging.errorLine(json ? "json" : "pretty", text, "UsageError") +
          "\n" +
          (json ? "" : `Run 'effetl ${command !== undefined ? `${command} ` : ""}--help' for usage.\n`)
      )
      process.exit(ExitCode.usage)
    })

const count = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/** Entry point. */
export const main = async (argv: ReadonlyArray<string>): Promise<void> => {
  await cli(argv).parseAsync()
}

await main(hideBin(process.argv))
