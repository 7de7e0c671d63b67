/**
 * The `migration` section of `novacron.yaml`: where the destination side of the tunnel listens and
 * the policy knobs of a live migration (KubeVirt's and QEMU's defaults where they have one).
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Duration as D, Schema } from "effect"

/**
 * @since 0.1.0
 * @category schemas
 */
export const MigrationSettings = Schema.Struct({
  /**
   * Address the tunnel listens on for incoming migrations (mTLS, node certificates only); empty:
   * the node's `network.listen_address` (the host fills it in), like its other node listeners.
   */
  listen_address: Schema.optionalWith(Schema.String, { default: () => "" }),
  /** Tunnel port, beside DWCP's receiver (7701); 0: any free port, for tests. */
  port: Schema.optionalWith(Common.Port, { default: () => 7702 }),
  /** QEMU's `downtime-limit`: the pause the switchover may cost (QEMU's default, 300 ms). */
  downtime_limit: Schema.optionalWith(Common.Duration, { default: () => D.millis(300) }),
  /** Multifd channels on a multi-stream link row (one tunnel connection each); 1 turns multifd off. */
  multifd_channels: Schema.optionalWith(Common.int(1, 64), { default: () => 4 }),
  /** Throttle the guest's vCPUs when precopy does not converge (QEMU `auto-converge`). */
  auto_converge: Schema.optionalWith(Common.bool, { default: () => true }),
  /**
   * Switch to postcopy when precopy still does not converge (`postcopy-ram`). QEMU before 10.0
   * cannot combine postcopy with multifd (the destination dies), so this turns multifd off: one
   * stream, but a migration that always finishes. Off by default for multifd's speed.
   */
  postcopy: Schema.optionalWith(Common.bool, { default: () => false }),
  /** Dirty-sync passes without convergence before switching to postcopy. */
  postcopy_after_passes: Schema.optionalWith(Common.int(1, 1000), { default: () => 8 }),
  /** Completion timeout per GiB of guest memory (KubeVirt's `completionTimeoutPerGiB`). */
  completion_timeout_per_gib: Schema.optionalWith(Common.Duration, { default: () => D.seconds(800) }),
  /** Fail when the remaining bytes reach no new low for this long (KubeVirt's `progressTimeout`). */
  progress_timeout: Schema.optionalWith(Common.Duration, { default: () => D.seconds(150) }),
  /** How long the destination waits for a QEMU to be ready, and a control answer may take. */
  control_timeout: Schema.optionalWith(Common.Duration, { default: () => D.seconds(60) }),
  /** How often QEMU is asked for progress. */
  poll_interval: Schema.optionalWith(Common.Duration, { default: () => D.millis(200) }),
})

/**
 * @since 0.1.0
 * @category models
 */
export type MigrationSettings = typeof MigrationSettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaults: MigrationSettings = Schema.decodeUnknownSync(MigrationSettings)({})

/**
 * Decodes a raw section, filling the defaults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode = (raw: unknown): MigrationSettings => Schema.decodeUnknownSync(MigrationSettings)(raw)
