// The whole pre-init phase wired from one loaded configuration, the way apps/node does it:
// config.<section> goes into each component's settings.
import { existsSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { EnvironmentDetector, Probe } from "@novacron/environment"
import { Boot, Component } from "@novacron/init"
import { Logging } from "@novacron/logging"
import { ConflictCheck, ResourceValidator } from "@novacron/resources"
import { Cause, Context, Effect, Exit, Schema, SubscriptionRef } from "effect"
import { Config, Origin } from "../src/index.js"

// Placed as the node's boot table places them: config first, the others after it.
const pre = <A, E, R>(spec: Component.Spec<A, E, R>, dependencies: ReadonlyArray<string> = ["config"]) =>
  Component.place(spec, { phase: "pre-init", criticality: "CRITICAL", dependencies })

const preInit = (loaded: Config.Loaded, output: Logging.Output) => {
  const { system, network, monitoring, dwcp, logging } = loaded.settings
  // A variable, not a literal: resources is gaining `monitoring_address` (defaulted to loopback).
  const conflictSettings = {
    data_dir: system.data_dir,
    listen_address: network.listen_address,
    monitoring_address: "127.0.0.1",
    bind_port: network.bind_port,
    health_check_port: system.health_check_port,
    metrics_port: monitoring.metrics_port,
  }
  return [
    pre(Config.component(loaded), []),
    pre(Logging.component({ ...logging, log_level: system.log_level, data_dir: system.data_dir }, { output })),
    pre(
      EnvironmentDetector.component(
        Schema.decodeSync(EnvironmentDetector.Settings)({
          ...dwcp,
          forced_origin: Origin.render(loaded.provenance.get("dwcp.forced_mode")!),
          peers: network.peers,
          enable_rdma: dwcp.transport.enable_rdma,
          probe_count: 3,
          bandwidth_bytes: 1 << 20,
        }),
      ),
    ),
    pre(ResourceValidator.component(system)),
    pre(ConflictCheck.component(conflictSettings)),
  ]
}

describe("pre-init phase from one configuration", () => {
  it.effect("NOVACRON_DWCP_MODE forces the environment, and the reason names the variable", () =>
    Effect.gen(function* () {
      const loaded = yield* Config.load({ env: { NOVACRON_DWCP_MODE: "datacenter" } })
      const { dwcp, network } = loaded.settings
      const d = yield* EnvironmentDetector.detect(
        Schema.decodeSync(EnvironmentDetector.Settings)({
          ...dwcp,
          forced_origin: Origin.render(loaded.provenance.get("dwcp.forced_mode")!),
          peers: network.peers,
        }),
      )
      expect([d.mode, d.source, d.reason]).toEqual(["datacenter", "forced", "forced by env NOVACRON_DWCP_MODE"])
    }),
  )

  it.scopedLive(
    "boots config, logging, environment, resources and conflict-check; a second node on the same data dir is refused",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "novacron-preinit-"))
        const peer = yield* Probe.serve()
        const loaded = yield* Config.load({
          env: { NOVACRON_DATA_DIR: dir, NOVACRON_LOG_LEVEL: "debug" },
          flags: [
            ...["--set", `network.peers=${peer.address}`],
            ...["--set", "logging.file=novacron.log"],
            ...["--bind-port", "0", "--health-check-port", "0", "--metrics-port", "0"],
            // This machine may be smaller than a laptop; the profile's message is tested in resources.
            ...["--set", "system.min_cpus=1", "--set", "system.min_memory=1", "--set", "system.min_disk=1"],
          ],
        })
        const lines: Array<string> = []
        const output = { write: (s: string) => lines.push(s) }
        const node = yield* Boot.boot(preInit(loaded, output))
        const ctx = node.context as Context.Context<
          EnvironmentDetector.EnvironmentDetector | ConflictCheck.ConflictCheck
        >
        const detection = yield* SubscriptionRef.get(Context.get(ctx, EnvironmentDetector.EnvironmentDetector).current)
        expect(detection.peers.map((p) => [p.peer, p.loss])).toEqual([[peer.address, 0]])
        expect(Context.get(ctx, ConflictCheck.ConflictCheck).dataDir).toBe(dir)
        expect(existsSync(join(dir, "novacron.log"))).toBe(true)

        const second = yield* Effect.exit(Effect.scoped(Boot.boot(preInit(loaded, output))))
        expect(Exit.isFailure(second) && Cause.pretty(second.cause)).toContain(
          `data directory ${dir} is in use by another agent (pid ${process.pid})`,
        )
        yield* node.shutdown
        expect(existsSync(join(dir, ConflictCheck.lockFileName))).toBe(false)
      }),
  )
})
