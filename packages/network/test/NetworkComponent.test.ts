import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { SecurityComponent, SecuritySettings } from "@novacron/security"
import { Context, Effect } from "effect"
import * as Network from "../src/Network.js"
import * as NetworkComponent from "../src/NetworkComponent.js"
import * as NetworkSettings from "../src/NetworkSettings.js"
import { tempDir } from "./helpers.js"

describe("NetworkComponent", () => {
  it.scopedLive("boots after security under the kernel, serves mTLS, and drains on shutdown", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const settings = NetworkSettings.decode({ bind_port: 0 })
      const node = { data_dir: dir, node_id: "node-a", listen_address: settings.listen_address, env: {} }
      const spec = NetworkComponent.component(settings)
      // A bare spec: the host's boot table owns its placement.
      expect([spec.name, "phase" in spec, "criticality" in spec, "dependencies" in spec]).toEqual([
        "network",
        false,
        false,
        false,
      ])
      // Both placed as the node's boot table places them (core, CRITICAL; network after security).
      const network = Component.place(spec, { phase: "core", criticality: "CRITICAL", dependencies: ["security"] })
      const security = Component.place(SecurityComponent.component(SecuritySettings.defaults, node), {
        phase: "core",
        criticality: "CRITICAL",
      })
      const booted = yield* Boot.boot([security, network])
      const net = Context.get(booted.context as Context.Context<Network.Network>, Network.Network)
      // The node dials itself with its own certificate: same CA, so mutual TLS accepts it.
      const conn = yield* net.dial(`127.0.0.1:${net.address.port}`)
      const inbound = yield* net.accepted.take
      expect(inbound.peer).toMatchObject({ name: "node-a", method: "mtls" })
      const health = yield* booted.health
      expect(health.components.find((c) => c.name === "network")).toMatchObject({ health: "healthy" })
      yield* booted.shutdown
      // Both ends belong to this node, so drain closes the outbound end itself (or hears Goodbye first).
      expect(yield* conn.awaitClose).toMatch(/node shutting down/)
    }),
  )

  it("decodes the settings file form with the contract's defaults", () => {
    expect(NetworkSettings.defaults).toMatchObject({
      listen_address: "127.0.0.1",
      bind_port: 7700,
      enable_tls: true,
      max_connections: 1000,
      max_frame_size: 16_777_216,
      peers: [],
    })
    const s = NetworkSettings.decode({
      conn_timeout: "500ms",
      idle_timeout: "5m",
      peers: ["[::1]:7700", "node-b:7701"],
    })
    expect(NetworkSettings.parseHostPort(s.peers[0]!)).toEqual({ host: "::1", port: 7700 })
    expect(() => NetworkSettings.decode({ conn_timeout: "soon" })).toThrow(/duration/)
    expect(() => NetworkSettings.decode({ peers: ["nohostport"] })).toThrow()
  })
})
