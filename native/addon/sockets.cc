// sockets.cc - in-namespace sockets (Istio ambient's in-pod listeners): a dedicated thread
// setns(CLONE_NEWNET)s into the pod, creates the socket, and exits; the socket keeps the pod's
// namespace for life, while the Node.js process stays in the node's namespace.
#include "sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>

#include "mesh_shared.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace nodemesh {

namespace {

int OpenNetns(const std::string& path, const char** op) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *op = "open network namespace";
    return -errno;
  }
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    close(fd);
    *op = "open network namespace";
    return type < 0 && errno != ENOTTY ? -errno : -EINVAL;
  }
  return fd;
}

// net.ipv4.tcp_migrate_req=1 in the calling thread's network namespace: when the old agent closes its
// SO_REUSEPORT listener, connections still in its accept queue move to the new agent's listener
// instead of being reset. Best effort (Linux >= 5.14); without it a hand-over may reset a few.
void EnableRequestMigration() {
  int fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (write(fd, "1", 1) != 1) {
    // nothing to do: the hand-over still works, only the accept-queue migration is lost
  }
  close(fd);
}

int MakeSocket(const SocketRequest& req, const char** op) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *op = "socket";
    return -errno;
  }
  int one = 1;
  struct sockaddr_in addr = {};
  int err = 0;
  if (req.mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &req.mark, sizeof(req.mark)) != 0) {
    *op = "setsockopt SO_MARK";
    err = -errno;
  } else if (req.listen) {
    addr.sin_family = AF_INET;
    addr.sin_port = htons(req.port);
    if (inet_pton(AF_INET, req.host.c_str(), &addr.sin_addr) != 1) {
      *op = "parse address";
      err = -EINVAL;
    } else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
      *op = "setsockopt SO_REUSEADDR";
      err = -errno;
    } else if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      // A new agent binds the same in-pod ports while the old one drains (upgrade hand-over).
      *op = "setsockopt SO_REUSEPORT";
      err = -errno;
    } else if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
      *op = "bind";
      err = -errno;
    } else if (listen(fd, req.backlog) != 0) {
      *op = "listen";
      err = -errno;
    }
  }
  if (err) {
    close(fd);
    return err;
  }
  if (req.listen) EnableRequestMigration();
  return fd;
}

}  // namespace

int RunInNetns(int ns_fd, const std::function<int(const char**)>& fn, const char** op) {
  int result = -EIO;
  const char* thread_op = "setns";
  // The thread ends right after; if switching back failed it takes the pod namespace with it.
  std::thread worker([&] {
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0) {
      result = -errno;
      thread_op = "open own network namespace";
      return;
    }
    if (setns(ns_fd, CLONE_NEWNET) != 0) {
      result = -errno;
    } else {
      result = fn(&thread_op);
      setns(self, CLONE_NEWNET);
    }
    close(self);
  });
  worker.join();
  if (result < 0) *op = thread_op;
  return result;
}

int OpenSocketIn(const SocketRequest& req, const char** op) {
  if (req.netns_path.empty()) return MakeSocket(req, op);
  int ns = OpenNetns(req.netns_path, op);
  if (ns < 0) return ns;
  int result = RunInNetns(ns, [&](const char** thread_op) { return MakeSocket(req, thread_op); }, op);
  close(ns);
  return result;
}

int OpenNetnsFd(const std::string& path, const char** op) { return OpenNetns(path, op); }

// Runs on the JS thread, synchronously: while it runs no JavaScript (and so nothing else of this
// process that creates sockets on this thread) can run, and libuv's pool threads keep their own
// namespace. Switching back cannot fail short of the kernel refusing our own namespace fd; if it
// ever did, carrying on would create the agent's next sockets in a pod - abort instead.
int SocketInNetnsFd(int ns_fd, uint32_t mark, const char** op) {
  static int self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self_ns < 0) {
    *op = "open own network namespace";
    return -EBADF;
  }
  if (setns(ns_fd, CLONE_NEWNET) != 0) {
    *op = "setns";
    return -errno;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? -errno : 0;
  if (setns(self_ns, CLONE_NEWNET) != 0) {
    fprintf(stderr, "nodemesh: cannot switch back to the agent's network namespace (errno %d)\n", errno);
    abort();
  }
  if (err) {
    *op = "socket";
    return err;
  }
  if (mark && SetMark(fd, mark) != 0) {
    err = -errno;
    close(fd);
    *op = "setsockopt SO_MARK";
    return err;
  }
  return fd;
}

int NetnsCookieOf(const std::string& netns_path, uint64_t* cookie, const char** op) {
  SocketRequest req;
  req.netns_path = netns_path;
  int fd = OpenSocketIn(req, op);
  if (fd < 0) return fd;
  socklen_t len = sizeof(*cookie);
  int err = getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) == 0 ? 0 : -errno;
  if (err) *op = "getsockopt SO_NETNS_COOKIE";
  close(fd);
  return err;
}

int SetMark(int fd, uint32_t mark) {
  return setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0 ? 0 : -errno;
}

int PeerOf(int fd, uint64_t* netns_cookie, uint32_t* ip4, uint16_t* port) {
  socklen_t len = sizeof(*netns_cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, netns_cookie, &len) != 0) return -errno;
  struct sockaddr_in peer = {};
  len = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<struct sockaddr*>(&peer), &len) != 0) return -errno;
  if (peer.sin_family != AF_INET) return -EAFNOSUPPORT;
  *ip4 = peer.sin_addr.s_addr;
  *port = peer.sin_port;
  return 0;
}

int TrySetns() {
  int result = 0;
  std::thread worker([&] {
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0) {
      result = -errno;
      return;
    }
    if (setns(self, CLONE_NEWNET) != 0) result = -errno;
    close(self);
  });
  worker.join();
  return result;
}

int TrySetMark() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int err = SetMark(fd, NM_AGENT_MARK);
  close(fd);
  return err;
}

}  // namespace nodemesh
