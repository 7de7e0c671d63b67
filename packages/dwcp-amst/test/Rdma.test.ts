import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Rdma, Receiver, Sender, Source } from "../src/index.js"
import { digestOf, payload, settings, tmp } from "./helpers.js"

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..")
const rdmaHeaders = existsSync("/usr/include/infiniband/verbs.h") && existsSync("/usr/include/rdma/rdma_cma.h")

describe("Rdma", () => {
  it("the addon builds and, with no device here, reports the absence instead of throwing", () => {
    if (!existsSync(Rdma.addonPath)) {
      const r = spawnSync(process.execPath, [join(pkg, "scripts/build-native.mjs")], { cwd: pkg, encoding: "utf8" })
      expect(r.status).toBe(0)
    }
    const p = Rdma.probe()
    expect(p.loaded).toBe(true)
    // CI installs libibverbs-dev and librdmacm-dev, so there the addon must have RDMA compiled in.
    if (process.env.CI || rdmaHeaders) expect(p.compiled).toBe(true)
    if (p.compiled && p.devices.length === 0) {
      expect(p.error).toMatch(/ibv_get_device_list/)
      // No RDMA-capable kernel support in this sandbox: ENOSYS (38), or ENODEV/no devices elsewhere.
      expect(typeof p.errno === "number" || p.error === undefined).toBe(true)
    }
    const sel = Rdma.select({ enableRdma: true, mode: "datacenter", probe: p })
    if (p.devices.length === 0) {
      expect(sel.transport).toBe("tcp")
      expect(sel.reason).toMatch(/no RDMA device|without rdma-core/)
    }
  })

  it("reports an addon that cannot be loaded", () => {
    const p = Rdma.probe(join(pkg, "no-such-addon.node"))
    expect(p).toMatchObject({ loaded: false, compiled: false, devices: [] })
    expect(Rdma.select({ enableRdma: true, mode: "datacenter", probe: p }).reason).toMatch(/addon unavailable/)
  })

  const withDevice: Rdma.Probe = {
    loaded: true,
    compiled: true,
    devices: [{ name: "mlx5_0", guid: "0002c90300a1b2c3", transport: "InfiniBand" }],
  }

  it("selects RDMA only when enabled, in datacenter mode, with a device", () => {
    expect(Rdma.select({ enableRdma: true, mode: "datacenter", probe: withDevice })).toMatchObject({
      transport: "rdma",
      device: { name: "mlx5_0" },
      dataPath: "tcp",
    })
    expect(Rdma.select({ enableRdma: false, mode: "datacenter", probe: withDevice }).transport).toBe("tcp")
    expect(Rdma.select({ enableRdma: true, mode: "internet", probe: withDevice }).transport).toBe("tcp")
    expect(Rdma.select({ enableRdma: true, mode: "datacenter", probe: withDevice, device: "mlx4_1" }).reason).toMatch(
      /not present/,
    )
    const noAddonSupport = { ...withDevice, compiled: false, devices: [] }
    expect(Rdma.select({ enableRdma: true, mode: "datacenter", probe: noAddonSupport }).reason).toMatch(
      /without rdma-core/,
    )
  })

  it.live("a transfer falls back to TCP with the real probe, and reports an injected device it cannot use yet", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      const data = payload(300_000, 21)
      const real = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(data, "dc.bin"),
        settings: settings(),
        mode: "datacenter",
      })
      expect(real.digest).toBe(digestOf(data, real.integrity))
      expect(real.transport.transport).toBe("tcp")
      const injected = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(data, "dc2.bin"),
        settings: settings(),
        mode: "datacenter",
        rdmaProbe: withDevice,
      })
      expect(injected.transport).toMatchObject({ transport: "rdma", dataPath: "tcp" })
      expect(injected.digest).toBe(digestOf(data, injected.integrity))
    }).pipe(Effect.scoped),
  )
})
