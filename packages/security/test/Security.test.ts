import { randomBytes, X509Certificate } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { tempDir } from "@novacron/testing"
import { Context, Effect, Exit, Layer, Option, Scope } from "effect"
import * as Authorization from "../src/Authorization.js"
import * as CertificateAuthority from "../src/CertificateAuthority.js"
import * as Encryption from "../src/Encryption.js"
import * as SecretsManager from "../src/SecretsManager.js"
import * as Security from "../src/Security.js"
import * as SecurityComponent from "../src/SecurityComponent.js"
import { modeOf, nodeInfo, settings, withLogs } from "./helpers.js"

describe("CertificateAuthority", () => {
  it.scoped("issues a node CA and certificate into <data_dir>/tls on first start (keys 0600) and reuses them", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const node = nodeInfo(dir, { listen_address: "10.1.2.3" })
      const first = yield* CertificateAuthority.ensureNodeTls(settings(), node)
      expect(first.source).toBe("issued")
      expect(first.issueMillis).toBeGreaterThan(0)
      const tlsDir = path.join(dir, "tls")
      for (const key of ["ca.key", "node.key"]) {
        expect(yield* Effect.promise(() => modeOf(path.join(tlsDir, key)))).toBe(0o600)
      }
      const cert = new X509Certificate(yield* Effect.promise(() => fs.readFile(path.join(tlsDir, "node.crt"))))
      const ca = new X509Certificate(yield* Effect.promise(() => fs.readFile(path.join(tlsDir, "ca.crt"))))
      expect(ca.ca).toBe(true)
      expect(cert.ca).toBe(false)
      expect(cert.verify(ca.publicKey)).toBe(true)
      expect(cert.subject).toBe("CN=node-a")
      expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1")
      expect(cert.subjectAltName).toContain("IP Address:10.1.2.3")
      expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1")
      expect(cert.checkHost("node-a")).toBe("node-a")

      const second = yield* CertificateAuthority.ensureNodeTls(settings(), node)
      expect(second.source).toBe("reused")
      expect(second.fingerprint).toBe(first.fingerprint)
      expect(second.issueMillis).toBe(0)
    }),
  )

  it.scoped("re-issues a node certificate that its CA did not sign, keeping the CA", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const first = yield* CertificateAuthority.ensureNodeTls(settings(), nodeInfo(dir))
      const stranger = yield* CertificateAuthority.issueCertificate(
        yield* CertificateAuthority.issueCa("other"),
        "node-a",
      )
      yield* Effect.promise(async () => {
        await fs.writeFile(path.join(dir, "tls", "node.crt"), stranger.certPem)
        await fs.writeFile(path.join(dir, "tls", "node.key"), stranger.keyPem)
      })
      const again = yield* CertificateAuthority.ensureNodeTls(settings(), nodeInfo(dir))
      expect(again.source).toBe("issued")
      expect(again.ca).toBe(first.ca)
      expect(CertificateAuthority.isIssuedBy(again.certificate, again.caCertificates)).toBe(true)
    }),
  )

  it.scoped("uses configured files in production; refuses a partial configuration or a mismatched key", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const ca = yield* CertificateAuthority.issueCa("prod CA")
      const leaf = yield* CertificateAuthority.issueCertificate(ca, "prod-node-1")
      const other = yield* CertificateAuthority.issueCertificate(ca, "prod-node-2")
      const files = {
        cert_file: path.join(dir, "n.crt"),
        key_file: path.join(dir, "n.key"),
        ca_file: path.join(dir, "ca.crt"),
      }
      yield* Effect.promise(async () => {
        await fs.writeFile(files.cert_file, leaf.certPem)
        await fs.writeFile(files.key_file, leaf.keyPem)
        await fs.writeFile(files.ca_file, ca.certPem)
      })
      const tls = yield* CertificateAuthority.ensureNodeTls(settings(files), nodeInfo(dir))
      expect(tls).toMatchObject({ source: "configured", commonName: "prod-node-1" })
      expect(yield* Effect.promise(() => fs.readdir(dir))).not.toContain("tls")

      const partial = yield* Effect.flip(
        CertificateAuthority.ensureNodeTls(settings({ cert_file: files.cert_file }), nodeInfo(dir)),
      )
      expect(partial._tag).toBe("SecuritySettingsError")
      yield* Effect.promise(() => fs.writeFile(files.key_file, other.keyPem))
      const mismatch = yield* Effect.flip(CertificateAuthority.ensureNodeTls(settings(files), nodeInfo(dir)))
      expect(mismatch.message).toMatch(/private key does not match/)
    }),
  )
})

