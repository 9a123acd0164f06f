// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * connect.bpf.c - cgroup/connect4, attached once at the cgroup v2 root by each agent instance.
 *
 * A TCP connect() from an enrolled workload (by netns cookie, else by cgroup id) to a meshed
 * destination is rewritten to 127.0.0.1:<outbound port> in the caller's own netns, where the
 * agent listens through an in-pod socket. The original destination is remembered by socket
 * cookie; sockops re-keys it once the connection is established.
 *
 * An enrolled workload whose in-pod listener could not be opened is held with outbound port 0: its
 * connects to meshed destinations are refused (EPERM) instead of going around the mesh (fail closed).
 * So is a connect whose original destination cannot be remembered.
 *
 * Never redirected: non-TCP sockets, sockets carrying the agent's or its delivery mark (loop avoidance),
 * loopback destinations (which also makes a second agent instance skip what the first one
 * already rewrote).
 */
#include <linux/in.h>
#include "maps.h"

#ifndef SOCK_STREAM
#define SOCK_STREAM 1 /* not in the UAPI headers */
#endif

static __always_inline int nm_is_meshed(__u32 ip4, __u16 port)
{
	struct nm_dst_key key = { .ip4 = ip4, .port = port };
	struct nm_cidr_key cidr = { .prefixlen = 32, .ip4 = ip4 };
	struct nm_config *cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(&nm_dsts, &key))
		return 1;
	key.port = 0;
	if (bpf_map_lookup_elem(&nm_dsts, &key))
		return 1;
	cfg = bpf_map_lookup_elem(&nm_config, &zero);
	if (!cfg || !cfg->all_tcp)
		return 0;
	if (bpf_map_lookup_elem(&nm_excl_ports, &port))
		return 0;
	if (bpf_map_lookup_elem(&nm_excl_cidrs, &cidr))
		return 0;
	return 1;
}

SEC("cgroup/connect4")
int nm_connect4(struct bpf_sock_addr *ctx)
{
	struct nm_orig_dst orig = {};
	struct nm_workload *wl;
	struct bpf_sock *sk;
	__u64 id, cookie;
	__u32 ip4;
	__u16 port;

	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return 1;
	sk = ctx->sk;
	if (!sk || sk->mark == NM_AGENT_MARK || sk->mark == NM_DELIVERY_MARK)
		return 1;
	ip4 = ctx->user_ip4;
	port = (__u16)ctx->user_port;
	if ((bpf_ntohl(ip4) >> 24) == 127)
		return 1;

	id = bpf_get_netns_cookie(ctx);
	wl = bpf_map_lookup_elem(&nm_netns, &id);
	if (!wl) {
		id = bpf_get_current_cgroup_id();
		wl = bpf_map_lookup_elem(&nm_cgroups, &id);
	}
	if (!wl || !nm_is_meshed(ip4, port))
		return 1;
	if (!wl->outbound_port)
		return 0;

	orig.ip4 = ip4;
	orig.port = port;
	cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&nm_orig_sock, &cookie, &orig, BPF_ANY))
		return 0; /* cannot remember it: refuse rather than let it go around the mesh */
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = wl->outbound_port;
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
