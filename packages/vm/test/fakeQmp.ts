// An in-process QMP server for protocol tests: each connection is handed to a script.
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"

export const GREETING = JSON.stringify({
  QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "fake" }, capabilities: ["oob"] },
})

/** A connection seen from the server: lines received (parsed) and a writer. */
export interface Peer {
  readonly socket: net.Socket
  /** The next command the client sends. */
  readonly next: () => Promise<{ execute: string; id?: number; arguments?: unknown }>
  readonly send: (line: string) => void
}

/** Answers the greeting and `qmp_capabilities` like QEMU. */
export const handshake = async (peer: Peer) => {
  peer.send(GREETING)
  const caps = await peer.next()
  peer.send(JSON.stringify({ return: {}, id: caps.id }))
}

export const fakeServer = (script: (peer: Peer) => Promise<void>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), "novacron-qmp-"))
      const file = path.join(dir, "qmp.sock")
      const sockets = new Set<net.Socket>()
      const closedByClient: Array<boolean> = []
      const server = net.createServer((socket) => {
        sockets.add(socket)
        const index = closedByClient.push(false) - 1
        socket.on("end", () => {
          closedByClient[index] = true
        })
        socket.on("close", () => {
          closedByClient[index] = true
        })
        socket.on("error", () => {})
        let buffer = ""
        const lines: Array<string> = []
        const waiters: Array<(line: string) => void> = []
        socket.setEncoding("utf8")
        socket.on("data", (chunk: string) => {
          buffer += chunk
          let nl = buffer.indexOf("\n")
          while (nl >= 0) {
            const line = buffer.slice(0, nl)
            buffer = buffer.slice(nl + 1)
            const w = waiters.shift()
            if (w) w(line)
            else lines.push(line)
            nl = buffer.indexOf("\n")
          }
        })
        const peer: Peer = {
          socket,
          next: () =>
            new Promise((resolve) => {
              const l = lines.shift()
              if (l !== undefined) resolve(JSON.parse(l))
              else waiters.push((line) => resolve(JSON.parse(line)))
            }),
          send: (line) => {
            if (!socket.destroyed) socket.write(`${line}\n`)
          },
        }
        script(peer).catch(() => socket.destroy())
      })
      await new Promise<void>((resolve) => server.listen(file, resolve))
      return { file, dir, server, sockets, closedByClient }
    }),
    ({ dir, server, sockets }) =>
      Effect.promise(async () => {
        for (const s of sockets) s.destroy()
        await new Promise((resolve) => server.close(resolve))
        await fs.rm(dir, { recursive: true, force: true })
      }),
  )
