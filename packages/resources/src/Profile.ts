/**
 * Resource profiles: the minimum CPU, memory and free disk a node needs.
 *
 * @since 0.1.0
 */
import { ResourceProfile } from "./ResourceSettings.js"

const GiB = 1024 ** 3

/**
 * Minimums, memory and disk in bytes.
 *
 * @since 0.1.0
 */
export interface Requirements {
  readonly cpus: number
  readonly memory: number
  readonly disk: number
}

/**
 * The profile names.
 *
 * @since 0.1.0
 */
export const ProfileName = ResourceProfile

/**
 * @since 0.1.0
 */
export type ProfileName = typeof ProfileName.Type

/**
 * `production` is the design's 4 CPU, 8 GiB, 100 GiB. `minimal` (the configuration default) is
 * what a 2-core laptop has: 2 CPU, 2 GiB of memory, 1 GiB free on the data directory.
 *
 * @since 0.1.0
 */
export const profiles: Readonly<Record<ProfileName, Requirements>> = {
  production: { cpus: 4, memory: 8 * GiB, disk: 100 * GiB },
  minimal: { cpus: 2, memory: 2 * GiB, disk: 1 * GiB },
}

/**
 * The profile's minimums with the non-zero overrides applied.
 *
 * @since 0.1.0
 */
export const requirements = (
  profile: ProfileName,
  overrides: { readonly min_cpus?: number; readonly min_memory?: number; readonly min_disk?: number } = {},
): Requirements => {
  const base = profiles[profile]
  return {
    cpus: overrides.min_cpus || base.cpus,
    memory: overrides.min_memory || base.memory,
    disk: overrides.min_disk || base.disk,
  }
}

/**
 * Renders a byte count as `7.6 GiB`, `512 MiB`.
 *
 * @since 0.1.0
 */
export const formatBytes = (bytes: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`
}
