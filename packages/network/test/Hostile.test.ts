/**
 * Issues 17 and 18: the attacks from loopback, each turned into a test.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { CertificateAuthority, Security } from "@novacron/security"
import { type Duration, Effect, Metric, Schedule } from "effect"
import * as Frame from "../src/Frame.js"
import * as Text from "../src/internal/text.js"
import * as Network from "../src/Network.js"
import * as NetworkMetrics from "../src/NetworkMetrics.js"
import * as NetworkSettings from "../src/NetworkSettings.js"
import { type Logs, recordingLogger, startNode, tempDir } from "./helpers.js"

/** A certificate issued by the CA in `caDir/tls` for `name`, as security settings with explicit paths. */
const identityFiles = (caDir: string, name: string) =>
  Effect.gen(function* () {
    const ca = {
      certPem: fs.readFileSync(path.join(caDir, "tls", "ca.crt"), "utf8"),
      keyPem: fs.readFileSync(path.join(caDir, "tls", "ca.key"), "utf8"),
    }
    const leaf = yield* CertificateAuthority.issueCertificate(ca, name)
    const dir = yield* tempDir
    const files = {
      cert_file: path.join(dir, "node.crt"),
      key_file: path.join(dir, "node.key"),
      ca_file: path.join(dir, "ca.crt"),
    }
    fs.writeFileSync(files.cert_file, leaf.certPem)
    fs.writeFileSync(files.key_file, leaf.keyPem, { mode: 0o600 })
    fs.writeFileSync(files.ca_file, ca.certPem)
    return files
  })

/** A plain TCP client that records what it receives and resolves `closed` when the socket closes. */
const tcp = (port: number) =>
  Effect.async<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }>((resume) => {
    const chunks: Array<Buffer> = []
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.on("error", () => {})
    socket.on("data", (c: Buffer) => chunks.push(c))
    const closed = new Promise<void>((res) => socket.once("close", () => res()))
    socket.once("connect", () => resume(Effect.succeed({ socket, received: () => Buffer.concat(chunks), closed })))
  })

const waitClosed = (closed: Promise<void>, within: Duration.DurationInput = "10 seconds") =>
  Effect.promise(() => closed).pipe(Effect.timeout(within))

const counted = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (s) => s.count)

const settle = <A>(effect: Effect.Effect<A>, until: (a: A) => boolean) =>
  Effect.repeat(effect, { until, schedule: Schedule.spaced("10 millis") }).pipe(Effect.timeout("10 seconds"))

const openFds = () => (fs.existsSync("/proc/self/fd") ? fs.readdirSync("/proc/self/fd").length : 0)

const helloHeader = (length: number) => {
  const header = Buffer.from(Frame.encode(Frame.json(Frame.FrameType.Hello, {})).subarray(0, Frame.HEADER_BYTES))
  header.writeUInt32BE(length, Frame.LENGTH_OFFSET)
  return header
}

