/**
 * The `linkshop` source plugin: product images of a LinkShop store.
 *
 * A run lists the products (`GET /products`, images inline), page by page through the `Link`
 * headers: one batch per page, every product whole in its batch. The checkpoint after a batch holds
 * the next page's URL (a killed run resumes there) and the latest `updated_at` seen, the high-water
 * mark: with `incremental` (the default) the next run lists only the products updated since.
 */
import { Batch, Config, ConfigError, Http, Source } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { maxPageSize, toProductImages } from "./Api.js"
import * as Client from "./Client.js"

/** The `with:` options of the `linkshop` source. */
export const LinkShopConfig = Schema.Struct({
  baseUrl: Config.required(Config.BaseUrl, {
    description: "The store's root URL; the source reads {baseUrl}/api/v1.",
    examples: ["https://acme.linkshop.example", "http://127.0.0.1:8080"]
  }),
  token: Config.secret({ description: "The API token, sent as `Authorization: Bearer <token>`.", examples: ["${LINKSHOP_TOKEN}"] }),
  pageSize: Config.withDefault(Config.intRange(1, maxPageSize), 100, {
    description: `Products per page (per_page), at most ${maxPageSize}.`,
    examples: [100, 250]
  }),
  incremental: Config.withDefault(Schema.Boolean, true, {
    description: "Whether a run lists only the products updated since the last run's high-water mark (false: every run reads everything).",
    examples: [true, false]
  }),
  retry: Http.HttpConfig.retryField,
  timeout: Http.HttpConfig.timeoutField
})
export type LinkShopConfig = typeof LinkShopConfig.Type

/** The checkpoint's value: where the list stands, and the high-water mark for the next run. */
export const Position = Schema.Struct({
  /** The next page's URL; null once the list is done. */
  next: Schema.NullOr(Schema.String),
  /** The `updated_since` this run's list started from (null: a full scan). */
  since: Schema.NullOr(Schema.String),
  /** The latest `updated_at` seen (ISO-8601): the next run's `updated_since`. */
  mark: Schema.NullOr(Schema.String)
})
export type Position = typeof Position.Type

export const linkshop = Source.define<LinkShopConfig>({
  name: "linkshop",
  description: "Product images of a LinkShop store (the worked example of docs/guide/write-a-source.md).",
  config: LinkShopConfig,
  reads: {
    fullScan: "GET /products page by page, following the Link header's rel=\"next\"; images come inline",
    incremental: "updated_since = the last run's highest updated_at (products updated at that instant are read again; sinks merge them by key)"
  },
  incremental: (config) => config.incremental,
  make: (config, ctx) =>
    Effect.gen(function*() {
      const saved = yield* savedPosition(ctx)
      const resuming = ctx.resumed && Option.isSome(saved)
      // Where this run starts: the saved next page (a resume), the last run's mark, or everything.
      const lastMark = config.incremental ? Option.getOrNull(Option.flatMap(saved, (p) => Option.fromNullable(p.mark))) : null
      const start: Position = resuming ? saved.value : { next: null, since: lastMark, mark: lastMark }
      const client = yield* Client.make({
        source: ctx.name,
        baseUrl: config.baseUrl,
        token: config.token,
        retry: config.retry,
        timeout: config.timeout
      })
      const pages = resuming && start.next === null
        ? Stream.empty // the list was done when the run stopped
        : client.products({
          pageSize: config.pageSize,
          updatedSince: Option.fromNullable(start.since),
          resume: resuming ? Option.fromNullable(start.next) : Option.none()
        })
      const stream = pages.pipe(
        Stream.tap(() => ctx.progress.page()),
        Stream.mapAccum(start.mark, (mark, page) => {
          const decoded = page.value.map((raw) => toProductImages(ctx.name, raw))
          const records = decoded.flatMap((d) => (Either.isRight(d) ? d.right : []))
          const rejected = decoded.flatMap((d) =>
            Either.isLeft(d) ? [{ source: ctx.name, stage: "source", error: d.left.error, payload: d.left.payload }] : []
          )
          const latest = records.reduce<string | null>((m, r) => {
            const at = r.updatedAt?.toISOString() ?? null
            return at !== null && (m === null || at > m) ? at : m
          }, mark)
          const position: Position = { next: Option.getOrNull(page.next), since: start.since, mark: latest }
          return [latest, Batch.make(records, Option.some(Batch.cursor(position)), rejected)] as const
        })
      )
      return { productComplete: true, stream, check: client.check }
    })
})

/** The saved checkpoint as a {@link Position}; a value of another shape is a config error naming it. */
const savedPosition = (ctx: Source.SourceContext): Effect.Effect<Option.Option<Position>, ConfigError> =>
  Option.match(ctx.checkpoint, {
    onNone: () => Effect.succeed(Option.none()),
    onSome: (checkpoint) =>
      Effect.mapBoth(Schema.decodeUnknown(Position)(checkpoint.value), {
        onFailure: () =>
          new ConfigError({
            message: `source '${ctx.name}': the saved checkpoint is not a linkshop position; reset the state (effetl state reset) or run with --full-refresh`
          }),
        onSuccess: Option.some
      })
  })
