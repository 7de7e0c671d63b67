// AMST benchmark. In one run, on the same machine:
//  1. loopback: AMST (automatic stream count) vs one plain TCP stream, same bytes;
//  2. emulated WAN (tooling/wan-emulator: 200 Mbit/s, 50 ms RTT, 0.5 % loss): iperf3 1 stream cubic,
//     1 stream bbr, 16 and 64 streams, vs AMST automatic; shares of the link rate;
//  3. unshaped veth pair between two namespaces: iperf3 -P 4 and one plain Node TCP stream (memory to
//     memory, no hash, no file) vs AMST automatic from a file to a file, once with a token (plain TCP:
//     SHA-256 + per-frame CRC-32) and once with mutual TLS (XXH3 + CRC-32 inside TLS).
// Parts 2 and 3 need root, `ip netns`, /dev/net/tun and iperf3; without them they are skipped, saying why.
// Env: AMST_BENCH_WAN_MB (default 400), AMST_BENCH_VETH_MB (default 800), AMST_BENCH_IPERF_SECONDS (default 10),
// AMST_BENCH_DIR (default /dev/shm when present: iperf3 writes nothing, so AMST's files go to memory too
// and the figures compare transports, not this machine's disk), AMST_BENCH_ONLY (comma list of
// loopback, wan, veth; default all).
// Across namespaces AMST reports its whole-transfer goodput and, like iperf3's `-O 2`, the goodput after
// its first 2 s (from the receiver's part file, which grows in order as bytes are written; the CLIs
// authenticate with a token file).
import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import { mkdtemp, open, readdir, rm, stat, writeFile } from "node:fs/promises"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { Receiver, Sender, Source, TransportSettings } from "../src/index.js"

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..")
const root = join(pkg, "..", "..")
const cli = join(pkg, "bin", "amst.mjs")
// AMST_BENCH_BASELINE_CLI: the `amst` bin of an earlier build, run on the same links in the same run
// (token, both ends) as the "before" beside the current code.
const baselineCli = process.env.AMST_BENCH_BASELINE_CLI
// Extra node flags for the AMST CLIs, e.g. AMST_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
const nodeArgs = (process.env.AMST_BENCH_NODE_ARGS ?? "").split(" ").filter((x) => x !== "")
const mbit = (bytesPerSec: number) => (bytesPerSec * 8) / 1e6
const fmt = (x: number) => x.toFixed(1)
const rows: Array<Record<string, unknown>> = []
const report = (row: Record<string, unknown>) => {
  rows.push(row)
  console.log(JSON.stringify(row))
}

const makeFile = async (dir: string, mb: number) => {
  const path = join(dir, `bench-${mb}.img`)
  const fh = await open(path, "w")
  for (let i = 0; i < mb; i += 16) await fh.write(randomBytes(Math.min(16, mb - i) * 1048576))
  await fh.close()
  return path
}

// --- 1. loopback ---------------------------------------------------------------------------------
const plainTcp = async (data: Buffer): Promise<number> => {
  let got = 0
  let t0 = 0
  const done = new Promise<number>((resolve) => {
    const server = net.createServer((s) => {
      s.on("data", (c: Buffer) => {
        got += c.length
        if (got === data.length) {
          const dt = performance.now() - t0
          s.destroy()
          server.close()
          resolve(dt)
        }
      })
    })
    server.listen(0, "127.0.0.1", () => {
      t0 = performance.now()
      const c = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1", () => c.end(data))
    })
  })
  const ms = await done
  return (data.length * 1000) / ms
}

const amstLoopback = (data: Buffer, dir: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const rx = yield* Receiver.listen({ dir })
        const r = yield* Sender.send({
          host: rx.host,
          port: rx.port,
          source: Source.fromBuffer(data, "loop.bin"),
          transferId: Sender.randomTransferId(),
          settings: TransportSettings.defaults,
        })
        return r
      }),
    ),
  )

// --- 2/3. namespaces -------------------------------------------------------------------------------
interface Ns {
  readonly a: string
  readonly b: string
  readonly addrB: string
}

const lines = (s: string) =>
  s
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)

