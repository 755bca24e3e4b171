/**
 * The `effetl` command line. Exit codes: 0 ok, 1 the run failed, 2 bad config or usage, 130 stopped
 * by Ctrl-C (SIGINT) or SIGTERM. A user error prints one line (a pipeline file with several problems:
 * a heading and one line each), never a stack trace.
 *
 * This module parses the arguments (yargs) and loads nothing else up front: a command's code, core
 * and the plugins load when the command runs (`Commands.ts`), so `--version` and `--help` are quick.
 */
import * as fs from "node:fs"
import type { Argv } from "yargs"
import * as Logging from "./Logging.js"
import { faultKinds, simulators } from "./Simulators.js"

/** Exit codes. */
export const ExitCode = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const

/** Where a command's output goes and what it reads: the process's by default, a test's in-process. */
export interface Io {
  /** The summary and other results. */
  readonly stdout: (text: string) => void
  /** Log lines and errors. */
  readonly stderr: (text: string) => void
  /** The environment for `${VAR}` in pipeline files. */
  readonly env: Record<string, string | undefined>
  /** Whether stderr is a terminal (progress bars by default). */
  readonly stderrIsTTY: boolean
  /** The terminal width for help text, if any. */
  readonly columns?: number | undefined
  /** Quits the process at once (a second Ctrl-C); left out in-process, where it is never called. */
  readonly exit?: (code: number) => void
}

/** The process's own streams and environment. */
export const processIo: Io = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  env: process.env,
  stderrIsTTY: process.stderr.isTTY === true,
  columns: process.stdout.columns,
  exit: (code) => process.exit(code)
}

/** The command names and their arguments, for usage messages. */
const commands = {
  run: "run <file>",
  validate: "validate <file>",
  plugins: "plugins [name]",
  schema: "schema",
  state: "state <action> <file>",
  runs: "runs <file> [id]",
  simulate: "simulate <api>",
  worker: "worker <file>",
  new: "new <kind> <name>"
} as const
type Command = keyof typeof commands
/** The positional arguments' names (the rest are options, shown as `--name`). */
const positionals = new Set(["file", "name", "action", "api", "id", "kind"])
const commandNames = Object.keys(commands) as ReadonlyArray<Command>

/** A usage problem: one line, exit 2. */
class UsageError extends Error {}

