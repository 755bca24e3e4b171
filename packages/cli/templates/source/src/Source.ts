/**
 * The `__plugin__` source plugin: its config (an Effect Schema whose annotations are the docs of
 * `effetl plugins`, the JSON Schema and validation errors) and its stream of batches, one per page,
 * each with the checkpoint to resume after it.
 */
import { Batch, Config, Http, type ProductImage, Source } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { maxPageSize, toProductImage, type WirePage } from "./Api.js"
import * as Client from "./Client.js"

/** The `with:` options of the `__plugin__` source. */
export const __Ident__Config = Schema.Struct({
  baseUrl: Config.required(Config.BaseUrl, {
    description: "The API root, scheme://host[:port]; the source adds /v1/images.",
    examples: ["https://api.example.com", "http://127.0.0.1:8080"]
  }),
  token: Config.secret({
    description: "The API token, sent as `Authorization: Bearer <token>`. Use ${ENV_VAR}.",
    examples: ["${__ENV___TOKEN}"]
  }),
  pageSize: Config.withDefault(Config.intRange(1, maxPageSize), 50, {
    description: "Images per page (`limit`).",
    examples: [50, 100]
  }),
  timeout: Http.HttpConfig.timeoutField,
  retry: Http.HttpConfig.retryField
})
export type __Ident__Config = typeof __Ident__Config.Type

/**
 * Where a run is: the cursor of the next page, or null once the last page was read. A `position`
 * checkpoint resumes only the run it belongs to: the next run reads everything again.
 */
const Position = Schema.Struct({ next: Schema.NullOr(Schema.String) })
const decodePosition = Schema.decodeUnknownOption(Position)

/** The `__plugin__` source. */
export const __ident__ = Source.define<__Ident__Config>({
  name: "__plugin__",
  description: "Product images of the __plugin__ API (cursor pagination, bearer token).",
  config: __Ident__Config,
  reads: {
    fullScan: "GET /v1/images page by page (cursor and has_more); a checkpoint per page resumes an unfinished run."
  },
  make: (config, ctx) =>
    Effect.gen(function*() {
      const client = yield* Client.make({
        source: ctx.name,
        baseUrl: config.baseUrl,
        token: config.token,
        timeout: config.timeout,
        retry: config.retry
      })
      // A trial (`--limit N`) needs no bigger pages than N.
      const pageSize = Option.match(ctx.limit, { onNone: () => config.pageSize, onSome: (n) => Math.min(config.pageSize, Math.max(1, n)) })
      const resume = Option.flatMap(ctx.checkpoint, (cp) => decodePosition(cp.value))

      const toBatch = (page: WirePage, next: Option.Option<string>): Batch.Batch => {
        const records: Array<ProductImage> = []
        const rejected: Array<Batch.DeadLetter> = []
        for (const item of page.images) {
          const mapped = toProductImage(ctx.name, item)
          if (Either.isRight(mapped)) records.push(mapped.right)
          else rejected.push({ source: ctx.name, stage: "source", error: mapped.left.error, payload: mapped.left.payload })
        }
        return Batch.make(records, Option.some(Batch.position({ next: Option.getOrNull(next) })), rejected)
      }

      // Resumed after the last page: nothing is left to read.
      const finished = Option.isSome(resume) && resume.value.next === null
      const stream = finished
        ? Stream.empty
        : client.pages({ pageSize, start: Option.flatMap(resume, (p) => Option.fromNullable(p.next)) }).pipe(
          Stream.tap(() => ctx.progress.page()),
          Stream.map((page) => toBatch(page.value, page.next))
        )
      return {
        // The list is ordered by image, so one product's images may be spread over two pages.
        productComplete: false,
        stream,
        check: client.check
      }
    })
})
