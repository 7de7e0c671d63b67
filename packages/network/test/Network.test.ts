import { X509Certificate } from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import * as tls from "node:tls"
import { describe, expect, it } from "@effect/vitest"
import { CertificateAuthority, Security } from "@novacron/security"
import { Effect, Exit, Fiber, Option, Ref, Schedule, Scope } from "effect"
import * as fc from "fast-check"
import * as Frame from "../src/Frame.js"
import * as Network from "../src/Network.js"
import { type Logs, recordingLogger, startNode, tempDir } from "./helpers.js"

const APP = Frame.FrameType.Application

/** Issues a client identity from the CA in `caDir/tls` into files, for a node configured with explicit paths. */
const clientFiles = (caDir: string, name: string) =>
  Effect.gen(function* () {
    const ca = {
      certPem: yield* Effect.promise(() => fs.readFile(path.join(caDir, "tls", "ca.crt"), "utf8")),
      keyPem: yield* Effect.promise(() => fs.readFile(path.join(caDir, "tls", "ca.key"), "utf8")),
    }
    const leaf = yield* CertificateAuthority.issueCertificate(ca, name)
    const dir = yield* tempDir
    const files = {
      cert_file: path.join(dir, "node.crt"),
      key_file: path.join(dir, "node.key"),
      ca_file: path.join(dir, "ca.crt"),
    }
    yield* Effect.promise(async () => {
      await fs.writeFile(files.cert_file, leaf.certPem)
      await fs.writeFile(files.key_file, leaf.keyPem, { mode: 0o600 })
      await fs.writeFile(files.ca_file, ca.certPem)
    })
    return { dir, files, leaf }
  })

/** A raw socket that collects every byte it receives and reports how it ended. */
const rawConnect = (options: { port: number; tls?: tls.ConnectionOptions }) =>
  Effect.async<{ socket: net.Socket; received: () => Buffer; ended: Promise<string> }>((resume) => {
    const chunks: Array<Buffer> = []
    let endReason = ""
    const socket = options.tls
      ? tls.connect({ host: "127.0.0.1", port: options.port, ...options.tls })
      : net.connect({ host: "127.0.0.1", port: options.port })
    const ended = new Promise<string>((res) => {
      socket.on("error", (e) => {
        endReason = e.message
      })
      socket.on("close", () => res(endReason || "closed"))
    })
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.once(options.tls ? "secureConnect" : "connect", () =>
      resume(Effect.succeed({ socket, received: () => Buffer.concat(chunks), ended })),
    )
    socket.once("error", () => resume(Effect.succeed({ socket, received: () => Buffer.concat(chunks), ended })))
  })

const framesOf = (bytes: Buffer) => Frame.decoder(1 << 20).push(bytes).frames

const hello = (nodeId: string, token?: string) =>
  Frame.encode(Frame.json(Frame.FrameType.Hello, { node_id: nodeId, token }))

