// Issue 17: the addon build skips when nothing changed, keeps node-gyp's output in a log, and an
// addon that cannot be built leaves RDMA off with one line, never failing the install.
import { spawnSync } from "node:child_process"
import { statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Rdma } from "../src/index.js"

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..")
const build = (env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(pkg, "scripts/build-native.mjs")], {
    cwd: pkg,
    encoding: "utf8",
    env: { ...process.env, AMST_NATIVE_FORCE: "", AMST_REQUIRE_NATIVE: "", ...env },
  })

describe("native build", () => {
  it("does not rebuild an addon that is up to date, and says so in one line", () => {
    // Builds only if the addon is missing or stale (the normal build ran before the tests in CI).
    expect(build().status).toBe(0)
    const before = statSync(Rdma.addonPath).mtimeMs
    const again = build()
    expect(again.status).toBe(0)
    expect(again.stdout.trim().split("\n")).toEqual([expect.stringMatching(/native addon up to date.*not rebuilt/)])
    expect(statSync(Rdma.addonPath).mtimeMs).toBe(before)
  }, 120_000)

  it("without a compiler leaves RDMA off in one line and succeeds", () => {
    const r = build({ PATH: "", AMST_NATIVE_FORCE: "1" })
    expect(r.status).toBe(0)
    expect(r.stderr).toBe("")
    expect(r.stdout.trim().split("\n")).toEqual([
      expect.stringMatching(/native addon not built \(c\+\+, make, python3 not found\): RDMA off, transfers use TCP/),
    ])
    // The addon built earlier is untouched.
    expect(Rdma.probe().loaded).toBe(true)
    // With AMST_REQUIRE_NATIVE=1 the same failure fails the build.
    expect(build({ PATH: "", AMST_NATIVE_FORCE: "1", AMST_REQUIRE_NATIVE: "1" }).status).toBe(1)
  })
})