/** The package version. */
export const version = (): string => {
  try {
    return (JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version
  } catch {
    return "unknown"
  }
}

/** The `--state` option (run and state). */
const stateOption = {
  type: "string",
  requiresArg: true,
  describe: "The JSON state file (overrides the pipeline's state.path; not with a SQL state store)"
} as const

/** The options every command takes. */
export interface Global {
  readonly "log-format": Logging.LogFormat
  readonly verbose: boolean
}

/**
 * Builds the yargs parser. Each handler stores its command's exit code in `result`; a usage problem
 * throws a `UsageError` out of `parseAsync`.
 */
export const cli = (yargs: (argv: Array<string>) => Argv, argv: ReadonlyArray<string>, io: Io, result: { code: number }) => {
  /** The innermost command's parser, for the options it knows (see `unknownOptions`). */
  let scoped: Argv | undefined
  const load = () => import("./Commands.js")
  const parser = yargs([...argv])
    .scriptName("effetl")
    .exitProcess(false)
    // An option given twice takes its last value (never an array a check would not expect).
    .parserConfiguration({ "duplicate-arguments-array": false })
    .usage(
      "$0 <command> [options]\n\nAn Effect-based stream ETL for product images: run a pipeline YAML file, or serve an API simulator to try one.\n\n" +
        "Exit codes: 0 ok, 1 the run failed, 2 bad config or usage, 130 stopped by Ctrl-C."
    )
    .option("log-format", {
      choices: ["pretty", "json"] as const,
      default: "pretty" as const,
      requiresArg: true,
      describe: "Log lines for people, or one JSON object per line (logs and errors go to stderr)"
    })
    .option("verbose", { type: "boolean", default: false, describe: "Also log debug messages" })
    .command(
      commands.run,
      "Run a pipeline: read every source, transform, write every sink. Resumes an unfinished run.",
      (y) =>
        (scoped = y)
          .positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file" })
          .option("dry-run", { type: "boolean", default: false, describe: "Validate the config and reach every source (one request each); write nothing" })
          .option("limit", {
            type: "number",
            requiresArg: true,
            describe: "Read at most N records per source: a trial, written to each output's trial location (images.trial.csv), no state saved"
          })
          .option("full-refresh", { type: "boolean", default: false, describe: "Ignore saved cursors and transform state; read everything again" })
          .option("restart", { type: "boolean", default: false, describe: "Discard an unfinished run and start a new one" })
          .option("state", stateOption)
          .option("progress", {
            type: "boolean",
            describe: "Progress bars on stderr; --no-progress for log lines (default: bars when stderr is a terminal and --log-format is pretty)"
          })
          .option("distributed", {
            type: "boolean",
            default: false,
            describe: "Run on the workers of the pipeline's cluster: section ('effetl worker'): plan, wait, print the same summary; resumes its unfinished distributed run"
          })
          .check((a) => {
            if (a.limit !== undefined && (!Number.isInteger(a.limit) || a.limit < 1)) return "--limit must be an integer ≥ 1"
            return a.state === "" ? "--state needs a file name" : true
          })
          .example("$0 run pipeline.yaml", "run it (or resume its unfinished run)")
          .example("$0 run pipeline.yaml --limit 20", "a trial: 20 records per source, to the trial locations, no state saved")
          .example("$0 run pipeline.yaml --dry-run", "check the config and the credentials")
          .example("$0 run pipeline.yaml --distributed", "split it into partitions run by the workers (see 'effetl worker')"),
      async (a) => {
        result.code = await (await load()).run(
          {
            file: a.file,
            logFormat: a["log-format"],
            verbose: a.verbose,
            dryRun: a["dry-run"],
            fullRefresh: a["full-refresh"],
            restart: a.restart,
            ...(a.limit !== undefined ? { limit: a.limit } : {}),
            ...(a.state !== undefined ? { state: a.state } : {}),
            ...(a.progress !== undefined ? { progress: a.progress } : {}),
            ...(a.distributed ? { distributed: true } : {})
          },
          io
        )
      }
    )
    .command(
      commands.validate,
      "Check a pipeline file: YAML, environment variables, plugins, every option, the cluster: section and that no two outputs share a path. " +
        "Reports every problem at once, sorted by line, with a did-you-mean for misspelt option and plugin names. Reaches no API.",
      (y) => (scoped = y).positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file" }),
      async (a) => {
        result.code = await (await load()).validate({ file: a.file, logFormat: a["log-format"], verbose: a.verbose }, io)
      }
    )
    .command(
      commands.plugins,
      "List the built-in plugins, or show one plugin's options with their defaults.",
      (y) => (scoped = y).positional("name", { type: "string", describe: "A built-in plugin name, an npm package or a ./module.js path" }),
      async (a) => {
        result.code = await (await load()).plugins({ name: a.name, logFormat: a["log-format"], verbose: a.verbose }, io)
      }
    )
    .command(
      commands.schema,
      "Print the JSON Schema of pipeline files, for editor completion and checking: every built-in plugin with its options, " +
        "and the outside plugins you name. A ${VAR} is accepted wherever a value is; a use: one typo away from a built-in is flagged.",
      (y) =>
        (scoped = y)
          .option("plugin", {
            type: "string",
            array: true,
            requiresArg: true,
            describe: "Also include this outside plugin, repeatable: an npm package or a ./module.js path, as pipeline files write it (resolved from the working directory)"
          })
          .option("for", {
            type: "string",
            requiresArg: true,
            describe: "Also include every outside plugin this pipeline file uses (its use: paths resolve from the file's directory)"
          })
          .check((a) => (a.for === "" ? "--for needs a pipeline file" : (a.plugin ?? []).some((p) => p === "") ? "--plugin needs a name" : true))
          .example("$0 schema > effetl.schema.json", "save it next to your pipelines, then start a pipeline file with")
          .example("# yaml-language-server: $schema=./effetl.schema.json", "")
          .example("$0 schema --for pipeline.yaml > effetl.schema.json", "with the options of the file's own plugins too")
          .example("$0 schema --plugin effetl-source-shopify", "with an outside package's options"),
      async (a) => {
        result.code = await (await load()).schema(
          { logFormat: a["log-format"], verbose: a.verbose, plugins: a.plugin ?? [], ...(a.for !== undefined ? { for: a.for } : {}) },
          io
        )
      }
    )
    .command(
      commands.state,
      "Show or reset the saved state (current run, checkpoints) of a pipeline. Needs only the file's name and state section.",
      (y) =>
        (scoped = y)
          .positional("action", {
            choices: ["show", "reset"] as const,
            demandOption: true,
            describe: "show: print the state as JSON; reset: forget it (the next run starts from scratch)"
          })
          .positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file" })
          .option("state", stateOption)
          .check((a) => (a.state === "" ? "--state needs a file name" : true)),
      async (a) => {
        result.code = await (await load()).state(
          { action: a.action, file: a.file, logFormat: a["log-format"], verbose: a.verbose, ...(a.state !== undefined ? { state: a.state } : {}) },
          io
        )
      }
    )
    .command(
      commands.runs,
      "List a pipeline's past runs (id, start, duration, status, counts per source, error), newest first, or show one run. Needs only the file's name and state section (and its cluster section, whose distributed runs are listed too).",
      (y) =>
        (scoped = y)
          .positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file" })
          .positional("id", { type: "string", describe: "A run id (or the start of one): show that run in detail" })
          .option("state", stateOption)
          .check((a) => (a.state === "" ? "--state needs a file name" : true))
          .example("$0 runs pipeline.yaml", "the runs its state store kept (the last 50, or state.history)")
          .example("$0 runs pipeline.yaml 20261205T000102Z-k3x9qa", "one run: counts per source, records dropped per reason, error")
          .example("$0 runs pipeline.yaml --log-format json", "the same as one JSON object"),
      async (a) => {
        result.code = await (await load()).runs(
          { file: a.file, id: a.id, logFormat: a["log-format"], verbose: a.verbose, ...(a.state !== undefined ? { state: a.state } : {}) },
          io
        )
      }
    )
    .command(
      commands.simulate,
      "Serve an API simulator on 127.0.0.1 to try effetl without a real store: a built-in one, or a plugin's from a module path or package. Ctrl-C stops it.",
      (y) =>
        (scoped = y)
          .positional("api", {
            type: "string",
            demandOption: true,
            describe: `The API to simulate: ${simulators.map((s) => s.api).join(", ")}; or a ./path/to/simulator.js (relative to the working directory) or an npm package whose module exports \`simulator\` (Simulator.define from @effetl/core/simulator)`
          })
          .option("port", { type: "number", default: 0, requiresArg: true, describe: "Port on 127.0.0.1 (0 = any free port)" })
          .option("faults", { type: "string", default: "", requiresArg: true, describe: `Faults to inject, comma-separated: ${faultKinds.join(",")}` })
          .option("fault-rate", { type: "number", default: 0.2, requiresArg: true, describe: "Share of requests that get a fault (0..1)" })
          .check((a) => {
            if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) return "--port must be an integer from 0 to 65535"
            const bad = a.faults.split(",").map((s) => s.trim()).filter((f) => f.length > 0 && !(faultKinds as ReadonlyArray<string>).includes(f))
            if (bad.length > 0) return `unknown fault(s) ${bad.join(", ")}; known: ${faultKinds.join(", ")}`
            if (!(a["fault-rate"] >= 0 && a["fault-rate"] <= 1)) return "--fault-rate must be from 0 to 1"
            return true
          }),
      async (a) => {
        result.code = await (await load()).simulate(
          { api: a.api, port: a.port, faults: a.faults, faultRate: a["fault-rate"], logFormat: a["log-format"], verbose: a.verbose },
          io
        )
      }
    )
    .command(
      commands.worker,
      "Serve a pipeline's partitions for 'effetl run --distributed', with the other workers of its cluster: section (PostgreSQL). Ctrl-C or SIGTERM stops it; its work moves to the others.",
      (y) =>
        (scoped = y)
          .positional("file", { type: "string", demandOption: true, describe: "The pipeline YAML file (the same file on every worker and the planner)" })
          .option("host", { type: "string", requiresArg: true, describe: "The address the other workers reach this one at (default: cluster.host, else 127.0.0.1)" })
          .option("port", { type: "number", requiresArg: true, describe: "The port this worker listens on for the others (default: cluster.port, else 34431)" })
          .check((a) => {
            if (a.port !== undefined && (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535)) return "--port must be an integer from 1 to 65535"
            return a.host === "" ? "--host needs an address" : true
          })
          .example("$0 worker pipeline.yaml --host 10.0.0.5", "serve partitions on this machine (one worker per machine or core)"),
      async (a) => {
        result.code = await (await load()).worker(
          {
            file: a.file,
            logFormat: a["log-format"],
            verbose: a.verbose,
            ...(a.host !== undefined ? { host: a.host } : {}),
            ...(a.port !== undefined ? { port: a.port } : {})
          },
          io
        )
      }
    )
    .command(
      commands.new,
      "Make an npm package with a working source or sink plugin of your own: it builds, tests and runs as made.",
      (y) =>
        (scoped = y)
          .positional("kind", { choices: ["source", "sink"] as const, demandOption: true, describe: "What the plugin is" })
          .positional("name", { type: "string", demandOption: true, describe: "The npm package name (e.g. effetl-source-shop, @acme/effetl-sink-lake)" })
          .option("dir", { type: "string", requiresArg: true, describe: "Where to make it (default: ./<name without its scope>); it must not exist or be empty" })
          .check((a) => (a.dir === "" ? "--dir needs a directory" : true))
          .example("$0 new source effetl-source-shop", "a source plugin in ./effetl-source-shop: API schemas, client, plugin, simulator, tests")
          .example("$0 new sink @acme/effetl-sink-lake --dir lake", "a sink plugin following the commit protocol, in ./lake"),
      async (a) => {
        result.code = await (await load()).newPackage(
          { kind: a.kind, name: a.name, logFormat: a["log-format"], verbose: a.verbose, ...(a.dir !== undefined ? { dir: a.dir } : {}) },
          io
        )
      }
    )
    .demandCommand(1, `give a command: ${commandNames.join(", ")}`)
    .strict()
    .strictCommands()
    .strictOptions()
    .recommendCommands()
    .help()
    .alias("h", "help")
    .version(version())
    .wrap(Math.min(110, io.columns ?? 100))
    .updateStrings({
      "Invalid values:": "invalid value:",
      "Argument: %s, Given: %s, Choices: %s": "%s is %s; expected one of %s",
      "Not enough arguments following: %s": "--%s needs a value"
    })
    .fail((msg, err) => {
      if (err !== undefined && err !== null && !msg) throw err // not a usage problem: a bug, reported as one by main
      throw new UsageError(msg ?? err?.message ?? "bad usage")
    })
  return { parser, scoped: (): Argv => scoped ?? parser }
}