describe("mutual TLS with the node CA", () => {
  it.scopedLive("a client with a certificate of the CA is accepted; no certificate or another CA is refused", () =>
    Effect.gen(function* () {
      const logs: Logs = []
      yield* Effect.gen(function* () {
        const a = yield* startNode({ nodeId: "node-a" })
        expect(a.security.tls.source).toBe("issued")
        // Node B uses configured paths holding a certificate issued by A's CA.
        const { files } = yield* clientFiles(a.dir, "node-b")
        const b = yield* startNode({ nodeId: "node-b", security: files })
        expect(b.security.tls.source).toBe("configured")

        const conn = yield* b.network.dial(a.target)
        expect(conn.peer).toEqual({ name: "node-a", role: "node", method: "mtls" })
        const inbound = yield* a.network.accepted.take
        expect(inbound.peer).toEqual({ name: "node-b", role: "node", method: "mtls" })
        expect(inbound.peerNodeId).toBe("node-b")
        yield* conn.send(APP, Buffer.from("ping from b"))
        // Programmer errors are defects, not a silently closed connection.
        const tooBig = yield* Effect.exit(conn.send(APP, Buffer.alloc(16_777_217)))
        expect(tooBig).toMatchObject({ _tag: "Failure", cause: { _tag: "Die" } })
        expect(yield* Effect.exit(conn.send(Frame.FrameType.Ping, Buffer.alloc(0)))).toMatchObject({ _tag: "Failure" })
        const got = yield* inbound.receive.take
        expect(Buffer.from(got.payload).toString()).toBe("ping from b")
        yield* inbound.send(APP + 1, Buffer.from("reply"), 7)
        expect(yield* conn.receive.take).toMatchObject({ type: APP + 1, flags: 7 })

        // No client certificate: the TLS handshake is refused, no Welcome ever arrives.
        const bare = yield* rawConnect({
          port: a.network.address.port,
          tls: { ca: a.security.tls.ca, checkServerIdentity: () => undefined },
        })
        bare.socket.write(hello("intruder"))
        const bareEnd = yield* Effect.promise(() => bare.ended)
        expect(framesOf(bare.received()).some((f) => f.type === Frame.FrameType.Welcome)).toBe(false)
        expect(bareEnd).toMatch(/certificate/i)

        // A certificate from another CA (node C's own): the server aborts the TLS session before any
        // frame, so the client only sees the connection go away.
        const c = yield* startNode({ nodeId: "node-c" })
        const refused = yield* Effect.flip(c.network.dial(a.target, { tls: { ca: a.security.tls.ca } }))
        expect(refused._tag).toBe("DialError")
        expect(refused.reason).toMatch(/closed|certificate|alert/)
        // And C refuses A's server certificate, which its CA did not issue.
        const wrongServer = yield* Effect.flip(c.network.dial(a.target))
        expect(wrongServer.reason).toMatch(/certificate/)

        expect(yield* a.network.accepted.size).toEqual(Option.some(0))
        // The refused sockets count until the server sees them close (a tick after the client may).
        yield* Effect.repeat(a.network.connectionCount, {
          until: (n) => n === 1,
          schedule: Schedule.spaced("5 millis"),
        }).pipe(Effect.timeout("5 seconds"))
      }).pipe(Effect.provide(recordingLogger(logs)))
      expect(logs.filter((l) => /TLS handshake refused/.test(l.message)).length).toBeGreaterThanOrEqual(2)
    }),
  )

  it.scopedLive("trusted_nodes admits peers by name or fingerprint only", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      // First start issues the CA, which the clients below are issued from.
      const scope = yield* Scope.make()
      yield* Scope.extend(startNode({ dir }), scope)
      yield* Scope.close(scope, Exit.void)
      const b = yield* clientFiles(dir, "node-b")
      const x = yield* clientFiles(dir, "node-x")
      const y = yield* clientFiles(dir, "node-y")
      const yFingerprint = new X509Certificate(y.leaf.certPem).fingerprint256 // with colons, upper case
      const a = yield* startNode({ dir, security: { trusted_nodes: ["node-b", yFingerprint] } })
      expect(a.security.tls.source).toBe("reused")
      const nb = yield* startNode({ nodeId: "node-b", security: b.files })
      const nx = yield* startNode({ nodeId: "node-x", security: x.files })
      const ny = yield* startNode({ nodeId: "node-y", security: y.files })
      expect((yield* nb.network.dial(a.target)).peer.name).toBe("node-a")
      expect((yield* ny.network.dial(a.target)).peer.name).toBe("node-a")
      const refused = yield* Effect.flip(nx.network.dial(a.target))
      expect(refused.reason).toMatch(/refused: unauthenticated: .*not in trusted_nodes/)
      expect(refused.retryable).toBe(false)
    }),
  )
})

describe("token authentication", () => {
  it.scopedLive(
    "accepts a token whose role may send cluster messages; refuses a wrong, missing or under-privileged one",
    () =>
      Effect.gen(function* () {
        const token = Security.generateToken()
        const operator = Security.generateToken()
        const a = yield* startNode({
          security: {
            auth_method: "token",
            tokens: [
              { name: "peer", role: "node", sha256: Security.hashToken(token) },
              { name: "ops", role: "operator", sha256: Security.hashToken(operator) },
            ],
          },
        })
        const client = yield* startNode({ nodeId: "cli", security: { auth_method: "token" } })
        // TLS is on: the client checks the server against the server's CA, which it must be given.
        const untrusted = yield* Effect.flip(client.network.dial(a.target, { token }))
        expect(untrusted.reason).toMatch(/certificate/)
        const ca = { ca: a.security.tls.ca }
        const ok = yield* client.network.dial(a.target, { token, tls: ca })
        const inbound = yield* a.network.accepted.take
        expect(inbound.peer).toEqual({ name: "peer", role: "node", method: "token" })
        // A valid token whose role may not send cluster messages is refused by the role check.
        const forbidden = yield* Effect.flip(client.network.dial(a.target, { token: operator, tls: ca }))
        expect(forbidden.reason).toBe("refused: forbidden: role operator of ops lacks cluster:message")
        expect(forbidden.retryable).toBe(false)
        expect(ok.peerNodeId).toBe("node-a")
        const wrong = yield* Effect.flip(client.network.dial(a.target, { token: `${token}x`, tls: ca }))
        expect(wrong.reason).toBe("refused: unauthenticated: authentication failed: unknown token")
        const missing = yield* Effect.flip(client.network.dial(a.target, { tls: ca }))
        expect(missing.reason).toMatch(/unauthenticated: .*no token/)
      }),
  )
})

