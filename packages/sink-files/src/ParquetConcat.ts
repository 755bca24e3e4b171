/**
 * Joining Parquet files of one schema into one file without decoding them: each file's row groups
 * are copied byte for byte, one after the other, and a new footer lists them all.
 *
 * A Parquet file is `PAR1`, its column chunks (pages), then the footer (Thrift compact protocol
 * `FileMetaData`), its length and `PAR1`. The footer's row groups point into the file by absolute
 * offset, so each copied row group's offsets are moved by where its bytes land; everything else in
 * the footers is kept as it was written (fields this module does not know included). Page indexes
 * (`ColumnChunk` offset and column index) hold absolute offsets inside the copied bytes, so their
 * pointers are left out of the new footer: readers then read every page, as they do without one.
 * Bloom filters need no change but their offset.
 *
 * The files must have the same schema (compared byte for byte) and not be encrypted; `inspect` says
 * whether they can be joined, so the caller can decode and re-encode them otherwise.
 */
import * as fsp from "node:fs/promises"

/** What a Parquet file's footer says, as `concat` needs it. */
export interface Footer {
  readonly file: string
  /** The file's size in bytes. */
  readonly size: number
  /** Where the footer starts (so the row groups' bytes are `[4, footerStart)`). */
  readonly footerStart: number
  readonly rows: number
  readonly rowGroups: number
  /** The compression codecs of its column chunks (Parquet's `CompressionCodec` numbers). */
  readonly codecs: ReadonlySet<number>
  /** The schema, serialized: equal bytes, equal schemas. */
  readonly schema: string
}

/** Parquet's `CompressionCodec` numbers of the codecs the sink writes. */
export const codecNumber = { none: 0, snappy: 1, gzip: 2 } as const

/** Reads a Parquet file's footer (rejects a file that is not Parquet, or an encrypted one). */
export const readFooter = async (file: string): Promise<Footer> => {
  const { size, footerStart, metadata } = await readMetadata(file)
  const rowGroups = listItems(metadata, 4)
  const codecs = new Set<number>()
  for (const group of rowGroups) {
    for (const column of listItems(group as Struct, 1)) {
      const meta = field(column as Struct, 3)
      if (meta === undefined) throw new Error(`${file}: a column chunk has no metadata`)
      codecs.add(int(field(meta.value as Struct, 4)!.value))
    }
  }
  const schema = field(metadata, 2)
  if (schema === undefined) throw new Error(`${file}: the footer has no schema`)
  const w = new Writer()
  w.value(schema.type, schema.value)
  return {
    file,
    size,
    footerStart,
    rows: int(field(metadata, 3)!.value),
    rowGroups: rowGroups.length,
    codecs,
    schema: Buffer.from(w.bytes()).toString("base64")
  }
}

/**
 * Writes `out` (which is created or truncated) with the row groups of `footers`' files, in order,
 * under the first one's schema and file metadata. The caller has checked that the schemas are
 * equal. Each footer is parsed again when its turn comes, so one at a time is held.
 */
export const concat = async (footers: ReadonlyArray<Footer>, out: string): Promise<void> => {
  if (footers.length === 0) throw new Error("no Parquet files to join")
  const groups = new Writer()
  let groupCount = 0
  let rows = 0n
  let first: Struct | undefined
  const target = await fsp.open(out, "w")
  try {
    await writeAll(target, Buffer.from("PAR1", "latin1"), 0)
    let position = 4
    const buffer = Buffer.allocUnsafe(1 << 20)
    for (const footer of footers) {
      const { metadata, footerStart } = await readMetadata(footer.file)
      first ??= metadata
      const delta = BigInt(position - 4)
      for (const group of listItems(metadata, 4)) groups.struct(moveRowGroup(group as Struct, delta, groupCount++))
      rows += i64Of(field(metadata, 3)!.value)
      const source = await fsp.open(footer.file, "r")
      try {
        for (let from = 4; from < footerStart;) {
          const { bytesRead } = await source.read(buffer, 0, Math.min(buffer.length, footerStart - from), from)
          if (bytesRead === 0) throw new Error(`${footer.file} ended early`)
          await writeAll(target, buffer.subarray(0, bytesRead), position)
          from += bytesRead
          position += bytesRead
        }
      } finally {
        await source.close()
      }
    }
    const list = new Writer()
    list.listHeader(T.STRUCT, groupCount)
    list.raw(groups.bytes())
    const metadata: Struct = first!.map((f) =>
      f.id === 3 ? { ...f, value: i64(rows) } : f.id === 4 ? { ...f, value: list.bytes() } : f
    )
    const w = new Writer()
    w.struct(metadata)
    const footer = w.bytes()
    const trailer = Buffer.alloc(8)
    trailer.writeUInt32LE(footer.length, 0)
    trailer.write("PAR1", 4, "latin1")
    await writeAll(target, footer, position)
    await writeAll(target, trailer, position + footer.length)
  } finally {
    await target.close()
  }
}

