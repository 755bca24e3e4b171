import { createHash } from "node:crypto"
import { Batch } from "@effetl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Simulator from "../src/Simulator.js"
import { FaultProxy } from "@effetl/core/simulator"
import {
  byPks,
  check,
  closedPort,
  drfList,
  env,
  expected,
  expectedAll,
  fastRetry,
  plain,
  run,
  runUntil,
  sendJson,
  simConfig,
  tinyServer,
  wireItem
} from "./Harness.js"

/** Splits `items` into pages of `size`. */
const pagesOf = <A>(items: ReadonlyArray<A>, size: number): Array<Array<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

/** The image ids of a run's batches, page by page. */
const idsByBatch = (batches: ReadonlyArray<Batch.Batch>): Array<Array<string>> =>
  batches.map((b) => [...b.records].map((r) => r.imageId))

/** Runs a test body in a scope with the runner's services (real HTTP). */
const live = <A, E>(body: Effect.Effect<A, E, Layer.Layer.Success<typeof env> | Scope.Scope>): Effect.Effect<A, E> =>
  body.pipe(Effect.scoped, Effect.provide(env))

describe("channel source: read modes", () => {
  it.live("the catalogue has the awkward cases the mapping must handle", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      // Dates with both `Z` and `+03:00` offsets, with and without microseconds.
      expect(sim.catalogue.some((i) => i.created_date.endsWith("Z"))).toBe(true)
      expect(sim.catalogue.some((i) => i.created_date.endsWith("+03:00"))).toBe(true)
      expect(sim.catalogue.some((i) => /\.\d{6}/.test(i.modified_date))).toBe(true)
      expect(sim.catalogue.some((i) => i.hash === null)).toBe(true)
      expect(sim.catalogue.some((i) => i.width === null)).toBe(true)
      expect(sim.catalogue.some((i) => i.status === "disabled")).toBe(true)
      expect(sim.catalogue.some((i) => i.alt === null)).toBe(true)
    })))

  it.live("list: every image in pk order, no URL and no alt (the plain list has neither)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const result = yield* run(simConfig(sim, { mode: "list" }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, sim.catalogue, false))
      expect(result.rejected).toEqual([])
      expect(result.totals).toEqual([sim.catalogue.length])
    })))

  it.live("detailed (the default): every image with its media URL and alt text", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const result = yield* run(simConfig(sim))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, sim.catalogue, true))
      expect(result.rejected).toEqual([])
      // Disabled images are emitted too, marked as such.
      const disabled = result.records.filter((r) => r.extra.status === "disabled")
      expect(disabled.length).toBe(sim.catalogue.filter((i) => !i.is_active).length)
      expect(disabled.every((r) => r.extra.isActive === false)).toBe(true)
    })))

  it.live("detailed: the URL serves exactly the image's bytes", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ products: 5 })
      const result = yield* run(simConfig(sim, { productIds: [sim.products.find((p) => p.images.length > 0)!.id] }))
      expect(result.records.length).toBeGreaterThan(0)
      for (const record of result.records) {
        const bytes = yield* Effect.promise(() => fetch(record.url!).then((r) => r.arrayBuffer()))
        const image = sim.catalogue.find((i) => String(i.pk) === record.imageId)!
        expect(createHash("sha256").update(new Uint8Array(bytes)).digest("hex")).toBe(image.sha256)
      }
    })))

  for (const queue of ["inserts", "updates", "inserts_or_updates"] as const) {
    it.live(`${queue}: exactly the images in the queue, and reading does not drain it`, () =>
      live(Effect.gen(function*() {
        const sim = yield* Simulator.make()
        const pks = queue === "inserts"
          ? sim.queues.inserts
          : queue === "updates"
          ? sim.queues.updates
          : [...new Set([...sim.queues.inserts, ...sim.queues.updates])]
        expect(pks.length).toBeGreaterThan(0)
        const want = expectedAll(sim, byPks(sim, pks), false)
        const first = yield* run(simConfig(sim, { mode: queue, pageSize: 5 }))
        expect(first.records.map(plain)).toEqual(want)
        expect(first.totals).toEqual([pks.length])
        const second = yield* run(simConfig(sim, { mode: queue, pageSize: 5 }))
        expect(second.records.map(plain)).toEqual(want)
      })))
  }
})

