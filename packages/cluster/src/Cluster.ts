/**
 * The cluster commands as the CLI calls them: each an Effect that returns the text to print and
 * fails with a typed error whose `message` names what and where.
 *
 * - `novacron-node cluster init` → {@link initCommand}
 * - `novacron-node cluster token create|list|revoke ID` → {@link tokenCommand}
 * - `novacron-node cluster join TOKEN` → {@link joinCommand}
 * - `novacron-node cluster cert issue NAME --role ROLE` → {@link certCommand}
 *
 * @since 0.1.0
 */
import { constants } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { CertificateAuthority } from "@novacron/security"
import { Duration, Effect, Schema } from "effect"
import * as ClusterCa from "./ClusterCa.js"
import {
  type ClusterCaError,
  ClusterSettingsError,
  ClusterStateError,
  type DataDirInUse,
  type FingerprintMismatch,
  type JoinRefused,
  type JoinTransportError,
  type TokenFormatError,
  type TokenNotFound,
} from "./ClusterError.js"
import { type ClusterSettings, Duration as ClusterSettingsDuration, defaults } from "./ClusterSettings.js"
import { join } from "./Join.js"
import * as JoinToken from "./JoinToken.js"

const bracket = (host: string) => (host.includes(":") ? `[${host}]` : host)

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`)

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/**
 * Options of `cluster init`.
 *
 * @since 0.1.0
 * @category commands
 */
export interface InitCommand {
  readonly dataDir: string
  readonly nodeId: string
  /** `network.listen_address`. Default `127.0.0.1`. */
  readonly listenAddress?: string | undefined
  /** The `cluster` section. Default: its defaults. */
  readonly settings?: ClusterSettings | undefined
}

/**
 * The join address written into tokens: `cluster.join_address`, else `<listen_address>:<join_port>`.
 *
 * @since 0.1.0
 * @category commands
 */
export const joinAddressOf = (
  settings: ClusterSettings,
  listenAddress: string,
): Effect.Effect<string, ClusterSettingsError> => {
  if (settings.join_address !== "") return Effect.succeed(settings.join_address)
  if (listenAddress === "0.0.0.0" || listenAddress === "::") {
    return Effect.fail(
      new ClusterSettingsError({
        reason: `network.listen_address is ${listenAddress}, which other nodes cannot dial; set cluster.join_address to the host:port they reach this node at`,
      }),
    )
  }
  if (settings.join_port === 0) {
    return Effect.fail(
      new ClusterSettingsError({ reason: "cluster.join_port is 0 (any free port); tokens need a fixed join address" }),
    )
  }
  return Effect.succeed(`${bracket(listenAddress)}:${settings.join_port}`)
}

const tokenText = (token: JoinToken.JoinToken, summary: ClusterCa.TokenSummary) =>
  [
    `join token ${summary.id} (${plural(summary.maxUses, "use")}, expires ${summary.expiresAt.toISOString()}):`,
    `  ${JoinToken.encode(token)}`,
    "",
    "on each new node (a fresh data directory and node id):",
    `  novacron-node cluster join ${quote(JoinToken.encode(token))} --data-dir DIR --node-id ID`,
  ].join("\n")

/**
 * `cluster init`: makes this node the seed (CA kept if present) and creates a first join token.
 *
 * @since 0.1.0
 * @category commands
 */
export const initCommand = (
  options: InitCommand,
): Effect.Effect<string, ClusterCaError | ClusterStateError | ClusterSettingsError> =>
  Effect.gen(function* () {
    const settings = options.settings ?? defaults
    const listenAddress = options.listenAddress ?? "127.0.0.1"
    const joinAddress = yield* joinAddressOf(settings, listenAddress)
    const info = yield* ClusterCa.init({ dataDir: options.dataDir, nodeId: options.nodeId, listenAddress, joinAddress })
    const { token, summary } = yield* ClusterCa.createToken(options.dataDir, {
      ttl: settings.token_ttl,
      uses: settings.token_uses,
    })
    return [
      `cluster CA: sha256:${info.ca_fingerprint} (${ClusterCa.paths(options.dataDir).caCert})`,
      `join address: ${joinAddress} (served by \`novacron-node start\` on this node)`,
      "",
      tokenText(token, summary),
      "",
    ].join("\n")
  })

/**
 * What `cluster token` does.
 *
 * @since 0.1.0
 * @category commands
 */