/**
 * Runs the CLI on `argv` (without the node and script paths) and returns the exit code. Never calls
 * `process.exit` (only `io.exit`, on a second Ctrl-C), so tests run it in-process.
 */
export const main = async (argv: ReadonlyArray<string>, io: Io = processIo): Promise<number> => {
  // `effetl --version` alone needs no parser at all.
  if (argv.length === 1 && argv[0] === "--version") {
    io.stdout(`${version()}\n`)
    return ExitCode.ok
  }
  const [{ default: yargs }, { Parser }] = await Promise.all([import("yargs"), import("yargs/helpers")])
  const result = { code: ExitCode.ok }
  const { parser, scoped } = cli(yargs, argv, io, result)
  try {
    await parser.parseAsync([...argv], {}, (_err, _argv, output) => {
      if (output) io.stdout(output.endsWith("\n") ? output : `${output}\n`)
    })
    return result.code
  } catch (e) {
    const json = Parser(argv as Array<string>, { configuration: { "camel-case-expansion": false } })["log-format"] === "json"
    if (!(e instanceof UsageError)) {
      io.stderr(Logging.errorLine(json ? "json" : "pretty", `internal error (please report it): ${e instanceof Error ? e.stack ?? e.message : String(e)}`, "Defect") + "\n")
      return ExitCode.failed
    }
    const text = usageMessage(e.message, argv, scoped(), Parser)
    io.stderr(Logging.errorLine(json ? "json" : "pretty", text, "UsageError") + "\n")
    return ExitCode.usage
  }
}

