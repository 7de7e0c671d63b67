import { Either } from "effect"
import type { HostSpec } from "../src/Host.js"
import * as Scheduler from "../src/Scheduler.js"

/** A scheduler with the given hosts joined (fails the test on a join error). */
export const cluster = (hosts: ReadonlyArray<HostSpec>, options: Scheduler.Options = {}): Scheduler.Scheduler => {
  const s = Scheduler.make(options)
  for (const h of hosts) {
    const r = s.join(h)
    if (Either.isLeft(r)) throw new Error(`join ${h.id}: ${r.left._tag}`)
  }
  return s
}

export const right = <A, E>(e: Either.Either<A, E>): A => {
  if (Either.isLeft(e)) throw new Error(`expected Right, got ${JSON.stringify(e.left)}`)
  return e.right
}

export const left = <A, E>(e: Either.Either<A, E>): E => {
  if (Either.isRight(e)) throw new Error(`expected Left, got ${JSON.stringify(e.right)}`)
  return e.left
}