export type TokenAction =
  | {
      readonly _tag: "create"
      /** Default `cluster.token_ttl`. A string is first read as in the settings file (`30m`, `24h`), as a CLI flag gives it. */
      readonly ttl?: Duration.DurationInput | string | undefined
      /** Default `cluster.token_uses`. */
      readonly uses?: number | undefined
    }
  | { readonly _tag: "list" }
  | { readonly _tag: "revoke"; readonly id: string }

const decodeTtl = Schema.decodeUnknownEither(ClusterSettingsDuration)

const ttlOf = (input: Duration.DurationInput | string): Effect.Effect<Duration.Duration, ClusterSettingsError> => {
  if (typeof input === "string") {
    const fromFlag = decodeTtl(input)
    if (fromFlag._tag === "Right") return Effect.succeed(fromFlag.right)
  }
  return Effect.try({
    try: () => Duration.decode(input as Duration.DurationInput),
    catch: () =>
      new ClusterSettingsError({
        reason: `token ttl: expected a duration such as "30m" or "24h", got ${String(input)}`,
      }),
  })
}

/**
 * `cluster token create|list|revoke ID` on the seed.
 *
 * @since 0.1.0
 * @category commands
 */
export const tokenCommand = (options: {
  readonly dataDir: string
  readonly action: TokenAction
  readonly settings?: ClusterSettings | undefined
}): Effect.Effect<string, ClusterCaError | ClusterStateError | ClusterSettingsError | TokenNotFound> =>
  Effect.gen(function* () {
    const settings = options.settings ?? defaults
    const action = options.action
    switch (action._tag) {
      case "create": {
        const uses = action.uses ?? settings.token_uses
        if (!Number.isInteger(uses) || uses < 1) {
          return yield* new ClusterSettingsError({ reason: `token uses must be a whole number >= 1, got ${uses}` })
        }
        const ttl = action.ttl === undefined ? settings.token_ttl : yield* ttlOf(action.ttl)
        if (Duration.toMillis(ttl) <= 0)
          return yield* new ClusterSettingsError({ reason: "token ttl must be positive" })
        const { token, summary } = yield* ClusterCa.createToken(options.dataDir, { ttl, uses })
        return `${tokenText(token, summary)}\n`
      }
      case "list": {
        const tokens = yield* ClusterCa.listTokens(options.dataDir)
        if (tokens.length === 0) return "no join tokens\n"
        const rows = [
          ["ID", "STATUS", "USES", "EXPIRES", "JOINED"],
          ...tokens.map((t) => [
            t.id,
            t.status,
            `${t.uses}/${t.maxUses}`,
            t.expiresAt.toISOString(),
            t.joined.join(",") || "-",
          ]),
        ]
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
        return `${rows
          .map((r) =>
            r
              .map((c, i) => c.padEnd(widths[i]!))
              .join("  ")
              .trimEnd(),
          )
          .join("\n")}\n`
      }
      case "revoke": {
        const t = yield* ClusterCa.revokeToken(options.dataDir, action.id)
        return `revoked join token ${t.id}\n`
      }
    }
  })

/**
 * Options of `cluster join`.
 *
 * @since 0.1.0
 * @category commands
 */
export interface JoinCommand {
  readonly token: string
  readonly dataDir: string
  readonly nodeId: string
  readonly dnsNames?: ReadonlyArray<string> | undefined
  readonly ipAddresses?: ReadonlyArray<string> | undefined
  readonly force?: boolean | undefined
  readonly timeoutMillis?: number | undefined
}

/**
 * `cluster join TOKEN`: fetches this node's certificate from the seed and says how to start it.
 *
 * @since 0.1.0
 * @category commands
 */
export const joinCommand = (
  options: JoinCommand,
): Effect.Effect<
  string,
  TokenFormatError | FingerprintMismatch | JoinRefused | JoinTransportError | ClusterStateError | DataDirInUse
> =>
  Effect.map(join(options), (joined) => {
    const p = ClusterCa.paths(options.dataDir)
    const peer = joined.peerAddress ?? "SEED_HOST:SEED_BIND_PORT"
    return [
      `joined the cluster (CA sha256:${joined.caFingerprint}) as ${joined.nodeId}`,
      `wrote ${p.caCert}, ${p.nodeCert}, ${p.nodeKey} (no CA key: only the seed signs)`,
      ...(joined.movedAside === undefined ? [] : [`moved the earlier TLS material to ${joined.movedAside}`]),
      "",
      "start this node with the seed as its peer (network.peers):",
      `  novacron-node start --data-dir ${quote(options.dataDir)} --node-id ${quote(options.nodeId)} --set network.peers=${peer}`,
      "",
    ].join("\n")
  })

