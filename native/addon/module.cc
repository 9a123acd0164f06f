// module.cc - entry point of nodemesh_native.node. Thin functions over loader.cc and
// sockets.cc: synchronous ones return 0 / a value or -errno; slow ones (BPF load, setns) run in
// a Napi::AsyncWorker whose Execute() touches no JavaScript value and whose promise resolves
// with the result or with { errno, op, log } (the facade turns that into a NativeError).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <napi.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>

#include "datapath.h"
#include "fdcopy.h"
#include "loader.h"
#include "mesh_shared.h"
#include "sockets.h"
#include "source_address.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace nodemesh {

namespace {

Napi::Object Failure(Napi::Env env, int err, const char* op, const std::string& log) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("errno", Napi::Number::New(env, err));
  out.Set("op", Napi::String::New(env, op));
  out.Set("log", Napi::String::New(env, log));
  return out;
}

std::string StringProp(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

// Base of the workers: one deferred promise, an error slot, no JS in Execute().
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void OnOK() override {
    Napi::Env env = Env();
    if (err_ < 0)
      deferred_.Resolve(Failure(env, err_, op_, log_));
    else
      deferred_.Resolve(Result(env));
  }
  virtual Napi::Value Result(Napi::Env env) = 0;

  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  const char* op_ = "";
  std::string log_;
};

class InstallWorker : public PromiseWorker {
 public:
  InstallWorker(Napi::Env env, InstallRequest req)
      : PromiseWorker(env), req_(std::move(req)), loader_(new Loader()) {}
  void Execute() override {
    TakeLibbpfLog();
    err_ = loader_->Install(req_, &op_);
    log_ = TakeLibbpfLog();
  }
  Napi::Value Result(Napi::Env env) override { return Datapath::Wrap(env, std::move(loader_)); }

 private:
  InstallRequest req_;
  std::unique_ptr<Loader> loader_;
};

class SocketWorker : public PromiseWorker {
 public:
  SocketWorker(Napi::Env env, SocketRequest req, bool cookie)
      : PromiseWorker(env), req_(std::move(req)), cookie_mode_(cookie) {}
  void Execute() override {
    if (cookie_mode_) {
      err_ = NetnsCookieOf(req_.netns_path, &cookie_, &op_);
    } else {
      err_ = OpenSocketIn(req_, &op_);
      fd_ = err_;
    }
  }
  Napi::Value Result(Napi::Env env) override {
    if (cookie_mode_) return Napi::BigInt::New(env, cookie_);
    return Napi::Number::New(env, fd_);
  }

 private:
  SocketRequest req_;
  bool cookie_mode_;
  uint64_t cookie_ = 0;
  int fd_ = -1;
};