describe("Security", () => {
  const build = (raw: Parameters<typeof settings>[0], extra: Parameters<typeof nodeInfo>[1] = {}, at?: string) =>
    Effect.gen(function* () {
      const dir = at ?? (yield* tempDir)
      const ctx = yield* Layer.build(Security.layer(settings(raw), nodeInfo(dir, extra)))
      return { dir, security: Context.get(ctx, Security.Security), ctx }
    })

  it.scoped("token auth keeps only hashes and matches in constant time", () =>
    Effect.gen(function* () {
      const admin = Security.generateToken()
      const reader = Security.generateToken()
      const { security } = yield* build({
        auth_method: "token",
        tokens: [
          { name: "root", role: "admin", sha256: Security.hashToken(admin) },
          { name: "viewer", role: "reader", sha256: Security.hashToken(reader).toUpperCase() },
        ],
      })
      expect(yield* security.authenticateToken(admin)).toEqual({ name: "root", role: "admin", method: "token" })
      expect(yield* security.authenticateToken(reader)).toEqual({ name: "viewer", role: "reader", method: "token" })
      expect((yield* Effect.flip(security.authenticateToken(admin.slice(1)))).reason).toBe("unknown token")
      expect((yield* Effect.flip(security.authenticateToken(""))).reason).toBe("unknown token")
      expect(Option.isNone(security.anonymous)).toBe(true)
      expect(Security.hashToken("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }),
  )

  it.scoped("certificate auth: our CA and trusted_nodes (fingerprint in any notation, or name)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const tls = yield* CertificateAuthority.ensureNodeTls(settings(), nodeInfo(dir))
      const ca = {
        certPem: yield* Effect.promise(() => fs.readFile(path.join(dir, "tls", "ca.crt"), "utf8")),
        keyPem: yield* Effect.promise(() => fs.readFile(path.join(dir, "tls", "ca.key"), "utf8")),
      }
      const peerB = new X509Certificate((yield* CertificateAuthority.issueCertificate(ca, "node-b")).certPem)
      const peerC = new X509Certificate((yield* CertificateAuthority.issueCertificate(ca, "node-c")).certPem)
      const foreign = new X509Certificate(
        (yield* CertificateAuthority.issueCertificate(yield* CertificateAuthority.issueCa("x"), "node-b")).certPem,
      )
      const open = yield* Security.make(settings(), nodeInfo(dir), tls)
      expect(yield* open.authenticateCertificate(peerB)).toEqual({ name: "node-b", role: "node", method: "mtls" })
      expect((yield* Effect.flip(open.authenticateCertificate(foreign))).reason).toMatch(/not issued by a trusted CA/)

      const byName = yield* Security.make(settings({ trusted_nodes: ["node-b"] }), nodeInfo(dir), tls)
      expect((yield* byName.authenticateCertificate(peerB)).name).toBe("node-b")
      expect((yield* Effect.flip(byName.authenticateCertificate(peerC))).reason).toMatch(/not in trusted_nodes/)
      // Same name from a foreign CA: still refused.
      expect(Exit.isFailure(yield* Effect.exit(byName.authenticateCertificate(foreign)))).toBe(true)

      // A client certificate's role rides in OU=; an OU that is no role leaves the node role.
      const client = yield* CertificateAuthority.issueClientCertificate(ca, "ops-alice", "operator")
      const clientCert = new X509Certificate(client.certPem)
      expect(clientCert.subject).toContain("OU=operator")
      expect(CertificateAuthority.roleOf(clientCert)).toBe("operator")
      expect(CertificateAuthority.roleOf(peerB)).toBeUndefined()
      expect(yield* open.authenticateCertificate(clientCert)).toEqual({
        name: "ops-alice",
        role: "operator",
        method: "mtls",
      })

      const byPrint = yield* Security.make(settings({ trusted_nodes: [peerC.fingerprint256] }), nodeInfo(dir), tls)
      expect((yield* byPrint.authenticateCertificate(peerC)).name).toBe("node-c")
      expect(Exit.isFailure(yield* Effect.exit(byPrint.authenticateCertificate(peerB)))).toBe(true)
    }),
  )

  it.scoped("auth_method none: anonymous admin, with a loud error when listening beyond loopback", () =>
    Effect.gen(function* () {
      const [local, localLogs] = yield* withLogs(build({ auth_method: "none" }))
      expect(Option.getOrThrow(local.security.anonymous)).toEqual({ name: "anonymous", role: "admin", method: "none" })
      expect(localLogs.some((l) => l.level === "ERROR")).toBe(false)
      const [, wideLogs] = yield* withLogs(build({ auth_method: "none" }, { listen_address: "0.0.0.0" }))
      const loud = wideLogs.find((l) => l.level === "ERROR")
      expect(loud?.message).toMatch(/SECURITY WARNING.*0\.0\.0\.0.*full admin/)
      expect(Security.isLoopback("::1")).toBe(true)
      expect(Security.isLoopback("127.0.0.2")).toBe(true)
      expect(Security.isLoopback("10.0.0.1")).toBe(false)
    }),
  )

  it("roles grant what the API and cluster messages check", () => {
    const node: Authorization.Principal = { name: "node-b", role: "node", method: "mtls" }
    expect(Authorization.can(node, "cluster:message")).toBe(true)
    expect(Authorization.can(node, "secrets:read")).toBe(false)
    expect(Authorization.can("reader", "vm:read")).toBe(true)
    expect(Authorization.can("reader", "vm:write")).toBe(false)
    expect(Authorization.can("operator", "vm:migrate")).toBe(true)
    expect(Authorization.can("operator", "cluster:write")).toBe(false)
    for (const p of Authorization.permissions) expect(Authorization.can("admin", p)).toBe(true)
    const denied = Effect.runSyncExit(Authorization.authorize(node, "node:admin"))
    expect(denied).toMatchObject({ _tag: "Failure" })
    expect(Effect.runSync(Effect.flip(Authorization.authorize(node, "node:admin"))).message).toBe(
      "forbidden: node-b (node) lacks node:admin",
    )
  })

  it.scoped("the layer provides Security, SecretsManager and Encryption, and releases cleanly", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const scope = yield* Scope.make()
      const { ctx } = yield* Scope.extend(build({}, {}, dir), scope)
      const secrets = Context.get(ctx, SecretsManager.SecretsManager)
      const enc = Context.get(ctx, Encryption.Encryption)
      yield* secrets.set("x", "y")
      const sealed = yield* enc.encrypt(Buffer.from("z"), Buffer.from("test/z"))
      yield* Scope.close(scope, Exit.void)
      const files = yield* Effect.promise(() => fs.readdir(dir))
      // The master key is beside the data directory, not in it.
      expect(files.sort()).toEqual(["secrets.generation", "secrets.json", "tls"])
      // A restart of the layer reads what the first wrote.
      const again = yield* Layer.build(Security.layer(settings(), nodeInfo(dir)))
      expect(yield* Context.get(again, Encryption.Encryption).decrypt(sealed, Buffer.from("test/z"))).toEqual(
        Buffer.from("z"),
      )
      expect(Context.get(again, Security.Security).tls.source).toBe("reused")
    }),
  )
})

