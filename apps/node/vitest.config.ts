import { novacronProject } from "@novacron/vitest-config"

// These tests spawn the built agent (dist/main.js, which runs dist/cli.cjs): `npm test` builds before running them.
export default novacronProject("node", { testTimeout: 60_000, hookTimeout: 60_000 })