/** A file's parsed `FileMetaData`, its size and where it starts. */
const readMetadata = async (file: string): Promise<{ size: number; footerStart: number; metadata: Struct }> => {
  const handle = await fsp.open(file, "r")
  try {
    const { size } = await handle.stat()
    if (size < 12) throw new Error(`${file} is not a Parquet file (${size} bytes)`)
    const head = Buffer.alloc(4)
    await handle.read(head, 0, 4, 0)
    const tail = Buffer.alloc(8)
    await handle.read(tail, 0, 8, size - 8)
    if (head.toString("latin1") !== "PAR1" || tail.toString("latin1", 4) !== "PAR1") {
      throw new Error(`${file} is not a plain Parquet file (no PAR1 magic; encrypted files are not joined)`)
    }
    const length = tail.readUInt32LE(0)
    const footerStart = size - 8 - length
    if (footerStart < 4) throw new Error(`${file}: footer length ${length} does not fit the file`)
    const bytes = Buffer.alloc(length)
    await handle.read(bytes, 0, length, footerStart)
    return { size, footerStart, metadata: readStruct(new Reader(bytes)) }
  } finally {
    await handle.close()
  }
}

// --- the footer's row groups ------------------------------------------------------------------

/** `RowGroup` fields: 1 columns, 5 file_offset, 7 ordinal. `ColumnChunk`: 2 file_offset, 3 meta_data, 4–7 page index. */
const moveRowGroup = (group: Struct, delta: bigint, ordinal: number): Struct =>
  group.flatMap((f): Array<Field> => {
    switch (f.id) {
      case 1: {
        const list = f.value as List
        return [{ ...f, value: { elemType: list.elemType, items: list.items.map((c) => moveColumnChunk(c as Struct, delta)) } }]
      }
      case 5:
        return [{ ...f, value: i64(i64Of(f.value) + delta) }]
      case 7: // an i16: beyond it, no ordinal
        return ordinal < 32768 ? [{ ...f, value: zigzagVarint(BigInt(ordinal)) }] : []
      default:
        return [f]
    }
  })

const moveColumnChunk = (chunk: Struct, delta: bigint): Struct =>
  chunk.flatMap((f): Array<Field> => {
    switch (f.id) {
      case 2: {
        const offset = i64Of(f.value)
        return [offset > 0n ? { ...f, value: i64(offset + delta) } : f]
      }
      case 3:
        return [{ ...f, value: moveColumnMetaData(f.value as Struct, delta) }]
      case 4:
      case 5:
      case 6:
      case 7:
        return [] // the page index: offsets inside the copied bytes, left out
      default:
        return [f]
    }
  })

/** `ColumnMetaData` offsets: 9 data_page_offset, 10 index_page_offset, 11 dictionary_page_offset, 14 bloom_filter_offset. */
const moveColumnMetaData = (meta: Struct, delta: bigint): Struct =>
  meta.map((f) => (f.id === 9 || f.id === 10 || f.id === 11 || f.id === 14 ? { ...f, value: i64(i64Of(f.value) + delta) } : f))

const writeAll = async (handle: fsp.FileHandle, bytes: Uint8Array, position: number): Promise<void> => {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done)
    done += bytesWritten
  }
}

// --- Thrift compact protocol: read and write, keeping what is not understood ------------------

/** Compact protocol type ids. */
const T = { TRUE: 1, FALSE: 2, BYTE: 3, I16: 4, I32: 5, I64: 6, DOUBLE: 7, BINARY: 8, LIST: 9, SET: 10, MAP: 11, STRUCT: 12 } as const

/** A field of a struct. A boolean field's value is its type (TRUE or FALSE) and empty bytes. */
interface Field {
  readonly id: number
  readonly type: number
  readonly value: Value
}
type Struct = ReadonlyArray<Field>
interface List {
  readonly elemType: number
  readonly items: ReadonlyArray<Value>
}
/** A struct, a list (or set), or any other value as its encoded bytes. */
type Value = Struct | List | Uint8Array

const field = (s: Struct, id: number): Field | undefined => s.find((f) => f.id === id)
const listItems = (s: Struct, id: number): ReadonlyArray<Value> => {
  const f = field(s, id)
  return f === undefined ? [] : (f.value as List).items
}

class Reader {
  pos = 0
  constructor(readonly buf: Uint8Array) {}
  byte(): number {
    if (this.pos >= this.buf.length) throw new Error("the Parquet footer ends early")
    return this.buf[this.pos++]!
  }
  varint(): bigint {
    let result = 0n
    let shift = 0n
    for (;;) {
      const b = this.byte()
      result |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) return result
      shift += 7n
      if (shift > 70n) throw new Error("a varint in the Parquet footer is too long")
    }
  }
  skip(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error("the Parquet footer ends early")
    this.pos += n
  }
}

