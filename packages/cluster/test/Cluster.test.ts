import { X509Certificate } from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import * as tls from "node:tls"
import { describe, expect, it } from "@effect/vitest"
import { CertificateAuthority, SecuritySettings } from "@novacron/security"
import { tempDir } from "@novacron/testing"
import { Effect, Exit } from "effect"
import * as Cluster from "../src/Cluster.js"
import * as ClusterCa from "../src/ClusterCa.js"
import * as ClusterSettings from "../src/ClusterSettings.js"
import { join } from "../src/Join.js"
import * as JoinServer from "../src/JoinServer.js"
import * as JoinToken from "../src/JoinToken.js"
import { type Log, modeOf, post, recording, seed } from "./helpers.js"

const read = (file: string) => Effect.promise(() => fs.readFile(file, "utf8"))
const exists = (file: string) =>
  Effect.promise(() =>
    fs.stat(file).then(
      () => true,
      () => false,
    ),
  )

const failure = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.exit(self), (exit) =>
    Exit.isFailure(exit) && exit.cause._tag === "Fail"
      ? Effect.succeed(exit.cause.error)
      : Effect.die(`expected a failure, got ${String(exit)}`),
  )

// Both sides present their joined files; each requires and verifies the other's certificate.
const mutualTls = (
  server: { cert: string; key: string; ca: string },
  client: { cert: string; key: string; ca: string },
) =>
  Effect.async<{ serverSaw: string; clientSaw: string }, Error>((resume) => {
    let serverSaw = ""
    const srv = tls.createServer({ ...server, requestCert: true, rejectUnauthorized: true }, (socket) => {
      serverSaw = (socket.getPeerCertificate().subject as { CN?: string }).CN ?? ""
      socket.end("ok")
    })
    srv.on("tlsClientError", (e) => resume(Effect.fail(e)))
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port
      const socket = tls.connect({ host: "127.0.0.1", port, ...client, rejectUnauthorized: true }, () => {
        const clientSaw = (socket.getPeerCertificate().subject as { CN?: string }).CN ?? ""
        socket.on("data", () => {
          socket.end()
          srv.close()
          resume(Effect.succeed({ serverSaw, clientSaw }))
        })
      })
      socket.on("error", (e) => {
        srv.close()
        resume(Effect.fail(e))
      })
    })
  })

const filesOf = (dir: string) =>
  Effect.all({
    cert: read(ClusterCa.paths(dir).nodeCert),
    key: read(ClusterCa.paths(dir).nodeKey),
    ca: read(ClusterCa.paths(dir).caCert),
  })

