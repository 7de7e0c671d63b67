/**
 * Checks CPU, memory and disk against a resource profile and guards the data directory with an exclusive pid lock and port checks.
 *
 * @packageDocumentation
 */
export {}
