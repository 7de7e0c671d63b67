import type { Vm } from "@novacron/vm"
import type * as Api from "../Api.js"
import { Conflict, NotFound, ServiceUnavailable, Unprocessable } from "../ApiError.js"

// A VM record as the API shows it (REST's VmView; gRPC's Vm message is built from it).
export const vmView = (r: Vm.VmRecord): Api.VmView => ({
  id: r.spec.id,
  state: r.state,
  vcpus: r.spec.vcpus,
  memory_mb: r.spec.memory_mb,
  pid: r.pid,
  accel: r.accel,
  term: r.term,
  exit_reason: r.exit_reason,
  created_at: r.created_at,
  updated_at: r.updated_at,
})

// The VM manager's errors as the API's typed errors.
export const vmError = (e: { readonly _tag: string; readonly message: string } & Partial<{ id: string }>) => {
  const id = e.id ?? ""
  switch (e._tag) {
    case "VmNotFound":
      return new NotFound({ kind: "vm", id })
    case "VmAlreadyDefined":
    case "VmInvalidState":
    case "VmOwnershipError":
      return new Conflict({ kind: "vm", id, reason: e.message })
    case "VmInvalidSpec":
    case "VmCapacityExceeded":
      return new Unprocessable({ kind: "vm", id, reason: e.message })
    default:
      return new ServiceUnavailable({ service: "vm", reason: e.message })
  }
}