describe("connection limits and timeouts", () => {
  it.scopedLive("max_connections: the connection beyond the limit gets a Refused frame, then room frees up", () =>
    Effect.gen(function* () {
      const a = yield* startNode({
        security: { auth_method: "none" },
        network: { enable_tls: false, max_connections: 2 },
      })
      const client = yield* startNode({
        nodeId: "cli",
        security: { auth_method: "none" },
        network: { enable_tls: false },
      })
      const c1 = yield* client.network.dial(a.target)
      yield* client.network.dial(a.target)
      const third = yield* rawConnect({ port: a.network.address.port })
      yield* Effect.promise(() => third.ended)
      const [refusal] = framesOf(third.received())
      expect(refusal?.type).toBe(Frame.FrameType.Refused)
      expect(Frame.parseJson(refusal!.payload)).toMatchObject({ reason: "max_connections" })
      const viaDial = yield* Effect.flip(client.network.dial(a.target))
      expect(viaDial).toMatchObject({ retryable: true })
      expect(viaDial.reason).toMatch(/refused: max_connections/)
      expect(yield* a.network.connectionCount).toBe(2)
      yield* c1.close("done")
      yield* Effect.repeat(a.network.connectionCount, { until: (n) => n < 2, schedule: Schedule.spaced("5 millis") })
      yield* client.network.dial(a.target)
    }),
  )

  it.scopedLive("idle connections are closed after idle_timeout; silent handshakes after conn_timeout", () =>
    Effect.gen(function* () {
      const a = yield* startNode({
        security: { auth_method: "none" },
        network: { enable_tls: false, idle_timeout: "300ms", conn_timeout: "200ms" },
      })
      const client = yield* startNode({
        nodeId: "cli",
        security: { auth_method: "none" },
        // Same idle_timeout as the server, as in a cluster sharing one configuration: keepAlive pings at a third of it.
        network: { enable_tls: false, idle_timeout: "300ms" },
      })
      const started = Date.now()
      const conn = yield* client.network.dial(a.target)
      const reason = yield* conn.awaitClose
      expect(Date.now() - started).toBeGreaterThanOrEqual(290)
      expect(reason).toMatch(/idle[_ ]timeout/)

      // With keepAlive the same quiet connection outlives several idle timeouts.
      const kept = yield* client.network.dial(a.target, { keepAlive: true })
      const outcome = yield* Effect.timeout(kept.awaitClose, "1 second").pipe(Effect.option)
      expect(Option.isNone(outcome)).toBe(true)
      yield* kept.close("done")

      const silent = yield* rawConnect({ port: a.network.address.port })
      yield* Effect.promise(() => silent.ended)
      const [refusal] = framesOf(silent.received())
      expect(Frame.parseJson(refusal!.payload)).toMatchObject({ reason: "timeout" })
      // The server side lets go of both (its close events may trail the client's by a tick).
      yield* Effect.repeat(a.network.connectionCount, {
        until: (n) => n === 0,
        schedule: Schedule.spaced("5 millis"),
      }).pipe(Effect.timeout("2 seconds"))
    }),
  )
})

describe("backpressure", () => {
  it.scopedLive("a reader that falls behind loses nothing and sees frames in order", () =>
    Effect.gen(function* () {
      const a = yield* startNode({ security: { auth_method: "none" }, network: { enable_tls: false } })
      const client = yield* startNode({
        nodeId: "cli",
        security: { auth_method: "none" },
        network: { enable_tls: false },
      })
      const conn = yield* client.network.dial(a.target)
      const inbound = yield* a.network.accepted.take
      const count = 3000 // well past the 256-frame mailbox
      for (let i = 0; i < count; i++) {
        const payload = Buffer.alloc(4)
        payload.writeUInt32BE(i)
        yield* conn.send(APP, payload)
      }
      const seen: Array<number> = []
      while (seen.length < count) {
        const frame = yield* inbound.receive.take
        seen.push(Buffer.from(frame.payload).readUInt32BE(0))
      }
      expect(seen).toEqual(Array.from({ length: count }, (_, i) => i))
    }),
  )
})

