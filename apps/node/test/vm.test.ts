import { execFileSync, spawn } from "node:child_process"
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { otlpReceiver, requireService } from "@novacron/testing"
import { Effect, Exit, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { agentsPerTest, cli, ephemeralPorts, freePort, tempDataDir } from "./harness.js"

const start = agentsPerTest()

const haveQemuImg = await requireService(
  "qemu",
  () => ["/usr/bin/qemu-img", "/usr/bin/qemu-system-x86_64"].every((f) => existsSync(f)),
  "qemu-img or qemu-system-x86_64 not found (apt-get install qemu-system-x86 qemu-utils)",
)

// The VM lifecycle on real guests is the vm package's test; this one is the CLI against a running
// agent: the words, the admin socket, the errors and the exit codes.
describe.skipIf(!haveQemuImg)("novacron-node vm", () => {
  it("defines, lists, shows and deletes a VM through the running agent; refusals name the VM and exit 1", async () => {
    const dir = tempDataDir()
    const data = join(dir, "node")
    const base = join(dir, "base.qcow2")
    execFileSync("qemu-img", ["create", "-f", "qcow2", base, "16M"], { stdio: "ignore" })
    const kernel = join(dir, "vmlinuz")
    writeFileSync(kernel, "not a kernel; define only checks that it is there")
    const a = start(["start", "--data-dir", data, ...ephemeralPorts])
    await a.waitFor((l) => l.name === "node.ready")
    const vm = (...args: Array<string>) => cli(["vm", ...args, "--data-dir", data])

    expect(vm("list")).toMatchObject({ code: 0, stdout: "no VMs defined\n" })

    const created = vm("create", "web-1", "--vcpus", "1", "--memory", "64", "--disk", `${base}:32`, "--kernel", kernel)
    expect(created.stderr).toBe("")
    expect(created.code).toBe(0)
    expect(created.stdout).toMatch(/^web-1\s+defined\s+1\s+64\b/)

    const listed = vm("list")
    expect(listed.stdout.split("\n")[0]).toMatch(/^ID\s+STATE\s+VCPUS\s+MEMORY_MB\s+PID\s+ACCEL\s+REASON$/)
    expect(listed.stdout).toMatch(/\nweb-1\s+defined\s+1\s+64\s+-\s+-\n/)

    const shown = JSON.parse(vm("show", "web-1").stdout)
    expect(shown.record.state).toBe("defined")
    expect(shown.record.spec.disks).toEqual([{ base, size_mb: 32 }])
    expect(shown.record.spec.boot.kernel).toBe(kernel)

    const twice = vm("create", "web-1", "--vcpus", "1", "--memory", "64", "--kernel", kernel)
    expect(twice.code).toBe(1)
    expect(twice.stderr).toContain("web-1")

    const missing = vm("create", "web-2", "--vcpus", "1", "--memory", "64", "--kernel", join(dir, "nope"))
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(join(dir, "nope"))

    const unknown = vm("show", "nope")
    expect(unknown).toMatchObject({ code: 1 })
    expect(unknown.stderr).toMatch(/^VmNotFound: .*nope/)

    expect(vm("delete", "web-1")).toMatchObject({ code: 0, stdout: "web-1: deleted\n" })
    expect(vm("list").stdout).toBe("no VMs defined\n")
  })

  it("a bad command line is a usage error (exit 2) and nothing reaches an agent; no agent is a clear error", () => {
    const data = join(tempDataDir(), "node")
    const noSizes = cli(["vm", "create", "x", "--data-dir", data])
    expect(noSizes.code).toBe(2)
    expect(noSizes.stderr).toContain("vm create needs --vcpus N and --memory MB")
    const badNumber = cli(["vm", "create", "x", "--vcpus", "two", "--memory", "64", "--data-dir", data])
    expect(badNumber.code).toBe(2)
    expect(badNumber.stderr).toContain('--vcpus expects a whole number, got "two"')
    const unknown = cli(["vm", "frob", "--data-dir", data])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/unknown vm command "frob"/)

    // The host-shutdown switch sets the vm package's setting (config print shows where it came from).
    const printed = JSON.parse(cli(["config", "print", "--json", "--stop-vms-on-shutdown"]).stdout)
    expect(printed.values.vm.stop_on_shutdown).toBe(true)
    expect(JSON.parse(cli(["config", "print", "--json"]).stdout).values.vm.stop_on_shutdown).toBe(false)

    const noAgent = cli(["vm", "list", "--data-dir", data])
    expect(noAgent.code).toBe(1)
    expect(noAgent.stderr).toContain(join(data, "vm-admin.sock"))
    expect(noAgent.stderr).toContain("no agent listening")
  })
})

