import { Either, ParseResult, Schema } from "effect"
import type { BootReport } from "../BootReport.js"
import { checkpointNames } from "../BootReport.js"
import { phases } from "../Component.js"

// The boot record as read back from disk: whatever a crash, an older agent or a hand edit left
// there is decoded before `previousBoot` trusts it. Unknown fields are ignored.

const Phase = Schema.Literal(...phases)
const Outcome = Schema.Literal("starting", "running", "failed", "stopped")

const ComponentRecord = Schema.Struct({
  name: Schema.String,
  phase: Phase,
  criticality: Schema.Literal("CRITICAL", "DEGRADED", "WARNING"),
  dependencies: Schema.Array(Schema.String),
  status: Schema.Literal("pending", "starting", "running", "degraded", "failed", "skipped", "stopped"),
  readyAt: Schema.optional(Schema.Number),
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.optional(Schema.Number),
  attempts: Schema.Number,
  error: Schema.optional(Schema.String),
  fallback: Schema.optional(Schema.Boolean),
  stopMillis: Schema.optional(Schema.Number),
})

const PhaseRecord = Schema.Struct({
  phase: Phase,
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.optional(Schema.Number),
  status: Schema.Literal("pending", "running", "complete", "failed"),
})

const PreviousBoot = Schema.Struct({
  bootId: Schema.String,
  pid: Schema.Number,
  outcome: Schema.Literal("starting", "running", "failed", "stopped", "crashed"),
  lastCheckpoint: Schema.optional(Schema.Literal(...checkpointNames)),
  startedAt: Schema.String,
  summary: Schema.String,
})

const Record = Schema.Struct({
  bootId: Schema.String,
  pid: Schema.Int,
  startedAt: Schema.String,
  outcome: Outcome,
  totalMillis: Schema.optional(Schema.Number),
  parallelEfficiency: Schema.optional(Schema.Number),
  checkpoints: Schema.mutable(
    Schema.Array(Schema.Struct({ name: Schema.Literal(...checkpointNames), at: Schema.Number })),
  ),
  phases: Schema.mutable(Schema.Array(PhaseRecord)),
  components: Schema.mutable(Schema.Array(ComponentRecord)),
  failure: Schema.optional(
    Schema.Struct({
      component: Schema.optional(Schema.String),
      phase: Schema.optional(Phase),
      message: Schema.String,
    }),
  ),
  previous: Schema.optional(PreviousBoot),
})

const decode = Schema.decodeUnknownEither(Schema.parseJson(Record))

/**
 * The record file's text, JSON-parsed and checked, as a `BootReport`; on the left, what is wrong
 * with it as `path: problem` lines (`components.1.criticality: is missing`), not the schema's
 * whole type printed back.
 */
export const decodeRecord = (text: string): Either.Either<BootReport, string> =>
  Either.mapLeft(decode(text), (e) =>
    ParseResult.ArrayFormatter.formatErrorSync(e)
      .map((i) => (i.path.length === 0 ? i.message : `${i.path.join(".")}: ${i.message}`))
      .join("; "),
  )

// Keeps the schema in step with the interface: a field added to `BootReport` must be decoded too.
type Decoded = typeof Record.Type
const _sameShape: [Decoded] extends [BootReport] ? ([BootReport] extends [Decoded] ? true : false) : false = true
void _sameShape
