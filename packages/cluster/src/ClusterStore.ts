/**
 * The bookkeeping of distributed runs in PostgreSQL, next to the engine's own tables and under the
 * same prefix: the runs of a pipeline (`<prefix>_runs`), their partitions and results
 * (`<prefix>_partitions`), the records staged for file sinks (`<prefix>_staged`) and the dead
 * letters of every partition (`<prefix>_dead_letters`). Tables come from a versioned migration
 * (`<prefix>_effetl_migrations`). The partitions' state itself lives in a core state store table,
 * `<prefix>_state` (see `PartitionRun`).
 */
import { type RunHistory, StateError } from "@effetl/core"
import { SqlDatabase } from "@effetl/sink-sql"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"

/** A distributed run as recorded. */
export interface RunRow {
  readonly runId: string
  readonly pipeline: string
  /**
   * `running` also covers a run whose planner was killed; `failed` a run with a failed partition (the
   * next `--distributed` resumes it); `discarded` a run given up by `--restart` (never resumed).
   */
  readonly status: "running" | "failed" | "finished" | "discarded"
  /** How many times the run was started (a failed run resumed by the next `--distributed` is attempt 2). */
  readonly attempt: number
  readonly fullRefresh: boolean
  /** The last finished run when this one began: its partitions' incremental cursors carry over. */
  readonly previousRun: string | null
  /** A digest of the pipeline definition the run was planned with. */
  readonly fingerprint: string
  readonly startedAt: Date
  /** How many partitions the run was planned into (none before planning). */
  readonly planned: number | null
  readonly error: string | null
}

/** A partition of a run as recorded. */
export interface PartitionRow {
  readonly key: string
  readonly source: string
  readonly ordinal: number
  readonly status: "running" | "finished"
  /** Where it last ran (`host:state directory`): state kept on local disk (spill, dead letters) is only there. */
  readonly place: string | null
  /** The result of a finished partition (JSON). */
  readonly result: unknown
  readonly spec: unknown
}

/** A staged record row, as the staged source reads it back. */
export interface StagedRow {
  readonly ordinal: number
  readonly seq: number
  readonly idx: number
  readonly record: string
  readonly bytes: Uint8Array | null
}

/** The table names under a prefix. */
export const tables = (prefix: string) => ({
  runs: `${prefix}_runs`,
  partitions: `${prefix}_partitions`,
  staged: `${prefix}_staged`,
  deadLetters: `${prefix}_dead_letters`,
  seen: `${prefix}_seen`,
  state: `${prefix}_state`,
  migrations: `${prefix}_effetl_migrations`
})