const haveEtcd = await requireService(
  "etcd",
  () => existsSync("/usr/bin/etcd"),
  "/usr/bin/etcd not found (apt-get install etcd-server)",
)

/** One etcd member on loopback for this file's two agents; killed after. */
const startEtcd = async (dir: string) => {
  const [client, peer] = await Promise.all([freePort(), freePort()])
  const proc = spawn(
    "/usr/bin/etcd",
    [
      "--data-dir",
      join(dir, "etcd"),
      "--listen-client-urls",
      `http://127.0.0.1:${client}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${client}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${peer}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${peer}`,
      "--initial-cluster",
      `default=http://127.0.0.1:${peer}`,
    ],
    { stdio: "ignore" },
  )
  const url = `http://127.0.0.1:${client}`
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return { url, proc }
    await new Promise((r) => setTimeout(r, 100))
  }
  proc.kill("SIGKILL")
  throw new Error(`etcd on ${url} did not become healthy`)
}

describe.skipIf(!haveQemuImg || !haveEtcd)("a VM runs on one host (ownership in the cluster state on etcd)", () => {
  it("two agents on one etcd: the second cannot start a VM the first owns; after delete it can", async () => {
    const dir = tempDataDir()
    const etcd = await startEtcd(dir)
    try {
      const kernel = join(dir, "vmlinuz")
      writeFileSync(kernel, "not a kernel: QEMU refuses it, but ownership is taken before QEMU runs")
      const node = (id: string) => {
        const data = join(dir, id)
        const a = start([
          "start",
          "--data-dir",
          data,
          "--node-id",
          id,
          "--set",
          `dwcp.consensus.etcd_endpoints=${JSON.stringify([etcd.url])}`,
          ...ephemeralPorts,
        ])
        const vm = (...args: Array<string>) => cli(["vm", ...args, "--data-dir", data])
        return { a, vm }
      }
      const [na, nb] = [node("node-a"), node("node-b")]
      await Promise.all([na.a.waitFor((l) => l.name === "node.ready"), nb.a.waitFor((l) => l.name === "node.ready")])
      for (const n of [na, nb])
        expect(n.vm("create", "shared", "--vcpus", "1", "--memory", "64", "--kernel", kernel).code).toBe(0)

      // node-a takes the VM's term (its QEMU then fails on the bogus kernel; the term stays node-a's).
      na.vm("start", "shared")
      const refused = nb.vm("start", "shared")
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/^VmOwnershipError: vm shared: ownership: owned by node node-a \(term 1\)/)

      // Deleting it on node-a gives it up; node-b may now take it (term 2).
      expect(na.vm("delete", "shared").code).toBe(0)
      nb.vm("start", "shared")
      const shown = JSON.parse(nb.vm("show", "shared").stdout)
      expect(shown.record.term).toBe(2)
    } finally {
      etcd.proc.kill("SIGKILL")
    }
  })
})

const haveGuestTools = await requireService(
  "busybox",
  () => existsSync("/bin/busybox") && existsSync("/usr/bin/cpio"),
  "/bin/busybox or cpio not found (apt-get install busybox-static cpio): the test guest is built with them",
)

