/**
 * The `channel` source plugin: product images of an Akinon Omnitron sales channel.
 */
import { createHash } from "node:crypto"
import { Batch, Config, ConfigError, Http, type ProductImage, Source } from "@effetl/core"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { isActive, type Mode, modePaths, toProductImage } from "./Api.js"
import * as Client from "./Client.js"

/** A list of at least one value: an empty filter list would go out as an empty parameter, which DRF reads as no filter. */
const nonEmpty = <A, I>(item: Schema.Schema<A, I>) =>
  Schema.Array(item).pipe(
    Schema.minItems(1, { message: () => "expected at least one value (leave the option out for no filter)" })
  )

/** The most product ids in one partition (they go out in one `product__pk__in` parameter, so the URL stays short). */
const maxPartitionSize = 500

/** The `with:` options of the `channel` source. */
export const ChannelConfig = Schema.Struct({
  baseUrl: Config.required(Config.BaseUrl, {
    description: "The Omnitron root, scheme://host[:port]; the source adds /api/v1/channel/{channelId}/product_images/.",
    examples: ["https://omnitron.example.com", "http://127.0.0.1:8080"]
  }),
  channelId: Config.required(Config.intAtLeast(1), { description: "The sales channel id.", examples: [5] }),
  token: Config.secret({
    description: "The API token, sent as `Authorization: Token <token>`. Use ${ENV_VAR}.",
    examples: ["${CHANNEL_TOKEN}"]
  }),
  mode: Config.withDefault(Schema.Literal(...(Object.keys(modePaths) as Array<Mode>)), "detailed" as Mode, {
    description:
      "What to read: `detailed` (the full list with image URLs), `list` (the full list, no URLs), or a pending-change " +
      "queue: `inserts`, `updates`, `inserts_or_updates` (read only; reading never drains them).",
    examples: ["detailed", "inserts_or_updates"]
  }),
  ids: Config.optional(nonEmpty(Config.intAtLeast(1)), {
    description: "Only these image ids (`id__in`), or with `idLookup: true` each fetched by `{id}/` or `{id}/detailed/`.",
    examples: [[101, 102]]
  }),
  idLookup: Config.withDefault(Schema.Boolean, false, {
    description:
      "Fetch each of `ids` on its own: `{id}/` in `list` mode, `{id}/detailed/` in every other mode (a queue mode then " +
      "does not limit the ids to the queue). A missing id is a dead letter.",
    examples: [true]
  }),
  product: Config.optional(Config.intAtLeast(1), { description: "Only the images of this product (`product`).", examples: [1001] }),
  productIds: Config.optional(nonEmpty(Config.intAtLeast(1)), {
    description: "Only the images of these products (`product__pk__in`).",
    examples: [[1001, 1002]]
  }),
  isSellerProduct: Config.optional(Schema.Boolean, {
    description: "Only seller products (true) or only the others (false) (`is_seller_product`). Leave it out for both.",
    examples: [true]
  }),
  productType: Config.optional(nonEmpty(Schema.String), {
    description: "Only these product types (`product_type`, sent once per type).",
    examples: [["simple", "pack"]]
  }),
  activeOnly: Config.withDefault(Schema.Boolean, false, {
    description:
      "Leave out disabled images (`status` other than `active`, or `is_active` false). By default every image is emitted, " +
      "with `status` and `isActive` in `extra`.",
    examples: [true]
  }),
  pageSize: Config.withDefault(Config.intRange(1, 1000), 100, { description: "Images per page (`limit`).", examples: [100, 1000] }),
  partitionSize: Config.withDefault(Config.intRange(1, maxPartitionSize), 100, {
    description:
      "Distributed runs only: products per partition. The partitions are chunks of the product ids a listing pass finds " +
      "(read with `product__pk__in`), so no product spans two partitions.",
    examples: [100, 20]
  }),
  concurrency: Config.withDefault(Config.intRange(1, 32), 4, {
    description:
      "Pages fetched at once once the total count is known (the full lists only; queues are read in order). An API that " +
      "caps the page size below `pageSize` is handled: pages are numbered by the size it really sends.",
    examples: [4, 1]
  }),
  urlField: Config.withDefault(Schema.String, "image", {
    description: "The field of the detailed variants holding the image URL (an assumption: the public docs do not name it).",
    examples: ["image", "image_url"]
  }),
  altField: Config.withDefault(Schema.String, "alt", {
    description: "The field holding the alt text, when the API sends one.",
    examples: ["alt", "description"]
  }),
  timeout: Http.HttpConfig.timeoutField,
  retry: Http.HttpConfig.retryField,
  rateLimit: Config.optional(Http.HttpConfig.RateLimitSettings, {
    description:
      "A proactive request rate, shared by every source with the same token. Leave it out for none (429s are still " +
      "retried, honouring Retry-After).",
    examples: [{ requestsPerSecond: 10 }]
  })
})
export type ChannelConfig = typeof ChannelConfig.Type

