// One side of the DWCP transfer benchmark, run inside a namespace by transfer.ts:
//   receive <port> <dir>                       AMST receiver; prints "ready", then one JSON line per completion
//   send <v3|v1> <host:port> <file> <name>     a DWCP node (the packages' engines, forced internet or datacenter
//                                              row by --mode) sends the file; prints the report as JSON
import { readFileSync } from "node:fs"
import { Receiver } from "@novacron/dwcp-amst"
import { TransportSettings } from "@novacron/dwcp-amst/TransportSettings"
import { CompressionSettings } from "@novacron/dwcp-hde/HdeSettings"
import { EnvironmentDetector } from "@novacron/environment"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { Dwcp, LinkClassifier, Parts } from "../src/index.js"

const [cmd, ...args] = process.argv.slice(2)

const receive = (port: number, dir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const rx = yield* Receiver.listen({ dir, host: "0.0.0.0", port, allowUnauthenticated: true })
      console.log("ready")
      for (;;) console.log(JSON.stringify(yield* rx.awaitCompleted()))
    }),
  )

const send = (version: string, peer: string, file: string, name: string, mode: "internet" | "datacenter") =>
  Effect.scoped(
    Effect.gen(function* () {
      const [host, port] = [peer.slice(0, peer.lastIndexOf(":")), Number(peer.slice(peer.lastIndexOf(":") + 1))]
      const transport = Schema.decodeUnknownSync(TransportSettings)({})
      const link: Parts.Link = { resolve: () => Effect.succeed({ host, port }) }
      const on = version === "v3"
      const real = Parts.fromPackages({
        transport,
        compression: Schema.decodeUnknownSync(CompressionSettings)({}),
        link,
      })
      const v3 = {
        ...real,
        state_sync: Effect.succeed({ kind: "none", put: () => Effect.void, get: () => Effect.succeed(Option.none()) }),
      }
      const flags = {
        v3_rollout_percentage: 100,
        enable_v3_transport: on,
        enable_v3_compression: on,
        enable_v3_prediction: on,
        enable_v3_state_sync: false,
        enable_v3_consensus: false,
        enable_v3_placement: false,
      }
      const detector = EnvironmentDetector.layer({ ...EnvironmentDetector.Settings.make({}), forced_mode: mode })
      const ctx = yield* Layer.build(
        Dwcp.layer({ nodeId: "bench", flags, v3, v1Transport: Parts.v1Transport(transport, link) }).pipe(
          Layer.provide(LinkClassifier.layer().pipe(Layer.provide(detector))),
        ),
      )
      const dwcp = Context.get(ctx, Dwcp.Dwcp)
      const data = readFileSync(file)
      // Warm-up: HDE's workers and the row's encoder start on first use; that is boot cost, not transfer.
      yield* dwcp.send({ peer: "bench-peer", name: `warm-${name}`, data: data.subarray(0, 65536) })
      const t0 = performance.now()
      const r = yield* dwcp.send({ peer: "bench-peer", name, data })
      const ms = performance.now() - t0
      console.log(
        JSON.stringify({
          version,
          ms,
          encoding: r.encoding,
          bytes: r.bytes,
          wireBytes: r.wireBytes,
          served: r.served,
          carrier: r.delivery.carrier,
        }),
      )
    }),
  )

const main: Effect.Effect<void, unknown> =
  cmd === "receive"
    ? receive(Number(args[0]), args[1]!)
    : cmd === "send"
      ? send(args[0]!, args[1]!, args[2]!, args[3]!, (args[4] as "internet" | "datacenter") ?? "internet")
      : Effect.die("usage: agent.ts receive <port> <dir> | send <v3|v1> <host:port> <file> <name> [mode]")
Effect.runPromise(main).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
