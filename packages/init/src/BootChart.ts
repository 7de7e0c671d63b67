/**
 * Draws a boot report as an SVG chart, like `systemd-analyze plot`: one bar per component on a
 * time axis, grouped by phase, coloured by status.
 *
 * @since 0.1.0
 */
import type { BootReport, ComponentStatus } from "./BootReport.js"
import { phases } from "./Component.js"

const colours: Record<ComponentStatus, string> = {
  pending: "#c0c0c0",
  starting: "#f0c040",
  running: "#3a9a4a",
  degraded: "#e08a1e",
  failed: "#c8372d",
  skipped: "#9a9a9a",
  stopped: "#4a78b8",
}

const escapeXml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/**
 * Renders the report as a standalone SVG document.
 *
 * @since 0.1.0
 */
export const svg = (report: BootReport): string => {
  const rowHeight = 18
  const labelWidth = 220
  const chartWidth = 900
  const top = 50
  const end = Math.max(report.totalMillis ?? 0, ...report.components.map((c) => c.finishedAt ?? c.startedAt ?? 0), 1)
  const x = (ms: number) => labelWidth + (ms / end) * chartWidth
  const rows: Array<string> = []
  let y = top
  for (const phase of phases) {
    const members = report.components
      .filter((c) => c.phase === phase)
      .sort((a, b) => (a.startedAt ?? Infinity) - (b.startedAt ?? Infinity))
    if (members.length === 0) continue
    const p = report.phases.find((r) => r.phase === phase)
    rows.push(
      `<text x="4" y="${y + 13}" class="phase">${escapeXml(phase)}${p?.startedAt !== undefined && p.finishedAt !== undefined ? ` (${(p.finishedAt - p.startedAt).toFixed(1)} ms)` : ""}</text>`,
    )
    if (p?.startedAt !== undefined)
      rows.push(
        `<rect x="${x(p.startedAt).toFixed(2)}" y="${y}" width="${Math.max(1, x(p.finishedAt ?? end) - x(p.startedAt)).toFixed(2)}" height="${rowHeight - 2}" fill="#e8e8f4"/>`,
      )
    y += rowHeight
    for (const c of members) {
      const start = c.startedAt ?? c.readyAt ?? 0
      const stop = c.finishedAt ?? start
      const ms = stop - start
      rows.push(
        `<g class="component" data-name="${escapeXml(c.name)}" data-status="${c.status}">`,
        `<text x="14" y="${y + 13}">${escapeXml(c.name)}</text>`,
        `<rect x="${x(start).toFixed(2)}" y="${y + 2}" width="${Math.max(1, x(stop) - x(start)).toFixed(2)}" height="${rowHeight - 4}" fill="${colours[c.status]}"><title>${escapeXml(`${c.name}: ${c.status}, ${ms.toFixed(1)} ms, ${c.attempts} attempt(s)${c.error ? `, ${c.error}` : ""}`)}</title></rect>`,
        `<text x="${(x(stop) + 4).toFixed(2)}" y="${y + 13}" class="ms">${ms.toFixed(1)} ms</text>`,
        "</g>",
      )
      y += rowHeight
    }
  }
  const ticks: Array<string> = []
  const step = niceStep(end / 10)
  for (let t = 0; t <= end; t += step)
    ticks.push(
      `<line x1="${x(t).toFixed(2)}" y1="${top - 6}" x2="${x(t).toFixed(2)}" y2="${y}" class="grid"/>`,
      `<text x="${x(t).toFixed(2)}" y="${top - 10}" class="tick">${t.toFixed(step < 1 ? 1 : 0)} ms</text>`,
    )
  const height = y + 30
  const width = labelWidth + chartWidth + 90
  const legend = (Object.keys(colours) as Array<ComponentStatus>)
    .map(
      (s, i) =>
        `<rect x="${labelWidth + i * 90}" y="${y + 10}" width="10" height="10" fill="${colours[s]}"/><text x="${labelWidth + i * 90 + 14}" y="${y + 19}">${s}</text>`,
    )
    .join("")
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<style>text{font-family:sans-serif;font-size:11px}.phase{font-weight:bold}.tick{text-anchor:middle;fill:#555}.ms{fill:#555}.grid{stroke:#ddd}</style>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="4" y="16" class="phase">boot ${escapeXml(report.bootId)}: ${report.outcome}, ${(report.totalMillis ?? 0).toFixed(1)} ms</text>`,
    ...ticks,
    ...rows,
    legend,
    "</svg>",
    "",
  ].join("\n")
}

const niceStep = (raw: number): number => {
  if (raw <= 0) return 1
  const mag = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 5, 10]) if (raw <= m * mag) return m * mag
  return 10 * mag
}
