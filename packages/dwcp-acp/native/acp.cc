// Thin, synchronous wrappers around setsockopt/getsockopt on a TCP socket's fd.
// Errors are returned as { errno, message } values, never thrown, so the TypeScript side
// can map them to typed failures (e.g. ENOENT when the congestion module is missing).
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef TCP_CA_NAME_MAX
#define TCP_CA_NAME_MAX 16
#endif

namespace {

Napi::Object ErrnoResult(Napi::Env env, int err) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", false);
  o.Set("errno", err);
  o.Set("code", Napi::String::New(env, std::strerror(err)));
  return o;
}

bool FdArg(const Napi::CallbackInfo& info, int* fd) {
  if (info.Length() < 1 || !info[0].IsNumber()) return false;
  *fd = info[0].As<Napi::Number>().Int32Value();
  return *fd >= 0;
}

Napi::Value GetCongestion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(info, &fd)) return ErrnoResult(env, EBADF);
  char name[TCP_CA_NAME_MAX + 1] = {0};
  socklen_t len = TCP_CA_NAME_MAX;
  if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0) return ErrnoResult(env, errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", true);
  o.Set("value", Napi::String::New(env, std::string(name, strnlen(name, len))));
  return o;
}

// Sets TCP_CONGESTION then reads it back, so the caller sees what the kernel actually uses.
Napi::Value SetCongestion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(info, &fd) || info.Length() < 2 || !info[1].IsString()) return ErrnoResult(env, EINVAL);
  std::string algo = info[1].As<Napi::String>().Utf8Value();
  if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, algo.c_str(), algo.size()) != 0) {
    return ErrnoResult(env, errno);
  }
  return GetCongestion(info);
}

// SO_MAX_PACING_RATE (bytes/s): kernel-side pacing cap, honoured by TCP's internal pacing.
Napi::Value SetMaxPacingRate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(info, &fd) || info.Length() < 2 || !info[1].IsNumber()) return ErrnoResult(env, EINVAL);
  double v = info[1].As<Napi::Number>().DoubleValue();
  unsigned long rate = v < 0 || v >= 1.8e19 ? ~0UL : static_cast<unsigned long>(v);
  if (setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, sizeof(rate)) != 0) return ErrnoResult(env, errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", true);
  return o;
}

Napi::Value TcpInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(info, &fd)) return ErrnoResult(env, EBADF);
  struct tcp_info ti;
  std::memset(&ti, 0, sizeof(ti));
  socklen_t len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return ErrnoResult(env, errno);
  Napi::Object o = Napi::Object::New(env);
  auto n = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  o.Set("ok", true);
  n("length", len);
  n("state", ti.tcpi_state);
  n("caState", ti.tcpi_ca_state);
  n("retransmits", ti.tcpi_retransmits);
  n("probes", ti.tcpi_probes);
  n("backoff", ti.tcpi_backoff);
  n("rtoUs", ti.tcpi_rto);
  n("sndMss", ti.tcpi_snd_mss);
  n("rcvMss", ti.tcpi_rcv_mss);
  n("unacked", ti.tcpi_unacked);
  n("sacked", ti.tcpi_sacked);
  n("lost", ti.tcpi_lost);
  n("retrans", ti.tcpi_retrans);
  n("pmtu", ti.tcpi_pmtu);
  n("rttUs", ti.tcpi_rtt);
  n("rttvarUs", ti.tcpi_rttvar);
  n("sndSsthresh", ti.tcpi_snd_ssthresh);
  n("sndCwnd", ti.tcpi_snd_cwnd);
  n("reordering", ti.tcpi_reordering);
  n("totalRetrans", ti.tcpi_total_retrans);
  // u64 rates and counters: doubles are exact up to 2^53, ample for bytes and bytes/s.
  n("pacingRate", static_cast<double>(ti.tcpi_pacing_rate));
  n("maxPacingRate", ti.tcpi_max_pacing_rate == ~0ULL ? -1 : static_cast<double>(ti.tcpi_max_pacing_rate));
  n("bytesAcked", static_cast<double>(ti.tcpi_bytes_acked));
  n("bytesReceived", static_cast<double>(ti.tcpi_bytes_received));
  n("segsOut", ti.tcpi_segs_out);
  n("segsIn", ti.tcpi_segs_in);
  n("notsentBytes", ti.tcpi_notsent_bytes);
  n("minRttUs", ti.tcpi_min_rtt);
  n("deliveryRate", static_cast<double>(ti.tcpi_delivery_rate));
  o.Set("deliveryRateAppLimited", Napi::Boolean::New(env, ti.tcpi_delivery_rate_app_limited != 0));
  n("busyTimeUs", static_cast<double>(ti.tcpi_busy_time));
  n("rwndLimitedUs", static_cast<double>(ti.tcpi_rwnd_limited));
  n("sndbufLimitedUs", static_cast<double>(ti.tcpi_sndbuf_limited));
  n("delivered", ti.tcpi_delivered);
  n("bytesSent", static_cast<double>(ti.tcpi_bytes_sent));
  n("bytesRetrans", static_cast<double>(ti.tcpi_bytes_retrans));
  n("sndWnd", ti.tcpi_snd_wnd);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getCongestion", Napi::Function::New(env, GetCongestion));
  exports.Set("setCongestion", Napi::Function::New(env, SetCongestion));
  exports.Set("setMaxPacingRate", Napi::Function::New(env, SetMaxPacingRate));
  exports.Set("tcpInfo", Napi::Function::New(env, TcpInfo));
  return exports;
}

}  // namespace

NODE_API_MODULE(dwcp_acp, Init)