/** The bookkeeping of one pipeline's distributed runs. */
export interface ClusterStore {
  readonly prefix: string
  /** The database, as sinks and state stores name it (for `StateTransaction` joins). */
  readonly db: SqlDatabase.SqlDatabase
  readonly latestRun: (pipeline: string) => Effect.Effect<Option.Option<RunRow>, StateError>
  readonly run: (runId: string) => Effect.Effect<Option.Option<RunRow>, StateError>
  readonly lastFinishedRun: (pipeline: string) => Effect.Effect<Option.Option<RunRow>, StateError>
  readonly insertRun: (row: Omit<RunRow, "planned">) => Effect.Effect<void, StateError>
  readonly setPlanned: (runId: string, partitions: number) => Effect.Effect<void, StateError>
  readonly startAttempt: (runId: string, attempt: number) => Effect.Effect<void, StateError>
  readonly failRun: (runId: string, error: string) => Effect.Effect<void, StateError>
  /** Discards an unfinished run (`--restart`): its row goes to `discarded` and its staged rows and seen-set claims are deleted. */
  readonly discardRun: (runId: string) => Effect.Effect<void, StateError>
  /** Records the run as finished and drops what only it needed (staged records, dead letters). */
  readonly finishRun: (runId: string, summary: unknown) => Effect.Effect<void, StateError>
  readonly partition: (runId: string, key: string) => Effect.Effect<Option.Option<PartitionRow>, StateError>
  readonly partitions: (runId: string) => Effect.Effect<ReadonlyArray<PartitionRow>, StateError>
  readonly claimPartition: (
    runId: string,
    unit: { readonly key: string; readonly source: string; readonly ordinal: number; readonly spec: unknown },
    place: string
  ) => Effect.Effect<void, StateError>
  /** Records a partition as finished with its result and dead-letter lines, in one transaction. */
  readonly finishPartition: (
    runId: string,
    key: string,
    ordinal: number,
    result: unknown,
    deadLetterLines: ReadonlyArray<string>
  ) => Effect.Effect<void, StateError>
  /** Holds a lock on one partition of one run for the scope, waiting while another worker holds it. */
  readonly lockPartition: (runId: string, key: string) => Effect.Effect<void, StateError, Scope.Scope>
  readonly insertStaged: (
    runId: string,
    partition: string,
    rows: ReadonlyArray<{ readonly ordinal: number; readonly seq: number; readonly idx: number; readonly record: string; readonly bytes: Uint8Array | null }>
  ) => Effect.Effect<void, StateError>
  /** Deletes a partition's staged rows after commit `seq` (all of them for 0). */
  readonly dropStagedAfter: (runId: string, ordinal: number, seq: number) => Effect.Effect<void, StateError>
  /** Staged rows of a run after a position, in publishing order. */
  readonly readStaged: (
    runId: string,
    after: readonly [ordinal: number, seq: number, idx: number],
    limit: number
  ) => Effect.Effect<ReadonlyArray<StagedRow>, StateError>
  readonly countStaged: (runId: string) => Effect.Effect<number, StateError>
  /** Every dead-letter line of a run, in partition order. */
  readonly deadLetterLines: (runId: string) => Effect.Effect<ReadonlyArray<string>, StateError>
  /**
   * Claims each record's content hash for it in the shared seen set (first claim wins; with
   * `takeOver`, a claim of an earlier run is taken over) and returns the owner of every hash asked
   * about (see `SharedDedupe.ownerKey`).
   */
  readonly claimHashes: (
    runId: string,
    records: ReadonlyArray<{ readonly contentHash: string | null; readonly source: string; readonly productId: string; readonly imageId: string }>,
    takeOver: boolean
  ) => Effect.Effect<ReadonlyMap<string, string>, StateError>
}

