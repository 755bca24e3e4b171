/**
 * A database effetl writes to: an `@effect/sql` client (SQLite through `@effect/sql-sqlite-node`,
 * PostgreSQL through `@effect/sql-pg`), its dialect, a key naming it without secrets, and a way to
 * keep secrets out of messages.
 *
 * Clients are shared in the process, keyed by database (the SQLite file's absolute path, or the
 * Postgres URL): a sink and a state store on the same database use one client, so the sink's commit
 * can run on the connection of the store's transaction (and two SQLite connections in one process
 * never wait on each other's write lock). A client is closed when its last user's scope closes.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Dialect } from "./Dialect.js"
import * as Dialects from "./Dialect.js"

/** Which database: a SQLite file or a PostgreSQL URL (a secret: it may hold a password). */
export type Target =
  | { readonly _tag: "sqlite"; readonly path: string }
  | { readonly _tag: "postgres"; readonly url: Redacted.Redacted<string> }

/** An open database. */
export interface SqlDatabase {
  /** Names the database without secrets: `sqlite:<absolute path>` or `postgres:<hash of the URL>`. */
  readonly key: string
  readonly dialect: Dialect
  readonly sql: SqlClient.SqlClient
  /** For messages: the file, or `postgres://host:port/database` (never the user or password). */
  readonly location: string
  /** Removes every secret (the URL, its password) from a text. */
  readonly scrub: (text: string) => string
}

/** Opens (or joins) the shared client of a database for the scope. */
export const acquire = (target: Target): Effect.Effect<SqlDatabase, SqlError, Scope.Scope> =>
  Effect.acquireRelease(
    lock.withPermits(1)(
      Effect.suspend(() => {
        const key = keyOf(target)
        const entry = open.get(key)
        if (entry !== undefined) {
          entry.refs++
          return Effect.succeed(entry.db)
        }
        return Effect.gen(function*() {
          const scope = yield* Scope.make()
          const db = yield* connect(target, key).pipe(
            Scope.extend(scope),
            Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
          )
          open.set(key, { db, refs: 1, scope })
          return db
        })
      })
    ),
    (db) =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          const entry = open.get(db.key)
          if (entry === undefined || --entry.refs > 0) return Effect.void
          open.delete(db.key)
          return Scope.close(entry.scope, Exit.void)
        })
      )
  )

/** A `Target` from a sink's or state store's config. */
export const sqliteTarget = (file: string): Target => ({ _tag: "sqlite", path: path.resolve(file) })

/** A `Target` for a PostgreSQL URL. */
export const postgresTarget = (url: Redacted.Redacted<string>): Target => ({ _tag: "postgres", url })

/** The key of a target (see `SqlDatabase.key`). */
export const keyOf = (target: Target): string =>
  target._tag === "sqlite"
    ? `sqlite:${path.resolve(target.path)}`
    : `postgres:${crypto.createHash("sha256").update(Redacted.value(target.url)).digest("hex").slice(0, 16)}`

/** Where a target is, for messages: the file, or the URL's host, port and database only. */
export const locationOf = (target: Target): string => {
  if (target._tag === "sqlite") return path.resolve(target.path)
  try {
    const u = new URL(Redacted.value(target.url))
    return `postgres://${u.hostname}${u.port ? `:${u.port}` : ""}${u.pathname}`
  } catch {
    return "postgres (URL not shown)"
  }
}

/** The message of a failure with every secret of `target` removed. */
export const describe = (target: Target, e: unknown): string => scrubber(target)(messageOf(e))

/** A SQL identifier effetl accepts for tables and schemas: lowercase, so it never needs quoting rules. */
export const Identifier = Schema.String.pipe(
  Schema.pattern(/^[a-z_][a-z0-9_]{0,31}$/),
  Schema.annotations({
    message: () => ({
      message: "expected a lowercase SQL name: a-z, 0-9 and _, not starting with a digit, at most 32 characters",
      override: true
    })
  })
)

// ---------------------------------------------------------------------------------------------

const open = new Map<string, { db: SqlDatabase; refs: number; scope: Scope.CloseableScope }>()
const lock = Effect.unsafeMakeSemaphore(1)

const connect = (target: Target, key: string): Effect.Effect<SqlDatabase, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const reactivity = yield* Layer.build(Reactivity.layer)
    const scrub = scrubber(target)
    if (target._tag === "sqlite") {
      yield* Effect.try({
        try: () => fs.mkdirSync(path.dirname(target.path), { recursive: true }),
        catch: (cause) => new SqlError({ cause, message: `cannot create the directory of ${target.path}` })
      })
      const sql = yield* SqliteClient.make({ filename: target.path }).pipe(Effect.provide(reactivity))
      // Every commit durable on disk, not only in the OS cache.
      yield* sql.unsafe("PRAGMA synchronous = FULL")
      return { key, dialect: Dialects.sqlite, sql, location: locationOf(target), scrub }
    }
    const sql = yield* PgClient.make({
      url: target.url,
      applicationName: "effetl",
      connectTimeout: Duration.seconds(10)
    }).pipe(Effect.provide(reactivity))
    return { key, dialect: Dialects.postgres, sql, location: locationOf(target), scrub }
  })

/** Replaces the URL and its password (plain and percent-encoded) with `***`. */
const scrubber = (target: Target) => {
  if (target._tag === "sqlite") return (text: string) => text
  const url = Redacted.value(target.url)
  const secrets = [url]
  try {
    const u = new URL(url)
    if (u.password !== "") secrets.push(u.password, decodeURIComponent(u.password))
  } catch {
    // not a URL: the whole value is the only secret we know
  }
  const sorted = [...new Set(secrets)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length)
  return (text: string) => sorted.reduce((t, s) => t.split(s).join("***"), text)
}

/** The most telling message of a failure: a driver's own message under `SqlError`'s generic one (secrets not removed). */
export const messageOf = (e: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = e
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    let m = typeof current === "object" && "message" in current ? String((current as { message: unknown }).message) : String(current)
    // e.g. a refused connection to every address of a host
    if (m === "" && current instanceof AggregateError) m = current.errors.map((x) => (x instanceof Error ? x.message : String(x))).join("; ")
    if (m !== "" && !parts.includes(m)) parts.push(m)
    current = typeof current === "object" ? (current as { cause?: unknown }).cause : undefined
  }
  return parts.join(": ") || "unknown error"
}
