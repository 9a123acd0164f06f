// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * sockops.bpf.c - sockops, attached once at the cgroup v2 root by each agent instance.
 *
 * ACTIVE_ESTABLISHED (the application's redirected socket, in the pod netns): move the original
 * destination from the socket-cookie key to {netns cookie, local ip, local port}, which the
 * agent can compute from its accepted socket (SO_NETNS_COOKIE + getpeername), and ask for state
 * callbacks. STATE_CB to TCP_CLOSE: drop the entry. The application's socket reaches TCP_CLOSE
 * only after the agent's side closed (FIN) or on reset/timeout, so the agent has read it by then.
 */
#include "maps.h"

static __always_inline void nm_flow_key_of(struct bpf_sock_ops *skops, struct nm_flow_key *key)
{
	key->netns_cookie = bpf_get_netns_cookie(skops);
	key->ip4 = skops->local_ip4;
	key->port = bpf_htons((__u16)skops->local_port);
	key->pad = 0;
}

SEC("sockops")
int nm_sockops(struct bpf_sock_ops *skops)
{
	struct nm_flow_key key = {};
	struct nm_orig_dst *orig;
	__u64 cookie;

	if (skops->family != 2 /* AF_INET */)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		cookie = bpf_get_socket_cookie(skops);
		orig = bpf_map_lookup_elem(&nm_orig_sock, &cookie);
		if (!orig)
			return 1;
		nm_flow_key_of(skops, &key);
		bpf_map_update_elem(&nm_orig_flow, &key, orig, BPF_ANY);
		bpf_map_delete_elem(&nm_orig_sock, &cookie);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						   BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] != BPF_TCP_CLOSE)
			return 1;
		nm_flow_key_of(skops, &key);
		bpf_map_delete_elem(&nm_orig_flow, &key);
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
