// A loopback TCP proxy that misbehaves on purpose: per-connection delay (so chunks on different
// streams arrive out of order), random per-chunk hold-ups, killing or stalling connections.
import * as net from "node:net"

export interface ProxyLink {
  readonly id: number
  readonly client: net.Socket
  readonly upstream: net.Socket
  /** Bytes forwarded client -> upstream. */
  forwarded: number
  stalled: boolean
  kill(): void
  /** Stop forwarding in both directions without closing (a black hole). */
  stall(): void
}

export interface ProxyOptions {
  readonly target: number
  /** Fixed extra delay per connection in ms, chosen per connection (reorders across streams). */
  readonly delayMs?: (id: number) => number
  /** Called for each piece forwarded client -> upstream; may kill or stall the link. */
  readonly onForward?: (link: ProxyLink, proxy: Proxy) => void
  /** Replaces each piece forwarded client -> upstream (e.g. to corrupt a byte). */
  readonly transform?: (link: ProxyLink, chunk: Buffer) => Buffer
  /** Random generator for anything the proxy decides (seeded by the test). */
  readonly random?: () => number
}

export interface Proxy {
  readonly port: number
  readonly links: Array<ProxyLink>
  readonly live: () => Array<ProxyLink>
  killAll(): void
  /** Refuse new connections (true) or accept again (false). */
  refuse(on: boolean): void
  close(): Promise<void>
}

export const startProxy = async (options: ProxyOptions): Promise<Proxy> => {
  const links: Array<ProxyLink> = []
  let refusing = false
  let nextId = 0
  const sockets = new Set<net.Socket>()
  let proxy: Proxy
  const server = net.createServer((client) => {
    sockets.add(client)
    client.on("close", () => sockets.delete(client))
    if (refusing) return void client.destroy()
    const upstream = net.connect({ host: "127.0.0.1", port: options.target })
    sockets.add(upstream)
    upstream.on("close", () => sockets.delete(upstream))
    const id = nextId++
    const delay = options.delayMs?.(id) ?? 0
    const link: ProxyLink = {
      id,
      client,
      upstream,
      forwarded: 0,
      stalled: false,
      kill() {
        client.destroy()
        upstream.destroy()
      },
      stall() {
        link.stalled = true
      },
    }
    links.push(link)
    const pipe = (from: net.Socket, to: net.Socket, forward: boolean) => {
      from.on("data", (data: Buffer) => {
        if (link.stalled) return
        const chunk = forward && options.transform ? options.transform(link, data) : data
        const go = () => {
          if (link.stalled || to.destroyed) return
          if (forward) {
            link.forwarded += chunk.length
            options.onForward?.(link, proxy)
            if (link.stalled || to.destroyed) return
          }
          if (!to.write(chunk)) {
            from.pause()
            to.once("drain", () => from.resume())
          }
        }
        if (delay > 0) setTimeout(go, delay)
        else go()
      })
      from.on("close", () => setTimeout(() => to.destroy(), delay))
      from.on("error", () => {})
    }
    pipe(client, upstream, true)
    pipe(upstream, client, false)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  proxy = {
    port: (server.address() as net.AddressInfo).port,
    links,
    live: () => links.filter((l) => !l.client.destroyed),
    killAll() {
      for (const l of links) l.kill()
    },
    refuse(on) {
      refusing = on
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
  return proxy
}

/** A small deterministic PRNG (mulberry32) so failures are reproducible. */
export const seeded = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