describe("SecurityComponent", () => {
  it.scopedLive("boots under the kernel as a healthy CRITICAL core component", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const spec = SecurityComponent.component(settings(), nodeInfo(dir))
      expect([spec.name, "phase" in spec]).toEqual(["security", false])
      const component = Component.place(spec, { phase: "core", criticality: "CRITICAL" })
      const node = yield* Boot.boot([component])
      const security = Context.get(node.context as Context.Context<Security.Security>, Security.Security)
      expect(security.nodeId).toBe("node-a")
      const health = yield* node.health
      expect(health.components.find((c) => c.name === "security")).toMatchObject({
        status: "running",
        health: "healthy",
      })
      yield* node.shutdown
    }),
  )

  it.scopedLive("a wrong master key fails the boot (CRITICAL)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const sm = yield* SecretsManager.make(settings(), nodeInfo(dir))
      yield* sm.set("k", "v")
      const env = { NOVACRON_MASTER_KEY: Buffer.alloc(32, 7).toString("base64") }
      const exit = yield* Effect.exit(
        Boot.boot([
          Component.place(SecurityComponent.component(settings(), nodeInfo(dir, { env })), {
            phase: "core",
            criticality: "CRITICAL",
          }),
        ]),
      )
      expect(Exit.isFailure(exit)).toBe(true)
    }),
  )
})

