import { Duration, Schedule } from "effect"

export interface BackoffOptions {
  readonly base?: Duration.DurationInput
  readonly max?: Duration.DurationInput
  readonly attempts?: number
}

export const backoff = (options: BackoffOptions = {}): Schedule.Schedule<unknown> => {
  const max = Duration.decode(options.max ?? "30 seconds")
  const attempts = options.attempts ?? 10
  return Schedule.exponential(options.base ?? "100 millis", 2).pipe(
    Schedule.modifyDelay((d) => Duration.min(d, max)),
    Schedule.jittered,
    Schedule.intersect(Number.isFinite(attempts) ? Schedule.recurs(attempts) : Schedule.forever),
  )
}
