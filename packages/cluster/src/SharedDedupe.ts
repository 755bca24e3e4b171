/**
 * `dedupe-by-hash` with `scope: global` in a distributed run: one seen set for every partition, a
 * table in the cluster's PostgreSQL (`<prefix>_seen`), instead of a seen set per partition.
 *
 * Each content hash is claimed by the first image that reaches it (`INSERT ... ON CONFLICT DO
 * NOTHING`: one row per hash, so two partitions never both win). An image is kept when the claim is
 * its own: a partition re-run after a kill claims the same images again and keeps them, so a
 * resumed partition writes what it would have written. A hash claimed in an earlier run is a
 * duplicate, as with the local seen set (unless the run is a full refresh, which takes such claims
 * over); the claims of a discarded run (`--restart`) are dropped with it. Within a batch the
 * first image of a hash in display order (position, then image id) is the candidate, as locally.
 */
import { type Batch, DedupeByHash, productKey, displayOrder, type ProductImage, RunStats, Transform, TransformError } from "@effetl/core"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import { type ClusterStore, ownerKey } from "./ClusterStore.js"

/** Whether a pipeline transform is a global `dedupe-by-hash` (the one this replaces in a distributed run). */
export const isGlobalDedupe = (t: { readonly plugin: { readonly name: string }; readonly config: unknown }): boolean =>
  t.plugin.name === DedupeByHash.dedupeByHash.name && (t.config as { readonly scope?: unknown }).scope === "global"

/** The shared-seen-set transform of one run. */
export const plugin = (options: { readonly store: ClusterStore; readonly runId: string; readonly fullRefresh: boolean }) =>
  Transform.define<DedupeByHash.DedupeByHashConfig>({
    name: DedupeByHash.dedupeByHash.name,
    description: "dedupe-by-hash (scope: global) against the distributed run's shared seen set (internal).",
    config: DedupeByHash.DedupeByHashConfig,
    productScoped: true,
    make: () =>
      Effect.succeed({
        apply: (batch: Batch.Batch) =>
          Effect.gen(function*() {
            const records = Chunk.toReadonlyArray(batch.records)
            // The candidate of each hash: its first image in display order, product by product.
            const candidates = new Map<string, ProductImage>()
            const products = new Map<string, Array<ProductImage>>()
            for (const r of records) {
              const key = productKey(r)
              const list = products.get(key)
              if (list === undefined) products.set(key, [r])
              else list.push(r)
            }
            for (const list of products.values()) {
              for (const r of [...list].sort(displayOrder)) {
                if (r.contentHash !== null && !candidates.has(r.contentHash)) candidates.set(r.contentHash, r)
              }
            }
            const owners = yield* options.store.claimHashes(options.runId, [...candidates.values()], options.fullRefresh).pipe(
              Effect.mapError((e) => new TransformError({ transform: "dedupe-by-hash", message: e.message, cause: e }))
            )
            const kept: Array<ProductImage> = []
            const deduped = new Map<string, number>()
            const unhashed = new Map<string, number>()
            for (const r of records) {
              if (r.contentHash === null) {
                unhashed.set(r.source, (unhashed.get(r.source) ?? 0) + 1)
                kept.push(r)
              } else if (owners.get(r.contentHash) === ownerKey(options.runId, r)) kept.push(r)
              else deduped.set(r.source, (deduped.get(r.source) ?? 0) + 1)
            }
            yield* Effect.forEach(deduped, ([source, n]) => RunStats.add(source, "deduped", n), { discard: true })
            yield* Effect.forEach(unhashed, ([source, n]) => RunStats.add(source, "unhashed", n), { discard: true })
            return kept.length === records.length ? batch : { ...batch, records: Chunk.fromIterable(kept) }
          })
      })
  })
