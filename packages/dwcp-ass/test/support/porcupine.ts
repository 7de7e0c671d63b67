// A linearizability checker after Porcupine (Athalye): Wing & Gong's search with Lowe's
// memoisation of (linearized set, state), split by key first (P-compositionality: a history is
// linearizable iff each key's sub-history is). Operations whose outcome is unknown (timed out)
// get an infinite return time: they may take effect at any point after their call, or never.

/** One operation as a client saw it. `output` undefined = outcome unknown. */
export interface Operation<I, O> {
  readonly key: string
  readonly client: number
  readonly call: number
  /** Infinity when the outcome is unknown. */
  readonly ret: number
  readonly input: I
  readonly output: O | undefined
}

export interface Model<S, I, O> {
  readonly init: S
  /** Whether `input` may have produced `output` in `state`, and the state after it. */
  readonly step: (state: S, input: I, output: O | undefined) => readonly [boolean, S]
  readonly hash: (state: S) => string
}

interface Node {
  readonly id: number
  readonly isCall: boolean
  readonly time: number
  readonly op: Operation<unknown, unknown>
  match: Node | undefined
  prev: Node | undefined
  next: Node | undefined
}

const checkKey = <S, I, O>(
  model: Model<S, I, O>,
  ops: ReadonlyArray<Operation<I, O>>,
  budget: number,
): boolean | "unknown" => {
  const events: Array<Node> = []
  ops.forEach((op, id) => {
    const c: Node = {
      id,
      isCall: true,
      time: op.call,
      op: op as never,
      match: undefined,
      prev: undefined,
      next: undefined,
    }
    const r: Node = {
      id,
      isCall: false,
      time: op.ret,
      op: op as never,
      match: undefined,
      prev: undefined,
      next: undefined,
    }
    c.match = r
    events.push(c, r)
  })
  // By time; a call before a return at the same instant (the two count as concurrent).
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1))
  const head: Node = {
    id: -1,
    isCall: false,
    time: -Infinity,
    op: undefined as never,
    match: undefined,
    prev: undefined,
    next: undefined,
  }
  let p = head
  for (const e of events) {
    p.next = e
    e.prev = p
    p = e
  }
  const lift = (n: Node) => {
    n.prev!.next = n.next
    if (n.next) n.next.prev = n.prev
    const m = n.match!
    m.prev!.next = m.next
    if (m.next) m.next.prev = m.prev
  }
  const unlift = (n: Node) => {
    const m = n.match!
    m.prev!.next = m
    if (m.next) m.next.prev = m
    n.prev!.next = n
    if (n.next) n.next.prev = n
  }
  const words = Math.ceil(ops.length / 32)
  const linearized = new Uint32Array(words)
  const cache = new Set<string>()
  const stack: Array<{ node: Node; state: S }> = []
  let state = model.init
  let entry = head.next
  let steps = 0
  while (head.next !== undefined) {
    if (++steps > budget) return "unknown"
    if (entry === undefined) return false
    if (entry.isCall) {
      const [ok, next] = model.step(state, entry.op.input as I, entry.op.output as O | undefined)
      if (ok) {
        linearized[entry.id >>> 5]! |= 1 << (entry.id & 31)
        const key = `${linearized.join(",")}|${model.hash(next)}`
        if (!cache.has(key)) {
          cache.add(key)
          stack.push({ node: entry, state })
          state = next
          lift(entry)
          entry = head.next
          continue
        }
        linearized[entry.id >>> 5]! &= ~(1 << (entry.id & 31))
      }
      entry = entry.next
    } else {
      // A return with its call not linearized: undo the last choice.
      const top = stack.pop()
      if (top === undefined) return false
      state = top.state
      linearized[top.node.id >>> 5]! &= ~(1 << (top.node.id & 31))
      unlift(top.node)
      entry = top.node.next
    }
  }
  return true
}

export interface Result {
  readonly ok: boolean
  /** Keys whose history is not linearizable. */
  readonly failures: ReadonlyArray<string>
  /** Keys the search gave up on (budget). */
  readonly undecided: ReadonlyArray<string>
}

export const check = <S, I, O>(
  model: Model<S, I, O>,
  history: ReadonlyArray<Operation<I, O>>,
  budget = 5_000_000,
): Result => {
  const byKey = new Map<string, Array<Operation<I, O>>>()
  for (const op of history) {
    const l = byKey.get(op.key) ?? []
    l.push(op)
    byKey.set(op.key, l)
  }
  const failures: Array<string> = []
  const undecided: Array<string> = []
  for (const [key, ops] of byKey) {
    const r = checkKey(model, ops, budget)
    if (r === false) failures.push(key)
    else if (r === "unknown") undecided.push(key)
  }
  return { ok: failures.length === 0 && undecided.length === 0, failures, undecided }
}

/** Register with compare-and-set, values unique per write; `null` = absent. */
export type RegisterInput =
  | { readonly op: "read" }
  | { readonly op: "write"; readonly value: string }
  | { readonly op: "cas"; readonly from: string | null; readonly to: string }

/** read: the value seen; write: true; cas: whether it applied. */
export type RegisterOutput = string | null | boolean

export const register: Model<string | null, RegisterInput, RegisterOutput> = {
  init: null,
  hash: (s) => (s === null ? "\u0000" : s),
  step: (state, input, output) => {
    switch (input.op) {
      case "read":
        // An unknown read constrains nothing.
        return [output === undefined || output === state, state]
      case "write":
        return [true, input.value]
      case "cas": {
        const applies = state === input.from
        // Unknown: if it did not apply here it changed nothing, same as taking effect at the end.
        if (output === undefined) return [true, applies ? input.to : state]
        return [output === applies, applies ? input.to : state]
      }
    }
  },
}
