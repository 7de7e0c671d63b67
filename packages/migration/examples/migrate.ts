// Two agents in one process (own data dirs and VM databases, one cluster state, real mTLS on
// loopback): boots the counting test guest on node-a, migrates it to node-b printing progress, and
// shows the console continuing on node-b. Needs qemu-system-x86, qemu-utils, busybox-static, cpio.
// usage: pnpm example
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Exit, Scope, Stream } from "effect"
import { agents, certificates, counterGuest, eventually, guest, spec, ticks } from "../test/agents.js"

const program = Effect.gen(function* () {
  const g = counterGuest(guest())
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-mig-example-"))
  const scope = yield* Scope.make()
  const { a, b } = yield* agents(root, yield* certificates, scope)
  try {
    yield* a.vms.define(spec(g, "demo"))
    yield* a.vms.start("demo")
    yield* eventually(
      "guest counting",
      Effect.map(a.vms.console("demo"), (t) => ticks(t).length > 3),
      120,
    )
    const result = yield* Effect.scoped(
      Effect.gen(function* () {
        const migration = yield* a.migration.migrate("demo", "node-b")
        console.log("plan", migration.plan.parameters)
        yield* Effect.fork(
          Stream.runForEach(migration.progress, (p) =>
            Effect.sync(() =>
              console.log(`${p.phase.padEnd(10)} ${(p.transferred / 2 ** 20).toFixed(1)} MiB sent, ${p.elapsedMs} ms`),
            ),
          ),
        )
        return yield* migration.result
      }),
    )
    console.log("result", result)
    yield* Effect.sleep("2 seconds")
    console.log("node-b console:", (yield* b.vms.console("demo")).trim().split("\n").slice(-3))
    yield* b.vms.kill("demo")
  } finally {
    yield* Scope.close(scope, Exit.void)
    fs.rmSync(root, { recursive: true, force: true })
  }
})

Effect.runPromise(program).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
