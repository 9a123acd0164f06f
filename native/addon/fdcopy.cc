// fdcopy.cc - see fdcopy.h. pidfd_open/pidfd_getfd (Linux >= 5.6) have no glibc wrappers on
// Debian 12, so they are called through syscall(2). The copy refers to the same open socket, so
// the listener lives while any process holds it: the agent, the keeper, or both.
#include "fdcopy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace nodemesh {

namespace {

int CopyFd(int pid, int fd) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return -errno;
  int copy = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  int err = copy < 0 ? -errno : 0;
  close(pidfd);
  if (err) return err;
  // pidfd_getfd sets FD_CLOEXEC on the copy already; keep it explicit for older kernels' sake.
  fcntl(copy, F_SETFD, FD_CLOEXEC);
  return copy;
}

}  // namespace

Napi::Value CopyFdFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "copyFdFrom(pid, fd): two numbers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int pid = info[0].As<Napi::Number>().Int32Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  return Napi::Number::New(env, CopyFd(pid, fd));
}

Napi::Value ListenerAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "listenerAddress(fd): a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0)
    return Napi::Number::New(env, -errno);
  int type = 0;
  len = sizeof(type);
  if (!value || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
    return Napi::Number::New(env, -EINVAL);
  struct sockaddr_in addr = {};
  len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len) != 0)
    return Napi::Number::New(env, -errno);
  if (addr.sin_family != AF_INET) return Napi::Number::New(env, -EINVAL);
  char host[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::String::New(env, host));
  out.Set(1u, Napi::Number::New(env, ntohs(addr.sin_port)));
  return out;
}

}  // namespace nodemesh
