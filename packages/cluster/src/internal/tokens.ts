import { DurableFile } from "@novacron/init"
import { Schema } from "effect"
import { readIfExists, withFileLock } from "./files.js"

const Hex64 = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))

export const TokenRecord = Schema.Struct({
  id: Schema.String,
  /** HMAC key derived from the secret (JoinToken.deriveKey), hex. The secret itself is not stored. */
  key: Hex64,
  created_at: Schema.Date,
  expires_at: Schema.Date,
  uses: Schema.Int,
  max_uses: Schema.Int,
  revoked_at: Schema.optional(Schema.Date),
  /** Node ids joined with this token, oldest first. */
  joined: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
})
export type TokenRecord = typeof TokenRecord.Type

const TokenFile = Schema.parseJson(Schema.Struct({ version: Schema.Literal(1), tokens: Schema.Array(TokenRecord) }))
const decodeFile = Schema.decodeUnknownSync(TokenFile, { errors: "all" })
const encodeFile = Schema.encodeSync(TokenFile)

export type Status = "active" | "expired" | "revoked" | "used up"

export const statusOf = (t: TokenRecord, now: number): Status =>
  t.revoked_at !== undefined
    ? "revoked"
    : t.uses >= t.max_uses
      ? "used up"
      : t.expires_at.getTime() <= now
        ? "expired"
        : "active"

export const read = async (file: string): Promise<ReadonlyArray<TokenRecord>> => {
  const text = await readIfExists(file)
  return text === undefined ? [] : decodeFile(text).tokens
}

const write = (file: string, tokens: ReadonlyArray<TokenRecord>) =>
  DurableFile.writePromise(file, `${encodeFile({ version: 1, tokens })}\n`, { mode: 0o600, directoryMode: 0o700 })

/** Read-modify-write under the file lock. `f` returns the new list (or the same one) and a result. */
export const update = <A>(
  file: string,
  f: (tokens: ReadonlyArray<TokenRecord>) => Promise<readonly [ReadonlyArray<TokenRecord>, A]>,
): Promise<A> =>
  withFileLock(file, async () => {
    const before = await read(file)
    const [after, result] = await f(before)
    if (after !== before) await write(file, after)
    return result
  })