describe("channel source: filters", () => {
  it.live("product: only that product's images", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const product = sim.products.find((p) => p.images.length >= 3)!
      const result = yield* run(simConfig(sim, { product: product.id }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, byPks(sim, product.images), true))
    })))

  it.live("product with no images: no records and no failure", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const empty = sim.products.find((p) => p.images.length === 0)!
      const result = yield* run(simConfig(sim, { product: empty.id }))
      expect(result.records).toEqual([])
      expect(result.rejected).toEqual([])
    })))

  it.live("productIds: the images of those products (product__pk__in)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const chosen = sim.products.filter((p) => p.images.length > 0).slice(2, 5)
      const result = yield* run(simConfig(sim, { mode: "list", productIds: chosen.map((p) => p.id) }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, byPks(sim, chosen.flatMap((p) => p.images)), false))
    })))

  it.live("ids: only those images (id__in), following next links page by page", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const pks = [3, 17, 18, 40, 77, 101]
      const result = yield* run(simConfig(sim, { ids: pks, pageSize: 2, concurrency: 1 }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, byPks(sim, pks), true))
      expect(idsByBatch(result.batches)).toEqual([["3", "17"], ["18", "40"], ["77", "101"]])
      expect(sim.requests().total).toBe(3)
    })))

  it.live("ids + idLookup in list mode: each id fetched alone; a missing id is a dead letter, not a failure", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const ids = [12, 999_999, 5, 30]
      const result = yield* run(simConfig(sim, { mode: "list", ids, idLookup: true, concurrency: 2 }))
      expect(result.records.map(plain)).toEqual([12, 5, 30].map((pk) => expected(sim, byPks(sim, [pk])[0]!, false)))
      expect(result.rejected).toEqual([
        { source: "channel", stage: "source", error: "image 999999 not found (HTTP 404)", payload: { pk: 999_999 } }
      ])
      expect(result.checkpoints).toEqual(ids.map((_, idIndex) => ({ mode: "list", idIndex })))
      expect(result.totals).toEqual([ids.length])
      expect(sim.requests().byPath).toEqual(
        Object.fromEntries(ids.map((id) => [`/api/v1/channel/5/product_images/${id}/`, 1]))
      )
    })))

  it.live("ids + idLookup in detailed mode: {id}/detailed/ with URL and alt", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const ids = [7, 1, 999_998]
      const result = yield* run(simConfig(sim, { mode: "detailed", ids, idLookup: true }))
      expect(result.records.map(plain)).toEqual([7, 1].map((pk) => expected(sim, byPks(sim, [pk])[0]!, true)))
      expect(result.rejected.map((d) => [d.stage, d.error])).toEqual([["source", "image 999998 not found (HTTP 404)"]])
      expect(Object.keys(sim.requests().byPath).every((p) => p.endsWith("/detailed/"))).toBe(true)
    })))

  for (const seller of [true, false]) {
    it.live(`isSellerProduct: ${seller}`, () =>
      live(Effect.gen(function*() {
        const sim = yield* Simulator.make()
        const owners = new Set(sim.products.filter((p) => p.is_seller_product === seller).map((p) => p.id))
        const want = sim.catalogue.filter((i) => owners.has(i.product))
        expect(want.length).toBeGreaterThan(0)
        expect(want.length).toBeLessThan(sim.catalogue.length)
        const result = yield* run(simConfig(sim, { isSellerProduct: seller }))
        expect(result.records.map(plain)).toEqual(expectedAll(sim, want, true))
      })))
  }

  it.live("productType: images of products of those types", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const types = new Set(["simple", "pack"])
      const owners = new Set(sim.products.filter((p) => types.has(p.product_type)).map((p) => p.id))
      const want = sim.catalogue.filter((i) => owners.has(i.product))
      expect(want.length).toBeGreaterThan(0)
      expect(want.length).toBeLessThan(sim.catalogue.length)
      const result = yield* run(simConfig(sim, { productType: ["simple", "pack"] }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, want, true))
    })))

  it.live("productType the API does not know: the run fails with the API's own message", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const error = yield* Effect.flip(run(simConfig(sim, { productType: ["shoes"] })))
      expect(error).toMatchObject({ _tag: "ApiError", status: 400 })
      expect(error.message).toContain("Select a valid choice. shoes is not one of the available choices.")
      expect(sim.requests().total).toBe(1)
    })))

  it.live("activeOnly: disabled images are left out (and by default they are kept)", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const active = sim.catalogue.filter((i) => i.is_active && i.status === "active")
      expect(active.length).toBeLessThan(sim.catalogue.length)
      const result = yield* run(simConfig(sim, { activeOnly: true }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, active, true))
    })))

  it.live("filters combine, on a queue too", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const owners = new Set(sim.products.filter((p) => !p.is_seller_product).map((p) => p.id))
      const want = byPks(sim, sim.queues.updates).filter((i) => owners.has(i.product) && i.is_active)
      expect(want.length).toBeGreaterThan(0)
      const result = yield* run(simConfig(sim, { mode: "updates", isSellerProduct: false, activeOnly: true }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, want, false))
    })))
})

