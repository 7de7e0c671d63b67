// Who owns a key in gossip mode, kept apart from the Yjs replica so that importing the state
// package does not load Yjs (about 150 ms on a loaded machine) on nodes that never gossip.

export class NotOwner extends Error {
  constructor(
    readonly key: string,
    readonly owner: string | undefined,
    readonly writer: string,
  ) {
    super(
      owner === undefined
        ? `${key}: no node owns this key (gossip mode keys are <space>/<node id>[/...])`
        : `${key}: owned by ${owner}, not by ${writer} (gossip mode is single-writer per key)`,
    )
  }
}

/** Default ownership: the key's second segment is its owner (`capacity/node-a`, `svc/node-a/api`). */
export const ownerOf = (key: string): string | undefined => {
  const i = key.indexOf("/")
  if (i <= 0) return undefined
  const j = key.indexOf("/", i + 1)
  const owner = j < 0 ? key.slice(i + 1) : key.slice(i + 1, j)
  return owner === "" ? undefined : owner
}
