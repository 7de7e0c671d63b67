/**
 * Raft mode: the state API on an etcd cluster (etcd 3.4+, client `etcd3`). Every operation is
 * linearizable (reads are quorum reads; writes and compare-and-set are etcd transactions).
 * Each call has a deadline; a write that hits it, or whose connection drops after it was sent,
 * fails with `StateTimeout` (outcome unknown) and is not retried; one refused before it was
 * proposed (member down, no leader) is retried on another member until the deadline.
 * Writes go to the member that says it leads (asked with etcd's status call, again every 5 s and
 * after a failure), not to a follower that would forward them: after the leader is killed, a
 * forwarded write is dropped and waits out its deadline, while one sent to the leader fails at
 * once and is retried, every 50 ms, on the new leader as soon as one says it leads.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import { Duration, Effect, Either, Layer } from "effect"
import { type ConsensusSettings, usesTls } from "./ConsensusSettings.js"
import * as Core from "./internal/core.js"
import { StateUnavailable } from "./StateError.js"
import { StateStore } from "./StateStore.js"

/**
 * PEM files for `https://` members (etcd's `--client-cert-auth`): the CA that signed the members'
 * certificates, and this client's certificate and key.
 *
 * @since 0.2.0
 * @category models
 */
export interface TlsFiles {
  readonly caFile: string
  readonly certFile?: string | undefined
  readonly keyFile?: string | undefined
  /** The setting each file came from, named in errors (default `caFile`, ...). */
  readonly names?: { readonly ca: string; readonly cert: string; readonly key: string } | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Client URLs of the members (`http://127.0.0.1:2379`). */
  readonly endpoints: ReadonlyArray<string>
  /** Deadline of one call (default 5 s). */
  readonly callTimeout?: Duration.DurationInput | undefined
  /** How long a failing member is skipped before it is probed again (default 200 ms). */
  readonly halfOpenAfter?: Duration.DurationInput | undefined
  /** TTL of a campaign's lease when none is given (default 10 s; etcd rounds up to seconds). */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** Prefix of every key in etcd (default none). */
  readonly namespace?: string | undefined
  /** Client certificate and CA for `https://` endpoints. */
  readonly tls?: TlsFiles | undefined
}

const readPem = (file: string, setting: string) =>
  Effect.tryPromise({
    try: () => readFile(file),
    catch: (e) =>
      new StateUnavailable({
        operation: "connect",
        key: file,
        message: `${setting} ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(e)}`,
      }),
  }).pipe(
    Effect.filterOrFail(
      (pem) => pem.includes("-----BEGIN "),
      () => new StateUnavailable({ operation: "connect", key: file, message: `${setting} ${file}: not a PEM file` }),
    ),
  )

const loadTls = (files: TlsFiles) => {
  const names = files.names ?? { ca: "caFile", cert: "certFile", key: "keyFile" }
  return Effect.all({
    rootCertificate: readPem(files.caFile, names.ca),
    certChain: files.certFile === undefined ? Effect.succeed(undefined) : readPem(files.certFile, names.cert),
    privateKey: files.keyFile === undefined ? Effect.succeed(undefined) : readPem(files.keyFile, names.key),
    caSource: Effect.succeed(`${names.ca.split(" ")[0]} ${files.caFile}`),
    certSource: Effect.succeed(
      files.certFile === undefined ? undefined : `${names.cert.split(" ")[0]} ${files.certFile}`,
    ),
  })
}