/** Opens (or joins) the database's shared client and migrates the bookkeeping tables, for the scope. */
export const make = (options: {
  readonly postgres: Redacted.Redacted<string>
  readonly prefix: string
}): Effect.Effect<ClusterStore, StateError, Scope.Scope> =>
  Effect.gen(function*() {
    const target = SqlDatabase.postgresTarget(options.postgres)
    const location = SqlDatabase.locationOf(target)
    const db = yield* SqlDatabase.acquire(target).pipe(
      Effect.mapError((e) =>
        new StateError({ message: `cluster database ${location}: cannot connect: ${SqlDatabase.describe(target, e)}`, path: location })
      )
    )
    const sql = db.sql
    const t = tables(options.prefix)
    const fail = (what: string) => (e: unknown) =>
      new StateError({
        message: `cluster database ${location}: ${what}: ${db.scrub(SqlDatabase.messageOf(e))}`,
        path: location,
        cause: e
      })
    const q = <A, R>(what: string, eff: Effect.Effect<A, SqlError, R>) => Effect.mapError(eff, fail(what))

    yield* withInitLock(
      db,
      options.prefix,
      Migrator.make({})({
        loader: Migrator.fromRecord(migrations(t)),
        table: t.migrations
      }).pipe(
        Effect.provideService(SqlClient.SqlClient, sql),
        Effect.catchAllDefect((d) => Effect.fail(d)),
        Effect.catchAllCause((c) => Effect.fail(Cause.squash(c)))
      )
    ).pipe(Effect.mapError(fail(`cannot create the tables of prefix ${options.prefix}`)))

    const runOf = (r: Record<string, unknown>): RunRow => ({
      runId: String(r.run_id),
      pipeline: String(r.pipeline),
      status: r.status as RunRow["status"],
      attempt: Number(r.attempt),
      fullRefresh: Boolean(r.full_refresh),
      previousRun: r.previous_run === null ? null : String(r.previous_run),
      fingerprint: String(r.fingerprint),
      startedAt: new Date(r.started_at as string),
      planned: r.planned === null || r.planned === undefined ? null : Number(r.planned),
      error: r.error === null ? null : String(r.error)
    })
    const partitionOf = (r: Record<string, unknown>): PartitionRow => ({
      key: String(r.key),
      source: String(r.source),
      ordinal: Number(r.ordinal),
      status: r.status as PartitionRow["status"],
      place: r.place === null ? null : String(r.place),
      result: r.result,
      spec: r.spec
    })
    const one = <A>(rows: ReadonlyArray<Record<string, unknown>>, f: (r: Record<string, unknown>) => A) =>
      rows.length === 0 ? Option.none<A>() : Option.some(f(rows[0]!))

    const store: ClusterStore = {
      prefix: options.prefix,
      db,
      latestRun: (pipeline) =>
        q(
          "cannot read the runs",
          sql`SELECT * FROM ${sql(t.runs)} WHERE pipeline = ${pipeline} ORDER BY started_at DESC, run_id DESC LIMIT 1`
        ).pipe(Effect.map((rows) => one(rows, runOf))),
      run: (runId) => q("cannot read the run", sql`SELECT * FROM ${sql(t.runs)} WHERE run_id = ${runId}`).pipe(Effect.map((rows) => one(rows, runOf))),
      lastFinishedRun: (pipeline) =>
        q(
          "cannot read the runs",
          sql`SELECT * FROM ${sql(t.runs)} WHERE pipeline = ${pipeline} AND status = 'finished' ORDER BY started_at DESC, run_id DESC LIMIT 1`
        ).pipe(Effect.map((rows) => one(rows, runOf))),
      insertRun: (row) =>
        q(
          "cannot record the run",
          sql`INSERT INTO ${sql(t.runs)} ${
            sql.insert({
              run_id: row.runId,
              pipeline: row.pipeline,
              status: row.status,
              attempt: row.attempt,
              full_refresh: row.fullRefresh,
              previous_run: row.previousRun,
              fingerprint: row.fingerprint,
              started_at: row.startedAt,
              error: row.error
            })
          }`
        ).pipe(Effect.asVoid),
      setPlanned: (runId, partitions) =>
        q("cannot record the plan", sql`UPDATE ${sql(t.runs)} SET planned = ${partitions} WHERE run_id = ${runId}`).pipe(Effect.asVoid),
      startAttempt: (runId, attempt) =>
        q(
          "cannot record the run",
          sql`UPDATE ${sql(t.runs)} SET status = 'running', attempt = ${attempt}, error = NULL WHERE run_id = ${runId}`
        ).pipe(Effect.asVoid),
      failRun: (runId, error) =>
        q(
          "cannot record the run",
          sql`UPDATE ${sql(t.runs)} SET status = 'failed', error = ${error} WHERE run_id = ${runId} AND status = 'running'`
        ).pipe(Effect.asVoid),
      discardRun: (runId) =>
        q(
          "cannot discard the run",
          sql.withTransaction(
            Effect.all([
              sql`UPDATE ${sql(t.runs)} SET status = 'discarded', error = 'discarded (--restart)' WHERE run_id = ${runId} AND status <> 'finished'`,
              sql`DELETE FROM ${sql(t.staged)} WHERE run_id = ${runId}`,
              sql`DELETE FROM ${sql(t.deadLetters)} WHERE run_id = ${runId}`,
              // The images it claimed were never delivered: the next run may have them.
              sql`DELETE FROM ${sql(t.seen)} WHERE run_id = ${runId}`
            ])
          )
        ).pipe(Effect.asVoid),
      finishRun: (runId, summary) =>
        q(
          "cannot record the run as finished",
          sql.withTransaction(
            Effect.all([
              sql`UPDATE ${sql(t.runs)} SET status = 'finished', finished_at = now(), error = NULL, summary = ${JSON.stringify(summary)}::jsonb WHERE run_id = ${runId}`,
              // This run's, and whatever a discarded run's partitions still staged after it was discarded.
              sql`DELETE FROM ${sql(t.staged)} WHERE run_id = ${runId} OR run_id IN (SELECT run_id FROM ${sql(t.runs)} WHERE status = 'discarded')`,
              sql`DELETE FROM ${sql(t.deadLetters)} WHERE run_id = ${runId} OR run_id IN (SELECT run_id FROM ${sql(t.runs)} WHERE status = 'discarded')`
            ])
          )
        ).pipe(Effect.asVoid),
      partition: (runId, key) =>
        q("cannot read a partition", sql`SELECT * FROM ${sql(t.partitions)} WHERE run_id = ${runId} AND key = ${key}`).pipe(
          Effect.map((rows) => one(rows, partitionOf))
        ),
      partitions: (runId) =>
        q("cannot read the partitions", sql`SELECT * FROM ${sql(t.partitions)} WHERE run_id = ${runId} ORDER BY ordinal`).pipe(
          Effect.map((rows) => rows.map(partitionOf))
        ),
      claimPartition: (runId, unit, place) =>
        q(
          "cannot record a partition",
          sql`INSERT INTO ${sql(t.partitions)} (run_id, key, source, ordinal, spec, status, place, updated_at)
              VALUES (${runId}, ${unit.key}, ${unit.source}, ${unit.ordinal}, ${JSON.stringify(unit.spec)}::jsonb, 'running', ${place}, now())
              ON CONFLICT (run_id, key) DO UPDATE SET place = excluded.place, updated_at = excluded.updated_at`
        ).pipe(Effect.asVoid),
      finishPartition: (runId, key, ordinal, result, lines) =>
        q(
          "cannot record a finished partition",
          sql.withTransaction(
            Effect.gen(function*() {
              yield* sql`DELETE FROM ${sql(t.deadLetters)} WHERE run_id = ${runId} AND ordinal = ${ordinal}`
              for (let i = 0; i < lines.length; i += 1000) {
                const rows = lines.slice(i, i + 1000).map((line, j) => ({ run_id: runId, ordinal, line_no: i + j, line }))
                yield* sql`INSERT INTO ${sql(t.deadLetters)} ${sql.insert(rows)}`
              }
              yield* sql`UPDATE ${sql(t.partitions)} SET status = 'finished', result = ${JSON.stringify(result)}::jsonb, updated_at = now()
                         WHERE run_id = ${runId} AND key = ${key}`
            })
          )
        ),
      lockPartition: (runId, key) =>
        Effect.gen(function*() {
          const conn = yield* q("cannot lock a partition", sql.reserve)
          const lockKey = `effetl-cluster:${options.prefix}:${runId}:${key}`
          const tryLock = conn.execute("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [lockKey], undefined).pipe(
            Effect.map((rows) => (rows[0] as { locked?: unknown } | undefined)?.locked === true),
            Effect.mapError(fail("cannot lock a partition"))
          )
          // Another worker still runs it (e.g. it lost its shards but not its work): wait for it.
          while (!(yield* tryLock)) yield* Effect.sleep(Duration.seconds(1))
          yield* Effect.addFinalizer(() =>
            conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [lockKey], undefined).pipe(Effect.ignore)
          )
        }),
      insertStaged: (runId, partition, rows) =>
        Effect.gen(function*() {
          for (let i = 0; i < rows.length; i += 500) {
            const chunk = rows.slice(i, i + 500).map((r) => ({
              run_id: runId,
              partition,
              ordinal: r.ordinal,
              seq: r.seq,
              idx: r.idx,
              record: r.record,
              bytes: r.bytes
            }))
            yield* q(
              "cannot stage records",
              sql`INSERT INTO ${sql(t.staged)} ${sql.insert(chunk)} ON CONFLICT (run_id, ordinal, seq, idx) DO UPDATE SET record = excluded.record, bytes = excluded.bytes`
            )
          }
        }),
      dropStagedAfter: (runId, ordinal, seq) =>
        q(
          "cannot drop uncommitted staged records",
          sql`DELETE FROM ${sql(t.staged)} WHERE run_id = ${runId} AND ordinal = ${ordinal} AND seq > ${seq}`
        ).pipe(Effect.asVoid),
      readStaged: (runId, [ordinal, seq, idx], limit) =>
        q(
          "cannot read staged records",
          sql`SELECT ordinal, seq, idx, record, bytes FROM ${sql(t.staged)}
              WHERE run_id = ${runId} AND (ordinal, seq, idx) > (${ordinal}, ${seq}, ${idx})
              ORDER BY ordinal, seq, idx LIMIT ${limit}`
        ).pipe(
          Effect.map((rows) =>
            rows.map((r): StagedRow => ({
              ordinal: Number(r.ordinal),
              seq: Number(r.seq),
              idx: Number(r.idx),
              record: String(r.record),
              bytes: r.bytes === null || r.bytes === undefined ? null : new Uint8Array(r.bytes as Uint8Array)
            }))
          )
        ),
      countStaged: (runId) =>
        q("cannot count staged records", sql`SELECT count(*)::int AS n FROM ${sql(t.staged)} WHERE run_id = ${runId}`).pipe(
          Effect.map((rows) => Number(rows[0]?.n ?? 0))
        ),
      claimHashes: (runId, records, takeOver) =>
        Effect.gen(function*() {
          const owners = new Map<string, string>()
          const claims = records.flatMap((r) =>
            r.contentHash === null ? [] : [{ hash: r.contentHash, owner: ownerKey(runId, r), run_id: runId }]
          )
          for (let i = 0; i < claims.length; i += 1000) {
            const chunk = claims.slice(i, i + 1000)
            yield* q(
              "cannot claim content hashes",
              takeOver
                ? sql`INSERT INTO ${sql(t.seen)} ${sql.insert(chunk)} ON CONFLICT (hash) DO UPDATE
                      SET owner = excluded.owner, run_id = excluded.run_id WHERE ${sql(t.seen)}.run_id <> excluded.run_id`
                : sql`INSERT INTO ${sql(t.seen)} ${sql.insert(chunk)} ON CONFLICT (hash) DO NOTHING`
            )
            const rows = yield* q(
              "cannot read the seen set",
              sql`SELECT hash, owner FROM ${sql(t.seen)} WHERE hash IN ${sql.in(chunk.map((c) => c.hash))}`
            )
            for (const row of rows) owners.set(String(row.hash), String(row.owner))
          }
          return owners
        }),
      deadLetterLines: (runId) =>
        q(
          "cannot read dead letters",
          sql`SELECT line FROM ${sql(t.deadLetters)} WHERE run_id = ${runId} ORDER BY ordinal, line_no`
        ).pipe(Effect.map((rows) => rows.map((r) => String(r.line))))
    }
    return store
  })

