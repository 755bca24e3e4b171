/**
 * The `dedupe-by-hash` transform: drops images whose `contentHash` was already seen, within a
 * product (default) or over the whole run and across runs (`scope: global`).
 *
 * The image kept is the first in display order (`position`, then `imageId` in natural order, so
 * "9" comes before "10"). Kept records stay in the batch's order. Records with no hash pass through
 * and are counted as `unhashed`; dropped ones are counted as `deduped`.
 *
 * A global seen set is saved with the checkpoints and grows with the number of unique images (about
 * 80 bytes per hash in the state file).
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Batch } from "../Batch.js"
import * as Config from "../Config.js"
import { ConfigError } from "../Errors.js"
import { displayOrder, productKey } from "../ProductImage.js"
import * as RunStats from "../RunStats.js"
import * as Transform from "../Transform.js"

/** The config of `dedupe-by-hash`. */
export const DedupeByHashConfig = Schema.Struct({
  scope: Config.withDefault(Schema.Literal("product", "global"), "product", {
    description:
      "`product`: an image is a duplicate of another image of the same product with the same content hash. " +
      "`global`: of any image with that hash seen before, in this run or an earlier one (the seen hashes are " +
      "saved in the state, about 80 bytes each).",
    examples: ["product", "global"] as const
  })
}).annotations({ title: "dedupe-by-hash" })
export type DedupeByHashConfig = typeof DedupeByHashConfig.Type

/** What a global dedupe saves in the state: the hashes of records the sinks committed. */
export const DedupeState = Schema.Struct({ hashes: Schema.Array(Schema.String) })
export type DedupeState = typeof DedupeState.Type

/** Drops images whose content hash was already seen, in their product or over all runs. */
export const dedupeByHash = Transform.define<DedupeByHashConfig>({
  name: "dedupe-by-hash",
  description:
    "Drops images whose contentHash was already seen: within the same product (scope: product, the default) " +
    "or ever, across runs (scope: global). The first image in display order (position, then imageId in " +
    "natural order) is kept. Images without a hash pass through and are counted as unhashed. Run hash-content " +
    "before it.",
  config: DedupeByHashConfig,
  productScoped: true,
  make: (config, context) =>
    config.scope === "product"
      ? Effect.succeed({ apply: (batch: Batch) => dedupe(batch, (_key) => new Set<string>()) })
      : Effect.map(loadState(context), (loaded) => {
        // `committed`: hashes of records the sinks wrote (plus those loaded): what is saved.
        // `seen`: everything kept so far in this run, written or not: what decides duplicates.
        const committed = new Set(loaded)
        const seen = new Set(loaded)
        return {
          apply: (batch: Batch) => dedupe(batch, (_key) => seen),
          persist: {
            written: (batch: Batch) =>
              Effect.sync(() => {
                for (const r of batch.records) if (r.contentHash !== null) committed.add(r.contentHash)
              }),
            snapshot: Effect.sync((): DedupeState => ({ hashes: [...committed] }))
          }
        }
      })
})

/**
 * Dedupes one batch. `seenFor(productKey)` gives the set of hashes a record is checked against and
 * added to: a fresh set per product for product scope, one shared set for global scope. Products are
 * visited in first-appearance order and each product's records in display order; the output keeps
 * the batch's order.
 */
const dedupe = (batch: Batch, seenFor: (product: string) => Set<string>) =>
  Effect.suspend(() => {
    const records = Chunk.toReadonlyArray(batch.records)
    const products = new Map<string, Array<number>>()
    records.forEach((r, i) => {
      const key = productKey(r)
      const list = products.get(key)
      if (list === undefined) products.set(key, [i])
      else list.push(i)
    })
    const dropped = new Set<number>()
    const deduped = new Map<string, number>()
    const unhashed = new Map<string, number>()
    for (const [key, indices] of products) {
      const seen = seenFor(key)
      const ordered = indices.slice().sort((a, b) => displayOrder(records[a]!, records[b]!) || a - b)
      for (const i of ordered) {
        const r = records[i]!
        if (r.contentHash === null) bump(unhashed, r.source)
        else if (seen.has(r.contentHash)) {
          dropped.add(i)
          bump(deduped, r.source)
        } else seen.add(r.contentHash)
      }
    }
    const count = Effect.zipRight(
      Effect.forEach(deduped, ([source, n]) => RunStats.add(source, "deduped", n), { discard: true }),
      Effect.forEach(unhashed, ([source, n]) => RunStats.add(source, "unhashed", n), { discard: true })
    )
    const out: Batch = dropped.size === 0
      ? batch
      : { ...batch, records: Chunk.fromIterable(records.filter((_, i) => !dropped.has(i))) }
    return Effect.as(count, out)
  })

const bump = (counts: Map<string, number>, source: string): void => {
  counts.set(source, (counts.get(source) ?? 0) + 1)
}

/** The hashes saved at the last commit, if any. */
const loadState = (context: Transform.TransformContext): Effect.Effect<ReadonlyArray<string>, ConfigError> =>
  Option.match(context.state, {
    onNone: () => Effect.succeed([]),
    onSome: (saved) =>
      Effect.mapError(
        Effect.map(Schema.decodeUnknown(DedupeState)(saved), (s) => s.hashes),
        () =>
          new ConfigError({
            message: `The saved state of transform '${context.key}' (dedupe-by-hash) is not a list of hashes. ` +
              `Reset the pipeline's state ('effetl state reset') to start the seen set afresh.`
          })
      )
  })
