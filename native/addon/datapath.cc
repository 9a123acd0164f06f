// datapath.cc - the Datapath object handed to JavaScript: a thin N-API wrapper around a Loader
// and the map updates. Every method returns 0 / a value, or -errno; the TypeScript facade turns
// -errno into a NativeError that names the operation.
#include "datapath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "mesh_shared.h"
#include "sockets.h"

namespace nodemesh {

namespace {

// Replaces the whole key set of a map: deletes keys absent from `keep`, then writes `keep`.
template <typename K, typename V>
int ReplaceKeys(int fd, const std::vector<K>& keep, const V& value) {
  auto less = [](const K& a, const K& b) { return memcmp(&a, &b, sizeof(K)) < 0; };
  std::set<K, decltype(less)> wanted(less);
  wanted.insert(keep.begin(), keep.end());
  std::vector<K> stale;
  K key, next;
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (!wanted.count(next)) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (const K& k : stale) {
    if (bpf_map_delete_elem(fd, &k) != 0 && errno != ENOENT) return -errno;
  }
  for (const K& k : wanted) {
    if (bpf_map_update_elem(fd, &k, &value, BPF_ANY) != 0) return -errno;
  }
  return 0;
}

int ParseIp4(const Napi::Value& v, uint32_t* out) {
  if (!v.IsString()) return -EINVAL;
  std::string s = v.As<Napi::String>().Utf8Value();
  return inet_pton(AF_INET, s.c_str(), out) == 1 ? 0 : -EINVAL;
}

Napi::Value Errno(Napi::Env env, int err) { return Napi::Number::New(env, err); }

// The nm_port_mtls key of (cookie: bigint, port: number in host order), pads zeroed.
struct nm_port_key PortKey(const Napi::CallbackInfo& info) {
  bool lossless = false;
  struct nm_port_key key = {};
  key.netns_cookie = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  key.port = htons(static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value()));
  return key;
}

}  // namespace

Napi::FunctionReference Datapath::constructor;

Napi::Function Datapath::Init(Napi::Env env) {
  Napi::Function fn = DefineClass(
      env, "Datapath",
      {InstanceMethod("isAdopted", &Datapath::IsAdopted),
       InstanceMethod("updateWorkload", &Datapath::UpdateWorkload),
       InstanceMethod("deleteWorkload", &Datapath::DeleteWorkload),
       InstanceMethod("listWorkloads", &Datapath::ListWorkloads),
       InstanceMethod("updatePortMtls", &Datapath::UpdatePortMtls),
       InstanceMethod("deletePortMtls", &Datapath::DeletePortMtls),
       InstanceMethod("listPortMtls", &Datapath::ListPortMtls),
       InstanceMethod("setDestinations", &Datapath::SetDestinations),
       InstanceMethod("setCaptureMode", &Datapath::SetCaptureMode),
       InstanceMethod("originalDestination", &Datapath::OriginalDestination),
       InstanceMethod("kernelObjects", &Datapath::KernelObjectsOf),
       InstanceMethod("plaintextDrops", &Datapath::PlaintextDrops),
       InstanceMethod("sockmapStatus", &Datapath::SockmapStatus),
       InstanceMethod("sockmapStats", &Datapath::SockmapStats),
       InstanceMethod("sockPairs", &Datapath::SockPairs),
       InstanceMethod("close", &Datapath::Close),
       InstanceMethod("uninstall", &Datapath::Uninstall)});
  constructor = Napi::Persistent(fn);
  constructor.SuppressDestruct();
  return fn;
}

Napi::Object Datapath::Wrap(Napi::Env env, std::unique_ptr<Loader> loader) {
  Napi::Object obj = constructor.New({});
  Unwrap(obj)->loader_ = std::move(loader);
  return obj;
}

Datapath::Datapath(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Datapath>(info) {}

int Datapath::WorkloadFd(const Napi::Value& kind) const {
  if (!loader_ || !loader_->loaded()) return -EBADF;
  return loader_->map_fd(kind.As<Napi::Number>().Int32Value() == 1 ? kMapCgroups : kMapNetns);
}

Napi::Value Datapath::IsAdopted(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), loader_ && loader_->adopted());
}

// updateWorkload(kind: 0 netns | 1 cgroup, id: bigint, outboundPort: number, flags: number)
Napi::Value Datapath::UpdateWorkload(const Napi::CallbackInfo& info) {
  int fd = WorkloadFd(info[0]);
  if (fd < 0) return Errno(info.Env(), fd);
  bool lossless = false;
  uint64_t id = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  struct nm_workload wl = {};
  wl.outbound_port = htons(static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()));
  wl.flags = static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value());
  int err = bpf_map_update_elem(fd, &id, &wl, BPF_ANY) == 0 ? 0 : -errno;
  return Errno(info.Env(), err);
}