/** The page size of the listing pass that finds the product ids to partition (the API's largest). */
const listingPageSize = 1000

/**
 * One partition: a chunk of product ids (read with `product__pk__in`), or all of the work (id
 * lookups, whose ids are image ids, are one partition).
 */
const Partition = Schema.Union(
  Schema.Struct({ products: Schema.NonEmptyArray(Schema.Int) }),
  Schema.Literal("all")
)
type Partition = typeof Partition.Type
const decodePartition = Schema.decodeUnknownOption(Partition)

/**
 * Where a run is: the last page finished, or the index of the last id finished (id lookups), and
 * what was being read (`reading`: mode, page size and filters), since a page number means nothing
 * under other settings.
 */
const Position = Schema.Union(
  Schema.Struct({ mode: Schema.String, page: Schema.Int, reading: Schema.optional(Schema.String) }),
  Schema.Struct({ mode: Schema.String, idIndex: Schema.Int, reading: Schema.optional(Schema.String) })
)
const decodePosition = Schema.decodeUnknownOption(Position)

/** The `channel` source. */
export const channel = Source.define<ChannelConfig>({
  name: "channel",
  description: "Akinon Omnitron sales channel product images (list, detailed, change queues, by id)",
  config: ChannelConfig,
  reads: {
    fullScan:
      "GET product_images/detailed/ (mode: list: product_images/, no URLs) by page and limit, pages fetched `concurrency` " +
      "at a time once the count is known; a checkpoint per page resumes an unfinished run. The pending-change queues " +
      "(mode: inserts, updates, inserts_or_updates) are read whole, in order, one page at a time, and never drained. " +
      "Partitions: chunks of partitionSize product ids found by a listing pass, each read with product__pk__in.",
    byId: "ids with idLookup: GET product_images/{id}/detailed/ (mode: list: {id}/) for each id; ids alone: the list filtered by id__in"
  },
  partitions: (config, ctx) =>
    Effect.gen(function*() {
      // Image ids looked up one by one are not grouped by product: the lookups are one partition.
      if (config.ids && config.idLookup) return ["all"]
      const client = yield* makeClient(config, ctx.name)
      // The plain list holds the same images as `detailed/` (without URLs), so it is the cheaper listing.
      const mode: Mode = config.mode === "detailed" ? "list" : config.mode
      const products = new Set<number>()
      yield* client.pages({ mode, filters: filtersOf(config), pageSize: listingPageSize, startPage: 1, concurrency: config.concurrency }).pipe(
        Stream.runForEach((page) =>
          Effect.sync(() => {
            for (const item of page.results) {
              const product = productOf(item)
              if (product !== undefined) products.add(product)
            }
          })
        )
      )
      const ids = [...products].sort((a, b) => a - b)
      return Source.chunks(ids, config.partitionSize).map((products): Partition => ({ products }))
    }),
  make: (config, ctx) =>
    Effect.gen(function*() {
      const client = yield* makeClient(config, ctx.name)
      const detailed = config.mode !== "list"
      const fields = { url: config.urlField, alt: config.altField }
      const filters = filtersOf(config)
      const partition = yield* partitionOf(ctx.partition, config, ctx.name)
      if (partition !== "all") filters.product__pk__in = partition.products.join(",")

      const pageSize = Option.match(ctx.limit, { onNone: () => config.pageSize, onSome: (n) => Math.min(config.pageSize, Math.max(1, n)) })
      const reading = describeReading(config, pageSize, filters, partition)
      const resume = Option.flatMap(ctx.checkpoint, (cp) => decodePosition(cp.value))
      if (Option.isSome(resume)) {
        const was = resume.value.reading ?? `mode=${resume.value.mode}`
        if (!(resume.value.reading === undefined ? resume.value.mode === config.mode : was === reading)) {
          return yield* new ConfigError({
            message: `source '${ctx.name}': the unfinished run was reading [${was}] and the config now says [${reading}]; ` +
              `a saved page means nothing under other settings. Finish the run with its old settings, or pass --restart.`
          })
        }
      }

      const toBatch = (items: ReadonlyArray<unknown>, checkpoint: Batch.Checkpoint): Batch.Batch => {
        const records: Array<ProductImage> = []
        const rejected: Array<Batch.DeadLetter> = []
        for (const item of items) {
          const mapped = toProductImage(ctx.name, item, fields, config.baseUrl)
          if (Either.isLeft(mapped)) rejected.push({ source: ctx.name, stage: "source", error: mapped.left.error, payload: mapped.left.payload })
          else if (!config.activeOnly || isActive(mapped.right)) records.push(mapped.right)
        }
        return Batch.make(records, Option.some(checkpoint), rejected)
      }

      const byIds = (ids: ReadonlyArray<number>) => {
        const from = Option.match(resume, { onNone: () => 0, onSome: (p) => ("idIndex" in p ? p.idIndex + 1 : 0) })
        return Stream.fromIterable(ids.slice(from).map((id, i) => [id, from + i] as const)).pipe(
          Stream.mapEffect(([id, index]) =>
            Effect.map(client.image(id, detailed), ({ found, item }) => {
              const cp = Batch.position({ mode: config.mode, idIndex: index, reading })
              if (found) return toBatch([item], cp)
              return Batch.make([], Option.some(cp), [
                { source: ctx.name, stage: "source", error: `image ${id} not found (HTTP 404)`, payload: item }
              ])
            }), { concurrency: config.concurrency }),
          Stream.tap(() => ctx.progress.page())
        )
      }

      const listing = () => {
        const startPage = Option.match(resume, { onNone: () => 1, onSome: (p) => ("page" in p ? p.page + 1 : 1) })
        let counted = false
        return client.pages({ mode: config.mode, filters, pageSize, startPage, concurrency: config.concurrency }).pipe(
          Stream.tap((page) =>
            Effect.zipRight(
              counted ? Effect.void : Effect.zipRight(Effect.sync(() => (counted = true)), ctx.progress.total(page.count)),
              ctx.progress.page()
            )
          ),
          Stream.map((page) => toBatch(page.results, Batch.position({ mode: config.mode, page: page.page, reading })))
        )
      }

      const stream = config.ids && config.idLookup ? byIds(config.ids) : listing()
      if (config.ids && config.idLookup) yield* ctx.progress.total(config.ids.length)
      return {
        // The lists are ordered by image id, so one product's images are spread over many pages.
        productComplete: false,
        stream: stream.pipe(Stream.filter((b) => Chunk.isNonEmpty(b.records) || Chunk.isNonEmpty(b.rejected) || Option.isSome(b.checkpoint))),
        check: client.check
      }
    })
})

