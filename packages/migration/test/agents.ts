// Two agents in one process: each its own data dir, VM database and tunnel; one cluster state
// (ownership terms) shared, as etcd would be. The guest is the vm package's, with its /init
// replaced by a counter: an appended cpio archive overrides files of the first one.
import { execFileSync } from "node:child_process"
import type { X509Certificate } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Database } from "@novacron/database"
import { LocalStore, type StateStore } from "@novacron/dwcp-ass"
import { CertificateAuthority } from "@novacron/security"
import { VmManager, VmOwnership, VmSettings, VmStore } from "@novacron/vm"
import { Context, Effect, ExecutionStrategy, Layer, Scope } from "effect"
import * as Migration from "../src/Migration.js"
import * as MigrationSettings from "../src/MigrationSettings.js"

export { guest, haveQemu } from "../../vm/test/guest.js"

// Prints TICK <n> every ~100 ms and, every 20 ticks, the md5 of 8 MiB of random bytes it keeps in
// tmpfs (guest RAM); `novacron.dirty` adds a loop rewriting 16 MiB of tmpfs as fast as it can.
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/shm
mount -t tmpfs -o size=64m tmpfs /dev/shm
dd if=/dev/urandom of=/dev/shm/blob bs=1M count=8 2>/dev/null
echo "NOVACRON-SUM $(md5sum /dev/shm/blob | cut -d' ' -f1)" > /dev/ttyS0
case " $(cat /proc/cmdline) " in *" novacron.dirty "*)
  dd if=/dev/urandom of=/dev/shm/src bs=1M count=16 2>/dev/null
  (while true; do cp /dev/shm/src /dev/shm/dst; done) &
  ;;
esac
echo "NOVACRON-GUEST-READY" > /dev/ttyS0
n=0
while true; do
  n=$((n + 1))
  echo "TICK $n $(cut -d' ' -f1 /proc/uptime)"
  [ $((n % 20)) -eq 0 ] && echo "SUM $(md5sum /dev/shm/blob | cut -d' ' -f1)"
  sleep 0.1
