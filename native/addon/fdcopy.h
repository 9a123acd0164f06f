// fdcopy.h - copying a file descriptor out of another process (pidfd_getfd), and checking that an
// fd is a listening IPv4 TCP socket: how the socket keeper holds the in-pod listeners across an
// agent crash and how the next agent takes them back (agent/keeper/).
#pragma once

#include <napi.h>

namespace nodemesh {

// copyFdFrom(pid, fd) -> new fd in this process, or -errno (EPERM: no ptrace right; EBADF: no such fd).
Napi::Value CopyFdFrom(const Napi::CallbackInfo& info);
// listenerAddress(fd) -> ["a.b.c.d", port] when fd is a listening IPv4 TCP socket, else -errno
// (ENOTSOCK, EINVAL when it is a socket that does not listen or is not TCP/IPv4).
Napi::Value ListenerAddress(const Napi::CallbackInfo& info);

}  // namespace nodemesh