type Filters = Record<string, string | number | boolean | ReadonlyArray<string>>

/** The list filters of a config, in the API's parameter names. */
const filtersOf = (config: ChannelConfig): Filters => {
  const filters: Filters = {}
  if (config.product !== undefined) filters.product = config.product
  if (config.productIds) filters.product__pk__in = config.productIds.join(",")
  if (config.ids && !config.idLookup) filters.id__in = config.ids.join(",")
  if (config.isSellerProduct !== undefined) filters.is_seller_product = config.isSellerProduct ? "true" : "false"
  // A multiple-choice filter: django-filter wants the parameter repeated, not comma-separated.
  if (config.productType) filters.product_type = config.productType
  return filters
}

/** The client of a config. */
const makeClient = (config: ChannelConfig, source: string) =>
  Client.make({
    source,
    baseUrl: config.baseUrl,
    channelId: config.channelId,
    token: config.token,
    timeout: config.timeout,
    retry: config.retry,
    ...(config.rateLimit ? { rateLimit: config.rateLimit } : {})
  })

/** The product id of a raw list item, when it has a valid one (an item without one is a dead letter of whichever read meets it). */
const productOf = (item: unknown): number | undefined => {
  const product = typeof item === "object" && item !== null ? (item as { readonly product?: unknown }).product : undefined
  return typeof product === "number" && Number.isSafeInteger(product) ? product : undefined
}

/** The partition to read: all of the work, or one of `partitions`' chunks (anything else is refused). */
const partitionOf = (
  spec: Option.Option<Source.PartitionSpec>,
  config: ChannelConfig,
  source: string
): Effect.Effect<Partition, ConfigError> => {
  if (Option.isNone(spec)) return Effect.succeed("all")
  const decoded = decodePartition(spec.value)
  if (Option.isSome(decoded) && (decoded.value === "all" || !(config.ids && config.idLookup))) return Effect.succeed(decoded.value)
  return Effect.fail(
    new ConfigError({
      message: `source '${source}': the partition ${JSON.stringify(spec.value).slice(0, 80)} is not one this config splits into ` +
        `(a chunk of product ids {"products":[...]}, or "all" for id lookups)`
    })
  )
}

/** What a run reads, in words: the settings a saved position depends on (a partition's ids as a digest). */
const describeReading = (config: ChannelConfig, pageSize: number, filters: Filters, partition: Partition): string => {
  const partitioned = partition !== "all"
  return [
    `mode=${config.mode}`,
    config.ids && config.idLookup ? `ids=${config.ids.join(",")}` : `pageSize=${pageSize}`,
    ...Object.keys(filters).sort().filter((k) => !(partitioned && k === "product__pk__in")).map((k) => `${k}=${String(filters[k])}`),
    ...(config.productIds && partitioned ? [`product__pk__in=${config.productIds.join(",")}`] : []),
    ...(partitioned
      ? [`partition=${partition.products.length}@${createHash("sha256").update(partition.products.join(",")).digest("hex").slice(0, 16)}`]
      : []),
    ...(config.activeOnly ? ["activeOnly"] : [])
  ].join(" ")
}

export default channel
