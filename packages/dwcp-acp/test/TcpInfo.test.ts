import { randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { CongestionControl, TcpInfo } from "../src/index.js"
import { loopbackPair, ssInfo } from "./helpers.js"

const TCP_ESTABLISHED = 1

describe("TCP_INFO", () => {
  it.scoped("reports what a real 4 MiB transfer did, on both ends", () =>
    Effect.gen(function* () {
      const { client, server } = yield* loopbackPair
      const payload = randomBytes(4 * 1024 * 1024)
      let received = 0
      yield* Effect.async<void>((resume) => {
        server.on("data", (d: Buffer) => {
          received += d.length
          if (received === payload.length) resume(Effect.void)
        })
        client.write(payload)
      })
      const sender = yield* TcpInfo.read(client)
      const receiver = yield* TcpInfo.read(server)
      expect(sender.state).toBe(TCP_ESTABLISHED)
      expect(receiver.bytesReceived).toBe(payload.length)
      // bytes_sent counts retransmitted bytes too (loopback under load can retransmit a tail probe).
      expect(sender.bytesSent - sender.bytesRetrans).toBe(payload.length)
      expect(sender.rttUs).toBeGreaterThan(0)
      expect(sender.minRttUs).toBeGreaterThan(0)
      expect(sender.minRttUs).toBeLessThanOrEqual(sender.rttUs + sender.rttvarUs)
      expect(sender.deliveryRate).toBeGreaterThan(0)
      expect(sender.sndCwnd).toBeGreaterThan(0)
      expect(sender.sndMss).toBeGreaterThan(500)
      expect(sender.totalRetrans === 0).toBe(sender.bytesRetrans === 0)
      // Cross-check with ss (iproute2 reads the same struct via netlink, not through the addon).
      const ss = ssInfo(client.localPort as number)
      const mss = /\bmss:(\d+)/.exec(ss)?.[1]
      expect(Number(mss)).toBe(sender.sndMss)
      const c = TcpInfo.conditions(sender)
      expect(c.rttMs).toBeCloseTo(sender.rttUs / 1000, 6)
      expect(c.lossRate).toBe(sender.bytesRetrans / sender.bytesSent)
      // Loopback reads as a datacenter path, unless a retransmission made this short transfer look lossy.
      expect(CongestionControl.preference("hybrid", c).order[0]).toBe(sender.bytesRetrans === 0 ? "dctcp" : "bbr")
    }),
  )

  it.scoped("SO_MAX_PACING_RATE shows in tcpi_max_pacing_rate, and can be lifted", () =>
    Effect.gen(function* () {
      const { client } = yield* loopbackPair
      expect((yield* TcpInfo.read(client)).maxPacingRate).toBe(-1)
      yield* TcpInfo.setMaxPacingRate(client, 1_250_000)
      expect((yield* TcpInfo.read(client)).maxPacingRate).toBe(1_250_000)
      yield* TcpInfo.setMaxPacingRate(client, Number.POSITIVE_INFINITY)
      expect((yield* TcpInfo.read(client)).maxPacingRate).toBe(-1)
    }),
  )

  it.live("monitor samples until the socket goes away", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { client } = yield* loopbackPair
        const samples = yield* TcpInfo.monitor(client, "5 millis").pipe(Stream.take(3), Stream.runCollect)
        expect(Chunk.size(samples)).toBe(3)
        client.destroy()
        const after = yield* TcpInfo.monitor(client, "5 millis").pipe(Stream.runCollect, Effect.flip)
        expect(after._tag).toBe("NoSocketFd")
      }),
    ),
  )
})
