// Per-link rows over real shaped links: from one node, a veth link (sub-millisecond) and the WAN
// emulator's 200 Mbit/s, 50 ms RTT, 0.5 % loss link, each measured by the environment package's
// probe. Node cannot put one socket in each namespace, so each measurement runs the same probe code
// in a child process inside the link's near namespace; the classification is this process's.
import { execFile, execFileSync, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { type Classify, EnvironmentDetector } from "@novacron/environment"
import { requireService } from "@novacron/testing"
import { Context, Duration, Effect, Layer } from "effect"
// @ts-expect-error plain ESM helper without type declarations
import { canEmulate, link, vethPair } from "../../../tooling/wan-emulator/lib.mjs"
import * as LinkClassifier from "../src/LinkClassifier.js"

const fixture = fileURLToPath(new URL("./fixtures/probe.ts", import.meta.url))
const node = [process.execPath, "--import", "tsx", "--conditions=@novacron/source", fixture]

// The emulator's own check (root, `ip netns`, /dev/net/tun) plus the compiler it is built with; the
// CI rule (skip with a message outside CI, fail in CI) is the shared one.
const emulatorAvailable = await requireService(
  "WAN emulator",
  () => {
    const can = canEmulate() as { ok: boolean; why: string }
    if (!can.ok) throw new Error(can.why)
    execFileSync("cc", ["--version"], { stdio: "ignore" })
    return true
  },
  "the per-link netns test needs root, iproute2 and gcc",
)

interface Ns {
  readonly a: string
  readonly b: string
  readonly addrB: string
  readonly teardown: () => void
}

/** A probe responder in namespace `ns` for the scope. */
const responder = (ns: string, port: number) =>
  Effect.acquireRelease(
    Effect.async<ReturnType<typeof spawn>, Error>((resume) => {
      const child = spawn("ip", ["netns", "exec", ns, ...node, "serve", String(port)], {
        stdio: ["ignore", "pipe", "pipe"],
      })
      let err = ""
      child.stderr.on("data", (d) => {
        err += String(d)
      })
      child.stdout.on("data", (d) => {
        if (String(d).startsWith("ready")) resume(Effect.succeed(child))
      })
      child.on("exit", (code) => resume(Effect.fail(new Error(`responder in ${ns} exited ${code}: ${err}`))))
    }),
    (child) => Effect.sync(() => child.kill("SIGTERM")),
  )

/** The probe run from namespace `ns` towards `peer`. */
const measureFrom = (ns: string, peer: string) =>
  Effect.async<Classify.PeerMeasurement, Error>((resume) => {
    execFile("ip", ["netns", "exec", ns, ...node, "measure", peer], { timeout: 60_000 }, (e, stdout, stderr) =>
      e
        ? resume(Effect.fail(new Error(`measure ${peer}: ${e.message} ${stderr}`)))
        : resume(Effect.succeed(JSON.parse(stdout))),
    )
  }).pipe(Effect.orDie)

describe.skipIf(!emulatorAvailable)("LinkClassifier over shaped links", () => {
  it.scopedLive(
    "from one node: the veth link keeps its low-latency row, the 50 ms / 0.5 % link gets the internet row; the node is hybrid",
    () =>
      Effect.gen(function* () {
        const wan: Ns = yield* Effect.acquireRelease(
          Effect.sync(() => link({ name: "dwcpw", idx: 79, rate: "200mbit", delay: "25ms", loss: 0.005 })),
          (l) => Effect.sync(() => l.teardown()),
        )
        const lan: Ns = yield* Effect.acquireRelease(
          Effect.sync(() => vethPair("dwcpv")),
          (l) => Effect.sync(() => l.teardown()),
        )
        yield* responder(wan.b, 7790)
        yield* responder(lan.b, 7790)
        const WAN = `wan-peer@${wan.addrB}:7790`
        const LAN = `lan-peer@${lan.addrB}:7790`
        const from: Record<string, string> = { [WAN]: wan.a, [LAN]: lan.a }
        const detector = EnvironmentDetector.layer(
          {
            ...EnvironmentDetector.Settings.make({}),
            peers: [WAN, LAN],
            enable_rdma: false,
            detection_interval: Duration.hours(1),
          },
          { measure: (peer) => measureFrom(from[peer]!, peer) },
        )
        const ctx = yield* Layer.build(LinkClassifier.layer().pipe(Layer.provide(detector)))
        const c = Context.get(ctx, LinkClassifier.LinkClassifier)
        const snap = yield* c.current
        const w = snap.links.get(WAN)!
        const l = snap.links.get(LAN)!
        const facts = JSON.stringify({ wan: w.measurement, lan: l.measurement })
        expect(w.measurement!.rttMs!, facts).toBeGreaterThan(50)
        expect(l.measurement!.rttMs!, facts).toBeLessThan(1)
        expect(w.state.linkClass, facts).toBe("internet")
        // Sub-millisecond; datacenter only if the veth also carried > 10 Gbit/s during the probe.
        expect(["datacenter", "hybrid"], facts).toContain(l.state.linkClass)
        expect(snap.mode).toBe("hybrid")
        expect(yield* c.rowFor("wan-peer")).toMatchObject({
          transport: "tcp-multistream",
          compression: { algorithm: "zstd", level: 9 },
          consensus: "raft+gossip",
        })
        expect((yield* c.rowFor("lan-peer")).compression.algorithm).toBe(
          l.state.linkClass === "datacenter" ? "none" : "adaptive",
        )
      }),
    { timeout: 180_000 },
  )
})
