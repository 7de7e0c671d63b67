/**
 * RDMA detection through the package's native addon (node-addon-api over rdma-core's libibverbs
 * and librdmacm), and the choice between RDMA and TCP for a transfer.
 *
 * The addon is built by `pnpm build` (`scripts/build-native.mjs`); without rdma-core's headers it
 * is built without RDMA support and says so. Only device discovery is native today: the RDMA data
 * path (queue pairs, registered memory) is not implemented, so a transfer that selects RDMA still
 * moves its bytes over TCP and reports that (see {@link Selection}).
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/**
 * One RDMA device as listed by `ibv_get_device_list`.
 *
 * @since 0.1.0
 */
export interface Device {
  readonly name: string
  readonly guid: string
  readonly transport: string
}

/**
 * What the addon found.
 *
 * - `loaded`: the addon binary could be loaded at all.
 * - `compiled`: it was built against rdma-core.
 * - `errno`/`error`: why no device list was returned (here: `ENOSYS`, 38, from `ibv_get_device_list`).
 *
 * @since 0.1.0
 */
export interface Probe {
  readonly loaded: boolean
  readonly compiled: boolean
  readonly devices: ReadonlyArray<Device>
  readonly errno?: number | undefined
  readonly error?: string | undefined
}

interface Addon {
  readonly compiledWithRdma: boolean
  probe(): { compiled: boolean; devices: Array<Device>; errno?: number; error?: string }
}

/**
 * Path of the built addon, relative to this module (the same from `src/` and `dist/`).
 *
 * @since 0.1.0
 */
export const addonPath = join(dirname(fileURLToPath(import.meta.url)), "..", "build", "Release", "amst_rdma.node")

/**
 * Loads the addon and lists devices. Never throws: every failure is described in the result.
 *
 * @since 0.1.0
 */
export const probe = (path: string = addonPath): Probe => {
  let addon: Addon
  try {
    addon = createRequire(import.meta.url)(path) as Addon
  } catch (e) {
    return { loaded: false, compiled: false, devices: [], error: `addon not loaded: ${(e as Error).message}` }
  }
  try {
    const r = addon.probe()
    return { loaded: true, compiled: r.compiled, devices: r.devices, errno: r.errno, error: r.error }
  } catch (e) {
    return { loaded: true, compiled: addon.compiledWithRdma, devices: [], error: (e as Error).message }
  }
}

/**
 * The transport chosen for a transfer. `dataPath` is what actually carries the bytes: always
 * `"tcp"` in this version, since the RDMA data path is not implemented.
 *
 * @since 0.1.0
 */
export interface Selection {
  readonly transport: "rdma" | "tcp"
  readonly device?: Device | undefined
  readonly dataPath: "tcp"
  readonly reason: string
}

/**
 * Chooses RDMA when it is enabled, the mode is `datacenter` and a device exists; TCP otherwise,
 * with the reason. The probe is injected so the logic is testable without hardware.
 *
 * @since 0.1.0
 */
export const select = (options: {
  readonly enableRdma: boolean
  readonly mode?: "datacenter" | "internet" | "hybrid" | undefined
  readonly probe: Probe
  /** Restrict to a device by name. */
  readonly device?: string | undefined
}): Selection => {
  const tcp = (reason: string): Selection => ({ transport: "tcp", dataPath: "tcp", reason })
  if (!options.enableRdma) return tcp("RDMA disabled (enable_rdma = false)")
  if (options.mode !== "datacenter")
    return tcp(`RDMA is used in datacenter mode only (mode: ${options.mode ?? "unset"})`)
  const p = options.probe
  if (!p.loaded) return tcp(`RDMA addon unavailable: ${p.error ?? "not built"}`)
  if (!p.compiled) return tcp("RDMA addon built without rdma-core")
  if (p.devices.length === 0) return tcp(`no RDMA device: ${p.error ?? "device list empty"}`)
  const device = options.device ? p.devices.find((d) => d.name === options.device) : p.devices[0]
  if (!device) return tcp(`RDMA device ${options.device} not present`)
  return {
    transport: "rdma",
    device,
    dataPath: "tcp",
    reason: `RDMA device ${device.name} found; the RDMA data path is not implemented, bytes go over TCP`,
  }
}
