// Benchmark: HDE against the zstd and lz4 command-line tools, same level, same files, same run.
// Data (cached in <repo>/.cache/hde-bench, outside git):
//   vm-ram-1/2.raw  RAM of a busybox guest under QEMU TCG, saved twice some seconds apart
//                   (bench/make-vm-snapshots.sh, run here if missing)
//   guest-db-1/2.raw, guest-text-1/2.raw  RAM of guests running a database (sqlite) and with a
//                   page cache full of text (bench/make-guest-ram.sh, run here if missing)
//   text.bin        /usr/share/doc text, concatenated
//   binary.bin      /usr/bin executables, concatenated
// usage: pnpm bench  (env HDE_BENCH_MB caps each corpus; default 64 MiB text/binary, full VM image;
//        HDE_BENCH_REPEATS: runs per row, default 3, the table shows the medians;
//        HDE_BENCH_ONLY=vm,db,guest-text,text,binary: these data sets only (delta: the guest pairs among them);
//        HDE_BENCH_ROWS=percore: only the 1-worker zstd rows the per-core figure is chosen from)
import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeSync } from "node:fs"
import { createRequire } from "node:module"
import { availableParallelism, loadavg } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import type * as ZstdBinding from "zstd-napi/binding.js"
import { Hde, HdeSettings } from "../src/index.js"

const here = import.meta.dirname
const repo = join(here, "../../..")
const cache = join(repo, ".cache/hde-bench")
const capMB = Number(process.env.HDE_BENCH_MB ?? 64)
const LEVEL = 3

const only = process.env.HDE_BENCH_ONLY?.split(",")
const wanted = (key: string) => only === undefined || only.includes(key)
const perCoreOnly = process.env.HDE_BENCH_ROWS === "percore"

const ensureVm = () => {
  if (wanted("vm") && !existsSync(join(cache, "vm-ram-2.raw")))
    execFileSync("bash", [join(here, "make-vm-snapshots.sh"), cache], { stdio: "inherit" })
  for (const w of ["db", "text"])
    if (wanted(w === "db" ? "db" : "guest-text") && !existsSync(join(cache, `guest-${w}-2.raw`)))
      execFileSync("bash", [join(here, "make-guest-ram.sh"), w, cache], { stdio: "inherit" })
}

/** Concatenates files under `dir` that pass `keep` into `out`, up to `limit` bytes. */
const corpus = (
  out: string,
  dirs: ReadonlyArray<string>,
  keep: (path: string, head: Buffer) => boolean,
  limit: number,
) => {
  if (existsSync(out) && statSync(out).size >= Math.min(limit, 1 << 20)) return
  const fd = openSync(out, "w")
  let size = 0
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (size >= limit) return
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) {
        const b = readFileSync(p)
        if (!keep(p, b.subarray(0, 4))) continue
        const n = Math.min(b.length, limit - size)
        writeSync(fd, b, 0, n)
        size += n
      }
    }
  }
  for (const d of dirs) walk(d)
  closeSync(fd)
}

const isElf = (h: Buffer) => h.length === 4 && h.readUInt32BE(0) === 0x7f454c46
const isText = (p: string, h: Buffer) => !p.endsWith(".gz") && !isElf(h) && !h.includes(0)

