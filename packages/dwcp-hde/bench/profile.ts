// Per-stage profile of HDE's encoder on one image, one thread, the stages run back to back as the
// pipeline runs them per chunk: copy into the worker's buffer, page scan (zero test), fingerprint
// (XXH64 per page), duplicate resolution (main thread), page stream build, the zstd call, the
// frame copy; then the whole service with one worker, its CPU split by thread (/proc/self/task),
// beside `zstd -3 -T1` on the same file. Stage figures are CPU seconds of this thread, medians.
// usage: tsx bench/profile.ts <image> [level] [chunkMiB]   (flock /tmp/novacron-bench.lock ...)
import { spawnSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { loadavg } from "node:os"
import { xxh64 } from "@node-rs/xxhash"
import { Effect } from "effect"
import type * as ZstdBinding from "zstd-napi/binding.js"
import { Hde, HdeSettings } from "../src/index.js"
import { analyse, encodeChunk } from "../src/internal/chunk.js"

const file = process.argv[2] ?? ""
const level = Number(process.argv[3] ?? 3)
const chunkSize = Number(process.argv[4] ?? 1) << 20
const REPEATS = Math.max(1, Number(process.env.HDE_BENCH_REPEATS ?? 3))
const data = readFileSync(file)
const P = 4096
const zstd: typeof ZstdBinding = createRequire(import.meta.url)("zstd-napi/binding")

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
/** CPU seconds of the calling thread (user + system), from /proc/thread-self. */
const threadCpu = (): number => {
  const f = readFileSync("/proc/thread-self/stat", "utf8")
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ")
  return (Number(rest[11]) + Number(rest[12])) / 100
}
/** CPU seconds by thread name of this process (main, workers, V8/libuv helpers). */
const tasks = (): Map<string, number> => {
  const out = new Map<string, number>()
  for (const t of readdirSync("/proc/self/task")) {
    try {
      const f = readFileSync(`/proc/self/task/${t}/stat`, "utf8")
      const name = f.slice(f.indexOf("(") + 1, f.lastIndexOf(")"))
      const rest = f.slice(f.lastIndexOf(")") + 2).split(" ")
      const key = t === String(process.pid) ? "main" : name
      out.set(key, (out.get(key) ?? 0) + (Number(rest[11]) + Number(rest[12])) / 100)
    } catch {}
  }
  return out
}
// Stages are timed in CPU (process.cpuUsage, microseconds: no worker runs yet, so this is the one
// thread plus V8's helpers), not wall time: the machine is shared.
const stage = new Map<string, Array<number>>()
const time = <A>(_stage: string, runs: Array<number>, f: () => A): A => {
  const c0 = process.cpuUsage()
  const a = f()
  const c = process.cpuUsage(c0)
  runs.push((c.user + c.system) / 1e6)
  return a
}

const zeroPage = new Uint8Array(P)
const once = () => {
  const acc = new Map<string, Array<number>>()
  const get = (k: string) => {
    const a = acc.get(k) ?? []
    acc.set(k, a)
    return a
  }
  const seen = new Map<number, number>()
  let out = 0
  const buf = Buffer.allocUnsafeSlow(chunkSize)
  for (let at = 0, i = 0; at < data.length; at += chunkSize, i++) {
    const src = data.subarray(at, at + chunkSize)
    const chunk = buf.subarray(0, src.length)
    time("copy in", get("copy in"), () => chunk.set(src))
    const pages = Math.ceil(chunk.length / P)
    time("page scan (zero test)", get("page scan (zero test)"), () => {
      let z = 0
      for (let p = 0; p < pages; p++) if (Buffer.compare(chunk.subarray(p * P, (p + 1) * P), zeroPage) === 0) z++
      return z
    })
    time("fingerprint (XXH64 per page)", get("fingerprint (XXH64 per page)"), () => {
      for (let p = 0; p < pages; p++) xxh64(chunk.subarray(p * P, (p + 1) * P))
    })
    const a = time("analyse (scan + fingerprint, as run)", get("analyse (scan + fingerprint, as run)"), () =>
      analyse(chunk, P),
    )
    const dupRefs = new Int32Array(pages).fill(-1)
    time("duplicate resolution (main)", get("duplicate resolution (main)"), () => {
      for (let p = 0; p < pages; p++) {
        const fp = a.fingerprints[p] ?? -1
        if (fp < 0) continue
        const prev = seen.get(fp)
        if (prev !== undefined) dupRefs[p] = prev
        else seen.set(fp, i * pages + p)
      }
    })
    const req = {
      seq: i,
      chunk,
      pageSize: P,
      pages: true,
      dupRefs,
      baseRefs: new Int32Array(pages).fill(-1),
      base: undefined,
      algorithm: "zstd" as const,
      level,
      linkBps: 125e6,
      workers: 1,
      estimates: {} as never,
    }
    const r = time("encodeChunk (pages + zstd + frame)", get("encodeChunk (pages + zstd + frame)"), () =>
      encodeChunk(req),
    )
    get("  of which the zstd call (wall)").push(r.nanos / 1e9)
    out += r.frame.length
  }
  for (const [k, v] of acc) {
    const a = stage.get(k) ?? []
    stage.set(k, a)
    a.push(v.reduce((x, y) => x + y, 0))
  }
  return out
}

const cli = () => {
  const r = spawnSync("bash", ["-c", `zstd -q -3 -T1 -c ${JSON.stringify(file)} | wc -c; times`], { encoding: "utf8" })
  const lines = r.stdout.trim().split("\n")
  const secs = (t: string) => {
    const m = /(\d+)m([\d.]+)s/.exec(t)
    return m ? Number(m[1]) * 60 + Number(m[2]) : 0
  }
  const c = (lines[2] ?? "").split(/\s+/)
  return { bytes: Number(lines[0]), cpu: secs(c[0] ?? "") + secs(c[1] ?? "") }
}

const program = Effect.gen(function* () {
  console.log(
    `profile: ${file} (${(data.length / 2 ** 20).toFixed(0)} MiB), zstd level ${level}, ${chunkSize >> 20} MiB chunks; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  )
  let zeros = 0
  for (let p = 0; p * P < data.length; p++)
    if (Buffer.compare(data.subarray(p * P, (p + 1) * P), zeroPage) === 0) zeros++
  const clis = Array.from({ length: REPEATS }, cli)
  const zcli = { bytes: clis[0]?.bytes ?? 0, cpu: median(clis.map((c) => c.cpu)) }
  // One zstd stream over the whole image in-process: what the CLI does, without its I/O.
  const cctx = new zstd.CCtx()
  const whole = Buffer.allocUnsafe(zstd.compressBound(data.length))
  const wholeRuns: Array<number> = []
  let wholeBytes = 0
  for (let k = 0; k < REPEATS; k++) {
    const t0 = threadCpu()
    wholeBytes = cctx.compress(whole, data, level)
    wholeRuns.push(threadCpu() - t0)
  }
  // The same zstd call on the image cut in chunks, no page elimination: the codec's own cost of chunking.
  const chunkRuns: Array<number> = []
  let chunkBytes = 0
  for (let k = 0; k < REPEATS; k++) {
    const t0 = threadCpu()
    chunkBytes = 0
    for (let at = 0; at < data.length; at += chunkSize)
      chunkBytes += cctx.compress(whole, data.subarray(at, at + chunkSize), level)
    chunkRuns.push(threadCpu() - t0)
  }
  let hdeBytes = 0
  for (let k = 0; k < REPEATS; k++) hdeBytes = once()
  console.log(
    `zero pages ${((100 * zeros * P) / data.length).toFixed(1)} %; zstd -3 -T1 CLI: ratio ${(data.length / zcli.bytes).toFixed(2)}, ${zcli.cpu.toFixed(2)} CPU-s`,
  )
  console.log(
    `one zstd -${level} stream in-process: ratio ${(data.length / wholeBytes).toFixed(2)}, ${median(wholeRuns).toFixed(2)} CPU-s`,
  )
  console.log(
    `zstd -${level} in-process on ${chunkSize >> 20} MiB chunks, no page elimination: ratio ${(data.length / chunkBytes).toFixed(2)}, ${median(chunkRuns).toFixed(2)} CPU-s`,
  )
  console.log(`stages inline (one thread, no pool), ratio ${(data.length / hdeBytes).toFixed(2)}, CPU-s:`)
  for (const [k, v] of stage) console.log(`  ${k.padEnd(40)}${median(v).toFixed(3).padStart(8)} s`)

  // The service itself, one worker: CPU by thread.
  const hde = yield* Hde.make({ ...HdeSettings.defaults, algorithm: "zstd", workers: 1, level, chunk_size: chunkSize })
  yield* hde.encode(data.subarray(0, 8 << 20))
  const perThread: Array<Map<string, number>> = []
  const cpus: Array<number> = []
  let size = 0
  for (let k = 0; k < REPEATS; k++) {
    const before = tasks()
    const c0 = process.cpuUsage()
    size = (yield* hde.encode(data)).length
    const c = process.cpuUsage(c0)
    cpus.push((c.user + c.system) / 1e6)
    const after = tasks()
    perThread.push(new Map([...after].map(([n, v]) => [n, v - (before.get(n) ?? 0)])))
  }
  const cpu = median(cpus)
  console.log(
    `HDE service, 1 worker: ratio ${(data.length / size).toFixed(2)}, ${cpu.toFixed(2)} CPU-s, per-core vs zstd -3 -T1 CLI ${(zcli.cpu / cpu).toFixed(2)}x; by thread (median):`,
  )
  const names = new Set(perThread.flatMap((m) => [...m.keys()]))
  for (const n of names) {
    const v = median(perThread.map((m) => m.get(n) ?? 0))
    if (v >= 0.01) console.log(`  ${n.padEnd(24)}${v.toFixed(2).padStart(8)} s`)
  }
})

Effect.runPromise(Effect.scoped(program)).catch((e) => {
  console.error(e)
  process.exit(1)
})
