/**
 * Lets a component see the status of the others, e.g. that a dependency runs degraded on its fallback.
 *
 * @since 0.1.0
 */
import { Context, type Effect } from "effect"
import type { ComponentStatus } from "./BootReport.js"

/**
 * Provided by the kernel to every component's layer and to the booted context.
 *
 * @since 0.1.0
 */
export class BootStatus extends Context.Tag("@novacron/init/BootStatus")<
  BootStatus,
  {
    /**
     * Completes once every phase has finished (the kernel's READY); never when the boot fails.
     * For work a component starts in the background that must not compete with the boot (loading
     * a model), not for anything the boot waits on.
     *
     * @since 0.2.0
     */
    readonly booted: Effect.Effect<void>
    /** Status of a component, `undefined` if there is none of that name. */
    readonly status: (name: string) => ComponentStatus | undefined
    /** True when the component runs on its fallback or without its service. */
    readonly isDegraded: (name: string) => boolean
  }
>() {}
