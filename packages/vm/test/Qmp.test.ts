import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Stream } from "effect"
import { Qmp } from "../src/index.js"
import { fakeServer, GREETING, handshake } from "./fakeQmp.js"

const never = () => new Promise<void>(() => {})

describe("Qmp", () => {
  it.scopedLive("reads the greeting, negotiates capabilities and correlates replies by id", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const srv = yield* fakeServer(async (peer) => {
        await handshake(peer)
        // Two commands arrive; answered in reverse order.
        const a = await peer.next()
        const b = await peer.next()
        seen.push(a.execute, b.execute)
        peer.send(JSON.stringify({ return: { which: b.execute }, id: b.id }))
        peer.send(JSON.stringify({ return: { which: a.execute }, id: a.id }))
        await never()
      })
      const qmp = yield* Qmp.connect(srv.file)
      expect(qmp.greeting.QMP.version.qemu.major).toBe(7)
      const [x, y] = yield* Effect.all([qmp.execute("first"), qmp.execute("second")], { concurrency: 2 })
      expect(seen).toEqual(["first", "second"])
      expect(x).toEqual({ which: "first" })
      expect(y).toEqual({ which: "second" })
    }),
  )

  it.scopedLive("passes arguments and decodes typed replies", () =>
    Effect.gen(function* () {
      let args: unknown
      const srv = yield* fakeServer(async (peer) => {
        await handshake(peer)
        const c = await peer.next()
        args = c.arguments
        peer.send(JSON.stringify({ return: { status: "running", running: true }, id: c.id }))
        const d = await peer.next()
        peer.send(JSON.stringify({ return: { status: 3 }, id: d.id }))
        await never()
      })
      const qmp = yield* Qmp.connect(srv.file)
      yield* qmp.execute("x", { device: "d0" }).pipe(Effect.ignore)
      expect(args).toEqual({ device: "d0" })
      const bad = yield* Effect.either(Qmp.queryStatus(qmp))
      expect(Either.isLeft(bad) && bad.left._tag).toBe("QmpProtocolError")
      expect(Either.isLeft(bad) && bad.left.message).toContain("query-status returned an unexpected value")
    }),
  )

  it.scopedLive("a QMP error reply is QmpCommandFailed with class and desc", () =>
    Effect.gen(function* () {
      const srv = yield* fakeServer(async (peer) => {
        await handshake(peer)
        const c = await peer.next()
        peer.send(
          JSON.stringify({
            error: { class: "CommandNotFound", desc: "The command nope has not been found" },
            id: c.id,
          }),
        )
        await never()
      })
      const qmp = yield* Qmp.connect(srv.file)
      const err = yield* Effect.flip(qmp.execute("nope"))
      expect(err._tag).toBe("QmpCommandFailed")
      if (err._tag !== "QmpCommandFailed") return
      expect(err.class).toBe("CommandNotFound")
      expect(err.desc).toBe("The command nope has not been found")
      expect(err.command).toBe("nope")
    }),
  )

  it.scopedLive("events are a Stream", () =>
    Effect.gen(function* () {
      const srv = yield* fakeServer(async (peer) => {
        await handshake(peer)
        const c = await peer.next() // the test is subscribed once it sends this
        peer.send(JSON.stringify({ event: "STOP", timestamp: { seconds: 1, microseconds: 2 } }))
        peer.send(JSON.stringify({ return: {}, id: c.id }))
        peer.send(
          JSON.stringify({
            event: "SHUTDOWN",
            data: { guest: true, reason: "guest-shutdown" },
            timestamp: { seconds: 3, microseconds: 4 },
          }),
        )
        await never()
      })
      const qmp = yield* Qmp.connect(srv.file)
      const fiber = yield* qmp.events.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
      yield* Effect.sleep("20 millis")
      yield* qmp.execute("go")
      const events = Chunk.toArray(yield* Fiber.join(fiber))
      expect(events.map((e) => e.event)).toEqual(["STOP", "SHUTDOWN"])
      expect(events[1]!.data).toEqual({ guest: true, reason: "guest-shutdown" })
    }),
  )

  it.scopedLive("garbage closes the connection with QmpProtocolError, failing pending and later commands", () =>
    Effect.gen(function* () {
      const srv = yield* fakeServer(async (peer) => {
        await handshake(peer)
        await peer.next()
        peer.send("this is not json")
        await never()
      })
      const qmp = yield* Qmp.connect(srv.file)
      const err = yield* Effect.flip(qmp.execute("query-status"))
      expect(err._tag).toBe("QmpProtocolError")
      expect(err.message).toContain("not a QMP message (not JSON): this is not json")
      expect((yield* Effect.flip(qmp.execute("again")))._tag).toBe("QmpProtocolError")
      expect(yield* qmp.isOpen).toBe(false)
    }),
  )

  it.scopedLive("valid JSON that is not a QMP message is a protocol error too", () =>
    Effect.gen(function* () {
      const srv = yield* fakeServer(async (peer) => {
        await handshake(peer)
        await peer.next()
        peer.send(JSON.stringify({ hello: "world" }))
        await never()
      })
      const qmp = yield* Qmp.connect(srv.file)
      expect((yield* Effect.flip(qmp.execute("x")))._tag).toBe("QmpProtocolError")
    }),
  )

  it.scopedLive("an endless line is cut at the bound (memory stays bounded)", () =>
    Effect.gen(function* () {
      const srv = yield* fakeServer(async (peer) => {
        await handshake(peer)
        await peer.next()
        const chunk = "x".repeat(64 * 1024)
        for (let i = 0; i < 64 && !peer.socket.destroyed; i++) {
          peer.socket.write(chunk)
          await new Promise((r) => setTimeout(r, 1))
        }
        await never()
      })
      const qmp = yield* Qmp.connect(srv.file, { maxLineLength: 256 * 1024 })
      const err = yield* Effect.flip(qmp.execute("x"))
      expect(err._tag).toBe("QmpProtocolError")
      expect(err.message).toContain("exceeds 262144 characters")
    }),
  )

  it.scopedLive("a server that never greets is QmpTimeout on the greeting", () =>
    Effect.gen(function* () {
      const srv = yield* fakeServer(never)
      const err = yield* Effect.flip(Qmp.connect(srv.file, { connectTimeout: "200 millis" }))
      expect(err._tag).toBe("QmpTimeout")
      expect(err._tag === "QmpTimeout" && err.command).toBe("greeting")
    }),
  )

  it.scopedLive("a command without answer times out; the connection stays usable and the late reply is dropped", () =>
    Effect.gen(function* () {
      const srv = yield* fakeServer(async (peer) => {
        await handshake(peer)
        const slow = await peer.next()
        const fast = await peer.next()
        peer.send(JSON.stringify({ return: "late", id: slow.id }))
        peer.send(JSON.stringify({ return: "fast", id: fast.id }))
        await never()
      })
      const qmp = yield* Qmp.connect(srv.file)
      const err = yield* Effect.flip(qmp.execute("slow", undefined, { timeout: "100 millis" }))
      expect(err._tag).toBe("QmpTimeout")
      expect(err.message).toContain("no answer to slow within 100 ms")
      expect(yield* qmp.execute("fast")).toBe("fast")
      expect(yield* qmp.isOpen).toBe(true)
    }),
  )

  it.scopedLive("no socket: QmpConnectFailed", () =>
    Effect.gen(function* () {
      const err = yield* Effect.flip(Qmp.connect("/nonexistent/novacron/qmp.sock"))
      expect(err._tag).toBe("QmpConnectFailed")
      expect(err.message).toContain("ENOENT")
    }),
  )

  it.scopedLive("the peer closing fails pending commands with QmpClosed", () =>
    Effect.gen(function* () {
      const srv = yield* fakeServer(async (peer) => {
        await handshake(peer)
        await peer.next()
        peer.socket.end()
      })
      const qmp = yield* Qmp.connect(srv.file)
      const err = yield* Effect.flip(qmp.execute("quit"))
      expect(err._tag).toBe("QmpClosed")
      expect((yield* qmp.closed)._tag).toBe("QmpClosed")
    }),
  )

  it.live("closing the scope closes the socket", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const srv = yield* fakeServer(async (peer) => {
          await handshake(peer)
          await never()
        })
        yield* Effect.scoped(Qmp.connect(srv.file))
        yield* Effect.sleep("50 millis")
        expect(srv.closedByClient).toEqual([true])
      }),
    ),
  )

  it.scopedLive("the greeting line itself is validated", () =>
    Effect.gen(function* () {
      const srv = yield* fakeServer(async (peer) => {
        peer.send(GREETING.replace('"major":7', '"major":"seven"'))
        await never()
      })
      const err = yield* Effect.flip(Qmp.connect(srv.file))
      expect(err._tag).toBe("QmpProtocolError")
    }),
  )

  it.scopedLive(
    "migration commands send QEMU's argument names; query-migrate replies are decoded, a wrong shape is a protocol error",
    () =>
      Effect.gen(function* () {
        const seen: Array<{ execute: string; arguments?: unknown }> = []
        const srv = yield* fakeServer(async (peer) => {
          await handshake(peer)
          for (;;) {
            const c = await peer.next()
            seen.push({ execute: c.execute, arguments: c.arguments })
            if (c.execute === "query-migrate") {
              const good = seen.filter((x) => x.execute === "query-migrate").length === 1
              peer.send(
                JSON.stringify({
                  return: good
                    ? {
                        status: "active",
                        ram: { transferred: 10, remaining: 5, total: 15, "dirty-pages-rate": 2 },
                        "expected-downtime": 30,
                      }
                    : { status: "active", ram: { transferred: "lots" } },
                  id: c.id,
                }),
              )
            } else peer.send(JSON.stringify({ return: {}, id: c.id }))
          }
        })
        const qmp = yield* Qmp.connect(srv.file)
        yield* Qmp.migrateSetCapabilities(qmp, [{ capability: "multifd", state: true }])
        yield* Qmp.migrateSetParameters(qmp, { "multifd-channels": 4, "downtime-limit": 300 })
        yield* Qmp.migrate(qmp, "unix:/run/m.sock")
        const info = yield* Qmp.queryMigrate(qmp)
        expect(info).toEqual({
          status: "active",
          ram: { transferred: 10, remaining: 5, total: 15, "dirty-pages-rate": 2 },
          "expected-downtime": 30,
        })
        const bad = yield* Effect.flip(Qmp.queryMigrate(qmp))
        expect(bad._tag).toBe("QmpProtocolError")
        expect(bad.message).toContain("query-migrate returned an unexpected value")
        yield* Qmp.migrateStartPostcopy(qmp)
        yield* Qmp.migrateCancel(qmp)
        yield* Qmp.migrateIncoming(qmp, "unix:/run/in.sock")
        yield* Qmp.cont(qmp)
        expect(seen).toEqual([
          {
            execute: "migrate-set-capabilities",
            arguments: { capabilities: [{ capability: "multifd", state: true }] },
          },
          { execute: "migrate-set-parameters", arguments: { "multifd-channels": 4, "downtime-limit": 300 } },
          { execute: "migrate", arguments: { uri: "unix:/run/m.sock" } },
          { execute: "query-migrate" },
          { execute: "query-migrate" },
          { execute: "migrate-start-postcopy" },
          { execute: "migrate_cancel" },
          { execute: "migrate-incoming", arguments: { uri: "unix:/run/in.sock" } },
          { execute: "cont" },
        ])
      }),
  )
})
