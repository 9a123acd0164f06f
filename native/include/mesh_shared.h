/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * mesh_shared.h - every struct, constant and map name that the BPF programs (native/bpf/) and
 * the addon (native/addon/) both use. Nothing here is re-declared by hand anywhere else.
 *
 * Byte order: IPv4 addresses and ports are stored in NETWORK byte order in every map, because
 * that is what the kernel hands the programs (bpf_sock_addr.user_ip4/user_port) and what
 * getpeername() hands the addon; only the BPF sockops side converts local_port (host order).
 */
#ifndef NODEMESH_MESH_SHARED_H
#define NODEMESH_MESH_SHARED_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* SO_MARK the agent puts on its own sockets; connect4 never redirects a socket carrying it. */
#define NM_AGENT_MARK 0x539
/*
 * SO_MARK of the agent's inbound delivery sockets, which connect from the client pod's address
 * (IP_TRANSPARENT): connect4 leaves them alone too, and the pod's routing sends the application's
 * replies on such a connection (they inherit the mark, tcp_fwmark_accept) back over loopback.
 * Distinct from NM_AGENT_MARK, which the agent's egress sockets in the pod carry to leave it.
 */
#define NM_DELIVERY_MARK 0x53a

/* Default in-pod outbound capture listener port (127.0.0.1:15001 inside the pod netns). */
#define NM_DEFAULT_OUTBOUND_PORT 15001

/* Capacities. LRU maps evict the oldest entry when full; the others reject new entries. */
#define NM_MAX_WORKLOADS 4096
#define NM_MAX_DSTS 65536
#define NM_MAX_EXCLUDED_CIDRS 1024
#define NM_MAX_EXCLUDED_PORTS 1024
#define NM_MAX_FLOWS 65536
/* Per-port PeerAuthentication exceptions, all workloads together (a hash map: full = rejected). */
#define NM_MAX_PORT_MTLS 16384

/* Map names (the pinned file names under the pin directory; <= 15 chars, BPF_OBJ_NAME_LEN). */
#define NM_MAP_NETNS "nm_netns"
#define NM_MAP_CGROUPS "nm_cgroups"
#define NM_MAP_DSTS "nm_dsts"
#define NM_MAP_CONFIG "nm_config"
#define NM_MAP_EXCL_CIDRS "nm_excl_cidrs"
#define NM_MAP_EXCL_PORTS "nm_excl_ports"
#define NM_MAP_ORIG_SOCK "nm_orig_sock"
#define NM_MAP_ORIG_FLOW "nm_orig_flow"
#define NM_MAP_DROPS "nm_drops"
#define NM_MAP_PORT_MTLS "nm_port_mtls"
/* The sockmap shortcut's maps (sockmap.bpf.c only: a kernel without sockmap loads none of them). */
#define NM_MAP_SOCK_PAIRS "nm_sock_pairs"
#define NM_MAP_SM_STATS "nm_sm_stats"
#define NM_MAP_SM_TCP "nm_sm_tcp"
#define NM_MAP_SM_PENDING "nm_sm_pending"

/* Program names (as bpftool shows them) and their link pins under the pin directory. */
#define NM_PROG_CONNECT4 "nm_connect4"
#define NM_PROG_SOCKOPS "nm_sockops"
#define NM_PROG_INGRESS "nm_ingress"
#define NM_PROG_GETPEERNAME4 "nm_getpeername4"
#define NM_LINK_CONNECT4 "link_connect4"
#define NM_LINK_SOCKOPS "link_sockops"
#define NM_LINK_INGRESS "link_ingress"
#define NM_LINK_GETPEERNAME4 "link_getpeername4"
/* The optional sockmap shortcut (sockmap.bpf.c): a second sockops program and an sk_msg program. */
#define NM_PROG_SOCKMAP_OPS "nm_sockmap_ops"
#define NM_PROG_SK_MSG "nm_sk_msg"
#define NM_LINK_SOCKMAP_OPS "link_sockmap_ops"

/* Loopback is ifindex 1 in every network namespace. */
#define NM_LOOPBACK_IFINDEX 1

/* Value of nm_netns / nm_cgroups: an enrolled workload. */
struct nm_workload {
	__u16 outbound_port; /* network byte order */
	__u16 flags;         /* NM_WL_* */
	__u32 reserved;
};

