// RDMA probe over rdma-core (libibverbs + librdmacm). Built with AMST_HAVE_RDMA when the
// headers were found at build time; otherwise a stub that says so, so the package builds anywhere.
#include <napi.h>
#include <cerrno>
#include <cstring>

#ifdef AMST_HAVE_RDMA
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#endif

namespace {

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array devices = Napi::Array::New(env);
#ifdef AMST_HAVE_RDMA
  out.Set("compiled", true);
  errno = 0;
  int num = 0;
  struct ibv_device** list = ibv_get_device_list(&num);
  if (list == nullptr) {
    int err = errno;
    out.Set("errno", err);
    out.Set("error", std::string("ibv_get_device_list: ") + std::strerror(err));
    out.Set("devices", devices);
    return out;
  }
  for (int i = 0; i < num; i++) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", ibv_get_device_name(list[i]));
    char guid[32];
    snprintf(guid, sizeof guid, "%016llx", (unsigned long long)be64toh(ibv_get_device_guid(list[i])));
    d.Set("guid", guid);
    d.Set("transport", ibv_node_type_str(list[i]->node_type));
    devices.Set(static_cast<uint32_t>(i), d);
  }
  ibv_free_device_list(list);
  out.Set("devices", devices);
  // rdmacm is what would set up connections; check it loads and can create a channel.
  struct rdma_event_channel* ch = rdma_create_event_channel();
  if (ch == nullptr) {
    int err = errno;
    out.Set("cmErrno", err);
    out.Set("cmError", std::string("rdma_create_event_channel: ") + std::strerror(err));
  } else {
    rdma_destroy_event_channel(ch);
  }
#else
  out.Set("compiled", false);
  out.Set("error", "built without rdma-core headers (libibverbs-dev, librdmacm-dev)");
  out.Set("devices", devices);
#endif
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe));
#ifdef AMST_HAVE_RDMA
  exports.Set("compiledWithRdma", true);
#else
  exports.Set("compiledWithRdma", false);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(amst_rdma, Init)
