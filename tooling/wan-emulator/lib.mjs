// Node helpers over the shell scripts, for checks and benchmarks (no dependencies):
//   import { link, iperf3, ping } from "<repo>/tooling/wan-emulator/lib.mjs"
//   const l = link({ name: "amst1", rate: "200mbit", delay: "25ms", loss: 0.005 })  // set up
//   try { const r = await iperf3(l, { seconds: 10, streams: 16, congestion: "cubic" }) } finally { l.teardown() }
import { execFileSync, spawn } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const sh = (script, args) =>
  execFileSync(join(here, script), args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

/** True when this process can create network namespaces and TUN devices (root + ip netns + /dev/net/tun). */
export const canEmulate = () => {
  if (process.getuid?.() !== 0) return { ok: false, why: "not root" }
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" })
  } catch {
    return { ok: false, why: "`ip netns` unavailable" }
  }
  try {
    execFileSync("test", ["-c", "/dev/net/tun"])
  } catch {
    return { ok: false, why: "/dev/net/tun missing" }
  }
  return { ok: true, why: "" }
}

const flags = (o) => {
  const f = []
  for (const k of ["rate", "delay", "jitter", "loss", "queue", "seed", "idx"])
    if (o[k] !== undefined) f.push(`--${k}`, String(o[k]))
  if (o.reorder === true) f.push("--reorder")
  if (o.reorder === false) f.push("--no-reorder")
  return f
}

/**
 * Sets up an emulated link. Options: name (≤ 8 chars), rate ("200mbit"), delay ("25ms", one way), jitter,
 * loss (probability), queue (bytes), reorder, seed. Returns the link: namespaces a/b, addresses, exec, set, stats,
 * teardown.
 */
export const link = (o) => {
  const idx = o.idx ?? 77
  sh("setup.sh", ["--name", o.name, ...flags({ ...o, idx })])
  const l = {
    name: o.name,
    a: `${o.name}a`,
    b: `${o.name}b`,
    addrA: `10.${idx}.0.1`,
    addrB: `10.${idx}.0.2`,
    /** Runs a command inside namespace `ns` ("a" or "b"), returns stdout. */
    exec: (ns, cmd, args) =>
      execFileSync("ip", ["netns", "exec", `${o.name}${ns}`, cmd, ...args], { encoding: "utf8", maxBuffer: 64 << 20 }),
    /** Changes the running link (same options as link()). */
    set: (p) => sh("set.sh", ["--name", o.name, ...flags(p)]),
    /** Per-direction counters: { ab: { in, lost, qdrop, delivered, bytes, queued }, ba: {...} }. */
    stats: () => parseStats(sh("stats.sh", ["--name", o.name])),
    teardown: () => sh("teardown.sh", ["--name", o.name]),
  }
  return l
}

/** An unshaped veth pair between two namespaces (no emulator): { a, b, addrA, addrB, exec, teardown }. */
export const vethPair = (name) => {
  sh("veth.sh", ["--name", name])
  return {
    name,
    a: `${name}a`,
    b: `${name}b`,
    addrA: "10.78.0.1",
    addrB: "10.78.0.2",
    exec: (ns, cmd, args) =>
      execFileSync("ip", ["netns", "exec", `${name}${ns}`, cmd, ...args], { encoding: "utf8", maxBuffer: 64 << 20 }),
    teardown: () => sh("veth.sh", ["--name", name, "--down"]),
  }
}

const parseStats = (text) => {
  const out = {}
  for (const line of text.trim().split("\n")) {
    const [dir, ...kv] = line.split(" ")
    out[dir] = Object.fromEntries(kv.map((p) => p.split("=")).map(([k, v]) => [k, Number(v)]))
  }
  return out
}

/** ping from a to b: { sent, received, avgMs, minMs, maxMs }. */
export const ping = (l, count = 10, interval = 0.1) => {
  const out = l.exec("a", "ping", ["-q", "-c", String(count), "-i", String(interval), l.addrB])
  const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(out)
  const r = /(\d+) packets transmitted, (\d+) received/.exec(out)
  return {
    sent: Number(r?.[1]),
    received: Number(r?.[2]),
    minMs: Number(m?.[1]),
    avgMs: Number(m?.[2]),
    maxMs: Number(m?.[3]),
  }
}

/**
 * Runs iperf3 from a to b (server in b, started and stopped here). Options: seconds, omit (warm-up seconds not
 * counted), streams, congestion, port. Returns { bps (receiver goodput), retransmits, mss, meanRttMs, streams }.
 */
export const iperf3 = async (l, o = {}) => {
  const port = String(o.port ?? 5201)
  const server = spawn("ip", ["netns", "exec", l.b, "iperf3", "-s", "-1", "-p", port], { stdio: "ignore" })
  try {
    // Wait until the server listens (ss inside b), not a fixed sleep.
    for (let i = 0; i < 100; i++) {
      const listening = l.exec("b", "ss", ["-Hltn", `( sport = :${port} )`]).trim().length > 0
      if (listening) break
      await new Promise((r) => setTimeout(r, 20))
    }
    const args = [
      "-c",
      l.addrB,
      "-p",
      port,
      "-J",
      "-t",
      String(o.seconds ?? 10),
      "-O",
      String(o.omit ?? 2),
      "-P",
      String(o.streams ?? 1),
    ]
    if (o.congestion) args.push("-C", o.congestion)
    const j = JSON.parse(l.exec("a", "iperf3", args))
    if (j.error) throw new Error(`iperf3: ${j.error}`)
    const rtts = j.end.streams.map((s) => s.sender.mean_rtt).filter((x) => x > 0)
    return {
      bps: j.end.sum_received.bits_per_second,
      retransmits: j.end.sum_sent.retransmits,
      mss: j.start.tcp_mss_default,
      meanRttMs: rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length / 1000 : undefined,
      streams: j.end.streams.length,
      congestion: j.end.sender_tcp_congestion,
    }
  } finally {
    if (server.exitCode === null) server.kill("SIGTERM")
  }
}

/**
 * Sends `count` numbered UDP datagrams of `size` bytes at `pps` (0 = flat out) from a to b and returns what
 * arrived: { received, reordered, owdMs: { min, max, mean, p50 }, rateBps }.
 */
export const udpProbe = async (l, { count = 500, size = 200, pps = 1000, port = 9000, idleMs = 500 } = {}) => {
  const probe = join(here, "udp-probe.mjs")
  const node = process.execPath
  const r = spawn("ip", ["netns", "exec", l.b, node, probe, "recv", String(port), String(count), String(idleMs)], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  let out = ""
  r.stdout.on("data", (d) => {
    out += d
  })
  const exited = new Promise((res) => r.once("exit", res))
  for (let i = 0; i < 200 && !out.includes("listening"); i++) await new Promise((res) => setTimeout(res, 10))
  execFileSync("ip", [
    "netns",
    "exec",
    l.a,
    node,
    probe,
    "send",
    l.addrB,
    String(port),
    String(count),
    String(size),
    String(pps),
  ])
  await exited
  return JSON.parse(out.trim().split("\n").at(-1))
}
