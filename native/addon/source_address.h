// source_address.h - delivering a connection to the application from the client pod's address
// (IP_TRANSPARENT), and the pod-namespace routing that brings the application's replies back to it.
// Free of N-API; every function returns 0 on success or -errno, with the failing step in *op.
#ifndef NATIVE_ADDON_SOURCE_ADDRESS_H_
#define NATIVE_ADDON_SOURCE_ADDRESS_H_

#include <cstdint>
#include <string>

namespace nodemesh {

// Binds the unconnected TCP socket fd to ip (IPv4 dotted quad) with IP_TRANSPARENT, so it may be an
// address this namespace does not own; the port is picked at connect (IP_BIND_ADDRESS_NO_PORT).
int BindSource(int fd, const std::string& ip, const char** op);

// In the namespace ns_fd (on a short-lived thread): net.ipv4.tcp_fwmark_accept=1, so an accepted
// connection whose SYN carried `mark` keeps it; a rule "fwmark mark lookup table" at priority `pref`;
// and "local 0.0.0.0/0 dev lo" in that table, so the application's packets of such a connection, sent
// to the client's (foreign) address, are delivered locally to the transparent socket. Idempotent.
// With remove, takes the rule and the route away again (what is already gone is not an error).
int RouteDeliveryReplies(int ns_fd, uint32_t mark, uint32_t table, uint32_t pref, bool remove,
                         const char** op);

}  // namespace nodemesh

#endif  // NATIVE_ADDON_SOURCE_ADDRESS_H_
