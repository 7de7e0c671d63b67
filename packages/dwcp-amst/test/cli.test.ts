import { type ChildProcess, spawn } from "node:child_process"
import { readFile, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { payload, sha, tmp } from "./helpers.js"

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..")
// Runs the CLI from its TypeScript source (tests do not need a build).
const amst = (args: Array<string>) =>
  spawn(process.execPath, ["--import", "tsx", join(pkg, "src/cli.ts"), ...args], {
    cwd: pkg,
    stdio: ["ignore", "pipe", "pipe"],
  })

const firstLine = (p: ChildProcess) =>
  new Promise<string>((resolve, reject) => {
    let out = ""
    p.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const nl = out.indexOf("\n")
      if (nl >= 0) resolve(out.slice(0, nl))
    })
    p.once("exit", (code) => reject(new Error(`exited ${code} before printing`)))
  })

const finish = (p: ChildProcess) =>
  new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    let out = ""
    let err = ""
    p.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
    })
    p.stderr!.on("data", (c: Buffer) => {
      err += c.toString()
    })
    p.once("exit", (code) => resolve({ code, out, err }))
  })

describe("amst CLI", () => {
  it.live(
    "receive --once and send --json move a file byte for byte",
    () =>
      Effect.gen(function* () {
        const dir = yield* tmp
        const src = join(dir, "cli.img")
        const data = payload(1_500_000, 41)
        yield* Effect.promise(() => writeFile(src, data))
        const rx = amst(["receive", "--dir", join(dir, "in"), "--port", "0", "--once", "--json"])
        yield* Effect.addFinalizer(() => Effect.sync(() => rx.kill()))
        const rxDone = finish(rx)
        const listening = JSON.parse(yield* Effect.promise(() => firstLine(rx))) as { port: number }
        const tx = amst(["send", src, `127.0.0.1:${listening.port}`, "--json", "--streams", "3"])
        const sent = yield* Effect.promise(() => finish(tx))
        expect(sent.code).toBe(0)
        const result = JSON.parse(sent.out.trim().split("\n").at(-1)!) as { sha256: string; maxStreamsUsed: number }
        expect(result.sha256).toBe(sha(data))
        expect(result.maxStreamsUsed).toBe(3)
        const r = yield* Effect.promise(() => rxDone)
        expect(r.code).toBe(0)
        expect(r.out).toContain(sha(data))
        expect((yield* Effect.promise(() => readFile(join(dir, "in", "cli.img")))).equals(data)).toBe(true)
        const bad = yield* Effect.promise(() => finish(amst(["send", src])))
        expect(bad.code).toBe(1)
        expect(bad.err).toMatch(/usage/)
      }).pipe(Effect.scoped),
    30_000,
  )
})
