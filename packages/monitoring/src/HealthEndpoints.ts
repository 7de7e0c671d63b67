/**
 * `/healthz`, `/readyz` and `/status`: what an operator or an orchestrator asks a node, answered
 * from the boot's own state (its lifecycle, report and handle), read through Effects so the
 * host keeps that state where it likes (a `SubscriptionRef`).
 *
 * @since 0.1.0
 */
import type { Boot, BootReport, Health } from "@novacron/init"
import { Clock, Context, Effect, Option } from "effect"
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

/**
 * The node's view in the boot's shared context (the host adds it), so the metrics endpoint can
 * export the same health it serves on `/readyz`.
 *
 * @since 0.2.0
 * @category services
 */
export class NodeHealth extends Context.Tag("@novacron/monitoring/NodeHealth")<NodeHealth, NodeView>() {}

const json = (status: number, body: unknown): Response => ({
  status,
  type: "application/json",
  body: `${JSON.stringify(body, null, 2)}\n`,
})

const failing = (checks: ReadonlyArray<Check>) =>
  checks
    .filter((c) => !c.pass)
    .map((c) => c.name)
    .join(", ")

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
      // What the component's own check reports (e.g. DWCP: each part on v3 or v1, and why).
      details: h?.details ?? null,
    }
  })

/**
 * One named check of `/healthz?verbose` or `/readyz?verbose`, as Kubernetes lists them:
 * `[+]name ok`, `[+]name degraded: why` (passing), `[-]name failed: why`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Check {
  readonly name: string
  readonly pass: boolean
  /** `ok`, `degraded: …`, `failed: …` (a non-CRITICAL failure passes and says `not critical`). */
  readonly detail: string
}

const down = new Set(["failed", "skipped", "stopped"])

/**
 * One check per component: its boot status, and once READY its live health check. A check fails
 * where the kernel's aggregate says unhealthy (a CRITICAL component down or unhealthy) and while a
 * component has not started; anything else passes, saying degraded or failed when it is.
 *
 * @since 0.2.0
 * @category checks
 */
export const componentChecks = (
  report: BootReport.BootReport | undefined,
  health: Health.HealthReport | undefined,
): Array<Check> =>
  (report?.components ?? []).map((c): Check => {
    const h = health?.components.find((x) => x.name === c.name)
    const status = h?.status ?? c.status
    const reason = h?.message ?? c.error
    const why = (what: string | undefined) => [what, reason].filter(Boolean).join(": ") || "failed"
    if (status === "pending" || status === "starting") return { name: c.name, pass: false, detail: `failed: ${status}` }
    const bad = down.has(status) || h?.health === "unhealthy"
    if (bad) {
      const what = status === "failed" ? undefined : down.has(status) ? status : "unhealthy"
      return c.criticality === "CRITICAL"
        ? { name: c.name, pass: false, detail: `failed: ${why(what)}` }
        : { name: c.name, pass: true, detail: `failed (not critical: ${c.criticality}): ${why(what)}` }
    }
    if (status === "degraded" || h?.health === "degraded")
      return { name: c.name, pass: true, detail: reason ? `degraded: ${reason}` : "degraded" }
    return { name: c.name, pass: true, detail: "ok" }
  })

/**
 * The Kubernetes-style verbose body: a line per check, then `<endpoint> check passed|failed`.
 *
 * @since 0.2.0
 * @category checks
 */
export const renderChecks = (endpoint: string, checks: ReadonlyArray<Check>): string => {
  const pass = checks.every((c) => c.pass)
  const lines = checks.map((c) => `[${c.pass ? "+" : "-"}]${c.name} ${c.detail}`)
  lines.push(`${endpoint} check ${pass ? "passed" : "failed"}`)
  return `${lines.join("\n")}\n`
}

const text = (status: number, body: string): Response => ({ status, type: "text/plain; charset=utf-8", body })

/**
 * `/livez` (liveness: the process answers), `/healthz` (the process answers and, once READY, no
 * CRITICAL component is down or unhealthy: 500 otherwise), `/readyz` (200 only when READY and no
 * check fails); `?verbose` on any of them lists every check like Kubernetes (`[+]name ok`,
 * `[-]name failed: reason`). `/status` is JSON: version, lifecycle, boot, each component's status,
 * criticality, init time and health, and the host's extra fields.
 *
 * @since 0.1.0
 * @category handlers
 */
export const healthHandler =
  (view: NodeView): Handler =>
  (url) =>
    Effect.gen(function* () {
      const verbose = url.searchParams.has("verbose")
      // Components' live health checks run once READY; before, their boot status is what is known.
      const live = Effect.gen(function* () {
        const lifecycle = yield* view.lifecycle
        const report = Option.getOrUndefined(yield* view.report)
        const handle = lifecycle === "ready" ? yield* view.handle : Option.none()
        const health = Option.isSome(handle) ? yield* handle.value.health : undefined
        return { lifecycle, report, health }
      })
      switch (url.pathname) {
        case "/livez":
          return text(200, verbose ? renderChecks("livez", [{ name: "ping", pass: true, detail: "ok" }]) : "ok\n")
        case "/healthz": {
          const { lifecycle, report, health } = yield* live
          const checks: Array<Check> = [{ name: "ping", pass: true, detail: "ok" }]
          if (lifecycle === "ready") checks.push(...componentChecks(report, health))
          const pass = checks.every((c) => c.pass)
          return text(
            pass ? 200 : 500,
            verbose ? renderChecks("healthz", checks) : pass ? "ok\n" : `failed: ${failing(checks)}\n`,
          )
        }
        case "/readyz": {
          const { lifecycle, report, health } = yield* live
          const ready = lifecycle === "ready"
          const checks: Array<Check> = [
            { name: "lifecycle", pass: ready, detail: ready ? "ok" : `failed: ${lifecycle}` },
            ...componentChecks(report, health),
          ]
          const pass = checks.every((c) => c.pass)
          if (verbose) return text(pass ? 200 : 503, renderChecks("readyz", checks))
          return text(pass ? 200 : 503, pass ? "ok\n" : ready ? `failed: ${failing(checks)}\n` : `${lifecycle}\n`)
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
          return {
            status: 404,
            type: "text/plain",
            body: "not found: try /healthz, /livez, /readyz, /status (?verbose lists the checks)\n",
          }
      }
    })