describe("channel source: pages, concurrency, checkpoints", () => {
  it.live("pageSize 7, concurrency 4: pages in order, checkpoints {mode, page} by 1, total = count", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const n = sim.catalogue.length
      const result = yield* run(simConfig(sim, { pageSize: 7, concurrency: 4 }))
      const pages = pagesOf(sim.catalogue.map((i) => String(i.pk)), 7)
      expect(idsByBatch(result.batches)).toEqual(pages)
      expect(result.checkpoints).toEqual(pages.map((_, i) => ({ mode: "detailed", page: i + 1 })))
      expect(result.batches.every((b) => Option.isSome(b.checkpoint) && b.checkpoint.value.kind === "position")).toBe(true)
      expect(result.totals).toEqual([n])
      expect(result.pages).toBe(pages.length)
      // One request per page: no page fetched twice, none past the end.
      expect(sim.requests().total).toBe(pages.length)
      expect(result.records.map(plain)).toEqual(expectedAll(sim, sim.catalogue, true))
    })))

  it.live("a queue is read in order one page at a time, whatever the concurrency", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const pks = [...new Set([...sim.queues.inserts, ...sim.queues.updates])].sort((a, b) => a - b)
      const result = yield* run(simConfig(sim, { mode: "inserts_or_updates", pageSize: 3, concurrency: 8 }))
      const pages = pagesOf(pks.map(String), 3)
      expect(idsByBatch(result.batches)).toEqual(pages)
      expect(result.checkpoints).toEqual(pages.map((_, i) => ({ mode: "inserts_or_updates", page: i + 1 })))
      expect(sim.requests().total).toBe(pages.length)
    })))

  it.live("pageSize 1000: one page", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const result = yield* run(simConfig(sim, { mode: "list", pageSize: 1000 }))
      expect(result.batches.length).toBe(1)
      expect(result.records.length).toBe(sim.catalogue.length)
    })))

  it.live("the runner's limit caps the page size", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const result = yield* run(simConfig(sim, { pageSize: 50 }), { limit: 5, take: 1 })
      expect(idsByBatch(result.batches)).toEqual([["1", "2", "3", "4", "5"]])
    })))
})

describe("channel source: faults", () => {
  const faults: Simulator.FaultOptions = {
    kinds: ["5xx", "429", "reset", "truncate", "latency"],
    rate: 0.3,
    retryAfterSeconds: 0,
    latencyMs: 5,
    seed: 11
  }

  it.live("5xx, 429, resets, truncated bodies and latency: every image exactly once, retries counted", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ faults })
      const result = yield* run(simConfig(sim, { pageSize: 7, concurrency: 4 }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, sim.catalogue, true))
      expect(new Set(result.records.map((r) => r.imageId)).size).toBe(sim.catalogue.length)
      expect(result.checkpoints).toEqual(pagesOf(sim.catalogue, 7).map((_, i) => ({ mode: "detailed", page: i + 1 })))
      expect(sim.requests().faults).toBeGreaterThan(0)
      expect(result.retries).toBeGreaterThan(0)
    })))

  it.live("faults on a queue followed by next links: every image exactly once", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ faults: { ...faults, seed: 3 } })
      const result = yield* run(simConfig(sim, { mode: "updates", pageSize: 4 }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, byPks(sim, sim.queues.updates), false))
      expect(sim.requests().faults).toBeGreaterThan(0)
      expect(result.retries).toBeGreaterThan(0)
    })))

  it.live("faults on id lookups: every id exactly once", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make({ faults: { ...faults, rate: 0.5, seed: 5 } })
      const ids = sim.catalogue.slice(0, 20).map((i) => i.pk)
      const result = yield* run(simConfig(sim, { ids, idLookup: true, concurrency: 4 }))
      expect(result.records.map(plain)).toEqual(expectedAll(sim, sim.catalogue.slice(0, 20), true))
      expect(result.rejected).toEqual([])
      expect(result.retries).toBeGreaterThan(0)
    })))
})

