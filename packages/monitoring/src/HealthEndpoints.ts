/**
 * `/healthz`, `/readyz` and `/status`: what an operator or an orchestrator asks a node, answered
 * from the boot's own state (its lifecycle, report and handle), read through Effects so the
 * host keeps that state where it likes (a `SubscriptionRef`).
 *
 * @since 0.1.0
 */
import type { Boot, BootReport, Health } from "@novacron/init"
import { Clock, Effect, Option } from "effect"
import type { Handler, Response } from "./HttpServer.js"

/**
 * What the endpoints read of the node.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeView {
  readonly nodeId: string
  /** Version fields of `/status` (`version`, `commit`, `node_version`). */
  readonly build: Readonly<Record<string, string>>
  /** Epoch milliseconds the process started its boot. */
  readonly startedAt: number
  readonly lifecycle: Effect.Effect<Health.Lifecycle>
  /** The boot report, once the kernel has started one. */
  readonly report: Effect.Effect<Option.Option<BootReport.BootReport>>
  /** The booted node, once READY. */
  readonly handle: Effect.Effect<Option.Option<Boot.BootHandle>>
  /** Fields the host adds to `/status` (the node adds `peers`); called with the handle once READY. */
  readonly extra?:
    | ((handle: Option.Option<Boot.BootHandle>) => Effect.Effect<Readonly<Record<string, unknown>>>)
    | undefined
}

const json = (status: number, body: unknown): Response => ({
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
 * `/healthz` and `/livez` (liveness: the process answers), `/readyz` (200 only when READY;
 * `?verbose` lists each component like Kubernetes), `/status` (JSON: version, lifecycle, boot,
 * each component's status, criticality, init time and health, and the host's extra fields).
 *
 * @since 0.1.0
 * @category handlers
 */
export const healthHandler =
  (view: NodeView): Handler =>
  (url) =>
    Effect.gen(function* () {
      switch (url.pathname) {
        case "/healthz":
        case "/livez":
          return { status: 200, type: "text/plain", body: "ok\n" }
        case "/readyz": {
          const lifecycle = yield* view.lifecycle
          const ready = lifecycle === "ready"
          if (!url.searchParams.has("verbose"))
            return { status: ready ? 200 : 503, type: "text/plain", body: ready ? "ok\n" : `${lifecycle}\n` }
          const report = Option.getOrUndefined(yield* view.report)
          const lines = (report?.components ?? []).map((c) => {
            const ok = c.status === "running" || (c.status === "degraded" && c.criticality !== "CRITICAL")
            return `[${ok ? "+" : "-"}]${c.name} ${c.status}${c.error ? `: ${c.error}` : ""}`
          })
          lines.push(`readyz check ${ready ? "passed" : `failed: ${lifecycle}`}`)
          return { status: ready ? 200 : 503, type: "text/plain", body: `${lines.join("\n")}\n` }
        }
        case "/status": {
          const lifecycle = yield* view.lifecycle
          const report = Option.getOrUndefined(yield* view.report)
          const handle = lifecycle === "ready" ? yield* view.handle : Option.none()
          const health = Option.isSome(handle) ? yield* handle.value.health : undefined
          const extra = view.extra === undefined ? {} : yield* view.extra(handle)
          const now = yield* Clock.currentTimeMillis
          return json(200, {
            node_id: view.nodeId,
            ...view.build,
            lifecycle,
            status: health?.status ?? (lifecycle === "ready" ? "healthy" : lifecycle),
            uptime_ms: now - view.startedAt,
            boot: report
              ? {
                  id: report.bootId,
                  outcome: report.outcome,
                  total_ms: report.totalMillis ?? null,
                  parallel_efficiency: report.parallelEfficiency ?? null,
                  checkpoints: report.checkpoints.map((c) => c.name),
                  previous: report.previous?.summary ?? null,
                }
              : null,
            components: componentRows(report, health),
            ...extra,
          })
        }
        default:
          return { status: 404, type: "text/plain", body: "not found: try /healthz, /readyz, /status\n" }
      }
    })