Napi::Value Datapath::DeleteWorkload(const Napi::CallbackInfo& info) {
  int fd = WorkloadFd(info[0]);
  if (fd < 0) return Errno(info.Env(), fd);
  bool lossless = false;
  uint64_t id = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  int err = bpf_map_delete_elem(fd, &id) == 0 || errno == ENOENT ? 0 : -errno;
  return Errno(info.Env(), err);
}

// listWorkloads(kind) -> Array<[id: bigint, outboundPort: number, flags: number]>
Napi::Value Datapath::ListWorkloads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = WorkloadFd(info[0]);
  if (fd < 0) return Errno(env, fd);
  Napi::Array out = Napi::Array::New(env);
  uint64_t key = 0, next = 0;
  void* prev = nullptr;
  uint32_t n = 0;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    struct nm_workload wl = {};
    if (bpf_map_lookup_elem(fd, &next, &wl) == 0) {
      Napi::Array pair = Napi::Array::New(env, 3);
      pair.Set(0u, Napi::BigInt::New(env, next));
      pair.Set(1u, Napi::Number::New(env, ntohs(wl.outbound_port)));
      pair.Set(2u, Napi::Number::New(env, wl.flags));
      out.Set(n++, pair);
    }
    key = next;
    prev = &key;
  }
  return out;
}

// updatePortMtls(cookie: bigint, port: number, mode: NM_PORT_MTLS_*) -> 0 | -errno (E2BIG: map full)
Napi::Value Datapath::UpdatePortMtls(const Napi::CallbackInfo& info) {
  if (!loader_ || !loader_->loaded()) return Errno(info.Env(), -EBADF);
  struct nm_port_key key = PortKey(info);
  uint32_t mode = info[2].As<Napi::Number>().Uint32Value();
  int fd = loader_->map_fd(kMapPortMtls);
  return Errno(info.Env(), bpf_map_update_elem(fd, &key, &mode, BPF_ANY) == 0 ? 0 : -errno);
}

// deletePortMtls(cookie: bigint, port: number) -> 0 | -errno; an absent entry is not an error.
Napi::Value Datapath::DeletePortMtls(const Napi::CallbackInfo& info) {
  if (!loader_ || !loader_->loaded()) return Errno(info.Env(), -EBADF);
  struct nm_port_key key = PortKey(info);
  int fd = loader_->map_fd(kMapPortMtls);
  return Errno(info.Env(), bpf_map_delete_elem(fd, &key) == 0 || errno == ENOENT ? 0 : -errno);
}

// listPortMtls() -> Array<[cookie: bigint, port: number, mode: number]> | -errno
Napi::Value Datapath::ListPortMtls(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loader_ || !loader_->loaded()) return Errno(env, -EBADF);
  int fd = loader_->map_fd(kMapPortMtls);
  Napi::Array out = Napi::Array::New(env);
  struct nm_port_key key = {}, next = {};
  void* prev = nullptr;
  uint32_t n = 0, mode = 0;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, &mode) == 0) {
      Napi::Array entry = Napi::Array::New(env, 3);
      entry.Set(0u, Napi::BigInt::New(env, static_cast<uint64_t>(next.netns_cookie)));
      entry.Set(1u, Napi::Number::New(env, ntohs(next.port)));
      entry.Set(2u, Napi::Number::New(env, mode));
      out.Set(n++, entry);
    }
    key = next;
    prev = &key;
  }
  return out;
}

// setDestinations(addresses: string[], ports: number[]) - replaces the meshed set.
Napi::Value Datapath::SetDestinations(const Napi::CallbackInfo& info) {
  if (!loader_ || !loader_->loaded()) return Errno(info.Env(), -EBADF);
  Napi::Array addrs = info[0].As<Napi::Array>();
  Napi::Array ports = info[1].As<Napi::Array>();
  std::vector<nm_dst_key> keys(addrs.Length());
  for (uint32_t i = 0; i < addrs.Length(); i++) {
    keys[i] = {};
    if (ParseIp4(addrs.Get(i), &keys[i].ip4)) return Errno(info.Env(), -EINVAL);
    keys[i].port = htons(static_cast<uint16_t>(ports.Get(i).As<Napi::Number>().Uint32Value()));
  }
  uint32_t meshed = NM_DST_MESHED;
  return Errno(info.Env(), ReplaceKeys(loader_->map_fd(kMapDsts), keys, meshed));
}

