/**
 * The default state store: one JSON file, `{ "version": 1, "pipelines": { [name]: PipelineState } }`.
 *
 * Every save replaces the file atomically and durably (temp file in the same directory, fsync,
 * rename, fsync of the directory), so a reader sees the old or the new state, never a mix. A file
 * that cannot be read or decoded (empty, cut short, not JSON, not of this shape) is a one-line
 * `StateError` (`corrupt: true`) naming the file, what is wrong and how to recover; it is never
 * silently reset, and no save touches it (every save reads first). Only an explicit `reset` (the
 * user's `effetl state reset`) starts over from a corrupt file: it renames it to
 * `<file>.corrupt-<time>`, keeping it, so the next load finds no state.
 * Saves are serialised within the process.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { StateError } from "./Errors.js"
import * as ErrorBody from "./http/ErrorBody.js"
import { writeAll, writeAtomically } from "./StagedParts.js"
import { empty, PipelineState, StateStore } from "./StateStore.js"
import * as Text from "./Text.js"

/** The file's schema. */
export const StateFile = Schema.Struct({
  version: Schema.Literal(1),
  pipelines: Schema.Record({ key: Schema.String, value: PipelineState })
})
export type StateFile = typeof StateFile.Type

/** Makes a state store backed by the JSON file at `file` (created with its directories on the first save). */
export const make = (file: string): Effect.Effect<StateStore["Type"]> =>
  Effect.sync(() => {
    const target = path.resolve(file)
    const lock = lockFor(target)
    const serial = <A, E>(eff: Effect.Effect<A, E>) => lock.withPermits(1)(eff)

    const shown = Text.printablePath(target)
    const read: Effect.Effect<StateFile, StateError> = Effect.gen(function*() {
      const text = yield* Effect.tryPromise({
        try: () => fsp.readFile(target, "utf8").catch((e: unknown) => (hasCode(e, "ENOENT") ? undefined : Promise.reject(e))),
        catch: (e) => new StateError({ message: `could not read the state file ${shown}: ${errorMessage(e)}`, path: target, cause: e })
      })
      if (text === undefined) return { version: 1, pipelines: {} } as const
      const problem = (what: string) =>
        new StateError({ message: corruptMessage(target, what), path: target, corrupt: true })
      if (text.trim() === "") return yield* problem("it is empty")
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch (e) {
        const why = errorMessage(e)
        return yield* problem(
          /Unexpected end of JSON input|Unterminated string/i.test(why)
            ? "it ends in the middle of the JSON, as after an interrupted write"
            : `it is not JSON (${ErrorBody.oneLine(why, 120)})`
        )
      }
      return yield* Schema.decodeUnknown(StateFile)(json).pipe(
        Effect.mapError((e) => {
          const issue = ParseResult.ArrayFormatter.formatErrorSync(e)[0]
          const at = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.map(String).join(".")}`
          return problem(`it is not an effetl state file of version 1:${at} ${ErrorBody.oneLine(issue?.message ?? "unexpected shape", 120)}`)
        })
      )
    })

    const write = (state: StateFile): Effect.Effect<void, StateError> =>
      Effect.gen(function*() {
        const encoded = yield* Schema.encode(StateFile)(state).pipe(
          Effect.mapError(
            (e) =>
              new StateError({
                message: `could not encode the state for ${shown}: ${
                  ErrorBody.oneLine(ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => `${i.path.join(".")}: ${i.message}`).join("; "))
                }`,
                path: target
              })
          )
        )
        const text = yield* Effect.try({
          try: () => JSON.stringify(encoded, null, 2) + "\n",
          catch: (e) => new StateError({ message: `could not encode the state for ${shown}: ${errorMessage(e)}`, path: target, cause: e })
        })
        yield* Effect.tryPromise({
          try: async () => {
            await fsp.mkdir(path.dirname(target), { recursive: true })
            await removeStaleTemps(target)
            await writeAtomically(target, tempPath(target), (out) => writeAll(out, Buffer.from(text, "utf8")))
          },
          catch: (e) => new StateError({ message: `could not save the state file ${shown}: ${errorMessage(e)}`, path: target, cause: e })
        })
      })

    const update = (f: (pipelines: StateFile["pipelines"]) => StateFile["pipelines"]) =>
      serial(Effect.flatMap(read, (current) => write({ version: 1, pipelines: f(current.pipelines) })))

    /** Renames a corrupt file to `<file>.corrupt-<time>` (kept, never deleted): the next load finds no state. */
    const setAside = Effect.gen(function*() {
      const stamp = new Date(yield* Clock.currentTimeMillis).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")
      const kept = `${target}.corrupt-${stamp}`
      yield* Effect.tryPromise({
        try: () => fsp.rename(target, kept),
        catch: (e) =>
          new StateError({ message: `could not move the corrupt state file ${shown} aside: ${errorMessage(e)}`, path: target, cause: e })
      })
      yield* Effect.logWarning(`the corrupt state file ${shown} was moved to ${Text.printablePath(kept)}; the next run starts over`)
    })

    return StateStore.of({
      location: target,
      load: (pipeline) => Effect.map(read, (s) => s.pipelines[pipeline] ?? empty),
      save: (pipeline, state) => update((pipelines) => ({ ...pipelines, [pipeline]: state })),
      reset: (pipeline) =>
        serial(
          Effect.flatMap(Effect.either(read), (current) => {
            if (current._tag === "Left") return current.left.corrupt === true ? setAside : Effect.fail(current.left)
            const { [pipeline]: _removed, ...rest } = current.right.pipelines
            return write({ version: 1, pipelines: rest })
          })
        )
    })
  })

/** A layer providing `StateStore` backed by the JSON file at `file`. */
export const layer = (file: string): Layer.Layer<StateStore> => Layer.effect(StateStore, make(file))

// ---------------------------------------------------------------------------------------------

/** One lock per state file in the process, so two stores on one file never interleave saves. */
const locks = new Map<string, Effect.Semaphore>()
const lockFor = (target: string): Effect.Semaphore => {
  let lock = locks.get(target)
  if (lock === undefined) {
    lock = Effect.unsafeMakeSemaphore(1)
    locks.set(target, lock)
  }
  return lock
}

/** A temp file name unique to this process and save: `.<basename>.<pid>.<random>.tmp`. */
const tempPath = (target: string): string =>
  path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`)

/** Removes temp files of this target left by a process that is gone (killed during a save). */
const removeStaleTemps = async (target: string): Promise<void> => {
  const dir = path.dirname(target)
  const prefix = `.${path.basename(target)}.`
  for (const name of await fsp.readdir(dir)) {
    if (!name.startsWith(prefix)) continue
    const m = /^(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length))
    if (m === null) continue
    const pid = Number(m[1])
    if (isAlive(pid)) continue
    await fsp.rm(path.join(dir, name), { force: true })
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return hasCode(e, "EPERM")
  }
}

const hasCode = (e: unknown, code: string): boolean =>
  typeof e === "object" && e !== null && (e as { code?: unknown }).code === code

const errorMessage = (e: unknown): string => ErrorBody.oneLine(e instanceof Error ? e.message : String(e), 200)

/** The one line a corrupt state file gets: the file, what is wrong, that it was left as it was, and how to recover. */
const corruptMessage = (target: string, what: string): string => {
  const shown = Text.printablePath(target)
  return `the state file ${shown} is corrupt: ${what}. It was left as it was. To start over, run 'effetl state reset <pipeline file>' (it keeps the corrupt file as ${
    Text.printablePath(path.basename(target))
  }.corrupt-<time>), or restore a backup of ${shown}`
}
