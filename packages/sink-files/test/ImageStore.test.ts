import { describe, expect, layer } from "@effect/vitest"
import { type ProductImage, RunStats } from "@effetl/core"
import { extensionOf, images, manifestColumns, plugins, storePath } from "@effetl/sink-files"
import { parse } from "csv-parse/sync"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as TestServices from "effect/TestServices"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as TestServer from "../../core/test/http/TestServer.js"
import ImagesDefault from "../src/ImageStore.js"
import { lit, query } from "./Duck.js"
import { openSink, record, services, tempDir } from "./support.js"

const info = { productComplete: true }

/** Small byte strings with each format's magic bytes, made distinct by `n`. */
const image = {
  png: (n: number) => bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], n),
  jpg: (n: number) => bytes([0xff, 0xd8, 0xff, 0xe0], n),
  gif: (n: number) => bytes([...Buffer.from("GIF89a")], n),
  webp: (n: number) => bytes([...Buffer.from("RIFF"), 0, 0, 0, 0, ...Buffer.from("WEBPVP8 ")], n),
  avif: (n: number) => bytes([0, 0, 0, 0x1c, ...Buffer.from("ftypavif"), 0, 0, 0, 0, ...Buffer.from("avifmif1miaf")], n),
  heif: (n: number) => bytes([0, 0, 0, 0x18, ...Buffer.from("ftypheic"), 0, 0, 0, 0, ...Buffer.from("mif1heic")], n),
  bin: (n: number) => bytes([...Buffer.from("<html>not an image")], n)
}

