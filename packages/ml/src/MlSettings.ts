/**
 * The `ml:` section of `novacron.yaml`, owned here and composed by `@novacron/config` (imported on
 * this subpath, so the config does not load the engine).
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Duration, Schema } from "effect"

const allowed = (message: string) => ({ message: () => ({ message, override: true }) })
const bool = Schema.Boolean.annotations(allowed("expected true or false"))
const opt = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/**
 * @since 0.1.0
 * @category schemas
 */
export const MlSettings = Schema.Struct({
  /** Off: the agent serves the baselines only and loads no model. */
  enabled: opt(bool, () => true),
  /** The bandwidth model (`.onnx`, with its `.json` metadata beside it); empty: the one `@novacron/dwcp-pba` ships. */
  bandwidth_model: opt(Schema.String.annotations(allowed("expected a path")), () => ""),
  /** A model still loading after this is given up (the baseline stays), so a stuck load is said. */
  load_timeout: opt(Common.Duration, () => Duration.seconds(60)),
  /** Off: placement keeps its policy's first choice; the fragmentation optimiser is not loaded. */
  placement_optimizer: opt(bool, () => true),
  /** Bandwidth history kept per link for predictions (one-second samples). */
  history: opt(Schema.Int.pipe(Schema.between(8, 3600)).annotations(allowed("expected 8..3600")), () => 120),
})

/**
 * @since 0.1.0
 * @category models
 */
export type MlSettings = typeof MlSettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: MlSettings = Schema.decodeUnknownSync(MlSettings)({})
