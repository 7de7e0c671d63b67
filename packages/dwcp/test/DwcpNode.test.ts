import type { X509Certificate } from "node:crypto"
import { existsSync, readdirSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { Amst, Source } from "@novacron/dwcp-amst"
import { TransportSettings } from "@novacron/dwcp-amst/TransportSettings"
import { LocalStore, StateStore } from "@novacron/dwcp-ass"
import { CompressionSettings } from "@novacron/dwcp-hde/HdeSettings"
import { EnvironmentDetector } from "@novacron/environment"
import { CertificateAuthority } from "@novacron/security"
import { otlpReceiver, tempDirNamed } from "@novacron/testing"
import { Context, Effect, Exit, Layer, Option, Schema, Scope } from "effect"
// By path: a devDependency on @novacron/monitoring waits for the lockfile to be free.
import * as Tracing from "../../monitoring/src/Tracing.js"
import * as Dwcp from "../src/Dwcp.js"
import * as DwcpComponent from "../src/DwcpComponent.js"
import * as DwcpNode from "../src/DwcpNode.js"
import * as Endpoint from "../src/Endpoint.js"

const flags = (on: boolean) => ({
  v3_rollout_percentage: 100,
  enable_v3_transport: on,
  enable_v3_compression: on,
  enable_v3_prediction: on,
  enable_v3_state_sync: on,
  enable_v3_consensus: false,
  enable_v3_placement: on,
})

const transport = Schema.decodeUnknownSync(TransportSettings)({ min_streams: 2, max_streams: 4 })
const compression = Schema.decodeUnknownSync(CompressionSettings)({ workers: 1 })

// A cluster's certificates: one CA, two nodes, an operator's client certificate (OU=operator), and a
// node certificate of another cluster.
const certificates = Effect.gen(function* () {
  const ca = yield* CertificateAuthority.issueCa("test-cluster")
  const other = yield* CertificateAuthority.issueCa("other-cluster")
  return {
    ca,
    a: yield* CertificateAuthority.issueCertificate(ca, "node-a"),
    b: yield* CertificateAuthority.issueCertificate(ca, "node-b"),
    operator: yield* CertificateAuthority.issueClientCertificate(ca, "alice", "operator"),
    stranger: yield* CertificateAuthority.issueCertificate(other, "node-a"),
  }
}).pipe(Effect.orDie)

const node = (
  nodeId: string,
  on: boolean,
  dataDir: string,
  cert: CertificateAuthority.Issued,
  caPem: string,
  store: StateStore.StateStoreApi,
) => {
  const spec = DwcpComponent.live({
    nodeId,
    dataDir,
    flags: flags(on),
    transport,
    compression,
    listen: { host: "127.0.0.1", port: 0 },
    store: Effect.succeed(store),
    tls: Effect.succeed({
      cert: cert.certPem,
      key: cert.keyPem,
      ca: caPem,
      // The security service's rule: a node is a certificate from the CA that names no role.
      isNode: (c: X509Certificate) => CertificateAuthority.roleOf(c) === undefined,
    }),
  })
  const env = EnvironmentDetector.layer({ ...EnvironmentDetector.Settings.make({}), forced_mode: "internet" })
  return spec.layer.pipe(Layer.provide(env))
}

const page = (size: number) => {
  const data = Buffer.alloc(size)
  for (let i = 0; i < size; i += 4096) data.write(`page ${i}`, i)
  return data
}

describe("DwcpNode: two nodes over mutual TLS, endpoints in the cluster state", () => {
  it.scopedLive(
    "a v3 node and a v1 node find each other in the state store, negotiate, and each opens what the other sent",
    () =>
      Effect.gen(function* () {
        const c = yield* certificates
        const store = Context.get(
          yield* Layer.build(LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))),
          StateStore.StateStore,
        )
        const dirA = yield* tempDirNamed("dwcp-node-")
        const dirB = yield* tempDirNamed("dwcp-node-")
        const a = yield* Layer.build(node("node-a", true, dirA, c.a, c.ca.certPem, store))
        const b = yield* Layer.build(node("node-b", false, dirB, c.b, c.ca.certPem, store))
        const [dwcpA, inboxA] = [Context.get(a, Dwcp.Dwcp), Context.get(a, DwcpNode.Inbox)]
        const [dwcpB, inboxB] = [Context.get(b, Dwcp.Dwcp), Context.get(b, DwcpNode.Inbox)]

        // Both endpoints are published (under a lease) with their offers; the publisher is a fiber.
        const published = (id: string) =>
          Effect.flatMap(store.get(Endpoint.key(id)), (e) =>
            Option.isSome(e) ? Effect.succeed(e.value.value) : Effect.fail("not yet"),
          ).pipe(Effect.retry({ times: 50 }), Effect.delay("20 millis"))
        const recA = Endpoint.decode("node-a", yield* published("node-a"))
        const recB = Endpoint.decode("node-b", yield* published("node-b"))
        expect(recA).toMatchObject({ right: { host: "127.0.0.1", port: (yield* inboxA.address).port } })
        expect(recB).toMatchObject({ right: { offer: { encodings: ["zstd3"] } } })
        expect(recA).toMatchObject({ right: { offer: { encodings: ["hde", "zstd3"] } } })

        // v3 → v1: v3 transport, but the peer published no hde, so it gets zstd3 (negotiated, not a fallback).
        const data = page(3 * 1024 * 1024)
        const toB = yield* dwcpA.send({ peer: "node-b", name: "a-to-b.mem", data })
        expect(toB).toMatchObject({ encoding: "zstd3", served: { transport: "v3" } })
        expect(toB.delivery.carrier).toContain("multistream")
        const gotB = yield* inboxB.take
        expect(gotB.name).toBe("a-to-b.mem")
        expect(Buffer.from(yield* inboxB.open(gotB, data.length)).equals(data)).toBe(true)

        // v1 → v3: one TLS stream, zstd3.
        const back = yield* dwcpB.send({ peer: "node-a", name: "b-to-a.mem", data })
        expect(back).toMatchObject({ encoding: "zstd3", delivery: { carrier: "tls-single", streams: 1 } })
        const gotA = yield* inboxA.take
        expect(Buffer.from(yield* inboxA.open(gotA, data.length)).equals(data)).toBe(true)

        // A peer that never published an endpoint is named, with the key looked up.
        const missing = yield* Effect.flip(dwcpA.send({ peer: "node-z", name: "x", data: page(4096) }))
        expect(missing.message).toContain("dwcp/endpoints/node-z")
      }),
    60_000,
  )

  it.scopedLive(
    "the receiver takes nothing from an operator's client certificate or another cluster's node; the endpoint goes with the node",
    () =>
      Effect.gen(function* () {
        const c = yield* certificates
        const store = Context.get(
          yield* Layer.build(LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))),
          StateStore.StateStore,
        )
        const dir = yield* tempDirNamed("dwcp-node-")
        const scope = yield* Scope.make()
        const a = yield* Layer.buildWithScope(node("node-a", true, dir, c.a, c.ca.certPem, store), scope)
        const inbox = Context.get(a, DwcpNode.Inbox)
        const port = (yield* inbox.address).port
        expect(yield* inbox.receiver).toEqual({ _tag: "listening", host: "127.0.0.1", port })
        const amst = yield* Amst.make(transport)
        const attempt = (cert: CertificateAuthority.Issued, ca: string) =>
          Effect.exit(
            amst.send({
              host: "127.0.0.1",
              port,
              source: Source.fromBuffer(page(65536), "hostile.bin"),
              maxReconnects: 0,
              tls: { cert: cert.certPem, key: cert.keyPem, ca, checkServerIdentity: () => undefined },
              streams: 1,
            }),
          )
        // The operator's certificate is from the right CA, but names a role: not a node.
        expect(Exit.isFailure(yield* attempt(c.operator, c.ca.certPem))).toBe(true)
        // Another cluster's "node-a": TLS refuses it before any frame.
        expect(Exit.isFailure(yield* attempt(c.stranger, `${c.ca.certPem}${c.stranger.certPem}`))).toBe(true)
        expect(readdirSync(`${dir}/dwcp/inbox`).filter((f) => !f.startsWith("."))).toEqual([])

        // A node of the cluster is taken (the same call with node-b's certificate).
        const ok = yield* Effect.exit(
          amst.send({
            host: "127.0.0.1",
            port,
            source: Source.fromBuffer(page(65536), "friendly.bin"),
            tls: { cert: c.b.certPem, key: c.b.keyPem, ca: c.ca.certPem, checkServerIdentity: () => undefined },
            streams: 1,
          }),
        )
        expect(Exit.isSuccess(ok)).toBe(true)
        expect(existsSync(`${dir}/dwcp/inbox/friendly.bin`)).toBe(true)

        // Stopping the node removes its endpoint: peers stop dialing it at once, not after the TTL.
        yield* Effect.flatMap(store.get(Endpoint.key("node-a")), (e) =>
          Option.isSome(e) ? Effect.void : Effect.fail("not yet"),
        ).pipe(Effect.retry({ times: 50 }), Effect.delay("20 millis"))
        yield* Scope.close(scope, Exit.void)
        expect(Option.isNone(yield* store.get(Endpoint.key("node-a")))).toBe(true)
      }),
    60_000,
  )

  it.scopedLive(
    "a transfer is one trace over both nodes: the receiver's dwcp.receive is the child of the sender's dwcp.send",
    () =>
      Effect.gen(function* () {
        const receiver = yield* otlpReceiver
        yield* Effect.scoped(
          Effect.gen(function* () {
            const c = yield* certificates
            const store = Context.get(
              yield* Layer.build(LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))),
              StateStore.StateStore,
            )
            const a = yield* Layer.build(
              node("node-a", true, yield* tempDirNamed("dwcp-node-"), c.a, c.ca.certPem, store),
            )
            const b = yield* Layer.build(
              node("node-b", true, yield* tempDirNamed("dwcp-node-"), c.b, c.ca.certPem, store),
            )
            const inboxB = Context.get(b, DwcpNode.Inbox)
            yield* Effect.flatMap(store.get(Endpoint.key("node-b")), (e) =>
              Option.isSome(e) ? Effect.void : Effect.fail("not yet"),
            ).pipe(Effect.retry({ times: 50 }), Effect.delay("20 millis"))
            const data = page(512 * 1024)
            yield* Context.get(a, Dwcp.Dwcp).send({ peer: "node-b", name: "traced.mem", data })
            // Taken and opened outside any span: only the HELLO links the receiving side to the send.
            const got = yield* inboxB.take
            expect(Option.isNone(yield* Effect.option(Effect.currentSpan))).toBe(true)
            yield* inboxB.open(got, data.length)
          }),
        ).pipe(
          Effect.provide(
            Tracing.layer(
              { tracing: true, tracing_endpoint: receiver.endpoint },
              { serviceName: "novacron-node", instanceId: "test" },
              { exportInterval: 60_000 },
            ),
          ),
        )
        const named = (name: string) => receiver.spans.filter((s) => s.name === name)
        yield* Effect.promise(async () => {
          for (let i = 0; i < 200 && named("dwcp.open").length === 0; i++) await new Promise((r) => setTimeout(r, 50))
        })
        const [send] = named("dwcp.send")
        expect(send!.attributes).toMatchObject({
          "peer.node_id": "node-b",
          "dwcp.mode": "internet",
          "dwcp.link_class": "internet",
          "dwcp.transport": "tcp-multistream",
          "dwcp.encoding": "hde",
          "dwcp.bytes": 512 * 1024,
          "dwcp.served.transport": "v3",
          "dwcp.served.compression": "v3",
        })
        expect(send!.attributes["dwcp.wire_bytes"]).toBeGreaterThan(0)
        const [received] = named("dwcp.receive")
        expect(received!.traceId).toBe(send!.traceId)
        expect(received!.parentSpanId).toBe(send!.spanId)
        expect(received!.attributes["dwcp.wire_bytes"]).toBe(send!.attributes["dwcp.wire_bytes"])
        const [opened] = named("dwcp.open")
        expect(opened!.parentSpanId).toBe(received!.spanId)
        expect(opened!.attributes).toMatchObject({ "dwcp.encoding": "hde", "dwcp.bytes": 512 * 1024 })
        expect(receiver.rejected).toEqual([])
      }),
    60_000,
  )
})