function bytes(magic: Array<number>, n: number): Uint8Array {
  return new Uint8Array([...magic, ...Buffer.from(`payload ${n} `.repeat(20))])
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** Every file under `root`, relative, with `/`. */
const tree = (root: string): Array<string> =>
  (fs.readdirSync(root, { recursive: true, encoding: "utf8" }) as Array<string>)
    .filter((p) => fs.statSync(path.join(root, p)).isFile())
    .map((p) => p.split(path.sep).join("/"))
    .sort()

const readManifest = (file: string): Array<Record<string, string>> =>
  parse(fs.readFileSync(file, "utf8"), { columns: true }) as Array<Record<string, string>>

const withBytes = (i: number, b: Uint8Array, over: Partial<ConstructorParameters<typeof ProductImage>[0]> = {}) =>
  record(i, { bytes: b, url: null, ...over })

/** The `warnings` counter of source `shop` (the layer's RunStats is shared by the tests of this file). */
const warnings = Effect.flatMap(RunStats.RunStats, (stats) => stats.snapshot).pipe(
  Effect.map((snapshot) => snapshot.get("shop")?.warnings ?? 0)
)

/** Asserts that every image file in the store is named by the sha256 of its bytes, with the right extension. */
const assertContentAddressed = (dir: string) => {
  // Manifests and their staging (hidden, at the top) are not images.
  const files = tree(dir).filter((f) => !f.startsWith("manifest") && !f.startsWith(".") && !f.endsWith(".csv"))
  for (const f of files) {
    expect(f).toMatch(/^[0-9a-f]{2}\/[0-9a-f]{64}\.(png|jpg|gif|webp|avif|bin)$/)
    const content = fs.readFileSync(path.join(dir, f))
    const hex = sha(content)
    expect(f).toBe(`${hex.slice(0, 2)}/${hex}.${extensionOf(content)}`)
  }
  return files
}

layer(services)("images sink", (it) => {
  describe("plugin", () => {
    it.effect("is exported by name, in plugins and as the module default; config defaults and errors", () =>
      Effect.sync(() => {
        expect(images.name).toBe("images")
        expect(ImagesDefault).toBe(images)
        expect(plugins).toContain(images)
        expect(Schema.decodeUnknownSync(images.config)({ dir: "out/images" })).toEqual({
          dir: "out/images",
          manifest: "csv",
          mode: "auto",
          concurrency: 8,
          maxBytes: 25 * 1024 * 1024,
          timeout: "30 seconds",
          retry: { maxRetries: 5, baseDelay: "250 millis", maxDelay: "30 seconds" }
        })
        for (const raw of [{}, { dir: "" }, { dir: "x", manifest: "xml" }, { dir: "x", concurrency: 0 }, { dir: "x", allowedHosts: ["a/b"] }]) {
          expect(Either.isLeft(Schema.decodeUnknownEither(images.config)(raw)), JSON.stringify(raw)).toBe(true)
        }
      }))

    it.effect("the extension comes from the magic bytes only", () =>
      Effect.sync(() => {
        for (const ext of ["png", "jpg", "gif", "webp", "avif"] as const) expect(extensionOf(image[ext](1))).toBe(ext)
        expect(extensionOf(image.heif(1))).toBe("bin")
        expect(extensionOf(image.bin(1))).toBe("bin")
        expect(extensionOf(new Uint8Array([]))).toBe("bin")
        expect(extensionOf(new Uint8Array([0xff, 0xd8]))).toBe("bin")
        const b = image.png(3)
        expect(storePath(b)).toEqual({ hex: sha(b), path: `${sha(b).slice(0, 2)}/${sha(b)}.png` })
      }))
  })

  describe("the store", () => {
    it.scoped("stores each content once under its sha256 and magic-byte extension; the manifest maps every record", () =>
      Effect.gen(function*() {
        const dir = path.join(tempDir(), "store")
        const shared = image.png(1)
        const rs = [
          withBytes(0, shared, { filename: "front.png" }),
          withBytes(1, image.jpg(1), { filename: "lies.png" }),
          withBytes(2, image.gif(1)),
          withBytes(3, image.webp(1)),
          withBytes(4, image.avif(1)),
          withBytes(5, image.bin(1), { filename: "x.jpg" }),
          withBytes(6, shared, { productId: "other-product", filename: "copy.jpg" })
        ]
        const sink = yield* openSink(images, { dir })
        yield* sink.write(Chunk.fromIterable(rs.slice(0, 4)), info)
        yield* sink.commit
        yield* sink.write(Chunk.fromIterable(rs.slice(4)), info)
        yield* sink.commit
        yield* sink.finish

        const files = assertContentAddressed(dir)
        expect(files).toHaveLength(6) // the shared png once
        expect(files.map((f) => path.extname(f)).sort()).toEqual([".avif", ".bin", ".gif", ".jpg", ".png", ".webp"])
        const manifest = readManifest(path.join(dir, "manifest.csv"))
        expect(Object.keys(manifest[0]!)).toEqual([...manifestColumns])
        expect(manifest).toEqual(rs.map((r) => ({
          source: r.source,
          product_id: r.productId,
          image_id: r.imageId,
          position: String(r.position),
          content_hash: `sha256:${sha(r.bytes!)}`,
          path: storePath(r.bytes!).path,
          error: ""
        })))
        expect(manifest[0]!.path).toBe(manifest[6]!.path)
        for (const m of manifest) expect(fs.readFileSync(path.join(dir, m.path!))).toEqual(Buffer.from(rs[manifest.indexOf(m)]!.bytes!))
      }))

    it.scoped("hostile vendor file names never reach a path: every file created is under dir and named by its hash", () =>
      Effect.gen(function*() {
        const root = tempDir()
        const dir = path.join(root, "store")
        const hostile = [
          "../../etc/passwd.jpg", "/etc/shadow.png", "a/b\\c.png", "..\\..\\win.ini", "CON.jpg", "NUL", "aux.png",
          "x\u0000y.png", "line\nbreak.png", "tab\there.png", "ünïcödé 中文 😀.png", "C:\\Windows\\x.png", ".", "..", ""
        ]
        const rs = hostile.map((filename, i) => withBytes(i, image.png(100 + i), { filename, alt: filename, imageId: filename || "empty" }))
        const sink = yield* openSink(images, { dir })
        yield* sink.write(Chunk.fromIterable(rs), info)
        yield* sink.commit
        yield* sink.finish
        yield* sink.cleanup

        expect(fs.readdirSync(root)).toEqual(["store"])
        const files = assertContentAddressed(dir)
        expect(files).toHaveLength(hostile.length)
        expect(tree(dir)).toEqual([...files, "manifest.csv"].sort())
        const manifest = readManifest(path.join(dir, "manifest.csv"))
        expect(manifest.map((m) => m.image_id)).toEqual(hostile.map((h) => h || "empty"))
        expect(manifest.map((m) => m.path)).toEqual(rs.map((r) => storePath(r.bytes!).path))
      }))

    it.scoped("a sha256 contentHash is checked, never trusted: the file is named by the bytes and the row says so", () =>
      Effect.gen(function*() {
        const dir = path.join(tempDir(), "store")
        const good = image.jpg(7)
        const bad = image.jpg(8)
        const warningsBefore = yield* warnings
        const sink = yield* openSink(images, { dir })
        yield* sink.write(Chunk.fromIterable([
          withBytes(0, good, { contentHash: `sha256:${sha(good)}` }),
          withBytes(1, bad, { contentHash: `sha256:${"0".repeat(64)}` }),
          withBytes(2, bad, { contentHash: "vendor:abc" })
        ]), info)
        yield* sink.commit
        yield* sink.finish
        assertContentAddressed(dir)
        const [m0, m1, m2] = readManifest(path.join(dir, "manifest.csv"))
        expect(m0).toMatchObject({ content_hash: `sha256:${sha(good)}`, path: storePath(good).path, error: "" })
        expect(m1).toMatchObject({ content_hash: `sha256:${sha(bad)}`, path: storePath(bad).path })
        expect(m1!.error).toMatch(/contentHash sha256:0+ is not the sha256 of its bytes/)
        expect(m2).toMatchObject({ content_hash: `sha256:${sha(bad)}`, path: storePath(bad).path, error: "" })
        expect((yield* warnings) - warningsBefore).toBe(1)
      }))

    it.scoped("concurrent writers of the same content never corrupt each other", () =>
      Effect.gen(function*() {
        const dir = path.join(tempDir(), "store")
        const contents = Array.from({ length: 24 }, (_, i) => image.webp(i))
        const a = yield* openSink(images, { dir, manifestPath: path.join(dir, "a.csv"), concurrency: 8 }, { runId: "a" })
        const b = yield* openSink(images, { dir, manifestPath: path.join(dir, "b.csv"), concurrency: 8 }, { runId: "b" })
        const batch = (offset: number) => Chunk.fromIterable(contents.map((c, i) => withBytes(offset + i, c)))
        yield* Effect.all([a.write(batch(0), info), b.write(batch(100), info), a.write(batch(200), info)], { concurrency: "unbounded" })
        yield* Effect.all([a.commit, b.commit], { concurrency: "unbounded" })
        const files = assertContentAddressed(dir).filter((f) => f.endsWith(".webp"))
        expect(files.sort()).toEqual(contents.map((c) => storePath(c).path).sort())
        expect(tree(dir).filter((f) => f.includes(".tmp"))).toEqual([])
      }))
  })

  describe("downloads", () => {
    it.scoped("downloads urls with core's Download (limits, allowed hosts); failures are manifest rows with the error, and the run goes on", () =>
      Effect.gen(function*() {
        const png = image.png(42)
        const jpg = image.jpg(42)
        const server = yield* TestServer.start((req, res) => {
          if (req.url === "/a.png") return res.writeHead(200, { "content-type": "image/png" }).end(png)
          if (req.url === "/b") return res.writeHead(200).end(jpg)
          if (req.url === "/moved") return res.writeHead(302, { location: "/a.png" }).end()
          if (req.url === "/big") return res.writeHead(200).end(Buffer.alloc(5000, 1))
          res.writeHead(404).end("no")
        })
        const dir = path.join(tempDir(), "store")
        const warningsBefore = yield* warnings
        const sink = yield* openSink(images, { dir, maxBytes: 4096, allowedHosts: ["127.0.0.1"], retry: { maxRetries: 0 } })
        const other = server.url.replace("127.0.0.1", "localhost")
        const rs = [
          record(0, { url: `${server.url}/a.png`, filename: "../../a.jpg" }),
          record(1, { url: `${server.url}/b` }),
          record(2, { url: `${server.url}/moved` }),
          record(3, { url: `${server.url}/missing` }),
          record(4, { url: `${server.url}/big` }),
          record(5, { url: `${other}/a.png` }),
          record(6, { url: null }),
          record(7, { url: "file:///etc/passwd" })
        ]
        yield* sink.write(Chunk.fromIterable(rs), info)
        yield* sink.commit
        yield* sink.finish

        const files = assertContentAddressed(dir)
        expect(files.sort()).toEqual([storePath(png).path, storePath(jpg).path].sort())
        const manifest = readManifest(path.join(dir, "manifest.csv"))
        expect(manifest.map((m) => m.image_id)).toEqual(rs.map((r) => r.imageId))
        expect(manifest.map((m) => m.path)).toEqual([storePath(png).path, storePath(jpg).path, storePath(png).path, "", "", "", "", ""])
        expect(manifest.slice(0, 3).map((m) => m.error)).toEqual(["", "", ""])
        expect(manifest[3]!.error).toMatch(/download failed: .*404/)
        expect(manifest[4]!.error).toMatch(/download failed: .*larger than the 4 KiB cap/)
        expect(manifest[5]!.error).toMatch(/download failed: .*allowedHosts/)
        expect(manifest[6]!.error).toBe("the record has neither bytes nor a url")
        expect(manifest[7]!.error).toMatch(/download failed: .*refused/)
        for (const m of manifest.slice(3)) expect(m.content_hash).toBe("")
        expect((yield* warnings) - warningsBefore).toBe(5)
        // The refused and blocked URLs were never requested.
        expect(server.requests.map((r) => r.url).sort()).toEqual(["/a.png", "/a.png", "/b", "/big", "/missing", "/moved"])
      }).pipe(TestServices.provideLive))
  })

  describe("the manifest follows the commit protocol", () => {
    it.scoped("csv, overwrite: kill and resume lose and duplicate no manifest row; images of uncommitted records are harmless", () =>
      Effect.gen(function*() {
        const dir = path.join(tempDir(), "store")
        const rs = Array.from({ length: 30 }, (_, i) => withBytes(i, image.gif(i % 25)))
        const first = yield* openSink(images, { dir })
        yield* first.write(Chunk.fromIterable(rs.slice(0, 10)), info)
        const saved = yield* first.commit
        yield* first.write(Chunk.fromIterable(rs.slice(10, 20)), info)
        yield* first.commit // not saved
        yield* first.write(Chunk.fromIterable(rs.slice(20, 22)), info) // uncommitted
        expect(fs.existsSync(path.join(dir, "manifest.csv"))).toBe(false)

        const second = yield* openSink(images, { dir }, { committed: saved })
        yield* second.write(Chunk.fromIterable(rs.slice(10, 20)), info)
        yield* second.commit
        yield* second.write(Chunk.fromIterable(rs.slice(20)), info)
        const last = yield* second.commit
        yield* second.finish
        const manifest = readManifest(path.join(dir, "manifest.csv"))
        expect(manifest.map((m) => m.image_id)).toEqual(rs.map((r) => r.imageId))
        expect(manifest.map((m) => m.path)).toEqual(rs.map((r) => storePath(r.bytes!).path))
        expect(assertContentAddressed(dir)).toHaveLength(25)

        const third = yield* openSink(images, { dir }, { committed: last })
        yield* third.finish
        yield* third.cleanup
        expect(readManifest(path.join(dir, "manifest.csv"))).toEqual(manifest)
        expect(fs.readdirSync(dir).filter((n) => n.startsWith("."))).toEqual([])
      }))

    it.scoped("parquet, overwrite and append: typed manifest rows read back by DuckDB; resume is exact", () =>
      Effect.gen(function*() {
        const root = tempDir()
        const rs = Array.from({ length: 12 }, (_, i) => withBytes(i, image.avif(i)))
        rs.push(record(12, { url: null }))
        for (const mode of ["overwrite", "append"] as const) {
          const dir = path.join(root, mode)
          const config = { dir, manifest: "parquet", mode }
          const first = yield* openSink(images, config)
          yield* first.write(Chunk.fromIterable(rs.slice(0, 5)), info)
          const saved = yield* first.commit
          yield* first.write(Chunk.fromIterable(rs.slice(5, 9)), info)
          yield* first.commit // not saved
          const second = yield* openSink(images, config, { committed: saved })
          yield* second.write(Chunk.fromIterable(rs.slice(5)), info)
          yield* second.commit
          yield* second.finish

          const glob = mode === "overwrite" ? path.join(dir, "manifest.parquet") : path.join(dir, "manifest", "*.parquet")
          if (mode === "append") expect(fs.readdirSync(path.join(dir, "manifest")).sort()).toEqual(["part-run1-00001.parquet", "part-run1-00002.parquet"])
          const types = yield* query(`DESCRIBE SELECT * FROM read_parquet(${lit(glob)})`)
          expect(types.map((t) => `${t.column_name} ${t.column_type}`)).toEqual(
            manifestColumns.map((c) => `${c} ${c === "position" ? "INTEGER" : "VARCHAR"}`)
          )
          const rows = yield* query(
            `SELECT * EXCLUDE (file_path, file_row_number) FROM read_parquet(${lit(glob)}, filename = 'file_path', file_row_number = true) ORDER BY file_path, file_row_number`
          )
          expect(rows).toEqual(rs.map((r) => ({
            source: r.source,
            product_id: r.productId,
            image_id: r.imageId,
            position: r.position,
            content_hash: r.bytes ? `sha256:${sha(r.bytes)}` : null,
            path: r.bytes ? storePath(r.bytes).path : null,
            error: r.bytes ? null : "the record has neither bytes nor a url"
          })))
        }
      }))
  })
})