describe("connections that never finish their handshake", () => {
  it.scopedLive("idle TLS sockets are closed at conn_timeout and their file descriptors come back", () =>
    Effect.gen(function* () {
      const a = yield* startNode({ network: { conn_timeout: "300ms" } })
      const before = openFds()
      const timeouts = yield* counted(NetworkMetrics.refused("timeout"))
      // 20 clients connect and never send a ClientHello.
      const idle = yield* Effect.all(Array.from({ length: 20 }, () => tcp(a.network.address.port)))
      for (const c of idle) yield* waitClosed(c.closed)
      yield* settle(a.network.connectionCount, (n) => n === 0)
      expect(yield* counted(NetworkMetrics.refused("timeout"))).toBe(timeouts + 20)
      if (before > 0) expect(openFds()).toBeLessThanOrEqual(before + 2)
    }),
  )

  it.scopedLive("handshaking sockets count against max_connections and max_connections_per_ip", () =>
    Effect.gen(function* () {
      const logs: Logs = []
      yield* Effect.gen(function* () {
        const a = yield* startNode({ network: { max_connections: 3 } })
        const port = a.network.address.port
        const refusedMax = yield* counted(NetworkMetrics.refused("max_connections"))
        const held = yield* Effect.all([tcp(port), tcp(port), tcp(port)])
        yield* settle(a.network.connectionCount, (n) => n === 3)
        // The fourth is cut at once, long before the 10 s conn_timeout.
        const fourth = yield* tcp(port)
        yield* waitClosed(fourth.closed, "5 seconds")
        expect(yield* counted(NetworkMetrics.refused("max_connections"))).toBe(refusedMax + 1)
        for (const c of held) c.socket.destroy()

        const b = yield* startNode({ nodeId: "node-b", network: { max_connections_per_ip: 2 } })
        const refusedIp = yield* counted(NetworkMetrics.refused("per_ip_limit"))
        yield* Effect.all([tcp(b.network.address.port), tcp(b.network.address.port)])
        yield* settle(b.network.connectionCount, (n) => n === 2)
        const third = yield* tcp(b.network.address.port)
        yield* waitClosed(third.closed, "5 seconds")
        expect(yield* counted(NetworkMetrics.refused("per_ip_limit"))).toBe(refusedIp + 1)
      }).pipe(Effect.provide(recordingLogger(logs)))
      expect(logs.map((l) => l.message)).toEqual(
        expect.arrayContaining([
          "connection refused: max_connections (3) reached",
          "connection refused: max_connections_per_ip (2) reached for 127.0.0.1",
        ]),
      )
    }),
  )
})