describe("join", () => {
  it.scoped(
    "two nodes join a seed; their certificates verify against the CA, carry their id, and talk mutual TLS",
    () =>
      Effect.gen(function* () {
        const s = yield* seed()
        const token = yield* s.token("1 hour", 2)
        const a = yield* tempDir
        const b = yield* tempDir
        const joinedA = yield* join({ token, dataDir: a, nodeId: "node-a" })
        yield* join({ token, dataDir: b, nodeId: "node-b" })
        expect(joinedA.peerAddress).toBe("127.0.0.1:7700")

        const seedCa = new X509Certificate(yield* read(ClusterCa.paths(s.dir).caCert))
        for (const [dir, id] of [
          [a, "node-a"],
          [b, "node-b"],
        ] as const) {
          const p = ClusterCa.paths(dir)
          expect(yield* read(p.caCert)).toBe(seedCa.toString())
          expect(yield* exists(p.caKey)).toBe(false)
          expect(yield* Effect.promise(() => modeOf(p.nodeKey))).toBe(0o600)
          const cert = new X509Certificate(yield* read(p.nodeCert))
          expect(CertificateAuthority.isIssuedBy(cert, [seedCa])).toBe(true)
          expect(CertificateAuthority.commonName(cert)).toBe(id)
          expect(cert.subjectAltName).toContain(`DNS:${id}`)
          expect(cert.subjectAltName).toContain("IP Address:127.0.0.1")
          // @novacron/security takes the joined files as they are on the next start.
          const nodeTls = yield* CertificateAuthority.ensureNodeTls(SecuritySettings.defaults, {
            data_dir: dir,
            node_id: id,
            listen_address: "127.0.0.1",
          })
          expect(nodeTls.source).toBe("reused")
        }
        const seen = yield* mutualTls(yield* filesOf(a), yield* filesOf(b))
        expect(seen).toEqual({ serverSaw: "node-b", clientSaw: "node-a" })

        const [listed] = yield* ClusterCa.listTokens(s.dir)
        expect(listed).toMatchObject({ uses: 2, maxUses: 2, status: "used up", joined: ["node-a", "node-b"] })
        const store = yield* read(ClusterCa.paths(s.dir).tokensFile)
        expect(store).not.toContain(JoinToken.encode(yield* JoinToken.decode(token)).split(".")[2])
        expect(yield* Effect.promise(() => modeOf(ClusterCa.paths(s.dir).tokensFile))).toBe(0o600)
      }),
  )

  it.scoped("refuses a server whose CA is not the pinned one, naming both fingerprints, before sending anything", () =>
    Effect.gen(function* () {
      const s = yield* seed()
      const good = yield* JoinToken.decode(yield* s.token())
      const wrong = "ab".repeat(32)
      const dir = yield* tempDir
      const error = yield* failure(
        join({ token: JoinToken.encode({ ...good, caFingerprint: wrong }), dataDir: dir, nodeId: "n" }),
      )
      expect(error._tag).toBe("FingerprintMismatch")
      expect(error.message).toContain(`sha256:${wrong}`)
      expect(error.message).toContain(`sha256:${good.caFingerprint}`)
      expect(yield* Effect.promise(() => fs.readdir(dir))).toEqual([])
      const [listed] = yield* ClusterCa.listTokens(s.dir)
      expect(listed?.uses).toBe(0)
    }),
  )

  it.scoped("refuses expired, revoked, used-up, wrong-secret and unknown tokens, and logs why with the address", () =>
    Effect.gen(function* () {
      const logs: Array<Log> = []
      yield* Effect.gen(function* () {
        const s = yield* seed()
        const attempt = (token: string) =>
          Effect.flatMap(tempDir, (dir) => failure(join({ token, dataDir: dir, nodeId: "late" })))

        const expired = yield* s.token(1)
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 20)))
        expect(yield* attempt(expired)).toMatchObject({
          _tag: "JoinRefused",
          status: 403,
          reason: expect.stringMatching(/is expired/),
        })

        const revoked = yield* s.token()
        yield* ClusterCa.revokeToken(s.dir, (yield* JoinToken.decode(revoked)).id)
        expect(yield* attempt(revoked)).toMatchObject({ status: 403, reason: expect.stringMatching(/is revoked/) })

        const once = yield* s.token("1 hour", 1)
        yield* Effect.flatMap(tempDir, (dir) => join({ token: once, dataDir: dir, nodeId: "first" }))
        expect(yield* attempt(once)).toMatchObject({ status: 403, reason: expect.stringMatching(/is used up/) })

        const valid = yield* JoinToken.decode(yield* s.token())
        const otherSecret = JoinToken.generate().secret
        expect(yield* attempt(JoinToken.encode({ ...valid, secret: otherSecret }))).toMatchObject({
          status: 403,
          reason: "invalid token",
        })
        expect(yield* attempt(JoinToken.encode({ ...valid, id: "zzzzzzzz" }))).toMatchObject({
          status: 403,
          reason: "invalid token",
        })
        // The refusals did not consume the valid token.
        yield* Effect.flatMap(tempDir, (dir) =>
          join({ token: JoinToken.encode(valid), dataDir: dir, nodeId: "second" }),
        )
      }).pipe(Effect.provide(recording(logs)))
      const refusals = logs.filter((l) => l.level === "WARN").map((l) => l.message)
      expect(refusals).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^join refused from 127\.0\.0\.1: token \w{8} is expired$/),
          expect.stringMatching(/^join refused from 127\.0\.0\.1: token \w{8} is revoked$/),
          expect.stringMatching(/^join refused from 127\.0\.0\.1: token \w{8} is used up$/),
          expect.stringMatching(/^join refused from 127\.0\.0\.1: wrong proof for token \w{8}/),
          "join refused from 127.0.0.1: unknown token id zzzzzzzz",
        ]),
      )
    }),
  )

  it.scoped("refuses a body over the limit (declared or streamed) without touching the token store", () =>
    Effect.gen(function* () {
      const s = yield* seed({ maxRequestBytes: 2048 })
      const big = JSON.stringify({ padding: "x".repeat(4096) })
      const declared = yield* Effect.promise(() => post(s.server.port, big, { "x-novacron-join-proof": "00" }))
      expect(declared.status).toBe(413)
      expect(declared.text).toContain("over 2048 bytes")
      const streamed = yield* Effect.promise(() => post(s.server.port, big, { "x-novacron-join-proof": "00" }, true))
      expect(streamed.status).toBe(413)
      expect(yield* exists(ClusterCa.paths(s.dir).tokensFile)).toBe(false)
    }),
  )

  it.scoped("refuses malformed requests with the reason, and rate-limits each address", () =>
    Effect.gen(function* () {
      const s = yield* seed({ requestsPerMinute: 3 })
      const noProof = yield* Effect.promise(() => post(s.server.port, "{}"))
      expect(noProof.status).toBe(401)
      const malformed = yield* Effect.promise(() =>
        post(s.server.port, '{"node_id":"a b"}', { "x-novacron-join-proof": "00" }),
      )
      expect(malformed.status).toBe(400)
      expect(JSON.parse(malformed.text).error).toMatch(/malformed join request/)
      const third = yield* Effect.promise(() => post(s.server.port, "{}"))
      expect(third.status).toBe(401)
      const fourth = yield* Effect.promise(() => post(s.server.port, "{}"))
      expect(fourth.status).toBe(429)
    }),
  )

  it.scopedLive("closes a connection that trickles its request past the deadline", () =>
    Effect.gen(function* () {
      const s = yield* seed({ requestTimeoutMillis: 1000 })
      const closedAfter = yield* Effect.async<number>((resume) => {
        const started = Date.now()
        const socket = tls.connect({ host: "127.0.0.1", port: s.server.port, rejectUnauthorized: false }, () => {
          socket.write("POST /v1/join HTTP/1.1\r\nhost: x\r\n")
          // One header byte every 200 ms: never idle, never complete.
          const drip = setInterval(() => socket.write("x"), 200)
          socket.on("close", () => {
            clearInterval(drip)
            resume(Effect.succeed(Date.now() - started))
          })
        })
        socket.on("error", () => undefined)
        return Effect.sync(() => socket.destroy())
      }).pipe(Effect.timeout("25 seconds"))
      // Closed by the server (the test's own guard is 25 s), after the deadline.
      expect(closedAfter).toBeGreaterThanOrEqual(900)
    }),
  )

  it.scoped("will not replace another CA's material in the data directory unless forced", () =>
    Effect.gen(function* () {
      const s = yield* seed()
      const token = yield* s.token("1 hour", 2)
      const dir = yield* tempDir
      // A node started once on its own: a CA of its own, with its key.
      yield* CertificateAuthority.ensureNodeTls(SecuritySettings.defaults, {
        data_dir: dir,
        node_id: "n",
        listen_address: "127.0.0.1",
      })
      const refused = yield* failure(join({ token, dataDir: dir, nodeId: "n" }))
      expect(refused._tag).toBe("DataDirInUse")
      expect(refused.message).toMatch(/another CA .*with its key/)
      const joined = yield* join({ token, dataDir: dir, nodeId: "n", force: true })
      expect(joined.movedAside).toMatch(/tls\.before-join-/)
      expect(yield* exists(ClusterCa.paths(dir).caKey)).toBe(false)
      expect(yield* exists(path.join(joined.movedAside!, "ca.key"))).toBe(true)
      // The seed's own directory is refused as a joiner.
      expect((yield* failure(join({ token, dataDir: s.dir, nodeId: "seed" })))._tag).toBe("DataDirInUse")
    }),
  )

  it.scoped("a node key it cannot read is a typed JoinServerError naming the address, not a defect", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* ClusterCa.init({ dataDir: dir, nodeId: "seed", joinAddress: "127.0.0.1:1" })
      const key = ClusterCa.paths(dir).nodeKey
      // A directory where the key belongs: readFile fails (EISDIR) as it would on EACCES.
      yield* Effect.promise(async () => {
        await fs.rm(key)
        await fs.mkdir(key)
      })
      const error = yield* failure(JoinServer.make({ dataDir: dir, port: 0 }))
      expect(error._tag).toBe("JoinServerError")
      expect(error.message).toMatch(/^join server on 127\.0\.0\.1:0: cannot read the node certificate: EISDIR/)
    }),
  )

  it.scoped("a joined node cannot serve joins: it has no CA key", () =>
    Effect.gen(function* () {
      const s = yield* seed()
      const dir = yield* tempDir
      yield* join({ token: yield* s.token(), dataDir: dir, nodeId: "n" })
      const error = yield* failure(JoinServer.make({ dataDir: dir, port: 0 }))
      expect(error._tag).toBe("ClusterCaError")
      expect(error.message).toContain("ca.key")
    }),
  )
})

