// Issue 18's probes as tests: what a sender the receiver does not trust can (not) do to it.
import { execFileSync } from "node:child_process"
import { lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from "node:fs/promises"
import * as net from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Queue, Redacted, Schedule } from "effect"
import { Frame, Receiver, Sender, Source } from "../src/index.js"
import { digestOf, payload, settings, tmp } from "./helpers.js"

const hello = (id: Buffer, over: Record<string, unknown> = {}) =>
  Frame.encodeToBuffer({
    type: Frame.FrameType.HELLO,
    transferId: id,
    seq: 0,
    offset: 0,
    payload: Buffer.from(JSON.stringify({ name: "x.bin", size: 1 << 20, chunkSize: 65536, stream: 0, ...over })),
  })

/** Connects, writes `bytes`, and resolves with the first frame back (or undefined if closed first). */
const exchange = (port: number, bytes: Buffer) =>
  Effect.async<{ frame: Frame.Frame | undefined; socket: net.Socket }>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write(bytes))
    const d = new Frame.Decoder(1 << 20)
    let done = false
    const finish = (frame: Frame.Frame | undefined) => {
      if (done) return
      done = true
      resume(Effect.succeed({ frame, socket }))
    }
    socket.on("data", (c: Buffer) => {
      const [f] = d.push(c)
      if (f) finish(f)
    })
    socket.on("error", () => {})
    socket.on("close", () => finish(undefined))
  })

const connect = (port: number) =>
  Effect.async<net.Socket>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => resume(Effect.succeed(socket)))
    socket.on("error", () => {})
  })

const json = (f: Frame.Frame | undefined) => (f ? (JSON.parse(f.payload.toString()) as Record<string, unknown>) : {})

/** Polls until `check` holds (generous: the machine may be loaded), returning the last value. */
const eventually = <A>(probe: () => Promise<A>, check: (a: A) => boolean, ms = 20_000) =>
  Effect.promise(async () => {
    const until = Date.now() + ms
    for (;;) {
      const a = await probe()
      if (check(a) || Date.now() > until) return a
      await new Promise((r) => setTimeout(r, 100))
    }
  })

/** Open descriptors of this process that point into `dir`. */
const fdsInto = async (dir: string) => {
  let n = 0
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "")
    if (target.startsWith(dir)) n++
  }
  return n
}
const threads = async () => (await readdir("/proc/self/task")).length

const openssl = (args: Array<string>) => execFileSync("openssl", args, { stdio: "ignore" })

