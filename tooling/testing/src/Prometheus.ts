/**
 * Debian's Prometheus for tests: `promtool` (lint exposition text, check and unit-test alert
 * rules) and private `prometheus` servers on loopback in a temporary directory.
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, type Scope } from "effect"
import { requireService } from "./Services.js"

/**
 * The promtool binary (`NOVACRON_PROMTOOL` overrides `/usr/bin/promtool`).
 *
 * @since 0.1.0
 * @category constants
 */
export const PROMTOOL: string = process.env.NOVACRON_PROMTOOL ?? "/usr/bin/promtool"

/**
 * The prometheus binary (`NOVACRON_PROMETHEUS` overrides `/usr/bin/prometheus`).
 *
 * @since 0.1.0
 * @category constants
 */
export const PROMETHEUS: string = process.env.NOVACRON_PROMETHEUS ?? "/usr/bin/prometheus"

/**
 * Whether promtool and prometheus are installed ({@link requireService}: skipped outside CI, an
 * error in CI).
 *
 * @since 0.1.0
 * @category ci
 */
export const havePrometheus = (): Promise<boolean> =>
  requireService(
    "prometheus",
    () => existsSync(PROMTOOL) && existsSync(PROMETHEUS),
    `${PROMTOOL} or ${PROMETHEUS} not found (apt-get install prometheus)`,
  )

/**
 * Runs promtool to its end (30 s at most), with `input` on its stdin.
 *
 * @since 0.1.0
 * @category tools
 */
export const promtool = (
  args: ReadonlyArray<string>,
  options: { readonly input?: string; readonly cwd?: string } = {},
): { readonly code: number | null; readonly stdout: string; readonly stderr: string } => {
  const r = spawnSync(PROMTOOL, args, {
    input: options.input,
    cwd: options.cwd,
    encoding: "utf8",
    timeout: 30_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/**
 * A running private prometheus.
 *
 * @since 0.1.0
 * @category models
 */
export interface PrometheusServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  readonly child: ChildProcess
  /** What it wrote to stderr so far (its log). */
  readonly log: () => string
}

/**
 * Starts prometheus with `config` (prometheus.yml text, written into `dir`; rule files it names
 * are read relative to `dir`), its TSDB in `dir`, listening on `127.0.0.1:port`, and waits until
 * `/-/ready` answers 200 (dies if it exits first or takes over 30 s). Stopped (SIGTERM, then
 * SIGKILL after 5 s) when the scope closes.
 *
 * @since 0.1.0
 * @category servers
 */
export const startPrometheus = (options: {
  readonly config: string
  readonly dir: string
  readonly port: number
}): Effect.Effect<PrometheusServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const file = join(options.dir, "prometheus.yml")
      writeFileSync(file, options.config)
      const child = spawn(
        PROMETHEUS,
        [
          `--config.file=${file}`,
          `--storage.tsdb.path=${join(options.dir, "data")}`,
          `--web.listen-address=127.0.0.1:${options.port}`,
          "--web.enable-lifecycle",
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      )
      let log = ""
      child.stderr!.setEncoding("utf8").on("data", (c: string) => {
        log += c
      })
      const url = `http://127.0.0.1:${options.port}`
      const deadline = Date.now() + 30_000
      for (;;) {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${log}`)
        if (Date.now() > deadline) {
          child.kill("SIGKILL")
          throw new Error(`prometheus not ready after 30 s: ${log}`)
        }
        const ok = await fetch(`${url}/-/ready`).then(
          (r) => r.ok,
          () => false,
        )
        if (ok) return { url, child, log: () => log }
        await new Promise((r) => setTimeout(r, 200))
      }
    }),
    ({ child }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve()
            const t = setTimeout(() => child.kill("SIGKILL"), 5000)
            child.once("exit", () => {
              clearTimeout(t)
              resolve()
            })
            child.kill("SIGTERM")
          }),
      ),
  )
