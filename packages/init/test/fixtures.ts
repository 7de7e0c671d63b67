import { Clock, Context, Duration, Effect, Layer } from "effect"
import type { Criticality, Phase } from "../src/Component.js"
import { Component } from "../src/index.js"

/** What the fixtures did, in order, with the (test) clock's time in ms. */
export interface Journal {
  readonly events: Array<{ readonly at: number; readonly event: string }>
  readonly log: (event: string) => Effect.Effect<void>
  readonly names: (prefix: string) => Array<string>
}

export const makeJournal = (): Journal => {
  const events: Array<{ at: number; event: string }> = []
  return {
    events,
    log: (event) =>
      Effect.map(Clock.currentTimeMillis, (at) => {
        events.push({ at, event })
      }),
    names: (prefix) => events.filter((e) => e.event.startsWith(prefix)).map((e) => e.event.slice(prefix.length)),
  }
}

/** A service every fixture component provides under its own key. */
export class Token extends Context.Tag("test/Token")<Token, { readonly name: string }>() {}

export interface FixtureOptions {
  readonly phase?: Phase
  readonly criticality?: Criticality
  readonly dependencies?: ReadonlyArray<string>
  /** How long the start takes (Effect.sleep, so the TestClock drives it). */
  readonly takes?: Duration.DurationInput
  /** Fail the first n attempts (Infinity: always). */
  readonly failTimes?: number
  readonly stopTakes?: Duration.DurationInput
  readonly retry?: Component.Component["retry"]
  readonly fallback?: boolean
  readonly timeout?: Duration.DurationInput
}

/**
 * A component that journals `start:<name>` when it begins acquiring, `up:<name>` when acquired,
 * `down:<name>` when released and `fail:<name>` when an attempt fails.
 */
export const fixture = (journal: Journal, name: string, o: FixtureOptions = {}) => {
  let attempts = 0
  const layer = Layer.scopedDiscard(
    Effect.gen(function* () {
      attempts++
      yield* journal.log(`start:${name}`)
      if (o.takes !== undefined) yield* Effect.sleep(o.takes)
      if (attempts <= (o.failTimes ?? 0)) {
        yield* journal.log(`fail:${name}`)
        return yield* Effect.fail(new Error(`${name} broke (attempt ${attempts})`))
      }
      yield* Effect.acquireRelease(journal.log(`up:${name}`), () =>
        Effect.zipRight(
          o.stopTakes === undefined ? Effect.void : Effect.sleep(o.stopTakes),
          journal.log(`down:${name}`),
        ),
      )
    }),
  )
  return Component.make({
    name,
    phase: o.phase ?? "core",
    criticality: o.criticality ?? "CRITICAL",
    dependencies: o.dependencies ?? [],
    layer,
    retry: o.retry,
    timeout: o.timeout,
    expectedDuration: o.takes,
    fallback: o.fallback
      ? Layer.scopedDiscard(
          Effect.acquireRelease(journal.log(`fallback:${name}`), () => journal.log(`down-fallback:${name}`)),
        )
      : undefined,
  })
}

export const ms = (d: Duration.DurationInput) => Duration.toMillis(Duration.decode(d))
