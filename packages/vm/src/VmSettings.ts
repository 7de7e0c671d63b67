/**
 * The `vm` section of `novacron.yaml`: where QEMU is, which accelerator, how VMs stop, and how much
 * of the host VMs may take.
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Duration as D, Schema } from "effect"

/**
 * @since 0.1.0
 * @category schemas
 */
export const VmSettings = Schema.Struct({
  /** The emulator binary (a name on PATH or a path). */
  qemu_binary: Schema.optionalWith(Common.str, { default: () => "qemu-system-x86_64" }),
  /** `qemu-img`, which makes the disk overlays. */
  qemu_img: Schema.optionalWith(Common.str, { default: () => "qemu-img" }),
  /** `auto`: KVM when a probe guest actually runs on it, TCG otherwise. */
  accel: Schema.optionalWith(Schema.Literal("auto", "kvm", "tcg"), { default: () => "auto" as const }),
  /** How long a graceful stop waits for the guest to power off before `quit`. */
  stop_timeout: Schema.optionalWith(Common.Duration, { default: () => D.seconds(30) }),
  /** Stop VMs when the agent shuts down (host shutdown); by default they keep running. */
  stop_on_shutdown: Schema.optionalWith(Common.bool, { default: () => false }),
  /** vCPUs VMs may take per host CPU. */
  cpu_overcommit: Schema.optionalWith(Common.int(1, 64), { default: () => 4 }),
  /** Host memory kept for the host itself, in MiB. */
  reserved_memory_mb: Schema.optionalWith(Common.int(0, 16 * 1024 * 1024), { default: () => 512 }),
  /** Free disk the data directory must keep, in MiB. */
  min_free_disk_mb: Schema.optionalWith(Common.int(0, 1024 * 1024 * 1024), { default: () => 1024 }),
  capacity_interval: Schema.optionalWith(Common.Duration, { default: () => D.seconds(10) }),
})

/**
 * @since 0.1.0
 * @category models
 */
export type VmSettings = typeof VmSettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaults: VmSettings = Schema.decodeUnknownSync(VmSettings)({})

/**
 * Decodes a raw section, filling the defaults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode = (raw: unknown): VmSettings => Schema.decodeUnknownSync(VmSettings)(raw)