describe("JoinToken", () => {
  it.effect("decodes what it encodes, IPv6 addresses included, and says what is wrong otherwise", () =>
    Effect.gen(function* () {
      const { id, secret } = JoinToken.generate()
      const token = { id, secret, caFingerprint: "0f".repeat(32), address: "[::1]:7790" }
      expect(yield* JoinToken.decode(JoinToken.encode(token))).toEqual(token)
      const dotted = { ...token, address: "seed.example.org:7790" }
      expect(yield* JoinToken.decode(JoinToken.encode(dotted))).toEqual(dotted)
      expect((yield* failure(JoinToken.decode("hello"))).message).toMatch(/starting with "ncj1\."/)
      const badFp = (yield* failure(JoinToken.decode(`ncj1.${id}.${secret}.XYZ.127.0.0.1:7790`))).message
      expect(badFp).toMatch(/caFingerprint: expected a CA fingerprint of 64 lowercase hex digits/)
      expect((yield* failure(JoinToken.decode(`ncj1.${id}.${secret}.${"0f".repeat(32)}.nowhere`))).message).toMatch(
        /address: expected "host:port"/,
      )
    }),
  )
})

const freePort = Effect.async<number>((resume) => {
  const srv = net.createServer()
  srv.listen(0, "127.0.0.1", () => {
    const { port } = srv.address() as net.AddressInfo
    srv.close(() => resume(Effect.succeed(port)))
  })
})