/*
 * nm_workload.flags. STRICT (PeerAuthentication mtls.mode STRICT, enrolled by netns): the
 * workload accepts no plaintext connection from outside its own namespace - a TCP SYN that
 * reaches one of the workload's own listeners through a non-loopback interface is dropped. The
 * agent's in-pod listeners (HBONE 15008) carry NM_AGENT_MARK and are never filtered, and the
 * agent delivers tunnelled connections to the application from inside the pod, over loopback.
 */
#define NM_WL_STRICT 0x1

/*
 * Key of nm_port_mtls: one port of one workload (by netns cookie) whose PeerAuthentication mode
 * differs from the workload's default (NM_WL_STRICT or not). The port is the destination port of
 * the SYN as the pod receives it (the target port, what portLevelMtls names).
 */
struct nm_port_key {
	__u64 netns_cookie;
	__u16 port; /* network byte order */
	__u16 pad;  /* must be 0 (keys are compared bytewise) */
	__u32 pad2; /* must be 0 */
};

/*
 * Value of nm_port_mtls. Anything but PERMISSIVE is read as STRICT, so a torn or unknown value
 * can only drop plaintext, never admit it.
 */
#define NM_PORT_MTLS_STRICT 1u
#define NM_PORT_MTLS_PERMISSIVE 2u

/* Key of nm_dsts: a meshed destination; port 0 means every port of this address. */
struct nm_dst_key {
	__u32 ip4;  /* network byte order */
	__u16 port; /* network byte order; 0 = any port */
	__u16 pad;  /* must be 0 (keys are compared bytewise) */
};

/* Value of nm_dsts. */
#define NM_DST_MESHED 1u

/* Value of nm_config (1-entry ARRAY, index 0). */
struct nm_config {
	__u32 all_tcp; /* 1: every TCP destination is meshed except excluded ports/CIDRs */
	__u32 reserved;
};

/* Key of nm_excl_cidrs (LPM trie). */
struct nm_cidr_key {
	__u32 prefixlen; /* LPM tries require the prefix length first */
	__u32 ip4;       /* network byte order */
};

/* Value of nm_orig_sock and nm_orig_flow: the destination the application asked for. */
struct nm_orig_dst {
	__u32 ip4;  /* network byte order */
	__u16 port; /* network byte order */
	__u16 pad;
};

/*
 * Key of nm_orig_flow: the application's socket as the agent sees it from the accepted side
 * (its peer address), qualified by the pod's netns cookie so that two pods using the same
 * 127.0.0.1:<source port> never collide.
 */
struct nm_flow_key {
	__u64 netns_cookie;
	__u32 ip4;  /* network byte order */
	__u16 port; /* network byte order */
	__u16 pad;
};

/*
 * Key of nm_sock_pairs (SOCKHASH): one end of a pod-local mesh connection, as that end sees it.
 * The peer of {netns, local, remote} is {netns, remote, local}; the netns cookie keeps pods that
 * use the same 127.0.0.1 4-tuples apart.
 */
struct nm_pair_key {
	__u64 netns_cookie;
	__u32 local_ip4;   /* network byte order */
	__u32 remote_ip4;  /* network byte order */
	__u16 local_port;  /* network byte order */
	__u16 remote_port; /* network byte order */
	__u32 pad;         /* must be 0 (keys are compared bytewise) */
};

/* Capacity of nm_sock_pairs: two entries per short-circuited connection. */
#define NM_MAX_SOCK_PAIRS 65536

/* Indexes of nm_sm_stats (ARRAY of __u64), counted by the sk_msg program. */
enum nm_sm_stat {
	NM_SM_REDIRECTED_MSGS = 0,  /* sendmsg calls delivered socket to socket */
	NM_SM_REDIRECTED_BYTES = 1, /* their bytes */
	NM_SM_PASSED_MSGS = 2,      /* sendmsg calls of a paired socket that went through TCP */
	NM_SM_INSERTED = 3,         /* sockets added to nm_sock_pairs by sockops */
	NM_SM_STAT_COUNT = 4,
};

#endif /* NODEMESH_MESH_SHARED_H */
