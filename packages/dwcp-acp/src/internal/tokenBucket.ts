/**
 * Token bucket with debt: a reservation larger than the tokens on hand is granted at once and the bucket
 * goes negative; the caller waits until the debt is repaid at the current rate. That keeps the long-run
 * rate exact whatever the timer overshoot (late wake-ups refill, up to `burst`).
 * Times are milliseconds on whatever clock the caller passes.
 */
export class TokenBucket {
  private tokens: number
  private last: number
  rate: number
  burst: number
  readonly fixedBurst: boolean
  bytes = 0

  constructor(rate: number, burst: number | undefined, now: number) {
    this.rate = clampRate(rate)
    this.fixedBurst = burst !== undefined
    this.burst = burst ?? defaultBurst(this.rate)
    this.tokens = this.burst
    this.last = now
  }

  private refill(now: number): void {
    if (!Number.isFinite(this.rate)) this.tokens = this.burst
    else this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000)
    this.last = now
  }

  setRate(rate: number, now: number): void {
    this.refill(now)
    this.rate = clampRate(rate)
    if (!this.fixedBurst) this.burst = defaultBurst(this.rate)
    this.tokens = Math.min(this.tokens, this.burst)
  }

  /** Takes `n` bytes' worth of tokens; returns how long (ms) to wait before sending them. */
  reserve(n: number, now: number): number {
    this.refill(now)
    this.bytes += n
    if (!Number.isFinite(this.rate)) return 0
    this.tokens -= n
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000
  }

  /** Largest piece to reserve at once, so a rate change applies within about one burst. */
  get piece(): number {
    return Math.max(1024, Math.min(this.burst, 256 * 1024))
  }
}

/** 10 ms worth of bytes, at least 16 KiB (a few segments, so pacing does not defeat TSO/GRO). */
export const defaultBurst = (rate: number): number =>
  Number.isFinite(rate) ? Math.max(16 * 1024, Math.round(rate / 100)) : 16 * 1024 * 1024

const clampRate = (rate: number): number => (Number.isNaN(rate) || rate < 1 ? 1 : rate)
