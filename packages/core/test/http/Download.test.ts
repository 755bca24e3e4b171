import type * as HttpClient from "@effect/platform/HttpClient"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Layer from "effect/Layer"
import * as zlib from "node:zlib"
import type * as Scope from "effect/Scope"
import * as Download from "../../src/http/Download.js"
import * as SafeUrl from "../../src/http/SafeUrl.js"
import * as UndiciClient from "../../src/http/UndiciClient.js"
import { captureLogs, drive, type Logged, start, waitFor } from "./TestServer.js"

/** The runner's client, and the platform's own undici layer: downloads behave the same over both. */
const clients = [
  ["UndiciClient", UndiciClient.layer],
  ["NodeHttpClient.layerUndici", NodeHttpClient.layerUndici]
] as const

const envWith = (layer: Layer.Layer<HttpClient.HttpClient>) =>
<A, E>(body: (logs: Array<Logged>) => Effect.Effect<A, E, HttpClient.HttpClient | Scope.Scope>) => {
  const logs: Array<Logged> = []
  return body(logs).pipe(Effect.scoped, Effect.provide(layer), Effect.provide(captureLogs(logs)))
}

const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4])

describe.each(clients)("Download (over %s)", (_name, layer) => {
  const withEnv = envWith(layer)

  it.effect("fetches the bytes, follows redirects, and retries 5xx with the shared schedule", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        let failures = 1
        const server = yield* start((req, res) => {
          if (req.url === "/old.png") {
            res.writeHead(301, { location: "/img.png" })
            return res.end()
          }
          if (failures > 0) {
            failures -= 1
            res.writeHead(503)
            return res.end("busy")
          }
          res.writeHead(200, { "content-type": "image/png" })
          res.end(png)
        })
        const downloader = yield* Download.make({ source: "shop" })
        const { exit, delays } = yield* drive(downloader.fetch(`${server.url}/old.png`), logs)
        expect(exit._tag).toBe("Success")
        expect(exit._tag === "Success" && Buffer.from(exit.value).equals(png)).toBe(true)
        expect(delays.length).toBe(1)
        // redirects are followed hop by hop: the retry repeats only the hop that failed
        expect(server.requests.map((r) => r.url)).toEqual(["/old.png", "/img.png", "/img.png"])
        expect(server.requests[1]!.headers["accept"]).toContain("image/*")
      })
    ))

  it.effect("stops reading as soon as the cap is passed, and says the cap", () =>
    withEnv(() =>
      Effect.gen(function*() {
        let finished = false
        const server = yield* start((_req, res) => {
          res.writeHead(200, { "content-type": "image/jpeg" })
          let sent = 0
          const tick = setInterval(() => {
            if (res.destroyed) return clearInterval(tick)
            res.write(Buffer.alloc(4096, 1))
            if (++sent === 300) {
              clearInterval(tick)
              finished = true
              res.end()
            }
          }, 3)
        })
        const downloader = yield* Download.make({ source: "shop", maxBytes: 10 * 1024 })
        const error = yield* Effect.flip(downloader.fetch(`${server.url}/huge.jpg`))
        expect(error._tag).toBe("ApiError")
        expect(error.message).toMatch(
          /^source 'shop': the response to GET http:\/\/127\.0\.0\.1:\d+\/huge\.jpg is larger than the 10 KiB cap \(stopped reading after \d+ bytes\)$/
        )
        yield* waitFor(() => server.load.inFlight === 0, "the abort")
        expect(finished).toBe(false)
        expect(server.requests.length).toBe(1)
      })
    ))

  it.effect("refuses a declared Content-Length over the cap without reading", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => {
          res.writeHead(200, { "content-length": 5000 })
          res.end(Buffer.alloc(5000))
        })
        const downloader = yield* Download.make({ source: "s", maxBytes: 100 })
        const error = yield* Effect.flip(downloader.fetch(`${server.url}/x`, { source: "other" }))
        expect(error.message).toContain("source 'other': ")
        expect(error.message).toContain("larger than the 100 bytes cap (Content-Length 5000)")
      })
    ))

  it.effect("refuses URLs that are not http(s), relative, or carry credentials, before any request", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((_req, res) => res.end("x"))
        const downloader = yield* Download.make({ source: "s" })
        const host = server.url.slice("http://".length)
        const cases: ReadonlyArray<[string, string]> = [
          ["file:///etc/passwd", "only http: and https: URLs are fetched, not file:"],
          ["data:image/png;base64,AAAA", "only http: and https: URLs are fetched, not data:"],
          ["javascript:alert(1)", "only http: and https: URLs are fetched, not javascript:"],
          ["ftp://ftp.example.com/a.png", "only http: and https: URLs are fetched, not ftp:"],
          ["JavaScript:alert(1)", "only http: and https: URLs are fetched, not javascript:"],
          [" \tfile:///etc/passwd", "only http: and https: URLs are fetched, not file:"],
          ["/media/a.png", "is not an absolute http(s) URL"],
          ["../a.png", "is not an absolute http(s) URL"],
          [`http://user:pw@${host}/a.png`, "URLs with credentials in them are refused"],
          ["", "the URL is empty"]
        ]
        for (const [url, reason] of cases) {
          const error = yield* Effect.flip(downloader.fetch(url))
          expect(error._tag).toBe("DecodeError")
          expect(error.message).toContain(reason)
          expect(error.message).not.toContain(":pw@")
        }
        expect(server.requests.length).toBe(0)
      })
    ))

  it("turns protocol-relative URLs into https", () => {
    expect(Either.map(SafeUrl.fetchable("//cdn.example.com/a.png"), (u) => u.href)).toEqual(
      Either.right("https://cdn.example.com/a.png")
    )
    expect(Either.map(SafeUrl.fetchable("  HTTP://Cdn.Example.com/a b.png "), (u) => u.href)).toEqual(
      Either.right("http://cdn.example.com/a%20b.png")
    )
  })

  it("checks a URL already parsed as it checks its text, and hands the same URL back", () => {
    const url = new URL("https://cdn.example.com/a.png")
    const checked = SafeUrl.fetchable(url)
    expect(Either.isRight(checked) && checked.right).toBe(url)
    for (const [text, reason] of [
      ["file:///etc/passwd", "only http: and https: URLs are fetched, not file:"],
      ["ftp://cdn.example.com/a.png", "only http: and https: URLs are fetched, not ftp:"],
      ["https://user:pw@cdn.example.com/a.png", "URLs with credentials in them are refused"]
    ] as const) {
      expect(Either.getLeft(SafeUrl.fetchable(new URL(text))).pipe(Option.map((r) => r.reason))).toEqual(Option.some(reason))
      expect(Either.getLeft(SafeUrl.fetchable(text)).pipe(Option.map((r) => r.reason))).toEqual(Option.some(reason))
    }
  })
})