/**
 * Runs `effect` (creating or migrating tables of the prefix) while holding the prefix's init lock, a
 * PostgreSQL advisory lock: workers and planners that start at the same moment take turns, so two
 * of them never create the same table at once (which PostgreSQL refuses with a duplicate key).
 */
export const withInitLock = <A, E, R>(
  db: SqlDatabase.SqlDatabase,
  prefix: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> => withAdvisoryLock(db.sql, `effetl-cluster:${prefix}:init`, effect)

/**
 * Runs `effect` while holding the session-level PostgreSQL advisory lock named `key`, on a
 * connection reserved for it (released, and the lock with it, when `effect` ends however it ends).
 */
export const withAdvisoryLock = <A, E, R>(
  sql: SqlClient.SqlClient,
  key: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  Effect.acquireUseRelease(
    Scope.make(),
    (scope) =>
      Effect.gen(function*() {
        const conn = yield* Scope.extend(sql.reserve, scope)
        yield* conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", [key], undefined)
        yield* Scope.addFinalizer(scope, conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key], undefined).pipe(Effect.ignore))
        return yield* effect
      }),
    (scope, exit) => Scope.close(scope, exit)
  )

/** The bookkeeping tables' migrations. */
const migrations = (t: ReturnType<typeof tables>): Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> => ({
  "1_cluster_bookkeeping": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      sql`CREATE TABLE ${sql(t.runs)} (
        run_id text PRIMARY KEY,
        pipeline text NOT NULL,
        status text NOT NULL,
        attempt integer NOT NULL,
        full_refresh boolean NOT NULL,
        previous_run text,
        fingerprint text NOT NULL,
        started_at timestamptz NOT NULL,
        planned integer,
        finished_at timestamptz,
        error text,
        summary jsonb
      )`,
      sql`CREATE TABLE ${sql(t.partitions)} (
        run_id text NOT NULL,
        key text NOT NULL,
        source text NOT NULL,
        ordinal integer NOT NULL,
        spec jsonb,
        status text NOT NULL,
        place text,
        result jsonb,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (run_id, key)
      )`,
      sql`CREATE TABLE ${sql(t.staged)} (
        run_id text NOT NULL,
        partition text NOT NULL,
        ordinal integer NOT NULL,
        seq integer NOT NULL,
        idx integer NOT NULL,
        record text NOT NULL,
        bytes bytea,
        PRIMARY KEY (run_id, ordinal, seq, idx)
      )`,
      sql`CREATE TABLE ${sql(t.deadLetters)} (
        run_id text NOT NULL,
        ordinal integer NOT NULL,
        line_no integer NOT NULL,
        line text NOT NULL,
        PRIMARY KEY (run_id, ordinal, line_no)
      )`
    ], { discard: true })),
  "2_shared_seen_set": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.asVoid(sql`CREATE TABLE ${sql(t.seen)} (
      hash text PRIMARY KEY,
      owner text NOT NULL,
      run_id text NOT NULL
    )`))
})

