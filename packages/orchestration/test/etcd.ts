// One etcd member on loopback for a test file: free ports, a temp data dir, SIGKILLed after.

import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { requireService } from "@novacron/testing"
import { Effect, Schedule } from "effect"

const which = (bin: string): string | undefined => {
  try {
    return execFileSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" }).trim() || undefined
  } catch {
    return undefined
  }
}

export const ETCD = process.env.NOVACRON_ETCD ?? which("etcd") ?? "/usr/bin/etcd"

export const haveEtcd = () =>
  requireService("etcd", () => fs.existsSync(ETCD), `${ETCD} missing (apt-get install etcd-server)`)

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = net.createServer()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })

/** A single-member etcd; its client URL. */
export const etcdMember = Effect.acquireRelease(
  Effect.gen(function* () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orch-etcd-"))
    const [client, peer] = yield* Effect.promise(() => Promise.all([freePort(), freePort()]))
    const url = `http://127.0.0.1:${client}`
    const proc: ChildProcess = spawn(
      ETCD,
      [
        "--name=orch",
        `--data-dir=${dir}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=orch=http://127.0.0.1:${peer}`,
        "--heartbeat-interval=100",
        "--election-timeout=1000",
      ],
      { stdio: "ignore" },
    )
    yield* Effect.tryPromise(async () => {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) })
      if (!r.ok || ((await r.json()) as { health: string }).health !== "true") throw new Error("not healthy")
    }).pipe(Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds"))), Effect.orDie)
    return { url, proc, dir }
  }),
  ({ proc, dir }) =>
    Effect.sync(() => {
      proc.kill("SIGKILL")
      fs.rmSync(dir, { recursive: true, force: true })
    }),
)
