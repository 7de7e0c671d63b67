// Submit two no-op tasks and a failing one to a task store in a temp dir, wait for them, and
// print their status and history. Run: pnpm --filter @novacron/orchestration quickstart
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { OrchestrationSettings, Tasks } from "../src/index.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestration-quickstart-"))

const program = Effect.gen(function* () {
  const tasks = yield* Tasks.Tasks
  const ok = yield* tasks.submit({ _tag: "Noop", steps: 2 })
  const bad = yield* tasks.submit({ _tag: "Noop", steps: 2, fail_steps: [2] })
  for (const id of [ok.id, bad.id]) {
    const done = yield* tasks.await(id)
    const view = yield* tasks.get(id)
    console.log(done.status, done.last_error ?? "")
    for (const h of view.history) console.log(`  ${h.step} attempt ${h.attempt}: ${h.outcome} ${h.error ?? ""}`)
  }
})

const live = Tasks.layer(
  { _tag: "sqlite", filename: path.join(dir, "orchestration.db") },
  { settings: OrchestrationSettings.decode({ retry_base: "10ms", max_attempts: 3 }) },
)
Effect.runPromise(program.pipe(Effect.provide(live))).finally(() => fs.rmSync(dir, { recursive: true, force: true }))