describe("malformed input", () => {
  it.scopedLive(
    "garbage, bad checksums and oversized frames close the connection with a logged reason; the node serves on",
    () =>
      Effect.gen(function* () {
        const logs: Logs = []
        yield* Effect.gen(function* () {
          const a = yield* startNode({
            security: { auth_method: "none" },
            network: { enable_tls: false, max_frame_size: 2048 },
          })
          const port = a.network.address.port
          const garbage = yield* rawConnect({ port })
          garbage.socket.write(Buffer.from("GET / HTTP/1.1\r\n\r\n"))
          yield* Effect.promise(() => garbage.ended)

          // Established first (Welcome received), then an oversized frame header.
          const big = yield* rawConnect({ port })
          big.socket.write(hello("raw"))
          yield* Effect.repeat(Effect.sync(big.received), {
            until: (bytes) => bytes.length > 0,
            schedule: Schedule.spaced("5 millis"),
          }).pipe(Effect.timeout("5 seconds"))
          const header = Buffer.from(Frame.encode({ type: APP, flags: 0, payload: Buffer.alloc(0) }))
          header.writeUInt32BE(1 << 30, Frame.LENGTH_OFFSET)
          big.socket.write(header)
          yield* Effect.promise(() => big.ended)
          expect(framesOf(big.received())[0]?.type).toBe(Frame.FrameType.Welcome)
          const inbound = yield* a.network.accepted.take
          expect(yield* inbound.awaitClose).toContain(`TooLarge at byte ${hello("raw").length + Frame.LENGTH_OFFSET}`)
          // Its mailbox ended: a reader sees the end, not a hang.
          const [, done] = yield* inbound.receive.takeAll
          expect(done).toBe(true)

          const flipped = yield* rawConnect({ port })
          const bad = Buffer.from(hello("raw"))
          bad[bad.length - 2]! ^= 0x40
          flipped.socket.write(bad)
          yield* Effect.promise(() => flipped.ended)

          const client = yield* startNode({
            nodeId: "cli",
            security: { auth_method: "none" },
            network: { enable_tls: false },
          })
          const conn = yield* client.network.dial(a.target)
          yield* conn.send(APP, Buffer.from("still alive"))
          const next = yield* a.network.accepted.take
          expect(Buffer.from((yield* next.receive.take).payload).toString()).toBe("still alive")
        }).pipe(Effect.provide(recordingLogger(logs)))
        const closes = logs.filter((l) => l.message.startsWith("connection closed: malformed")).map((l) => l.message)
        expect(closes).toEqual(
          expect.arrayContaining([
            expect.stringMatching(/BadMagic at byte 0/),
            expect.stringContaining(
              `TooLarge at byte ${hello("raw").length + Frame.LENGTH_OFFSET}: payload length 1073741824 exceeds max_frame_size 2048`,
            ),
            expect.stringMatching(/BadChecksum at byte 10/),
          ]),
        )
      }),
  )
})

