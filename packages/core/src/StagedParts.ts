/**
 * Staged part files: the commit protocol every file sink follows, generic over the encoding.
 *
 * A writer owns one output target. Encoded chunks go into the current part, a `.tmp` file. `commit`
 * makes it durable (flush, fsync, close, rename to `part-<runId>-<seq>.<ext>`, fsync the directory)
 * and returns the token `{ seq }` the runner saves in state. On resume, parts committed after the
 * saved token are deleted (the source reads those records again), so nothing is written twice.
 *
 * - `overwrite` mode: `path` is a file. Parts are staged in
 *   `<dir>/.<basename>.effetl-staging/<runId>/`; `finish` concatenates them (after an optional
 *   header) into a temp file next to the target and renames it over the target, so a reader sees
 *   the old file or the complete new one, never a half-written file. `cleanup` removes the staging.
 * - `append` mode: `path` is a directory. Each commit's part is published into it at once.
 *   Only this run's parts are ever touched there.
 *
 * Formats whose parts are whole files (Parquet) commit a part written by another writer with
 * `commitFile` and publish with `publish` / `publishFile` instead of concatenation.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { FileHandle } from "node:fs/promises"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { SinkError } from "./Errors.js"

/** `overwrite`: publish the whole run as one file at the end. `append`: publish each commit's part at once. */
export type Mode = "overwrite" | "append"

/** The commit token: the sequence number of the last committed part (0 before the first). */
export const Token = Schema.Struct({
  seq: Schema.Int.pipe(Schema.nonNegative())
})
export type Token = typeof Token.Type

/** What a staged-parts writer needs. */
export interface Options {
  /** The sink's name, for error messages. */
  readonly name: string
  /** The target: a file (`overwrite`) or a directory (`append`). Never built from record contents. */
  readonly path: string
  readonly mode: Mode
  /** The run id (letters, digits, `.`, `_`, `-`): parts are named after it. */
  readonly runId: string
  /** The part files' extension, without the dot (`csv`, `jsonl`). */
  readonly ext: string
  /** The token of the last commit saved in state (resume), or none (fresh run). */
  readonly committed: Option.Option<unknown>
  /** Written once at the top of the published file (`overwrite`) or of each part (`append`). */
  readonly header?: () => string | Uint8Array
  /**
   * `overwrite` mode: writes the published file from the committed parts (in order) into `out`,
   * instead of the default header + concatenation. For formats whose parts are whole files that
   * cannot be concatenated (Parquet). The file is then fsynced and renamed as usual.
   */
  readonly publish?: (parts: ReadonlyArray<string>, out: FileHandle) => Promise<void>
  /**
   * `overwrite` mode: like `publish`, for a writer that creates the file itself from a path (e.g.
   * DuckDB's `COPY … TO`): `publishFile(parts, tmp)` writes the published file at `tmp`, which is
   * then fsynced and renamed over the target. Takes precedence over `publish`.
   */
  readonly publishFile?: (parts: ReadonlyArray<string>, tmp: string) => Promise<void>
}

/** A staged-parts writer. Operations are serialised. */
export interface StagedParts {
  /** The absolute target path. */
  readonly target: string
  /** Where committed parts live: the staging directory (`overwrite`) or the target directory (`append`). */
  readonly partsDir: string
  /** Appends an encoded chunk to the current part (opened on the first chunk after a commit). */
  readonly write: (chunk: string | Uint8Array) => Effect.Effect<void, SinkError>
  /** Makes the current part durable and returns the token; no part is made when nothing was written. */
  readonly commit: Effect.Effect<Token, SinkError>
  /**
   * Commits a part written whole by another writer (e.g. DuckDB's `COPY … TO`): `writeFile(tmp)`
   * creates the part's temp file, which is then fsynced, renamed into place and its directory
   * fsynced, like any part, and the token returned. No header is added. Refused while chunks are
   * written to the current part; on failure the temp file is removed and nothing is committed.
   */
  readonly commitFile: (writeFile: (tmp: string) => Promise<void>) => Effect.Effect<Token, SinkError>
  /** The committed parts of this run, in order (absolute paths). */
  readonly committedParts: Effect.Effect<ReadonlyArray<string>, SinkError>
  /** Publishes the run (`overwrite`: atomic replace of the target). Idempotent; keeps the staging. */
  readonly finish: Effect.Effect<void, SinkError>
  /** Removes the staging of this run. */
  readonly cleanup: Effect.Effect<void, SinkError>
}

