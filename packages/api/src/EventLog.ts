/**
 * The node's recent events, numbered: what the event stream replays and follows, and what
 * blocking queries wait on. Each event has a topic (`VM`, `Member`, `Leader`, `Task`), a key (the
 * VM id, the node id) and a strictly increasing index. The last `capacity` events are kept for
 * replay; older ones are gone (a replay from before them says so with `truncated`).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, PubSub, Queue, type Scope, Stream } from "effect"
import type { Event } from "./Api.js"

/**
 * A topic filter: the topic, and optionally one key (`VM:web-1`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Filter {
  readonly topic: string
  readonly key?: string | undefined
}

/**
 * Reads `VM` or `VM:web-1`.
 *
 * @since 0.1.0
 * @category filters
 */
export const parseFilter = (text: string): Filter => {
  const at = text.indexOf(":")
  return at < 0 ? { topic: text } : { topic: text.slice(0, at), key: text.slice(at + 1) }
}

/**
 * Whether an event passes the filters (none: every event).
 *
 * @since 0.1.0
 * @category filters
 */
export const matches = (filters: ReadonlyArray<Filter>, event: Event): boolean =>
  filters.length === 0 || filters.some((f) => f.topic === event.topic && (f.key === undefined || f.key === event.key))

/**
 * @since 0.1.0
 * @category models
 */
export interface EventLogApi {
  /** The index of the newest event (0 before any). */
  readonly index: Effect.Effect<number>
  /** The index of the newest event of a topic (0 before any). */
  readonly topicIndex: (topic: string) => Effect.Effect<number>
  readonly publish: (topic: string, type: string, key: string, payload: unknown) => Effect.Effect<Event>
  /**
   * Retained events after `after` that pass `filters`, then every new one. `truncated` (first
   * element) is true when events after `after` were already dropped.
   */
  readonly follow: (
    after: number,
    filters: ReadonlyArray<Filter>,
  ) => Effect.Effect<{ readonly truncated: boolean; readonly events: Stream.Stream<Event> }, never, Scope.Scope>
  /**
   * Waits until `topic`'s index passes `after` or `timeout` elapses; returns the topic's index.
   */
  readonly awaitAfter: (topic: string, after: number, timeoutMillis: number) => Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category services
 */
export class EventLog extends Context.Tag("@novacron/api/EventLog")<EventLog, EventLogApi>() {}

/**
 * A log keeping the last `capacity` events.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (capacity = 4096): Effect.Effect<EventLogApi> =>
  Effect.gen(function* () {
    const hub = yield* PubSub.sliding<Event>(1024)
    // Plain fields, changed only inside Effect.sync: each change is one synchronous step.
    let index = 0
    const retained: Array<Event> = []
    const topics = new Map<string, number>()
    const publish = (topic: string, type: string, key: string, payload: unknown) =>
      Effect.flatMap(
        Effect.sync(() => {
          const event: Event = { index: ++index, topic, type, key, time: Date.now(), payload }
          if (retained.length >= capacity) retained.shift()
          retained.push(event)
          topics.set(topic, event.index)
          return event
        }),
        (event) => Effect.as(PubSub.publish(hub, event), event),
      ).pipe(Effect.uninterruptible)
    const topicIndex = (topic: string) => Effect.sync(() => topics.get(topic) ?? 0)
    const follow = (after: number, filters: ReadonlyArray<Filter>) =>
      Effect.gen(function* () {
        // Subscribe before reading what is retained, so nothing falls between the two.
        const live = yield* PubSub.subscribe(hub)
        const first = retained[0]
        const truncated = first !== undefined && after < first.index - 1
        const replay = retained.filter((e) => e.index > after && matches(filters, e))
        const last = index
        return {
          truncated,
          events: Stream.concat(
            Stream.fromIterable(replay),
            Stream.fromQueue(live).pipe(Stream.filter((e) => e.index > last && matches(filters, e))),
          ),
        }
      })
    const awaitAfter = (topic: string, after: number, timeoutMillis: number) =>
      Effect.scoped(
        Effect.gen(function* () {
          const live = yield* PubSub.subscribe(hub)
          const now = yield* topicIndex(topic)
          if (now > after) return now
          const next = yield* Queue.take(live).pipe(
            Effect.repeat({ until: (e) => e.topic === topic && e.index > after }),
            Effect.timeoutOption(timeoutMillis),
          )
          return Option.match(next, { onNone: () => now, onSome: (e) => e.index })
        }),
      )
    return { index: Effect.sync(() => index), topicIndex, publish, follow, awaitAfter }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (capacity?: number): Layer.Layer<EventLog> => Layer.effect(EventLog, make(capacity))
