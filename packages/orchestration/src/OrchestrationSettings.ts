/**
 * The `orchestration` section of `novacron.yaml`: how tasks retry and time out, how the agent
 * manager judges agents, and how a drain proceeds.
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Duration as D, Schema } from "effect"

/**
 * @since 0.1.0
 * @category schemas
 */
export const OrchestrationSettings = Schema.Struct({
  /** Attempts of one step before its task is dead-lettered (1: no retry). */
  max_attempts: Schema.optionalWith(Common.int(1, 100), { default: () => 5 }),
  /** First retry delay; each next one doubles (exponential `Schedule`). */
  retry_base: Schema.optionalWith(Common.durationBetween("1 millis", "1 hour"), { default: () => D.millis(200) }),
  /** A task not finished this long after it was submitted fails (dead-lettered) at its next step. */
  task_timeout: Schema.optionalWith(Common.durationBetween("1 second"), { default: () => D.minutes(30) }),
  /** An agent whose capacity record is older than this is `suspect`. */
  suspect_after: Schema.optionalWith(Common.durationBetween("1 second"), { default: () => D.seconds(30) }),
  /** An agent whose capacity record is older than this, or gone, is `failed`. */
  failed_after: Schema.optionalWith(Common.durationBetween("1 second"), { default: () => D.seconds(90) }),
  /**
   * A `failed` agent is deregistered (its agent record deleted) after this long (Consul's
   * `deregister_critical_service_after`).
   */
  deregister_after: Schema.optionalWith(Common.durationBetween("1 second"), { default: () => D.hours(72) }),
  /** VMs a drain moves at once unless the drain says otherwise. */
  drain_max_parallel: Schema.optionalWith(Common.int(1, 1024), { default: () => 2 }),
  /** Lease TTL of the coordinator's candidacy: a dead coordinator is replaced within it (+ 1 s). */
  coordinator_ttl: Schema.optionalWith(Common.durationBetween("1 second", "5 minutes"), {
    default: () => D.seconds(10),
  }),
})

/**
 * @since 0.1.0
 * @category models
 */
export type OrchestrationSettings = typeof OrchestrationSettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaults: OrchestrationSettings = Schema.decodeUnknownSync(OrchestrationSettings)({})

/**
 * Decodes a raw section, filling the defaults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode = (raw: unknown): OrchestrationSettings => Schema.decodeUnknownSync(OrchestrationSettings)(raw)
