// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * sockmap.bpf.c - the optional pod-local shortcut (docs/capture.md "Sockmap shortcut"): a second
 * sockops program, attached at the cgroup v2 root like the others, and an sk_msg program attached
 * to the nm_sock_pairs SOCKHASH. Loaded only when the agent asks for it and the kernel has sockmap.
 *
 * Which sockets go into nm_sock_pairs (both ends in an enrolled pod's netns, nothing else):
 *   ACTIVE_ESTABLISHED  - the application's socket that connect4 redirected to 127.0.0.1:<outbound
 *                         port> (it has an nm_orig_sock or nm_orig_flow entry), or the agent's
 *                         delivery socket (NM_DELIVERY_MARK, or NM_AGENT_MARK connecting to the
 *                         pod's own address: local ip == remote ip);
 *   PASSIVE_ESTABLISHED - a socket whose peer (the reverse 4-tuple in the same netns) was added as
 *                         an active end: the agent's accepted socket, or the application's. The
 *                         active end leaves its key in nm_sm_pending, which the passive end takes
 *                         (a sock_ops program cannot look a socket up in the sockhash: that needs
 *                         bpf_sk_release). On loopback the active end is established first
 *                         (SYN-ACK before the final ACK), so the key is always there in time.
 * The sockhash drops a socket itself when it closes (tcp_bpf close/unhash): no close callback.
 *
 * sk_msg: each sendmsg of a socket in the map goes to the peer's receive queue
 * (bpf_msg_redirect_hash with BPF_F_INGRESS) when the peer is in the map. If the peer is not (yet)
 * there, the data goes through TCP as usual, and the socket is marked (nm_sm_tcp) so that it never
 * redirects afterwards: the peer's reader takes queued redirected data before TCP data, so mixing
 * the two on one direction could reorder bytes. The program always returns SK_PASS: a failed
 * lookup means "use TCP", never "drop". SYN, FIN and RST still travel as TCP segments, so
 * connect4, getpeername4, the ingress (STRICT) filter and the close callbacks see what they do
 * today; only payload skips the stack.
 */
#include "maps.h"

#define NM_AF_INET 2

/* Both ends of every short-circuited pod-local connection, by nm_pair_key. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, NM_MAX_SOCK_PAIRS);
	__type(key, struct nm_pair_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_sock_pairs SEC(".maps");

/* Active ends just added, until their passive end takes the entry (LRU: failed handshakes). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NM_MAX_SOCK_PAIRS);
	__type(key, struct nm_pair_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_sm_pending SEC(".maps");

/* Sockets that sent data through TCP once: they never redirect (per-socket, freed with it). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_sm_tcp SEC(".maps");

/* Counters (enum nm_sm_stat), read by the agent and the tests. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NM_SM_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_sm_stats SEC(".maps");

static __always_inline void nm_sm_count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&nm_sm_stats, &idx);

	if (v)
		__sync_fetch_and_add(v, n);
}

/* The ctx field holds the network-order port in its upper 16 bits (little and big endian alike). */
static __always_inline __u16 nm_remote_port(__u32 field)
{
	return (__u16)(field >> 16);
}

static __always_inline int nm_is_mesh_active(struct bpf_sock_ops *skops, struct nm_pair_key *key,
					      struct nm_workload *wl)
{
	struct nm_flow_key flow = {};
	struct bpf_sock *sk = skops->sk;
	__u64 cookie;

	if (!sk)
		return 0;
	if (sk->mark == NM_DELIVERY_MARK)
		return 1;
	if (sk->mark == NM_AGENT_MARK)
		return key->local_ip4 == key->remote_ip4 && (bpf_ntohl(key->remote_ip4) >> 24) != 127;
	if (key->remote_ip4 != bpf_htonl(0x7f000001) || key->remote_port != wl->outbound_port)
		return 0;
	cookie = bpf_get_socket_cookie(skops);
	if (bpf_map_lookup_elem(&nm_orig_sock, &cookie))
		return 1; /* sockops.bpf.c has not re-keyed it yet */
	flow.netns_cookie = key->netns_cookie;
	flow.ip4 = key->local_ip4;
	flow.port = key->local_port;
	return bpf_map_lookup_elem(&nm_orig_flow, &flow) != NULL;
}

/* Takes the pending entry of this passive socket's active peer; 1 when there was one. */
static __always_inline int nm_take_pending_peer(struct nm_pair_key *key)
{
	struct nm_pair_key peer = {
		.netns_cookie = key->netns_cookie,
		.local_ip4 = key->remote_ip4,
		.remote_ip4 = key->local_ip4,
		.local_port = key->remote_port,
		.remote_port = key->local_port,
	};

	return bpf_map_delete_elem(&nm_sm_pending, &peer) == 0;
}

SEC("sockops")
int nm_sockmap_ops(struct bpf_sock_ops *skops)
{
	struct nm_pair_key key = {};
	struct nm_workload *wl;
	__u32 op = skops->op;
	__u8 one = 1;

	if (skops->family != NM_AF_INET)
		return 1;
	if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	key.netns_cookie = bpf_get_netns_cookie(skops);
	wl = bpf_map_lookup_elem(&nm_netns, &key.netns_cookie);
	if (!wl)
		return 1;
	key.local_ip4 = skops->local_ip4;
	key.remote_ip4 = skops->remote_ip4;
	key.local_port = bpf_htons((__u16)skops->local_port);
	key.remote_port = nm_remote_port(skops->remote_port);
	if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ? !nm_is_mesh_active(skops, &key, wl)
						     : !nm_take_pending_peer(&key))
		return 1;
	/*
	 * NOEXIST: never replace an entry. A socket already in another instance's sockhash fails here
	 * (EBUSY: its psock has an sk_msg program), so two instances never both pair a socket.
	 */
	if (bpf_sock_hash_update(skops, &nm_sock_pairs, &key, BPF_NOEXIST) != 0)
		return 1;
	nm_sm_count(NM_SM_INSERTED, 1);
	if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		bpf_map_update_elem(&nm_sm_pending, &key, &one, BPF_ANY);
	return 1;
}

SEC("sk_msg")
int nm_sk_msg(struct sk_msg_md *msg)
{
	struct nm_pair_key peer = {};
	struct bpf_sock *sk = msg->sk;
	__u32 size = msg->size;

	if (msg->family != NM_AF_INET || !sk)
		return SK_PASS;
	if (bpf_sk_storage_get(&nm_sm_tcp, sk, 0, 0)) {
		nm_sm_count(NM_SM_PASSED_MSGS, 1);
		return SK_PASS;
	}
	peer.netns_cookie = bpf_get_netns_cookie(msg);
	peer.local_ip4 = msg->remote_ip4;
	peer.remote_ip4 = msg->local_ip4;
	peer.local_port = nm_remote_port(msg->remote_port);
	peer.remote_port = bpf_htons((__u16)msg->local_port);
	if (bpf_msg_redirect_hash(msg, &nm_sock_pairs, &peer, BPF_F_INGRESS) == SK_PASS) {
		nm_sm_count(NM_SM_REDIRECTED_MSGS, 1);
		nm_sm_count(NM_SM_REDIRECTED_BYTES, size);
		return SK_PASS;
	}
	/* No peer: this byte stream goes through TCP, now and for good (see the top of the file). */
	bpf_sk_storage_get(&nm_sm_tcp, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	nm_sm_count(NM_SM_PASSED_MSGS, 1);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
