// datapath.h - the Datapath N-API object (see datapath.cc).
#ifndef NATIVE_ADDON_DATAPATH_H_
#define NATIVE_ADDON_DATAPATH_H_

#include <napi.h>

#include <memory>

#include "loader.h"

namespace nodemesh {

class Datapath : public Napi::ObjectWrap<Datapath> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, std::unique_ptr<Loader> loader);
  explicit Datapath(const Napi::CallbackInfo& info);

 private:
  static Napi::FunctionReference constructor;
  int WorkloadFd(const Napi::Value& kind) const;
  Napi::Value PlaintextDrops(const Napi::CallbackInfo& info);
  Napi::Value IsAdopted(const Napi::CallbackInfo& info);
  Napi::Value UpdateWorkload(const Napi::CallbackInfo& info);
  Napi::Value DeleteWorkload(const Napi::CallbackInfo& info);
  Napi::Value ListWorkloads(const Napi::CallbackInfo& info);
  Napi::Value UpdatePortMtls(const Napi::CallbackInfo& info);
  Napi::Value DeletePortMtls(const Napi::CallbackInfo& info);
  Napi::Value ListPortMtls(const Napi::CallbackInfo& info);
  Napi::Value SetDestinations(const Napi::CallbackInfo& info);
  Napi::Value SetCaptureMode(const Napi::CallbackInfo& info);
  Napi::Value OriginalDestination(const Napi::CallbackInfo& info);
  Napi::Value KernelObjectsOf(const Napi::CallbackInfo& info);
  Napi::Value SockmapStatus(const Napi::CallbackInfo& info);  // sockmap.cc
  Napi::Value SockmapStats(const Napi::CallbackInfo& info);
  Napi::Value SockPairs(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Uninstall(const Napi::CallbackInfo& info);

  std::unique_ptr<Loader> loader_;
};

}  // namespace nodemesh

#endif  // NATIVE_ADDON_DATAPATH_H_