describe("drain and dialing", () => {
  it.scopedLive("closing the node says Goodbye to every connection and returns once they are gone", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const a = yield* Scope.extend(
        startNode({ security: { auth_method: "none" }, network: { enable_tls: false } }),
        scope,
      )
      const client = yield* startNode({
        nodeId: "cli",
        security: { auth_method: "none" },
        network: { enable_tls: false },
      })
      const conns = yield* Effect.all([client.network.dial(a.target), client.network.dial(a.target)])
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeLessThan(2000)
      for (const c of conns) expect(yield* c.awaitClose).toBe("peer said goodbye: node shutting down")
      const after = yield* Effect.flip(client.network.dial(a.target))
      expect(after.reason).toMatch(/ECONNREFUSED/)
    }),
  )

  it.scopedLive("a connection still in its TLS handshake or before Hello does not hold shutdown up", () =>
    Effect.gen(function* () {
      for (const enable_tls of [true, false]) {
        const scope = yield* Scope.make()
        // Default auth (mTLS with the node's CA) when TLS is on; none on plain TCP.
        const a = yield* Scope.extend(
          startNode(
            enable_tls ? { network: { enable_tls } } : { security: { auth_method: "none" }, network: { enable_tls } },
          ),
          scope,
        )
        const { host, port } = a.network.address
        // A client that connects and then says nothing: no ClientHello, no Hello.
        const silent = net.connect(port, host)
        silent.on("error", () => {})
        silent.resume() // reads (and drops) whatever arrives, so its end is seen
        yield* Effect.async<void>((resume) => {
          silent.once("connect", () => resume(Effect.void))
        })
        yield* Effect.sleep("100 millis")
        const started = Date.now()
        yield* Scope.close(scope, Exit.void)
        // Without TLS the silent socket is a connection from the start: it gets Goodbye and is cut
        // once the linger after it runs out (2 s). With TLS it never became one and is cut at once.
        expect(Date.now() - started).toBeLessThan(enable_tls ? 1000 : 3000)
        yield* Effect.async<void>((resume) => {
          if (silent.closed) resume(Effect.void)
          else silent.once("close", () => resume(Effect.void))
        })
      }
    }),
  )

  it.scopedLive("dialWithRetry backs off until the peer starts listening", () =>
    Effect.gen(function* () {
      const port = yield* Effect.async<number>((resume) => {
        const probe = net.createServer().listen(0, "127.0.0.1", () => {
          const p = (probe.address() as net.AddressInfo).port
          probe.close(() => resume(Effect.succeed(p)))
        })
      })
      const client = yield* startNode({
        nodeId: "cli",
        security: { auth_method: "none" },
        network: { enable_tls: false },
      })
      const attempts = yield* Ref.make(0)
      const schedule = Network.backoff({ base: "20 millis", max: "200 millis", attempts: 50 }).pipe(
        Schedule.tapInput(() => Ref.update(attempts, (n) => n + 1)),
      )
      const dialing = yield* Network.dialWithRetry(`127.0.0.1:${port}`, { schedule }).pipe(
        Effect.provideService(Network.Network, client.network),
        Effect.fork,
      )
      yield* Effect.repeat(Ref.get(attempts), { until: (n) => n >= 3, schedule: Schedule.spaced("5 millis") })
      const a = yield* startNode({
        security: { auth_method: "none" },
        network: { enable_tls: false, bind_port: port },
      })
      const conn = yield* Fiber.join(dialing)
      expect(conn.peerNodeId).toBe("node-a")
      expect(yield* Ref.get(attempts)).toBeGreaterThanOrEqual(3)
      expect(yield* a.network.connectionCount).toBe(1)
    }),
  )
})

describe("configured peers", () => {
  it.scopedLive("links to network.peers as they come up, and re-dials when a link drops", () =>
    Effect.gen(function* () {
      const port = yield* Effect.async<number>((resume) => {
        const probe = net.createServer().listen(0, "127.0.0.1", () => {
          const p = (probe.address() as net.AddressInfo).port
          probe.close(() => resume(Effect.succeed(p)))
        })
      })
      const target = `127.0.0.1:${port}`
      const a = yield* startNode({
        security: { auth_method: "none" },
        network: { enable_tls: false, peers: [target] },
        options: { peerBackoff: Network.backoff({ base: "20 millis", max: "100 millis", attempts: Infinity }) },
      })
      expect((yield* a.network.peers).size).toBe(0)
      const b = yield* startNode({
        nodeId: "node-b",
        security: { auth_method: "none" },
        network: { enable_tls: false, bind_port: port },
      })
      const first = yield* b.network.accepted.take
      expect(first.peerNodeId).toBe("node-a")
      yield* Effect.repeat(a.network.peers, { until: (m) => m.has(target), schedule: Schedule.spaced("5 millis") })
      const linked = yield* a.network.peers
      expect(linked.get(target)?.peerNodeId).toBe("node-b")
      // B drops the link; A notices and dials again.
      yield* first.close("test drop")
      const second = yield* b.network.accepted.take
      expect(second.peerNodeId).toBe("node-a")
      expect(second.id).not.toBe(first.id)
    }),
  )
})

describe("fuzzing a live listener", () => {
  it.scopedLive("random bytes, with or without a valid Hello first, never crash the node or stop it serving", () =>
    Effect.gen(function* () {
      const a = yield* startNode({
        security: { auth_method: "none" },
        network: { enable_tls: false, max_frame_size: 4096 },
      })
      const port = a.network.address.port
      const samples = fc.sample(fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 512 })), {
        numRuns: 40,
        seed: 5,
      })
      for (const [greet, junk] of samples) {
        const raw = yield* rawConnect({ port })
        if (greet) raw.socket.write(hello("fuzz"))
        raw.socket.end(junk)
        yield* Effect.promise(() => raw.ended)
      }
      // Whatever was accepted along the way is closed; the listener still serves a real client.
      yield* Effect.repeat(a.network.connectionCount, {
        until: (n) => n === 0,
        schedule: Schedule.spaced("5 millis"),
      }).pipe(Effect.timeout("3 seconds"))
      const client = yield* startNode({
        nodeId: "cli",
        security: { auth_method: "none" },
        network: { enable_tls: false },
      })
      const conn = yield* client.network.dial(a.target)
      expect(conn.peerNodeId).toBe("node-a")
    }),
  )
})
