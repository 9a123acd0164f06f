// sockmap.cc - the Datapath methods of the optional sockmap shortcut (native/bpf/sockmap.bpf.c):
// whether it is attached (or why not), its counters, and the sockets it holds. Read-only: the
// kernel adds and removes the sockets itself.
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>

#include "datapath.h"
#include "mesh_shared.h"

namespace nodemesh {

// sockmapStatus() -> { enabled: boolean, errno: number, op: string, log: string }
Napi::Value Datapath::SockmapStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  bool on = loader_ && loader_->sockmap();
  out.Set("enabled", Napi::Boolean::New(env, on));
  out.Set("errno", Napi::Number::New(env, loader_ ? loader_->sockmap_error() : -EBADF));
  out.Set("op", Napi::String::New(env, loader_ ? loader_->sockmap_op() : ""));
  out.Set("log", Napi::String::New(env, loader_ ? loader_->sockmap_log() : ""));
  return out;
}

// sockmapStats() -> bigint[NM_SM_STAT_COUNT] (enum nm_sm_stat order) | -errno
Napi::Value Datapath::SockmapStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loader_ || !loader_->sockmap()) return Napi::Number::New(env, -ENOENT);
  int fd = loader_->sockmap_map_fd(kSmStats);
  Napi::Array out = Napi::Array::New(env, NM_SM_STAT_COUNT);
  for (uint32_t i = 0; i < NM_SM_STAT_COUNT; i++) {
    uint64_t v = 0;
    if (bpf_map_lookup_elem(fd, &i, &v) != 0) return Napi::Number::New(env, -errno);
    out.Set(i, Napi::BigInt::New(env, v));
  }
  return out;
}

// sockPairs() -> Array<[netnsCookie: bigint, localIp, localPort, remoteIp, remotePort]> | -errno
Napi::Value Datapath::SockPairs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loader_ || !loader_->sockmap()) return Napi::Number::New(env, -ENOENT);
  int fd = loader_->sockmap_map_fd(kSmPairs);
  Napi::Array out = Napi::Array::New(env);
  struct nm_pair_key key = {}, next = {};
  void* prev = nullptr;
  uint32_t n = 0;
  char lip[INET_ADDRSTRLEN], rip[INET_ADDRSTRLEN];
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    inet_ntop(AF_INET, &next.local_ip4, lip, sizeof(lip));
    inet_ntop(AF_INET, &next.remote_ip4, rip, sizeof(rip));
    Napi::Array e = Napi::Array::New(env, 5);
    e.Set(0u, Napi::BigInt::New(env, static_cast<uint64_t>(next.netns_cookie)));
    e.Set(1u, Napi::String::New(env, lip));
    e.Set(2u, Napi::Number::New(env, ntohs(next.local_port)));
    e.Set(3u, Napi::String::New(env, rip));
    e.Set(4u, Napi::Number::New(env, ntohs(next.remote_port)));
    out.Set(n++, e);
    key = next;
    prev = &key;
  }
  return out;
}

}  // namespace nodemesh
