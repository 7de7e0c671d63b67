import { describe, expect, it } from "@effect/vitest"
import * as Policy from "../src/MigrationPolicy.js"
import * as MigrationSettings from "../src/MigrationSettings.js"

const GiB = 1024 ** 3
const multistream: Policy.LinkRow = { transport: "tcp-multistream", compression: { algorithm: "zstd", level: 9 } }

describe("MigrationPolicy.plan", () => {
  it("defaults: QEMU's 300 ms downtime, multifd from the row, auto-converge, the prediction as the cap, KubeVirt's timeouts", () => {
    const plan = Policy.plan(MigrationSettings.defaults, {
      row: multistream,
      predictedBandwidth: 25_000_000.7,
      memoryBytes: 2 * GiB,
    })
    expect(plan.parameters).toEqual({ "downtime-limit": 300, "max-bandwidth": 25_000_000, "multifd-channels": 4 })
    expect(plan.capabilities).toContainEqual({ capability: "multifd", state: true })
    expect(plan.capabilities).toContainEqual({ capability: "auto-converge", state: true })
    expect(plan.capabilities).toContainEqual({ capability: "postcopy-ram", state: false })
    expect(plan.channels).toBe(4)
    expect(plan.completionTimeoutMs).toBe(1_600_000)
    expect(plan.progressTimeoutMs).toBe(150_000)
    // The internet row's zstd 9 is for files; the live tunnel stays at a fast level.
    expect(plan.tunnelZstd).toBe(3)
  })

  it("a single-stream row gets one stream; no prediction means no cap below the tunnel's", () => {
    const plan = Policy.plan(MigrationSettings.defaults, {
      row: { transport: "tcp-single", compression: { algorithm: "none", level: 0 } },
      memoryBytes: GiB,
    })
    expect(plan.channels).toBe(1)
    expect(plan.capabilities).toContainEqual({ capability: "multifd", state: false })
    expect(plan.parameters["multifd-channels"]).toBeUndefined()
    expect(plan.parameters["max-bandwidth"]).toBeGreaterThan(1e15)
    expect(plan.tunnelZstd).toBe(0)
  })

  it("postcopy turns multifd off (QEMU before 10.0 cannot combine them)", () => {
    const plan = Policy.plan(MigrationSettings.decode({ postcopy: true, downtime_limit: "50ms" }), {
      row: multistream,
      memoryBytes: 128 * 1024 * 1024,
    })
    expect(plan.channels).toBe(1)
    expect(plan.capabilities).toContainEqual({ capability: "postcopy-ram", state: true })
    expect(plan.capabilities).toContainEqual({ capability: "multifd", state: false })
    expect(plan.parameters["downtime-limit"]).toBe(50)
    // Small guests still get at least an eighth of a GiB's budget.
    expect(plan.completionTimeoutMs).toBe(100_000)
  })

  it("settings reject nonsense with the key named", () => {
    expect(() => MigrationSettings.decode({ multifd_channels: 0 })).toThrow(/multifd_channels/)
    expect(() => MigrationSettings.decode({ downtime_limit: "soon" })).toThrow(/downtime_limit/)
  })
})
