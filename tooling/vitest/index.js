// Shared vitest project settings: resolve workspace packages to their TypeScript sources
// (the "@novacron/source" export condition) so tests need no build of their dependencies.
import { defineProject } from "vitest/config"

/** @param {string} name @param {import("vitest/config").UserWorkspaceConfig["test"]} [test] */
export const novacronProject = (name, test = {}) =>
  defineProject({
    resolve: { conditions: ["@novacron/source", "import", "module", "node", "default"] },
    ssr: { resolve: { conditions: ["@novacron/source", "import", "module", "node", "default"] } },
    test: { name, include: ["test/**/*.test.ts"], testTimeout: 30_000, ...test },
  })