/**
 * What `cluster cert issue` does.
 *
 * @since 0.1.0
 * @category commands
 */
export interface CertCommand {
  readonly dataDir: string
  /** The certificate's common name: the principal's name in the API's audit lines. */
  readonly name: string
  /** `reader`, `operator` or `admin` (in the subject's OU). */
  readonly role: string
  /** Where `<name>.crt` and `<name>.key` are written (default: the working directory). */
  readonly out?: string | undefined
  /** Validity in days (default 365, at most 825). */
  readonly days?: number | undefined
  /** Replace files of the same names. */
  readonly force?: boolean | undefined
}

const clientRoles = ["reader", "operator", "admin"] as const

/**
 * Issues a client certificate for an API caller (an operator, a tool) from this node's CA: only
 * the node holding the CA key (the seed) can. The key is written 0600 and never leaves this host.
 *
 * @example
 * ```ts
 * import { Cluster } from "@novacron/cluster"
 * import { Effect } from "effect"
 *
 * const text = Cluster.certCommand({ dataDir: "./.novacron", name: "alice", role: "operator", out: "." })
 * Effect.runPromise(text).then(console.log, (e) => console.error(e.message))
 * ```
 *
 * @since 0.1.0
 * @category commands
 */
export const certCommand = (
  options: CertCommand,
): Effect.Effect<string, ClusterCaError | ClusterStateError | ClusterSettingsError> =>
  Effect.gen(function* () {
    const { name, role } = options
    // A common name that is also a safe file name: the files are named after it.
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) {
      return yield* new ClusterSettingsError({
        reason: `client name "${name}": use 1-64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit`,
      })
    }
    if (!(clientRoles as ReadonlyArray<string>).includes(role)) {
      return yield* new ClusterSettingsError({
        reason: `role "${role}": a client certificate carries reader, operator or admin (node certificates come from cluster join)`,
      })
    }
    const days = options.days ?? 365
    if (!Number.isInteger(days) || days < 1 || days > 825) {
      return yield* new ClusterSettingsError({ reason: `--days ${days}: a whole number from 1 to 825` })
    }
    const ca = yield* ClusterCa.loadCa(options.dataDir)
    const issued = yield* CertificateAuthority.issueClientCertificate(
      { certPem: ca.certPem, keyPem: ca.keyPem },
      name,
      role as (typeof clientRoles)[number],
      { validDays: days },
    ).pipe(Effect.mapError((e) => new ClusterStateError({ reason: e.message })))
    const out = path.resolve(options.out ?? ".")
    const certPath = path.join(out, `${name}.crt`)
    const keyPath = path.join(out, `${name}.key`)
    // O_EXCL unless --force: an existing key is never overwritten by accident.
    const flags = options.force === true ? "w" : constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL
    const write = (file: string, text: string, mode: number) =>
      Effect.tryPromise({
        try: async () => {
          await fs.mkdir(out, { recursive: true })
          const handle = await fs.open(file, flags, mode)
          try {
            await handle.writeFile(text)
            await handle.chmod(mode)
          } finally {
            await handle.close()
          }
        },
        catch: (cause) =>
          new ClusterStateError({
            reason:
              (cause as NodeJS.ErrnoException).code === "EEXIST"
                ? "exists already (pass --force to replace it)"
                : `cannot write: ${String((cause as Error).message ?? cause)}`,
            path: file,
            cause,
          }),
      })
    yield* write(keyPath, issued.keyPem, 0o600)
    yield* write(certPath, issued.certPem, 0o644)
    const caPath = ClusterCa.paths(options.dataDir).caCert
    return [
      `issued client certificate "${name}" (role ${role}, valid ${days} days) from CA sha256:${ca.fingerprint}`,
      `  certificate: ${certPath}`,
      `  key:         ${keyPath} (0600)`,
      "",
      "call the API with it:",
      `  novacron-node api self --cert ${quote(certPath)} --key ${quote(keyPath)} --ca ${quote(caPath)} --address https://HOST:7782`,
      "",
    ].join("\n")
  })
