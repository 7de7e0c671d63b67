import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { LocalStore, ServiceRegistry, StateStore } from "@novacron/dwcp-ass"
import { Effect, Layer, Option } from "effect"
import * as MigrationComponent from "../src/MigrationComponent.js"

const store = LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))

describe("MigrationComponent", () => {
  it("an endpoint URL and its parse agree, IPv6 included; anything else is refused", () => {
    for (const a of [
      { host: "10.0.0.2", port: 7702 },
      { host: "node-2.example", port: 1 },
      { host: "fd00::2", port: 65535 },
    ]) {
      expect(MigrationComponent.parseEndpoint(MigrationComponent.endpointUrl(a))).toEqual(Option.some(a))
    }
    expect(MigrationComponent.endpointUrl({ host: "fd00::2", port: 7702 })).toBe("tls://[fd00::2]:7702")
    for (const bad of ["https://h:1", "tls://h", "tls://h:0", "tls://h:70000", "tls://h:1/x", ""]) {
      expect(MigrationComponent.parseEndpoint(bad)).toEqual(Option.none())
    }
  })

  it.effect("resolves a peer from the service registry, and says why when it cannot", () =>
    Effect.gen(function* () {
      const s = yield* StateStore.StateStore
      const resolve = MigrationComponent.resolver(s)
      yield* ServiceRegistry.services.put("node-2/migration", {
        node: "node-2",
        name: "migration",
        url: "tls://10.0.0.2:7702",
        registered_at: 1,
      })
      expect(yield* resolve("node-2")).toEqual({ host: "10.0.0.2", port: 7702 })
      expect(yield* Effect.flip(resolve("node-3"))).toBe(
        "node node-3 has no migration endpoint in the cluster state (services/node-3/migration)",
      )
      yield* ServiceRegistry.services.put("node-4/migration", {
        node: "node-4",
        name: "migration",
        url: "http://10.0.0.4",
        registered_at: 1,
      })
      expect(yield* Effect.flip(resolve("node-4"))).toBe(
        `node node-4's migration endpoint "http://10.0.0.4" is not tls://host:port`,
      )
    }).pipe(Effect.provide(store)),
  )
})