describe("a hostile sender", () => {
  it.live(
    "75 HELLO-then-disconnect connections leave no open file and no worker thread behind",
    () =>
      Effect.gen(function* () {
        const dir = yield* tmp
        // Room for all at once, so what is measured is release, not refusal.
        const rx = yield* Receiver.listen({ dir, releaseAfter: 100, maxTransfers: 100, window: 1 << 20 })
        const threadsBefore = yield* Effect.promise(threads)
        for (let i = 0; i < 50; i++) {
          const id = Buffer.alloc(16, 0)
          id.writeUInt32BE(i + 1)
          const { frame, socket } = yield* exchange(rx.port, hello(id, { name: `probe-${i}.img` }))
          expect(frame?.type).toBe(Frame.FrameType.WELCOME)
          socket.destroy()
        }
        // And 25 that hang up right after the HELLO, before it can be answered.
        for (let i = 50; i < 75; i++) {
          const id = Buffer.alloc(16, 0)
          id.writeUInt32BE(i + 1)
          const s = net.connect({ host: "127.0.0.1", port: rx.port }, () =>
            s.end(hello(id, { name: `probe-${i}.img` })),
          )
          s.on("error", () => {})
          yield* Effect.async<void>((resume) => {
            s.once("close", () => resume(Effect.void))
          })
        }
        // Every HELLO was served (a part file each, kept for a resume) before counting what is open.
        const parts = yield* eventually(
          async () => (await readdir(join(dir, ".amst-staging"))).filter((n) => n.endsWith(".part")).length,
          (n) => n === 75,
        )
        expect(parts).toBe(75)
        const fds = yield* eventually(
          () => fdsInto(dir),
          (n) => n === 0,
        )
        expect(fds).toBe(0)
        // Workers start with the first byte to hash, so none started; allow for unrelated threads.
        const after = yield* eventually(threads, (n) => n <= threadsBefore + 4)
        expect(after).toBeLessThanOrEqual(threadsBefore + 4)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live("cannot replace an existing file, even one created while its transfer runs", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      const earlier = join(dir, "received-earlier.img")
      yield* Effect.promise(() => writeFile(earlier, "the original"))
      const data = payload(300_000, 51)
      const refused = yield* Effect.either(
        Sender.send({
          host: rx.host,
          port: rx.port,
          source: Source.fromBuffer(data, "received-earlier.img"),
          settings: settings(),
        }),
      )
      expect(Either.isLeft(refused) && refused.left.reason === "remote" && /exists/.test(refused.left.message)).toBe(
        true,
      )
      expect(yield* Effect.promise(() => readFile(earlier, "utf8"))).toBe("the original")
      // Created after the HELLO was accepted: the final link refuses it all the same.
      const late = join(dir, "late.img")
      let planted = false
      const r = yield* Effect.either(
        Sender.send({
          host: rx.host,
          port: rx.port,
          source: Source.fromBuffer(data, "late.img"),
          settings: settings(),
          pace: () =>
            Effect.promise(async () => {
              if (!planted) {
                planted = true
                await writeFile(late, "planted meanwhile")
              }
            }),
        }),
      )
      expect(planted).toBe(true)
      expect(Either.isLeft(r) && r.left.reason === "remote" && /exists/.test(r.left.message)).toBe(true)
      expect(yield* Effect.promise(() => readFile(late, "utf8"))).toBe("planted meanwhile")
    }).pipe(Effect.scoped),
  )

  it.live("cannot make the receiver write through a planted symlink; files are private", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const outside = yield* tmp
      const victim = join(outside, "victim.conf")
      yield* Effect.promise(() => writeFile(victim, "keep me"))
      const data = payload(200_000, 52)
      const source = Source.fromBuffer(data, "evil")
      const key = Sender.transferIdFor(source).toString("hex")
      // Planted where the old layout wrote, and (as if the staging directory were reachable) where
      // this one writes: part, progress and progress temp file.
      const staging = join(dir, ".amst-staging")
      yield* Effect.promise(async () => {
        await mkdir(staging, { recursive: true, mode: 0o755 })
        for (const p of [
          join(dir, "evil.amst-part"),
          join(dir, ".evil.amst-progress.json"),
          join(staging, `${key}.part`),
          join(staging, `${key}.progress.json`),
          join(staging, `${key}.progress.json.tmp`),
        ])
          await symlink(victim, p)
      })
      const rx = yield* Receiver.listen({ dir, persistEvery: 65536 })
      const r = yield* Sender.send({ host: rx.host, port: rx.port, source, settings: settings() })
      expect(r.digest).toBe(digestOf(data, r.integrity))
      expect(yield* Effect.promise(() => readFile(victim, "utf8"))).toBe("keep me")
      expect((yield* Effect.promise(() => readFile(join(dir, "evil")))).equals(data)).toBe(true)
      expect((yield* Effect.promise(() => stat(join(dir, "evil")))).mode & 0o777).toBe(0o600)
      expect((yield* Effect.promise(() => lstat(staging))).mode & 0o777).toBe(0o700)
      // Bookkeeping names cannot be transfer names.
      const { frame } = yield* exchange(rx.port, hello(Buffer.alloc(16, 9), { name: "x.amst-part" }))
      expect(frame).toBeUndefined()
      expect((yield* Queue.take(rx.faults)).error.message).toMatch(/unsafe transfer name/)
    }).pipe(Effect.scoped),
  )

  it.live("without the token is refused before anything is written; with it, accepted", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const token = Redacted.make("correct horse battery staple")
      const rx = yield* Receiver.listen({ dir, host: "0.0.0.0", token })
      const data = payload(200_000, 53)
      const attempt = (name: string, t?: string) =>
        Effect.either(
          Sender.send({
            host: "127.0.0.1",
            port: rx.port,
            source: Source.fromBuffer(data, name),
            settings: settings(),
            token: t === undefined ? undefined : Redacted.make(t),
          }),
        )
      for (const [name, t] of [
        ["none.img", undefined],
        ["wrong.img", "not the token at all"],
      ] as const) {
        const r = yield* attempt(name, t)
        expect(Either.isLeft(r) && r.left.reason === "remote" && /unauthorized/.test(r.left.message)).toBe(true)
        expect(yield* Effect.promise(() => readdir(dir))).toEqual([".amst-staging"])
        expect(yield* Effect.promise(() => readdir(join(dir, ".amst-staging")))).toEqual([])
      }
      const ok = yield* attempt("right.img", "correct horse battery staple")
      expect(Either.isRight(ok) && ok.right.digest === digestOf(data, ok.right.integrity)).toBe(true)
      // A replayed HELLO from long ago is refused.
      const { frame } = yield* exchange(
        rx.port,
        hello(Buffer.alloc(16, 3), { auth: { ts: Date.now() - 3_600_000, mac: "00".repeat(32) } }),
      )
      expect(frame?.type).toBe(Frame.FrameType.ERROR)
      expect(json(frame).code).toBe("unauthorized")
    }).pipe(Effect.scoped),
  )

  it.live("a busy receiver is retried on the reconnect schedule until a transfer slot frees up", () =>
    Effect.gen(function* () {
      const rx = yield* Receiver.listen({ dir: yield* tmp, maxTransfers: 1, releaseAfter: 50 })
      const holder = yield* exchange(rx.port, hello(Buffer.alloc(16, 8), { name: "holder.img" }))
      expect(holder.frame?.type).toBe(Frame.FrameType.WELCOME)
      const data = payload(100_000, 55)
      const events: Array<Sender.SenderEvent> = []
      const r = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(data, "waits.img"),
        settings: settings(),
        reconnect: Schedule.spaced(50).pipe(Schedule.intersect(Schedule.recurs(400))),
        onEvent: (e) => {
          events.push(e)
          // Refused at least once: now let the slot go (released 50 ms after its stream closes).
          if (e._tag === "Reconnecting" && e.attempt === 2) holder.socket.destroy()
        },
      })
      expect(r.digest).toBe(digestOf(data, r.integrity))
      expect(events.filter((e) => e._tag === "Reconnecting").length).toBeGreaterThanOrEqual(2)
      expect((yield* Queue.take(rx.faults)).error.message).toMatch(/1 transfers already open/)
    }).pipe(Effect.scoped),
  )

  it.live(
    "a flood of refused connections keeps only the latest 1024 faults",
    () =>
      Effect.gen(function* () {
        const rx = yield* Receiver.listen({ dir: yield* tmp, maxConnectionsPerAddress: 0 })
        const local: Array<number> = []
        for (let i = 0; i < 1100; i++) {
          const s = yield* connect(rx.port)
          local.push(s.localPort!)
          yield* Effect.async<void>((resume) => {
            if (s.destroyed) return resume(Effect.void)
            s.once("close", () => resume(Effect.void))
          })
        }
        const size = yield* eventually(
          () => Effect.runPromise(Queue.size(rx.faults)),
          (n) => n === 1024,
        )
        expect(size).toBe(1024)
        // The oldest went first: what is left are the last 1024 connections', in order.
        const faults = yield* Queue.takeAll(rx.faults)
        expect([...faults].map((f) => Number(f.remote.split(":").at(-1)))).toEqual(local.slice(-1024))
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live("refuses to listen beyond loopback without any sender authentication", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const r = yield* Effect.either(Receiver.listen({ dir, host: "0.0.0.0" }))
      expect(Either.isLeft(r) && /no sender authentication/.test(r.left.message)).toBe(true)
      const open = yield* Effect.either(Receiver.listen({ dir, host: "0.0.0.0", allowUnauthenticated: true }))
      expect(Either.isRight(open)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("with mutual TLS: no client certificate, or one whose identity is not allowed, is refused", () =>
    Effect.gen(function* () {
      const pki = yield* tmp
      const f = (n: string) => join(pki, n)
      openssl(
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"].concat([
          "-subj",
          "/CN=node CA",
          "-keyout",
          f("ca.key"),
          "-out",
          f("ca.pem"),
        ]),
      )
      for (const [name, san] of [
        ["server", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        ["node-a", "subjectAltName=DNS:node-a"],
        ["intruder", "subjectAltName=DNS:intruder"],
      ] as const) {
        openssl(
          ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=${name}`].concat(
            ["-keyout", f(`${name}.key`), "-out", f(`${name}.csr`)],
          ),
        )
        yield* Effect.promise(() => writeFile(f(`${name}.ext`), `${san}\n`))
        openssl(
          ["x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca.key")].concat([
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            f(`${name}.ext`),
            "-out",
            f(`${name}.pem`),
          ]),
        )
      }
      const pem = (n: string) => Effect.promise(() => readFile(f(n)))
      const ca = yield* pem("ca.pem")
      const dir = yield* tmp
      const rx = yield* Receiver.listen({
        dir,
        host: "0.0.0.0",
        tls: { key: yield* pem("server.key"), cert: yield* pem("server.pem"), ca },
        authorizePeer: (peer) => peer.subject?.CN === "node-a",
      })
      const data = payload(150_000, 54)
      const withCert = (name: string, client: string | undefined) =>
        Effect.gen(function* () {
          const creds = client ? { key: yield* pem(`${client}.key`), cert: yield* pem(`${client}.pem`) } : {}
          return yield* Effect.either(
            Sender.send({
              host: "127.0.0.1",
              port: rx.port,
              tls: { ca, servername: "localhost", ...creds },
              source: Source.fromBuffer(data, name),
              settings: settings(),
              maxReconnects: 0,
            }),
          )
        })
      const anonymous = yield* withCert("anon.img", undefined)
      expect(Either.isLeft(anonymous) && anonymous.left.reason === "connect").toBe(true)
      const intruder = yield* withCert("intruder.img", "intruder")
      expect(Either.isLeft(intruder) && intruder.left.reason === "connect").toBe(true)
      expect(yield* Effect.promise(() => readdir(join(dir, ".amst-staging")))).toEqual([])
      const node = yield* withCert("node-a.img", "node-a")
      expect(Either.isRight(node) && node.right.digest === digestOf(data, node.right.integrity)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("is bounded: open transfers, reorder memory, connections per address, time to HELLO, idle time", () =>
    Effect.gen(function* () {
      const id = (n: number) => Buffer.alloc(16, n)
      const one = yield* Receiver.listen({ dir: yield* tmp, maxTransfers: 1 })
      const a = yield* exchange(one.port, hello(id(1), { name: "a.img" }))
      expect(a.frame?.type).toBe(Frame.FrameType.WELCOME)
      const b = yield* exchange(one.port, hello(id(2), { name: "b.img" }))
      expect(json(b.frame)).toMatchObject({ code: "busy", message: "1 transfers already open at the receiver" })
      a.socket.destroy()
      // Reorder memory: the first transfer reserves a whole window, the second what is left, a third none.
      const mem = yield* Receiver.listen({ dir: yield* tmp, window: 1 << 20, maxReorderBytes: 3 << 19 })
      const m1 = yield* exchange(mem.port, hello(id(1), { name: "a.img" }))
      expect(json(m1.frame).window).toBe(1 << 20)
      const m2 = yield* exchange(mem.port, hello(id(2), { name: "b.img" }))
      expect(json(m2.frame).window).toBe(1 << 19)
      const m3 = yield* exchange(mem.port, hello(id(3), { name: "c.img" }))
      expect(json(m3.frame).code).toBe("busy")
      expect(String(json(m3.frame).message)).toMatch(/reorder memory exhausted/)
      for (const x of [m1, m2]) x.socket.destroy()
      // Connections: two silent ones from 127.0.0.1 fill the quota, a third is cut at once; the
      // silent ones are closed once helloTimeout has passed.
      const conns = yield* Receiver.listen({ dir: yield* tmp, maxConnectionsPerAddress: 2, helloTimeout: 300 })
      const s1 = yield* connect(conns.port)
      const s2 = yield* connect(conns.port)
      const cut = yield* exchange(conns.port, hello(id(4)))
      expect(cut.frame).toBeUndefined()
      expect((yield* Queue.take(conns.faults)).error.message).toMatch(/limit of 2 connections from 127\.0\.0\.1/)
      for (const _ of [s1, s2]) {
        expect((yield* Queue.take(conns.faults)).error.message).toMatch(/no HELLO answered within 300 ms/)
      }
      const closed = yield* eventually(
        async () => [s1, s2].every((s) => s.destroyed || s.readyState === "closed"),
        (x) => x,
      )
      expect(closed).toBe(true)
      // An admitted stream that falls silent is closed after idleTimeout.
      const idle = yield* Receiver.listen({ dir: yield* tmp, idleTimeout: 300 })
      const w = yield* exchange(idle.port, hello(id(5)))
      expect(w.frame?.type).toBe(Frame.FrameType.WELCOME)
      expect((yield* Queue.take(idle.faults)).error.message).toMatch(/idle for 300 ms/)
    }).pipe(Effect.scoped),
  )
})