done > /dev/ttyS0
`

export interface CounterGuest {
  readonly kernel: string
  readonly initrd: string
  readonly base: string
}

export const counterGuest = (g: { dir: string; kernel: string; initrd: string; base: string }): CounterGuest => {
  const out = path.join(g.dir, "counter-initrd.gz")
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-counter-"))
  try {
    fs.writeFileSync(path.join(work, "init"), INIT, { mode: 0o755 })
    const extra = execFileSync("sh", ["-c", "echo init | cpio -o -H newc --quiet | gzip -1"], { cwd: work })
    fs.writeFileSync(`${out}.tmp`, Buffer.concat([fs.readFileSync(g.initrd), extra]))
    fs.renameSync(`${out}.tmp`, out)
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
  return { kernel: g.kernel, initrd: out, base: g.base }
}

export const spec = (g: CounterGuest, id: string, memoryMb = 128, dirty = false) => ({
  id,
  vcpus: 1,
  memory_mb: memoryMb,
  disks: [{ base: g.base }],
  boot: {
    kernel: g.kernel,
    initrd: g.initrd,
    append: `console=ttyS0 quiet panic=-1${dirty ? " novacron.dirty" : ""}`,
  },
})

export const certificates = Effect.gen(function* () {
  const ca = yield* CertificateAuthority.issueCa("test-cluster")
  return {
    ca,
    a: yield* CertificateAuthority.issueCertificate(ca, "node-a"),
    b: yield* CertificateAuthority.issueCertificate(ca, "node-b"),
    operator: yield* CertificateAuthority.issueClientCertificate(ca, "alice", "operator"),
  }
}).pipe(Effect.orDie)

export type Certificates = Effect.Effect.Success<typeof certificates>

export const nodeTls = (cert: CertificateAuthority.Issued, caPem: string): Migration.NodeTls => ({
  cert: cert.certPem,
  key: cert.keyPem,
  ca: caPem,
  // The security service's rule: a node is a certificate from the CA that names no role.
  isNode: (c: X509Certificate) => CertificateAuthority.roleOf(c) === undefined,
})

export interface Agent {
  readonly node: string
  readonly dataDir: string
  readonly vms: VmManager.Manager
  readonly ownership: VmOwnership.Ownership
  readonly migration: Migration.Service
  /** The agent's own scope: closing it stops the agent (its QEMUs keep running, as in production). */
  readonly scope: Scope.CloseableScope
}

/**
 * One agent on `dataDir`: its VM database there, ownership on `cluster`, a tunnel on a free port.
 * Also what `source-agent.ts` runs in a child process.
 */
export const agent = (options: {
  readonly node: string
  readonly dataDir: string
  readonly cluster: Context.Context<StateStore.StateStore>
  readonly tls: Migration.NodeTls
  readonly resolve: (peer: string) => Effect.Effect<Migration.Address, string>
  readonly scope: Scope.CloseableScope
}): Effect.Effect<Agent> =>
  Effect.gen(function* () {
    const { node, dataDir, scope } = options
    fs.mkdirSync(dataDir, { recursive: true })
    const settings = MigrationSettings.decode({ listen_address: "127.0.0.1", port: 0, poll_interval: "100ms" })
    const deps = Layer.mergeAll(VmStore.layerDatabase, VmOwnership.layer(node)).pipe(
      Layer.provide(Database.layerSqlite({ path: path.join(dataDir, "novacron.db") })),
      Layer.provide(Layer.succeedContext(options.cluster)),
    )
    const layer = VmManager.layer({ ...VmSettings.defaults, accel: "tcg" }, { dataDir }).pipe(Layer.provideMerge(deps))
    const ctx = yield* Layer.buildWithScope(layer, scope)
    const migration = yield* Migration.make({
      nodeId: node,
      settings,
      tls: options.tls,
      resolve: options.resolve,
    }).pipe(Effect.provide(ctx), Scope.extend(scope))
    return {
      node,
      dataDir,
      vms: Context.get(ctx, VmManager.VmManager),
      ownership: Context.get(ctx, VmOwnership.VmOwnership),
      migration,
      scope,
    } satisfies Agent
  }).pipe(Effect.orDie)

export interface Agents {
  readonly a: Agent
  readonly b: Agent
  /** Starts an agent again on its data dir (after its scope was closed), its tunnel on a new port. */
  readonly start: (node: "node-a" | "node-b") => Effect.Effect<Agent>
}

/** Builds both agents, each in its own scope under `scope`. */
export const agents = (root: string, certs: Certificates, scope: Scope.Scope): Effect.Effect<Agents> =>
  Effect.gen(function* () {
    const cluster = yield* Layer.buildWithScope(
      LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
      scope,
    )
    const addresses = new Map<string, Migration.Address>()
    const start = (node: "node-a" | "node-b") =>
      Effect.gen(function* () {
        const started = yield* agent({
          node,
          dataDir: path.join(root, node),
          cluster,
          tls: nodeTls(node === "node-a" ? certs.a : certs.b, certs.ca.certPem),
          resolve: (peer) => {
            const a = addresses.get(peer)
            return a === undefined ? Effect.fail(`no endpoint for ${peer}`) : Effect.succeed(a)
          },
          scope: yield* Scope.fork(scope, ExecutionStrategy.sequential),
        })
        addresses.set(node, started.migration.address)
        return started
      })
    return { a: yield* start("node-a"), b: yield* start("node-b"), start }
  }).pipe(Effect.orDie)

/** Ticks parsed from console text: [n, guest uptime]. */
export const ticks = (text: string): Array<[number, number]> =>
  [...text.matchAll(/^TICK (\d+) ([\d.]+)\r?$/gm)].map((m) => [Number(m[1]), Number(m[2])])

export const sums = (text: string): Array<string> =>
  [...text.matchAll(/^(?:NOVACRON-)?SUM ([0-9a-f]{32})\r?$/gm)].map((m) => m[1]!)

export const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, seconds: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + seconds * 1000
    while (Date.now() < deadline) {
      if (yield* check) return
      yield* Effect.sleep("200 millis")
    }
    return yield* Effect.die(new Error(`${what}: not true after ${seconds} s`))
  })
