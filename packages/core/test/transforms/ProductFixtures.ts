/**
 * Test fixtures for the product-scoped transforms and product grouping: records, a source whose
 * products are spread over many batches, and helpers to compare records.
 */
import { FetchHttpClient } from "@effect/platform"
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Batch from "../../src/Batch.js"
import { ProductImage, productKey, toJson } from "../../src/ProductImage.js"
import * as RunStats from "../../src/RunStats.js"
import type * as Transform from "../../src/Transform.js"

/** Every service a plugin may require, with a fresh `RunStats` (nothing here touches the network). */
export const services = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, FetchHttpClient.layer, RunStats.layer)

/** Builds a record; unspecified fields get plain values. */
export const image = (fields: Partial<ConstructorParameters<typeof ProductImage>[0]> & {
  readonly productId: string
  readonly imageId: string
}): ProductImage =>
  ProductImage.unchecked({
    source: "shop",
    position: 0,
    url: `https://cdn.example/${fields.productId}/${fields.imageId}.jpg`,
    filename: `${fields.imageId}.jpg`,
    width: 800,
    height: 600,
    alt: null,
    contentHash: null,
    createdAt: null,
    updatedAt: null,
    extra: {},
    ...fields
  })

/** A tiny deterministic pseudo-random generator (so failures reproduce). */
export const random = (seed: number) => {
  let s = seed >>> 0
  return (n: number): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s % n
  }
}

/**
 * A source listed by image id, like the Akinon list: each product's images are spread over many
 * batches. Positions have ties, hashes repeat within products (and across some), some are null.
 * Batch `i` carries `position(i)` unless `checkpointEvery` skips it.
 */
export const spreadSource = (options: {
  readonly products: number
  readonly batchSize: number
  readonly seed: number
  readonly source?: string
  readonly checkpointEvery?: number
}): { readonly records: ReadonlyArray<ProductImage>; readonly batches: ReadonlyArray<Batch.Batch> } => {
  const next = random(options.seed)
  const created: Array<ProductImage> = []
  let imageId = 1
  for (let p = 0; p < options.products; p++) {
    const count = 1 + next(6)
    for (let i = 0; i < count; i++) {
      const h = next(5)
      created.push(image({
        source: options.source ?? "shop",
        productId: `P${p}`,
        imageId: String(imageId++),
        position: next(4),
        contentHash: h === 0 ? null : h === 4 ? "sha256:shared" : `sha256:P${p}-${h}`
      }))
    }
  }
  // Shuffle (Fisher-Yates), then list in that order.
  const records = created.slice()
  for (let i = records.length - 1; i > 0; i--) {
    const j = next(i + 1)
    ;[records[i], records[j]] = [records[j]!, records[i]!]
  }
  const batches: Array<Batch.Batch> = []
  const every = options.checkpointEvery ?? 1
  for (let i = 0; i * options.batchSize < records.length; i++) {
    const page = records.slice(i * options.batchSize, (i + 1) * options.batchSize)
    batches.push(Batch.make(page, i % every === every - 1 ? Option.some(Batch.position(i)) : Option.none()))
  }
  return { records, batches }
}

/** A record in a canonical JSON form (bytes and dates included) to compare records by value. */
export const canon = (r: ProductImage): string => JSON.stringify(toJson(r, { includeBytes: true }))

/** Records as a sorted list of canonical forms: equal lists mean equal multisets. */
export const multiset = (records: Iterable<ProductImage>): Array<string> => [...records].map(canon).sort()

/** Records grouped by product key, keeping their order. */
export const byProduct = (records: Iterable<ProductImage>): Map<string, Array<ProductImage>> => {
  const map = new Map<string, Array<ProductImage>>()
  for (const r of records) {
    const key = productKey(r)
    const list = map.get(key) ?? []
    list.push(r)
    map.set(key, list)
  }
  return map
}

/** Makes a transform from its plugin with a config decoded from `input` (defaults applied). */
export const makeTransform = <C>(
  plugin: Transform.TransformPlugin<C>,
  input: unknown,
  state: Option.Option<unknown> = Option.none()
) =>
  Effect.flatMap(
    Schema.decodeUnknown(plugin.config)(input).pipe(Effect.orDie),
    (config) => plugin.make(config, { key: `0:${plugin.name}`, state })
  )

/** The counters of one source in the run's `RunStats`. */
export const countsOf = (source: string) =>
  Effect.flatMap(RunStats.RunStats, (s) => s.snapshot).pipe(
    Effect.map((m) => m.get(source) ?? RunStats.emptyCounts())
  )
