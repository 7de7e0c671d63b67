#!/usr/bin/env node
// Validates the emulator against ping and iperf3: configured vs measured rate, RTT, and a single Reno stream
// under random loss against the Mathis formula  rate ≈ MSS/RTT · 1.22/√p.
// usage: node check.mjs [--name wck1] [--json]    (root; prints figures; exits 1 when a check fails)
import { canEmulate, iperf3, link, ping } from "./lib.mjs"

const arg = (k, d) => {
  const i = process.argv.indexOf(k)
  return i > 0 ? process.argv[i + 1] : d
}
const name = arg("--name", `wck${process.pid % 100000}`)
const json = process.argv.includes("--json")

const rateBps = 100e6
const delayMs = 20
const loss = 0.01
const results = []
const record = (check, measured, expected, ok, detail) => {
  results.push({ check, measured, expected, ok, ...detail })
  if (!json) console.log(`${ok ? "ok  " : "FAIL"} ${check}: measured ${measured}, expected ${expected}`)
}

const can = canEmulate()
if (!can.ok) {
  console.error(`wan-emulator check: cannot run (${can.why})`)
  process.exit(2)
}
const l = link({ name, rate: `${rateBps / 1e6}mbit`, delay: `${delayMs}ms`, seed: 7 })
try {
  // RTT: 2 × one-way delay, plus a 84-byte ping's serialisation (negligible at 100 Mbit/s).
  const p = ping(l, 20, 0.05)
  const rtt = 2 * delayMs
  record("rtt (ping avg, ms)", p.avgMs, rtt, p.received === p.sent && Math.abs(p.avgMs - rtt) <= 0.15 * rtt + 2, p)

  // Rate: one TCP stream, no loss, one-BDP queue: it should fill the link, and can never exceed it.
  const r = await iperf3(l, { seconds: 5, omit: 1 })
  const share = r.bps / rateBps
  record(
    "rate (iperf3 1 stream, share of configured)",
    +share.toFixed(3),
    "0.85..1.02",
    share >= 0.85 && share <= 1.02,
    r,
  )

  // Mathis: a single Reno stream (the formula's model) under Bernoulli loss p, far below the link rate.
  l.set({ loss })
  const before = l.stats().ab
  const m = await iperf3(l, { seconds: 10, omit: 2, congestion: "reno" })
  const after = l.stats().ab
  const pMeasured = (after.lost - before.lost) / (after.in - before.in)
  const rttS = p.avgMs / 1000
  const mathis = ((m.mss * 8) / rttS) * (1.22 / Math.sqrt(pMeasured))
  const ratio = m.bps / mathis
  record("mathis (reno, loss 1 %, measured / formula)", +ratio.toFixed(3), "0.5..2", ratio >= 0.5 && ratio <= 2, {
    bps: m.bps,
    formulaBps: mathis,
    lossMeasured: pMeasured,
    mss: m.mss,
    rttMs: p.avgMs,
    retransmits: m.retransmits,
  })
  // Bernoulli drops: the count is binomial; accept within 4 standard deviations.
  const n = after.in - before.in
  const lossOk = Math.abs(pMeasured - loss) * n <= 4 * Math.sqrt(n * loss * (1 - loss))
  record("loss (emulator counters)", +pMeasured.toFixed(5), loss, lossOk, { packets: n })
} finally {
  l.teardown()
}
if (json) console.log(JSON.stringify(results))
process.exit(results.every((r) => r.ok) ? 0 : 1)
