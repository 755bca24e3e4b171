/**
 * The `images` sink: a content-addressed store of the image files themselves,
 * `{dir}/{sha256[0:2]}/{sha256}.{ext}`, plus a manifest (CSV or Parquet) that maps each record to
 * its file and follows the commit protocol.
 *
 * - The bytes are the record's `bytes`, or its `url` downloaded with core's `Download` (http/https
 *   only, every redirect hop checked, optional `allowedHosts`, size cap, timeout, retries).
 * - The file name is the sha256 of the bytes written (a `sha256:` contentHash on the record is
 *   checked against it, never trusted), and `ext` comes from the content's magic bytes
 *   (png/jpg/gif/webp/avif, otherwise bin). Nothing of the vendor's file name reaches a path.
 * - The same content is stored once: an existing file of the same name and size is kept. Each new
 *   file is written to a uniquely named temp file in its shard directory, fsynced and renamed, so
 *   concurrent writers of the same content never corrupt each other; directories are fsynced on
 *   commit.
 * - A record with no bytes and no url, or whose download fails for good, does not stop the run: it
 *   gets a manifest row with an empty path and the reason in `error`, a warning in the log and the
 *   source's `warnings` counter.
 */
import { Concurrency, Config, Http, type ProductImage, RunStats, Sink, SinkError, StagedParts } from "@effetl/core"
import { stringify } from "csv-stringify/sync"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { createHash, randomUUID } from "node:crypto"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as FileOutput from "./FileOutput.js"
import * as ParquetEngine from "./ParquetEngine.js"
import * as ParquetOutput from "./ParquetOutput.js"

/** The manifest columns, in order. */
export const manifestColumns = ["source", "product_id", "image_id", "position", "content_hash", "path", "error"] as const

/** One manifest row: where a record's image is stored (path relative to `dir`), or why it is not. */
export interface ManifestRow {
  readonly source: string
  readonly productId: string
  readonly imageId: string
  readonly position: number
  /** `sha256:<hex>` of the stored bytes; the record's own contentHash when nothing was stored. */
  readonly contentHash: string | null
  /** `ab/ab12….png`, relative to `dir`, with `/`; null when nothing was stored. */
  readonly path: string | null
  /** Why the image was not stored, or what was wrong with the record; null when all is well. */
  readonly error: string | null
}

/** The `images` sink's config. */
export const ImageStoreConfig = Schema.Struct({
  dir: Config.required(Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" })), {
    description:
      "The store directory: each image goes to {dir}/{sha256[0:2]}/{sha256}.{ext}. Created when missing; " +
      "several runs and pipelines may share it.",
    examples: ["out/images"]
  }),
  manifest: Config.withDefault(Schema.Literal("csv", "parquet"), "csv", {
    description: "The manifest format (" + manifestColumns.join(", ") + ").",
    examples: ["csv", "parquet"]
  }),
  manifestPath: Config.optional(Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" })), {
    description:
      "Where the manifest goes. Leave it out for {dir}/manifest.csv (or .parquet); in append mode it is a directory, " +
      "{dir}/manifest when left out.",
    examples: ["out/images/manifest.csv", "out/manifests"]
  }),
  mode: Config.withDefault<FileOutput.ModeSetting, FileOutput.ModeSetting>(FileOutput.ModeSetting, "auto", {
    description:
      "The manifest's mode. auto (default): append when a source of the pipeline reads incrementally, overwrite " +
      "otherwise. overwrite: stage the run's manifest parts and publish one complete manifest at the end. " +
      "append: publish a manifest part per commit into the manifestPath directory at once. Image files are always " +
      "stored at once (content-addressed).",
    examples: ["auto", "overwrite", "append"]
  }),
  concurrency: Config.withDefault(Config.intRange(1, 256), 8, {
    description: "How many images are downloaded and stored at the same time.",
    examples: [8, 32]
  }),
  maxBytes: Config.withDefault(Config.intAtLeast(1), Http.Download.defaultMaxBytes, {
    description:
      "The largest image downloaded, in bytes (default 25 MiB); the download stops at the cap and the record gets " +
      "a manifest row with the error.",
    examples: [26214400, 5242880]
  }),
  timeout: Http.HttpConfig.timeoutField,
  retry: Http.HttpConfig.retryField,
  allowedHosts: Config.optional(Schema.NonEmptyArray(Schema.String.pipe(Schema.pattern(/^(\*\.)?[A-Za-z0-9.-]+$/))), {
    description:
      "Only download from these hosts (also on every redirect): exact names or `*.example.com`. Leave it out to " +
      "allow any http(s) host.",
    examples: [["cdn.shoplazza.com", "*.akinoncdn.com"]]
  })
})
export type ImageStoreConfig = typeof ImageStoreConfig.Type

