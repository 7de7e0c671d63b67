// VM managers of several nodes for drain tests: in memory, or kept in a JSON file (rewritten
// after every change, calls appended to `<file>.calls`) so a test can read what a killed process did.
import * as fs from "node:fs"
import type { Vm } from "@novacron/vm"
import { VmError } from "@novacron/vm"
import { Effect } from "effect"
import { MoveFailed } from "../src/OrchestrationError.js"
import type * as VmMover from "../src/VmMover.js"

type State = Record<string, Record<string, { vcpus: number; memory_mb: number; state: Vm.VmState }>>

export interface FakeNodes {
  readonly access: VmMover.NodeAccess
  readonly state: () => State
  readonly calls: () => ReadonlyArray<string>
  /** Most stops in flight at once. */
  readonly maxInFlight: () => number
}

export const fakeNodes = (
  initial: State,
  options: { readonly file?: string; readonly stopMs?: number } = {},
): FakeNodes => {
  const file = options.file
  const state: State =
    file !== undefined && fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : structuredClone(initial)
  const calls: Array<string> = []
  let inFlight = 0
  let maxInFlight = 0
  const save = () => {
    if (file === undefined) return
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(state))
    fs.renameSync(`${file}.tmp`, file)
  }
  save()
  const call = (c: string) => {
    calls.push(c)
    if (file !== undefined) fs.appendFileSync(`${file}.calls`, `${c}\n`)
  }
  const record = (node: string, id: string): Vm.VmRecord => {
    const v = state[node]![id]!
    return {
      spec: { id, vcpus: v.vcpus, memory_mb: v.memory_mb, disks: [], nics: [] },
      state: v.state,
      pid: null,
      accel: null,
      term: null,
      exit_reason: null,
      created_at: 0,
      updated_at: 0,
    } as unknown as Vm.VmRecord
  }
  const manager = (node: string): VmMover.NodeVms => {
    const get = (id: string) =>
      Effect.suspend(() =>
        state[node]?.[id] === undefined
          ? Effect.fail(new VmError.VmNotFound({ id }))
          : Effect.succeed(record(node, id)),
      )
    const set = (id: string, s: Vm.VmState) =>
      Effect.sync(() => {
        state[node]![id]!.state = s
        save()
        return record(node, id)
      })
    return {
      list: Effect.sync(() => Object.keys(state[node] ?? {}).map((id) => record(node, id))),
      status: (id) => Effect.map(get(id), (r) => ({ record: r, qmp_status: null, attached: false })),
      define: (spec) =>
        Effect.sync(() => {
          call(`define ${spec.id} on ${node}`)
          state[node] = {
            ...state[node],
            [spec.id]: { vcpus: spec.vcpus, memory_mb: spec.memory_mb, state: "defined" },
          }
          save()
          return record(node, spec.id)
        }),
      start: (id) =>
        Effect.zipRight(
          get(id),
          Effect.zipRight(
            Effect.sync(() => call(`start ${id} on ${node}`)),
            set(id, "running"),
          ),
        ),
      stop: (id) =>
        Effect.gen(function* () {
          const r = yield* get(id)
          call(`stop ${id} on ${node}`)
          inFlight++
          maxInFlight = Math.max(maxInFlight, inFlight)
          yield* Effect.sleep(options.stopMs ?? 0).pipe(Effect.ensuring(Effect.sync(() => inFlight--)))
          return {
            record: yield* set(id, "stopped"),
            method: r.state === "running" ? ("powerdown" as const) : ("already-stopped" as const),
          }
        }),
      remove: (id) =>
        Effect.zipRight(
          get(id),
          Effect.sync(() => {
            call(`remove ${id} from ${node}`)
            delete state[node]![id]
            save()
          }),
        ),
    } as VmMover.NodeVms
  }
  return {
    access: (node) =>
      node in state
        ? Effect.succeed(manager(node))
        : Effect.fail(new MoveFailed({ vm: null, node, reason: `no such node ${node}` })),
    state: () => state,
    calls: () => calls,
    maxInFlight: () => maxInFlight,
  }
}
