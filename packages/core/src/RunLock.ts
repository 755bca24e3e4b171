/**
 * One run of a pipeline at a time: a lock file next to the state file, holding the owner's pid and
 * host. A lock left by a process that no longer runs (killed, crashed) is taken over.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { StateError } from "./Errors.js"

interface Owner {
  readonly pid: number
  readonly host: string
  readonly since: string
}

/** The lock file of a pipeline whose state lives in `statePath`. */
export const lockPath = (statePath: string, pipeline: string): string =>
  `${path.resolve(statePath)}.${pipeline.replace(/[^A-Za-z0-9_.-]/g, "_")}.lock`

/** Holds the pipeline's lock for the scope, or fails naming the process that holds it. */
export const acquire = (statePath: string, pipeline: string): Effect.Effect<void, StateError, Scope.Scope> => {
  const file = lockPath(statePath, pipeline)
  return Effect.acquireRelease(
    Effect.tryPromise({
      try: () => take(file, pipeline),
      catch: (e) =>
        e instanceof StateError
          ? e
          : new StateError({ message: `pipeline '${pipeline}': cannot take the run lock ${file}: ${String(e)}`, path: file })
    }),
    () => Effect.promise(() => release(file))
  )
}

/**
 * Whether a process on this machine holds the pipeline's lock now (a run is going). A lock left by a
 * process that is gone does not count; one held on another host does (it cannot be checked from here).
 */
export const held = (statePath: string, pipeline: string): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    const owner = await readOwner(lockPath(statePath, pipeline))
    return owner !== undefined && (owner.host !== os.hostname() || alive(owner.pid))
  })

const take = async (file: string, pipeline: string): Promise<void> => {
  await fs.mkdir(path.dirname(file), { recursive: true })
  const me: Owner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, JSON.stringify(me), { flag: "wx" })
      return
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    }
    const owner = await readOwner(file)
    if (owner && owner.host !== me.host) {
      throw new StateError({
        message: `pipeline '${pipeline}' is being run on ${owner.host} (pid ${owner.pid}, since ${owner.since}). ` +
          `If that run is gone, delete ${file}.`,
        path: file
      })
    }
    if (owner && owner.pid !== me.pid && alive(owner.pid)) {
      throw new StateError({
        message: `pipeline '${pipeline}' is already running (pid ${owner.pid}, since ${owner.since}); ` +
          `wait for it to finish, or stop it (its work is kept and the next run resumes).`,
        path: file
      })
    }
    // Left by a process that is gone (or unreadable): take it over.
    await fs.rm(file, { force: true })
  }
  throw new StateError({ message: `pipeline '${pipeline}': another process keeps taking the run lock ${file}`, path: file })
}

const release = async (file: string): Promise<void> => {
  const owner = await readOwner(file)
  if (owner?.pid === process.pid && owner.host === os.hostname()) await fs.rm(file, { force: true })
}

const readOwner = async (file: string): Promise<Owner | undefined> => {
  try {
    const o = JSON.parse(await fs.readFile(file, "utf8")) as Partial<Owner>
    return typeof o.pid === "number" && typeof o.host === "string" ? { pid: o.pid, host: o.host, since: String(o.since) } : undefined
  } catch {
    return undefined
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}
