/**
 * Parquet files joined by their row groups, without decoding them: the bytes of each file's row
 * groups copied one after another, and one footer listing them all (each column chunk's offsets
 * moved by where its file's bytes landed). DuckDB's `COPY` of several files reads and encodes every
 * row again; this reads and writes bytes.
 *
 * The footers are read and written by hyparquet's and hyparquet-writer's Thrift compact protocol
 * (their generic field-by-number codec, not their typed metadata, which converts statistics). Only
 * files that this can carry exactly are joined: every footer must come back byte for byte from a
 * decode and an encode (so no field is of a type the generic codec would change), the files must
 * have the same schema and one compression codec, and nothing may be encrypted or stored in another
 * file. Otherwise `concatenate` writes nothing and says no, and the caller merges another way.
 * The two libraries are imported on first use (a run that writes no Parquet never loads them).
 */
import type { FileHandle } from "node:fs/promises"
import * as fsp from "node:fs/promises"

/** Parquet's codec numbers in `ColumnMetaData.codec` (parquet.thrift `CompressionCodec`). */
export const codecNumber = { none: 0, snappy: 1, gzip: 2 } as const

/** What the joined files must be like. */
export interface Expect {
  /** Every column chunk's compression codec (see {@link codecNumber}). */
  readonly codec: number
  /** The least average rows per row group worth keeping (smaller ones are better merged anew). */
  readonly minAverageRows: number
}

type Thrift = { [key: `field_${number}`]: any }

const magic = Buffer.from("PAR1")

/**
 * Writes `file` (which must not exist) holding the row groups of `parts`, in order, and returns
 * true; or returns false, writing nothing, when the parts cannot be joined as they are (see the
 * module comment).
 */
export const concatenate = async (parts: ReadonlyArray<string>, file: string, expect: Expect): Promise<boolean> => {
  const { encode, decode } = await thrift()
  const footers: Array<{ readonly meta: Thrift; readonly bodyEnd: number }> = []
  let schema: Buffer | undefined
  let rows = 0n
  let groups = 0
  for (const part of parts) {
    const read = await readFooter(part, encode, decode)
    if (read === undefined) return false
    const { meta } = read
    // FileMetaData: 2 schema, 3 num_rows, 4 row_groups, 8/9 encryption.
    if (meta.field_8 !== undefined || meta.field_9 !== undefined || typeof meta.field_3 !== "bigint") return false
    const ownSchema = encode({ field_1: meta.field_2 })
    if (schema === undefined) schema = ownSchema
    else if (!schema.equals(ownSchema)) return false
    if (!Array.isArray(meta.field_4)) return false
    for (const group of meta.field_4 as Array<Thrift>) {
      // ColumnChunk: 1 file_path (another file), 3 meta_data, 4 offset_index_offset (an offset index
      // holds page offsets in the file's bytes, which would not move), 8/9 encryption;
      // ColumnMetaData 4 codec.
      if (!Array.isArray(group.field_1) || !offsetOk(group.field_5)) return false
      for (const chunk of group.field_1 as Array<Thrift>) {
        if (chunk.field_1 !== undefined || chunk.field_4 !== undefined || chunk.field_8 !== undefined || chunk.field_9 !== undefined) return false
        if (chunk.field_3 === undefined || chunk.field_3.field_4 !== expect.codec) return false
        // Every offset `moved` moves is an i64.
        const m = chunk.field_3
        if (![chunk.field_2, chunk.field_6, m.field_9, m.field_10, m.field_11, m.field_14].every(offsetOk)) return false
      }
    }
    rows += meta.field_3
    groups += meta.field_4.length
    footers.push(read)
  }
  if (footers.length === 0 || (groups > 0 && Number(rows) / groups < expect.minAverageRows)) return false

  const out = await fsp.open(file, "wx")
  try {
    await writeFully(out, magic)
    let at = magic.length
    const rowGroups: Array<Thrift> = []
    const buffer = Buffer.allocUnsafe(1 << 20)
    for (let i = 0; i < parts.length; i++) {
      const { meta, bodyEnd } = footers[i]!
      // This part's bytes from after its magic to its footer land at `at`.
      const shift = BigInt(at - magic.length)
      for (const group of meta.field_4 as Array<Thrift>) rowGroups.push(moved(group, shift))
      at += await copyRange(parts[i]!, magic.length, bodyEnd, out, buffer)
    }
    const footer = encode({ ...footers[0]!.meta, field_3: rows, field_4: rowGroups })
    const tail = Buffer.alloc(8)
    tail.writeUInt32LE(footer.length, 0)
    magic.copy(tail, 4)
    await writeFully(out, footer)
    await writeFully(out, tail)
  } catch (e) {
    await out.close().catch(() => undefined)
    await fsp.rm(file, { force: true })
    throw e
  }
  await out.close()
  return true
}

