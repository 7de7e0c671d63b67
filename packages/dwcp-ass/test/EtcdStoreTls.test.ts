import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option } from "effect"
import { ConsensusSettings, EtcdStore, StateStore } from "../src/index.js"
import { type EtcdCluster, haveEtcd, startEtcdCluster } from "./fixtures/etcdCluster.js"
import { makeCa } from "./support/certs.js"

let cluster: EtcdCluster
let root: string
let dataDir: string
let strangerDir: string
let otherCa: string

const settings = (extra: Record<string, unknown> = {}) =>
  ConsensusSettings.decode({ etcd_endpoints: cluster.endpoints, call_timeout: "1500ms", ...extra })

describe.skipIf(!haveEtcd)("Raft mode on etcd over mutual TLS", () => {
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-etcd-tls-"))
    const ca = makeCa(path.join(root, "ca"), "cluster-ca")
    const server = ca.issue(path.join(root, "server"), "etcd")
    // The node's material where the security package keeps it: <data_dir>/tls/{ca.crt,node.crt,node.key}.
    dataDir = path.join(root, "node")
    const tls = path.join(dataDir, "tls")
    ca.issue(tls, "node")
    fs.copyFileSync(ca.cert, path.join(tls, "ca.crt"))
    // A client whose certificate comes from another CA (it trusts the right CA for the server).
    strangerDir = path.join(root, "stranger")
    const other = makeCa(path.join(root, "other-ca"), "other-ca")
    other.issue(strangerDir, "stranger")
    otherCa = other.cert
    cluster = await startEtcdCluster({ size: 1, tls: { caFile: ca.cert, certFile: server.cert, keyFile: server.key } })
  }, 30_000)
  afterAll(async () => {
    await cluster?.stop()
    if (root) fs.rmSync(root, { recursive: true, force: true })
  })

  it.live("the node's own certificate and CA from <data_dir>/tls by default: writes and reads", () =>
    Effect.gen(function* () {
      const s = yield* StateStore.StateStore
      const rev = yield* s.put("tls/k", "v")
      expect(Option.getOrThrow(yield* s.get("tls/k"))).toMatchObject({ value: "v", modRevision: rev })
    }).pipe(Effect.scoped, Effect.provide(EtcdStore.fromSettings(settings(), { data_dir: dataDir }))),
  )

  const refused = (layer: ReturnType<typeof EtcdStore.fromSettings>) =>
    Effect.gen(function* () {
      const s = yield* StateStore.StateStore
      const read = yield* Effect.flip(s.get("tls/k"))
      const write = yield* Effect.flip(s.put("tls/stranger", "x"))
      return [read, write] as const
    }).pipe(Effect.scoped, Effect.provide(layer))

  it.live("a client certificate from another CA is refused: StateUnavailable naming the certificate", () =>
    Effect.gen(function* () {
      const stranger = path.join(strangerDir, "stranger.crt")
      for (const e of yield* refused(
        EtcdStore.fromSettings(
          settings({ etcd_cert_file: stranger, etcd_key_file: path.join(strangerDir, "stranger.key") }),
          { data_dir: dataDir },
        ),
      )) {
        // Refused before it was sent: a write is StateUnavailable (nothing applied), not of unknown outcome.
        expect(e._tag).toBe("StateUnavailable")
        expect(e.message).toContain(`etcd refused the client certificate dwcp.consensus.etcd_cert_file ${stranger}`)
      }
      // Nothing was written by the refused client.
      const stored = yield* StateStore.StateStore.pipe(
        Effect.flatMap((s) => s.get("tls/stranger")),
        Effect.provide(EtcdStore.fromSettings(settings(), { data_dir: dataDir })),
      )
      expect(stored).toEqual(Option.none())
    }),
  )

  it.live("no client certificate at all: refused, saying none is configured", () =>
    Effect.gen(function* () {
      const [e] = yield* refused(
        EtcdStore.layer({
          endpoints: cluster.endpoints,
          callTimeout: Duration.millis(1500),
          tls: { caFile: path.join(dataDir, "tls", "ca.crt") },
        }),
      )
      expect(e._tag).toBe("StateUnavailable")
      expect(e.message).toContain("etcd requires a client certificate")
    }),
  )

  it.live("a member certificate not signed by etcd_ca_file: refused, naming the CA file", () =>
    Effect.gen(function* () {
      const [e] = yield* refused(EtcdStore.fromSettings(settings({ etcd_ca_file: otherCa }), { data_dir: dataDir }))
      expect(e._tag).toBe("StateUnavailable")
      expect(e.message).toContain(`not signed by the CA in dwcp.consensus.etcd_ca_file ${otherCa}`)
    }),
  )

  it.live("a missing key file fails the layer naming the setting and the path", () =>
    Effect.gen(function* () {
      const missing = path.join(root, "nowhere", "node.key")
      const e = yield* Effect.flip(
        Effect.scoped(
          Layer.build(
            EtcdStore.fromSettings(
              settings({ etcd_key_file: missing, etcd_cert_file: path.join(dataDir, "tls", "node.crt") }),
              { data_dir: dataDir },
            ),
          ),
        ),
      )
      expect(e.message).toBe(`dwcp.consensus.etcd_key_file ${missing}: no such file`)
      // The default location is named as such.
      const e2 = yield* Effect.flip(
        Effect.scoped(Layer.build(EtcdStore.fromSettings(settings(), { data_dir: path.join(root, "empty") }))),
      )
      expect(e2.message).toContain("dwcp.consensus.etcd_ca_file (default: the node's <data_dir>/tls/)")
      expect(e2.message).toContain(path.join(root, "empty", "tls", "ca.crt"))
    }),
  )
})

describe("ConsensusSettings for etcd over TLS", () => {
  it("refuses mixed http/https endpoints, TLS files for http endpoints, a certificate without its key", () => {
    expect(() =>
      ConsensusSettings.decode({ etcd_endpoints: ["https://10.0.0.1:2379", "http://10.0.0.2:2379"] }),
    ).toThrow(/https:\/\/ or all http:\/\//)
    expect(() =>
      ConsensusSettings.decode({ etcd_endpoints: ["http://10.0.0.1:2379"], etcd_ca_file: "/ca.crt" }),
    ).toThrow(/etcd_ca_file[\s\S]*not https/)
    expect(() =>
      ConsensusSettings.decode({ etcd_endpoints: ["https://10.0.0.1:2379"], etcd_cert_file: "/n.crt" }),
    ).toThrow(/etcd_cert_file and etcd_key_file must be set together/)
    expect(ConsensusSettings.usesTls(ConsensusSettings.decode({ etcd_endpoints: ["https://10.0.0.1:2379"] }))).toBe(
      true,
    )
  })

  it("without a data dir or etcd_ca_file, https endpoints fail the layer saying what is missing", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const e = yield* Effect.flip(
          Effect.scoped(
            Layer.build(
              EtcdStore.fromSettings(ConsensusSettings.decode({ etcd_endpoints: ["https://10.0.0.1:2379"] })),
            ),
          ),
        )
        expect(e.message).toMatch(/need dwcp.consensus.etcd_ca_file/)
      }),
    ))
})
