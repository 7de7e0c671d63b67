import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

// Tests load the native addon from build/Release. The root `pnpm test` builds first; a bare
// `vitest run --project dwcp-acp` on a fresh clone builds it here instead of failing on a missing file.
export default function setup(): void {
  const pkg = fileURLToPath(new URL("..", import.meta.url))
  if (!existsSync(`${pkg}build/Release/dwcp_acp.node`)) {
    execFileSync(process.execPath, ["scripts/build-addon.mjs"], { cwd: pkg, stdio: "inherit" })
  }
}
