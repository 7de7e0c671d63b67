// Frame codec and loopback transport throughput.
// 1. Decoding: the streaming decoder over a stream of frames cut into 64 KiB reads, against the floor
//    it cannot beat on the same bytes: one CRC-32 pass (baseline).
// 2. Loopback: request/response round trips over one connection, mutual TLS against plain TCP (baseline),
//    same payloads, same process. Usage: pnpm --filter @novacron/network bench
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { crc32 } from "node:zlib"
import { Security, SecuritySettings } from "@novacron/security"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import * as Frame from "../src/Frame.js"
import * as Network from "../src/Network.js"
import * as NetworkSettings from "../src/NetworkSettings.js"

const time = (f: () => void, minMillis = 300) => {
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < minMillis) {
    f()
    n++
  }
  return (performance.now() - t0) / n
}

console.log(`load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores`)
for (const size of [64, 1024, 65536]) {
  const total = 8 << 20
  const frame = Frame.encode({ type: 16, flags: 0, payload: Buffer.alloc(size, 7) })
  const stream = Buffer.concat(Array.from({ length: Math.ceil(total / frame.length) }, () => frame))
  const reads: Array<Buffer> = []
  for (let i = 0; i < stream.length; i += 65536) reads.push(stream.subarray(i, i + 65536))
  const decode = time(() => {
    const d = Frame.decoder(1 << 20)
    for (const r of reads) d.push(r)
  })
  const floor = time(() => crc32(stream))
  const mbs = (ms: number) => (stream.length / 1e6 / (ms / 1000)).toFixed(0)
  console.log(
    `decode ${String(size).padStart(5)} B frames: ${mbs(decode)} MB/s; crc32-only baseline ${mbs(floor)} MB/s; ` +
      `decoder/baseline time ${(decode / floor).toFixed(2)}x`,
  )
}

const ROUND_TRIPS = Number(process.env.ROUND_TRIPS ?? 2000)
const loopback = (tls: boolean) =>
  Effect.scoped(
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "novacron-net-bench-"))),
        (d) => Effect.promise(() => fs.rm(d, { recursive: true, force: true })),
      )
      const settings = NetworkSettings.decode({ bind_port: 0, enable_tls: tls })
      const security = Security.layer(SecuritySettings.decode({ auth_method: tls ? "mtls" : "none" }), {
        data_dir: dir,
        node_id: "bench",
        listen_address: "127.0.0.1",
        env: {},
      })
      const ctx = yield* Layer.build(Layer.provide(Network.layer(settings), security))
      const net = Context.get(ctx, Network.Network)
      const client = yield* net.dial(`127.0.0.1:${net.address.port}`)
      const server = yield* net.accepted.take
      yield* Effect.forever(Effect.flatMap(server.receive.take, (f) => server.send(17, f.payload))).pipe(
        Effect.ignore,
        Effect.forkScoped,
      )
      const payload = Buffer.alloc(1024, 1)
      const t0 = performance.now()
      for (let i = 0; i < ROUND_TRIPS; i++) {
        yield* client.send(16, payload)
        yield* client.receive.take
      }
      return (performance.now() - t0) / ROUND_TRIPS
    }),
  ).pipe(Logger.withMinimumLogLevel(LogLevel.None))

// The first pair warms up the JIT and is discarded.
await Effect.runPromise(loopback(false))
await Effect.runPromise(loopback(true))
// Alternated so neither side always runs second.
const plains: Array<number> = []
const mtlss: Array<number> = []
for (let i = 0; i < 3; i++) {
  plains.push(await Effect.runPromise(loopback(false)))
  mtlss.push(await Effect.runPromise(loopback(true)))
}
const med = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[1]!
const plain = med(plains)
const mtls = med(mtlss)
console.log(
  `loopback 1 KiB request/response, ${ROUND_TRIPS} round trips (median of 3 runs): mTLS ${(mtls * 1000).toFixed(0)} µs, ` +
    `plain TCP baseline ${(plain * 1000).toFixed(0)} µs; mTLS/plain ${(mtls / plain).toFixed(2)}x`,
)