describe("issued certificate encoding", () => {
  it.effect(
    "every issued certificate parses and verifies (serials are minimally encoded)",
    () =>
      Effect.gen(function* () {
        const ca = yield* CertificateAuthority.issueCa("encoding CA")
        const caCert = new X509Certificate(ca.certPem)
        // Without the fix 1 serial in 256 starts with a zero byte; 1000 issues catch that almost surely.
        for (let i = 0; i < 1000; i++) {
          const leaf = yield* CertificateAuthority.issueCertificate(ca, `n${i}`)
          const cert = new X509Certificate(leaf.certPem)
          expect(cert.verify(caCert.publicKey)).toBe(true)
          expect(cert.serialNumber).toMatch(/^(?!00)[0-7][0-9A-F]/)
        }
      }),
    // 1000 key pairs and signatures: about 20 s on an idle core, several times that on a loaded machine.
    180_000,
  )
})

describe("joined nodes: ca.crt without ca.key", () => {
  const joined = (dir: string, ca: CertificateAuthority.Issued, leaf: CertificateAuthority.Issued | undefined) =>
    Effect.promise(async () => {
      const tls = path.join(dir, "tls")
      await fs.mkdir(tls, { recursive: true })
      await fs.writeFile(path.join(tls, "ca.crt"), ca.certPem)
      if (leaf) {
        await fs.writeFile(path.join(tls, "node.crt"), leaf.certPem)
        await fs.writeFile(path.join(tls, "node.key"), leaf.keyPem, { mode: 0o600 })
      }
    })
  const files = (dir: string) => Effect.promise(async () => (await fs.readdir(path.join(dir, "tls"))).sort())

  it.scoped("uses the node certificate as it is when the cluster CA issued it and it is valid", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const ca = yield* CertificateAuthority.issueCa("cluster CA")
      const leaf = yield* CertificateAuthority.issueCertificate(ca, "node-a")
      yield* joined(dir, ca, leaf)
      const tls = yield* CertificateAuthority.ensureNodeTls(settings(), nodeInfo(dir))
      expect(tls.source).toBe("reused")
      expect(tls.cert).toBe(leaf.certPem)
      expect(tls.ca).toBe(ca.certPem)
      expect(yield* files(dir)).toEqual(["ca.crt", "node.crt", "node.key"])
    }),
  )

  it.scoped("an expired, foreign or missing node certificate fails asking for a re-join; no CA is minted", () =>
    Effect.gen(function* () {
      const ca = yield* CertificateAuthority.issueCa("cluster CA")
      const expired = yield* CertificateAuthority.issueCertificate(ca, "node-a", { validDays: -1 })
      const foreign = yield* CertificateAuthority.issueCertificate(
        yield* CertificateAuthority.issueCa("other"),
        "node-a",
      )
      for (const [leaf, why] of [
        [expired, /expired, not yet valid, or not issued by ca\.crt/],
        [foreign, /expired, not yet valid, or not issued by ca\.crt/],
        [undefined, /node\.crt or node\.key is missing/],
      ] as const) {
        const dir = yield* tempDir
        yield* joined(dir, ca, leaf)
        const err = yield* Effect.flip(CertificateAuthority.ensureNodeTls(settings(), nodeInfo(dir)))
        expect(err._tag).toBe("CertificateError")
        expect(err.message).toMatch(
          /^this node joined a cluster \(tls\/ca\.crt is the cluster CA and tls\/ca\.key is absent\)/,
        )
        expect(err.message).toMatch(why)
        expect(err.message).toMatch(/re-join the cluster/)
        expect(yield* files(dir)).toEqual(leaf ? ["ca.crt", "node.crt", "node.key"] : ["ca.crt"])
        expect(yield* Effect.promise(() => fs.readFile(path.join(dir, "tls", "ca.crt"), "utf8"))).toBe(ca.certPem)
      }
    }),
  )
})

