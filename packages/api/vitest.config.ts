import { defineProject } from "vitest/config"

// As in packages/orchestration: the shared settings list "import" among the conditions, which
// vitest hands to Node, and pg (loaded through @novacron/orchestration) then gets pg-pool's ES
// module from its CommonJS require and fails. Vite adds import/require per importer by itself.
const conditions = ["@novacron/source", "node", "default"]
export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: { name: "api", include: ["test/**/*.test.ts"], testTimeout: 30_000 },
})
