import { readFileSync } from "node:fs"
import * as tls from "node:tls"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { CongestionControl } from "../src/index.js"
import { loopbackPair, ssInfo } from "./helpers.js"

const listed = readFileSync(CongestionControl.availablePath, "utf8").split(/\s+/)

describe("preference", () => {
  it("follows the mode, then the measured conditions", () => {
    expect(CongestionControl.preference("datacenter").order).toEqual(["dctcp", "cubic"])
    expect(CongestionControl.preference("datacenter", { rttMs: 0.2, lossRate: 0 }).order).toEqual(["dctcp", "cubic"])
    expect(CongestionControl.preference("datacenter", { rttMs: 50 }).order).toEqual(["bbr", "cubic"])
    expect(CongestionControl.preference("datacenter", { rttMs: 1, lossRate: 0.005 }).order).toEqual(["bbr", "cubic"])
    expect(CongestionControl.preference("internet").order).toEqual(["bbr", "cubic"])
    expect(CongestionControl.preference("hybrid").order).toEqual(["bbr", "cubic"])
    expect(CongestionControl.preference("hybrid", { rttMs: 0.5, lossRate: 0 }).order).toEqual(["dctcp", "cubic"])
    expect(CongestionControl.preference("hybrid", { rttMs: 5, lossRate: 0 }).order).toEqual(["bbr", "cubic"])
    expect(CongestionControl.preference("hybrid", { rttMs: 25, lossRate: 0.01 }).reason).toMatch(/WAN-like/)
  })
})

describe("TCP_CONGESTION on a real socket", () => {
  it.scoped("available reads the kernel's list", () =>
    Effect.gen(function* () {
      const list = yield* CongestionControl.available
      expect(list).toEqual(listed.filter((s) => s.length > 0))
    }),
  )

  for (const algorithm of ["bbr", "cubic"] as const) {
    it.scoped(`sets ${algorithm} and reads it back (checked with ss)`, () =>
      Effect.gen(function* () {
        const { client } = yield* loopbackPair
        // Start from the other one so the read-back proves a change.
        yield* CongestionControl.set(client, algorithm === "bbr" ? "cubic" : "bbr")
        const selection = yield* CongestionControl.apply(client, [algorithm])
        expect(selection).toMatchObject({ requested: algorithm, obtained: algorithm, fallback: false })
        expect(selection.attempts).toEqual([{ algorithm, listed: true, readBack: algorithm }])
        expect(yield* CongestionControl.current(client)).toBe(algorithm)
        const port = client.localPort as number
        expect(ssInfo(port)).toMatch(new RegExp(`\\b${algorithm}\\b`))
      }),
    )
  }

  it.scoped("internet mode obtains bbr", () =>
    Effect.gen(function* () {
      const { client } = yield* loopbackPair
      yield* CongestionControl.set(client, "cubic")
      const s = yield* CongestionControl.configure(client, { mode: "internet" })
      expect(s).toMatchObject({ requested: "bbr", obtained: "bbr", fallback: false })
    }),
  )

  it.scoped("datacenter mode asks for dctcp and reports the fallback when the kernel lacks it", () =>
    Effect.gen(function* () {
      const { client } = yield* loopbackPair
      yield* CongestionControl.set(client, "bbr")
      const s = yield* CongestionControl.configure(client, { mode: "datacenter" })
      expect(s.requested).toBe("dctcp")
      if (listed.includes("dctcp")) {
        expect(s).toMatchObject({ obtained: "dctcp", fallback: false })
      } else {
        // Not loaded here, and root's on-demand module load fails too: setsockopt says ENOENT.
        expect(s).toMatchObject({ obtained: "cubic", fallback: true })
        expect(s.attempts[0]).toEqual({ algorithm: "dctcp", listed: false, error: "ENOENT" })
        expect(s.reason).toMatch(/dctcp refused \(ENOENT, not in tcp_available_congestion_control\)/)
        expect(ssInfo(client.localPort as number)).toMatch(/\bcubic\b/)
      }
    }),
  )

  it.scoped("an explicit algorithm goes first; the mode's order is the fallback", () =>
    Effect.gen(function* () {
      const { client } = yield* loopbackPair
      const s = yield* CongestionControl.configure(client, { mode: "internet", algorithm: "no-such-cc" })
      expect(s).toMatchObject({ requested: "no-such-cc", obtained: "bbr", fallback: true })
      expect(s.attempts.map((a) => [a.algorithm, a.error])).toEqual([
        ["no-such-cc", "ENOENT"],
        ["bbr", undefined],
      ])
    }),
  )

  it.scoped("when every algorithm is refused, the system default is what was obtained", () =>
    Effect.gen(function* () {
      const { client } = yield* loopbackPair
      const before = yield* CongestionControl.current(client)
      const s = yield* CongestionControl.apply(client, ["no-such-cc", "dctcp-x"])
      expect(s).toMatchObject({ requested: "no-such-cc", obtained: before, fallback: true })
      expect(s.reason).toMatch(new RegExp(`kept system default ${before}`))
    }),
  )

  it.scoped("setsockopt errors surface as typed failures", () =>
    Effect.gen(function* () {
      const { client } = yield* loopbackPair
      const err = yield* Effect.flip(CongestionControl.set(client, "no-such-cc"))
      expect(err).toMatchObject({ _tag: "SocketOptionError", code: "ENOENT", errno: 2 })
      client.destroy()
      const gone = yield* Effect.exit(CongestionControl.current(client))
      expect(Exit.isFailure(gone) && JSON.stringify(gone.cause)).toMatch(/NoSocketFd/)
    }),
  )

  it.scoped("works on TLS sockets (the fd of the TCP socket underneath)", () =>
    Effect.gen(function* () {
      const fixture = (f: string) => readFileSync(new URL(`fixtures/${f}`, import.meta.url))
      const server = yield* Effect.acquireRelease(
        Effect.async<tls.Server>((resume) => {
          const s = tls.createServer({ key: fixture("key.pem"), cert: fixture("cert.pem") }, (c) => c.resume())
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.sync(() => s.close()),
      )
      const port = (server.address() as { port: number }).port
      const client = yield* Effect.acquireRelease(
        Effect.async<tls.TLSSocket>((resume) => {
          const c = tls.connect(port, "127.0.0.1", { rejectUnauthorized: false }, () => resume(Effect.succeed(c)))
        }),
        (c) => Effect.sync(() => c.destroy()),
      )
      const s = yield* CongestionControl.apply(client, ["cubic"])
      expect(s).toMatchObject({ obtained: "cubic", fallback: false })
      expect(ssInfo(client.localPort as number)).toMatch(/\bcubic\b/)
    }),
  )
})