describe.each(clients)("Download: Content-Encoding (over %s)", (_name, layer) => {
  const withEnv = envWith(layer)

  it.effect("a gzip, deflate or br encoded image is decoded: the bytes stored and hashed are the image's", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const image = Buffer.concat([png, Buffer.alloc(5000, 7)])
        const server = yield* start((req, res) => {
          const coding = req.url!.slice(1)
          const body = coding === "gzip" || coding === "x-gzip"
            ? zlib.gzipSync(image)
            : coding === "deflate"
            ? zlib.deflateSync(image)
            : coding === "raw-deflate"
            ? zlib.deflateRawSync(image)
            : coding === "br"
            ? zlib.brotliCompressSync(image)
            : zlib.brotliCompressSync(zlib.gzipSync(image))
          const header = coding === "raw-deflate" ? "deflate" : coding === "gzip-br" ? "gzip, br" : coding
          res.writeHead(200, { "content-type": "image/png", "content-encoding": header, "content-length": body.length })
          res.end(body)
        })
        const downloader = yield* Download.make({ source: "s" })
        for (const coding of ["gzip", "x-gzip", "deflate", "raw-deflate", "br", "gzip-br"]) {
          const bytes = yield* downloader.fetch(`${server.url}/${coding}`)
          expect(Buffer.from(bytes).equals(image), coding).toBe(true)
        }
      })
    ))

  it.effect("a gzip bomb is refused once the decoded bytes pass the cap (decoding stops there), and says so", () =>
    withEnv(() =>
      Effect.gen(function*() {
        // 16 MiB of zeros in about 16 KiB of gzip.
        const bomb = zlib.gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 })
        expect(bomb.length).toBeLessThan(64 * 1024)
        const server = yield* start((_req, res) => {
          res.writeHead(200, { "content-type": "image/png", "content-encoding": "gzip", "content-length": bomb.length })
          res.end(bomb)
        })
        const downloader = yield* Download.make({ source: "s", maxBytes: 1024 * 1024 })
        const error = yield* Effect.flip(downloader.fetch(`${server.url}/bomb.png`))
        expect(error._tag).toBe("ApiError")
        expect(error.message).toBe(
          `source 's': the response to GET ${server.url}/bomb.png is larger than the 1 MiB cap once decoded (Content-Encoding: gzip; decoding stopped at the cap)`
        )
        expect(server.requests.length).toBe(1)
      })
    ))

  it.effect("corrupt or cut gzip data is retried like a cut body, then a DecodeError; an unknown coding is refused", () =>
    withEnv((logs) =>
      Effect.gen(function*() {
        const whole = zlib.gzipSync(Buffer.concat([png, Buffer.alloc(3000, 1)]))
        const cut = whole.subarray(0, whole.length - 20)
        const server = yield* start((req, res) => {
          const body = req.url === "/zstd.png" ? whole : cut
          res.writeHead(200, { "content-encoding": req.url === "/zstd.png" ? "zstd" : "gzip", "content-length": body.length })
          res.end(body)
        })
        const downloader = yield* Download.make({ source: "s", retry: { maxRetries: 2 } })
        const { exit } = yield* drive(downloader.fetch(`${server.url}/cut.png`), logs)
        expect(server.requests.length).toBe(3)
        expect(exit._tag === "Failure" && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("DecodeError")
        expect(exit._tag === "Failure" && exit.cause._tag === "Fail" && exit.cause.error.message).toMatch(
          /the gzip-encoded response to GET .*\/cut\.png could not be decoded \(unexpected end of file\) \(gave up after 2 retries\)$/
        )
        const zstd = yield* Effect.flip(downloader.fetch(`${server.url}/zstd.png`))
        expect(zstd.message).toContain("is sent with Content-Encoding: zstd, which effetl does not decode")
        expect(server.requests.length).toBe(4)
      })
    ))
})