/** The file extension of image bytes, from their magic bytes: png, jpg, gif, webp, avif, or bin. */
export const extensionOf = (bytes: Uint8Array): "png" | "jpg" | "gif" | "webp" | "avif" | "bin" => {
  const ascii = (from: number, to: number) => Buffer.from(bytes.subarray(from, to)).toString("latin1")
  if (bytes.length >= 8 && ascii(0, 8) === "\x89PNG\r\n\x1a\n") return "png"
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpg"
  if (bytes.length >= 6 && (ascii(0, 6) === "GIF87a" || ascii(0, 6) === "GIF89a")) return "gif"
  if (bytes.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp"
  if (bytes.length >= 12 && ascii(4, 8) === "ftyp") {
    // ISO BMFF: the major brand, then compatible brands, up to the end of the ftyp box.
    const boxSize = Math.min(Buffer.from(bytes).readUInt32BE(0), bytes.length)
    for (let at = 8; at + 4 <= boxSize; at += 4) {
      if (at === 12) continue // minor version
      const brand = ascii(at, at + 4)
      if (brand === "avif" || brand === "avis") return "avif"
    }
  }
  return "bin"
}

/** The store path of some bytes, relative to the store directory: `{hex[0:2]}/{hex}.{ext}`. */
export const storePath = (bytes: Uint8Array): { readonly hex: string; readonly path: string } => {
  const hex = createHash("sha256").update(bytes).digest("hex")
  return { hex, path: `${hex.slice(0, 2)}/${hex}.${extensionOf(bytes)}` }
}

/** Writes product images into a content-addressed store with a manifest. */
export const images = Sink.define<ImageStoreConfig>({
  name: "images",
  description:
    "Stores each image's bytes (the record's bytes, or its url downloaded with a size cap, timeout and retries) once, " +
    "as {dir}/{sha256[0:2]}/{sha256}.{ext} (ext from the magic bytes), and writes a manifest (" +
    manifestColumns.join(", ") + ") under the commit protocol. A record whose image cannot be had gets a " +
    "manifest row with an empty path and the error.",
  config: ImageStoreConfig,
  outputs: (config, context) => {
    const append = FileOutput.resolveMode(config.mode, context.incremental) === "append"
    const { dir, manifestPath } = locations(config, append, context.trial === true)
    return [
      { option: "dir", path: dir, kind: "directory" },
      { option: config.manifestPath === undefined ? "dir" : "manifestPath", path: manifestPath, kind: append ? "directory" : "file" }
    ]
  },
  make: (config, context) =>
    Effect.gen(function*() {
      const name = context.name
      const fail = (message: string, cause?: unknown) =>
        new SinkError({ sink: name, message: `sink '${name}': ${message}`, ...(cause === undefined ? {} : { cause }) })
      const mode = FileOutput.resolveMode(config.mode, context.incremental)
      const { dir, manifestPath } = locations(config, mode === "append", context.trial === true)
      yield* Effect.tryPromise({
        try: () => fsp.mkdir(dir, { recursive: true }),
        catch: (e) => fail(`could not create the store directory ${dir}: ${errorMessage(e)}`, e)
      })
      const manifest = yield* (config.manifest === "csv"
        ? csvManifest(name, manifestPath, mode, context)
        : parquetManifest(name, manifestPath, mode, context))

      const downloader = yield* Http.Download.make({
        source: name,
        maxBytes: config.maxBytes,
        timeout: Http.HttpConfig.toDuration(config.timeout),
        retry: Http.HttpConfig.toRetry(config.retry),
        ...(config.allowedHosts ? { allowedHosts: config.allowedHosts } : {})
      })

      /** Directories with renames not yet fsynced (made durable on commit). */
      const dirty = new Set<string>()

      /** Stores bytes under their hash unless the same content is there already. */
      const store = (bytes: Uint8Array, at: string) =>
        Effect.tryPromise({
          try: async () => {
            const final = path.join(dir, ...at.split("/"))
            if (path.relative(dir, final).startsWith("..")) throw new Error(`${final} is outside ${dir}`) // cannot happen: hex names
            const existing = await fsp.stat(final).catch(() => undefined)
            if (existing !== undefined && existing.isFile() && existing.size === bytes.length) return
            const shard = path.dirname(final)
            if ((await fsp.mkdir(shard, { recursive: true })) !== undefined) dirty.add(dir) // a new shard
            const tmp = path.join(shard, `.${path.basename(final)}.${randomUUID()}.tmp`)
            const out = await fsp.open(tmp, "wx")
            try {
              await StagedParts.writeAll(out, bytes)
              await out.sync()
              await out.close()
            } catch (e) {
              await out.close().catch(() => undefined)
              await fsp.rm(tmp, { force: true }).catch(() => undefined)
              throw e
            }
            await fsp.rename(tmp, final) // over an identical file written meanwhile: fine
            dirty.add(shard)
          },
          catch: (e) => fail(`could not store an image in ${dir}: ${errorMessage(e)}`, e)
        })

      const rowOf = (r: ProductImage, contentHash: string | null, stored: string | null, error: string | null): ManifestRow => ({
        source: r.source,
        productId: r.productId,
        imageId: r.imageId,
        position: r.position,
        contentHash,
        path: stored,
        error
      })

      const notStored = (r: ProductImage, reason: string) =>
        Effect.as(
          Effect.zipRight(
            Effect.logWarning(`sink '${name}': image ${r.imageId} of product ${r.productId} (source ${r.source}) not stored: ${reason}`),
            RunStats.add(r.source, "warnings")
          ),
          rowOf(r, r.contentHash, null, reason)
        )

      const one = (r: ProductImage): Effect.Effect<ManifestRow, SinkError> =>
        Effect.gen(function*() {
          let bytes = r.bytes
          if (bytes === undefined) {
            if (r.url === null) return yield* notStored(r, "the record has neither bytes nor a url")
            const fetched = yield* Effect.either(downloader.fetch(r.url, { source: r.source }))
            if (fetched._tag === "Left") return yield* notStored(r, `download failed: ${fetched.left.message}`)
            bytes = fetched.right
          }
          const at = storePath(bytes)
          yield* store(bytes, at.path)
          const hash = `sha256:${at.hex}`
          if (r.contentHash !== null && r.contentHash.startsWith("sha256:") && r.contentHash !== hash) {
            const note = `the record's contentHash ${r.contentHash} is not the sha256 of its bytes; stored as ${hash}`
            yield* Effect.logWarning(`sink '${name}': image ${r.imageId} of product ${r.productId} (source ${r.source}): ${note}`)
            yield* RunStats.add(r.source, "warnings")
            return rowOf(r, hash, at.path, note)
          }
          return rowOf(r, hash, at.path, null)
        })

      const lock = yield* Effect.makeSemaphore(1)
      const serial = <A, E>(eff: Effect.Effect<A, E>) => lock.withPermits(1)(eff)

      return {
        write: (records) =>
          serial(
            Effect.flatMap(
              // Workers taking the next image in turn, not a fiber per image.
              Concurrency.forEachInTurn(Chunk.toReadonlyArray(records), one, { concurrency: config.concurrency }),
              (rows) => (rows.length === 0 ? Effect.void : manifest.write(rows))
            )
          ),
        commit: serial(
          Effect.gen(function*() {
            const dirs = [...dirty]
            dirty.clear()
            yield* Effect.forEach(dirs, (d) =>
              Effect.tryPromise({
                try: () => StagedParts.fsyncDirectory(d),
                catch: (e) => fail(`could not sync directory ${d}: ${errorMessage(e)}`, e)
              }), { discard: true })
            return yield* manifest.commit
          })
        ),
        finish: serial(manifest.finish),
        cleanup: serial(manifest.cleanup)
      } satisfies Sink.SinkInstance
    })
})

export default images

// ---------------------------------------------------------------------------------------------

/** The manifest output: rows in, the commit protocol of the chosen format. */
interface Manifest {
  readonly write: (rows: ReadonlyArray<ManifestRow>) => Effect.Effect<void, SinkError>
  readonly commit: Effect.Effect<unknown, SinkError>
  readonly finish: Effect.Effect<void, SinkError>
  readonly cleanup: Effect.Effect<void, SinkError>
}

const cells = (m: ManifestRow): Array<string | number | null> => [
  m.source, m.productId, m.imageId, m.position, m.contentHash, m.path, m.error
]

/** A CSV manifest through core's staged parts (header once; RFC 4180 by csv-stringify). */
const csvManifest = (name: string, file: string, mode: FileOutput.Mode, context: Sink.SinkContext) =>
  Effect.map(
    StagedParts.make({
      name,
      path: file,
      mode,
      runId: context.runId,
      ext: "csv",
      committed: context.committed,
      header: () => stringify([[...manifestColumns]], { eof: true })
    }),
    (parts): Manifest => ({
      write: (rows) => parts.write(stringify(rows.map(cells), { eof: true })),
      commit: parts.commit,
      finish: parts.finish,
      cleanup: parts.cleanup
    })
  )

const manifestTable: ReadonlyArray<ParquetEngine.Column> = manifestColumns.map((c) => ({
  name: c,
  type: c === "position" ? "int32" : "string"
}))

/** A Parquet manifest through the parquet sink's output (hyparquet-writer, snappy). */
const parquetManifest = (name: string, file: string, mode: FileOutput.Mode, context: Sink.SinkContext) =>
  Effect.map(
    ParquetOutput.make<ManifestRow>(
      {
        name,
        path: file,
        mode,
        runId: context.runId,
        committed: context.committed,
        engine: "hyparquet-writer",
        compression: "snappy",
        rowGroupSize: 100_000
      },
      { columns: manifestTable, row: cells }
    ),
    (out): Manifest => out
  )

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** The store directory and the manifest's path for a config (their trial locations in a trial run). */
const locations = (
  config: { readonly dir: string; readonly manifestPath?: string | undefined; readonly manifest: string },
  append: boolean,
  trial: boolean
) => {
  const at = (p: string) => path.resolve(trial ? Sink.trialPath(p) : p)
  const dir = at(config.dir)
  const manifestPath = config.manifestPath !== undefined
    ? at(config.manifestPath)
    : path.join(dir, append ? "manifest" : `manifest.${config.manifest}`)
  return { dir, manifestPath }
}