/** Runs a shell pipeline; wall time, and CPU time of its processes from bash's `times`. */
const sh = (cmd: string) => {
  const t0 = process.hrtime.bigint()
  const r = spawnSync("bash", ["-c", `${cmd}; times`], { encoding: "utf8", maxBuffer: 1 << 20 })
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`)
  const lines = r.stdout.trim().split("\n")
  const secs = (t: string) => {
    const m = /(\d+)m([\d.]+)s/.exec(t)
    return m ? Number(m[1]) * 60 + Number(m[2]) : 0
  }
  const children = (lines[2] ?? "").split(/\s+/)
  return { seconds, cpu: secs(children[0] ?? "") + secs(children[1] ?? ""), bytes: Number(lines[0]) }
}

const REPEATS = Math.max(1, Number(process.env.HDE_BENCH_REPEATS ?? 3))
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
/** Median wall and CPU time of repeated runs of the same thing (single runs vary by tens of % here). */
const medianOf = <R extends { readonly seconds: number; readonly cpu: number }>(runs: ReadonlyArray<R>): R => ({
  ...(runs[0] as R),
  seconds: median(runs.map((r) => r.seconds)),
  cpu: median(runs.map((r) => r.cpu)),
})
const shMedian = (cmd: string) => medianOf(Array.from({ length: REPEATS }, () => sh(cmd)))

const mbps = (bytes: number, s: number) => bytes / 1e6 / s
const f = (x: number, d = 1) => x.toFixed(d)

interface Row {
  readonly name: string
  readonly bytes: number
  readonly seconds: number
  /** CPU seconds, all threads (the machine is shared, so wall time overstates our cost). */
  readonly cpu: number
}

const table = (title: string, input: number, rows: ReadonlyArray<Row>, baseline: Row) => {
  console.log(`\n${title}  (${f(input / 2 ** 20, 0)} MiB)`)
  console.log(
    `${"method".padEnd(36)}${"ratio".padStart(7)}${"wall MB/s".padStart(11)}${"CPU s".padStart(8)}${"MB/CPU-s".padStart(10)}${"per-core vs zstd -T1".padStart(22)}`,
  )
  const base = mbps(input, baseline.cpu)
  for (const r of rows) {
    const perCore = mbps(input, r.cpu)
    console.log(
      `${r.name.padEnd(36)}${f(input / r.bytes, 2).padStart(7)}${f(mbps(input, r.seconds)).padStart(11)}${f(r.cpu, 2).padStart(8)}${f(perCore).padStart(10)}${`${f(perCore / base, 2)}x`.padStart(22)}`,
    )
  }
}

/** Wall and CPU time (process.cpuUsage counts every thread, workers included). */
const timed = <A, E>(e: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const c0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    const a = yield* e
    const c = process.cpuUsage(c0)
    return { a, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6 }
  })

let warmup = Buffer.alloc(0)

const program = Effect.gen(function* () {
  ensureVm()
  const limit = capMB * 2 ** 20
  corpus(join(cache, "text.bin"), ["/usr/share/doc", "/usr/share/common-licenses", "/usr/share/perl"], isText, limit)
  corpus(join(cache, "binary.bin"), ["/usr/bin", "/usr/lib/x86_64-linux-gnu"], (_p, h) => isElf(h), limit)
  const sets = [
    { key: "vm", name: "VM RAM (QEMU guest, pmemsave)", file: join(cache, "vm-ram-1.raw") },
    { key: "db", name: "guest RAM: sqlite database (QEMU guest)", file: join(cache, "guest-db-1.raw") },
    { key: "guest-text", name: "guest RAM: page cache of text (QEMU guest)", file: join(cache, "guest-text-1.raw") },
    { key: "text", name: "text (/usr/share/doc)", file: join(cache, "text.bin") },
    { key: "binary", name: "binary (/usr/bin ELF)", file: join(cache, "binary.bin") },
  ].filter((s) => wanted(s.key))
  const cores = availableParallelism()
  console.log(
    `HDE benchmark: ${cores} cores, load average ${loadavg()
      .map((l) => f(l, 2))
      .join(" ")} (shared machine)`,
  )
  console.log(
    `zstd CLI: ${spawnSync("zstd", ["-V"], { encoding: "utf8" }).stdout.trim()}; lz4 CLI: ${(() => {
      const r = spawnSync("lz4", ["-V"], { encoding: "utf8" })
      return `${r.stdout}${r.stderr}`.split("\n")[0]?.trim()
    })()}`,
  )
  console.log(
    `level ${LEVEL}; HDE chunk 1 MiB, pages of 4 KiB; CLI reads the file from page cache, HDE a buffer in memory; times are medians of ${REPEATS} runs (sizes: the first run's)`,
  )

  warmup = Buffer.concat([
    Buffer.alloc(2 << 20),
    readFileSync(join(cache, "text.bin")).subarray(0, 3 << 20),
    randomBytes(3 << 20),
  ])
  const make = (s: Partial<HdeSettings.CompressionSettings>, o: Hde.Options = {}) =>
    Effect.gen(function* () {
      const hde = yield* Hde.make({ ...HdeSettings.defaults, level: LEVEL, ...s }, o)
      // Workers up and their code compiled, as in a running agent: a first transfer of 8 MiB of
      // mixed data (zero, text and random pages) before anything is timed.
      yield* hde.encode(warmup)
      return hde
    })

  for (const set of sets) {
    const data = readFileSync(set.file)
    const input = data.length
    const q = JSON.stringify(set.file)
    const zstd1 = shMedian(`zstd -q -${LEVEL} -T1 -c ${q} | wc -c`)
    const zstd2 = shMedian(`zstd -q -${LEVEL} -T2 -c ${q} | wc -c`)
    const lz4 = shMedian(`lz4 -q -1 -c ${q} | wc -c`)
    const rows: Array<Row> = [
      { name: `zstd -${LEVEL} -T1 (CLI)`, ...zstd1 },
      { name: `zstd -${LEVEL} -T2 (CLI)`, ...zstd2 },
      { name: "lz4 -1 (CLI)", ...lz4 },
    ]
    const check = (hde: Hde.Hde, encoded: Buffer) =>
      Effect.gen(function* () {
        const { a: back, seconds } = yield* timed(hde.decode(encoded))
        if (!back.equals(data)) throw new Error("round trip mismatch")
        return seconds
      })
    let decodeSeconds = 0
    const all = [
      ["HDE zstd, 1 worker", { algorithm: "zstd", workers: 1 }, {}],
      ["HDE zstd -1, 1 worker", { algorithm: "zstd", workers: 1, level: 1 }, {}],
      ["HDE zstd -2, 1 worker", { algorithm: "zstd", workers: 1, level: 2 }, {}],
      ["HDE zstd -5, 1 worker", { algorithm: "zstd", workers: 1, level: 5 }, {}],
      // Larger chunks give zstd a longer history (its level-3 window is 2 MiB), at the cost of
      // coarser parallelism and more memory per chunk in flight.
      ["HDE zstd -2, 4 MiB chunks, 1 worker", { algorithm: "zstd", workers: 1, level: 2, chunk_size: 4 << 20 }, {}],
      ["HDE zstd, 4 MiB chunks, 1 worker", { algorithm: "zstd", workers: 1, chunk_size: 4 << 20 }, {}],
      ["HDE zstd, 16 MiB chunks, 1 worker", { algorithm: "zstd", workers: 1, chunk_size: 16 << 20 }, {}],
      ["HDE zstd, 2 workers", { algorithm: "zstd", workers: 2 }, {}],
      ["HDE zstd, 1 worker, no page elim.", { algorithm: "zstd", workers: 1 }, { pages: false }],
      ["HDE lz4, 1 worker", { algorithm: "lz4", workers: 1 }, {}],
      ["HDE adaptive 1 Gbit/s, 2 workers", { algorithm: "adaptive", workers: 2 }, { linkBps: 125e6 }],
      ["HDE adaptive 10 Gbit/s, 2 workers", { algorithm: "adaptive", workers: 2 }, { linkBps: 1.25e9 }],
    ] as const
    for (const [label, s, o] of all.filter(
      ([label]) => !perCoreOnly || (label.startsWith("HDE zstd") && label.endsWith(", 1 worker")),
    )) {
      const hde = yield* make(s, o)
      const runs: Array<{ a: Buffer; seconds: number; cpu: number }> = []
      for (let k = 0; k < REPEATS; k++) runs.push(yield* timed(hde.encode(data)))
      const { a: encoded, seconds, cpu } = medianOf(runs)
      rows.push({ name: label, bytes: encoded.length, seconds, cpu })
      if (label === "HDE zstd, 2 workers") decodeSeconds = yield* check(hde, encoded)
      if (label.startsWith("HDE adaptive")) {
        const st = yield* hde.stats
        console.log(`  ${label}: chunks per codec ${JSON.stringify(st.codecs)}`)
      }
    }
    table(set.name, input, rows, rows[0] as Row)
    const one = rows.find((r) => r.name === "HDE zstd, 1 worker") as Row
    const two = rows.find((r) => r.name === "HDE zstd, 2 workers")
    console.log(
      `  ${two === undefined ? "" : `2 workers vs 1 (wall): ${f(one.seconds / two.seconds, 2)}x (target >= 1.8x); `}load average now ${f(loadavg()[0] ?? 0, 1)} on ${cores} cores; HDE 1 worker per-core (CPU) vs zstd -T1: ${f(zstd1.cpu / one.cpu, 2)}x at ratio ${f(input / one.bytes, 2)} vs ${f(input / zstd1.bytes, 2)} (target >= 1x at equal ratio)`,
    )
    // "At equal ratio": the fastest HDE setting (1 worker) whose ratio is at least the CLI's.
    const atRatio = rows
      .filter((r) => r.name.startsWith("HDE zstd") && r.name.endsWith(", 1 worker") && r.bytes <= zstd1.bytes)
      .sort((a, b) => a.cpu - b.cpu)[0]
    console.log(
      atRatio === undefined
        ? "  at equal ratio: no HDE level tried reaches zstd -3's ratio"
        : `  at equal ratio: ${atRatio.name} (ratio ${f(input / atRatio.bytes, 2)} >= ${f(input / zstd1.bytes, 2)}) per-core (CPU) vs zstd -${LEVEL} -T1: ${f(zstd1.cpu / atRatio.cpu, 2)}x`,
    )
    if (decodeSeconds > 0) console.log(`  HDE decode (inline, main thread): ${f(mbps(input, decodeSeconds))} MB/s`)
  }

  // Delta: each guest's second RAM snapshot given its first.
  const pairs = [
    { key: "vm", prefix: "vm-ram", info: "vm-ram.info" },
    { key: "db", prefix: "guest-db", info: "guest-db.info" },
    { key: "guest-text", prefix: "guest-text", info: "guest-text.info" },
  ].filter((p) => wanted(p.key) && process.env.HDE_BENCH_DELTA !== "0")
  for (const pair of pairs) yield* deltaOf(pair.prefix, pair.info)
})