describe.each(clients)("Download: every redirect hop is checked (over %s)", (_name, layer) => {
  const withEnv = envWith(layer)

  it.effect("a redirect to data:, javascript:, ftp: or file: is refused without following it", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const targets: Record<string, string> = {
          "/to-data": "data:image/png;base64,iVBORw0KGgo=",
          "/to-js": "javascript:alert(document.cookie)",
          "/to-ftp": "ftp://ftp.example.com/pub/a.png",
          "/to-file": "file:///etc/shadow",
          "/to-file-host": "file://localhost/etc/passwd"
        }
        const server = yield* start((req, res) => {
          res.writeHead(302, { location: targets[req.url!]! })
          res.end()
        })
        const downloader = yield* Download.make({ source: "shop" })
        for (const [from, to] of Object.entries(targets)) {
          const scheme = to.slice(0, to.indexOf(":") + 1)
          const error = yield* Effect.flip(downloader.fetch(`${server.url}${from}`))
          expect(error._tag).toBe("DecodeError")
          expect(error.message).toContain(`only http: and https: URLs are fetched, not ${scheme}`)
          expect(error.message).toContain(`(redirected from ${server.url}${from})`)
          expect(error.message).not.toContain("\n")
        }
        expect(server.requests.length).toBe(Object.keys(targets).length)
      })
    ))


  it.effect("allowedHosts: other hosts are refused before any request, on the first URL and on redirects", () =>
    withEnv(() =>
      Effect.gen(function*() {
        const server = yield* start((req, res) => {
          if (req.url === "/to-metadata") {
            res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" })
            return res.end()
          }
          if (req.url === "/to-file") {
            res.writeHead(302, { location: "file:///etc/passwd" })
            return res.end()
          }
          if (req.url === "/loop") {
            res.writeHead(307, { location: "/loop" })
            return res.end()
          }
          res.writeHead(200, { "content-type": "image/png" })
          res.end(png)
        })
        const allowed = yield* Download.make({ source: "shop", allowedHosts: ["127.0.0.1"] })
        const ok = yield* allowed.fetch(`${server.url}/img.png`)
        expect(Buffer.from(ok).equals(png)).toBe(true)

        const elsewhere = yield* Effect.flip(allowed.fetch("http://cdn.elsewhere.example/a.png"))
        expect(elsewhere._tag).toBe("DecodeError")
        expect(elsewhere.message).toContain("cdn.elsewhere.example is not in allowedHosts")

        const before = server.requests.length
        const metadata = yield* Effect.flip(allowed.fetch(`${server.url}/to-metadata`))
        expect(metadata.message).toContain("169.254.169.254 is not in allowedHosts")
        expect(metadata.message).toContain(`(redirected from ${server.url}/to-metadata)`)
        expect(server.requests.length).toBe(before + 1) // the redirect target was never asked

        const any = yield* Download.make({ source: "shop" })
        const file = yield* Effect.flip(any.fetch(`${server.url}/to-file`))
        expect(file._tag).toBe("DecodeError")
        expect(file.message).toContain(`refused to fetch the image URL "file:///etc/passwd": only http: and https: URLs are fetched`)

        const loop = yield* Effect.flip(any.fetch(`${server.url}/loop`))
        expect(loop._tag).toBe("ApiError")
        expect(loop.message).toContain(`redirected more than ${Download.maxRedirects} times`)
      })
    ))

  it("matches exact hosts and *.suffix patterns, case-insensitively", () => {
    expect(Download.hostAllowed("cdn.example.com", ["cdn.example.com"])).toBe(true)
    expect(Download.hostAllowed("CDN.Example.com", ["cdn.example.com"])).toBe(true)
    expect(Download.hostAllowed("a.b.example.com", ["*.example.com"])).toBe(true)
    expect(Download.hostAllowed("example.com", ["*.example.com"])).toBe(false)
    expect(Download.hostAllowed("evilexample.com", ["*.example.com"])).toBe(false)
    expect(Download.hostAllowed("example.com.evil.net", ["example.com"])).toBe(false)
  })
})

