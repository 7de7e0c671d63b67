// Issue 18's probe: 300 HELLO-then-disconnect connections against a receiver with default limits;
// prints threads, open fds and RSS before and after. `node --import tsx bench/hello-flood.ts`
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Frame, Receiver } from "../src/index.js"

const stats = () => ({
  threads: readdirSync("/proc/self/task").length,
  fds: readdirSync("/proc/self/fd").length,
  rssMiB: Math.round(process.memoryUsage().rss / 1048576),
})
const hello = (i: number) => {
  const id = Buffer.alloc(16)
  id.writeUInt32BE(i + 1)
  return Frame.encodeToBuffer({
    type: Frame.FrameType.HELLO,
    transferId: id,
    seq: 0,
    offset: 0,
    payload: Buffer.from(JSON.stringify({ name: `p${i}.img`, size: 1 << 30, chunkSize: 262144, stream: 0 })),
  })
}
const one = (port: number, i: number) =>
  new Promise<void>((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => s.write(hello(i)))
    s.on("data", () => s.destroy())
    s.on("error", () => {})
    s.on("close", () => resolve())
  })
const program = Effect.scoped(
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "amst-probe-"))),
      (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true })),
    )
    const rx = yield* Receiver.listen({ dir })
    const before = stats()
    yield* Effect.promise(() => Promise.all(Array.from({ length: 300 }, (_, i) => one(rx.port, i))))
    yield* Effect.sleep(500)
    const after = stats()
    console.log(JSON.stringify({ before, afterFlood: after }))
  }),
)
Effect.runPromise(program)
