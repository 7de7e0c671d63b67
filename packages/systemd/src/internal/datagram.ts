import { createRequire } from "node:module"

/** The part of node-unix-socket's `DgramSocket` used here. */
interface DgramSocket {
  sendTo(
    buf: Buffer,
    offset: number,
    length: number,
    destPath: string,
    onWrite?: (err: Error | undefined) => void,
  ): void
  close(): void
  on(event: "error", listener: (error: Error) => void): unknown
}
type Addon = { readonly DgramSocket: new () => DgramSocket }

let addon: Addon | undefined
// Loaded on first use, so a node not run by systemd never loads the native addon (and one whose
// platform has no prebuilt binary still starts). Inside the agent's CommonJS bundle `require` is
// the bundle's own; in ESM it comes from this module's URL.
const load = (): Addon => {
  if (addon === undefined) {
    const req: NodeJS.Require = typeof require === "function" ? require : createRequire(import.meta.url)
    addon = req("node-unix-socket") as Addon
  }
  return addon
}

/**
 * Sends one datagram to the unix socket at `path` from a fresh unbound socket (as sd_notify(3)
 * does), closed once the kernel has taken it.
 */
export const sendDatagram = (path: string, payload: Buffer): Promise<void> =>
  new Promise((resolve, reject) => {
    let socket: DgramSocket
    try {
      socket = new (load().DgramSocket)()
    } catch (e) {
      reject(e)
      return
    }
    socket.on("error", reject)
    try {
      socket.sendTo(payload, 0, payload.length, path, (err) => {
        socket.close()
        if (err) reject(err)
        else resolve()
      })
    } catch (e) {
      socket.close()
      reject(e)
    }
  })

/** A bound datagram socket that hands every datagram to `onData` (tests: a systemd stand-in). */
export const listenDatagram = (path: string, onData: (data: Buffer) => void): { readonly close: () => void } => {
  const socket = new (load().DgramSocket)() as DgramSocket & {
    bind(path: string): void
    on(event: "data", listener: (data: Buffer) => void): unknown
  }
  socket.bind(path)
  socket.on("data", (data: Buffer) => onData(Buffer.from(data)))
  return { close: () => socket.close() }
}
