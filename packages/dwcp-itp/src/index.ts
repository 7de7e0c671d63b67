/**
 * Intelligent task placement for DWCP: a topology map of hosts with failure domains and network distance, filter-then-score placement (binpack, spread, balanced, fragmentation-aware) that explains itself.
 *
 * @packageDocumentation
 */
export {}