/** The final name of a part: `part-<runId>-<seq, 5 digits>.<ext>`. */
export const partName = (runId: string, seq: number, ext: string): string =>
  `part-${runId}-${String(seq).padStart(5, "0")}.${ext}`

/** The staging root of an `overwrite` target: `<dir>/.<basename>.effetl-staging`. */
export const stagingRoot = (target: string): string =>
  path.join(path.dirname(target), `.${path.basename(target)}.effetl-staging`)

/** Makes a staged-parts writer for one target, cleaning up after a killed run as the token says. */
export const make = (options: Options): Effect.Effect<StagedParts, SinkError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { ext, mode, name, runId } = options
    const fail = (message: string, cause?: unknown) =>
      new SinkError({ sink: name, message, ...(cause === undefined ? {} : { cause }) })

    if (!/^[A-Za-z0-9._-]+$/.test(runId) || runId === "." || runId === "..") {
      return yield* fail(`sink '${name}': run id ${JSON.stringify(runId)} is not usable in a file name`)
    }
    if (!/^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$/.test(ext)) {
      return yield* fail(`sink '${name}': part extension ${JSON.stringify(ext)} is not valid`)
    }
    if (options.path.trim() === "") return yield* fail(`sink '${name}': the output path is empty`)
    const target = path.resolve(options.path)
    if (mode === "overwrite" && (target === path.parse(target).root || path.basename(target) === "")) {
      return yield* fail(`sink '${name}': ${target} cannot be an output file`)
    }

    const token = yield* decodeToken(options.committed).pipe(
      Effect.mapError((m) => fail(`sink '${name}': the saved commit token is not valid (${m}); rerun with --restart`))
    )

    /** Lifts a platform file-system effect, naming what failed. */
    const onFs = <A>(what: string, eff: Effect.Effect<A, PlatformError>) =>
      Effect.mapError(eff, (e) => fail(`sink '${name}': ${what}: ${e.message}`, e))
    /** Lifts a promise, naming what failed. */
    const io = <A>(what: string, f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: (e) => fail(`sink '${name}': ${what}: ${errorMessage(e)}`, e) })

    const kind = yield* onFs(
      `could not inspect ${target}`,
      fs.stat(target).pipe(
        Effect.map((info) => Option.some(info.type)),
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeed(Option.none()))
      )
    )
    if (mode === "overwrite" && Option.contains(kind, "Directory")) {
      return yield* fail(`sink '${name}': ${target} is a directory; in overwrite mode the path is the output file`)
    }
    if (mode === "append" && Option.isSome(kind) && kind.value !== "Directory") {
      return yield* fail(`sink '${name}': ${target} is not a directory; in append mode the path is a directory that receives part files`)
    }

    const root = stagingRoot(target)
    const partsDir = mode === "overwrite" ? path.join(root, runId) : target
    const publishTmp = path.join(path.dirname(target), `.${path.basename(target)}.effetl-publish-${runId}.tmp`)
    const partRe = new RegExp(`^part-${escapeRegExp(runId)}-(\\d+)\\.${escapeRegExp(ext)}$`)
    const tmpRe = new RegExp(`^\\.part-${escapeRegExp(runId)}-\\d+\\.${escapeRegExp(ext)}\\.tmp$`)
    const tmpPath = (seq: number) => path.join(partsDir, `.${partName(runId, seq, ext)}.tmp`)

    // Recover: a fresh run starts from nothing; a resumed run drops whatever came after the token.
    if (mode === "overwrite" && Option.isNone(options.committed)) {
      yield* onFs(`could not remove old staging ${root}`, fs.remove(root, { recursive: true, force: true }))
      yield* io(`could not remove old temp files next to ${target}`, () => removeStalePublishTemps(target))
    }
    yield* onFs(`could not create directory ${partsDir}`, fs.makeDirectory(partsDir, { recursive: true }))
    const entries = yield* onFs(`could not list ${partsDir}`, fs.readDirectory(partsDir))
    const kept = new Set<number>()
    let removed = false
    for (const entry of entries) {
      const part = partRe.exec(entry)
      const isOwnTmp = tmpRe.test(entry) || (mode === "overwrite" && entry.endsWith(".tmp"))
      if (isOwnTmp || (part !== null && Number(part[1]) > token.seq)) {
        yield* onFs(`could not remove ${path.join(partsDir, entry)}`, fs.remove(path.join(partsDir, entry), { force: true }))
        removed = true
      } else if (part !== null) {
        kept.add(Number(part[1]))
      }
    }
    if (removed) yield* io(`could not sync directory ${partsDir}`, () => fsyncDirectory(partsDir))
    if (mode === "overwrite") {
      for (let s = 1; s <= token.seq; s++) {
        if (!kept.has(s)) {
          return yield* fail(
            `sink '${name}': committed part ${path.join(partsDir, partName(runId, s, ext))} is missing, so the run cannot resume without losing records; rerun with --restart`
          )
        }
      }
    }

    let committedSeq = token.seq
    let current: OpenPart | undefined
    const lock = yield* Effect.makeSemaphore(1)
    const serial = <A, E>(eff: Effect.Effect<A, E>) => lock.withPermits(1)(eff)

    const headerBytes = (): Buffer => {
      const h = options.header?.()
      return h === undefined ? Buffer.alloc(0) : toBuffer(h)
    }

    const discardCurrent = Effect.promise(async () => {
      const open = current
      current = undefined
      if (open === undefined) return
      await open.handle.close().catch(() => undefined)
      await fsp.rm(open.tmp, { force: true }).catch(() => undefined)
    })
    yield* Effect.addFinalizer(() => discardCurrent)

    // The bytes of the open part not yet on disk: one buffer, reused for every part of this sink.
    let buffer: Buffer | undefined
    const write = (chunk: string | Uint8Array): Effect.Effect<void, SinkError> =>
      serial(
        Effect.suspend(() => {
          if (chunk.length === 0) return Effect.void
          return io(`could not write a part of ${target}`, async () => {
            if (current === undefined) {
              const seq = committedSeq + 1
              const tmp = tmpPath(seq)
              const handle = await fsp.open(tmp, "w")
              current = { seq, tmp, handle, buffer: buffer ??= Buffer.allocUnsafe(FLUSH_BYTES), used: 0, wrote: false }
              if (mode === "append") await push(current, headerBytes())
            }
            await push(current, chunk)
            current.wrote = true
          })
        })
      )

    const commit: Effect.Effect<Token, SinkError> = serial(
      Effect.suspend(() => {
        const open = current
        if (open === undefined) return Effect.succeed({ seq: committedSeq })
        const final = path.join(partsDir, partName(runId, open.seq, ext))
        return io(`could not commit part ${final}`, async () => {
          await flush(open)
          await open.handle.sync()
          await open.handle.close()
          current = undefined
          await fsp.rename(open.tmp, final)
          await fsyncDirectory(partsDir)
          committedSeq = open.seq
          return { seq: committedSeq }
        })
      })
    )

    const commitFile = (writeFile: (tmp: string) => Promise<void>): Effect.Effect<Token, SinkError> =>
      serial(
        Effect.suspend(() => {
          if (current !== undefined && current.wrote) {
            return Effect.fail(fail(`sink '${name}': a whole part was committed while chunks were written to the current part`))
          }
          const seq = committedSeq + 1
          const tmp = tmpPath(seq)
          const final = path.join(partsDir, partName(runId, seq, ext))
          return Effect.zipRight(
            discardCurrent,
            io(`could not commit part ${final}`, async () => {
              await fsp.rm(tmp, { force: true })
              try {
                await writeFile(tmp)
                await fsyncFile(tmp)
              } catch (e) {
                await fsp.rm(tmp, { force: true }).catch(() => undefined)
                throw e
              }
              await fsp.rename(tmp, final)
              await fsyncDirectory(partsDir)
              committedSeq = seq
              return { seq: committedSeq }
            })
          )
        })
      )

    const committedParts: Effect.Effect<ReadonlyArray<string>, SinkError> = Effect.suspend(() => {
      const parts: Array<string> = []
      for (let s = 1; s <= committedSeq; s++) parts.push(path.join(partsDir, partName(runId, s, ext)))
      return Effect.succeed(parts)
    })

    const refuseUncommitted = Effect.suspend(() =>
      current !== undefined && current.wrote
        ? Effect.fail(fail(`sink '${name}': finish was called with records written after the last commit; commit first`))
        : Effect.void
    )

    const finish: Effect.Effect<void, SinkError> = serial(
      Effect.gen(function*() {
        yield* refuseUncommitted
        if (mode === "append") return
        const parts = yield* committedParts
        const publishFile = options.publishFile
        if (publishFile !== undefined) {
          return yield* io(`could not publish ${target}`, () =>
            writeFileAtomically(target, publishTmp, (tmp) => publishFile(parts, tmp)))
        }
        yield* io(`could not publish ${target}`, () =>
          writeAtomically(target, publishTmp, async (out) => {
            if (options.publish !== undefined) return options.publish(parts, out)
            await writeAll(out, headerBytes())
            const buffer = Buffer.allocUnsafe(COPY_BYTES)
            for (const part of parts) await copyInto(out, part, buffer)
          })
        )
      })
    )

    const cleanup: Effect.Effect<void, SinkError> = serial(
      Effect.gen(function*() {
        yield* discardCurrent
        if (mode === "append") return
        yield* onFs(`could not remove staging ${partsDir}`, fs.remove(partsDir, { recursive: true, force: true }))
        yield* io(`could not remove ${publishTmp}`, () => fsp.rm(publishTmp, { force: true }))
        const left = yield* onFs(
          `could not list ${root}`,
          fs.readDirectory(root).pipe(
            Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeed(["-"]))
          )
        )
        if (left.length === 0) {
          yield* onFs(`could not remove staging ${root}`, fs.remove(root, { recursive: true, force: true }))
        }
      })
    )

    return { target, partsDir, write, commit, commitFile, committedParts, finish, cleanup } satisfies StagedParts
  })