/** One self-signed certificate for the receiver's address, used as CA and by both ends (mutual TLS). */
const benchCert = (dir: string, addr: string) => {
  const key = join(dir, "bench.key")
  const cert = join(dir, "bench.pem")
  const r = spawnSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"].concat([
      "-subj",
      "/CN=amst-bench",
      "-addext",
      `subjectAltName=IP:${addr}`,
      "-keyout",
      key,
      "-out",
      cert,
    ]),
    { stdio: "ignore" },
  )
  if (r.status !== 0) throw new Error("openssl could not make the bench certificate")
  return { key, cert }
}

/**
 * Receiver in namespace b, sender in namespace a, both through the CLI (built dist). The receiver
 * listens beyond loopback, so senders authenticate: a shared token (plain TCP) or mutual TLS.
 */
const amstAcross = async (
  l: Ns,
  file: string,
  outDir: string,
  port: number,
  extra: Array<string> = [],
  security: "token" | "tls" = "token",
  bin: string = cli,
) => {
  const tokenFile = `${outDir}.token`
  await writeFile(tokenFile, `${randomBytes(24).toString("hex")}\n`, { mode: 0o600 })
  const cert = security === "tls" ? benchCert(dirname(outDir), l.addrB) : undefined
  const rxAuth = cert
    ? ["--tls-cert", cert.cert, "--tls-key", cert.key, "--tls-ca", cert.cert]
    : ["--token-file", tokenFile]
  const txAuth = cert
    ? ["--tls-ca", cert.cert, "--tls-cert", cert.cert, "--tls-key", cert.key]
    : ["--token-file", tokenFile]
  const rx = spawn(
    "ip",
    [
      "netns",
      "exec",
      l.b,
      process.execPath,
      ...nodeArgs,
      bin,
      "receive",
      "--dir",
      outDir,
      "--host",
      l.addrB,
      "--port",
      String(port),
      "--once",
      "--json",
      ...rxAuth,
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  )
  let rxOut = ""
  rx.stdout.on("data", (c: Buffer) => {
    rxOut += c.toString()
  })
  try {
    for (let i = 0; i < 200 && !rxOut.includes("listening"); i++) await new Promise((r) => setTimeout(r, 25))
    if (!rxOut.includes("listening")) throw new Error("receiver did not start")
    const tx = spawn(
      "ip",
      [
        "netns",
        "exec",
        l.a,
        process.execPath,
        ...nodeArgs,
        bin,
        "send",
        file,
        `${l.addrB}:${port}`,
        "--json",
        ...txAuth,
        ...extra,
      ],
      { stdio: ["ignore", "pipe", "pipe"], timeout: 180_000 },
    )
    let txOut = ""
    let txErr = ""
    tx.stdout.on("data", (c: Buffer) => {
      txOut += c.toString()
    })
    tx.stderr.on("data", (c: Buffer) => {
      txErr += c.toString()
    })
    // From spawning the sender to its exit after the verified DONE: CLI start included.
    const spawnedAt = performance.now()
    let exitedAt = 0
    const txExit = new Promise<void>((r) =>
      tx.once("exit", () => {
        exitedAt = performance.now()
        r()
      }),
    )
    // In-order bytes written over time, read from the part file's size (the receiver writes in order).
    // The one transfer's part file in the receiver's staging directory (named by transfer id).
    const staging = join(outDir, ".amst-staging")
    const partSize = async () => {
      const name = (await readdir(staging).catch(() => [] as Array<string>)).find((n) => n.endsWith(".part"))
      return name === undefined ? undefined : stat(join(staging, name)).then((s) => s.size)
    }
    const samples: Array<[number, number]> = []
    // Verified: the part file is renamed into place.
    let verifiedAt: number | undefined
    let exited = false
    void txExit.then(() => {
      exited = true
    })
    while (!exited && verifiedAt === undefined) {
      const size = await partSize().catch(() => undefined)
      if (size !== undefined) samples.push([performance.now(), size])
      else if (samples.length > 0) verifiedAt = performance.now()
      await new Promise((r) => setTimeout(r, 20))
    }
    await txExit
    const sent = lines(txOut).find((o) => o.event === "sent")
    if (!sent) throw new Error(`sender failed: ${txErr || txOut}`.slice(0, 500))
    await new Promise<void>((r) => (rx.exitCode !== null ? r() : rx.once("exit", () => r())))
    const completed = lines(rxOut).find((o) => o.event === "completed")
    // (A baseline build before wire version 3 names its digest `sha256`.)
    const digest = (o: Record<string, unknown>) => o.digest ?? o.sha256
    if (!completed || digest(completed) !== digest(sent)) throw new Error("receiver digest differs or missing")
    const first = samples[0]
    const at2 = first && samples.find(([t]) => t >= first[0] + 2000)
    const size = Number(sent.size)
    const after2s =
      verifiedAt !== undefined && at2 && verifiedAt > at2[0]
        ? ((size - at2[1]) * 1000) / (verifiedAt - at2[0])
        : undefined
    const wall = (size * 1000) / (exitedAt - spawnedAt)
    return { ...(sent as unknown as Sender.Result), after2s, wall }
  } finally {
    if (rx.exitCode === null) rx.kill("SIGTERM")
  }
}

type Lib = {
  canEmulate(): { ok: boolean; why: string }
  link(o: Record<string, unknown>): Ns & { teardown(): void; stats(): unknown }
  vethPair(name: string): Ns & { teardown(): void }
  iperf3(l: Ns, o: Record<string, unknown>): Promise<{ bps: number; retransmits: number; congestion: string }>
}

const loopback = async (work: string) => {
  const data = randomBytes(256 * 1048576)
  const tcp = await plainTcp(data)
  const amst = await amstLoopback(data, join(work, "loop"))
  report({
    case: "loopback 256 MiB",
    single_tcp_mbit: fmt(mbit(tcp)),
    amst_mbit: fmt(mbit(amst.goodput)),
    amst_vs_single_tcp: (amst.goodput / tcp).toFixed(2),
    amst_streams: amst.maxStreamsUsed,
  })
}

const main = async () => {
  const base = process.env.AMST_BENCH_DIR ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir())
  const work = await mkdtemp(join(base, "amst-bench-"))
  console.log(`# files in ${work}`)
  const only = new Set((process.env.AMST_BENCH_ONLY ?? "loopback,wan,veth").split(",").map((x) => x.trim()))
  try {
    // 1. loopback
    if (only.has("loopback")) await loopback(work)
    if (!only.has("wan") && !only.has("veth")) return

    const libPath = join(root, "tooling", "wan-emulator", "lib.mjs")
    if (!existsSync(libPath)) return console.log("# emulator cases skipped: tooling/wan-emulator missing")
    if (!existsSync(join(pkg, "dist", "cli.js"))) return console.log("# emulator cases skipped: run `pnpm build` first")
    const lib = (await import(libPath)) as Lib
    const can = lib.canEmulate()
    if (!can.ok) return console.log(`# emulator cases skipped: ${can.why}`)
    if (spawnSync("iperf3", ["--version"]).status !== 0) return console.log("# emulator cases skipped: iperf3 missing")
    const seconds = Number(process.env.AMST_BENCH_IPERF_SECONDS ?? 10)

    // 2. emulated WAN
    if (only.has("wan")) await wanCase(lib, work, seconds)
    // 3. unshaped veth
    if (only.has("veth")) await vethCase(lib, work, seconds)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

const wanCase = async (lib: Lib, work: string, seconds: number) => {
  const rate = 200e6
  const wan = lib.link({ name: "amstw", idx: 79, rate: "200mbit", delay: "25ms", loss: 0.005, seed: 7 })
  let p16 = 0
  try {
    for (const [label, o] of [
      ["iperf3 1 stream cubic", { streams: 1, congestion: "cubic" }],
      ["iperf3 1 stream bbr", { streams: 1, congestion: "bbr" }],
      ["iperf3 16 streams bbr", { streams: 16, congestion: "bbr" }],
      ["iperf3 64 streams", { streams: 64 }],
    ] as const) {
      const r = await lib.iperf3(wan, { seconds, omit: 2, ...o })
      if (o.streams === 16) p16 = r.bps
      report({
        case: `wan 200M/50ms/0.5%: ${label}`,
        mbit: fmt(r.bps / 1e6),
        share: (r.bps / rate).toFixed(3),
        cc: r.congestion,
      })
    }
    const file = await makeFile(work, Number(process.env.AMST_BENCH_WAN_MB ?? 400))
    const row = (label: string, r: Awaited<ReturnType<typeof amstAcross>>) =>
      report({
        case: `wan 200M/50ms/0.5%: ${label}`,
        mbit: fmt(mbit(r.goodput)),
        share: ((r.goodput * 8) / rate).toFixed(3),
        // From spawning `amst send` to its exit after the verified DONE (CLI start included).
        wall_mbit: fmt(mbit(r.wall)),
        wall_vs_iperf3_p16_bbr: ((r.wall * 8) / p16).toFixed(3),
        streams_max: r.maxStreamsUsed,
        stream_history: r.streamHistory.join(","),
        seconds: (r.durationMs / 1000).toFixed(1),
        after_2s_mbit: r.after2s === undefined ? "n/a" : fmt(mbit(r.after2s)),
        after_2s_share: r.after2s === undefined ? "n/a" : ((r.after2s * 8) / rate).toFixed(3),
      })
    if (baselineCli) {
      row(
        "AMST automatic, baseline CLI",
        await amstAcross(wan, file, join(work, "wan-base"), 7705, [], "token", baselineCli),
      )
      await rm(join(work, "wan-base"), { recursive: true, force: true })
    }
    row("AMST automatic", await amstAcross(wan, file, join(work, "wan-out"), 7701))
    await rm(join(work, "wan-out"), { recursive: true, force: true })
  } finally {
    wan.teardown()
  }
}
/**
 * One plain Node TCP stream from namespace a to b: `mb` MiB from memory, counted and dropped by the
 * receiver (no hash, no file, no framing). Bytes/s from the first byte to the last at the receiver.
 */
const plainTcpAcross = async (l: Ns, mb: number, port: number): Promise<number> => {
  const total = mb * 1048576
  const rxCode = `let got = 0, t0 = 0
require("net").createServer((s) => s.on("data", (c) => {
  if (got === 0) t0 = performance.now()
  got += c.length
  if (got >= ${total}) { console.log(JSON.stringify({ bytesPerSec: (got * 1000) / (performance.now() - t0) })); process.exit(0) }
})).listen(${port}, "${l.addrB}", () => console.log("listening"))`
  const txCode = `const b = require("crypto").randomBytes(16 << 20)
const s = require("net").connect(${port}, "${l.addrB}", async () => {
  for (let left = ${total}; left > 0; left -= b.length) {
    if (!s.write(left >= b.length ? b : b.subarray(0, left))) await new Promise((r) => s.once("drain", r))
  }
  s.end()
})`
  const rx = spawn("ip", ["netns", "exec", l.b, process.execPath, "-e", rxCode], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  let out = ""
  rx.stdout.on("data", (c: Buffer) => {
    out += c.toString()
  })
  try {
    for (let i = 0; i < 200 && !out.includes("listening"); i++) await new Promise((r) => setTimeout(r, 25))
    const tx = spawn("ip", ["netns", "exec", l.a, process.execPath, "-e", txCode], { stdio: "inherit" })
    await new Promise<void>((r) => rx.once("exit", () => r()))
    tx.kill()
    const line = lines(out)[0]
    if (!line) throw new Error("plain TCP receiver printed nothing")
    return Number(line.bytesPerSec)
  } finally {
    if (rx.exitCode === null) rx.kill()
  }
}

const vethCase = async (lib: Lib, work: string, seconds: number) => {
  const veth = lib.vethPair("amstv")
  try {
    const mb = Number(process.env.AMST_BENCH_VETH_MB ?? 800)
    const ip = await lib.iperf3(veth, { seconds, omit: 2, streams: 4 })
    const node = await plainTcpAcross(veth, mb, 7703)
    const file = await makeFile(work, mb)
    const row = (label: string, r: Sender.Result) =>
      report({
        case: `veth unshaped: AMST automatic, ${label}`,
        iperf3_p4_mbit: fmt(ip.bps / 1e6),
        node_tcp_1_mbit: fmt(mbit(node)),
        amst_mbit: fmt(mbit(r.goodput)),
        amst_vs_iperf3_p4: ((r.goodput * 8) / ip.bps).toFixed(3),
        amst_vs_node_tcp_1: (r.goodput / node).toFixed(3),
        integrity: r.integrity,
        streams_max: r.maxStreamsUsed,
      })
    if (baselineCli) {
      row("baseline CLI, token", await amstAcross(veth, file, join(work, "veth-base"), 7706, [], "token", baselineCli))
      await rm(join(work, "veth-base"), { recursive: true, force: true })
    }
    row("token (plain TCP)", await amstAcross(veth, file, join(work, "veth-out"), 7702))
    await rm(join(work, "veth-out"), { recursive: true, force: true })
    row("mutual TLS", await amstAcross(veth, file, join(work, "veth-tls"), 7704, [], "tls"))
    await rm(join(work, "veth-tls"), { recursive: true, force: true })
  } finally {
    veth.teardown()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
