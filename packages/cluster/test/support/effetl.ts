/**
 * A test entry point with the CLI's distributed commands, run from sources in a child process
 * (`node --import tsx`, paths from tsconfig.check.json): the same `Distributed` functions and plugin
 * registry as `effetl worker` / `effetl run --distributed`, without a build.
 *
 *   effetl.ts worker <pipeline.yaml> [--host H] [--port P]
 *   effetl.ts run <pipeline.yaml> --distributed [--restart] [--full-refresh]   (prints the summary as JSON)
 *   effetl.ts run <pipeline.yaml>                                               (a local run, same output)
 *   effetl.ts runs <pipeline.yaml> [...]                                        (the CLI's own `effetl runs`)
 */
import { PipelineFile, Runner } from "@effetl/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import { registry } from "../../../cli/src/Builtins.js"
import { Distributed } from "@effetl/cluster"

const [command, file, ...rest] = process.argv.slice(2)

// `runs` is the CLI's own command, from sources.
if (command === "runs") {
  const { main } = await import("../../../cli/src/main.js")
  process.exitCode = await main(process.argv.slice(2))
  process.exit()
}
const flag = (name: string) => rest.includes(`--${name}`)
const value = (name: string) => {
  const i = rest.indexOf(`--${name}`)
  return i >= 0 ? rest[i + 1] : undefined
}

const program = Effect.gen(function*() {
  const pipeline = yield* PipelineFile.load(file!, { registry })
  if (command === "worker") {
    const port = value("port")
    return yield* Distributed.worker(pipeline, { host: value("host"), port: port === undefined ? undefined : Number(port) })
  }
  const summary = flag("distributed")
    ? yield* Distributed.run(pipeline, { restart: flag("restart"), fullRefresh: flag("full-refresh") })
    : yield* Runner.runNode(pipeline, { restart: flag("restart"), fullRefresh: flag("full-refresh") })
  process.stdout.write(JSON.stringify({ summary }) + "\n")
})

// Log lines go to stderr, as the CLI's do (stdout holds the summary).
const fiber = Effect.runFork(program.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)))))
const stop = () => Effect.runFork(Fiber.interrupt(fiber))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
fiber.addObserver((exit) => {
  if (Exit.isSuccess(exit)) return void (process.exitCode = 0)
  if (Cause.isInterruptedOnly(exit.cause)) return void (process.exitCode = 130)
  const failure = Cause.failureOption(exit.cause)
  process.stderr.write(
    `error: ${Option.match(failure, { onNone: () => Cause.pretty(exit.cause), onSome: (e) => String((e as { message?: unknown }).message ?? e) })}\n`
  )
  process.exitCode = Option.isSome(failure) && (failure.value as { _tag?: string })._tag === "ConfigError" ? 2 : 1
})
