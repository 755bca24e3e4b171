// The hand-written anchors of `npm run bench`: the same work as an effetl case, written as a plain
// Node loop with the same libraries (undici, the HTTP client effetl uses through
// @effect/platform-node's NodeHttpClient.layerUndici; node:crypto; csv-stringify, the csv sink's
// writer) and the same concurrency. A case's effetl figures are divided by its anchor's, measured in
// the same bench run against the same simulator, so a ratio says what the framework costs.
//
// The anchors are honest loops, not toys: every wire item is checked field by field (what the
// source's Schema decode checks), every request has a timeout and a few retries, a download is
// refused unless it is http(s) and is capped at 25 MiB, every record is checked as `validate`
// checks it, and bad items go to a dead-letter file. What they leave out is what a hand-written
// loop would leave out: resumable checkpoints, the commit protocol, rate limits, plugins.
//
// The parent (scripts/bench.mjs) checks that an anchor's CSV holds the same rows as effetl's.
import { createHash, hash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { stringify } from "csv-stringify/sync"
import { Agent } from "undici"

/** The csv sink's columns, in its order (the parent checks the headers are equal). */
export const columns = [
  "source", "product_id", "image_id", "position", "url", "filename", "width", "height", "content_hash", "alt", "created_at",
  "updated_at"
]

// --- HTTP --------------------------------------------------------------------------------------

/** A small HTTP client over one undici Agent (as NodeHttpClient.layerUndici makes one): timeouts, retries on 5xx/429/resets. */
const httpClient = () => {
  const agent = new Agent()
  const retries = 3
  const once = async (url, headers, maxBytes) => {
    const { statusCode, headers: got, body } = await agent.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: "GET",
      headers,
      headersTimeout: 30_000,
      bodyTimeout: 30_000
    })
    if (statusCode < 200 || statusCode >= 300) {
      await body.dump()
      return { status: statusCode, headers: got }
    }
    const declared = Number(got["content-length"])
    if (Number.isFinite(declared) && declared > maxBytes) {
      body.destroy()
      throw Object.assign(new Error(`${url.href}: Content-Length ${declared} is over the ${maxBytes}-byte cap`), { fatal: true })
    }
    const chunks = []
    let size = 0
    for await (const chunk of body) {
      size += chunk.length
      if (size > maxBytes) {
        body.destroy()
        throw Object.assign(new Error(`${url.href}: over the ${maxBytes}-byte cap`), { fatal: true })
      }
      chunks.push(chunk)
    }
    return { status: statusCode, headers: got, bytes: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size) }
  }
  const get = async (url, headers, maxBytes = Number.POSITIVE_INFINITY) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const reply = await once(url, headers, maxBytes)
        if ((reply.status >= 500 || reply.status === 429) && attempt < retries) {
          await sleep(100 * 2 ** attempt)
          continue
        }
        return reply
      } catch (e) {
        if (e.fatal || attempt >= retries) throw e
        await sleep(100 * 2 ** attempt)
      }
    }
  }
  return { get, close: () => agent.close() }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs `tasks` (functions returning promises) at most `n` at a time; resolves with their results in order. */
const limiter = (n) => {
  let active = 0
  const queue = []
  const next = () => {
    if (active >= n || queue.length === 0) return
    active++
    const { task, resolve, reject } = queue.shift()
    task().then(resolve, reject).finally(() => {
      active--
      next()
    })
  }
  return (task) =>
    new Promise((resolve, reject) => {
      queue.push({ task, resolve, reject })
      next()
    })
}

// --- the channel API ---------------------------------------------------------------------------

