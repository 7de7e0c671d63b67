// A client recording a history of reads, unique writes and CAS on a few keys, for the checker.
import { Effect, Option } from "effect"
import { StateStore } from "../../src/index.js"
import type { Operation, RegisterInput, RegisterOutput } from "./porcupine.js"

export type Op = Operation<RegisterInput, RegisterOutput>

/** One client: random reads, unique writes and CAS on a few keys until `until`. */
export const worker = (id: number, until: number, history: Array<Op>) =>
  Effect.gen(function* () {
    const s = yield* StateStore.StateStore
    let n = 0
    while (performance.now() < until) {
      const key = `k${Math.floor(Math.random() * 3)}`
      const dice = Math.random()
      const call = performance.now()
      if (dice < 0.4) {
        const r = yield* Effect.either(s.get(key))
        // A failed read applied nothing and tells nothing.
        if (r._tag === "Right")
          history.push({
            key,
            client: id,
            call,
            ret: performance.now(),
            input: { op: "read" },
            output: Option.match(r.right, { onNone: () => null, onSome: (e) => e.value }),
          })
      } else if (dice < 0.7) {
        const value = `c${id}-${n++}`
        const r = yield* Effect.either(s.put(key, value))
        if (r._tag === "Right")
          history.push({ key, client: id, call, ret: performance.now(), input: { op: "write", value }, output: true })
        else if (r.left._tag === "StateTimeout")
          history.push({ key, client: id, call, ret: Infinity, input: { op: "write", value }, output: undefined })
        // StateUnavailable: the adapter says it surely was not applied; recorded as nothing, so a
        // write that was applied anyway shows up as a violation.
      } else {
        // cas(from, to) = read, then compareAndSet on the revision read (values are unique per write,
        // so the revision identifies the value).
        const read = yield* Effect.either(s.get(key))
        if (read._tag === "Left") continue
        const from = Option.match(read.right, { onNone: () => null, onSome: (e) => e.value })
        const expected = Option.match(read.right, { onNone: () => 0, onSome: (e) => e.modRevision })
        const to = `c${id}-${n++}`
        const r = yield* Effect.either(s.compareAndSet(key, expected, to))
        const input = { op: "cas", from, to } as const
        if (r._tag === "Right") history.push({ key, client: id, call, ret: performance.now(), input, output: true })
        else if (r.left._tag === "CompareFailed")
          history.push({ key, client: id, call, ret: performance.now(), input, output: false })
        else if (r.left._tag === "StateTimeout")
          history.push({ key, client: id, call, ret: Infinity, input, output: undefined })
      }
    }
  }).pipe(Effect.scoped)
