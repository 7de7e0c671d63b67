// One end of a benchmark/test transfer, run inside a network namespace of the WAN emulator:
//   receive <port>                          prints {"bytes","seconds","bps"} (after the omitted warm-up)
//   send <host> <port> <seconds> <policy>   policy: cubic | bbr | internet | datacenter | datacenter+adapt
//                                           [--pace-bps N] prints the selections and final TCP_INFO as JSON
// Options: --omit S (warm-up seconds, default 2).
import * as net from "node:net"
import { Effect } from "effect"
import { CongestionControl, Pacer, TcpInfo } from "../src/index.js"

const [role, ...rest] = process.argv.slice(2)
const flag = (k: string, d: number): number => {
  const i = rest.indexOf(k)
  return i >= 0 ? Number(rest[i + 1]) : d
}
const omit = flag("--omit", 2)

if (role === "receive") {
  const port = Number(rest[0])
  const server = net.createServer((c) => {
    let first = 0
    let counted = 0
    let from = 0
    let last = 0
    c.on("data", (d: Buffer) => {
      const now = performance.now()
      if (first === 0) first = now
      if (now - first >= omit * 1000) {
        if (from === 0) from = now
        else counted += d.length
        last = now
      }
    })
    c.on("close", () => {
      const seconds = (last - from) / 1000
      process.stdout.write(`${JSON.stringify({ bytes: counted, seconds, bps: (counted * 8) / seconds })}\n`)
      server.close()
    })
  })
  server.listen(port, "0.0.0.0", () => process.stdout.write("listening\n"))
} else if (role === "send") {
  const [host, portS, secondsS, policy] = rest as [string, string, string, string]
  const paceBps = flag("--pace-bps", 0)
  const program = Effect.gen(function* () {
    const socket = yield* Effect.async<net.Socket, Error>((resume) => {
      const s = net.connect(Number(portS), host, () => resume(Effect.succeed(s)))
      s.once("error", (e) => resume(Effect.fail(e)))
    })
    const selections: Array<unknown> = []
    if (policy === "cubic" || policy === "bbr") selections.push(yield* CongestionControl.apply(socket, [policy]))
    else {
      const mode = policy.startsWith("datacenter") ? "datacenter" : (policy as CongestionControl.Mode)
      selections.push(yield* CongestionControl.configure(socket, { mode }))
    }
    const pacer = yield* Pacer.make({ rate: paceBps > 0 ? paceBps / 8 : Number.POSITIVE_INFINITY })
    const chunk = Buffer.alloc(256 * 1024, 7)
    const end = performance.now() + (omit + Number(secondsS)) * 1000
    let adapted = policy !== "datacenter+adapt"
    while (performance.now() < end) {
      yield* pacer.take(chunk.length)
      const ok = socket.write(chunk)
      if (!ok) yield* Effect.async<void>((resume) => void socket.once("drain", () => resume(Effect.void)))
      if (!adapted && performance.now() > end - Number(secondsS) * 1000 - omit * 500) {
        // One second in: enough RTTs and losses for TCP_INFO to describe the path.
        adapted = true
        selections.push(yield* CongestionControl.adapt(socket, { mode: "datacenter" }))
      }
    }
    const info = yield* TcpInfo.read(socket)
    yield* Effect.async<void>((resume) => void socket.end(() => resume(Effect.void)))
    process.stdout.write(
      `${JSON.stringify({ selections, obtained: yield* Effect.orElseSucceed(CongestionControl.current(socket), () => "closed"), info: { rttUs: info.rttUs, totalRetrans: info.totalRetrans, bytesSent: info.bytesSent, bytesRetrans: info.bytesRetrans, deliveryRate: info.deliveryRate } })}\n`,
    )
  })
  Effect.runPromise(program).catch((e) => {
    console.error(e)
    process.exit(1)
  })
} else {
  console.error("usage: peer.ts receive <port> | send <host> <port> <seconds> <policy> [--pace-bps N] [--omit S]")
  process.exit(2)
}