/** The pages of a channel list (`list` or `detailed`): page 1, then the rest `concurrency` at a time; `onPage(results)` for each. */
const readPages = async (http, sim, { detailed, pageSize, concurrency }, onPage) => {
  const base = new URL(`${sim.url}/api/v1/channel/${sim.channelId}/product_images/${detailed ? "detailed/" : ""}`)
  const headers = { authorization: `Token ${sim.token}`, accept: "application/json", "user-agent": "effetl-bench-anchor" }
  const page = async (n) => {
    const url = new URL(base)
    url.searchParams.set("page", String(n))
    url.searchParams.set("limit", String(pageSize))
    const reply = await http.get(url, headers)
    if (reply.status === 404) return undefined
    if (reply.status !== 200) throw new Error(`GET ${url.href}: HTTP ${reply.status}`)
    const body = JSON.parse(reply.bytes.toString("utf8"))
    if (typeof body !== "object" || body === null || !Number.isSafeInteger(body.count) || !Array.isArray(body.results)) {
      throw new Error(`GET ${url.href}: not a DRF page`)
    }
    return body
  }
  const first = await page(1)
  if (first === undefined) return
  await onPage(first.results)
  const last = Math.ceil(first.count / pageSize)
  let nextPage = 2
  const worker = async () => {
    while (nextPage <= last) {
      const body = await page(nextPage++)
      if (body === undefined || body.results.length === 0) return
      await onPage(body.results)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

const isInt = (v) => Number.isSafeInteger(v)
const optional = (v, check) => v === undefined || v === null || check(v)
const isString = (v) => typeof v === "string"

/** Why a wire item is not a channel product image (the fields and types the source's wire schema checks), or undefined. */
const wireProblem = (item) => {
  if (typeof item !== "object" || item === null || Array.isArray(item)) return "not an object"
  if (!isInt(item.pk)) return "pk: expected an integer"
  if (!isInt(item.product)) return "product: expected an integer"
  for (const k of ["source", "modified_date", "created_date", "hash", "status"]) {
    if (!optional(item[k], isString)) return `${k}: expected a string or null`
  }
  for (const k of ["height", "width", "order", "object_id"]) if (!optional(item[k], isInt)) return `${k}: expected an integer or null`
  if (!optional(item.is_active, (v) => typeof v === "boolean")) return "is_active: expected a boolean or null"
  if (!optional(item.content_type, (v) => isString(v) || isInt(v))) return "content_type: expected a string or an integer"
  return undefined
}

/** A wire date as a Date (an unparseable one stays an Invalid Date, which `recordProblem` refuses), or null. */
const dateOf = (s) => (s ? new Date(s) : null)

/** A date as the csv sink writes it (ISO-8601 UTC), or null (none, or invalid). */
const isoDate = (d) => (d === null || Number.isNaN(d.getTime()) ? null : d.toISOString())

/** The last path segment of a URL, decoded (data only). */
const fileNameOf = (url) => {
  try {
    const seg = new URL(url).pathname.split("/").filter((s) => s.length > 0).pop()
    return seg ? decodeURIComponent(seg) : null
  } catch {
    return null
  }
}

/** A wire item as a record: the fields the csv sink writes (the channel source's mapping). */
const toRecord = (source, item, detailed) => {
  const image = detailed && typeof item.image === "string" && item.image.trim() !== "" ? item.image.trim() : null
  return {
    source,
    productId: String(item.product),
    imageId: String(item.pk),
    position: item.order ?? 0,
    url: image,
    filename: image === null ? null : fileNameOf(image),
    width: item.width ?? null,
    height: item.height ?? null,
    contentHash: null,
    alt: detailed && typeof item.alt === "string" ? item.alt : null,
    createdAt: dateOf(item.created_date),
    updatedAt: dateOf(item.modified_date)
  }
}

const row = (r) => [r.source, r.productId, r.imageId, r.position, r.url, r.filename, r.width, r.height, r.contentHash, r.alt, isoDate(r.createdAt), isoDate(r.updatedAt)]

const csvOptions = { delimiter: ",", escape_formulas: false, eof: true }

/** An output file written in pieces, fsynced at the end. */
const output = (file) => {
  const fd = fs.openSync(file, "w")
  let bytes = 0
  return {
    write: (text) => {
      bytes += fs.writeSync(fd, text)
    },
    close: () => {
      fs.fsyncSync(fd)
      fs.closeSync(fd)
      return bytes
    }
  }
}

// --- the anchors ---------------------------------------------------------------------------------

/**
 * Channel list mode → CSV: every page (`pageSize`, `concurrency` pages at a time), every item
 * checked and mapped, written with csv-stringify to `<dir>/images.csv`.
 */
export const listCsv = async ({ sim, dir, source = "channel", pageSize = 1000, concurrency = 4 }) => {
  const http = httpClient()
  const out = output(path.join(dir, "images.csv"))
  const dead = output(path.join(dir, "dead-letter.jsonl"))
  out.write(stringify([columns], csvOptions))
  let records = 0
  let rejected = 0
  let pages = 0
  await readPages(http, sim, { detailed: false, pageSize, concurrency }, (items) => {
    pages++
    const rows = []
    for (const item of items) {
      const problem = wireProblem(item)
      if (problem !== undefined) {
        rejected++
        dead.write(JSON.stringify({ source, stage: "source", error: problem, payload: item }) + "\n")
      } else rows.push(row(toRecord(source, item, false)))
    }
    records += rows.length
    out.write(stringify(rows, csvOptions))
  })
  await http.close()
  const outputBytes = out.close()
  dead.close()
  return { records: records + rejected, written: records, rejected, pages, outputBytes }
}

/** Why a record breaks the ProductImage schema (what `validate` checks), or undefined. */
const recordProblem = (r) => {
  if (r.productId === "" || r.imageId === "" || r.source === "") return "an empty id"
  if (!Number.isSafeInteger(r.position)) return "position: expected an integer"
  for (const k of ["width", "height"]) if (r[k] !== null && !(Number.isSafeInteger(r[k]) && r[k] >= 0)) return `${k}: expected a size`
  for (const k of ["createdAt", "updatedAt"]) {
    if (r[k] !== null && Number.isNaN(r[k].getTime())) return `${k}: expected a valid date`
  }
  return undefined
}

/** Whether a URL may be fetched: http(s), no credentials. */
const fetchable = (url) => {
  try {
    const u = new URL(url)
    return (u.protocol === "http:" || u.protocol === "https:") && u.username === "" && u.password === "" ? u : undefined
  } catch {
    return undefined
  }
}

/** Ids compared as numbers when both are decimal integers, else as strings (display order's tie-break). */
const compareIds = (a, b) => {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Channel detailed mode → validate → download and sha256 each image (`downloads` at a time) →
 * dedupe by hash within each product (the first in display order stays) → renumber each product's
 * images 1, 2, ... → CSV at `<dir>/images.csv`.
 */
export const detailedCsv = async ({ sim, dir, source = "channel", pageSize = 1000, concurrency = 4, downloads = 8 }) => {
  const http = httpClient()
  const limit = limiter(downloads)
  const maxBytes = 25 * 1024 * 1024
  const dead = output(path.join(dir, "dead-letter.jsonl"))
  const reject = (stage, error, payload) => {
    rejected++
    dead.write(JSON.stringify({ source, stage, error, payload }) + "\n")
  }
  const products = new Map()
  let read = 0
  let rejected = 0
  let pages = 0
  const download = async (r) => {
    let url = fetchable(r.url)
    if (url === undefined) throw new Error(`refused to fetch ${r.url}`)
    for (let hop = 0; ; hop++) {
      const reply = await http.get(url, { accept: "image/*, */*;q=0.8", "user-agent": "effetl-bench-anchor" }, maxBytes)
      if (reply.status >= 200 && reply.status < 300) return reply.bytes
      const location = reply.headers.location
      if (reply.status < 300 || reply.status >= 400 || location === undefined || hop >= 10) throw new Error(`${url.href}: HTTP ${reply.status}`)
      url = fetchable(new URL(location, url).href)
      if (url === undefined) throw new Error(`refused to follow a redirect to ${location}`)
    }
  }
  await readPages(http, sim, { detailed: true, pageSize, concurrency }, async (items) => {
    pages++
    read += items.length
    const jobs = []
    for (const item of items) {
      const problem = wireProblem(item)
      if (problem !== undefined) {
        reject("source", problem, item)
        continue
      }
      const r = toRecord(source, item, true)
      const invalid = recordProblem(r)
      if (invalid !== undefined) {
        reject("validate", invalid, r)
        continue
      }
      if (r.url === null) {
        jobs.push(Promise.resolve(r))
        continue
      }
      jobs.push(
        limit(() => download(r)).then(
          (bytes) => ((r.contentHash = `sha256:${createHash("sha256").update(bytes).digest("hex")}`), r),
          (e) => (reject("hash-content", e.message, r), undefined)
        )
      )
    }
    for (const r of await Promise.all(jobs)) {
      if (r === undefined) continue
      const list = products.get(r.productId)
      if (list === undefined) products.set(r.productId, [r])
      else list.push(r)
    }
  })
  await http.close()
  dead.close()

  const out = output(path.join(dir, "images.csv"))
  out.write(stringify([columns], csvOptions))
  let written = 0
  let deduped = 0
  for (const list of products.values()) {
    list.sort((a, b) => a.position - b.position || compareIds(a.imageId, b.imageId)) // stable: ties keep their order
    const seen = new Set()
    const rows = []
    for (const r of list) {
      if (r.contentHash !== null) {
        if (seen.has(r.contentHash)) {
          deduped++
          continue
        }
        seen.add(r.contentHash)
      }
      r.position = rows.length + 1
      rows.push(row(r))
    }
    written += rows.length
    out.write(stringify(rows, csvOptions))
  }
  const outputBytes = out.close()
  return { records: read, written, deduped, rejected, pages, outputBytes }
}

/** `count` deterministic pseudo-random images of `size` bytes (xorshift32 from `seed`): the same bytes in every process. */
export const syntheticImages = (count, size, seed = 7) => {
  const images = []
  let x = seed >>> 0 || 1
  for (let i = 0; i < count; i++) {
    const words = new Uint32Array(Math.ceil(size / 4))
    for (let j = 0; j < words.length; j++) {
      x ^= x << 13
      x >>>= 0
      x ^= x >>> 17
      x ^= x << 5
      x >>>= 0
      words[j] = x
    }
    images.push(new Uint8Array(words.buffer, 0, size))
  }
  return images
}

/** Raw node:crypto: `sha256:<hex>` of every image, with its fastest API for small inputs (the one-shot `hash`). */
export const hashImages = (images) => {
  const out = new Array(images.length)
  for (let i = 0; i < images.length; i++) out[i] = `sha256:${hash("sha256", images[i], "hex")}`
  return out
}
