// A source agent in its own process, for the test that SIGKILLs it mid-migration: it starts on a
// data dir (re-attaching the running QEMU), migrates one VM and prints each progress report as a
// JSON line. Its cluster state is its own (in memory): before the kill it only reads the VM's term
// from its database; the agent started again after the kill uses the test's shared one.
// Run: tsx source-agent.ts '<json of Config>'
import { Database } from "@novacron/database"
import { LocalStore } from "@novacron/dwcp-ass"
import { Effect, Exit, Layer, Scope, Stream } from "effect"
import { agent, nodeTls } from "./agents.js"

interface Config {
  readonly node: string
  readonly dataDir: string
  readonly cert: { readonly certPem: string; readonly keyPem: string }
  readonly ca: string
  readonly peer: string
  readonly peerAddress: { readonly host: string; readonly port: number }
  readonly vm: string
  readonly predictedBandwidth: number
}

const config = JSON.parse(process.argv[2]!) as Config

const program = Effect.gen(function* () {
  const scope = yield* Scope.make()
  const cluster = yield* Layer.buildWithScope(
    LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
    scope,
  )
  const source = yield* agent({
    node: config.node,
    dataDir: config.dataDir,
    cluster,
    tls: nodeTls(config.cert, config.ca),
    resolve: () => Effect.succeed(config.peerAddress),
    scope,
  })
  const h = yield* Effect.orDie(
    source.migration
      .migrate(config.vm, config.peer, { predictedBandwidth: config.predictedBandwidth })
      .pipe(Scope.extend(scope)),
  )
  yield* Stream.runForEach(h.progress, (p) => Effect.sync(() => process.stdout.write(`${JSON.stringify(p)}\n`)))
  const exit = yield* Effect.exit(h.result)
  process.stdout.write(`${JSON.stringify({ done: Exit.isSuccess(exit) })}\n`)
  yield* Scope.close(scope, Exit.void)
})

Effect.runPromise(program).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
