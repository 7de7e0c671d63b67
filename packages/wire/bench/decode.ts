// Decoder throughput against the floor of the same work, in one run: for large frames split over
// reads, one copy and one CRC-32 of each frame (what any checked decoder must do); for small frames
// within a read, one CRC-32 of each frame's bytes. The ratio is wire / floor (1.0 = no framing cost).
// Medians of 31 alternating rounds. `pnpm bench` in this package.
import { crc32 } from "node:zlib"
import * as Wire from "../src/Wire.js"

const Fmt = Wire.format({ protocol: "bench", magic: 0xbe1c, version: 1, fieldsSize: 28 })
const H = Wire.headerSize(Fmt)
const READ = 65536

const stream = (count: number, size: number) =>
  Buffer.concat(Array.from({ length: count }, (_, i) => Wire.encode(Fmt, 3, Buffer.alloc(size, i & 0xff))))

const wireDecode = (bytes: Buffer, frameSize: number) => {
  const d = Wire.decoder(Fmt, { maxPayload: frameSize })
  let n = 0
  for (let at = 0; at < bytes.length; at += READ) n += d.push(bytes.subarray(at, at + READ)).frames.length
  return n
}

// The floor: each frame's bytes joined once (when split over reads) and checksummed, nothing else.
const floor = (bytes: Buffer, frameSize: number) => {
  const total = H + frameSize
  let n = 0
  let sink = 0
  for (let at = 0; at + total <= bytes.length; at += total) {
    const start = at - (at % READ)
    const pieces: Array<Buffer> = []
    for (let r = start; r < at + total; r += READ) {
      const piece = bytes.subarray(r, Math.min(r + READ, bytes.length))
      const from = Math.max(at, r) - r
      const to = Math.min(at + total, r + piece.length) - r
      pieces.push(piece.subarray(from, to))
    }
    const frame = pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, total)
    sink ^= crc32(frame.subarray(H), crc32(frame.subarray(0, H - 4)))
    n++
  }
  return sink === 0.5 ? -1 : n
}

const time = (f: () => number, expect: number) => {
  const t0 = process.hrtime.bigint()
  const n = f()
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (n !== expect) throw new Error(`decoded ${n} frames, expected ${expect}`)
  return s
}

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number

for (const [label, count, size] of [
  ["1 MiB frames in 64 KiB reads", 64, 1 << 20],
  ["64 B frames in 64 KiB reads", 200_000, 64],
] as const) {
  const bytes = stream(count, size)
  const w: Array<number> = []
  const f: Array<number> = []
  for (let r = 0; r < 31; r++) {
    if (r % 2 === 0) {
      w.push(time(() => wireDecode(bytes, size), count))
      f.push(time(() => floor(bytes, size), count))
    } else {
      f.push(time(() => floor(bytes, size), count))
      w.push(time(() => wireDecode(bytes, size), count))
    }
  }
  const mib = bytes.length / 2 ** 20
  console.log(
    JSON.stringify({
      case: label,
      floor_mib_s: (mib / median(f)).toFixed(0),
      wire_mib_s: (mib / median(w)).toFixed(0),
      wire_vs_floor: (median(f) / median(w)).toFixed(2),
    }),
  )
}
