import { defineProject } from "vitest/config"

// Not @novacron/vitest-config's novacronProject: that package re-exports these helpers, and a
// dependency back on it would be a workspace cycle.
export default defineProject({
  test: { name: "testing", include: ["test/**/*.test.ts"], testTimeout: 30_000 },
})
