/**
 * Lets a component see the status of the others, e.g. that a dependency runs degraded on its fallback.
 *
 * @since 0.1.0
 */
import { Context } from "effect"
import type { ComponentStatus } from "./BootReport.js"

/**
 * Provided by the kernel to every component's layer and to the booted context.
 *
 * @since 0.1.0
 */
export class BootStatus extends Context.Tag("@novacron/init/BootStatus")<
  BootStatus,
  {
    /** Status of a component, `undefined` if there is none of that name. */
    readonly status: (name: string) => ComponentStatus | undefined
    /** True when the component runs on its fallback or without its service. */
    readonly isDegraded: (name: string) => boolean
  }
>() {}
