import { Membership } from "@novacron/cluster"
import { StateStore } from "@novacron/dwcp-ass"
import { Migrations } from "@novacron/migration"
import { AgentManager, Coordinator, Tasks } from "@novacron/orchestration"
import { VmManager } from "@novacron/vm"
import { Context, Option } from "effect"
import { AgentInfo, TaskSource } from "../ApiSources.js"
import * as OrchestrationSource from "../OrchestrationSource.js"

// What REST and gRPC serve from, taken from the boot's context (each present only when its
// component runs). A TaskSource the host gives wins; otherwise orchestration's tasks.
export const fromContext = (context: Context.Context<never>, nodeId: string) => {
  const get = <I, S>(tag: Context.Tag<I, S>) => Context.getOption(context as Context.Context<I>, tag)
  return {
    vms: get(VmManager.VmManager),
    membership: get(Membership.Membership),
    store: get(StateStore.StateStore),
    agent: get(AgentInfo),
    migrations: get(Migrations.Migrations),
    tasks: Option.orElse(get(TaskSource), () =>
      Option.map(get(Tasks.Tasks), (t) =>
        OrchestrationSource.make(
          t,
          nodeId,
          get(Coordinator.Coordinator),
          get(AgentManager.AgentManager),
          get(Migrations.Migrations),
        ),
      ),
    ),
  }
}
