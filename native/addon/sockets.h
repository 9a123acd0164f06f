// sockets.h - network-namespace and socket primitives, free of N-API (run on worker threads).
// Every function returns a value >= 0 on success or -errno.
#ifndef NATIVE_ADDON_SOCKETS_H_
#define NATIVE_ADDON_SOCKETS_H_

#include <cstdint>
#include <functional>
#include <string>

namespace nodemesh {

struct SocketRequest {
  std::string netns_path;  // empty: the caller's own namespace
  std::string host;        // IPv4 dotted quad, for listen
  uint16_t port = 0;
  int backlog = 511;
  uint32_t mark = 0;       // SO_MARK to set (0: none)
  bool listen = false;     // false: an unconnected TCP socket (for an outgoing connection)
};

// Runs fn inside the network namespace ns_fd on a short-lived thread of its own (the calling thread
// never changes namespace); fn's result, with *op set to the failing step when it is negative.
int RunInNetns(int ns_fd, const std::function<int(const char**)>& fn, const char** op);

// Creates (and binds + listens, if asked) a TCP socket inside req.netns_path on a short-lived
// thread that setns()es and never returns the calling thread's namespace to anyone else.
int OpenSocketIn(const SocketRequest& req, const char** op);

// An fd of the network namespace at path (O_RDONLY|O_CLOEXEC), checked to be a netns.
int OpenNetnsFd(const std::string& path, const char** op);

// An unconnected TCP socket (carrying `mark` when non-zero) created inside the namespace ns_fd
// by switching the CALLING thread there and straight back. For the per-connection path, where a
// thread per socket costs ~200 us of CPU; see the comment at the definition for why it is safe.
int SocketInNetnsFd(int ns_fd, uint32_t mark, const char** op);

// The cookie of the network namespace at netns_path (through a socket opened in it).
int NetnsCookieOf(const std::string& netns_path, uint64_t* cookie, const char** op);

int SetMark(int fd, uint32_t mark);

// SO_NETNS_COOKIE + getpeername of an accepted IPv4 socket; ip4/port in network order.
int PeerOf(int fd, uint64_t* netns_cookie, uint32_t* ip4, uint16_t* port);

// 0 when the capability is effectively held, probed by doing what needs it, else -errno.
int TrySetns();
int TrySetMark();

}  // namespace nodemesh

#endif  // NATIVE_ADDON_SOCKETS_H_
