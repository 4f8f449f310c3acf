// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rvs_decap.bpf.c - tunnel decapsulation for LVS-TUN real servers, at XDP.
 *
 * A real server of a tunnelling (-i) service receives the client's packet
 * inside an outer IPv4/IPv6 header: IPIP (protocol 4), IPv6-in-IP (41),
 * GUE (UDP to the configured port, 4-byte header without options) or GRE
 * (47, no key/sequence/checksum). Production real servers use the kernel's
 * ipip/ip6_tunnel/fou/gre modules (docs/xdp.md); this program does the same
 * where they are missing: the outer headers addressed to this host are
 * removed and the inner packet continues up the stack as if received
 * directly. Everything else passes untouched.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct decap_config {
	__u16 gue_port_be; /* 0: no GUE */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct decap_config);
} rvs_decap_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rvs_decap_count SEC(".maps");

static __always_inline int strip(struct xdp_md *ctx, int outer, __u8 inner_proto)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	struct ethhdr copy = *eth;
	if (inner_proto == IPPROTO_IPIP)
		copy.h_proto = bpf_htons(ETH_P_IP);
	else if (inner_proto == IPPROTO_IPV6)
		copy.h_proto = bpf_htons(ETH_P_IPV6);
	else
		return XDP_PASS;
	if (bpf_xdp_adjust_head(ctx, outer))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	*eth = copy;
	__u32 z = 0;
	__u64 *n = bpf_map_lookup_elem(&rvs_decap_count, &z);
	if (n)
		__sync_fetch_and_add(n, 1);
	return XDP_PASS;
}

/* After the outer IP header (`ohl` bytes at ETH_HLEN, protocol `proto`). */
static __always_inline int payload(struct xdp_md *ctx, __u32 ohl, __u8 proto)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (proto == IPPROTO_IPIP || proto == IPPROTO_IPV6)
		return strip(ctx, ohl, proto);
	if (proto == IPPROTO_GRE) {
		__u16 *g = data + ETH_HLEN + (ohl & 0x7f);
		if ((void *)(g + 2) > end || g[0] != 0)
			return XDP_PASS;
		if (g[1] == bpf_htons(ETH_P_IP))
			return strip(ctx, ohl + 4, IPPROTO_IPIP);
		if (g[1] == bpf_htons(ETH_P_IPV6))
			return strip(ctx, ohl + 4, IPPROTO_IPV6);
		return XDP_PASS;
	}
	if (proto == IPPROTO_UDP) {
		__u32 z = 0;
		struct decap_config *c = bpf_map_lookup_elem(&rvs_decap_config, &z);
		struct udphdr *u = data + ETH_HLEN + (ohl & 0x7f);
		if (!c || !c->gue_port_be || (void *)(u + 1) + 4 > end || u->dest != c->gue_port_be)
			return XDP_PASS;
		__u8 *g = (__u8 *)(u + 1);
		if (g[0] != 0) /* version 0, data message, no options */
			return XDP_PASS;
		return strip(ctx, ohl + sizeof(*u) + 4, g[1]);
	}
	return XDP_PASS;
}

SEC("xdp")
int rvs_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
			return XDP_PASS;
		return payload(ctx, sizeof(*ip), ip->protocol);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		return payload(ctx, sizeof(*ip6), ip6->nexthdr);
	}
	return XDP_PASS;
}

/* Passes every frame. On veth, frames another program sends with XDP_TX
 * are only delivered to a peer that runs an XDP program (the kernel
 * flushes its XDP_TX queue only toward such a peer), so the peer of a
 * veth the xdp engine is attached to runs this. */
SEC("xdp")
int rvs_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
