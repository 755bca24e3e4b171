import { createHash } from "node:crypto"
import * as net from "node:net"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as UndiciClient from "../../src/http/UndiciClient.js"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Batch from "../../src/Batch.js"
import { ProductImage } from "../../src/ProductImage.js"
import * as RunStats from "../../src/RunStats.js"
import type { TransformInstance } from "../../src/Transform.js"
import { HashContent, sha256 } from "../../src/transforms/HashContent.js"
import { captureLogs, type Logged, start } from "../http/TestServer.js"

const env = <A, E>(body: Effect.Effect<A, E, HttpClient.HttpClient | RunStats.RunStats | Scope.Scope>) => {
  const logs: Array<Logged> = []
  return body.pipe(
    Effect.scoped,
    Effect.provide(UndiciClient.layer),
    Effect.provide(RunStats.layer),
    Effect.provide(captureLogs(logs))
  )
}

/** Makes the transform from a config as written in a pipeline file (defaults applied by the schema). */
const make = (config: Record<string, unknown> = {}) =>
  Effect.flatMap(
    Effect.sync(() => Schema.decodeUnknownSync(HashContent.config)(config)),
    (decoded) => HashContent.make(decoded, { key: "0:hash-content", state: Option.none() })
  ) as Effect.Effect<TransformInstance, never, HttpClient.HttpClient | RunStats.RunStats | Scope.Scope>

const record = (imageId: string, fields: Partial<ConstructorParameters<typeof ProductImage>[0]> = {}) =>
  ProductImage.unchecked({
    source: "shop",
    productId: "p1",
    imageId,
    position: Number(imageId.replace(/\D/g, "") || "0"),
    url: null,
    filename: null,
    width: null,
    height: null,
    alt: null,
    contentHash: null,
    createdAt: null,
    updatedAt: null,
    extra: {},
    ...fields
  })

