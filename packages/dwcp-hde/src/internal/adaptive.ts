// Adaptive codec choice. The sender's goodput with codec c is bounded by two pipes:
//   compress: speed_c × workers        (input bytes per second the pool can compress)
//   link:     linkBps × ratio_c         (input bytes per second the link carries once compressed)
// We pick the codec with the highest min(compress, link); among those within 5 % of the best,
// the one with the best ratio (it saves the link for others). ratio_c is predicted from an lz4
// pass over a 64 KiB sample of the chunk times a learned gain of c over lz4; speed_c and gain_c
// are exponentially weighted averages of what the workers measured on earlier chunks.
import { compressSync as lz4Compress } from "lz4-napi"
import { Codec } from "./format.js"

export interface Candidate {
  readonly codec: number
  readonly level: number
}

export interface Estimate {
  /** Input bytes per second on one worker. */
  speed: number
  /** Ratio of this codec divided by the lz4 ratio of the sample. */
  gain: number
}

export type Estimates = Record<string, Estimate>

export const key = (c: Candidate): string =>
  c.codec === Codec.zstd ? `zstd${c.level}` : c.codec === Codec.lz4 ? "lz4" : "none"

/** Priors (one x86 core, typical data); replaced by measurements as chunks complete. */
export const initialEstimates = (zstdLevel: number): Estimates => {
  const e: Estimates = {
    lz4: { speed: 600e6, gain: 1 },
    zstd1: { speed: 350e6, gain: 1.2 },
    zstd3: { speed: 220e6, gain: 1.3 },
    zstd9: { speed: 60e6, gain: 1.4 },
    zstd19: { speed: 4e6, gain: 1.5 },
  }
  if (e[`zstd${zstdLevel}`] === undefined)
    e[`zstd${zstdLevel}`] = { speed: 220e6 / Math.max(1, zstdLevel / 3), gain: 1.35 }
  return e
}

export const candidates = (estimates: Estimates): ReadonlyArray<Candidate> =>
  Object.keys(estimates).map((k) =>
    k === "lz4" ? { codec: Codec.lz4, level: 1 } : { codec: Codec.zstd, level: Number(k.slice(4)) },
  )

const SAMPLE = 64 * 1024

/** lz4 ratio of a sample from the middle of `data`: cheap (~0.1 ms) and a good rank predictor. */
export const sampleRatio = (data: Uint8Array): number => {
  const start = data.length > SAMPLE ? (data.length - SAMPLE) >>> 1 : 0
  const s = data.subarray(start, start + SAMPLE)
  const c = lz4Compress(Buffer.from(s.buffer, s.byteOffset, s.length))
  return s.length / Math.max(1, c.length - 4)
}

export interface Plan {
  readonly linkBps: number
  readonly workers: number
  readonly estimates: Estimates
}

export const choose = (plan: Plan, ratio: number): Candidate => {
  if (ratio < 1.05) return { codec: Codec.none, level: 0 }
  let best: Candidate = { codec: Codec.none, level: 0 }
  let bestRate = plan.linkBps
  let bestRatio = 1
  const scored = candidates(plan.estimates).map((c) => {
    const e = plan.estimates[key(c)] ?? { speed: 1, gain: 1 }
    const r = Math.max(1, ratio * e.gain)
    return { c, r, rate: Math.min(e.speed * plan.workers, plan.linkBps * r) }
  })
  const top = Math.max(bestRate, ...scored.map((s) => s.rate))
  for (const s of scored) {
    if (s.rate >= top * 0.95 && (s.r > bestRatio || (s.r === bestRatio && s.rate > bestRate))) {
      best = s.c
      bestRate = s.rate
      bestRatio = s.r
    }
  }
  if (bestRate < top * 0.95) return { codec: Codec.none, level: 0 }
  return best
}

/** Folds one measured chunk into the estimates (weight 1/8 per observation). */
export const learn = (
  estimates: Estimates,
  c: Candidate,
  observed: { readonly bytes: number; readonly nanos: number; readonly ratio: number; readonly sampleRatio: number },
): void => {
  const e = estimates[key(c)]
  if (e === undefined || observed.nanos <= 0 || observed.bytes < 4096) return
  const speed = (observed.bytes * 1e9) / observed.nanos
  e.speed += (speed - e.speed) / 8
  e.gain += (observed.ratio / observed.sampleRatio - e.gain) / 8
}