describe("channel source: a 10 % fault mix (5xx, 503 + Retry-After, resets, truncated and cut bodies, stalls)", () => {
  /** Every tenth request answered badly by a proxy in front of a clean simulator, the kinds in turn. */
  const proxied = (sim: Simulator.ChannelSimulator) =>
    FaultProxy.make({
      upstream: sim.url,
      every: 10,
      serverError: { status: 500, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ detail: "A server error occurred." }) },
      unavailable: {
        status: 503,
        headers: { "Content-Type": "application/json", "Retry-After": "1" },
        body: JSON.stringify({ detail: "Service temporarily unavailable, try again later." })
      }
    })

  it.live("the detailed list, 4 pages at a time: every image exactly once, every kind of fault met and retried", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const proxy = yield* proxied(sim)
      // A stall ends at the attempt timeout; pages of 2 make enough requests to meet every kind.
      const result = yield* run({ ...simConfig(sim, { pageSize: 2, concurrency: 4, timeout: "2 seconds" }), baseUrl: proxy.url })
      expect(result.records.map(plain)).toEqual(expectedAll(sim, sim.catalogue, true))
      expect(result.rejected).toEqual([])
      expect(result.checkpoints).toEqual(pagesOf(sim.catalogue, 2).map((_, i) => ({ mode: "detailed", page: i + 1 })))
      expect(proxy.requests()).toBeGreaterThanOrEqual(10 * FaultProxy.faultKinds.length)
      const injected = proxy.injected()
      for (const kind of FaultProxy.faultKinds) expect(injected[kind], kind).toBeGreaterThan(0)
      // Each fault costs at least one retry (a slow machine may add timeouts of its own).
      expect(result.retries).toBeGreaterThanOrEqual(Object.values(injected).reduce((a, b) => a + b, 0))
    })))

  it.live("a queue followed by its next links through the proxy: every image of the queue exactly once", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const proxy = yield* proxied(sim)
      const result = yield* run({ ...simConfig(sim, { mode: "inserts_or_updates", pageSize: 1, timeout: "2 seconds" }), baseUrl: proxy.url })
      const pks = [...new Set([...sim.queues.inserts, ...sim.queues.updates])]
      expect(result.records.map(plain)).toEqual(expectedAll(sim, byPks(sim, pks), false))
      expect(result.rejected).toEqual([])
      expect(Object.values(proxy.injected()).reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
    })))
})

