// source_address.cc - see source_address.h. The replies of a transparently sourced connection are
// routed back by mark, the way TPROXY setups and ztunnel's in-pod mode do, but with the kernel's
// tcp_fwmark_accept instead of iptables CONNMARK: the application's accepted socket inherits the
// delivery socket's mark from its SYN, and every packet it sends is then routed by that mark.
// Packets from outside the pod never carry a mark (a veth crossing scrubs it), so nothing else of
// the pod is affected.
#include "source_address.h"

#include "sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace nodemesh {

namespace {

// One rtnetlink request with its attributes, sent and acknowledged.
class NetlinkRequest {
 public:
  NetlinkRequest(uint16_t type, uint16_t flags, const void* header, size_t header_len) {
    memset(buf_, 0, sizeof(buf_));
    auto* nh = reinterpret_cast<struct nlmsghdr*>(buf_);
    nh->nlmsg_type = type;
    nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    nh->nlmsg_len = NLMSG_LENGTH(header_len);
    memcpy(NLMSG_DATA(nh), header, header_len);
  }

  void U32(uint16_t type, uint32_t value) {
    auto* nh = reinterpret_cast<struct nlmsghdr*>(buf_);
    auto* rta = reinterpret_cast<struct rtattr*>(buf_ + NLMSG_ALIGN(nh->nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = RTA_LENGTH(sizeof(value));
    memcpy(RTA_DATA(rta), &value, sizeof(value));
    nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
  }

  // 0 or the kernel's -errno for the request.
  int Send(int sock) {
    auto* nh = reinterpret_cast<struct nlmsghdr*>(buf_);
    struct sockaddr_nl kernel = {};
    kernel.nl_family = AF_NETLINK;
    if (sendto(sock, buf_, nh->nlmsg_len, 0, reinterpret_cast<struct sockaddr*>(&kernel),
               sizeof(kernel)) < 0)
      return -errno;
    char reply[4096];
    ssize_t n = recv(sock, reply, sizeof(reply), 0);
    if (n < 0) return -errno;
    for (auto* r = reinterpret_cast<struct nlmsghdr*>(reply); NLMSG_OK(r, static_cast<size_t>(n));
         r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_type == NLMSG_ERROR) return reinterpret_cast<struct nlmsgerr*>(NLMSG_DATA(r))->error;
    }
    return -EPROTO;
  }

 private:
  alignas(struct nlmsghdr) char buf_[256];
};

int Rule(int sock, uint32_t mark, uint32_t table, uint32_t pref, bool remove) {
  struct fib_rule_hdr frh = {};
  frh.family = AF_INET;
  frh.action = FR_ACT_TO_TBL;
  NetlinkRequest req(remove ? RTM_DELRULE : RTM_NEWRULE, remove ? 0 : NLM_F_CREATE | NLM_F_EXCL, &frh,
                     sizeof(frh));
  req.U32(FRA_FWMARK, mark);
  req.U32(FRA_FWMASK, 0xffffffff);
  req.U32(FRA_PRIORITY, pref);
  req.U32(FRA_TABLE, table);
  return req.Send(sock);
}

int LocalRoute(int sock, uint32_t table, uint32_t lo, bool remove) {
  struct rtmsg rtm = {};
  rtm.rtm_family = AF_INET;
  rtm.rtm_dst_len = 0;
  rtm.rtm_table = RT_TABLE_UNSPEC;  // the table is FRA/RTA_TABLE: ours is above 255
  rtm.rtm_protocol = RTPROT_STATIC;
  rtm.rtm_scope = RT_SCOPE_HOST;
  rtm.rtm_type = RTN_LOCAL;
  NetlinkRequest req(remove ? RTM_DELROUTE : RTM_NEWROUTE, remove ? 0 : NLM_F_CREATE | NLM_F_EXCL, &rtm,
                     sizeof(rtm));
  req.U32(RTA_TABLE, table);
  req.U32(RTA_OIF, lo);
  return req.Send(sock);
}

int WriteSysctl(const char* path, const char* value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t len = static_cast<ssize_t>(strlen(value));
  int err = write(fd, value, len) == len ? 0 : -errno;
  close(fd);
  return err;
}

// Runs in the target namespace (the calling thread has switched there).
int RouteHere(uint32_t mark, uint32_t table, uint32_t pref, bool remove, const char** op) {
  if (!remove) {
    *op = "set net.ipv4.tcp_fwmark_accept in the pod";
    int err = WriteSysctl("/proc/sys/net/ipv4/tcp_fwmark_accept", "1");
    if (err) return err;
  }
  *op = "find the pod's loopback device";
  unsigned lo = if_nametoindex("lo");
  if (lo == 0) return -errno;
  *op = "open rtnetlink";
  int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0) return -errno;
  *op = remove ? "delete the delivery reply rule" : "add the delivery reply rule";
  int err = Rule(sock, mark, table, pref, remove);
  if (err == (remove ? -ENOENT : -EEXIST)) err = 0;
  if (!err) {
    *op = remove ? "delete the delivery reply route" : "add the delivery reply route";
    err = LocalRoute(sock, table, lo, remove);
    if (err == (remove ? -ESRCH : -EEXIST) || (remove && err == -ENOENT)) err = 0;
  }
  close(sock);
  return err;
}

}  // namespace

int BindSource(int fd, const std::string& ip, const char** op) {
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    *op = "parse source address";
    return -EINVAL;
  }
  int one = 1;
  if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) != 0) {
    *op = "setsockopt IP_TRANSPARENT";
    return -errno;
  }
  // Without it bind() would take an ephemeral port per address up front; connect() picks one that is
  // free for the whole 4-tuple.
  if (setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) != 0) {
    *op = "setsockopt IP_BIND_ADDRESS_NO_PORT";
    return -errno;
  }
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    *op = "bind to the source address";
    return -errno;
  }
  return 0;
}

int RouteDeliveryReplies(int ns_fd, uint32_t mark, uint32_t table, uint32_t pref, bool remove,
                         const char** op) {
  return RunInNetns(
      ns_fd, [&](const char** thread_op) { return RouteHere(mark, table, pref, remove, thread_op); }, op);
}

}  // namespace nodemesh
