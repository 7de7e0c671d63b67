/**
 * Questions about other processes on this host.
 *
 * @since 0.2.0
 */

/**
 * Whether a process with this pid exists: signal 0 checks without sending anything. `EPERM`
 * means it exists but belongs to another user, so it counts as alive. A pid says nothing about
 * which program it is once reused; pair it with a start time where that matters.
 *
 * @example
 * ```ts
 * import { Process } from "@novacron/init"
 *
 * const self = Process.alive(process.pid) // true
 * ```
 *
 * @since 0.2.0
 * @category processes
 */
export const alive = (pid: number): boolean => {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}
