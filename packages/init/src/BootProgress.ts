/**
 * Boot reports for people on a terminal: components drawn as they come up, and the one-screen
 * summary at READY.
 *
 * @since 0.2.0
 */
import type { BootEvent } from "./Boot.js"
import type { BootReport, ComponentStatus } from "./BootReport.js"

const mark: Record<ComponentStatus, string> = {
  pending: " ",
  starting: "…",
  running: "✓",
  degraded: "!",
  failed: "✗",
  skipped: "-",
  stopped: "■",
}

/**
 * Draws phases and components as they come up (on stderr by default, so stdout stays the logs);
 * pass it as the boot's `onEvent`.
 *
 * @since 0.2.0
 * @category rendering
 */
export const terminalProgress = (out: NodeJS.WriteStream = process.stderr) => {
  const colour = out.isTTY && out.hasColors?.()
  const paint = (code: number, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s)
  return (event: BootEvent): void => {
    switch (event._tag) {
      case "PhaseStarted":
        out.write(`${paint(1, event.phase)}\n`)
        break
      case "ComponentFinished": {
        const r = event.record
        const ms = r.startedAt !== undefined && r.finishedAt !== undefined ? r.finishedAt - r.startedAt : 0
        const code = r.status === "running" ? 32 : r.status === "degraded" ? 33 : 31
        const extra = r.attempts > 1 ? ` (${r.attempts} attempts)` : ""
        out.write(
          `  ${paint(code, mark[r.status])} ${r.name.padEnd(18)} ${ms.toFixed(1).padStart(8)} ms${extra}${r.error && r.status !== "running" ? `  ${r.error}` : ""}\n`,
        )
        break
      }
      case "ComponentStopped":
        out.write(`  ${mark.stopped} ${event.record.name} stopped (${(event.record.stopMillis ?? 0).toFixed(1)} ms)\n`)
        break
      default:
        break
    }
  }
}

/**
 * The one-screen summary printed at READY: each component's phase, criticality, status and init
 * time, then the endpoints.
 *
 * @since 0.2.0
 * @category rendering
 */
export const readySummary = (
  report: BootReport,
  endpoints: ReadonlyArray<readonly [string, string]>,
  nodeId: string,
): string => {
  const lines = [
    "",
    `NovaCron node ${nodeId} READY in ${(report.totalMillis ?? 0).toFixed(1)} ms (parallel efficiency ${(report.parallelEfficiency ?? 0).toFixed(2)})`,
    "",
    "  component            phase      criticality  status    init ms",
  ]
  for (const c of report.components) {
    const ms = c.startedAt !== undefined && c.finishedAt !== undefined ? (c.finishedAt - c.startedAt).toFixed(1) : "-"
    lines.push(
      `  ${c.name.padEnd(20)} ${c.phase.padEnd(10)} ${c.criticality.padEnd(12)} ${c.status.padEnd(9)} ${ms.padStart(7)}`,
    )
  }
  lines.push("")
  for (const [name, url] of endpoints) lines.push(`  ${name.padEnd(10)} ${url}`)
  if (report.previous) lines.push("", `  note: ${report.previous.summary}`)
  lines.push("")
  return lines.join("\n")
}
