// Process-level helpers around the qemu binaries: running a tool, the KVM probe, QEMU's argv, and
// watching a pid that is not our child (QEMU daemonizes so the agent can restart without it).
import { execFile, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import { Effect } from "effect"
import type { VmSpec } from "../Vm.js"

export interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a tool to completion (bounded output, killed on timeout or interruption). */
export const run = (cmd: string, args: ReadonlyArray<string>, timeoutMs = 30_000): Effect.Effect<RunResult, Error> =>
  Effect.async<RunResult, Error>((resume) => {
    const child = execFile(
      cmd,
      [...args],
      { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === "string") {
          resume(Effect.fail(new Error(`${cmd}: ${(err as NodeJS.ErrnoException).code}`)))
        } else resume(Effect.succeed({ code: child.exitCode, stdout, stderr }))
      },
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** The emulator's version line, or why it cannot run. */
export const version = (binary: string): Effect.Effect<string, Error> =>
  Effect.flatMap(run(binary, ["--version"], 10_000), (r) =>
    r.code === 0
      ? Effect.succeed(r.stdout.split("\n")[0]!.trim())
      : Effect.fail(new Error(`${binary} --version exited ${r.code}: ${r.stderr.trim()}`)),
  )

/**
 * Whether KVM runs guest code here: boots an empty machine on KVM and waits for the firmware's
 * banner on its serial port. `/dev/kvm` can exist (and QEMU start) while guests never execute.
 */
export const probeKvm = (binary: string, waitMs = 3000): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    let done = false
    // Under coreutils' timeout: an agent killed during the probe (SIGKILL, no cleanup) would leave
    // a QEMU that never exits; timeout kills it by itself and forwards our SIGTERM to it.
    const bound = existsSync("/usr/bin/timeout")
    const child = spawn(
      bound ? "/usr/bin/timeout" : binary,
      [
        ...(bound ? ["--signal=KILL", String(Math.ceil(waitMs / 1000) + 2), binary] : []),
        "-accel",
        "kvm",
        "-machine",
        "q35",
        "-m",
        "32",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    )
    const finish = (ok: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      child.kill(bound ? "SIGTERM" : "SIGKILL")
      resume(Effect.succeed(ok))
    }
    let out = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      out += chunk
      if (out.includes("SeaBIOS") || out.length > 64) finish(true)
    })
    child.on("error", () => finish(false))
    child.on("exit", () => finish(false))
    const timer = setTimeout(() => finish(false), waitMs)
    return Effect.sync(() => finish(false))
  })

export interface Paths {
  readonly dir: string
  readonly qmp: string
  readonly pidfile: string
  readonly console: string
  /** The unix socket a migration destination's QEMU listens on (`migrate-incoming`). */
  readonly incoming: string
  readonly disk: (index: number) => string
}

export const paths = (dataDir: string, id: string): Paths => {
  const dir = `${dataDir}/vms/${id}`
  return {
    dir,
    qmp: `${dir}/qmp.sock`,
    pidfile: `${dir}/qemu.pid`,
    console: `${dir}/console.log`,
    incoming: `${dir}/incoming.sock`,
    disk: (i) => `${dir}/disk${i}.qcow2`,
  }
}

/** QEMU's argv: daemonized (own session, not the agent's child), QMP and serial under the VM dir. */
export const args = (
  spec: VmSpec,
  p: Paths,
  accel: "kvm" | "tcg",
  options: { readonly incoming?: boolean } = {},
): Array<string> => {
  const a = [
    "-name",
    `${spec.id},process=novacron-${spec.id}`,
    "-machine",
    `q35,accel=${accel}`,
    "-m",
    String(spec.memory_mb),
    "-smp",
    String(spec.vcpus),
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-serial",
    `file:${p.console}`,
    "-qmp",
    `unix:${p.qmp},server=on,wait=off`,
    "-pidfile",
    p.pidfile,
    "-daemonize",
  ]
  if (accel === "kvm") a.push("-cpu", "host")
  spec.disks.forEach((_, i) => {
    a.push("-drive", `file=${p.disk(i)},format=qcow2,if=virtio,id=disk${i}`)
  })
  spec.nics.forEach((nic, i) => {
    const fwd = nic.hostfwd.map((r) => `,hostfwd=${r}`).join("")
    // romfile= : no iPXE option ROM needed (and none installed) for a NIC the guest OS drives.
    a.push("-netdev", `user,id=net${i}${fwd}`, "-device", `virtio-net-pci,netdev=net${i},romfile=`)
  })
  if (spec.boot !== undefined) {
    a.push("-kernel", spec.boot.kernel, "-append", spec.boot.append)
    if (spec.boot.initrd !== undefined) a.push("-initrd", spec.boot.initrd)
  }
  // A migration destination: paused until it holds the term, listening once told where.
  if (options.incoming === true) a.push("-S", "-incoming", "defer")
  return a
}

export const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** The pid from QEMU's pidfile, if it is a live QEMU whose argv names this QMP socket (no pid reuse). */
export const livePid = (p: Paths): Effect.Effect<number | undefined> =>
  Effect.promise(async () => {
    const raw = await fs.readFile(p.pidfile, "utf8").catch(() => "")
    const pid = Number.parseInt(raw.trim(), 10)
    if (!Number.isInteger(pid) || pid <= 1 || !pidAlive(pid)) return undefined
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")
    return cmdline.includes(`unix:${p.qmp},`) ? pid : undefined
  })

/** Waits until the pid is gone; false when it still lives after `timeoutMs`. */
export const waitExit = (pid: number, timeoutMs: number): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (!pidAlive(pid) || isZombie(pid)) return true
      await new Promise((r) => setTimeout(r, 50))
    }
    return !pidAlive(pid)
  })

const isZombie = (pid: number): boolean => {
  try {
    // State is the field after the parenthesized command name.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
  } catch {
    return false
  }
}
