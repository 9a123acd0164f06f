/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * maps.h - the BTF-defined maps shared by connect.bpf.c and sockops.bpf.c. Every map is pinned
 * by name (LIBBPF_PIN_BY_NAME) under the instance's pin directory, which libbpf takes from
 * bpf_object_open_opts.pin_root_path: the second object and a restarted agent reuse the pins.
 */
#ifndef NODEMESH_BPF_MAPS_H
#define NODEMESH_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "mesh_shared.h"

/* Enrolled workloads by network-namespace cookie (in-pod redirection, Kmesh style). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_MAX_WORKLOADS);
	__type(key, __u64);
	__type(value, struct nm_workload);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_netns SEC(".maps");

/* Enrolled workloads by cgroup v2 id (exact leaf cgroup of the connecting task). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_MAX_WORKLOADS);
	__type(key, __u64);
	__type(value, struct nm_workload);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_cgroups SEC(".maps");

/* Meshed destinations {ip, port}; port 0 = all ports of the address (VIPs, workload IPs). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_MAX_DSTS);
	__type(key, struct nm_dst_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_dsts SEC(".maps");

/* Runtime capture mode (index 0); changeable without reloading, unlike const volatile rodata. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nm_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_config SEC(".maps");

/* CIDRs never captured in all-TCP mode (longest-prefix match). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, NM_MAX_EXCLUDED_CIDRS);
	__type(key, struct nm_cidr_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_excl_cidrs SEC(".maps");

/* Destination ports (network order) never captured in all-TCP mode. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_MAX_EXCLUDED_PORTS);
	__type(key, __u16);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_excl_ports SEC(".maps");

/* Original destination by socket cookie, written by connect4, read once by sockops. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NM_MAX_FLOWS);
	__type(key, __u64);
	__type(value, struct nm_orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_orig_sock SEC(".maps");

/* Original destination by {netns cookie, app local ip, app local port}, read by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NM_MAX_FLOWS);
	__type(key, struct nm_flow_key);
	__type(value, struct nm_orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_orig_flow SEC(".maps");

/* Plaintext SYNs dropped by ingress.bpf.c (a STRICT port), by netns cookie of the workload; read by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NM_MAX_WORKLOADS);
	__type(key, __u64);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_drops SEC(".maps");

/* Per-port exceptions to a workload's STRICT/PERMISSIVE default, read by ingress.bpf.c. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_MAX_PORT_MTLS);
	__type(key, struct nm_port_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_port_mtls SEC(".maps");

#endif /* NODEMESH_BPF_MAPS_H */