/** Decodes a saved token; none means a fresh run (`{ seq: 0 }`). */
export const decodeToken = (committed: Option.Option<unknown>): Effect.Effect<Token, string> =>
  Option.match(committed, {
    onNone: () => Effect.succeed({ seq: 0 }),
    onSome: (u) =>
      Schema.decodeUnknown(Token)(u).pipe(Effect.mapError((e) => ParseResult.TreeFormatter.formatErrorSync(e)))
  })

/**
 * Replaces `target` atomically and durably: `body` writes `tmp` (same directory as the target),
 * which is fsynced, renamed over the target, and the directory fsynced. A failure leaves the target
 * as it was. Low level (promise based), shared by file sinks and the JSON state store.
 */
export const writeAtomically = async (
  target: string,
  tmp: string,
  body: (out: FileHandle) => Promise<void>
): Promise<void> => {
  const out = await fsp.open(tmp, "w")
  try {
    await body(out)
    await out.sync()
  } catch (e) {
    await out.close().catch(() => undefined)
    await fsp.rm(tmp, { force: true }).catch(() => undefined)
    throw e
  }
  await out.close()
  await fsp.rename(tmp, target)
  await fsyncDirectory(path.dirname(target))
}

/**
 * `writeAtomically` for a writer that creates the file itself: `body(tmp)` writes `tmp` (same
 * directory as the target), which is then fsynced, renamed over the target, and the directory
 * fsynced. A failure removes `tmp` and leaves the target as it was.
 */
