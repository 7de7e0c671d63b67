import { execFile } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { start } from "./helpers.js"

// Debian's chromium (.ci/run installs it). In CI a missing browser is a failure, not a skip.
const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p))
const artifacts = join(import.meta.dirname, "..", "reports")

// The flags that keep Chromium off the network (this machine's network is closed: background
// connections would be refused, and a page that needed a CDN would show nothing).
const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
  // The API's certificate is signed by the node CA, which this browser does not trust.
  "--ignore-certificate-errors",
  // Lets the page's scripts run (Scalar fetches the OpenAPI document and renders it) before the dump.
  "--virtual-time-budget=15000",
]

const run = (args: ReadonlyArray<string>, userDir: string) =>
  Effect.async<string, Error>((resume) => {
    const child = execFile(
      chromium!,
      [...flags, `--user-data-dir=${userDir}`, ...args],
      { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error
          ? resume(Effect.fail(new Error(`chromium failed: ${error.message}\n${stderr}`)))
          : resume(Effect.succeed(stdout)),
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe.skipIf(chromium === undefined && process.env.CI !== "true")("the Scalar page in headless Chromium", () => {
  it.scopedLive(
    "renders the API reference from the package's bundle and the served OpenAPI document, with no network",
    () =>
      Effect.gen(function* () {
        expect(chromium, "chromium is not installed (Debian package chromium)").toBeDefined()
        // auth_method none (loopback only): a browser on the command line sends no token or certificate.
        const fx = yield* start("none")
        const url = `${fx.url}/v1/docs`
        mkdirSync(artifacts, { recursive: true })
        const dom = yield* run(["--dump-dom", url], join(artifacts, "chromium-profile-dom"))
        // Scalar rendered the document: operations of the spec appear, which only the script puts
        // there (the served page is an empty mount point; Scalar renders the first sections eagerly).
        expect(dom).toContain("/v1/agent/self")
        expect(dom).toContain("/v1/agent/members")
        expect(dom).toContain("/v1/agent/health")
        // Nothing the rendered page loads (scripts, images, styles, fonts) comes from outside the
        // agent; a plain link (Scalar's "powered by") loads nothing.
        const external = [...dom.matchAll(/(?:\ssrc="|<link[^>]*\shref=")(https?:\/\/[^"]+)"/g)]
          .map((m) => m[1]!)
          .filter((u) => !u.startsWith(fx.url))
        expect(external).toEqual([])

        const png = join(artifacts, "scalar.png")
        yield* run(["--window-size=1280,900", `--screenshot=${png}`, url], join(artifacts, "chromium-profile-shot"))
        // A PNG, and not a blank page: a rendered reference is far larger than an empty frame.
        expect(readFileSync(png).subarray(1, 4).toString()).toBe("PNG")
        expect(statSync(png).size).toBeGreaterThan(20_000)
      }),
    120_000,
  )
})
