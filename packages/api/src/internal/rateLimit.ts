// A token bucket per principal: `rate` tokens a second, at most `burst` banked. The map is bounded:
// past `maxKeys` principals the least recently seen is dropped (it starts again with a full bucket).
export interface RateLimiter {
  /** 0 when the call may go ahead, else the milliseconds until it may. */
  readonly take: (key: string, now: number) => number
}

export const make = (rate: number, burst: number, maxKeys = 10_000): RateLimiter => {
  if (rate <= 0) return { take: () => 0 }
  const buckets = new Map<string, { tokens: number; at: number }>()
  return {
    take: (key, now) => {
      const b = buckets.get(key) ?? { tokens: burst, at: now }
      buckets.delete(key)
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate)
      b.at = now
      buckets.set(key, b)
      if (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value!)
      if (b.tokens >= 1) {
        b.tokens -= 1
        return 0
      }
      return Math.ceil(((1 - b.tokens) / rate) * 1000)
    },
  }
}