describe("certificate validity and file errors", () => {
  const configure = (dir: string, ca: CertificateAuthority.Issued, leaf: CertificateAuthority.Issued) =>
    Effect.promise(async () => {
      const files = {
        cert_file: path.join(dir, "n.crt"),
        key_file: path.join(dir, "n.key"),
        ca_file: path.join(dir, "ca.crt"),
      }
      await fs.writeFile(files.cert_file, leaf.certPem)
      await fs.writeFile(files.key_file, leaf.keyPem)
      await fs.writeFile(files.ca_file, ca.certPem)
      return files
    })

  it.scoped("a configured certificate that expired fails at load; one near its end warns with the days left", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const ca = yield* CertificateAuthority.issueCa("prod CA")
      const expired = yield* configure(
        dir,
        ca,
        yield* CertificateAuthority.issueCertificate(ca, "n", { validDays: -1 }),
      )
      const err = yield* Effect.flip(CertificateAuthority.ensureNodeTls(settings(expired), nodeInfo(dir)))
      expect(err).toMatchObject({ _tag: "CertificateError", path: expired.cert_file })
      expect(err.message).toMatch(/^certificate expired on .* \(.*n\.crt\)$/)

      const soon = yield* configure(dir, ca, yield* CertificateAuthority.issueCertificate(ca, "n", { validDays: 10 }))
      const [tls, logs] = yield* withLogs(CertificateAuthority.ensureNodeTls(settings(soon), nodeInfo(dir)))
      expect(tls.source).toBe("configured")
      expect(logs.find((l) => l.level === "WARN")?.message).toMatch(/^certificate n in .*n\.crt expires in 9 days/)

      const fine = yield* configure(dir, ca, yield* CertificateAuthority.issueCertificate(ca, "n", { validDays: 60 }))
      const [, quiet] = yield* withLogs(CertificateAuthority.ensureNodeTls(settings(fine), nodeInfo(dir)))
      expect(quiet.filter((l) => l.level === "WARN")).toEqual([])
    }),
  )

  it.scoped("a TLS directory that cannot be created is a typed error naming the path", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const blocker = path.join(dir, "not-a-dir")
      yield* Effect.promise(() => fs.writeFile(blocker, "x"))
      const err = yield* Effect.flip(
        CertificateAuthority.ensureNodeTls(settings(), nodeInfo(path.join(blocker, "data"))),
      )
      expect(err).toMatchObject({ _tag: "CertificateError", path: path.join(blocker, "data", "tls") })
      expect(err.message).toMatch(/^cannot create the TLS directory: .*(ENOTDIR|EEXIST)/)
    }),
  )
})

