/**
 * Loads, layers and validates the NovaCron node configuration (YAML/JSON, env, flags) with provenance and redaction.
 *
 * @packageDocumentation
 */
export {}
