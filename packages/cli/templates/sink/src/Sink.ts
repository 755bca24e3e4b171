/**
 * The `__plugin__` sink plugin: every record as one JSON line in a file, published atomically at
 * the end of the run. (Made by `effetl new sink`: replace the format with yours, keeping the commit
 * protocol below.)
 *
 * The commit protocol, which makes a rerun after a kill lose and duplicate nothing:
 * - `write` adds records to the current, uncommitted part (here: in memory);
 * - `commit` makes everything written so far durable (here: a part file, written to a temp name,
 *   fsynced and renamed into place) and returns a JSON token, which the runner saves in the state
 *   together with the sources' checkpoints;
 * - on a resume the sink gets its last saved token back (`committed`) and discards whatever it
 *   committed after it (parts whose checkpoint was never saved: their records come again);
 * - `finish` publishes the run's output (here: the parts joined into the file, renamed into place);
 * - `cleanup` removes the staging once the run is recorded as finished.
 */
import { Config, type ProductImage, Sink, SinkError, toJson } from "@effetl/core"
import type * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** The `with:` options of the `__plugin__` sink. */
export const __Ident__Config = Schema.Struct({
  path: Config.required(Schema.NonEmptyString, {
    description: "The file to write, relative to the directory effetl runs in. It is replaced at the end of each run, atomically.",
    examples: ["out/images.ndjson"]
  }),
  withExtra: Config.withDefault(Schema.Boolean, true, {
    description: "Write each record's `extra` (the vendor's fields with no canonical slot).",
    examples: [true, false]
  })
})
export type __Ident__Config = typeof __Ident__Config.Type

/** The token a commit returns: how many parts the run has committed. */
const Token = Schema.Struct({ parts: Schema.Int })
const decodeToken = Schema.decodeUnknownOption(Token)

/** The `__plugin__` sink. */
export const __ident__ = Sink.define<__Ident__Config>({
  name: "__plugin__",
  description: "Every record as one JSON line (NDJSON) in a file, published atomically at the end of each run.",
  config: __Ident__Config,
  // The file it writes, so that `effetl validate` refuses two outputs on one path before a run.
  outputs: (config, ctx) => [{ option: "path", path: path.resolve(target(config, ctx.trial === true)), kind: "file" }],
  make: (config, ctx) =>
    Effect.gen(function*() {
      const file = path.resolve(target(config, ctx.trial === true))
      const staging = path.join(`${file}.staging`, ctx.runId)
      const fail = (what: string) => (cause: unknown) =>
        new SinkError({ sink: ctx.name, message: `sink '${ctx.name}': cannot ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })
      const attempt = <A>(what: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: fail(what) })
      const partFile = (n: number) => path.join(staging, `part-${String(n).padStart(6, "0")}.ndjson`)

      // Resume: keep the parts up to the last saved commit, discard any later one.
      let parts = Option.match(Option.flatMap(ctx.committed, decodeToken), { onNone: () => 0, onSome: (t) => t.parts })
      yield* attempt(`prepare ${staging}`, async () => {
        await fs.mkdir(staging, { recursive: true })
        for (const name of await fs.readdir(staging)) {
          const n = /^part-(\d+)\.ndjson$/.exec(name)
          if (n === null || Number(n[1]) > parts) await fs.rm(path.join(staging, name), { force: true })
        }
      })

      let pending: Array<string> = []
      return {
        write: (records: Chunk.Chunk<ProductImage>) =>
          Effect.sync(() => {
            for (const r of records) pending.push(line(r, config.withExtra))
          }),
        commit: Effect.suspend(() => {
          if (pending.length === 0) return Effect.succeed({ parts })
          const lines = pending
          const n = parts + 1
          return Effect.map(
            attempt(`write ${partFile(n)}`, () => writeDurably(partFile(n), lines.join(""))),
            () => {
              pending = []
              parts = n
              return { parts }
            }
          )
        }),
        finish: attempt(`publish ${file}`, async () => {
          const all: Array<string> = []
          for (let n = 1; n <= parts; n++) all.push(await fs.readFile(partFile(n), "utf8"))
          await fs.mkdir(path.dirname(file), { recursive: true })
          await writeDurably(file, all.join(""))
        }),
        cleanup: attempt(`remove ${staging}`, async () => {
          await fs.rm(staging, { recursive: true, force: true })
          await fs.rmdir(path.dirname(staging)).catch(() => undefined) // only when no other run stages there
        })
      }
    })
})

/** Where a run writes: the file, or its trial location for `effetl run --limit` (`images.ndjson` → `images.trial.ndjson`). */
const target = (config: __Ident__Config, trial: boolean): string => (trial ? Sink.trialPath(config.path) : config.path)

/** One record as a JSON line. */
const line = (r: ProductImage, withExtra: boolean): string => {
  const { extra, ...json } = toJson(r)
  return JSON.stringify(withExtra ? { ...json, extra } : json) + "\n"
}

/** Writes a file so that it is either complete or absent after a crash: a temp file, fsync, rename, fsync of the directory. */
const writeDurably = async (file: string, text: string): Promise<void> => {
  const temp = `${file}.tmp-${process.pid}`
  const handle = await fs.open(temp, "w")
  try {
    await handle.writeFile(text, "utf8")
    await handle.sync()
  } finally {
    await handle.close()
  }
  await fs.rename(temp, file)
  const dir = await fs.open(path.dirname(file), "r").catch(() => undefined) // not on every platform
  if (dir !== undefined) await dir.sync().catch(() => undefined).finally(() => dir.close())
}