describe("trusted_nodes forms", () => {
  it.scoped("sha256:<hex> and cn:<name>, bare aliases, and a common name that looks like a fingerprint", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const tls = yield* CertificateAuthority.ensureNodeTls(settings(), nodeInfo(dir))
      const ca = {
        certPem: yield* Effect.promise(() => fs.readFile(path.join(dir, "tls", "ca.crt"), "utf8")),
        keyPem: yield* Effect.promise(() => fs.readFile(path.join(dir, "tls", "ca.key"), "utf8")),
      }
      const hexName = "ab".repeat(32)
      const b = new X509Certificate((yield* CertificateAuthority.issueCertificate(ca, "node-b")).certPem)
      const odd = new X509Certificate((yield* CertificateAuthority.issueCertificate(ca, hexName)).certPem)
      const accepts = (entries: ReadonlyArray<string>, cert: X509Certificate) =>
        Effect.flatMap(Security.make(settings({ trusted_nodes: entries }), nodeInfo(dir), tls), (s) =>
          Effect.map(Effect.exit(s.authenticateCertificate(cert)), Exit.isSuccess),
        )
      expect(yield* accepts([`sha256:${b.fingerprint256}`], b)).toBe(true)
      expect(yield* accepts([`sha256:${CertificateAuthority.fingerprint(b).toUpperCase()}`], b)).toBe(true)
      expect(yield* accepts(["cn:node-b"], b)).toBe(true)
      expect(yield* accepts(["node-b"], b)).toBe(true)
      // An explicit form means only that: a name is not a fingerprint and the reverse.
      expect(yield* accepts([`cn:${CertificateAuthority.fingerprint(b)}`], b)).toBe(false)
      expect(yield* accepts(["sha256:" + "0".repeat(64)], b)).toBe(false)
      // A bare 64-hex-digit entry is a fingerprint; a common name of that shape needs cn:.
      expect(yield* accepts([hexName], odd)).toBe(false)
      expect(yield* accepts([`cn:${hexName}`], odd)).toBe(true)
      expect(Security.parseTrustedNode("sha256:AB:cd")).toEqual({ _tag: "Fingerprint", sha256: "abcd" })
      expect(() => settings({ trusted_nodes: ["sha256:abc"] })).toThrow(/sha256: needs the 64 hex digits/)
      expect(() => settings({ trusted_nodes: ["cn:"] })).toThrow(/cn: needs a common name/)
      expect(() => settings({ trusted_nodes: [""] })).toThrow(/must not be empty/)
    }),
  )
})

describe("operator-chosen tokens", () => {
  it.effect("are refused below 128 bits or with few distinct characters; generated ones pass", () =>
    Effect.gen(function* () {
      for (const weak of [
        "hunter2",
        "correct-horse-battery",
        "a".repeat(64),
        "0123456789abcdef".repeat(1),
        "Ab1!".repeat(4),
      ]) {
        const err = yield* Effect.flip(Security.hashChosenToken(weak))
        expect(err._tag).toBe("SecuritySettingsError")
        expect(err.message).toMatch(/^token too weak: about \d+ bits .* at least 128 bits are required/)
      }
      const generated = Security.generateToken()
      expect(yield* Security.hashChosenToken(generated)).toBe(Security.hashToken(generated))
      const hex = randomBytes(16).toString("hex")
      expect(Security.tokenEntropyBits(hex)).toBe(128)
      expect(yield* Security.hashChosenToken(hex)).toBe(Security.hashToken(hex))
      expect(Security.tokenEntropyBits(hex.slice(1))).toBeLessThan(128)
      expect(Security.tokenEntropyBits("")).toBe(0)
      expect(Security.tokenEntropyBits("aB3-")).toBeCloseTo(4 * Math.log2(64))
      expect(Security.tokenEntropyBits("zz!")).toBeCloseTo(3 * Math.log2(58))
    }),
  )
})