describe("channel source: resume", () => {
  for (const concurrency of [1, 4]) {
    it.live(`a killed run resumed from its last checkpoint reads every image exactly once (concurrency ${concurrency})`, () =>
      live(Effect.gen(function*() {
        const sim = yield* Simulator.make()
        const config = simConfig(sim, { pageSize: 7, concurrency })
        const pageCount = Math.ceil(sim.catalogue.length / 7)
        const first = yield* run(config, { take: 3 })
        const last = first.batches[2]!.checkpoint
        expect(last).toEqual(Option.some(Batch.position({ mode: "detailed", page: 3, reading: "mode=detailed pageSize=7" })))
        // The rerun talks to a fresh simulator with the same seed (the same catalogue), so its request
        // count is not blurred by the first run's prefetches that were in flight when it was cut.
        const again = yield* Simulator.make()
        expect(again.catalogue).toEqual(sim.catalogue)
        const second = yield* run({ ...config, baseUrl: again.url }, { checkpoint: last })
        expect(second.checkpoints[0]).toEqual({ mode: "detailed", page: 4 })
        expect(second.checkpoints.at(-1)).toEqual({ mode: "detailed", page: pageCount })
        // Only pages after 3 were asked for.
        expect(again.requests().total).toBe(pageCount - 3)
        const resumed = second.records.map((r) => ({ ...plain(r), url: r.url!.replace(again.url, sim.url) }))
        expect([...first.records.map(plain), ...resumed]).toEqual(expectedAll(sim, sim.catalogue, true))
      })))
  }

  it.live("a resume under other settings (page size, filters, mode) is refused, not read from the wrong place", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const config = simConfig(sim, { pageSize: 2, productIds: [1001, 1002] })
      const first = yield* run(config, { take: 1 })
      const saved = first.batches[0]!.checkpoint
      expect(first.raw[0]).toEqual({ mode: "detailed", page: 1, reading: "mode=detailed pageSize=2 product__pk__in=1001,1002" })
      for (const changed of [{ pageSize: 3 }, { productIds: [1001] }, { mode: "list" }, { activeOnly: true }]) {
        const failure = yield* Effect.flip(run({ ...config, ...changed }, { checkpoint: saved }))
        expect(failure._tag).toBe("ConfigError")
        expect(failure.message).toContain("source 'channel': the unfinished run was reading [mode=detailed pageSize=2 product__pk__in=1001,1002]")
        expect(failure.message).toContain("--restart")
      }
      // the same settings resume
      const same = yield* run(config, { checkpoint: saved })
      expect(same.checkpoints[0]).toEqual({ mode: "detailed", page: 2 })
    })))

  it.live("a checkpoint at the last page reads nothing", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const pageCount = Math.ceil(sim.catalogue.length / 10)
      const result = yield* run(simConfig(sim, { mode: "list", pageSize: 10 }), {
        checkpoint: Option.some(Batch.position({ mode: "list", page: pageCount }))
      })
      expect(result.batches).toEqual([])
    })))

  it.live("a checkpoint of another mode (even one saved without its settings) is refused", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const failure = yield* Effect.flip(run(simConfig(sim, { mode: "list", pageSize: 10 }), {
        checkpoint: Option.some(Batch.position({ mode: "detailed", page: 2 }))
      }))
      expect(failure._tag).toBe("ConfigError")
      expect(failure.message).toContain("was reading [mode=detailed]")
      expect(sim.requests().total).toBe(0)
    })))

  it.live("id lookups resume after the last id done", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const ids = [9, 8, 7, 6]
      const result = yield* run(simConfig(sim, { ids, idLookup: true }), {
        checkpoint: Option.some(Batch.position({ mode: "detailed", idIndex: 1 }))
      })
      expect(result.records.map((r) => r.imageId)).toEqual(["7", "6"])
      expect(result.checkpoints).toEqual([{ mode: "detailed", idIndex: 2 }, { mode: "detailed", idIndex: 3 }])
    })))
})

