import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** Result shape of every addon call: errors come back as values (errno), never thrown. */
export type NativeResult<A> =
  | ({ readonly ok: true } & A)
  | { readonly ok: false; readonly errno: number; readonly code: string }

export interface RawTcpInfo {
  readonly [key: string]: number | boolean
}

export interface Addon {
  readonly getCongestion: (fd: number) => NativeResult<{ readonly value: string }>
  readonly setCongestion: (fd: number, algorithm: string) => NativeResult<{ readonly value: string }>
  readonly setMaxPacingRate: (fd: number, bytesPerSecond: number) => NativeResult<object>
  readonly tcpInfo: (fd: number) => NativeResult<RawTcpInfo>
}

// The addon sits in <package>/build/Release: two levels up from src/internal (sources, tests) and one
// level up from dist (the bundle), so walk up until found.
const locate = (): string | undefined => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, "build", "Release", "dwcp_acp.node")
    if (existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  return undefined
}

/** Loads the addon (Node's require cache makes repeat loads free); returns the load error, never throws. */
export const load = (): Addon | Error => {
  const path = locate()
  if (path === undefined) {
    return new Error("build/Release/dwcp_acp.node not found: run `pnpm --filter @novacron/dwcp-acp build`")
  }
  try {
    return createRequire(import.meta.url)(path) as Addon
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e))
  }
}

/** errno numbers the addon reports, named for messages. */
export const errnoName = (errno: number): string =>
  ({ 1: "EPERM", 2: "ENOENT", 9: "EBADF", 22: "EINVAL", 88: "ENOTSOCK", 92: "ENOPROTOOPT", 95: "EOPNOTSUPP" })[errno] ??
  `E${errno}`