describe("node identity is bound to the certificate", () => {
  it.scopedLive("a certificate for node-b saying node-c in its Hello is refused, naming both", () =>
    Effect.gen(function* () {
      const logs: Logs = []
      yield* Effect.gen(function* () {
        const a = yield* startNode({ nodeId: "node-a" })
        const filesB = yield* identityFiles(a.dir, "node-b")
        const liar = yield* startNode({ nodeId: "node-c", security: filesB })
        const identity = yield* counted(NetworkMetrics.refused("identity"))
        const refused = yield* Effect.flip(liar.network.dial(a.target))
        expect(refused.reason).toMatch(/refused: identity: .*certificate names "node-b" but Hello says "node-c"/)
        expect(refused.retryable).toBe(false)
        // Claiming the server's own id with another node's certificate is refused too.
        const impostor = yield* startNode({ nodeId: "node-a", security: filesB })
        const self = yield* Effect.flip(impostor.network.dial(a.target))
        expect(self.reason).toMatch(/identity refused: Hello claims this node's own id "node-a"/)
        expect(yield* counted(NetworkMetrics.refused("identity"))).toBe(identity + 2)
        // The honest node-b is admitted, its id from the certificate.
        const honest = yield* startNode({ nodeId: "node-b", security: filesB })
        yield* honest.network.dial(a.target)
        const inbound = yield* a.network.accepted.take
        expect(inbound).toMatchObject({ peerNodeId: "node-b", peerNodeIdSource: "certificate" })
      }).pipe(Effect.provide(recordingLogger(logs)))
      const line = logs.find((l) => l.message.includes("Hello says"))
      expect(line?.message).toContain('"node-b"')
      expect(line?.message).toContain('"node-c"')
    }),
  )

  it.scopedLive("with token auth the Hello's id is only claimed, and the local node's id is refused", () =>
    Effect.gen(function* () {
      const token = Security.generateToken()
      const a = yield* startNode({
        nodeId: "node-a",
        security: { auth_method: "token", tokens: [{ name: "peer", role: "node", sha256: Security.hashToken(token) }] },
        network: { enable_tls: false },
      })
      const other = yield* startNode({
        nodeId: "node-b",
        security: { auth_method: "token" },
        network: { enable_tls: false },
      })
      yield* other.network.dial(a.target, { token })
      expect(yield* a.network.accepted.take).toMatchObject({ peerNodeId: "node-b", peerNodeIdSource: "claimed" })
      const same = yield* startNode({
        nodeId: "node-a",
        security: { auth_method: "token" },
        network: { enable_tls: false },
      })
      const refused = yield* Effect.flip(same.network.dial(a.target, { token }))
      expect(refused.reason).toMatch(/refused: identity: .*own id "node-a"/)
    }),
  )

  it.scopedLive("a dialer refuses a server whose certificate names another node, before sending its Hello", () =>
    Effect.gen(function* () {
      const a = yield* startNode({ nodeId: "node-a" })
      const b = yield* startNode({ nodeId: "node-b", security: yield* identityFiles(a.dir, "node-b") })
      const port = a.network.address.port
      const wrong = yield* Effect.flip(b.network.dial(`node-x@127.0.0.1:${port}`))
      expect(wrong.reason).toBe('server certificate names "node-a", expected node "node-x"')
      expect(wrong.retryable).toBe(false)
      const viaOption = yield* Effect.flip(b.network.dial(a.target, { nodeId: "node-x" }))
      expect(viaOption.reason).toMatch(/expected node "node-x"/)
      const pinnedPrint = yield* Effect.flip(b.network.dial(a.target, { fingerprint: "00".repeat(32) }))
      expect(pinnedPrint.reason).toMatch(/fingerprint .* is not the pinned one/)
      // The right pins pass.
      const ok = yield* b.network.dial(`node-a@127.0.0.1:${port}`, { fingerprint: a.security.tls.fingerprint })
      expect(ok).toMatchObject({ peerNodeId: "node-a", peerNodeIdSource: "certificate" })
      // Nothing from the refused dials reached the server's accept queue.
      expect((yield* a.network.accepted.take).id).toBeGreaterThan(0)
      expect(yield* a.network.accepted.size).toMatchObject({ value: 0 })
    }),
  )

  it.scopedLive("a Welcome naming another node than the server certificate is refused", () =>
    Effect.gen(function* () {
      const a = yield* startNode({ nodeId: "node-a" })
      // A server configured with node-b's certificate but calling itself node-z.
      const z = yield* startNode({ nodeId: "node-z", security: yield* identityFiles(a.dir, "node-b") })
      const refused = yield* Effect.flip(a.network.dial(z.target))
      expect(refused.reason).toBe('identity refused: Welcome says "node-z" but the server certificate names "node-b"')
      expect(refused.retryable).toBe(false)
    }),
  )
})

describe("configured peers are pinned", () => {
  it.scopedLive("a node-id@host:port peer whose certificate names another node is never sent a Hello", () =>
    Effect.gen(function* () {
      const logs: Logs = []
      yield* Effect.gen(function* () {
        const ca = yield* startNode({ nodeId: "node-ca" })
        const b = yield* startNode({ nodeId: "node-b", security: yield* identityFiles(ca.dir, "node-b") })
        const a = yield* startNode({
          nodeId: "node-a",
          security: yield* identityFiles(ca.dir, "node-a"),
          network: { peers: [`node-x@${b.target}`, `node-b@${b.target}`] },
          options: { peerBackoff: Network.backoff({ base: "20 millis", max: "100 millis", attempts: Infinity }) },
        })
        // The correctly pinned link comes up; the other never reaches B.
        expect(yield* b.network.accepted.take).toMatchObject({ peerNodeId: "node-a" })
        yield* settle(a.network.peers, (m) => m.has(`node-b@${b.target}`))
        yield* settle(
          Effect.sync(() => logs.some((l) => l.message.startsWith(`peer node-x@${b.target} cannot be linked`))),
          (seen) => seen,
        )
        expect(yield* b.network.accepted.size).toMatchObject({ value: 0 })
        expect((yield* a.network.peers).has(`node-x@${b.target}`)).toBe(false)
      }).pipe(Effect.provide(recordingLogger(logs)))
      expect(logs.find((l) => l.message.startsWith("peer node-x@"))?.message).toContain(
        'server certificate names "node-b", expected node "node-x"',
      )
    }),
  )
})

describe("memory before authentication", () => {
  it.scopedLive("a 15 MiB unfinished Hello is refused from its header, before its payload is buffered", () =>
    Effect.gen(function* () {
      const logs: Logs = []
      yield* Effect.gen(function* () {
        const a = yield* startNode({ security: { auth_method: "none" }, network: { enable_tls: false } })
        const protocol = yield* counted(NetworkMetrics.refused("protocol"))
        const attackers = yield* Effect.all(Array.from({ length: 5 }, () => tcp(a.network.address.port)))
        for (const c of attackers) {
          c.socket.write(helloHeader(15 * 1024 * 1024))
          c.socket.write(Buffer.alloc(256 * 1024, 0x41))
        }
        for (const c of attackers) yield* waitClosed(c.closed)
        expect(yield* counted(NetworkMetrics.refused("protocol"))).toBe(protocol + 5)
      }).pipe(Effect.provide(recordingLogger(logs)))
      const oversized = logs.filter((l) =>
        l.message.includes("(before authentication): network frame: TooLarge at byte 4"),
      )
      expect(oversized.length).toBe(5)
      expect(oversized[0]!.message).toContain("payload length 15728640 exceeds max_frame_size 16384")
    }),
  )

  it.scopedLive("unfinished Hellos under the frame cap are bounded together by preAuthBufferBytes", () =>
    Effect.gen(function* () {
      const a = yield* startNode({
        security: { auth_method: "none" },
        network: { enable_tls: false },
        options: { preAuthBufferBytes: 40_000 },
      })
      const memory = yield* counted(NetworkMetrics.refused("pre_auth_memory"))
      const port = a.network.address.port
      const clients: Array<Effect.Effect.Success<ReturnType<typeof tcp>>> = []
      // Each holds 12 000 bytes of a 15 000-byte Hello: the fourth passes the 40 000-byte bound.
      for (let i = 0; i < 5; i++) {
        const c = yield* tcp(port)
        c.socket.write(helloHeader(15_000))
        c.socket.write(Buffer.alloc(12_000, 0x41))
        clients.push(c)
        if (i < 3) yield* Effect.sleep("50 millis")
      }
      yield* settle(counted(NetworkMetrics.refused("pre_auth_memory")), (n) => n >= memory + 1)
      const refusedClient = yield* Effect.raceAll(
        clients.map((c, i) =>
          Effect.as(
            Effect.promise(() => c.closed),
            i,
          ),
        ),
      ).pipe(Effect.timeout("10 seconds"))
      const [refusal] = Frame.decoder(1 << 20).push(clients[refusedClient]!.received()).frames
      expect(Frame.parseJson(refusal!.payload)).toMatchObject({ reason: "busy" })
      expect(refusal && String(Frame.parseJson(refusal.payload)?.message)).toMatch(/pre-authentication memory bound/)
      // Those within the bound are still waiting for the rest of their Hello.
      expect(clients.filter((c) => !c.socket.closed).length).toBeGreaterThanOrEqual(3)
    }),
  )
})

describe("what the logs say about refused TLS peers", () => {
  it.scopedLive("a peer from another CA is logged with the real reason and address; a probe is not a warning", () =>
    Effect.gen(function* () {
      const logs: Logs = []
      yield* Effect.gen(function* () {
        const a = yield* startNode({ nodeId: "node-a" })
        const c = yield* startNode({ nodeId: "node-c" })
        // C does not trust A's CA: it drops the handshake, which A hears as a hang-up.
        yield* Effect.flip(c.network.dial(a.target))
        // And with A's CA trusted, A refuses C's certificate.
        yield* Effect.flip(c.network.dial(a.target, { tls: { ca: a.security.tls.ca } }))
        const probes = yield* counted(NetworkMetrics.probeConnections)
        const probe = yield* tcp(a.network.address.port)
        probe.socket.end()
        yield* waitClosed(probe.closed)
        yield* settle(counted(NetworkMetrics.probeConnections), (n) => n === probes + 1)
        // Plain bytes on the TLS port.
        const plain = yield* tcp(a.network.address.port)
        plain.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        yield* waitClosed(plain.closed)
        yield* settle(
          Effect.sync(() => logs.filter((l) => l.message.startsWith("TLS handshake refused")).length),
          (n) => n >= 3,
        )
      }).pipe(Effect.provide(recordingLogger(logs)))
      const refused = logs.filter((l) => l.message.startsWith("TLS handshake refused"))
      for (const l of refused) {
        expect(l.annotations?.remote).toMatch(/^127\.0\.0\.1:\d+$/)
        expect(l.message).not.toMatch(/socket hang up|\.c:\d+|SSL routines/)
      }
      expect(refused.map((l) => l.message)).toEqual(
        expect.arrayContaining([
          "TLS handshake refused: the peer closed the connection during the TLS handshake (it may not trust this node's certificate)",
          "TLS handshake refused: the peer's certificate is not issued by a trusted CA",
          "TLS handshake refused: the client sent an HTTP request to the TLS cluster port",
        ]),
      )
      // Three refusals, and no warning for the probe.
      expect(refused.length).toBe(3)
    }),
  )
})

describe("peer text in logs", () => {
  it.scopedLive("a Refused text with control characters is escaped and cut", () =>
    Effect.gen(function* () {
      // A fake server that answers every Hello with a hostile Refused.
      const server = net.createServer((socket) => {
        socket.on("error", () => {})
        socket.once("data", () =>
          socket.end(
            Frame.encode(
              Frame.json(Frame.FrameType.Refused, {
                reason: "nope\n2026-01-01 level=ERROR forged",
                message: `\u001b[31m${"x".repeat(1000)}`,
              }),
            ),
          ),
        )
      })
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.sync(() => server.close()),
      )
      const client = yield* startNode({
        nodeId: "cli",
        security: { auth_method: "none" },
        network: { enable_tls: false },
      })
      const port = (server.address() as net.AddressInfo).port
      const refused = yield* Effect.flip(client.network.dial(`127.0.0.1:${port}`))
      expect(refused.reason).not.toContain("\n")
      expect(refused.reason).not.toContain("\u001b")
      expect(refused.reason).toContain("nope\\n2026-01-01 level=ERROR forged")
      expect(refused.reason).toContain("\\u001b[31m")
      expect(refused.reason).toContain("(1005 characters)")
      expect(refused.reason.length).toBeLessThan(500)
    }),
  )
})

