/**
 * Images: tiny real image files for simulators (a PNG and a baseline JPEG encoder), so sources,
 * hashing, dedupe and image sinks are tested on genuine bytes, not placeholders.
 */
import * as zlib from "node:zlib"

export const pngSignature = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)

/** Encodes an 8-bit RGB PNG (IHDR, one zlib IDAT, IEND) with CRC32s. */
export const encodePng = (width: number, height: number, pixel: (x: number, y: number) => readonly [number, number, number]): Uint8Array => {
  const stride = width * 3 + 1
  const raw = Buffer.alloc(stride * height)
  for (let y = 0; y < height; y++) {
    raw[y * stride] = 0 // filter type: None
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y)
      const at = y * stride + 1 + x * 3
      raw[at] = r
      raw[at + 1] = g
      raw[at + 2] = b
    }
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header.set([8, 2, 0, 0, 0], 8) // bit depth 8, colour type RGB, deflate, adaptive filtering, no interlace
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const body = Buffer.concat([Buffer.from(type, "latin1"), data])
    const out = Buffer.alloc(body.length + 8)
    out.writeUInt32BE(data.length, 0)
    body.copy(out, 4)
    out.writeUInt32BE(zlib.crc32(body), body.length + 4)
    return out
  }
  return new Uint8Array(
    Buffer.concat([pngSignature, chunk("IHDR", header), chunk("IDAT", zlib.deflateSync(raw, { level: 9 })), chunk("IEND", new Uint8Array(0))])
  )
}

/**
 * Encodes a baseline JPEG (JFIF, YCbCr 4:4:4) of one solid colour. Every 8×8 block carries only a DC
 * coefficient, so the entropy data is a DC difference and an end-of-block per block and component.
 */
export const encodeSolidJpeg = (width: number, height: number, [r, g, b]: readonly [number, number, number]): Uint8Array => {
  const clamp = (v: number): number => Math.max(0, Math.min(255, Math.round(v)))
  const ycc = [
    clamp(0.299 * r + 0.587 * g + 0.114 * b),
    clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b),
    clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
  ]
  // With a quantiser of 1 the DC coefficient of a flat block is 8 × (sample − 128).
  const dc = ycc.map((v) => 8 * (v - 128))
  const bits = new BitWriter()
  const predictions = [0, 0, 0]
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8)
  for (let block = 0; block < blocks; block++) {
    for (let c = 0; c < 3; c++) {
      const diff = dc[c]! - predictions[c]!
      predictions[c] = dc[c]!
      const size = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1
      bits.write(size, 4) // DC table: category k has the 4-bit code k
      if (size > 0) bits.write(diff > 0 ? diff : diff + (1 << size) - 1, size)
      bits.write(0, 1) // AC table: end-of-block has the 1-bit code 0
    }
  }
  const segment = (marker: number, payload: ReadonlyArray<number>): Array<number> => [
    0xff,
    marker,
    (payload.length + 2) >> 8,
    (payload.length + 2) & 0xff,
    ...payload
  ]
  const dcCounts = Array.from({ length: 16 }, (_, i) => (i === 3 ? 12 : 0))
  const acCounts = Array.from({ length: 16 }, (_, i) => (i === 0 ? 1 : 0))
  return Uint8Array.from([
    0xff, 0xd8, // SOI
    ...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]), // APP0 JFIF 1.1
    ...segment(0xdb, [0x00, ...new Array<number>(64).fill(1)]), // DQT: table 0, all ones
    ...segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]), // SOF0
    ...segment(0xc4, [0x00, ...dcCounts, ...Array.from({ length: 12 }, (_, i) => i), 0x10, ...acCounts, 0x00]), // DHT
    ...segment(0xda, [3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]), // SOS
    ...bits.finish(),
    0xff, 0xd9 // EOI
  ])
}

/** Packs bits MSB first, stuffing a zero byte after every 0xFF as JPEG entropy data requires. */
class BitWriter {
  private readonly bytes: Array<number> = []
  private acc = 0
  private count = 0

  write(value: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >> i) & 1)
      if (++this.count === 8) {
        this.bytes.push(this.acc)
        if (this.acc === 0xff) this.bytes.push(0)
        this.acc = 0
        this.count = 0
      }
    }
  }

  finish(): Array<number> {
    while (this.count !== 0) this.write(1, 1)
    return this.bytes
  }
}

/** A generated image: its format, size and bytes. */
export interface GeneratedImage {
  readonly kind: "png" | "jpeg"
  readonly width: number
  readonly height: number
  readonly bytes: Uint8Array
}

/** Makes one new image from the PRNG: mostly a small two-colour PNG, sometimes a solid-colour JPEG. */
export const randomImage = (rng: { int: (n: number) => number; chance: (p: number) => boolean }): GeneratedImage => {
  const colour = (): [number, number, number] => [rng.int(256), rng.int(256), rng.int(256)]
  if (rng.chance(0.15)) {
    const width = 8 + rng.int(17)
    const height = 8 + rng.int(17)
    return { kind: "jpeg", width, height, bytes: encodeSolidJpeg(width, height, colour()) }
  }
  const width = 2 + rng.int(11)
  const height = 2 + rng.int(11)
  const [a, b] = [colour(), colour()]
  const stripes = rng.chance(0.5)
  return { kind: "png", width, height, bytes: encodePng(width, height, (x, y) => ((stripes ? y : x + y) % 2 === 0 ? a : b)) }
}