describe.skipIf(!haveQemuImg || !haveEtcd || !haveGuestTools)("live migration between two agents", () => {
  it("vm migrate moves a running guest to the other node: it runs there under a newer term and is gone here", async () => {
    const dir = tempDataDir()
    const etcd = await startEtcd(dir)
    // Both agents export spans here: one migration must be one trace over the two nodes.
    const traces = Effect.runSync(Scope.make())
    const receiver = await Effect.runPromise(Scope.extend(otlpReceiver, traces))
    const dirA = join(dir, "a")
    const dirB = join(dir, "b")
    const vmOn =
      (data: string) =>
      (...args: Array<string>) =>
        cli(["vm", ...args, "--data-dir", data])
    try {
      // The vm package's test guest (kernel + busybox initramfs), built once and cached.
      const guest = execFileSync(
        "bash",
        [join(import.meta.dirname, "../../../packages/vm/test/guest/build-guest.sh")],
        {
          encoding: "utf8",
          stdio: ["ignore", "pipe", "inherit"],
        },
      ).trim()
      const etcdSet = [
        "--set",
        `dwcp.consensus.etcd_endpoints=${JSON.stringify([etcd.url])}`,
        "--set",
        "monitoring.enable_tracing=true",
        "--set",
        `monitoring.tracing_endpoint=${receiver.endpoint}`,
      ]
      const joinPort = await freePort()
      const seed = ["--data-dir", dirA, "--node-id", "node-a", "--set", `cluster.join_port=${joinPort}`]
      // One cluster CA: each tunnel takes the other's node certificate.
      const init = cli(["cluster", "init", ...seed])
      expect(init.code).toBe(0)
      const token = /\bncj1\.\S+/.exec(init.stdout)![0]
      const a = start(["start", ...seed, ...ephemeralPorts, ...etcdSet])
      const readyA = await a.waitFor((l) => l.name === "node.ready", 60_000)
      expect(cli(["cluster", "join", token, "--data-dir", dirB, "--node-id", "node-b"]).code).toBe(0)
      const b = start(["start", "--data-dir", dirB, "--node-id", "node-b", ...ephemeralPorts, ...etcdSet])
      const readyB = await b.waitFor((l) => l.name === "node.ready", 60_000)
      expect((readyB.endpoints as Record<string, string>).migration).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/)

      const vmA = vmOn(dirA)
      const vmB = vmOn(dirB)
      const created = vmA(
        "create",
        "mig-1",
        "--vcpus",
        "1",
        "--memory",
        "128",
        "--disk",
        join(guest, "base.qcow2"),
        "--kernel",
        join(guest, "vmlinuz"),
        "--initrd",
        join(guest, "initrd.gz"),
        "--append",
        "console=ttyS0 quiet panic=-1",
      )
      expect(created.stderr).toBe("")
      expect(vmA("start", "mig-1").code).toBe(0)
      const termBefore = JSON.parse(vmA("show", "mig-1").stdout).record.term as number
      for (let i = 0; i < 240 && !vmA("console", "mig-1").stdout.includes("NOVACRON-GUEST-READY"); i++)
        await new Promise((r) => setTimeout(r, 250))
      expect(vmA("console", "mig-1").stdout).toContain("NOVACRON-GUEST-READY")

      // An operator's certificate from the seed's CA, and the API of node-a.
      expect(
        cli(["cluster", "cert", "issue", "ops", "--role", "operator", "--out", dir, "--data-dir", dirA]).code,
      ).toBe(0)
      const api = (readyA.endpoints as Record<string, string>).api!
      // node-a's API as the operator.
      const asOps = [
        "--data-dir",
        dirA,
        "--address",
        api,
        "--cert",
        join(dir, "ops.crt"),
        "--key",
        join(dir, "ops.key"),
      ]
      const moved = cli(["vm", "migrate", "mig-1", "--to", "node-b", ...asOps])
      expect(moved.stderr).toBe("")
      expect(moved.code).toBe(0)
      expect(moved.stdout).toMatch(/^migrating mig-1 to node-b \(migration \S+\)\n/)
      expect(moved.stdout).toMatch(/\nmig-1\s+node-b\s+(precopy|postcopy)\s+\d+ms\s+\d+ms\s+[\d.]+ MiB/)

      const there = JSON.parse(vmB("show", "mig-1").stdout)
      expect(there).toMatchObject({ record: { state: "running" }, qmp_status: "running", attached: true })
      expect(there.record.term).toBeGreaterThan(termBefore)
      // The source handed it off: no copy left here.
      expect(vmA("show", "mig-1").stderr).toMatch(/^VmNotFound: /)
      // The run is listed on the source's API.
      const runs = cli(["api", "migrations", ...asOps, "--json"])
      expect(JSON.parse(runs.stdout).migrations).toMatchObject([
        { vm_id: "mig-1", target: "node-b", state: "completed" },
      ])

      // The source's migration span and the destination's, in one trace: receive is send's child.
      const span = async (name: string, node: string) => {
        for (let i = 0; i < 150; i++) {
          const found = receiver.spans.find((x) => x.name === name && x.resource["service.instance.id"] === node)
          if (found !== undefined) return found
          await new Promise((r) => setTimeout(r, 100))
        }
        throw new Error(`no ${name} span from ${node}; got ${receiver.spans.map((x) => x.name).join(", ")}`)
      }
      const send = await span("migration.send", "node-a")
      const received = await span("migration.receive", "node-b")
      expect(received.traceId).toBe(send.traceId)
      expect(received.parentSpanId).toBe(send.spanId)
      expect(send.attributes).toMatchObject({ "vm.id": "mig-1", "peer.node_id": "node-b" })
      expect(Number(send.attributes["migration.downtime_ms"])).toBeGreaterThanOrEqual(0)
    } finally {
      // QEMU outlives its agent by design: stop the guest wherever it runs.
      vmOn(dirB)("kill", "mig-1")
      vmOn(dirA)("kill", "mig-1")
      etcd.proc.kill("SIGKILL")
      await Effect.runPromise(Scope.close(traces, Exit.void))
    }
  }, 240_000)
})