/** Who owns a claim in the shared seen set: the run and the image's key. */
export const ownerKey = (runId: string, r: { readonly source: string; readonly productId: string; readonly imageId: string }): string =>
  JSON.stringify([runId, r.source, r.productId, r.imageId])

/**
 * Drops every table of a prefix: the engine's (`<prefix>_messages`, `_replies`, `_runners`, `_locks`
 * and `_migrations`, which must go with them or the engine would not recreate them), the
 * bookkeeping, the partitions' state table and its migrations table. Every run of the pipeline's
 * cluster is forgotten; stop its workers first.
 */
export const drop = (options: { readonly postgres: Redacted.Redacted<string>; readonly prefix: string }): Effect.Effect<ReadonlyArray<string>, StateError> =>
  withDatabase(options.postgres, `cannot drop the tables of prefix ${options.prefix}`, ({ sql }, fail) =>
    Effect.gen(function*() {
      const pattern = options.prefix.replace(/_/g, "\\_") + "\\_%"
      const rows = yield* sql<{ name: string }>`
        SELECT tablename AS name FROM pg_tables
        WHERE schemaname = current_schema() AND (tablename LIKE ${pattern} OR tablename = ${`effetl_migrations_${tables(options.prefix).state}`})
      `.pipe(Effect.mapError(fail))
      const names = rows.map((r) => r.name).filter((n) => n === `effetl_migrations_${tables(options.prefix).state}` || knownSuffix(n.slice(options.prefix.length + 1)))
      if (names.length > 0) yield* sql.unsafe(`DROP TABLE IF EXISTS ${names.map((n) => `"${n}"`).join(", ")} CASCADE`).pipe(Effect.mapError(fail))
      return names
    }))

