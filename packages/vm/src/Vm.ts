/**
 * VM definitions and records, and the state machine a record moves through.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A VM id: lowercase letters, digits and dashes, 1..63 characters (it names a directory and a QEMU
 * `-name`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const VmId = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9-]{0,62}$/),
  Schema.annotations({ message: () => "expected a VM id: lowercase letters, digits and dashes, 1..63 characters" }),
)

/**
 * A disk: a qcow2 overlay on a base image (any format `qemu-img` reads), optionally larger than it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Disk = Schema.Struct({
  base: Schema.String.pipe(Schema.minLength(1)),
  /** Overlay size in MiB; default: the base's size. */
  size_mb: Schema.optional(Schema.Int.pipe(Schema.between(1, 64 * 1024 * 1024))),
})

/**
 * A NIC: user-mode networking (no host setup), with optional `hostfwd` rules such as
 * `tcp:127.0.0.1:2222-:22`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Nic = Schema.Struct({
  kind: Schema.Literal("user"),
  hostfwd: Schema.optionalWith(
    Schema.Array(Schema.String.pipe(Schema.pattern(/^(tcp|udp):[0-9.]*:\d+-[0-9.]*:\d+$/))),
    {
      default: () => [],
    },
  ),
})

/**
 * Direct kernel boot (no bootloader in the image).
 *
 * @since 0.1.0
 * @category schemas
 */
export const KernelBoot = Schema.Struct({
  kernel: Schema.String.pipe(Schema.minLength(1)),
  initrd: Schema.optional(Schema.String),
  append: Schema.optionalWith(Schema.String, { default: () => "console=ttyS0" }),
})

/**
 * What `define` takes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VmSpec = Schema.Struct({
  id: VmId,
  vcpus: Schema.Int.pipe(Schema.between(1, 256)),
  memory_mb: Schema.Int.pipe(Schema.between(16, 16 * 1024 * 1024)),
  disks: Schema.optionalWith(Schema.Array(Disk).pipe(Schema.maxItems(16)), { default: () => [] }),
  nics: Schema.optionalWith(Schema.Array(Nic).pipe(Schema.maxItems(8)), { default: () => [] }),
  boot: Schema.optional(KernelBoot),
})

/**
 * @since 0.1.0
 * @category models
 */
export type VmSpec = typeof VmSpec.Type

/**
 * The encoded (JSON) form of a spec, as clients write it.
 *
 * @since 0.1.0
 * @category models
 */
export type VmSpecInput = typeof VmSpec.Encoded

/**
 * States: `defined` (never started), `starting`, `running`, `stopping`, `stopped` (powered off or
 * stopped on request), `crashed` (QEMU died without being asked: see `exit_reason`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const VmState = Schema.Literal("defined", "starting", "running", "stopping", "stopped", "crashed")

/**
 * @since 0.1.0
 * @category models
 */
export type VmState = typeof VmState.Type

/**
 * The persisted record of a VM on this node.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VmRecord = Schema.Struct({
  spec: VmSpec,
  state: VmState,
  /** QEMU's pid while it runs (from its pidfile). */
  pid: Schema.NullOr(Schema.Int),
  /** Accelerator of the current or last run. */
  accel: Schema.NullOr(Schema.Literal("kvm", "tcg")),
  /** The ownership term the current or last run was started under. */
  term: Schema.NullOr(Schema.Int),
  /** Why the last run ended (`guest-shutdown`, `powerdown`, `quit`, `killed`, or how QEMU died). */
  exit_reason: Schema.NullOr(Schema.String),
  created_at: Schema.Number,
  updated_at: Schema.Number,
})

/**
 * @since 0.1.0
 * @category models
 */
export type VmRecord = typeof VmRecord.Type

const transitions: Record<VmState, ReadonlyArray<VmState>> = {
  defined: ["starting"],
  starting: ["running", "crashed", "stopped"],
  running: ["stopping", "stopped", "crashed"],
  stopping: ["stopped", "crashed"],
  stopped: ["starting"],
  crashed: ["starting", "stopped"],
}

/**
 * Whether the state machine allows `from -> to`.
 *
 * @since 0.1.0
 * @category state machine
 */
export const canTransition = (from: VmState, to: VmState): boolean => transitions[from].includes(to)

/**
 * States in which a QEMU process may exist for the VM.
 *
 * @since 0.1.0
 * @category state machine
 */
export const isActive = (state: VmState): boolean => state === "starting" || state === "running" || state === "stopping"