/** A file's footer (decoded) and where its footer begins; undefined when it is not one we can carry exactly. */
const readFooter = async (
  file: string,
  encode: (value: Thrift) => Buffer,
  decode: (bytes: Buffer) => Thrift
): Promise<{ meta: Thrift; bodyEnd: number } | undefined> => {
  const handle = await fsp.open(file, "r")
  try {
    const { size } = await handle.stat()
    if (size < 12) return undefined
    const head = Buffer.alloc(4)
    await readFully(handle, head, 0)
    const tail = Buffer.alloc(8)
    await readFully(handle, tail, size - 8)
    if (!head.equals(magic) || !tail.subarray(4).equals(magic)) return undefined
    const length = tail.readUInt32LE(0)
    const bodyEnd = size - 8 - length
    if (bodyEnd < magic.length) return undefined
    const bytes = Buffer.alloc(length)
    await readFully(handle, bytes, bodyEnd)
    let meta: Thrift
    try {
      meta = decode(bytes)
    } catch {
      return undefined
    }
    // Carried exactly: encoding the decoded footer gives its bytes back.
    return encode(meta).equals(bytes) ? { meta, bodyEnd } : undefined
  } finally {
    await handle.close()
  }
}

/** A row group whose offsets are moved by `shift` bytes. */
const moved = (group: Thrift, shift: bigint): Thrift => ({
  ...group,
  // RowGroup 5 file_offset.
  field_5: plus(group.field_5, shift),
  field_1: (group.field_1 as Array<Thrift>).map((chunk) => ({
    ...chunk,
    // ColumnChunk 2 file_offset, 6 column_index_offset (a column index holds no offsets).
    field_2: plus(chunk.field_2, shift),
    field_6: plus(chunk.field_6, shift),
    // ColumnMetaData 9 data_page_offset, 10 index_page_offset, 11 dictionary_page_offset, 14 bloom_filter_offset.
    field_3: {
      ...chunk.field_3,
      field_9: plus(chunk.field_3.field_9, shift),
      field_10: plus(chunk.field_3.field_10, shift),
      field_11: plus(chunk.field_3.field_11, shift),
      field_14: plus(chunk.field_3.field_14, shift)
    }
  }))
})

/** An offset field as `moved` can move it: absent, or an i64. */
const offsetOk = (offset: unknown): boolean => offset === undefined || typeof offset === "bigint"

const plus = (offset: unknown, shift: bigint): unknown => {
  if (offset === undefined) return undefined
  if (typeof offset !== "bigint") throw new Error(`a Parquet footer offset is not an i64: ${String(offset)}`)
  return offset + shift
}

/** The Thrift compact codec of hyparquet (decode) and hyparquet-writer (encode), imported once. */
const thrift = async (): Promise<{ encode: (value: Thrift) => Buffer; decode: (bytes: Buffer) => Thrift }> => {
  const [{ ByteWriter }, { serializeTCompactProtocol }, { deserializeTCompactProtocol }] = await Promise.all([
    import("hyparquet-writer"),
    import("hyparquet-writer/src/thrift.js"),
    import("hyparquet/src/thrift.js")
  ])
  return {
    encode: (value) => {
      const writer = new ByteWriter()
      serializeTCompactProtocol(writer, value)
      return Buffer.from(writer.getBuffer())
    },
    decode: (bytes) => deserializeTCompactProtocol({ view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: 0 })
  }
}

const readFully = async (handle: FileHandle, into: Buffer, position: number): Promise<void> => {
  for (let done = 0; done < into.length;) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done)
    if (bytesRead === 0) throw new Error("unexpected end of file")
    done += bytesRead
  }
}

/** Copies bytes [start, end) of `file` to the end of `out`; returns their count. */
const copyRange = async (file: string, start: number, end: number, out: FileHandle, buffer: Buffer): Promise<number> => {
  const handle = await fsp.open(file, "r")
  try {
    for (let at = start; at < end;) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - at), at)
      if (bytesRead === 0) throw new Error(`${file}: unexpected end of file`)
      await writeFully(out, buffer.subarray(0, bytesRead))
      at += bytesRead
    }
    return end - start
  } finally {
    await handle.close()
  }
}

const writeFully = async (out: FileHandle, bytes: Buffer): Promise<void> => {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await out.write(bytes, done, bytes.length - done)
    done += bytesWritten
  }
}
