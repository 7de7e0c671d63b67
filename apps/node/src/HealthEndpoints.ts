import type { Boot, BootReport, Health } from "@novacron/init"
import { Context, Effect, Option } from "effect"
import type { Handler } from "./HttpEndpoint.js"
import { Membership } from "./Membership.js"
import * as Version from "./Version.js"

/** What the host knows of its boot, updated as it goes; read by the health endpoints. */
export interface NodeState {
  nodeId: string
  report?: BootReport.BootReport
  handle?: Boot.BootHandle
  lifecycle: Health.Lifecycle
  readonly startedAt: number
}

const json = (status: number, body: unknown) => ({
  status,
  type: "application/json",
  body: `${JSON.stringify(body, null, 2)}\n`,
})

const componentRows = (report: BootReport.BootReport | undefined, health: Health.HealthReport | undefined) =>
  (report?.components ?? []).map((c) => {
    const h = health?.components.find((x) => x.name === c.name)
    return {
      name: c.name,
      phase: c.phase,
      criticality: c.criticality,
      status: c.status,
      init_ms: c.startedAt !== undefined && c.finishedAt !== undefined ? c.finishedAt - c.startedAt : null,
      attempts: c.attempts,
      health: h?.health ?? null,
      message: h?.message ?? c.error ?? null,
    }
  })

/**
 * `/healthz` (liveness: the process answers), `/readyz` (200 only when READY; `?verbose` lists each
 * component like Kubernetes), `/status` (JSON: version, each component's status, criticality, init
 * time, health, and the connected peers).
 */
export const healthHandler =
  (state: NodeState): Handler =>
  async (_req, url) => {
    switch (url.pathname) {
      case "/healthz":
      case "/livez":
        return { status: 200, type: "text/plain", body: "ok\n" }
      case "/readyz": {
        const ready = state.lifecycle === "ready"
        if (!url.searchParams.has("verbose"))
          return { status: ready ? 200 : 503, type: "text/plain", body: ready ? "ok\n" : `${state.lifecycle}\n` }
        const lines = (state.report?.components ?? []).map((c) => {
          const ok = c.status === "running" || (c.status === "degraded" && c.criticality !== "CRITICAL")
          return `[${ok ? "+" : "-"}]${c.name} ${c.status}${c.error ? `: ${c.error}` : ""}`
        })
        lines.push(`readyz check ${ready ? "passed" : `failed: ${state.lifecycle}`}`)
        return { status: ready ? 200 : 503, type: "text/plain", body: `${lines.join("\n")}\n` }
      }
      case "/status": {
        const ready = state.handle !== undefined && state.lifecycle === "ready"
        const health = ready ? await Effect.runPromise(state.handle!.health) : undefined
        const membership = ready
          ? Context.getOption(state.handle!.context as Context.Context<Membership>, Membership)
          : Option.none()
        const peers = Option.isSome(membership) ? await Effect.runPromise(membership.value.peers) : []
        return json(200, {
          node_id: state.nodeId,
          ...Version.fields,
          lifecycle: state.lifecycle,
          status: health?.status ?? (state.lifecycle === "ready" ? "healthy" : state.lifecycle),
          uptime_ms: Date.now() - state.startedAt,
          boot: state.report
            ? {
                id: state.report.bootId,
                outcome: state.report.outcome,
                total_ms: state.report.totalMillis ?? null,
                parallel_efficiency: state.report.parallelEfficiency ?? null,
                checkpoints: state.report.checkpoints.map((c) => c.name),
                previous: state.report.previous?.summary ?? null,
              }
            : null,
          components: componentRows(state.report, health),
          peers,
        })
      }
      default:
        return { status: 404, type: "text/plain", body: "not found: try /healthz, /readyz, /status\n" }
    }
  }