export const writeFileAtomically = async (
  target: string,
  tmp: string,
  body: (tmp: string) => Promise<void>
): Promise<void> => {
  await fsp.rm(tmp, { force: true })
  try {
    await body(tmp)
    await fsyncFile(tmp)
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined)
    throw e
  }
  await fsp.rename(tmp, target)
  await fsyncDirectory(path.dirname(target))
}

/** Fsyncs a file written by someone else (opened read-only: fsync works on any descriptor of the file). */
export const fsyncFile = async (file: string): Promise<void> => {
  const handle = await fsp.open(file, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Fsyncs a directory so renames and removals in it survive a crash (a no-op where unsupported). */
export const fsyncDirectory = async (dir: string): Promise<void> => {
  let handle: FileHandle
  try {
    handle = await fsp.open(dir, "r")
  } catch (e) {
    if (hasCode(e, "EISDIR", "EPERM", "EACCES")) return // platforms that cannot open a directory
    throw e
  }
  try {
    await handle.sync()
  } catch (e) {
    if (!hasCode(e, "EINVAL", "ENOTSUP", "EPERM", "EBADF")) throw e
  } finally {
    await handle.close()
  }
}

/** Writes a whole buffer to a file handle, looping over partial writes. */
export const writeAll = async (out: FileHandle, data: Uint8Array): Promise<void> => {
  let offset = 0
  while (offset < data.length) {
    const { bytesWritten } = await out.write(data, offset, data.length - offset)
    offset += bytesWritten
  }
}

// ---------------------------------------------------------------------------------------------

/** Chunks are buffered up to this size before a write to disk. */
const FLUSH_BYTES = 1 << 20
/** The copy buffer used when concatenating parts. */
const COPY_BYTES = 1 << 20

interface OpenPart {
  readonly seq: number
  readonly tmp: string
  readonly handle: FileHandle
  /** Holds `used` bytes not yet written (the sink's buffer: a part is written before the next opens). */
  readonly buffer: Buffer
  used: number
  /** A record chunk (not only a header) was written. */
  wrote: boolean
}

const encoder = new TextEncoder()

/**
 * Appends a chunk to the part's buffer, writing the buffer to disk whenever it fills: a string is
 * encoded straight into it, so a batch leaves no bytes of its own for the collector.
 */
const push = async (part: OpenPart, chunk: string | Uint8Array): Promise<void> => {
  if (typeof chunk === "string") {
    let rest = chunk
    for (;;) {
      const { read, written } = encoder.encodeInto(rest, part.buffer.subarray(part.used))
      part.used += written
      if (read === rest.length) break
      // Full (or too full for the next character): write it out and go on with the rest.
      rest = rest.slice(read)
      await flush(part)
    }
  } else {
    let offset = 0
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, part.buffer.length - part.used)
      part.buffer.set(chunk.subarray(offset, offset + n), part.used)
      part.used += n
      offset += n
      if (offset < chunk.length) await flush(part)
    }
  }
  if (part.used >= part.buffer.length) await flush(part)
}