const sha = (bytes: Uint8Array | string) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`

const image = (n: number) => Buffer.from(`image-bytes-${n}-`.repeat(50 + n))

const checkpoint = Option.some(Batch.position({ page: 7 }))

/** Counts the rejected records (with their reasons) and the records of a batch. */
const apply = (transform: TransformInstance, records: ReadonlyArray<ProductImage>) =>
  transform.apply(Batch.make(records, checkpoint)).pipe(
    Effect.map((out) => ({
      out,
      records: Chunk.toReadonlyArray(out.records),
      rejected: Chunk.toReadonlyArray(out.rejected)
    }))
  ) as Effect.Effect<
    { out: Batch.Batch; records: ReadonlyArray<ProductImage>; rejected: ReadonlyArray<Batch.DeadLetter> },
    never,
    RunStats.RunStats
  >

describe("hash-content", () => {
  it.live("hashes downloaded images, hashes given bytes without a request, and passes records with neither", () =>
    env(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        const n = Number(req.url!.replace(/\D/g, ""))
        res.writeHead(200, { "content-type": "image/png" })
        res.end(image(n))
      })
      const transform = yield* make()
      const given = new Uint8Array([9, 8, 7])
      const { out, records, rejected } = yield* apply(transform, [
        record("i1", { url: `${server.url}/img/1.png` }),
        record("i2", { url: `${server.url}/img/2.png` }),
        record("i3", { bytes: given, url: `${server.url}/img/3.png` }),
        record("i4")
      ])
      expect(rejected).toEqual([])
      expect(records.map((r) => [r.imageId, r.contentHash])).toEqual([
        ["i1", sha(image(1))],
        ["i2", sha(image(2))],
        ["i3", sha(given)],
        ["i4", null]
      ])
      // Bytes are not kept unless asked; bytes that came with the record stay.
      expect(records[0]!.bytes).toBeUndefined()
      expect(records[2]!.bytes).toBe(given)
      expect(server.requests.map((r) => r.url).sort()).toEqual(["/img/1.png", "/img/2.png"])
      expect(out.checkpoint).toEqual(checkpoint)
    })))

  it.live("keeps the batch's order when inline bytes, downloads, failed downloads and records with neither are mixed", () =>
    env(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        if (req.url!.includes("missing")) {
          res.writeHead(404, { "content-type": "text/plain" })
          return res.end("no such image")
        }
        res.end(image(Number(req.url!.replace(/\D/g, ""))))
      })
      const transform = yield* make({ retry: { maxRetries: 0 } })
      const inline = Array.from({ length: 300 }, (_, i) => Buffer.from(`inline-${i}`))
      const input: Array<ProductImage> = []
      for (let i = 0; i < 300; i++) {
        if (i % 50 === 7) input.push(record(`d${i}`, { url: `${server.url}/img/${i}.png` }))
        else if (i % 50 === 8) input.push(record(`m${i}`, { url: `${server.url}/missing/${i}.png` }))
        else if (i % 50 === 9) input.push(record(`n${i}`))
        else input.push(record(`b${i}`, { bytes: inline[i]! }))
      }
      const earlier = { source: "shop", stage: "source", error: "undecodable item", payload: 1 }
      const out = yield* (transform.apply(Batch.make(input, checkpoint, [earlier])) as Effect.Effect<Batch.Batch, never, RunStats.RunStats>)
      const records = Chunk.toReadonlyArray(out.records)
      const rejected = Chunk.toReadonlyArray(out.rejected)
      const failed = input.filter((r) => r.imageId.startsWith("m"))
      expect(records.map((r) => r.imageId)).toEqual(input.filter((r) => !failed.includes(r)).map((r) => r.imageId))
      for (const r of records) {
        const i = Number(r.imageId.slice(1))
        if (r.imageId.startsWith("b")) expect(r.contentHash).toBe(sha(inline[i]!))
        if (r.imageId.startsWith("d")) expect(r.contentHash).toBe(sha(image(i)))
        if (r.imageId.startsWith("n")) expect(r.contentHash).toBeNull()
      }
      // dead letters after the batch's earlier ones, in the batch's order, each with its record
      expect(rejected[0]).toEqual(earlier)
      expect(rejected.slice(1).map((d) => [d.stage, d.record])).toEqual(failed.map((r) => ["hash-content", r]))
      expect(rejected[1]!.error).toContain("404")
      expect(out.checkpoint).toEqual(checkpoint)
      // only the URLs without bytes were requested
      expect(server.requests.length).toBe(12)
    })))

  it.live("hashes a batch of inline images without any request, leaving the input records as they were", () =>
    env(Effect.gen(function*() {
      const transform = yield* make()
      const input = Array.from({ length: 1000 }, (_, i) => record(`i${i}`, { bytes: Buffer.from(`bytes-${i % 10}`) }))
      const { records, rejected, out } = yield* apply(transform, input)
      expect(rejected).toEqual([])
      expect(records.map((r) => r.contentHash)).toEqual(input.map((r) => sha(Buffer.from(`bytes-${Number(r.imageId.slice(1)) % 10}`))))
      expect(input.every((r) => r.contentHash === null)).toBe(true)
      expect(out.checkpoint).toEqual(checkpoint)
      // the same sha256 as node:crypto's Hash object
      expect(sha256(new Uint8Array([1, 2, 3]))).toBe(sha(new Uint8Array([1, 2, 3])))
    })))

  it.live("keeps the downloaded bytes when keepBytes is set", () =>
    env(Effect.gen(function*() {
      const server = yield* start((_req, res) => res.end(image(5)))
      const transform = yield* make({ keepBytes: true })
      const { records } = yield* apply(transform, [record("i1", { url: `${server.url}/a.png` })])
      expect(Buffer.from(records[0]!.bytes!).equals(image(5))).toBe(true)
      expect(records[0]!.contentHash).toBe(sha(image(5)))
    })))

  it.live("fetches a protocol-relative URL over https", () =>
    env(Effect.gen(function*() {
      // A raw TCP listener: an https client opens with a TLS ClientHello (first byte 0x16).
      const firstBytes: Array<number> = []
      const tcp = net.createServer((socket) => {
        socket.once("data", (data) => {
          firstBytes.push(data[0]!)
          socket.destroy()
        })
      })
      const port = yield* Effect.promise(
        () => new Promise<number>((resolve) => tcp.listen(0, "127.0.0.1", () => resolve((tcp.address() as net.AddressInfo).port)))
      )
      yield* Effect.addFinalizer(() => Effect.promise(() => new Promise<void>((resolve) => tcp.close(() => resolve()))))
      const transform = yield* make({ retry: { maxRetries: 0 } })
      const { records, rejected } = yield* apply(transform, [record("i1", { url: `//127.0.0.1:${port}/a.png` })])
      expect(firstBytes).toEqual([0x16])
      expect(records).toEqual([])
      expect(rejected.length).toBe(1)
      expect(rejected[0]!.error).toContain(`GET https://127.0.0.1:${port}/a.png did not complete`)
    })))

  it.live("moves refused URLs to dead letters with the reason, without any request", () =>
    env(Effect.gen(function*() {
      const server = yield* start((_req, res) => res.end("x"))
      const transform = yield* make()
      const urls = ["file:///etc/passwd", "data:image/png;base64,AAAA", "javascript:alert(1)", "images/a.png"]
      const { records, rejected } = yield* apply(transform, [
        ...urls.map((url, i) => record(`i${i}`, { url })),
        record("ok", { bytes: new Uint8Array([1]) })
      ])
      expect(records.map((r) => r.imageId)).toEqual(["ok"])
      expect(rejected.map((d) => [d.stage, d.source, d.record?.imageId])).toEqual(
        urls.map((_, i) => ["hash-content", "shop", `i${i}`])
      )
      expect(rejected[0]!.error).toBe(
        `source 'shop': refused to fetch the image URL "file:///etc/passwd": only http: and https: URLs are fetched, not file:`
      )
      expect(rejected[3]!.error).toContain("is not an absolute http(s) URL")
      expect(server.requests.length).toBe(0)
    })))

  it.live("allowedHosts: an image on another host is a dead letter, and nothing is fetched from it", () =>
    env(Effect.gen(function*() {
      const server = yield* start((_req, res) => res.end("png"))
      const transform = yield* make({ allowedHosts: ["127.0.0.1"] })
      const { records, rejected } = yield* apply(transform, [
        record("here", { url: `${server.url}/a.png` }),
        record("there", { url: "http://cdn.other.example/b.png" })
      ])
      expect(records.map((r) => [r.imageId, r.contentHash?.startsWith("sha256:")])).toEqual([["here", true]])
      expect(rejected.map((d) => [d.record?.imageId, d.error])).toEqual([
        ["there", `source 'shop': refused to fetch the image URL "http://cdn.other.example/b.png": cdn.other.example is not in allowedHosts`]
      ])
      expect(server.requests.length).toBe(1)
    })))

  it.live("an image over maxBytes is a dead letter that names the cap", () =>
    env(Effect.gen(function*() {
      const server = yield* start((req, res) => res.end(req.url === "/big.png" ? Buffer.alloc(4096, 1) : image(1)))
      const transform = yield* make({ maxBytes: 2048 })
      const { records, rejected } = yield* apply(transform, [
        record("i1", { url: `${server.url}/big.png` }),
        record("i2", { url: `${server.url}/small.png` })
      ])
      expect(records.map((r) => r.imageId)).toEqual(["i2"])
      expect(rejected.length).toBe(1)
      expect(rejected[0]!.error).toContain("is larger than the 2 KiB cap")
      expect(rejected[0]!.record?.contentHash).toBeNull()
    })))

  it.live("a persistent 500 is a dead letter after the retries, and the run goes on", () =>
    env(Effect.gen(function*() {
      const server = yield* start((req, res) => {
        if (req.url === "/broken.png") {
          res.writeHead(500, { "content-type": "application/json" })
          return res.end(JSON.stringify({ message: "storage down" }))
        }
        res.end(image(2))
      })
      const transform = yield* make({ retry: { maxRetries: 2, baseDelay: "1 millis", maxDelay: "5 millis" } })
      const { records, rejected } = yield* apply(transform, [
        record("i1", { url: `${server.url}/broken.png` }),
        record("i2", { url: `${server.url}/fine.png` })
      ])
      expect(server.requests.filter((r) => r.url === "/broken.png").length).toBe(3)
      expect(records.map((r) => [r.imageId, r.contentHash])).toEqual([["i2", sha(image(2))]])
      expect(rejected[0]!.error).toBe(
        `source 'shop': the API failed on GET ${server.url}/broken.png (HTTP 500: storage down) (gave up after 2 retries)`
      )
      const stats = yield* RunStats.RunStats
      expect((yield* stats.snapshot).get("shop")?.retries).toBe(2)
    })))

  it.live("never has more than `concurrency` downloads in flight, across batches", () =>
    env(Effect.gen(function*() {
      // Each response is held until three requests are waiting (or 40 ms passed), so a client
      // that allowed more than three at once would show it.
      const held: Array<() => void> = []
      const server = yield* start((req, res) => {
        const n = Number(req.url!.replace(/\D/g, ""))
        const release = () => res.end(image(n))
        held.push(release)
        const flush = () => held.splice(0).forEach((f) => f())
        if (held.length >= 3) flush()
        else setTimeout(() => held.includes(release) && held.splice(held.indexOf(release), 1) && release(), 40)
      })
      const transform = yield* make({ concurrency: 3 })
      const batch = (from: number) =>
        Array.from({ length: 8 }, (_, i) => record(`i${from + i}`, { url: `${server.url}/img/${from + i}.png` }))
      const results = yield* Effect.all([apply(transform, batch(0)), apply(transform, batch(8))], {
        concurrency: "unbounded"
      })
      expect(server.requests.length).toBe(16)
      expect(server.load.maxInFlight).toBe(3)
      const all = results.flatMap((r) => r.records)
      expect(all.map((r) => r.contentHash)).toEqual(Array.from({ length: 16 }, (_, i) => sha(image(i))))
    })))

  it("documents its config with defaults", () => {
    const decoded = Schema.decodeUnknownSync(HashContent.config)({})
    expect(decoded).toEqual({
      concurrency: 8,
      maxBytes: 25 * 1024 * 1024,
      timeout: "30 seconds",
      retry: { maxRetries: 5, baseDelay: "250 millis", maxDelay: "30 seconds" },
      keepBytes: false
    })
    expect(() => Schema.decodeUnknownSync(HashContent.config)({ timeout: "soon" })).toThrow(/expected a duration like/)
    expect(HashContent.name).toBe("hash-content")
    expect(HashContent.productScoped).toBe(false)
  })
})
