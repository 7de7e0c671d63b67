/**
 * The rule for tests that need a service (PostgreSQL, Redis, a redis-server binary, QEMU): outside
 * CI a missing service skips its tests with a message; in CI (`CI` set) it fails the run, so a
 * broken CI machine never passes by skipping.
 *
 * @since 0.1.0
 */
import * as net from "node:net"

/**
 * Whether this run is CI: `CI` set to anything but `""`, `0` or `false`.
 *
 * @since 0.1.0
 * @category ci
 */
export const isCI = (env: Readonly<Record<string, string | undefined>> = process.env): boolean => {
  const v = env.CI?.trim().toLowerCase()
  return v !== undefined && v !== "" && v !== "0" && v !== "false"
}

/**
 * Thrown (at collection time) when CI lacks a service its tests need.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServiceMissing extends Error {
  constructor(
    readonly service: string,
    readonly detail: string,
  ) {
    super(`${service} is required in CI but missing: ${detail}`)
    this.name = "ServiceMissing"
  }
}

/**
 * Whether `probe` finds the service. Outside CI a missing one logs `skipping <name> tests: <detail>`
 * and gives `false` (use it with `describe.skipIf`); in CI it throws {@link ServiceMissing}. A probe
 * that throws counts as missing, with its message in the detail.
 *
 * @example
 * ```ts
 * import { requireService } from "@novacron/testing"
 * import { existsSync } from "node:fs"
 *
 * const haveQemu = await requireService("qemu", () => existsSync("/usr/bin/qemu-system-x86_64"), "apt-get install qemu-system-x86")
 * ```
 *
 * @since 0.1.0
 * @category ci
 */
export const requireService = async (
  name: string,
  probe: () => boolean | Promise<boolean>,
  detail = "not found",
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<boolean> => {
  let why = detail
  try {
    if (await probe()) return true
  } catch (e) {
    why = `${detail} (${e instanceof Error ? e.message : String(e)})`
  }
  if (isCI(env)) throw new ServiceMissing(name, why)
  console.warn(`skipping ${name} tests: ${why} (set CI=true to make this an error)`)
  return false
}

/**
 * Whether something accepts TCP connections at the URL's host and port (1 s timeout).
 *
 * @since 0.1.0
 * @category probes
 */
export const reachable = (url: string): Promise<boolean> =>
  new Promise((resolve) => {
    const u = new URL(url)
    const socket = net.connect({ host: u.hostname, port: Number(u.port) })
    socket.setTimeout(1000)
    const done = (up: boolean) => {
      socket.destroy()
      resolve(up)
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    socket.once("timeout", () => done(false))
  })

/**
 * {@link requireService} for a shared network service at `url` (PostgreSQL, Redis).
 *
 * @since 0.1.0
 * @category ci
 */
export const service = (name: string, url: string): Promise<boolean> =>
  requireService(name, () => reachable(url), `${url} unreachable`)