/**
 * The state service on etcd; the client is closed with the Scope.
 *
 * @example
 * ```ts
 * import { EtcdStore, StateStore } from "@novacron/dwcp-ass"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* StateStore.StateStore
 *   const leadership = yield* store.campaign("coordinator", "node-1")
 *   // Refused with Deposed once this node is no longer the leader.
 *   yield* store.put("placement/vm-7", JSON.stringify({ node: "node-1" }), { fence: leadership })
 * })
 *
 * program.pipe(
 *   Effect.scoped,
 *   Effect.provide(EtcdStore.layer({ endpoints: ["http://127.0.0.1:2379"] })),
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<StateStore, StateUnavailable> =>
  Layer.scoped(
    StateStore,
    Effect.gen(function* () {
      const tls = options.tls === undefined ? undefined : yield* loadTls(options.tls)
      // Loaded on use: the etcd client (gRPC) is not read by a node on its local state, and the
      // agent's start-up time is mostly module loading.
      const Etcd = yield* Effect.promise(() => import("./internal/etcd.js"))
      const backend = yield* Etcd.make({
        endpoints: options.endpoints,
        callTimeout: Duration.decode(options.callTimeout ?? Duration.seconds(5)),
        halfOpenAfter: Duration.decode(options.halfOpenAfter ?? Duration.millis(200)),
        defaultLeaseTtl: Duration.decode(options.leaseTtl ?? Duration.seconds(10)),
        namespace: options.namespace,
        tls,
      })
      return Core.make(backend)
    }),
  )

/**
 * The node's identity for etcd over TLS: its data directory, where `<data_dir>/tls/` holds the
 * cluster CA (`ca.crt`) and the node's certificate and key (`node.crt`, `node.key`).
 *
 * @since 0.2.0
 * @category models
 */
export interface NodeFiles {
  readonly data_dir: string
}

/**
 * The TLS files for these settings: none for `http://` endpoints; for `https://` each of
 * `etcd_ca_file`, `etcd_cert_file`, `etcd_key_file`, or the node's own file when it is empty.
 *
 * @since 0.2.0
 * @category layers
 */
export const tlsFiles = (settings: ConsensusSettings, node?: NodeFiles | undefined): TlsFiles | undefined => {
  if (!usesTls(settings)) return undefined
  const own = (file: string, name: string) =>
    file !== "" ? file : node === undefined ? "" : path.join(node.data_dir, "tls", name)
  const ca = own(settings.etcd_ca_file, "ca.crt")
  const cert = own(settings.etcd_cert_file, "node.crt")
  const key = own(settings.etcd_key_file, "node.key")
  const dir = node === undefined ? "" : " (default: the node's <data_dir>/tls/)"
  return {
    caFile: ca,
    certFile: cert === "" ? undefined : cert,
    keyFile: key === "" ? undefined : key,
    names: {
      ca: `dwcp.consensus.etcd_ca_file${settings.etcd_ca_file === "" ? dir : ""}`,
      cert: `dwcp.consensus.etcd_cert_file${settings.etcd_cert_file === "" ? dir : ""}`,
      key: `dwcp.consensus.etcd_key_file${settings.etcd_key_file === "" ? dir : ""}`,
    },
  }
}

/**
 * {@link layer} from the `dwcp.consensus` section (`etcd_endpoints`, `call_timeout`, `lease_ttl`,
 * and for `https://` endpoints the TLS files, by default the node's own in `<data_dir>/tls/`).
 *
 * @since 0.1.0
 * @category layers
 */
export const fromSettings = (
  settings: ConsensusSettings,
  node?: NodeFiles | undefined,
): Layer.Layer<StateStore, StateUnavailable> =>
  Either.match(options(settings, node), { onLeft: Layer.fail, onRight: layer })

/**
 * The {@link Options} these settings give (what {@link fromSettings} starts); hybrid mode uses
 * them for the site's etcd.
 *
 * @since 0.5.0
 * @category layers
 */
export const options = (
  settings: ConsensusSettings,
  node?: NodeFiles | undefined,
): Either.Either<Options, StateUnavailable> => {
  const tls = tlsFiles(settings, node)
  if (tls !== undefined && tls.caFile === "")
    return Either.left(
      new StateUnavailable({
        operation: "connect",
        key: settings.etcd_endpoints[0] ?? "",
        message: "https:// etcd endpoints need dwcp.consensus.etcd_ca_file (or the node's data_dir for its own CA)",
      }),
    )
  return Either.right({
    endpoints: settings.etcd_endpoints,
    callTimeout: settings.call_timeout,
    leaseTtl: settings.lease_ttl,
    tls,
  })
}
