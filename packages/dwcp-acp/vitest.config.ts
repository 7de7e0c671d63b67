import { novacronProject } from "@novacron/vitest-config"

export default novacronProject("dwcp-acp", { globalSetup: ["test/global-setup.ts"] })