/** A usage error in one line, naming the bad argument and where help is. */
const usageMessage = (
  yargsMessage: string,
  argv: ReadonlyArray<string>,
  scoped: Argv,
  parse: typeof import("yargs/helpers").Parser
): string => {
  const first = argv.find((x) => !x.startsWith("-"))
  const command = commandNames.find((c) => c === first)
  const help = `see 'effetl ${command !== undefined ? `${command} ` : ""}--help'`
  const flat = yargsMessage.split("\n").map((l) => l.trim()).filter((l) => l.length > 0).join(" ")
  if (command === undefined && first !== undefined && /^(Did you mean|Unknown command|Unknown argument)/.test(flat)) {
    const guess = /^Did you mean (\S+)\?/.exec(flat)
    return `unknown command '${first}'${guess ? ` (did you mean ${guess[1]}?)` : ""}; the commands are ${commandNames.join(", ")}`
  }
  // An unknown option may have taken the next argument as its value (`run --bogus p.yaml`), so yargs
  // reports a missing argument first: name the option instead.
  const unknown = unknownOptions(argv, scoped, parse)
  if (unknown.length > 0) return `unknown option${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (${help})`
  if (/^Not enough non-option arguments/.test(flat) && command !== undefined) {
    return `missing argument: effetl ${commands[command]} (${help})`
  }
  const extra = /^Unknown (?:arguments?|commands?): (.*)$/.exec(flat)
  if (extra && command !== undefined) return `unexpected argument${extra[1]!.includes(",") ? "s" : ""} ${extra[1]}: effetl ${commands[command]} (${help})`
  const invalid = /^invalid value: (\S+) is (.*)$/.exec(flat)
  if (invalid) return `invalid value: ${positionals.has(invalid[1]!) ? invalid[1] : `--${invalid[1]}`} is ${invalid[2]} (${help})`
  return `${flat} (${help})`
}

/** The options in `argv` that the command (or the global parser) does not know, as typed (`--bogus`, `-x`). */
const unknownOptions = (argv: ReadonlyArray<string>, scoped: Argv, parse: typeof import("yargs/helpers").Parser): Array<string> => {
  const options = (scoped as unknown as { getOptions: () => { key: Record<string, unknown>; alias: Record<string, Array<string>> } }).getOptions()
  const known = new Set([...Object.keys(options.key), ...Object.keys(options.alias), ...Object.values(options.alias).flat()])
  const end = argv.indexOf("--")
  const parsed = parse(end === -1 ? [...argv] : argv.slice(0, end), { configuration: { "camel-case-expansion": false } })
  return Object.keys(parsed)
    .filter((k) => k !== "_" && k !== "$0" && !known.has(k) && !(k.startsWith("no-") && known.has(k.slice(3))))
    .map((k) => (k.length === 1 ? `-${k}` : `--${k}`))
}
