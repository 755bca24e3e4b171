/**
 * The `hash-content` transform: sets each record's `contentHash` to `sha256:<hex>` of the image's
 * bytes, so duplicates can be found by content (`dedupe-by-hash`).
 *
 * - A record that carries `bytes` is hashed as it is.
 * - Otherwise its `url` is downloaded with {@link Download} (http/https only, size cap, timeout,
 *   retries), at most `concurrency` downloads at a time across all batches, and the bytes are
 *   dropped after hashing unless `keepBytes` is set.
 * - A record with neither passes unchanged (`contentHash` stays null).
 * - A download that fails for good (refused URL, over the cap, HTTP error after retries) moves the
 *   record to the batch's dead letters (stage `hash-content`, with the reason); the runner counts
 *   it as invalid and the run goes on. The batch's checkpoint is kept.
 */
import * as crypto from "node:crypto"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Batch, DeadLetter } from "../Batch.js"
import * as Concurrency from "../Concurrency.js"
import * as Config from "../Config.js"
import * as Download from "../http/Download.js"
import * as HttpConfig from "../http/HttpConfig.js"
import type { ProductImage } from "../ProductImage.js"
import * as Transform from "../Transform.js"

/** The stage name written on dead letters. */
export const stage = "hash-content"

/** The config of `hash-content`. */
export const HashContentConfig = Schema.Struct({
  concurrency: Config.withDefault(Config.intRange(1, 256), 8, {
    description: "How many images are downloaded at the same time (across all sources).",
    examples: [8, 32]
  }),
  maxBytes: Config.withDefault(Config.intAtLeast(1), Download.defaultMaxBytes, {
    description: "The largest image accepted, in bytes (default 25 MiB). A larger one is a dead letter; the download stops at the cap.",
    examples: [26214400, 5242880]
  }),
  timeout: HttpConfig.timeoutField,
  retry: HttpConfig.retryField,
  allowedHosts: Config.optional(Schema.NonEmptyArray(Schema.String.pipe(Schema.pattern(/^(\*\.)?[A-Za-z0-9.-]+$/))), {
    description:
      "Only download from these hosts (also on every redirect): exact names or `*.example.com`. A URL on another " +
      "host is a dead letter. Leave it out to allow any http(s) host.",
    examples: [["cdn.shoplazza.com", "*.akinoncdn.com"]]
  }),
  keepBytes: Config.withDefault(Schema.Boolean, false, {
    description: "Keep the downloaded bytes on the record (for sinks that write image files). Off by default to save memory.",
    examples: [false, true]
  })
}).annotations({
  title: "hash-content",
  description: "Sets contentHash to sha256:<hex> of each image's bytes, downloading the URL when the record has no bytes."
})
export type HashContentConfig = typeof HashContentConfig.Type

/** `sha256:<hex>` of some bytes (node:crypto's one-shot `hash`, about twice as fast as a `Hash` object for small images). */
export const sha256 = (bytes: Uint8Array): string => `sha256:${crypto.hash("sha256", bytes, "hex")}`

/** The `hash-content` transform plugin. */
export const HashContent = Transform.define<HashContentConfig>({
  name: "hash-content",
  description:
    "Computes contentHash = sha256:<hex> of each image (its bytes, or its URL downloaded with a size cap, timeout " +
    "and retries). Records without URL or bytes pass unchanged; failed downloads go to the dead-letter output.",
  config: HashContentConfig,
  productScoped: false,
  make: (config) =>
    Effect.gen(function*() {
      const downloader = yield* Download.make({
        source: stage,
        maxBytes: config.maxBytes,
        timeout: HttpConfig.toDuration(config.timeout),
        retry: HttpConfig.toRetry(config.retry),
        ...(config.allowedHosts ? { allowedHosts: config.allowedHosts } : {})
      })
      // One budget of downloads for every batch that passes through this transform.
      const permits = yield* Effect.makeSemaphore(config.concurrency)

      /** Downloads and hashes a record's image: `keep` the record with its hash, or `reject` it. */
      const download = (
        record: ProductImage & { readonly url: string },
        keep: (r: ProductImage) => void,
        reject: (d: DeadLetter) => void
      ): Effect.Effect<void> =>
        Effect.match(downloader.fetch(record.url, { source: record.source }), {
          onSuccess: (bytes) => keep(record.with(config.keepBytes ? { contentHash: sha256(bytes), bytes } : { contentHash: sha256(bytes) })),
          onFailure: (error) => reject({ source: record.source, stage, error: error.message, record })
        })

      return {
        // One pass over the batch: records with bytes are hashed in place (no Effect per record),
        // records with neither bytes nor URL pass, and only the downloads run as effects.
        apply: (batch: Batch) =>
          Effect.suspend(() => {
            const records = Chunk.toReadonlyArray(batch.records)
            const out: Array<ProductImage | undefined> = new Array(records.length)
            const fetches: Array<number> = []
            for (let i = 0; i < records.length; i++) {
              const r = records[i]!
              if (r.bytes !== undefined) out[i] = r.with({ contentHash: sha256(r.bytes) })
              else if (r.url === null) out[i] = r
              else fetches.push(i)
            }
            if (fetches.length === 0) return Effect.succeed({ ...batch, records: Chunk.unsafeFromArray(out as Array<ProductImage>) })
            // Dead letters in the order of the batch's records, whichever download ends first.
            const failed: Array<DeadLetter | undefined> = new Array(fetches.length)
            let failures = 0
            return Effect.map(
              // A few workers take the next download in turn (a fiber and a permit of the shared
              // budget per worker, not per image).
              Concurrency.eachInTurn(
                fetches,
                (i, k) =>
                  download(records[i] as ProductImage & { readonly url: string }, (r) => (out[i] = r), (d) => {
                    failed[k] = d
                    failures++
                  }),
                { concurrency: config.concurrency, worker: permits.withPermits(1) }
              ),
              () => {
                if (failures === 0) return { ...batch, records: Chunk.unsafeFromArray(out as Array<ProductImage>) }
                const rejected = failed.filter((d): d is DeadLetter => d !== undefined)
                return {
                  ...batch,
                  records: Chunk.unsafeFromArray(out.filter((r): r is ProductImage => r !== undefined)),
                  rejected: Chunk.appendAll(batch.rejected, Chunk.unsafeFromArray(rejected))
                }
              }
            )
          })
      }
    })
})
