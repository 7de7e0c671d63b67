import { Either, ParseResult, Schema } from "effect"
import { CheckpointRecord, NodeRecord, TaskRecord } from "../Model.js"

// Rows as the drivers return them, decoded to the Model's records: JSON columns are text, and
// PostgreSQL returns BIGINT columns as strings.
const Num = Schema.Union(Schema.Number, Schema.NumberFromString)
const Json = <A, I>(schema: Schema.Schema<A, I>) => Schema.parseJson(schema)

export const NodeRow = Schema.Struct({
  ...NodeRecord.fields,
  labels: Json(NodeRecord.fields.labels),
  updated_at: Num,
})

export const TaskRow = Schema.Struct({
  ...TaskRecord.fields,
  payload: Json(Schema.Unknown),
  created_at: Num,
  updated_at: Num,
})

export const CheckpointRow = Schema.Struct({
  ...CheckpointRecord.fields,
  data: Json(Schema.Unknown),
  sequence: Num,
  created_at: Num,
})

/** A row of `novacron_migrations` (version is BIGINT text in PostgreSQL). */
export const AppliedRow = Schema.Struct({ version: Num, name: Schema.String, checksum: Schema.String })

/** A row of `kv`; `value` alone when only it is selected. */
export const KvRow = Schema.Struct({ key: Schema.String, value: Schema.String })
export const KvValueRow = Schema.Struct({ value: Schema.String })

/** What `INSERT … RETURNING sequence` gives back. */
export const SequenceRow = Schema.Struct({ sequence: Num })

/** A stored row that does not match its Schema: names the table (or key), the column and why. */
export class RowDecodeError extends Error {
  constructor(
    readonly table: string,
    readonly issues: ReadonlyArray<{ readonly column: string; readonly message: string }>,
  ) {
    super(`stored ${table} row does not decode: ${issues.map((i) => `column ${i.column}: ${i.message}`).join("; ")}`)
    this.name = "RowDecodeError"
  }
}

/** A decoder that throws {@link RowDecodeError}; called inside a backend's `attempt`, which types it. */
export const rowDecoder = <A, I>(table: string, schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (row: unknown): A => {
    const result = decode(row)
    if (Either.isRight(result)) return result.right
    throw new RowDecodeError(
      table,
      ParseResult.ArrayFormatter.formatErrorSync(result.left).map((i) => ({
        column: i.path.length === 0 ? "(row)" : i.path.map(String).join("."),
        message: i.message,
      })),
    )
  }
}
