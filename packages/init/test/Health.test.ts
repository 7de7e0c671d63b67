import { describe, expect, it } from "@effect/vitest"
import { Health } from "../src/index.js"

describe("Health.readiness", () => {
  const row = (
    name: string,
    criticality: "CRITICAL" | "DEGRADED" | "WARNING",
    status: "running" | "degraded" | "failed" | "skipped",
    health: "healthy" | "degraded" | "unhealthy" | "unknown",
    message?: string,
  ) => ({ name, criticality, status, health, message })
  const report = (components: ReadonlyArray<ReturnType<typeof row>>) => ({
    status: "healthy" as const,
    ready: true,
    lifecycle: "ready" as const,
    components,
  })

  it("ready with every CRITICAL healthy; the degraded rest is listed with why", () => {
    expect(
      Health.readiness(
        report([
          row("database", "CRITICAL", "running", "healthy"),
          row("cache", "DEGRADED", "degraded", "degraded", "redis unreachable; in-memory"),
          row("vm", "DEGRADED", "degraded", "unknown"),
          row("cluster-join", "WARNING", "failed", "unknown"),
          row("network", "CRITICAL", "running", "degraded", "at max_connections"),
        ]),
      ),
    ).toEqual({
      ok: true,
      failing: [],
      degraded: [
        "cache: redis unreachable; in-memory",
        "vm: on its fallback",
        "cluster-join: failed",
        "network: at max_connections",
      ],
    })
  })

  it("not ready when a CRITICAL component is unhealthy or down", () => {
    const r = Health.readiness(
      report([
        row("state-sync", "CRITICAL", "running", "unhealthy", "no quorum"),
        row("membership", "CRITICAL", "skipped", "unknown"),
        row("cache", "DEGRADED", "running", "unhealthy", "redis down"),
      ]),
    )
    expect(r).toEqual({
      ok: false,
      failing: ["state-sync: no quorum", "membership: skipped"],
      degraded: ["cache: redis down"],
    })
  })
})
