// Probe accuracy on loopback. RTT: the probe's median echo RTT against responders that hold each
// echo back by a known delay, beside the baseline of a bare TCP connect to the same responder.
// Bandwidth: the probe's bulk measurement beside the baseline of a raw socket transfer of the
// same bytes to a discarding server, timed to the server's last byte.
import { connect, createServer } from "node:net"
import { Effect } from "effect"
import { Probe } from "../src/index.js"

const connectMs = (port: number) =>
  new Promise<number>((ok) => {
    const start = performance.now()
    const s = connect({ host: "127.0.0.1", port }, () => {
      ok(performance.now() - start)
      s.destroy()
    })
  })
const median = (xs: Array<number>) => xs.sort((a, b) => a - b)[xs.length >> 1]!

const rawTransfer = (bytes: number) =>
  new Promise<number>((ok) => {
    let got = 0
    let start = 0
    const server = createServer((socket) => {
      socket.on("data", (d) => {
        got += d.length
        if (got >= bytes) {
          const bps = (bytes * 8) / ((performance.now() - start) / 1000)
          socket.destroy()
          server.close(() => ok(bps))
        }
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      const chunk = Buffer.alloc(1 << 20, 0xa5)
      const c = connect({ host: "127.0.0.1", port }, async () => {
        start = performance.now()
        for (let sent = 0; sent < bytes; sent += chunk.length) {
          if (!c.write(chunk)) await new Promise((r) => c.once("drain", r))
        }
      })
      c.on("error", () => undefined)
    })
  })

const program = Effect.gen(function* () {
  console.log("RTT (20 pings each)")
  for (const delay of [0, 5, 20, 60]) {
    const r = yield* Probe.serve({ delayMs: delay })
    const m = yield* Probe.measure(r.address, { count: 20, bandwidthBytes: 0 })
    const base = yield* Effect.promise(async () => {
      const xs: Array<number> = []
      for (let i = 0; i < 20; i++) xs.push(await connectMs(r.port))
      return median(xs)
    })
    console.log(
      `  delay ${String(delay).padStart(2)} ms: probe median ${m.rttMs!.toFixed(3)} ms, jitter ${m.jitterMs!.toFixed(3)} ms, loss ${m.loss}; ` +
        `bare connect ${base.toFixed(3)} ms; probe - delay = ${(m.rttMs! - delay).toFixed(3)} ms (${((m.rttMs! - delay) / base).toFixed(2)}x connect)`,
    )
  }
  console.log("bandwidth (64 MiB, 3 runs each, median)")
  const bytes = 64 << 20
  const r = yield* Probe.serve()
  const probe: Array<number> = []
  const raw: Array<number> = []
  for (let i = 0; i < 3; i++) {
    probe.push((yield* Probe.measure(r.address, { count: 1, bandwidthBytes: bytes })).bandwidthBps!)
    raw.push(yield* Effect.promise(() => rawTransfer(bytes)))
  }
  const p = median(probe)
  const b = median(raw)
  console.log(
    `  probe ${(p / 1e9).toFixed(2)} Gbit/s, raw socket ${(b / 1e9).toFixed(2)} Gbit/s: ${(p / b).toFixed(2)}x baseline`,
  )
})
Effect.runPromise(Effect.scoped(program))