describe("commands", () => {
  it.scoped("init, token create|list|revoke and join print what an operator needs", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const port = yield* freePort
      const settings = ClusterSettings.decode({ join_port: port, token_ttl: "2h" })
      const initText = yield* Cluster.initCommand({ dataDir: dir, nodeId: "seed", settings })
      const fp = ClusterCa.fingerprintOf(yield* read(ClusterCa.paths(dir).caCert))
      expect(initText).toContain(`cluster CA: sha256:${fp}`)
      expect(initText).toContain(`join address: 127.0.0.1:${port}`)
      const token = /(ncj1\.\S+)/.exec(initText)![1]!
      expect((yield* JoinToken.decode(token)).address).toBe(`127.0.0.1:${port}`)
      // Re-running init keeps the CA.
      yield* Cluster.initCommand({ dataDir: dir, nodeId: "seed", settings })
      expect(ClusterCa.fingerprintOf(yield* read(ClusterCa.paths(dir).caCert))).toBe(fp)

      yield* JoinServer.make({ dataDir: dir, port, peerAddress: "127.0.0.1:7700" })
      const joiner = yield* tempDir
      const joinText = yield* Cluster.joinCommand({ token, dataDir: joiner, nodeId: "node-2" })
      expect(joinText).toContain(`joined the cluster (CA sha256:${fp}) as node-2`)
      expect(joinText).toContain(`--node-id node-2 --set network.peers=127.0.0.1:7700`)

      const before = Date.now()
      const created = yield* Cluster.tokenCommand({
        dataDir: dir,
        action: { _tag: "create", uses: 3, ttl: "90m" },
        settings,
      })
      expect(created).toMatch(/join token \w{8} \(3 uses, expires/)
      const expires = Date.parse(/expires (\S+)\)/.exec(created)![1]!)
      expect(expires - before).toBeGreaterThanOrEqual(90 * 60_000 - 1000)
      expect(expires - before).toBeLessThan(91 * 60_000)
      const badTtl = yield* failure(Cluster.tokenCommand({ dataDir: dir, action: { _tag: "create", ttl: "soon" } }))
      expect(badTtl.message).toMatch(/token ttl: expected a duration/)
      const id = /join token (\w{8})/.exec(created)![1]!
      yield* Cluster.tokenCommand({ dataDir: dir, action: { _tag: "revoke", id } })
      const list = yield* Cluster.tokenCommand({ dataDir: dir, action: { _tag: "list" } })
      expect(list).toMatch(/^ID\s+STATUS\s+USES\s+EXPIRES\s+JOINED$/m)
      expect(list).toMatch(/used up\s+1\/1\s+\S+\s+node-2/)
      expect(list).toMatch(new RegExp(`${id}\\s+revoked\\s+0/3`))
      const missing = yield* failure(Cluster.tokenCommand({ dataDir: dir, action: { _tag: "revoke", id: "nope1234" } }))
      expect(missing._tag).toBe("TokenNotFound")
      // Tokens are created only where init ran.
      const notSeed = yield* failure(Cluster.tokenCommand({ dataDir: joiner, action: { _tag: "create" } }))
      expect(notSeed._tag).toBe("ClusterCaError")
    }),
  )

  it.scoped(
    "cert issue: a client certificate of the cluster CA with the role in its OU; the key 0600, never overwritten",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const out = yield* tempDir
        yield* Cluster.initCommand({ dataDir: dir, nodeId: "seed", settings: ClusterSettings.decode({}) })
        const text = yield* Cluster.certCommand({ dataDir: dir, name: "alice", role: "operator", out, days: 30 })
        const caPem = yield* read(ClusterCa.paths(dir).caCert)
        expect(text).toContain(`issued client certificate "alice" (role operator, valid 30 days) from CA sha256:`)
        expect(text).toContain(`--cert ${path.join(out, "alice.crt")} --key ${path.join(out, "alice.key")}`)
        const cert = new X509Certificate(yield* read(path.join(out, "alice.crt")))
        expect(cert.subject).toMatch(/CN=alice/)
        expect(CertificateAuthority.roleOf(cert)).toBe("operator")
        expect(cert.checkIssued(new X509Certificate(caPem))).toBe(true)
        expect(cert.verify(new X509Certificate(caPem).publicKey)).toBe(true)
        const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000
        expect(days).toBeGreaterThan(29)
        expect(days).toBeLessThan(31)
        expect(yield* Effect.promise(() => modeOf(path.join(out, "alice.key")))).toBe(0o600)
        // The key matches the certificate.
        const key = yield* read(path.join(out, "alice.key"))
        expect(cert.checkPrivateKey((yield* Effect.promise(() => import("node:crypto"))).createPrivateKey(key))).toBe(
          true,
        )

        // Issued again without --force: refused, the first key kept.
        const again = yield* failure(Cluster.certCommand({ dataDir: dir, name: "alice", role: "admin", out }))
        expect(again.message).toBe(`exists already (pass --force to replace it) (${path.join(out, "alice.key")})`)
        expect(yield* read(path.join(out, "alice.key"))).toBe(key)
        yield* Cluster.certCommand({ dataDir: dir, name: "alice", role: "admin", out, force: true })
        expect(CertificateAuthority.roleOf(new X509Certificate(yield* read(path.join(out, "alice.crt"))))).toBe("admin")

        // Bad input names what is wrong; a node role is not a client role; a joined node has no CA key.
        expect(
          (yield* failure(Cluster.certCommand({ dataDir: dir, name: "../x", role: "reader", out }))).message,
        ).toMatch(/client name "\.\.\/x"/)
        expect((yield* failure(Cluster.certCommand({ dataDir: dir, name: "n", role: "node", out }))).message).toMatch(
          /role "node": a client certificate carries reader, operator or admin/,
        )
        expect(
          (yield* failure(Cluster.certCommand({ dataDir: dir, name: "n", role: "reader", out, days: 9000 }))).message,
        ).toMatch(/--days 9000/)
        const empty = yield* tempDir
        expect((yield* failure(Cluster.certCommand({ dataDir: empty, name: "n", role: "reader", out })))._tag).toBe(
          "ClusterCaError",
        )
      }),
  )

  it.effect("needs a dialable join address", () =>
    Effect.gen(function* () {
      const error = yield* failure(Cluster.joinAddressOf(ClusterSettings.defaults, "0.0.0.0"))
      expect(error.message).toMatch(/set cluster\.join_address/)
      expect(yield* Cluster.joinAddressOf(ClusterSettings.defaults, "::1")).toBe("[::1]:7790")
    }),
  )
})