describe("network settings bounds", () => {
  it("refuses a huge max_frame_size and a zero conn_timeout, naming the key", () => {
    expect(() => NetworkSettings.decode({ max_frame_size: 99_999_999_999 })).toThrow(
      /network\.max_frame_size must be an integer from 1024 to 1073741824, got 99999999999/,
    )
    expect(() => NetworkSettings.decode({ conn_timeout: "0ms" })).toThrow(
      /network\.conn_timeout must be between 100ms and 10m/,
    )
    expect(() => NetworkSettings.decode({ max_connections_per_ip: 0 })).toThrow(/max_connections_per_ip/)
    expect(NetworkSettings.decode({ conn_timeout: "100ms", max_frame_size: 1024 })).toMatchObject({
      max_frame_size: 1024,
    })
    expect(NetworkSettings.decode({ peers: ["node-b@10.0.0.2:7700"] }).peers).toEqual(["node-b@10.0.0.2:7700"])
    expect(NetworkSettings.parsePeer("node-b@[::1]:7700")).toEqual({ nodeId: "node-b", host: "::1", port: 7700 })
    expect(NetworkSettings.parsePeer("[::1]:7700")).toEqual({ nodeId: undefined, host: "::1", port: 7700 })
    expect(() => NetworkSettings.decode({ peers: ["@host:1"] })).toThrow(/node-id@host:port/)
  })
})

describe("TLS errors in plain words", () => {
  it("maps OpenSSL codes and strips OpenSSL prefixes and source paths from the rest", () => {
    const raw = Object.assign(
      new Error(
        "80ACE8D8807F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad record mac:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1605:SSL alert number 20",
      ),
      { code: "ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC" },
    )
    expect(Text.tlsReason(raw)).toBe("sslv3 alert bad record mac")
    expect(Text.tlsReason({ code: "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA" })).toBe("the peer does not trust this node's CA")
    expect(Text.tlsReason(new Error("socket hang up"))).toBe("socket hang up")
    expect(Text.peerText(undefined)).toBe("")
    expect(Text.peerText("a\u202eb\tc")).toBe("a\\u202eb\\tc")
  })
})