/**
 * Runs `use` on the cluster database for its scope, without migrating anything (what `drop` and
 * `history` share); every failure is a `StateError` saying `what` failed, the password scrubbed.
 */
const withDatabase = <A>(
  postgres: Redacted.Redacted<string>,
  what: string,
  use: (db: { readonly sql: SqlClient.SqlClient; readonly location: string }, fail: (e: unknown) => StateError) => Effect.Effect<A, StateError>
): Effect.Effect<A, StateError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const target = SqlDatabase.postgresTarget(postgres)
      const location = SqlDatabase.locationOf(target)
      const fail = (e: unknown) => new StateError({ message: `cluster database ${location}: ${what}: ${SqlDatabase.describe(target, e)}`, path: location })
      const db = yield* SqlDatabase.acquire(target).pipe(Effect.mapError(fail))
      return yield* use({ sql: db.sql, location }, fail)
    })
  )

/**
 * A pipeline's distributed runs as `effetl runs` lists them (newest first, at most `limit`), read
 * from `<prefix>_runs` without creating anything: a cluster that never ran has none. `discarded`
 * runs (`--restart`) are listed as `interrupted`; a run whose planner was killed stays `running`
 * (its workers go on, and the next `run --distributed` resumes it).
 */
export const history = (options: {
  readonly postgres: Redacted.Redacted<string>
  readonly prefix: string
  readonly pipeline: string
  readonly limit: number
}): Effect.Effect<{ readonly runs: ReadonlyArray<RunHistory.Listed>; readonly location: string }, StateError> =>
  withDatabase(options.postgres, "cannot read the distributed runs", ({ location, sql }, fail) =>
    Effect.gen(function*() {
      const runs = tables(options.prefix).runs
      const [found] = yield* sql<{ present: boolean }>`SELECT to_regclass(${runs}) IS NOT NULL AS present`.pipe(Effect.mapError(fail))
      const where = `${location}, table ${runs}`
      if (found?.present !== true) return { runs: [], location: where }
      const rows = yield* sql<Record<string, unknown>>`
        SELECT run_id, status, attempt, started_at, finished_at, error, summary FROM ${sql(runs)}
        WHERE pipeline = ${options.pipeline} ORDER BY started_at DESC, run_id DESC LIMIT ${options.limit}
      `.pipe(Effect.mapError(fail))
      return { runs: rows.map(listedOf), location: where }
    }))