const deltaOf = (prefix: string, info: string) =>
  Effect.gen(function* () {
    const v1 = readFileSync(join(cache, `${prefix}-1.raw`))
    const v2 = readFileSync(join(cache, `${prefix}-2.raw`))
    const f1 = JSON.stringify(join(cache, `${prefix}-1.raw`))
    const f2 = JSON.stringify(join(cache, `${prefix}-2.raw`))
    console.log(
      `\ndelta (${prefix}): snapshot 2 given snapshot 1 (${f(v2.length / 2 ** 20, 0)} MiB, ${readFileSync(join(cache, info), "utf8").match(/gap_s: (\d+)/)?.[1]} s apart)`,
    )
    const patch = shMedian(`zstd -q -${LEVEL} -T1 --patch-from=${f1} -c ${f2} | wc -c`)
    const full = shMedian(`zstd -q -${LEVEL} -T1 -c ${f2} | wc -c`)
    const rows: Array<{ name: string; bytes: number; seconds: number; cpu: number }> = [
      { name: `zstd -${LEVEL} -T1 (no base)`, ...full },
      { name: `zstd -${LEVEL} -T1 --patch-from (CLI)`, ...patch },
    ]
    for (const workers of [1, 2]) {
      const hde = yield* Hde.make({ ...HdeSettings.defaults, level: LEVEL, algorithm: "zstd", workers })
      yield* hde.encode(warmup)
      const runs: Array<{ a: Buffer; seconds: number; cpu: number }> = []
      let pagesBefore: Record<string, number> = {}
      let pagesAfter: Record<string, number> = {}
      for (let k = 0; k < REPEATS; k++) {
        // Each run starts from snapshot 1 as the base, on both ends.
        yield* hde.decode(yield* hde.encode(v1, { objectId: "vm" }), { objectId: "vm" })
        pagesBefore = { ...(yield* hde.stats).pages }
        const run = yield* timed(hde.encode(v2, { objectId: "vm" }))
        pagesAfter = { ...(yield* hde.stats).pages }
        const back = yield* hde.decode(run.a, { objectId: "vm" })
        if (!back.equals(v2)) throw new Error("delta round trip mismatch")
        runs.push(run)
      }
      const { a: encoded, seconds, cpu } = medianOf(runs)
      rows.push({
        name: `HDE delta (unchanged/moved pages, zstd+base), ${workers}w`,
        bytes: encoded.length,
        seconds,
        cpu,
      })
      if (workers === 2) {
        const pages = Object.fromEntries(Object.entries(pagesAfter).map(([k, v]) => [k, v - (pagesBefore[k] ?? 0)]))
        console.log(`  HDE pages of snapshot 2: ${JSON.stringify(pages)}`)
      }
    }
    // The other delta method considered: each 1 MiB chunk compressed with the old chunk as a zstd
    // dictionary (what --patch-from does, per chunk), one thread.
    {
      const zstd: typeof ZstdBinding = createRequire(import.meta.url)("zstd-napi/binding")
      const cctx = new zstd.CCtx()
      const out = Buffer.alloc(zstd.compressBound(1 << 20))
      const {
        a: bytes,
        seconds,
        cpu,
      } = yield* timed(
        Effect.sync(() => {
          let n = 0
          for (let at = 0; at < v2.length; at += 1 << 20)
            n += cctx.compressUsingDict(out, v2.subarray(at, at + (1 << 20)), v1.subarray(at, at + (1 << 20)), LEVEL)
          return n
        }),
      )
      rows.push({ name: "zstd dict = old chunk, every chunk (1 run)", bytes, seconds, cpu })
    }
    console.log(
      `${"method".padEnd(48)}${"bytes".padStart(11)}${"wall s".padStart(8)}${"CPU s".padStart(8)}${"size vs patch".padStart(15)}${"wall speed vs patch".padStart(21)}${"CPU speed vs patch".padStart(20)}`,
    )
    for (const r of rows)
      console.log(
        `${r.name.padEnd(48)}${String(r.bytes).padStart(11)}${f(r.seconds, 3).padStart(8)}${f(r.cpu, 3).padStart(8)}${`${f(r.bytes / patch.bytes, 3)}x`.padStart(15)}${`${f(patch.seconds / r.seconds, 1)}x`.padStart(21)}${`${f(patch.cpu / r.cpu, 1)}x`.padStart(20)}`,
      )
    console.log("targets: HDE delta size <= 1.000x patch-from, speed >= 5x patch-from")
  })

Effect.runPromise(Effect.scoped(program)).catch((e) => {
  console.error(e)
  process.exit(1)
})
