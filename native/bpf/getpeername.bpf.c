// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * getpeername.bpf.c - cgroup/getpeername4, attached once at the cgroup v2 root by each agent instance.
 *
 * A redirected socket is connected to 127.0.0.1:<outbound port> in the pod; without this hook the
 * application would see that address from getpeername() (what Node's socket.remoteAddress, curl's
 * %{remote_ip} and access logs read). For a socket of an enrolled workload whose peer is the loopback
 * capture port, answer with the destination the application asked for, from the same
 * {netns cookie, local ip, local port} entry the agent reads. Everything else is left as it is.
 */
#include "maps.h"

SEC("cgroup/getpeername4")
int nm_getpeername4(struct bpf_sock_addr *ctx)
{
	struct nm_flow_key key = {};
	struct nm_orig_dst *orig;
	struct nm_workload *wl;
	struct bpf_sock *sk;
	__u64 cookie;

	if (ctx->user_ip4 != bpf_htonl(0x7f000001))
		return 1;
	cookie = bpf_get_netns_cookie(ctx);
	wl = bpf_map_lookup_elem(&nm_netns, &cookie);
	if (!wl || ctx->user_port != wl->outbound_port)
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
	key.netns_cookie = cookie;
	key.ip4 = sk->src_ip4;
	key.port = bpf_htons((__u16)sk->src_port);
	orig = bpf_map_lookup_elem(&nm_orig_flow, &key);
	if (!orig)
		return 1;
	ctx->user_ip4 = orig->ip4;
	ctx->user_port = orig->port;
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