/** One row of `<prefix>_runs` as a listed run. */
const listedOf = (r: Record<string, unknown>): RunHistory.Listed => {
  const iso = (v: unknown) => (v === null || v === undefined ? undefined : new Date(v as string).toISOString())
  const startedAt = iso(r.started_at) ?? new Date(0).toISOString()
  const endedAt = iso(r.finished_at)
  const status = String(r.status)
  const summary = (typeof r.summary === "string" ? JSON.parse(r.summary) : r.summary) as
    | { readonly sources?: ReadonlyArray<{ readonly name: string; readonly counts?: Record<string, number> }> }
    | null
    | undefined
  const sources: Record<string, RunHistory.SourceRecord> = {}
  for (const s of summary?.sources ?? []) sources[s.name] = { counts: { ...(s.counts ?? {}) } }
  return {
    id: String(r.run_id),
    status: status === "discarded" ? "interrupted" : status === "finished" || status === "failed" || status === "running" ? status : "interrupted",
    startedAt,
    ...(endedAt !== undefined ? { endedAt, seconds: Math.max(0, (Date.parse(endedAt) - Date.parse(startedAt)) / 1000) } : {}),
    attempts: Number(r.attempt),
    ...(r.error !== null && r.error !== undefined && status !== "finished" ? { error: String(r.error) } : {}),
    sources,
    distributed: true
  }
}

/** The tables a prefix owns, by suffix (so a user table that merely starts with the prefix is never dropped). */
const knownSuffix = (suffix: string): boolean =>
  ["messages", "replies", "runners", "locks", "migrations", "shards", "runs", "partitions", "staged", "dead_letters", "seen", "state", "effetl_migrations"].includes(suffix)