// install({ connectObj, sockopsObj, ingressObj, getpeernameObj, sockmapObj ("" = none), pinDir,
// cgroupPath }) -> Promise<Datapath | failure>
Napi::Value Install(const Napi::CallbackInfo& info) {
  Napi::Object o = info[0].As<Napi::Object>();
  InstallRequest req{{StringProp(o, "connectObj"), StringProp(o, "sockopsObj"), StringProp(o, "ingressObj"),
                      StringProp(o, "getpeernameObj")},
                     StringProp(o, "sockmapObj"),
                     StringProp(o, "pinDir"),
                     StringProp(o, "cgroupPath")};
  auto* worker = new InstallWorker(info.Env(), std::move(req));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// openSocket({ netnsPath, host, port, backlog, mark, listen }) -> Promise<fd | failure>
Napi::Value OpenSocket(const Napi::CallbackInfo& info) {
  Napi::Object o = info[0].As<Napi::Object>();
  SocketRequest req;
  req.netns_path = StringProp(o, "netnsPath");
  req.host = StringProp(o, "host");
  req.port = static_cast<uint16_t>(o.Get("port").ToNumber().Uint32Value());
  req.backlog = o.Get("backlog").ToNumber().Int32Value();
  req.mark = o.Get("mark").ToNumber().Uint32Value();
  req.listen = o.Get("listen").ToBoolean().Value();
  auto* worker = new SocketWorker(info.Env(), std::move(req), false);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// netnsCookieOf(path) -> Promise<bigint | failure>
Napi::Value NetnsCookie(const Napi::CallbackInfo& info) {
  SocketRequest req;
  req.netns_path = info[0].As<Napi::String>().Utf8Value();
  auto* worker = new SocketWorker(info.Env(), std::move(req), true);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// openNetns(path) -> fd | failure
Napi::Value OpenNetnsJs(const Napi::CallbackInfo& info) {
  const char* op = "open network namespace";
  int fd = OpenNetnsFd(info[0].As<Napi::String>().Utf8Value(), &op);
  if (fd < 0) return Failure(info.Env(), fd, op, "");
  return Napi::Number::New(info.Env(), fd);
}

// socketInNetnsSync(nsFd, mark) -> fd | failure (synchronous; see sockets.cc)
Napi::Value SocketInNetnsSync(const Napi::CallbackInfo& info) {
  const char* op = "socket";
  int fd = SocketInNetnsFd(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Uint32Value(), &op);
  if (fd < 0) return Failure(info.Env(), fd, op, "");
  return Napi::Number::New(info.Env(), fd);
}

// bindSource(fd, ipv4) -> 0 | failure (see source_address.h)
Napi::Value BindSourceJs(const Napi::CallbackInfo& info) {
  const char* op = "bind to the source address";
  int err = BindSource(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::String>().Utf8Value(), &op);
  if (err < 0) return Failure(info.Env(), err, op, "");
  return Napi::Number::New(info.Env(), 0);
}

// routeDeliveryReplies(nsFd, mark, table, pref, remove) -> 0 | failure (synchronous, a short thread)
Napi::Value RouteDeliveryRepliesJs(const Napi::CallbackInfo& info) {
  const char* op = "route delivery replies";
  int err = RouteDeliveryReplies(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Uint32Value(),
                                 info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value(),
                                 info[4].ToBoolean().Value(), &op);
  if (err < 0) return Failure(info.Env(), err, op, "");
  return Napi::Number::New(info.Env(), 0);
}

Napi::Value SetMarkJs(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint32_t mark = info[1].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(info.Env(), SetMark(fd, mark));
}

// isBpffs(path) -> 1 | 0 | -errno
Napi::Value IsBpffs(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  struct statfs st = {};
  if (statfs(path.c_str(), &st) != 0) return Napi::Number::New(info.Env(), -errno);
  return Napi::Number::New(info.Env(), st.f_type == BPF_FS_MAGIC ? 1 : 0);
}

Napi::Value MountBpffs(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int err = mount("bpf", path.c_str(), "bpf", 0, "mode=0700") == 0 ? 0 : -errno;
  return Napi::Number::New(info.Env(), err);
}

// purgePins(pinDir) -> { errno, op }
Napi::Value PurgePinsJs(const Napi::CallbackInfo& info) {
  const char* op = "remove pins";
  int err = PurgePins(info[0].As<Napi::String>().Utf8Value(), &op);
  return Failure(info.Env(), err, op, "");
}

// probe() -> raw facts; the facade decides what is missing and how to say it.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  struct utsname uts = {};
  uname(&uts);
  out.Set("kernelRelease", Napi::String::New(env, uts.release));
  out.Set("btfVmlinux", Napi::Boolean::New(env, access("/sys/kernel/btf/vmlinux", R_OK) == 0));
  TakeLibbpfLog();
  int map_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "nm_probe", 4, 4, 1, nullptr);
  out.Set("capBpf", Napi::Number::New(env, map_fd >= 0 ? 0 : -errno));
  if (map_fd >= 0) close(map_fd);
  out.Set("capNetAdmin", Napi::Number::New(env, TrySetMark()));
  out.Set("capSysAdmin", Napi::Number::New(env, TrySetns()));
  Napi::Object progs = Napi::Object::New(env);
  progs.Set("cgroup_sock_addr",
            libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, nullptr));
  progs.Set("sock_ops", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, nullptr));
  progs.Set("cgroup_skb", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, nullptr));
  out.Set("progTypes", progs);
  // The optional sockmap shortcut: reported apart, a missing piece only turns the shortcut off.
  Napi::Object sm = Napi::Object::New(env);
  sm.Set("prog:sk_msg", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_MSG, nullptr));
  sm.Set("map:sockhash", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, nullptr));
  sm.Set("map:sk_storage", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nullptr));
  sm.Set("sock_ops:sock_hash_update",
         libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sock_hash_update, nullptr));
  sm.Set("sk_msg:msg_redirect_hash",
         libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_redirect_hash, nullptr));
  sm.Set("sk_msg:get_netns_cookie",
         libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_get_netns_cookie, nullptr));
  sm.Set("sk_msg:sk_storage_get",
         libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_sk_storage_get, nullptr));
  out.Set("sockmap", sm);
  struct {
    const char* name;
    bpf_prog_type type;
    bpf_func_id id;
  } helpers[] = {
      {"cgroup_sock_addr:get_netns_cookie", BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
       BPF_FUNC_get_netns_cookie},
      {"cgroup_sock_addr:get_socket_cookie", BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
       BPF_FUNC_get_socket_cookie},
      {"cgroup_sock_addr:get_current_cgroup_id", BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
       BPF_FUNC_get_current_cgroup_id},
      {"sock_ops:get_netns_cookie", BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie},
      {"sock_ops:get_socket_cookie", BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_socket_cookie},
      {"sock_ops:sock_ops_cb_flags_set", BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sock_ops_cb_flags_set},
      {"cgroup_skb:get_netns_cookie", BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_get_netns_cookie},
  };
  Napi::Object h = Napi::Object::New(env);
  for (const auto& probe : helpers)
    h.Set(probe.name, libbpf_probe_bpf_helper(probe.type, probe.id, nullptr));
  out.Set("helpers", h);
  TakeLibbpfLog();
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfLogger();
  exports.Set("Datapath", Datapath::Init(env));
  exports.Set("install", Napi::Function::New(env, Install));
  exports.Set("openSocket", Napi::Function::New(env, OpenSocket));
  exports.Set("netnsCookieOf", Napi::Function::New(env, NetnsCookie));
  exports.Set("setMark", Napi::Function::New(env, SetMarkJs));
  exports.Set("openNetns", Napi::Function::New(env, OpenNetnsJs));
  exports.Set("socketInNetnsSync", Napi::Function::New(env, SocketInNetnsSync));
  exports.Set("isBpffs", Napi::Function::New(env, IsBpffs));
  exports.Set("mountBpffs", Napi::Function::New(env, MountBpffs));
  exports.Set("purgePins", Napi::Function::New(env, PurgePinsJs));
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("copyFdFrom", Napi::Function::New(env, CopyFdFrom));
  exports.Set("listenerAddress", Napi::Function::New(env, ListenerAddress));
  exports.Set("bindSource", Napi::Function::New(env, BindSourceJs));
  exports.Set("routeDeliveryReplies", Napi::Function::New(env, RouteDeliveryRepliesJs));
  exports.Set("agentMark", Napi::Number::New(env, NM_AGENT_MARK));
  exports.Set("deliveryMark", Napi::Number::New(env, NM_DELIVERY_MARK));
  exports.Set("defaultOutboundPort", Napi::Number::New(env, NM_DEFAULT_OUTBOUND_PORT));
  exports.Set("workloadStrictFlag", Napi::Number::New(env, NM_WL_STRICT));
  exports.Set("portMtlsStrict", Napi::Number::New(env, NM_PORT_MTLS_STRICT));
  exports.Set("portMtlsPermissive", Napi::Number::New(env, NM_PORT_MTLS_PERMISSIVE));
  exports.Set("maxPortMtls", Napi::Number::New(env, NM_MAX_PORT_MTLS));
  return exports;
}

}  // namespace

}  // namespace nodemesh

static Napi::Object InitNodemesh(Napi::Env env, Napi::Object exports) {
  return nodemesh::Init(env, exports);
}

NODE_API_MODULE(nodemesh_native, InitNodemesh)