const readStruct = (r: Reader): Struct => {
  const fields: Array<Field> = []
  let last = 0
  for (;;) {
    const header = r.byte()
    if (header === 0) return fields
    const type = header & 0x0f
    const delta = header >> 4
    const id = delta === 0 ? Number(unzigzag(r.varint())) : last + delta
    last = id
    fields.push({ id, type, value: type === T.TRUE || type === T.FALSE ? new Uint8Array(0) : readValue(r, type) })
  }
}

const readValue = (r: Reader, type: number): Value => {
  switch (type) {
    case T.STRUCT:
      return readStruct(r)
    case T.LIST:
    case T.SET: {
      const header = r.byte()
      const elemType = header & 0x0f
      const n = (header >> 4) === 15 ? Number(r.varint()) : header >> 4
      const items: Array<Value> = []
      for (let i = 0; i < n; i++) items.push(elemType === T.TRUE || elemType === T.FALSE ? raw(r, () => r.skip(1)) : readValue(r, elemType))
      return { elemType, items }
    }
    default:
      return raw(r, () => skipValue(r, type))
  }
}

const raw = (r: Reader, skip: () => void): Uint8Array => {
  const start = r.pos
  skip()
  return r.buf.subarray(start, r.pos)
}

const skipValue = (r: Reader, type: number): void => {
  switch (type) {
    case T.TRUE:
    case T.FALSE:
    case T.BYTE:
      return r.skip(1)
    case T.I16:
    case T.I32:
    case T.I64:
      return void r.varint()
    case T.DOUBLE:
      return r.skip(8)
    case T.BINARY:
      return r.skip(Number(r.varint()))
    case T.LIST:
    case T.SET: {
      const header = r.byte()
      const n = (header >> 4) === 15 ? Number(r.varint()) : header >> 4
      for (let i = 0; i < n; i++) skipValue(r, header & 0x0f)
      return
    }
    case T.MAP: {
      const n = Number(r.varint())
      if (n === 0) return
      const kinds = r.byte()
      for (let i = 0; i < n; i++) {
        skipValue(r, kinds >> 4)
        skipValue(r, kinds & 0x0f)
      }
      return
    }
    case T.STRUCT:
      return void readStruct(r)
    default:
      throw new Error(`unknown Thrift type ${type} in the Parquet footer`)
  }
}

class Writer {
  private buf = new Uint8Array(4096)
  private pos = 0
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos)
  }
  private room(n: number) {
    if (this.pos + n <= this.buf.length) return
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n))
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
  }
  byte(b: number) {
    this.room(1)
    this.buf[this.pos++] = b
  }
  raw(bytes: Uint8Array) {
    this.room(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
  }
  varint(n: bigint) {
    this.raw(varint(n))
  }
  struct(fields: Struct) {
    let last = 0
    for (const f of fields) {
      const delta = f.id - last
      if (delta > 0 && delta <= 15) this.byte((delta << 4) | f.type)
      else {
        this.byte(f.type)
        this.varint(zigzag(BigInt(f.id)))
      }
      last = f.id
      if (f.type !== T.TRUE && f.type !== T.FALSE) this.value(f.type, f.value)
    }
    this.byte(0)
  }
  value(type: number, value: Value) {
    if (value instanceof Uint8Array) return this.raw(value)
    if (type === T.STRUCT) return this.struct(value as Struct)
    const list = value as List
    this.listHeader(list.elemType, list.items.length)
    for (const item of list.items) this.value(list.elemType, item)
  }
  listHeader(elemType: number, n: number) {
    if (n < 15) this.byte((n << 4) | elemType)
    else {
      this.byte(0xf0 | elemType)
      this.varint(BigInt(n))
    }
  }
}

const zigzag = (n: bigint): bigint => (n >= 0n ? n << 1n : ((-n) << 1n) - 1n)
const unzigzag = (n: bigint): bigint => ((n & 1n) === 0n ? n >> 1n : -((n + 1n) >> 1n))

const varint = (n: bigint): Uint8Array => {
  const out: Array<number> = []
  let v = n
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) b |= 0x80
    out.push(b)
  } while (v > 0n)
  return Uint8Array.from(out)
}

const zigzagVarint = (n: bigint): Uint8Array => varint(zigzag(n))

/** An integer value (i16, i32, i64) from its encoded bytes. */
const i64Of = (value: Value): bigint => unzigzag(new Reader(value as Uint8Array).varint())
const int = (value: Value): number => Number(i64Of(value))
const i64 = (n: bigint): Uint8Array => zigzagVarint(n)
