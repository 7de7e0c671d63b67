/**
 * The `@novacron/init` component `vm`: the manager (with its store and local ownership over the
 * node database) and the admin socket. QEMU missing makes it fall back to a manager whose
 * operations fail with `VmQemuUnavailable`, reported degraded; the rest of the agent runs.
 * The host places it (suggested: phase `services`, DEGRADED, after `database`).
 *
 * @since 0.1.0
 */
import type { Database } from "@novacron/database"
import type { StateStore } from "@novacron/dwcp-ass"
import { Component } from "@novacron/init"
import { Effect, Layer, Schedule } from "effect"
import * as Q from "./internal/qemu.js"
import * as VmAdmin from "./VmAdmin.js"
import { VmQemuUnavailable } from "./VmError.js"
import * as VmManager from "./VmManager.js"
import * as VmOwnership from "./VmOwnership.js"
import type { VmSettings } from "./VmSettings.js"
import * as VmStore from "./VmStore.js"

/**
 * Healthy with the emulator, accelerator and running VMs in the details; degraded when QEMU is
 * unavailable or a VM recorded running has no QMP connection.
 *
 * @since 0.1.0
 * @category health
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, VmManager.VmManager> = Effect.gen(function* () {
  const m = yield* VmManager.VmManager
  const info = yield* Effect.either(m.info)
  if (info._tag === "Left") return { status: "degraded", message: info.left.message }
  const capacity = yield* Effect.either(m.capacity)
  const details = {
    qemu: info.right.qemu,
    accel: info.right.accel,
    running: capacity._tag === "Right" ? capacity.right.running : null,
    unattached: info.right.unattached,
  }
  return info.right.unattached.length > 0
    ? {
        status: "degraded",
        message: `no QMP connection to running VM(s) ${info.right.unattached.join(", ")}`,
        details,
      }
    : { status: "healthy", details }
})

/**
 * Where the component lives.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `system.data_dir`. */
  readonly dataDir: string
  /** This node's id (the ownership holder). */
  readonly nodeId: string
}

const deps = (options: Options) => Layer.merge(VmStore.layerDatabase, VmOwnership.layer(options.nodeId))

/**
 * The component spec; its layer needs the `Database` and the cluster state (`StateStore`, for ownership
 * terms), and provides the manager with its `VmStore` and `VmOwnership`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const component = (settings: VmSettings, options: Options) => {
  const admin = VmAdmin.layer(VmAdmin.socketPath(options.dataDir))
  // The store and ownership stay in the output: live migration (`@novacron/migration`) fences with
  // the same VmOwnership the manager starts VMs under.
  const full = (manager: Layer.Layer<VmManager.VmManager, unknown, VmStore.VmStore | VmOwnership.VmOwnership>) =>
    Layer.provideMerge(admin, manager).pipe(Layer.provideMerge(deps(options)))
  const fallback: Layer.Layer<
    VmManager.VmManager | VmStore.VmStore | VmOwnership.VmOwnership,
    unknown,
    Database.Database | StateStore.StateStore
  > = Layer.unwrapEffect(
    Effect.map(Effect.either(Q.version(settings.qemu_binary)), (v) =>
      full(
        VmManager.layerUnavailable(
          new VmQemuUnavailable({
            detail:
              v._tag === "Left"
                ? `${settings.qemu_binary} does not run (${v.left.message}); install qemu-system-x86`
                : "the VM manager failed to start (see the boot log)",
          }),
        ),
      ),
    ),
  )
  return Component.spec({
    name: "vm",
    layer: full(VmManager.layer(settings, { dataDir: options.dataDir })),
    fallback,
    // A missing emulator does not appear within seconds: fall back at once.
    retry: Schedule.recurs(0),
    healthCheck,
    timeout: "30 seconds",
    expectedDuration: "50 millis",
    description: "VMs through QEMU over QMP",
  })
}
