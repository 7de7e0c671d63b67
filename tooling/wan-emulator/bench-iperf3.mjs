#!/usr/bin/env node
// The iperf3 half of the DWCP transport benchmark (issue 7): on the emulated WAN link (200 Mbit/s, 50 ms RTT,
// 0.5 % loss) iperf3 with 1 stream cubic, 1 stream bbr, 16 and 64 streams (cubic); on an unshaped veth pair
// iperf3 -P 4. Prints one JSON line per case and returns the results, so AMST's bench can import it:
//   import { wan, runWan, runVeth } from "<repo>/tooling/wan-emulator/bench-iperf3.mjs"
//   const l = link({ name: "amstb", ...wan }); ... your transfer between l.addrA and l.addrB ...
// usage: node bench-iperf3.mjs [--seconds 10] [--only wan|veth]
import { fileURLToPath } from "node:url"
import { canEmulate, iperf3, link, vethPair } from "./lib.mjs"

/** The WAN link. `rateBps` is what shares are computed against. */
export const wan = { rate: "200mbit", delay: "25ms", loss: 0.005, seed: 11 }
export const wanRateBps = 200e6

export const wanCases = [
  { case: "iperf3 1 stream cubic", streams: 1, congestion: "cubic" },
  { case: "iperf3 1 stream bbr", streams: 1, congestion: "bbr" },
  { case: "iperf3 16 streams cubic", streams: 16, congestion: "cubic" },
  { case: "iperf3 64 streams cubic", streams: 64, congestion: "cubic" },
]

/** Runs the WAN cases on a fresh link; returns [{ case, bps, share, retransmits, meanRttMs, lossMeasured }]. */
export const runWan = async ({ seconds = 10, name = "bwan", log = console.log } = {}) => {
  const l = link({ name, ...wan })
  const out = []
  try {
    for (const c of wanCases) {
      const before = l.stats().ab
      const r = await iperf3(l, { seconds, omit: 2, streams: c.streams, congestion: c.congestion })
      const after = l.stats().ab
      const row = {
        link: "wan 200mbit 50ms 0.5%",
        case: c.case,
        bps: Math.round(r.bps),
        share: +(r.bps / wanRateBps).toFixed(4),
        retransmits: r.retransmits,
        meanRttMs: r.meanRttMs,
        congestion: r.congestion,
        lossMeasured: +((after.lost - before.lost) / Math.max(1, after.in - before.in)).toFixed(5),
      }
      log(JSON.stringify(row))
      out.push(row)
    }
  } finally {
    l.teardown()
  }
  return out
}

/** iperf3 -P 4 over an unshaped veth pair (the reference AMST must reach 80 % of). */
export const runVeth = async ({ seconds = 5, name = "bveth", log = console.log } = {}) => {
  const v = vethPair(name)
  try {
    const r = await iperf3(v, { seconds, omit: 1, streams: 4 })
    const row = {
      link: "veth unshaped",
      case: "iperf3 -P 4",
      bps: Math.round(r.bps),
      retransmits: r.retransmits,
      congestion: r.congestion,
    }
    log(JSON.stringify(row))
    return [row]
  } finally {
    v.teardown()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (k, d) => {
    const i = process.argv.indexOf(k)
    return i > 0 ? process.argv[i + 1] : d
  }
  const can = canEmulate()
  if (!can.ok) {
    console.error(`bench-iperf3: cannot run (${can.why})`)
    process.exit(2)
  }
  const seconds = Number(arg("--seconds", "10"))
  const only = arg("--only", "")
  if (only !== "veth") await runWan({ seconds })
  if (only !== "wan") await runVeth({ seconds: Math.min(seconds, 5) })
}