describe("SafeUrl", () => {
  it("joins paths to the base path and sets params", () => {
    const base = new URL("https://omni.example/api/v1/channel/5")
    expect(Either.map(SafeUrl.resolve(base, "/product_images/detailed/", { page: 2, id__in: "1,2" }), (u) => u.href))
      .toEqual(Either.right("https://omni.example/api/v1/channel/5/product_images/detailed/?page=2&id__in=1%2C2"))
    expect(Either.map(SafeUrl.resolve(base, "products/1/images?x=1", { tag: ["a", "b"] }), (u) => u.href))
      .toEqual(Either.right("https://omni.example/api/v1/channel/5/products/1/images?x=1&tag=a&tag=b"))
    // an empty path is the base itself, trailing slash kept
    expect(Either.map(SafeUrl.resolve(new URL("https://h.example/api/items/"), "", { page: 1 }), (u) => u.href))
      .toEqual(Either.right("https://h.example/api/items/?page=1"))
    expect(Either.map(SafeUrl.resolve(new URL("https://h.example/api/items"), ""), (u) => u.href))
      .toEqual(Either.right("https://h.example/api/items"))
    expect(Either.isLeft(SafeUrl.resolve(base, "//other.example/x"))).toBe(true)
    expect(Either.isLeft(SafeUrl.resolve(base, "http://omni.example/x"))).toBe(true) // other scheme = other origin
  })

  it("prints URLs without credentials or secret params", () => {
    expect(SafeUrl.printable("https://u:p@h.example/x?access_token=abc&page=2#frag")).toBe(
      "https://h.example/x?access_token=***&page=2"
    )
  })
})
