import { novacronProject } from "@novacron/vitest-config"

export default novacronProject("migration")