const flush = async (part: OpenPart): Promise<void> => {
  if (part.used === 0) return
  const used = part.used
  part.used = 0
  await writeAll(part.handle, part.buffer.subarray(0, used))
}

const copyInto = async (out: FileHandle, src: string, buffer: Buffer): Promise<void> => {
  const input = await fsp.open(src, "r")
  try {
    for (;;) {
      const { bytesRead } = await input.read(buffer, 0, buffer.length, null)
      if (bytesRead === 0) return
      await writeAll(out, buffer.subarray(0, bytesRead))
    }
  } finally {
    await input.close()
  }
}

/** Removes `.<basename>.effetl-publish-*.tmp` files left next to the target by a killed `finish`. */
const removeStalePublishTemps = async (target: string): Promise<void> => {
  const dir = path.dirname(target)
  const prefix = `.${path.basename(target)}.effetl-publish-`
  let names: Array<string>
  try {
    names = await fsp.readdir(dir)
  } catch (e) {
    if (hasCode(e, "ENOENT")) return
    throw e
  }
  for (const n of names) {
    if (n.startsWith(prefix) && n.endsWith(".tmp")) await fsp.rm(path.join(dir, n), { force: true })
  }
}

const toBuffer = (chunk: string | Uint8Array): Buffer =>
  typeof chunk === "string" ? Buffer.from(chunk, "utf8") : Buffer.from(chunk) // a copy: the caller may reuse its array

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const hasCode = (e: unknown, ...codes: ReadonlyArray<string>): boolean =>
  typeof e === "object" && e !== null && codes.includes(String((e as { code?: unknown }).code))

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))
