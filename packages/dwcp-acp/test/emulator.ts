import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"

/**
 * Whether the WAN emulator can run here (root, `ip netns`, /dev/net/tun, iperf3, ping). Under CI a missing
 * prerequisite throws instead of skipping, so the emulator tests never silently vanish there.
 */
export const emulatorAvailable = (): boolean => {
  const missing: Array<string> = []
  if (process.getuid?.() !== 0) missing.push("root")
  if (!existsSync("/dev/net/tun")) missing.push("/dev/net/tun")
  for (const [cmd, args] of [
    ["ip", ["netns", "list"]],
    ["iperf3", ["--version"]],
    ["ping", ["-V"]],
    ["cc", ["--version"]],
  ] as const) {
    try {
      execFileSync(cmd, args, { stdio: "ignore" })
    } catch {
      missing.push(cmd)
    }
  }
  if (missing.length === 0) return true
  const why = `WAN emulator prerequisites missing: ${missing.join(", ")} (apt-get install -y iproute2 iperf3 iputils-ping gcc; run as root)`
  if (process.env.CI) throw new Error(why)
  console.warn(`skipping WAN emulator tests: ${why}`)
  return false
}