// setCaptureMode(allTcp: boolean, excludePorts: number[], cidrAddrs: string[], prefixes: number[])
Napi::Value Datapath::SetCaptureMode(const Napi::CallbackInfo& info) {
  if (!loader_ || !loader_->loaded()) return Errno(info.Env(), -EBADF);
  Napi::Array ports_in = info[1].As<Napi::Array>();
  Napi::Array addrs = info[2].As<Napi::Array>();
  Napi::Array prefixes = info[3].As<Napi::Array>();
  std::vector<uint16_t> ports(ports_in.Length());
  for (uint32_t i = 0; i < ports_in.Length(); i++)
    ports[i] = htons(static_cast<uint16_t>(ports_in.Get(i).As<Napi::Number>().Uint32Value()));
  std::vector<nm_cidr_key> cidrs(addrs.Length());
  for (uint32_t i = 0; i < addrs.Length(); i++) {
    cidrs[i] = {};
    if (ParseIp4(addrs.Get(i), &cidrs[i].ip4)) return Errno(info.Env(), -EINVAL);
    cidrs[i].prefixlen = prefixes.Get(i).As<Napi::Number>().Uint32Value();
  }
  uint8_t one = 1;
  // Exclusions first, mode last: turning all-TCP on never captures a port about to be excluded.
  int err = ReplaceKeys(loader_->map_fd(kMapExclPorts), ports, one);
  if (!err) err = ReplaceKeys(loader_->map_fd(kMapExclCidrs), cidrs, one);
  if (!err) {
    uint32_t zero = 0;
    struct nm_config cfg = {};
    cfg.all_tcp = info[0].ToBoolean().Value() ? 1 : 0;
    if (bpf_map_update_elem(loader_->map_fd(kMapConfig), &zero, &cfg, BPF_ANY) != 0) err = -errno;
  }
  return Errno(info.Env(), err);
}

// originalDestination(fd) -> [address, port] | null (not redirected) | -errno
Napi::Value Datapath::OriginalDestination(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loader_ || !loader_->loaded()) return Errno(env, -EBADF);
  struct nm_flow_key key = {};
  uint64_t cookie = 0;
  int err = PeerOf(info[0].As<Napi::Number>().Int32Value(), &cookie, &key.ip4, &key.port);
  if (err) return Errno(env, err);
  key.netns_cookie = cookie;
  struct nm_orig_dst orig = {};
  if (bpf_map_lookup_elem(loader_->map_fd(kMapOrigFlow), &key, &orig) != 0)
    return errno == ENOENT ? env.Null() : Errno(env, -errno);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &orig.ip4, text, sizeof(text));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::String::New(env, text));
  out.Set(1u, Napi::Number::New(env, ntohs(orig.port)));
  return out;
}

// plaintextDrops() -> Array<[netnsCookie: bigint, drops: bigint]> | -errno
Napi::Value Datapath::PlaintextDrops(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loader_ || !loader_->loaded()) return Errno(env, -EBADF);
  int fd = loader_->map_fd(kMapDrops);
  Napi::Array out = Napi::Array::New(env);
  uint64_t key = 0, next = 0, count = 0;
  void* prev = nullptr;
  uint32_t n = 0;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, &count) == 0) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::BigInt::New(env, next));
      pair.Set(1u, Napi::BigInt::New(env, count));
      out.Set(n++, pair);
    }
    key = next;
    prev = &key;
  }
  return out;
}

Napi::Value Datapath::KernelObjectsOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loader_ || !loader_->loaded()) return Errno(env, -EBADF);
  KernelObjects objs;
  int err = loader_->Objects(&objs);
  if (err) return Errno(env, err);
  auto array = [&](const std::vector<uint32_t>& ids) {
    Napi::Array a = Napi::Array::New(env, ids.size());
    for (uint32_t i = 0; i < ids.size(); i++) a.Set(i, Napi::Number::New(env, ids[i]));
    return a;
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("progs", array(objs.progs));
  out.Set("maps", array(objs.maps));
  out.Set("links", array(objs.links));
  return out;
}

Napi::Value Datapath::Close(const Napi::CallbackInfo& info) {
  if (loader_) loader_->Close();
  return info.Env().Undefined();
}

// uninstall() -> 0 | -errno; `uninstallOp` names the failing step.
Napi::Value Datapath::Uninstall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!loader_) return Errno(env, -EBADF);
  const char* op = "uninstall";
  int err = loader_->Uninstall(&op);
  Napi::Object out = Napi::Object::New(env);
  out.Set("errno", Napi::Number::New(env, err));
  out.Set("op", Napi::String::New(env, op));
  return out;
}

}  // namespace nodemesh