describe("channel source: errors", () => {
  it.live("a wrong token fails fast with Unauthorized, one request, no token in the message", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const token = "wrong-token-0123456789"
      const { error, result } = yield* runUntil(simConfig(sim, { token }))
      expect(result.batches).toEqual([])
      const failure = Option.getOrThrow(error)
      expect(failure).toMatchObject({ _tag: "Unauthorized", status: 401, source: "channel" })
      expect(failure.message).toContain("source 'channel'")
      expect(failure.message).toContain("Invalid token.")
      expect(failure.message).not.toContain(token)
      expect(JSON.stringify(failure)).not.toContain(token)
      expect(sim.requests().total).toBe(1)
      expect(result.retries).toBe(0)
    })))

  it.live("a malformed item is a dead letter with its raw payload; the run goes on", () =>
    live(Effect.gen(function*() {
      const bad = { ...wireItem(2), pk: "x" }
      const server = yield* tinyServer((req, res, origin) => {
        const url = new URL(req.url ?? "/", origin)
        if (url.pathname !== "/api/v1/channel/5/product_images/detailed/") return sendJson(res, 404, { detail: "Not found." })
        const page = Number(url.searchParams.get("page") ?? "1")
        if (page === 1) {
          return sendJson(res, 200, {
            count: 4,
            next: `${origin}/api/v1/channel/5/product_images/detailed/?limit=2&page=2`,
            previous: null,
            results: [wireItem(1, { image: "/media/a/one.png", alt: "one" }), bad]
          })
        }
        if (page === 2) {
          return sendJson(res, 200, {
            count: 4,
            next: null,
            previous: `${origin}/api/v1/channel/5/product_images/detailed/?limit=2`,
            results: [wireItem(3, { image: "media/b/three%20x.jpg" }), wireItem(4, { image: "//cdn.example.com/four.png" })]
          })
        }
        return sendJson(res, 404, { detail: "Invalid page." })
      })
      for (const concurrency of [1, 4]) {
        const result = yield* run({ baseUrl: server.url, channelId: 5, token: "t0ken", retry: fastRetry, pageSize: 2, concurrency })
        expect(result.records.map((r) => [r.imageId, r.url, r.filename, r.alt])).toEqual([
          ["1", `${server.url}/media/a/one.png`, "one.png", "one"],
          ["3", `${server.url}/media/b/three%20x.jpg`, "three x.jpg", null],
          ["4", "https://cdn.example.com/four.png", "four.png", null]
        ])
        expect(result.rejected.length).toBe(1)
        expect(result.rejected[0]).toMatchObject({ source: "channel", stage: "source", payload: bad })
        expect(result.rejected[0]!.error).toContain("pk")
        expect(result.checkpoints).toEqual([{ mode: "detailed", page: 1 }, { mode: "detailed", page: 2 }])
      }
      // The token is sent the DRF way.
      expect(server.requests.every((r) => r.authorization === "Token t0ken")).toBe(true)
    })))

  it.live("a page that is not a DRF page fails the run with a DecodeError naming the path", () =>
    live(Effect.gen(function*() {
      const server = yield* tinyServer((_req, res) => sendJson(res, 200, { count: 1, results: "nope" }))
      const error = yield* Effect.flip(run({ baseUrl: server.url, channelId: 5, token: "t0ken", retry: fastRetry }))
      expect(error._tag).toBe("DecodeError")
      expect(error.message).toContain("source 'channel'")
      expect(server.requests.length).toBe(1)
    })))

  for (const concurrency of [1, 4]) {
    it.live(`a next link to another origin is never followed (concurrency ${concurrency})`, () =>
      live(Effect.gen(function*() {
        const elsewhere = yield* tinyServer((_req, res) =>
          sendJson(res, 200, { count: 4, next: null, previous: null, results: [wireItem(3), wireItem(4)] })
        )
        const server = yield* tinyServer((req, res, origin) => {
          const page = new URL(req.url ?? "/", origin).searchParams.get("page") ?? "1"
          if (page === "1") {
            return sendJson(res, 200, {
              count: 4,
              next: `${elsewhere.url}/api/v1/channel/5/product_images/detailed/?limit=2&page=2`,
              previous: null,
              results: [wireItem(1), wireItem(2)]
            })
          }
          return sendJson(res, 200, { count: 4, next: null, previous: null, results: [wireItem(3), wireItem(4)] })
        })
        const { error, result } = yield* runUntil({
          baseUrl: server.url,
          channelId: 5,
          token: "t0ken",
          retry: fastRetry,
          pageSize: 2,
          concurrency
        })
        expect(elsewhere.requests).toEqual([])
        expect(result.records.slice(0, 2).map((r) => r.imageId)).toEqual(["1", "2"])
        if (concurrency === 1) {
          // Following `next` is the only way on: the foreign link stops the run.
          const failure = Option.getOrThrow(error)
          expect(failure._tag).toBe("DecodeError")
          expect(failure.message).toContain(`is not on ${server.url}`)
        } else {
          // Pages are asked for by number on the configured origin; `next` is not used.
          expect(Option.isNone(error)).toBe(true)
          expect(result.records.map((r) => r.imageId)).toEqual(["1", "2", "3", "4"])
        }
      })))
  }
})

