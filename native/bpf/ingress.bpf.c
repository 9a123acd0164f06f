// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * ingress.bpf.c - cgroup_skb/ingress, attached once at the cgroup v2 root by each agent instance.
 *
 * Enforces PeerAuthentication STRICT in the kernel, per (workload, port): a TCP SYN that arrives at
 * one of an enrolled workload's own listeners through any interface but loopback is dropped when
 * the mode of its destination port is STRICT - plaintext from outside the pod never reaches that
 * port of the application. The mode of a port is its nm_port_mtls entry (netns cookie, port) when
 * there is one, else the workload's default (NM_WL_STRICT in nm_netns). What still passes:
 *   - the agent's in-pod listeners (HBONE 15008, outbound capture): they carry NM_AGENT_MARK;
 *   - connections made inside the pod over loopback, which includes the agent delivering a
 *     tunnelled connection from an in-pod socket;
 *   - every non-SYN segment (replies to the workload's own outbound connections, established flows).
 * A dropped SYN looks like a filtered port to the client: it retries, then times out.
 */
#include <linux/if_ether.h>
#include <linux/in.h>
#include "maps.h"

#define NM_TCP_FLAG_SYN 0x02
#define NM_TCP_FLAG_ACK 0x10

SEC("cgroup_skb/ingress")
int nm_ingress(struct __sk_buff *skb)
{
	struct nm_port_key key = {};
	struct nm_workload *wl;
	struct bpf_sock *sk;
	__u8 vihl, proto, flags;
	__u64 cookie, one = 1, *count;
	__u32 ihl, *mode;
	__u16 dport;
	int strict;

	if (skb->protocol != bpf_htons(ETH_P_IP) || skb->ingress_ifindex == NM_LOOPBACK_IFINDEX)
		return 1;
	sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk); /* a SYN's socket is the listener, a full socket */
	if (!sk || sk->mark == NM_AGENT_MARK)
		return 1;
	/* cgroup_skb ingress sees the packet from its IPv4 header on. */
	if (bpf_skb_load_bytes(skb, 9, &proto, 1) || proto != IPPROTO_TCP)
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &vihl, 1))
		return 1;
	ihl = (vihl & 0x0f) * 4;
	if (ihl < 20 || bpf_skb_load_bytes(skb, ihl + 13, &flags, 1))
		return 1;
	if (!(flags & NM_TCP_FLAG_SYN) || (flags & NM_TCP_FLAG_ACK))
		return 1;
	cookie = bpf_get_netns_cookie(skb);
	wl = bpf_map_lookup_elem(&nm_netns, &cookie);
	if (!wl)
		return 1;
	strict = (wl->flags & NM_WL_STRICT) != 0;
	/* Byte ihl + 13 was readable, so ihl + 2 is; should it fail anyway, drop (fail closed). */
	if (bpf_skb_load_bytes(skb, ihl + 2, &dport, 2)) {
		strict = 1;
	} else {
		key.netns_cookie = cookie;
		key.port = dport; /* network order, as the agent writes it */
		mode = bpf_map_lookup_elem(&nm_port_mtls, &key);
		if (mode)
			strict = *mode != NM_PORT_MTLS_PERMISSIVE;
	}
	if (!strict)
		return 1;
	count = bpf_map_lookup_elem(&nm_drops, &cookie);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&nm_drops, &cookie, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
