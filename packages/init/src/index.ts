/**
 * The NovaCron boot kernel.
 *
 * @packageDocumentation
 */

/** Component descriptors: a name, a phase, a criticality, dependencies and a Layer. */
export * as Component from "./Component.js"