describe("channel source: check (dry run)", () => {
  it.live("succeeds against the simulator with one request", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      yield* check(simConfig(sim))
      expect(sim.requests().total).toBe(1)
    })))

  it.live("fails with a clear TransportError against a closed port", () =>
    live(Effect.gen(function*() {
      const port = yield* closedPort
      const error = yield* Effect.flip(check({ baseUrl: `http://127.0.0.1:${port}`, channelId: 5, token: "t0ken", retry: fastRetry }))
      expect(error._tag).toBe("TransportError")
      expect(error.message).toContain("source 'channel'")
      expect(error.message).toContain("connection refused")
      expect(error.message).toContain(`127.0.0.1:${port}`)
      expect(error.message).not.toContain("t0ken")
    })))

  it.live("fails with the API's 404 for a channel that does not exist", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const error = yield* Effect.flip(check(simConfig(sim, { channelId: 6 })))
      expect(error).toMatchObject({ _tag: "ApiError", status: 404 })
      expect(error.message).toContain("Not found.")
    })))

  it.live("fails with Unauthorized for a wrong token", () =>
    live(Effect.gen(function*() {
      const sim = yield* Simulator.make()
      const error = yield* Effect.flip(check(simConfig(sim, { token: "nope-nope-nope" })))
      expect(error._tag).toBe("Unauthorized")
      expect(error.message).not.toContain("nope-nope-nope")
    })))
})

describe("channel source: the wire contract", () => {
  it.live("every filter goes out under the API's parameter name; product_type is repeated", () =>
    live(Effect.gen(function*() {
      const server = yield* tinyServer(drfList([wireItem(1)]))
      yield* run({
        baseUrl: server.url,
        channelId: 9,
        token: "t0ken",
        retry: fastRetry,
        mode: "list",
        pageSize: 25,
        product: 1001,
        productIds: [1001, 1002],
        ids: [1, 2, 3],
        isSellerProduct: false,
        productType: ["simple", "pack"]
      })
      expect(server.requests.length).toBe(1)
      const url = new URL(server.requests[0]!.url, server.url)
      expect(url.pathname).toBe("/api/v1/channel/9/product_images/")
      expect([...url.searchParams].sort()).toEqual([
        ["id__in", "1,2,3"],
        ["is_seller_product", "false"],
        ["limit", "25"],
        ["page", "1"],
        ["product", "1001"],
        ["product__pk__in", "1001,1002"],
        ["product_type", "pack"],
        ["product_type", "simple"]
      ])
      expect(server.requests[0]!.authorization).toBe("Token t0ken")
    })))

  for (const [mode, path] of [
    ["list", "product_images/"],
    ["detailed", "product_images/detailed/"],
    ["inserts", "product_images/inserts/"],
    ["updates", "product_images/updates/"],
    ["inserts_or_updates", "product_images/inserts_or_updates/"]
  ] as const) {
    it.live(`${mode} reads ${path} (with Django's trailing slash)`, () =>
      live(Effect.gen(function*() {
        const server = yield* tinyServer(drfList([wireItem(1)]))
        yield* run({ baseUrl: `${server.url}/`, channelId: 5, token: "t0ken", mode })
        expect(server.requests.map((r) => new URL(r.url, server.url).pathname)).toEqual([`/api/v1/channel/5/${path}`])
      })))
  }

  it.live("an API that caps the page size below pageSize: every image, in parallel or not", () =>
    live(Effect.gen(function*() {
      const items = Array.from({ length: 10 }, (_, i) => wireItem(i + 1))
      const server = yield* tinyServer(drfList(items, { maxPageSize: 3 }))
      const config = { baseUrl: server.url, channelId: 5, token: "t0ken", retry: fastRetry, pageSize: 5 }
      const all = items.map((_, i) => String(i + 1))
      // Following `next` links one page at a time gets everything...
      const sequential = yield* run({ ...config, concurrency: 1 })
      expect(sequential.records.map((r) => r.imageId)).toEqual(all)
      // ...and so do page numbers fetched in parallel: core numbers them by the size the server used.
      const parallel = yield* run({ ...config, concurrency: 4 })
      expect(parallel.records.map((r) => r.imageId)).toEqual(all)
      expect(parallel.checkpoints).toEqual([1, 2, 3, 4].map((page) => ({ mode: "detailed", page })))
    })))
})
