import { type ChildProcess, spawn } from "node:child_process"
import { readFile, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { Sender, Source } from "../src/index.js"
import { digestOf, payload, settings, sha, tmp, xxh } from "./helpers.js"

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
        const tokenFile = join(dir, "amst.token")
        yield* Effect.promise(() => writeFile(tokenFile, "a-shared-secret-of-some-length\n"))
        const auth = ["--token-file", tokenFile]
        const rx = amst(["receive", "--dir", join(dir, "in"), "--port", "0", "--once", "--json", ...auth])
        yield* Effect.addFinalizer(() => Effect.sync(() => rx.kill()))
        const rxDone = finish(rx)
        const listening = JSON.parse(yield* Effect.promise(() => firstLine(rx))) as { port: number }
        const tx = amst(["send", src, `127.0.0.1:${listening.port}`, "--json", "--streams", "3", ...auth])
        const sent = yield* Effect.promise(() => finish(tx))
        expect(sent.code).toBe(0)
        const result = JSON.parse(sent.out.trim().split("\n").at(-1)!) as {
          digest: string
          integrity: string
          maxStreamsUsed: number
        }
        // A token over plain TCP authenticates the HELLO, not the data: the digest is SHA-256.
        expect(result).toMatchObject({ integrity: "sha256", digest: sha(data) })
        expect(result.maxStreamsUsed).toBe(3)
        const r = yield* Effect.promise(() => rxDone)
        expect(r.code).toBe(0)
        expect(r.out).toContain(sha(data))
        expect((yield* Effect.promise(() => readFile(join(dir, "in", "cli.img")))).equals(data)).toBe(true)
        const bad = yield* Effect.promise(() => finish(amst(["send", src])))
        expect(bad.code).toBe(1)
        expect(bad.err).toMatch(/usage/)
        // Beyond loopback without --token-file or --tls-ca: refused, nothing listens.
        const open = yield* Effect.promise(() =>
          finish(amst(["receive", "--dir", dir, "--host", "0.0.0.0", "--port", "0"])),
        )
        expect(open.code).toBe(1)
        expect(open.err).toMatch(/no sender authentication/)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "a receiver killed with SIGKILL resumes from its persisted progress when started again",
    () =>
      Effect.gen(function* () {
        const dir = yield* tmp
        const data = payload(40 * 1024 * 1024, 42)
        const source = Source.fromBuffer(data, "crash.img")
        const start = Effect.gen(function* () {
          const rx = amst(["receive", "--dir", dir, "--port", "0", "--once", "--json"])
          yield* Effect.addFinalizer(() => Effect.sync(() => rx.kill("SIGKILL")))
          const port = (JSON.parse(yield* Effect.promise(() => firstLine(rx))) as { port: number }).port
          return { rx, port }
        })
        const first = yield* start
        let killedAt = 0
        const cut = yield* Effect.either(
          Sender.send({
            host: "127.0.0.1",
            port: first.port,
            source,
            settings: settings({ chunk_size: 1024 * 1024 }),
            maxReconnects: 1,
            reconnectDelay: 20,
            // At least 200 ms for the 40 chunks: progress (every 100 ms) reaches 20 MiB before the
            // end, so the receiver is killed mid-transfer even when the link is fast.
            pace: () => Effect.sleep("5 millis"),
            onProgress: (p) => {
              if (killedAt === 0 && p.bytes >= 20 * 1024 * 1024) {
                killedAt = p.bytes
                first.rx.kill("SIGKILL")
              }
            },
          }),
        )
        expect(killedAt).toBeGreaterThan(0)
        expect(Either.isLeft(cut)).toBe(true)
        // No clean shutdown happened: only what was persisted on the way (every 8 MiB) survives.
        const second = yield* start
        const done = finish(second.rx)
        const r = yield* Sender.send({
          host: "127.0.0.1",
          port: second.port,
          source,
          settings: settings({ chunk_size: 1024 * 1024 }),
        })
        expect(r.resumedFrom).toBeGreaterThanOrEqual(8 * 1024 * 1024)
        expect(r.resumedFrom).toBeLessThanOrEqual(killedAt)
        expect(r.digest).toBe(digestOf(data, r.integrity))
        const out = yield* Effect.promise(() => done)
        expect(out.out).toContain(`"digest":"${xxh(data)}","integrity":"xxh3-64"`)
        expect((yield* Effect.promise(() => readFile(join(dir, "crash.img")))).equals(data)).toBe(true)
      }).pipe(Effect.scoped),
    30_000,
  )
})
