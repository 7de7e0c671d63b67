import { novacronProject } from "@novacron/vitest-config"

// Mutation testing runs the config tests only: PreInit.test.ts boots logging, environment probes and
// resources (seconds per run, other packages' code) and adds nothing to the mutated files' coverage.
export default novacronProject("config", { exclude: ["test/PreInit.test.ts"] })
