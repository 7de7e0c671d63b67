/** Fixed-capacity ring buffer of numbers; overwrites the oldest value when full. */
export class RingBuffer {
  private readonly data: Float64Array
  private head = 0
  private count = 0
  constructor(readonly capacity: number) {
    this.data = new Float64Array(capacity)
  }
  get size(): number {
    return this.count
  }
  push(v: number): void {
    this.data[this.head] = v
    this.head = (this.head + 1) % this.capacity
    if (this.count < this.capacity) this.count++
  }
  /** Values oldest first. */
  toArray(): Float64Array {
    const out = new Float64Array(this.count)
    const start = (this.head - this.count + this.capacity) % this.capacity
    for (let i = 0; i < this.count; i++) out[i] = this.data[(start + i) % this.capacity]!
    return out
  }
}
