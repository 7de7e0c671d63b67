/**
 * The VM manager: defines VMs (qcow2 overlays on base images), starts them as daemonized QEMU
 * processes under `<data_dir>/vms/<id>/` (pidfile, QMP socket, serial console log), stops them
 * gracefully (`system_powerdown`, then `quit`, then SIGKILL), kills, deletes, reports status and
 * capacity. Records go through {@link VmStore}; starting takes the VM's term from {@link VmOwnership}.
 *
 * When the layer is built it reattaches: each VM recorded as running whose QEMU still lives (pidfile,
 * `/proc/<pid>/cmdline` naming its socket) is adopted over QMP without a restart; one whose QEMU died
 * is marked `crashed` with the reason. When the layer's scope closes, VMs keep running (they are not
 * the agent's children) unless `stop_on_shutdown` is set.
 *
 * @since 0.1.0
 */
import { Context, type Duration, type Effect, Layer } from "effect"
import * as internal from "./internal/manager.js"
import type * as Qmp from "./Qmp.js"
import type { VmRecord, VmSpecInput } from "./Vm.js"
import type { VmError, VmQemuUnavailable, VmStoreError } from "./VmError.js"
import type { VmOwnership } from "./VmOwnership.js"
import type { VmSettings } from "./VmSettings.js"
import type { VmStore } from "./VmStore.js"

/**
 * A VM's record with what the live process says.
 *
 * @since 0.1.0
 * @category models
 */
export interface VmStatus {
  readonly record: VmRecord
  /** QMP's run state (`running`, `paused`, ...) when attached; `null` otherwise. */
  readonly qmp_status: string | null
  /** Whether the manager holds a QMP connection to the VM's QEMU. */
  readonly attached: boolean
}

/**
 * The host's capacity as placement sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Capacity {
  readonly cpus: number
  readonly vcpus_total: number
  readonly vcpus_used: number
  readonly memory_mb_total: number
  readonly memory_mb_reserved: number
  readonly memory_mb_used: number
  readonly disk_mb_free: number
  readonly running: number
}

/**
 * What a migration destination's QEMU must be told before it listens: the capabilities and
 * parameters that have to match the source's (`multifd`, `postcopy-ram`, `multifd-channels`).
 *
 * @since 0.1.0
 * @category models
 */
export interface IncomingOptions {
  readonly capabilities?: ReadonlyArray<typeof Qmp.MigrationCapability.Type> | undefined
  readonly parameters?: Qmp.MigrationParameters | undefined
  /** Where QEMU listens (default `unix:<paths.incoming>`); benchmarks use `tcp:` for QEMU's native path. */
  readonly uri?: string | undefined
}

/**
 * How a stop ended.
 *
 * @since 0.1.0
 * @category models
 */
export type StopMethod = "powerdown" | "quit" | "kill" | "already-stopped"

/**
 * @since 0.1.0
 * @category models
 */
export interface Manager {
  readonly define: (spec: VmSpecInput) => Effect.Effect<VmRecord, VmError>
  readonly start: (id: string) => Effect.Effect<VmRecord, VmError>
  /** Graceful: `system_powerdown`, after `timeout` (default `stop_timeout`) `quit`, then SIGKILL. */
  readonly stop: (
    id: string,
    options?: { readonly timeout?: Duration.DurationInput | undefined },
  ) => Effect.Effect<{ readonly record: VmRecord; readonly method: StopMethod }, VmError>
  /** SIGKILL to QEMU. */
  readonly kill: (id: string) => Effect.Effect<VmRecord, VmError>
  /** Removes a VM that is not running, with its disks and files. */
  readonly remove: (id: string) => Effect.Effect<void, VmError>
  readonly status: (id: string) => Effect.Effect<VmStatus, VmError>
  readonly list: Effect.Effect<ReadonlyArray<VmRecord>, VmError>
  /** The tail of the serial console log (at most `maxBytes`, default 64 KiB). */
  readonly console: (id: string, maxBytes?: number) => Effect.Effect<string, VmError>
  readonly capacity: Effect.Effect<Capacity, VmError>
  /** The manager's QMP session to a VM's QEMU (for live migration); fails when not attached. */
  readonly qmp: (id: string) => Effect.Effect<Qmp.Client, VmError>
  /** Files of a VM: its directory and the unix socket a migration destination listens on. */
  readonly paths: (id: string) => { readonly dir: string; readonly incoming: string }
  /**
   * Live migration, destination side: defines the VM from `spec` (replacing a stopped copy left by
   * an earlier migration) and starts QEMU paused (`-S`) with `-incoming defer`, then
   * `migrate-incoming unix:<paths.incoming>`. The VM stays `starting`, holding no term, until
   * {@link Manager.resumeIncoming}.
   */
  readonly startIncoming: (spec: VmSpecInput, options?: IncomingOptions) => Effect.Effect<VmRecord, VmError>
  /**
   * Switchover on the destination: takes the VM's ownership over from the source's `sourceTerm`
   * (fencing the source), then `cont`; the record becomes `running` under the new term.
   */
  readonly resumeIncoming: (id: string, sourceTerm: number) => Effect.Effect<VmRecord, VmError>
  /** A destination that will not run the VM (cancel, failure): kills its QEMU, forgets the VM and its files. */
  readonly discardIncoming: (id: string) => Effect.Effect<void, VmError>
  /**
   * The source after a migration the destination took over: quits QEMU and forgets the VM here
   * without releasing its ownership (the destination holds it now). Its console log is kept as
   * `<data_dir>/vms/<id>.migrated.console.log`.
   */
  readonly handOff: (id: string) => Effect.Effect<void, VmError>
  /** The emulator, the accelerator chosen, and VMs recorded running that have no QMP connection. */
  readonly info: Effect.Effect<
    {
      readonly qemu: string
      readonly accel: "kvm" | "tcg"
      readonly unattached: ReadonlyArray<string>
    },
    VmQemuUnavailable
  >
}

/**
 * @since 0.1.0
 * @category tags
 */
export class VmManager extends Context.Tag("@novacron/vm/VmManager")<VmManager, Manager>() {}

/**
 * Where VM directories live, and knobs tests use.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `system.data_dir`; VMs live under `<data_dir>/vms/`. */
  readonly dataDir: string
}

/**
 * The manager; fails with `VmQemuUnavailable` when the emulator does not run.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  settings: VmSettings,
  options: Options,
): Layer.Layer<VmManager, VmQemuUnavailable | VmStoreError, VmStore | VmOwnership> =>
  Layer.scoped(VmManager, internal.make(settings, options))

/**
 * The stand-in when QEMU is missing: every operation fails with the same `VmQemuUnavailable`,
 * listing still works, so the rest of the agent runs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerUnavailable = (reason: VmQemuUnavailable): Layer.Layer<VmManager, never, VmStore> =>
  Layer.effect(VmManager, internal.unavailable(reason))
