// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rvs_xdp.bpf.c - the xdp engine's data path: LVS NAT (-m), direct routing
 * (-g) and tunnelling (-i: IPIP, GUE, GRE) for IPv4 and IPv6, TCP and UDP,
 * at the XDP hook of the director's interface.
 *
 * For each frame:
 *   0. a frame not addressed to the interface's MAC (rvs_ifmac: another
 *      host's, broadcast, multicast) goes to the kernel unchanged;
 *   1. parse Ethernet / IPv4 (no options, no fragments) or IPv6 (no
 *      extension headers) / TCP, UDP or an ICMP error; anything else, and
 *      IPv4 options, fragments and IPv6 extension headers, go to the kernel
 *      (XDP_PASS) unchanged; truncated headers and lengths that disagree
 *      with the frame are dropped;
 *   2. a request of a known connection (conn4/conn6, keyed by the client
 *      side): run the TCP state machine of rvs-conn (tcp_states.h, generated
 *      from it at build time), count, forward with the entry's real server;
 *   3. a NAT reply (nat4/nat6, keyed by the real-server side): source back
 *      to the virtual address and port, forward to the client (no
 *      neighbour entry toward it yet: userspace sends it through the
 *      kernel);
 *   4. a first packet of a virtual service: services with RVS_SVC_RING take
 *      the next real server of the ring userspace computed with the
 *      service's own scheduler (rr, wrr: the kernel's exact order), create
 *      the entry and forward; every other service hands the packet to
 *      userspace (ring buffer, bounded per CPU) which schedules it through
 *      rvs-conn, installs the entry and re-injects the packet;
 *   5. ICMP errors about a connection go to the side they concern.
 * Userspace expires idle entries with the table's timeouts.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "rvs_xdp.h"
#include "tcp_states.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
/* linux/icmp.h pulls in libc headers: the two headers are declared here. */
struct icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 rest;
};
struct icmp6hdr {
	__u8 icmp6_type;
	__u8 icmp6_code;
	__u16 icmp6_cksum;
	__u32 rest;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_TIME_EXCEEDED 11
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#define TCP_S_CLOSE 6
#define TCP_S_TIME_WAIT 5
#define TCP_S_FIN_WAIT 4

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_MAX_SERVICES);
	__type(key, struct rvs_svc_key);
	__type(value, struct rvs_svc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_svc_pos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_RING_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rvs_dest);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_dests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rvs_nh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_nexthops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 20);
	__type(key, struct rvs_conn4_key);
	__type(value, struct rvs_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_conn4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 18);
	__type(key, struct rvs_conn6_key);
	__type(value, struct rvs_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_conn6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 20);
	__type(key, struct rvs_nat4_key);
	__type(value, struct rvs_nat4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_nat4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 18);
	__type(key, struct rvs_nat6_key);
	__type(value, struct rvs_nat6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_nat6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rvs_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, RVS_MAX_MARK_NETS);
	__type(key, struct rvs_mark_key);
	__type(value, struct rvs_marks);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_marks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_ifmac);
} rvs_ifmac SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_addrs SEC(".maps");

struct punt_budget {
	__u64 window;
	__u32 used;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct punt_budget);
} rvs_punt_budget SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} rvs_events SEC(".maps");

/* ---- checksums (RFC 1624 incremental updates on raw 16-bit words) ---- */

static __always_inline __u16 csum_fold(__u32 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)c;
}

static __always_inline void csum_replace2(__u16 *sum, __u16 old, __u16 new)
{
	__u32 c = (__u16)~*sum;
	c += (__u16)~old;
	c += new;
	*sum = ~csum_fold(c);
}

static __always_inline void csum_replace4(__u16 *sum, __u32 old, __u32 new)
{
	csum_replace2(sum, old >> 16, new >> 16);
	csum_replace2(sum, old & 0xffff, new & 0xffff);
}

static __always_inline void csum_replace16(__u16 *sum, const __u8 *old, const __u8 *new)
{
	const __u16 *o = (const __u16 *)old, *n = (const __u16 *)new;
#pragma unroll
	for (int i = 0; i < 8; i++)
		csum_replace2(sum, o[i], n[i]);
}

/* UDP over IPv4: a zero checksum means "none" and stays zero; a computed
 * zero is sent as 0xffff. */
static __always_inline void udp_fix(__u16 *sum, __u16 before)
{
	if (before && !*sum)
		*sum = 0xffff;
}

static __always_inline __u16 ip4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 c = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		c += w[i];
	return ~csum_fold(c);
}

static __always_inline void copy16(__u8 *d, const __u8 *s)
{
	__builtin_memcpy(d, s, 16);
}

/* ctx->ingress_ifindex, read so that clang cannot turn it into an access
 * through a modified context pointer (which the verifier refuses). */
static __always_inline __u32 ingress_ifindex(struct xdp_md *ctx)
{
	__u32 v;
	asm volatile("%0 = *(u32 *)(%1 + 12)" : "=r"(v) : "r"(ctx));
	return v;
}

/* The entries' clock: jiffies (bpf_jiffies64, which the verifier turns
 * into a load of the kernel's counter; the coarse clock's helper costs
 * ~30 ns a packet in a VM, a fine read more). Idle timeouts are seconds;
 * userspace converts with the jiffy's length (Datapath::now_units). */
static __always_inline __u32 now_units(void)
{
	return (__u32)bpf_jiffies64();
}

/* ---- the pieces of a parsed packet ---- */

struct flow {
	__u8 af;
	__u8 proto;
	__u8 tcpflags;
	__u8 icmp;   /* the packet is an ICMP error about this flow */
	__u8 secure; /* the secure_tcp table applies (RVS_CFG_SECURE_TCP) */
	__u8 pad[3];
	__u16 sport; /* network order */
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 iplen; /* IP total length (IPv6: header + payload) */
	__u32 l4off; /* offset of the transport header (ICMP: of the ICMP header) */
};

static __always_inline struct rvs_config *config(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&rvs_config, &z);
}

/* The pre-filter bits (RVS_ADDR_*) of address `a` (see rvs_xdp.h). */
static __always_inline __u32 addr_bits(__u8 af, const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;
	__u32 x = w[0];
	if (af == RVS_AF_INET6)
		x ^= w[1] ^ w[2] ^ w[3];
	__u32 h = (x * 0x9e3779b1u) >> 16;
	__u32 k = h >> 5;
	__u64 *m = bpf_map_lookup_elem(&rvs_addrs, &k);
	if (!m)
		return RVS_ADDR_VIP | RVS_ADDR_NATRS;
	return (*m >> ((h & 31) * 2)) & 3;
}

static __always_inline void count_in(__u32 dest, __u32 bytes, int newconn)
{
	struct rvs_stats *s = bpf_map_lookup_elem(&rvs_stats, &dest);
	if (!s)
		return;
	s->inpkts++;
	s->inbytes += bytes;
	if (newconn)
		s->conns++;
}

static __always_inline void count_out(__u32 dest, __u32 bytes)
{
	struct rvs_stats *s = bpf_map_lookup_elem(&rvs_stats, &dest);
	if (!s)
		return;
	s->outpkts++;
	s->outbytes += bytes;
}

static __always_inline void neigh_event(__u32 dest)
{
	struct rvs_event *e = bpf_ringbuf_reserve(&rvs_events, sizeof(*e), 0);
	if (!e)
		return;
	e->kind = RVS_EV_NEIGH;
	e->len = 0;
	e->ifindex = 0;
	e->dest = dest;
	bpf_ringbuf_submit(e, 0);
}

/* The next hop toward real server `slot`, cached from the FIB. */
static __always_inline struct rvs_nh *dest_nh(struct xdp_md *ctx, __u32 slot, struct rvs_dest *d)
{
	struct rvs_nh *nh = bpf_map_lookup_elem(&rvs_nexthops, &slot);
	if (!nh)
		return 0;
	if (nh->valid)
		return nh;
	struct bpf_fib_lookup p = {};
	p.ifindex = ingress_ifindex(ctx);
	if (d->af == RVS_AF_INET) {
		p.family = AF_INET;
		__builtin_memcpy(&p.ipv4_dst, d->addr, 4);
	} else {
		p.family = AF_INET6;
		__builtin_memcpy(p.ipv6_dst, d->addr, 16);
	}
	struct bpf_fib_lookup q = p;
	int rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			neigh_event(slot);
		return 0;
	}
	/* The route's MTU: asked with a length no route carries, the helper
	 * answers "fragmentation needed" with the MTU (once per fill). */
	q.tot_len = 0xffff;
	__u16 mtu = 0;
	if (bpf_fib_lookup(ctx, &q, sizeof(q), 0) == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		mtu = q.mtu_result;
	__builtin_memcpy(nh->dmac, p.dmac, 6);
	__builtin_memcpy(nh->smac, p.smac, 6);
	nh->ifindex = p.ifindex;
	nh->mtu = mtu;
	nh->valid = 1;
	return nh;
}

static __always_inline int xmit(struct xdp_md *ctx, const __u8 *dmac, const __u8 *smac, __u32 ifindex)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, dmac, 6);
	__builtin_memcpy(eth->h_source, smac, 6);
	if (ifindex == ingress_ifindex(ctx))
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

/* ---- events for userspace ---- */

/* Hands the frame to userspace as event `kind` (within the per-CPU
 * budget) and drops it here. A frame longer than RVS_PUNT_MAX is dropped,
 * or with `prefix` its first RVS_PUNT_MAX bytes go. */
static __always_inline int to_user(struct xdp_md *ctx, __u32 kind, __u32 info, int prefix)
{
	struct rvs_config *cfg = config();
	__u32 z = 0;
	struct punt_budget *b = bpf_map_lookup_elem(&rvs_punt_budget, &z);
	if (!cfg || !b)
		return XDP_DROP;
	__u64 now = bpf_ktime_get_ns();
	if (now - b->window > 1000000000ULL) {
		b->window = now;
		b->used = 0;
	}
	if (b->used >= cfg->punt_budget)
		return XDP_DROP;
	b->used++;
	__u32 len = ctx->data_end - ctx->data;
	if (prefix && len > RVS_PUNT_MAX)
		len = RVS_PUNT_MAX;
	if (len > RVS_PUNT_MAX || len < ETH_HLEN)
		return XDP_DROP;
	struct rvs_event *e = bpf_ringbuf_reserve(&rvs_events, sizeof(*e), 0);
	if (!e)
		return XDP_DROP;
	e->kind = kind;
	e->len = len;
	e->ifindex = ingress_ifindex(ctx);
	e->dest = info;
	if (bpf_xdp_load_bytes(ctx, 0, e->data, ((len - 1) & (RVS_PUNT_MAX - 1)) + 1) < 0) {
		bpf_ringbuf_discard(e, 0);
		return XDP_DROP;
	}
	bpf_ringbuf_submit(e, 0);
	return XDP_DROP;
}

/* Decrements the TTL / hop limit of the IP header at ETH_HLEN; false when
 * it would reach 0 (the kernel then answers time exceeded). */
static __always_inline int dec_ttl(struct xdp_md *ctx, __u8 af)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (af == RVS_AF_INET) {
		struct iphdr *ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > end || ip->ttl <= 1)
			return 0;
		__u16 old = *(__u16 *)&ip->ttl;
		ip->ttl--;
		csum_replace2(&ip->check, old, *(__u16 *)&ip->ttl);
		return 1;
	}
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
		return 0;
	ip6->hop_limit--;
	return 1;
}

/* The UDP checksum of a GUE packet over IPv6 (RFC 8200 wants one; the
 * kernel's IPVS sends 0 unless --tun-csum, which receivers must then
 * allow, RFC 6935/6936). Computed without reading the payload, as Linux's
 * lco_csum does: the inner transport checksum makes the inner segment sum
 * to the complement of the inner pseudo-header's sum (an ICMPv4 message
 * sums to zero), so the outer sum needs only the headers. An inner IPv4
 * UDP datagram without a checksum cannot be summed that way: 0, as the
 * kernel sends. `u`: the outer UDP header (its GUE header follows, then
 * the inner packet); `f` describes the inner packet. */
static __always_inline __u16 gue6_csum(void *data, void *end, struct udphdr *u, struct flow *f)
{
	struct ipv6hdr *o = data + ETH_HLEN;
	__u16 *g = (__u16 *)(u + 1);
	if ((void *)(o + 1) > end || (void *)(g + 2) > end)
		return 0;
	__u32 s = 0;
	const __u16 *w = (const __u16 *)&o->saddr; /* saddr, daddr */
#pragma unroll
	for (int i = 0; i < 16; i++)
		s += w[i];
	s += u->len + bpf_htons(IPPROTO_UDP); /* pseudo header */
	s += u->source + u->dest + u->len + g[0] + g[1];
	__u32 ps = 0; /* the inner pseudo header */
	if (f->af == RVS_AF_INET) {
		__u16 *ih = (__u16 *)(g + 2);
		if ((void *)(ih + 10) > end)
			return 0;
#pragma unroll
		for (int i = 0; i < 10; i++)
			s += ih[i];
		if (f->proto == IPPROTO_ICMP)
			goto done;
		if (f->proto == IPPROTO_UDP) {
			struct udphdr *iu = (struct udphdr *)(ih + 10);
			if ((void *)(iu + 1) > end || !iu->check)
				return 0;
		}
		ps = ih[6] + ih[7] + ih[8] + ih[9] + bpf_htons(f->proto) + bpf_htons(f->iplen - 20);
	} else {
		__u16 *ih = (__u16 *)(g + 2);
		if ((void *)(ih + 20) > end)
			return 0;
#pragma unroll
		for (int i = 0; i < 20; i++)
			s += ih[i];
#pragma unroll
		for (int i = 4; i < 20; i++)
			ps += ih[i];
		ps += ih[2] + bpf_htons(f->proto);
	}
	s += (__u16)~csum_fold(ps);
done:;
	__u16 c = ~csum_fold(s);
	return c ? c : 0xffff;
}

/* Sends the packet to real server `slot` by its method. `f` describes the
 * packet as it is now (after any NAT rewrite). */
static __always_inline int to_dest(struct xdp_md *ctx, __u32 slot, struct rvs_dest *d, struct flow *f)
{
	struct rvs_nh *nh = dest_nh(ctx, slot, d);
	if (!nh) {
		/* NAT and tunnel packets are addressed to the real server: the
		 * kernel can route them (and resolve the neighbour). Direct
		 * routing needs the MAC: drop until userspace resolved it. */
		if (d->fwd == RVS_FWD_ROUTE)
			return XDP_DROP;
		return XDP_PASS;
	}
	if (d->fwd == RVS_FWD_TUNNEL && nh->mtu && !f->icmp) {
		/* ip_vs_tunnel_xmit's ensure_mtu_is_adequate: the encapsulated
		 * packet must fit the route's MTU. */
		__u32 over = d->af == RVS_AF_INET ? 20 : 40;
		if (d->tun_type == RVS_TUN_GUE)
			over += sizeof(struct udphdr) + 4;
		else if (d->tun_type == RVS_TUN_GRE)
			over += 4;
		if (f->iplen + over > nh->mtu) {
			if (f->af == RVS_AF_INET) {
				void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
				struct iphdr *ip = data + ETH_HLEN;
				if ((void *)(ip + 1) > end)
					return XDP_DROP;
				/* No DF: the kernel fragments the tunnel
				 * packet (ip_vs_tunnel_xmit); XDP cannot, so
				 * userspace sends it through the kernel. */
				if (!(ip->frag_off & bpf_htons(0x4000))) {
					if (!dec_ttl(ctx, f->af))
						return XDP_PASS;
					return to_user(ctx, RVS_EV_FRAG, slot, 0);
				}
			}
			return to_user(ctx, RVS_EV_TOOBIG, nh->mtu > over ? nh->mtu - over : 0, 1);
		}
	}
	if (!dec_ttl(ctx, f->af))
		return XDP_PASS;
	if (d->fwd != RVS_FWD_TUNNEL)
		return xmit(ctx, nh->dmac, nh->smac, nh->ifindex);

	/* Tunnelling: read what the outer header copies from the inner one. */
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u8 tos, ttl;
	__u16 df = 0;
	__u32 inner_len = f->iplen;
	if (f->af == RVS_AF_INET) {
		struct iphdr *ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > end)
			return XDP_DROP;
		tos = ip->tos;
		ttl = ip->ttl;
		df = ip->frag_off & bpf_htons(0x4000);
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		ttl = ip6->hop_limit;
		df = bpf_htons(0x4000);
	}
	if ((tos & 3) == 3)
		tos = (tos & ~3) | 2; /* CE is not copied: ECT(0) */
	__u8 inner_proto = f->af == RVS_AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u32 hash = f->sport ^ ((__u32)f->dport << 16);
	hash ^= *(__u32 *)&f->saddr[0] ^ *(__u32 *)&f->saddr[12] ^ *(__u32 *)&f->daddr[12];
	hash *= 0x9e3779b1;

	int encap = 0; /* bytes after the outer IP header */
	__u8 outer_proto = inner_proto;
	if (d->tun_type == RVS_TUN_GUE) {
		encap = sizeof(struct udphdr) + 4;
		outer_proto = IPPROTO_UDP;
	} else if (d->tun_type == RVS_TUN_GRE) {
		encap = 4;
		outer_proto = IPPROTO_GRE;
	}
	int outer_ip = d->af == RVS_AF_INET ? (int)sizeof(struct iphdr) : (int)sizeof(struct ipv6hdr);
	if (bpf_xdp_adjust_head(ctx, -(outer_ip + encap)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	void *l4 = data + ETH_HLEN + outer_ip;
	__u32 payload = inner_len + encap;
	if (d->af == RVS_AF_INET) {
		struct iphdr *o = data + ETH_HLEN;
		if ((void *)(o + 1) > end)
			return XDP_DROP;
		eth->h_proto = bpf_htons(ETH_P_IP);
		o->version = 4;
		o->ihl = 5;
		o->tos = tos;
		o->tot_len = bpf_htons(payload + sizeof(struct iphdr));
		o->id = (__u16)bpf_get_prandom_u32();
		o->frag_off = df;
		o->ttl = ttl;
		o->protocol = outer_proto;
		o->check = 0;
		__builtin_memcpy(&o->saddr, d->tun_src, 4);
		__builtin_memcpy(&o->daddr, d->addr, 4);
		o->check = ip4_csum(o);
	} else {
		struct ipv6hdr *o = data + ETH_HLEN;
		if ((void *)(o + 1) > end)
			return XDP_DROP;
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		*(__u32 *)o = bpf_htonl(0x60000000 | ((__u32)tos << 20));
		o->payload_len = bpf_htons(payload);
		o->nexthdr = outer_proto;
		o->hop_limit = ttl;
		copy16((__u8 *)&o->saddr, d->tun_src);
		copy16((__u8 *)&o->daddr, d->addr);
	}
	if (d->tun_type == RVS_TUN_GUE) {
		struct udphdr *u = l4;
		if ((void *)u + sizeof(*u) + 4 > end)
			return XDP_DROP;
		u->source = bpf_htons(32768 + hash % 28232);
		u->dest = d->tun_port_be;
		u->len = bpf_htons(payload);
		u->check = 0;
		__u8 *g = (__u8 *)(u + 1);
		g[0] = 0; /* version 0, C 0, hlen 0 */
		g[1] = inner_proto;
		g[2] = 0;
		g[3] = 0;
		if (d->af == RVS_AF_INET6)
			u->check = gue6_csum(data, end, u, f);
	} else if (d->tun_type == RVS_TUN_GRE) {
		__u16 *g = l4;
		if ((void *)(g + 2) > end)
			return XDP_DROP;
		g[0] = 0;
		g[1] = f->af == RVS_AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	}
	return xmit(ctx, nh->dmac, nh->smac, nh->ifindex);
}

/* ---- NAT rewrites ---- */

/* Rewrites the destination (inbound NAT) or the source (NAT replies) of the
 * IP and transport headers to `addr`:`port` (port 0: unchanged). */
static __always_inline int nat_rewrite(struct xdp_md *ctx, struct flow *f, int src, const __u8 *addr, __u16 port)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u16 *l4sum = 0;
	__u16 *l4port = 0;
	__u16 before = 0;
	void *l4 = data + (f->l4off & 0xff);
	if (f->proto == IPPROTO_TCP) {
		struct tcphdr *t = l4;
		if ((void *)(t + 1) > end)
			return -1;
		l4sum = &t->check;
		l4port = src ? &t->source : &t->dest;
	} else {
		struct udphdr *u = l4;
		if ((void *)(u + 1) > end)
			return -1;
		l4sum = &u->check;
		l4port = src ? &u->source : &u->dest;
	}
	before = *l4sum;
	int fixsum = f->proto == IPPROTO_TCP || before || f->af == RVS_AF_INET6;
	if (f->af == RVS_AF_INET) {
		struct iphdr *ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > end)
			return -1;
		__u32 *a = src ? &ip->saddr : &ip->daddr;
		__u32 na;
		__builtin_memcpy(&na, addr, 4);
		csum_replace4(&ip->check, *a, na);
		if (fixsum)
			csum_replace4(l4sum, *a, na);
		*a = na;
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		if ((void *)(ip6 + 1) > end)
			return -1;
		__u8 *a = src ? (__u8 *)&ip6->saddr : (__u8 *)&ip6->daddr;
		csum_replace16(l4sum, a, addr);
		copy16(a, addr);
	}
	if (port && port != *l4port) {
		if (fixsum)
			csum_replace2(l4sum, *l4port, port);
		*l4port = port;
	}
	if (f->proto == IPPROTO_UDP && f->af == RVS_AF_INET)
		udp_fix(l4sum, before);
	return 0;
}

/* ---- connection keys ---- */

static __always_inline void conn4_key(struct rvs_conn4_key *k, const __u8 *c, __u16 cp, const __u8 *v, __u16 vp, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(&k->caddr, c, 4);
	__builtin_memcpy(&k->vaddr, v, 4);
	k->cport_be = cp;
	k->vport_be = vp;
	k->proto = proto;
}

static __always_inline void conn6_key(struct rvs_conn6_key *k, const __u8 *c, __u16 cp, const __u8 *v, __u16 vp, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	copy16(k->caddr, c);
	copy16(k->vaddr, v);
	k->cport_be = cp;
	k->vport_be = vp;
	k->proto = proto;
}

static __always_inline struct rvs_conn *conn_lookup(__u8 af, const __u8 *c, __u16 cp, const __u8 *v, __u16 vp, __u8 proto)
{
	if (af == RVS_AF_INET) {
		struct rvs_conn4_key k;
		conn4_key(&k, c, cp, v, vp, proto);
		return bpf_map_lookup_elem(&rvs_conn4, &k);
	}
	struct rvs_conn6_key k;
	conn6_key(&k, c, cp, v, vp, proto);
	return bpf_map_lookup_elem(&rvs_conn6, &k);
}

static __always_inline void conn_delete(__u8 af, const __u8 *c, __u16 cp, const __u8 *v, __u16 vp, __u8 proto)
{
	if (af == RVS_AF_INET) {
		struct rvs_conn4_key k;
		conn4_key(&k, c, cp, v, vp, proto);
		bpf_map_delete_elem(&rvs_conn4, &k);
		return;
	}
	struct rvs_conn6_key k;
	conn6_key(&k, c, cp, v, vp, proto);
	bpf_map_delete_elem(&rvs_conn6, &k);
}

static __always_inline int conn_insert(__u8 af, const __u8 *c, __u16 cp, const __u8 *v, __u16 vp, __u8 proto, struct rvs_conn *val)
{
	if (af == RVS_AF_INET) {
		struct rvs_conn4_key k;
		conn4_key(&k, c, cp, v, vp, proto);
		return bpf_map_update_elem(&rvs_conn4, &k, val, BPF_NOEXIST);
	}
	struct rvs_conn6_key k;
	conn6_key(&k, c, cp, v, vp, proto);
	return bpf_map_update_elem(&rvs_conn6, &k, val, BPF_NOEXIST);
}

/* The reverse entry of a NAT connection: replies from raddr:rport to the client. */
static __always_inline void nat_insert(__u8 af, const __u8 *r, __u16 rp, const __u8 *c, __u16 cp, const __u8 *v, __u16 vp, __u8 proto)
{
	if (af == RVS_AF_INET) {
		struct rvs_nat4_key k = {};
		struct rvs_nat4 n = {};
		__builtin_memcpy(&k.raddr, r, 4);
		__builtin_memcpy(&k.caddr, c, 4);
		k.rport_be = rp;
		k.cport_be = cp;
		k.proto = proto;
		__builtin_memcpy(&n.vaddr, v, 4);
		n.vport_be = vp;
		bpf_map_update_elem(&rvs_nat4, &k, &n, BPF_ANY);
		return;
	}
	struct rvs_nat6_key k = {};
	struct rvs_nat6 n = {};
	copy16(k.raddr, r);
	copy16(k.caddr, c);
	k.rport_be = rp;
	k.cport_be = cp;
	k.proto = proto;
	copy16(n.vaddr, v);
	n.vport_be = vp;
	bpf_map_update_elem(&rvs_nat6, &k, &n, BPF_ANY);
}

/* The virtual address and port of a NAT reply from saddr:sport to daddr:dport. */
static __always_inline int nat_lookup(__u8 af, const __u8 *r, __u16 rp, const __u8 *c, __u16 cp, __u8 proto, __u8 *vaddr, __u16 *vport)
{
	if (af == RVS_AF_INET) {
		struct rvs_nat4_key k = {};
		__builtin_memcpy(&k.raddr, r, 4);
		__builtin_memcpy(&k.caddr, c, 4);
		k.rport_be = rp;
		k.cport_be = cp;
		k.proto = proto;
		struct rvs_nat4 *n = bpf_map_lookup_elem(&rvs_nat4, &k);
		if (!n)
			return 0;
		__builtin_memset(vaddr, 0, 16);
		__builtin_memcpy(vaddr, &n->vaddr, 4);
		*vport = n->vport_be;
		return 1;
	}
	struct rvs_nat6_key k = {};
	copy16(k.raddr, r);
	copy16(k.caddr, c);
	k.rport_be = rp;
	k.cport_be = cp;
	k.proto = proto;
	struct rvs_nat6 *n = bpf_map_lookup_elem(&rvs_nat6, &k);
	if (!n)
		return 0;
	copy16(vaddr, n->vaddr);
	*vport = n->vport_be;
	return 1;
}

/* ---- the TCP state machine (rvs-conn's tables) ---- */

static __always_inline void tcp_transition(struct rvs_conn *c, __u8 dir, __u8 flags, __u8 secure)
{
	int ev;
	if (flags & 0x04)
		ev = 3; /* rst */
	else if (flags & 0x02)
		ev = 0; /* syn */
	else if (flags & 0x01)
		ev = 1; /* fin */
	else if (flags & 0x10)
		ev = 2; /* ack */
	else {
		c->state = TCP_S_CLOSE;
		return;
	}
	__u8 s = c->state;
	if (s >= RVS_TCP_STATES || dir > 2) {
		c->state = TCP_S_CLOSE;
		return;
	}
	__u8 next = rvs_tcp_next[secure ? 1 : 0][dir][ev][s];
	if (next != s)
		c->state = next;
}

static __always_inline int punt(struct xdp_md *ctx)
{
	return to_user(ctx, RVS_EV_PUNT, 0, 0);
}

/* The firewall mark of a first packet (0: none), from rvs_marks. */
static __always_inline __u32 classify(struct flow *f)
{
	struct rvs_mark_key k = {};
	k.prefixlen = 32 + (f->af == RVS_AF_INET ? 32 : 128);
	k.af = f->af;
	k.proto = f->proto;
	copy16(k.addr, f->daddr);
	struct rvs_marks *m = bpf_map_lookup_elem(&rvs_marks, &k);
	if (!m)
		return 0;
	__u16 port = bpf_ntohs(f->dport);
	for (int i = 0; i < RVS_MARK_RANGES; i++) {
		if (i >= m->n)
			break;
		if (port >= m->r[i].lo && port <= m->r[i].hi)
			return m->r[i].mark;
	}
	return 0;
}

static __always_inline struct rvs_svc *svc_lookup(struct flow *f)
{
	struct rvs_config *cfg = config();
	if (cfg && (cfg->flags & RVS_CFG_MARKS)) {
		/* ip_vs_service_find: a marked packet's fwmark service first. */
		__u32 mark = classify(f);
		if (mark) {
			struct rvs_svc_key mk = {};
			__u32 be = bpf_htonl(mark);
			__builtin_memcpy(mk.addr, &be, 4);
			mk.af = f->af;
			struct rvs_svc *s = bpf_map_lookup_elem(&rvs_services, &mk);
			if (s)
				return s;
		}
	}
	struct rvs_svc_key k = {};
	copy16(k.addr, f->daddr);
	k.port_be = f->dport;
	k.proto = f->proto;
	k.af = f->af;
	struct rvs_svc *s = bpf_map_lookup_elem(&rvs_services, &k);
	if (s)
		return s;
	k.port_be = 0;
	return bpf_map_lookup_elem(&rvs_services, &k);
}

/* ---- a request packet (client -> virtual service) ---- */

/* Counts the request and sends it to real server `slot`. */
static __always_inline int forward(struct xdp_md *ctx, struct flow *f, __u32 slot,
				   struct rvs_dest *d, int newconn)
{
	count_in(slot, f->iplen, newconn);
	if (d->fwd == RVS_FWD_MASQ) {
		if (nat_rewrite(ctx, f, 0, d->addr, d->port_be))
			return XDP_DROP;
		copy16(f->daddr, d->addr);
		if (d->port_be)
			f->dport = d->port_be;
	}
	return to_dest(ctx, slot, d, f);
}

static __always_inline int request(struct xdp_md *ctx, struct flow *f, struct rvs_conn *c,
				   __u32 slot, struct rvs_dest *d)
{
	if (f->proto == IPPROTO_TCP && !f->icmp)
		tcp_transition(c, (c->flags & RVS_CONN_NOOUTPUT) ? 2 : 0, f->tcpflags, f->secure);
	/* Written only when it changes (once a jiffy at most): the entry's
	 * cache line is not dirtied by every packet. */
	__u32 now = now_units();
	if (c->seen != now)
		c->seen = now;
	return forward(ctx, f, slot, d, 0);
}

static __always_inline int new_flow(struct xdp_md *ctx, struct flow *f)
{
	struct rvs_svc *s = svc_lookup(f);
	if (!s)
		return XDP_PASS;
	if (f->proto == IPPROTO_TCP && (!(f->tcpflags & 0x02) || (f->tcpflags & 0x04)))
		return XDP_PASS; /* not a SYN: no entry to create (the kernel's answer) */
	if (!(s->flags & RVS_SVC_RING) || !s->ring_len)
		return punt(ctx);
	__u32 id = s->id;
	__u64 *pos = bpf_map_lookup_elem(&rvs_svc_pos, &id);
	if (!pos)
		return XDP_DROP;
	__u64 p = __sync_fetch_and_add(pos, 1);
	__u32 idx = (s->ring_off + (__u32)(p % s->ring_len)) & (RVS_RING_SLOTS - 1);
	__u32 *slotp = bpf_map_lookup_elem(&rvs_ring, &idx);
	if (!slotp)
		return XDP_DROP;
	__u32 slot = *slotp;
	struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &slot);
	if (!d || !(d->flags & RVS_DEST_AVAILABLE))
		return punt(ctx);
	/* The entry goes in with this packet's state transition made: no
	 * lookup of it after the insert. */
	struct rvs_conn val = {};
	val.dest = slot;
	val.state = 0;
	val.flags = d->fwd == RVS_FWD_MASQ ? 0 : RVS_CONN_NOOUTPUT;
	val.seen = now_units();
	if (f->proto == IPPROTO_TCP)
		tcp_transition(&val, (val.flags & RVS_CONN_NOOUTPUT) ? 2 : 0, f->tcpflags, f->secure);
	if (conn_insert(f->af, f->saddr, f->sport, f->daddr, f->dport, f->proto, &val))
		return XDP_DROP; /* another CPU created it a moment ago: the retransmission finds it */
	if (d->fwd == RVS_FWD_MASQ)
		nat_insert(f->af, d->addr, d->port_be ? d->port_be : f->dport, f->saddr, f->sport, f->daddr, f->dport, f->proto);
	return forward(ctx, f, slot, d, 1);
}

/* A request that found entry `c`: port reuse and deleted real servers
 * (check_in), then forward. */
static __always_inline int known(struct xdp_md *ctx, struct flow *f, struct rvs_conn *c,
				 struct rvs_config *cfg)
{
	__u32 slot = c->dest;
	struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &slot);
	if (!d)
		return XDP_DROP;
	int syn = f->proto == IPPROTO_TCP && (f->tcpflags & 0x02);
	if (syn) {
		int resched = (cfg->flags & RVS_CFG_EXPIRE_NODEST) && (d->flags & RVS_DEST_WEIGHT0);
		if (cfg->flags & RVS_CFG_CONN_REUSE)
			resched |= c->state == TCP_S_TIME_WAIT || c->state == TCP_S_CLOSE;
		if (resched && !(c->flags & RVS_CONN_USER)) {
			conn_delete(f->af, f->saddr, f->sport, f->daddr, f->dport, f->proto);
			return new_flow(ctx, f);
		}
	}
	if (!(d->flags & RVS_DEST_AVAILABLE)) {
		if (cfg->flags & RVS_CFG_EXPIRE_NODEST) {
			conn_delete(f->af, f->saddr, f->sport, f->daddr, f->dport, f->proto);
			return new_flow(ctx, f);
		}
		return XDP_DROP;
	}
	return request(ctx, f, c, slot, d);
}

/* ---- a NAT reply (real server -> client) ---- */

static __always_inline int fib_to(struct xdp_md *ctx, struct flow *f)
{
	struct bpf_fib_lookup p = {};
	p.ifindex = ingress_ifindex(ctx);
	if (f->af == RVS_AF_INET) {
		p.family = AF_INET;
		__builtin_memcpy(&p.ipv4_dst, f->daddr, 4);
	} else {
		p.family = AF_INET6;
		__builtin_memcpy(p.ipv6_dst, f->daddr, 16);
	}
	int rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* No neighbour entry toward the client (or its router), as on a
		 * backup that just took over. The kernel's forwarding would drop
		 * the packet (its source is now the VIP, a local address: a
		 * martian), so userspace sends it through a raw socket: the
		 * kernel resolves the neighbour, queueing it meanwhile, and the
		 * next replies find the entry here. */
		if (!dec_ttl(ctx, f->af))
			return XDP_PASS;
		return to_user(ctx, RVS_EV_XMIT, 0, 0);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS; /* rewritten already: the kernel forwards it */
	if (!dec_ttl(ctx, f->af))
		return XDP_PASS;
	return xmit(ctx, p.dmac, p.smac, p.ifindex);
}

static __always_inline int reply(struct xdp_md *ctx, struct flow *f, __u8 *vaddr, __u16 vport)
{
	struct rvs_conn *c = conn_lookup(f->af, f->daddr, f->dport, vaddr, vport, f->proto);
	if (!c)
		return XDP_PASS;
	if (f->proto == IPPROTO_TCP)
		tcp_transition(c, 1, f->tcpflags, f->secure);
	__u32 now = now_units();
	if (c->seen != now)
		c->seen = now;
	count_out(c->dest, f->iplen);
	if (nat_rewrite(ctx, f, 1, vaddr, vport))
		return XDP_DROP;
	return fib_to(ctx, f);
}

/* ---- ICMP errors about a connection ---- */

/* An ICMP error about one of our tunnel packets, from the path to a real
 * server: the embedded packet `e` is the outer header we wrote, then the
 * encapsulation (`at`: its offset), then the client's packet. When that
 * packet belongs to a tunnelled connection to the real server `e` was
 * addressed to, userspace gets the frame and tells the client about its
 * own packet (ip_vs_in_icmp's IPIP case: "fragmentation needed" with the
 * MTU less the tunnel's overhead). */
static __always_inline int tunnel_icmp(struct xdp_md *ctx, struct flow *f, struct flow *e, __u32 at)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u8 iproto = e->proto;
	__u8 tun = RVS_TUN_IPIP;
	at &= 0xff;
	if (e->proto == IPPROTO_UDP) {
		__u8 *u = data + at;
		if ((void *)(u + 12) > end)
			return XDP_PASS;
		if (u[8] != 0) /* GUE version 0, no options */
			return XDP_PASS;
		iproto = u[9];
		tun = RVS_TUN_GUE;
		at += 12;
	} else if (e->proto == IPPROTO_GRE) {
		__u16 *g = data + at;
		if ((void *)(g + 2) > end || g[0] != 0)
			return XDP_PASS;
		if (g[1] == bpf_htons(ETH_P_IP))
			iproto = IPPROTO_IPIP;
		else if (g[1] == bpf_htons(ETH_P_IPV6))
			iproto = IPPROTO_IPV6;
		else
			return XDP_PASS;
		tun = RVS_TUN_GRE;
		at += 4;
	}
	struct flow in = {};
	__u32 ports_off;
	if (iproto == IPPROTO_IPIP) {
		struct iphdr *ip = data + (at & 0xff);
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x1fff)))
			return XDP_PASS;
		in.af = RVS_AF_INET;
		in.proto = ip->protocol;
		__builtin_memcpy(in.saddr, &ip->saddr, 4);
		__builtin_memcpy(in.daddr, &ip->daddr, 4);
		ports_off = at + sizeof(struct iphdr);
	} else if (iproto == IPPROTO_IPV6) {
		struct ipv6hdr *ip6 = data + (at & 0xff);
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		in.af = RVS_AF_INET6;
		in.proto = ip6->nexthdr;
		copy16(in.saddr, (__u8 *)&ip6->saddr);
		copy16(in.daddr, (__u8 *)&ip6->daddr);
		ports_off = at + sizeof(struct ipv6hdr);
	} else {
		return XDP_PASS;
	}
	if (in.proto != IPPROTO_TCP && in.proto != IPPROTO_UDP)
		return XDP_PASS;
	__u16 *ports = data + (ports_off & 0x1ff);
	if ((void *)(ports + 2) > end)
		return XDP_PASS;
	struct rvs_conn *c = conn_lookup(in.af, in.saddr, ports[0], in.daddr, ports[1], in.proto);
	if (!c)
		return XDP_PASS;
	__u32 slot = c->dest;
	struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &slot);
	if (!d || d->fwd != RVS_FWD_TUNNEL || d->tun_type != tun || d->af != f->af)
		return XDP_PASS;
	const __u32 *da = (const __u32 *)d->addr, *ea = (const __u32 *)e->daddr;
	if (da[0] != ea[0] || da[1] != ea[1] || da[2] != ea[2] || da[3] != ea[3])
		return XDP_PASS;
	count_out(slot, f->iplen);
	return to_user(ctx, RVS_EV_TUNICMP, 0, 1);
}

/* `off`: offset of the ICMP header; the embedded IP header follows at +8. */
static __always_inline int icmp_error(struct xdp_md *ctx, struct flow *f, __u32 off)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 inner = (off & 0xff) + 8;
	struct flow e = {}; /* the embedded packet */
	__u32 ports_off;
	if (f->af == RVS_AF_INET) {
		struct iphdr *ip = data + inner;
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x1fff)))
			return XDP_PASS;
		e.proto = ip->protocol;
		__builtin_memcpy(e.saddr, &ip->saddr, 4);
		__builtin_memcpy(e.daddr, &ip->daddr, 4);
		ports_off = inner + sizeof(struct iphdr);
		if (e.proto == IPPROTO_IPIP || e.proto == IPPROTO_IPV6 || e.proto == IPPROTO_GRE)
			return tunnel_icmp(ctx, f, &e, ports_off);
	} else {
		struct ipv6hdr *ip6 = data + inner;
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		e.proto = ip6->nexthdr;
		copy16(e.saddr, (__u8 *)&ip6->saddr);
		copy16(e.daddr, (__u8 *)&ip6->daddr);
		ports_off = inner + sizeof(struct ipv6hdr);
		if (e.proto == IPPROTO_IPIP || e.proto == IPPROTO_IPV6 || e.proto == IPPROTO_GRE)
			return tunnel_icmp(ctx, f, &e, ports_off);
	}
	if (e.proto != IPPROTO_TCP && e.proto != IPPROTO_UDP)
		return XDP_PASS;
	__u16 *ports = data + (ports_off & 0xff);
	if ((void *)(ports + 2) > end)
		return XDP_PASS;
	e.sport = ports[0];
	e.dport = ports[1];

	/* From the client's side: the embedded packet is one of our replies
	 * (virtual address -> client). */
	struct rvs_conn *c = conn_lookup(f->af, e.daddr, e.dport, e.saddr, e.sport, e.proto);
	if (c) {
		__u32 slot = c->dest;
		struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &slot);
		if (!d)
			return XDP_DROP;
		count_in(slot, f->iplen, 0);
		if (d->fwd == RVS_FWD_MASQ) {
			/* outer destination, embedded source address and port -> the real server */
			__u16 *isum;
			if (f->af == RVS_AF_INET) {
				struct iphdr *o = data + ETH_HLEN;
				struct icmphdr *ic = data + (off & 0xff);
				struct iphdr *ip = data + inner;
				if ((void *)(o + 1) > end || (void *)(ic + 1) > end || (void *)(ip + 1) > end)
					return XDP_DROP;
				__u32 na;
				__builtin_memcpy(&na, d->addr, 4);
				csum_replace4(&o->check, o->daddr, na);
				o->daddr = na;
				__u16 oldsum = ip->check;
				csum_replace4(&ip->check, ip->saddr, na);
				csum_replace4(&ic->checksum, ip->saddr, na);
				ip->saddr = na;
				csum_replace2(&ic->checksum, oldsum, ip->check);
				isum = &ic->checksum;
			} else {
				struct ipv6hdr *o = data + ETH_HLEN;
				struct icmp6hdr *ic = data + (off & 0xff);
				struct ipv6hdr *ip = data + inner;
				if ((void *)(o + 1) > end || (void *)(ic + 1) > end || (void *)(ip + 1) > end)
					return XDP_DROP;
				csum_replace16(&ic->icmp6_cksum, (__u8 *)&o->daddr, d->addr);
				copy16((__u8 *)&o->daddr, d->addr);
				csum_replace16(&ic->icmp6_cksum, (__u8 *)&ip->saddr, d->addr);
				copy16((__u8 *)&ip->saddr, d->addr);
				isum = &ic->icmp6_cksum;
			}
			ports = data + (ports_off & 0xff);
			if ((void *)(ports + 2) > end)
				return XDP_DROP;
			if (d->port_be && d->port_be != ports[0]) {
				csum_replace2(isum, ports[0], d->port_be);
				ports[0] = d->port_be;
			}
			copy16(f->daddr, d->addr);
		}
		return to_dest(ctx, slot, d, f);
	}

	/* From a NAT real server: the embedded packet is the client's request
	 * as the real server received it (client -> real server). */
	__u8 vaddr[16];
	__u16 vport;
	if (!nat_lookup(f->af, e.daddr, e.dport, e.saddr, e.sport, e.proto, vaddr, &vport)) {
		if (e.proto == IPPROTO_UDP) /* GUE */
			return tunnel_icmp(ctx, f, &e, ports_off);
		return XDP_PASS;
	}
	c = conn_lookup(f->af, e.saddr, e.sport, vaddr, vport, e.proto);
	if (!c)
		return XDP_PASS;
	count_out(c->dest, f->iplen);
	__u16 *isum;
	if (f->af == RVS_AF_INET) {
		struct iphdr *o = data + ETH_HLEN;
		struct icmphdr *ic = data + (off & 0xff);
		struct iphdr *ip = data + inner;
		if ((void *)(o + 1) > end || (void *)(ic + 1) > end || (void *)(ip + 1) > end)
			return XDP_DROP;
		__u32 va;
		__builtin_memcpy(&va, vaddr, 4);
		csum_replace4(&o->check, o->saddr, va);
		o->saddr = va;
		__u16 oldsum = ip->check;
		csum_replace4(&ip->check, ip->daddr, va);
		csum_replace4(&ic->checksum, ip->daddr, va);
		ip->daddr = va;
		csum_replace2(&ic->checksum, oldsum, ip->check);
		isum = &ic->checksum;
	} else {
		struct ipv6hdr *o = data + ETH_HLEN;
		struct icmp6hdr *ic = data + (off & 0xff);
		struct ipv6hdr *ip = data + inner;
		if ((void *)(o + 1) > end || (void *)(ic + 1) > end || (void *)(ip + 1) > end)
			return XDP_DROP;
		csum_replace16(&ic->icmp6_cksum, (__u8 *)&o->saddr, vaddr);
		copy16((__u8 *)&o->saddr, vaddr);
		csum_replace16(&ic->icmp6_cksum, (__u8 *)&ip->daddr, vaddr);
		copy16((__u8 *)&ip->daddr, vaddr);
		isum = &ic->icmp6_cksum;
	}
	ports = data + (ports_off & 0xff);
	if ((void *)(ports + 2) > end)
		return XDP_DROP;
	if (vport != ports[1]) {
		csum_replace2(isum, ports[1], vport);
		ports[1] = vport;
	}
	return fib_to(ctx, f);
}

/* ---- parsing ---- */

static __always_inline int l4(struct xdp_md *ctx, struct flow *f)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	void *p = data + (f->l4off & 0xff);
	__u32 l4len = f->iplen - (f->l4off - ETH_HLEN);
	if (f->proto == IPPROTO_TCP) {
		struct tcphdr *t = p;
		if ((void *)(t + 1) > end)
			return XDP_DROP;
		if (t->doff < 5 || t->doff * 4 > l4len)
			return XDP_DROP;
		f->sport = t->source;
		f->dport = t->dest;
		f->tcpflags = ((__u8 *)t)[13];
	} else if (f->proto == IPPROTO_UDP) {
		struct udphdr *u = p;
		if ((void *)(u + 1) > end)
			return XDP_DROP;
		__u16 ulen = bpf_ntohs(u->len);
		if (ulen < sizeof(*u) || ulen > l4len)
			return XDP_DROP;
		f->sport = u->source;
		f->dport = u->dest;
	} else {
		return XDP_PASS;
	}
	/* The pre-filter: a destination that is no virtual address (unless
	 * firewall-mark networks are carried, which it cannot tell) has no
	 * entry nor service; a source that is no NAT real server sends no
	 * reply. Frames neither are the kernel's, after two array reads. */
	struct rvs_config *cfg = config();
	if (!cfg)
		return XDP_DROP;
	f->secure = !!(cfg->flags & RVS_CFG_SECURE_TCP);
	int vip = (addr_bits(f->af, f->daddr) & RVS_ADDR_VIP) || (cfg->flags & RVS_CFG_MARKS);
	if (vip) {
		struct rvs_conn *c = conn_lookup(f->af, f->saddr, f->sport, f->daddr, f->dport, f->proto);
		if (c)
			return known(ctx, f, c, cfg);
	}
	if (addr_bits(f->af, f->saddr) & RVS_ADDR_NATRS) {
		__u8 vaddr[16];
		__u16 vport;
		if (nat_lookup(f->af, f->saddr, f->sport, f->daddr, f->dport, f->proto, vaddr, &vport))
			return reply(ctx, f, vaddr, vport);
	}
	if (!vip)
		return XDP_PASS;
	return new_flow(ctx, f);
}

static __always_inline int ipv4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	if (ip->version != 4 || ip->ihl < 5)
		return XDP_DROP;
	if (ip->ihl != 5)
		return XDP_PASS; /* IP options: the kernel's path */
	__u32 tot = bpf_ntohs(ip->tot_len);
	if (tot < sizeof(*ip) || data + ETH_HLEN + tot > end)
		return XDP_DROP;
	if (ip->frag_off & bpf_htons(0x3fff))
		return XDP_PASS; /* fragments: reassembled by the kernel */
	struct flow f = {};
	f.af = RVS_AF_INET;
	f.proto = ip->protocol;
	f.iplen = tot;
	f.l4off = ETH_HLEN + sizeof(*ip);
	__builtin_memcpy(f.saddr, &ip->saddr, 4);
	__builtin_memcpy(f.daddr, &ip->daddr, 4);
	if (f.proto == IPPROTO_ICMP) {
		struct icmphdr *ic = (void *)(ip + 1);
		if ((void *)(ic + 1) > end)
			return XDP_DROP;
		if (ic->type != ICMP_DEST_UNREACH && ic->type != ICMP_TIME_EXCEEDED &&
		    ic->type != ICMP_SOURCE_QUENCH)
			return XDP_PASS;
		f.icmp = 1;
		return icmp_error(ctx, &f, f.l4off);
	}
	return l4(ctx, &f);
}

static __always_inline int ipv6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	if ((void *)(ip6 + 1) > end)
		return XDP_DROP;
	if (ip6->version != 6)
		return XDP_DROP;
	__u32 plen = bpf_ntohs(ip6->payload_len);
	if (data + ETH_HLEN + sizeof(*ip6) + plen > end)
		return XDP_DROP;
	struct flow f = {};
	f.af = RVS_AF_INET6;
	f.proto = ip6->nexthdr;
	f.iplen = plen + sizeof(*ip6);
	f.l4off = ETH_HLEN + sizeof(*ip6);
	copy16(f.saddr, (__u8 *)&ip6->saddr);
	copy16(f.daddr, (__u8 *)&ip6->daddr);
	if (f.proto == IPPROTO_ICMPV6) {
		struct icmp6hdr *ic = (void *)(ip6 + 1);
		if ((void *)(ic + 1) > end)
			return XDP_DROP;
		if (ic->icmp6_type >= 128)
			return XDP_PASS; /* informational (echo, ND): not ours */
		f.icmp = 1;
		return icmp_error(ctx, &f, f.l4off);
	}
	return l4(ctx, &f); /* extension headers (fragments too) are not TCP/UDP: passed */
}

/* Whether the frame is addressed to the interface's own MAC. veth, a
 * bridge port or any promiscuous NIC hands XDP frames for other hosts
 * too (a bridge floods the frames for a dead director's MAC): those are
 * the kernel's, which drops them. Broadcast and multicast frames (ARP,
 * neighbour discovery) are not ours either. */
static __always_inline int for_us(const struct ethhdr *eth)
{
	__u32 z = 0;
	struct rvs_ifmac *m = bpf_map_lookup_elem(&rvs_ifmac, &z);
	if (!m || !m->set)
		return 1;
	return *(const __u32 *)eth->h_dest == *(const __u32 *)m->addr &&
	       *(const __u16 *)(eth->h_dest + 4) == *(const __u16 *)(m->addr + 4);
}

SEC("xdp")
int rvs_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	if (!for_us(eth))
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return ipv4(ctx);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return ipv6(ctx);
	return XDP_PASS;
}

/* The entries' clock for userspace, through BPF_PROG_TEST_RUN: jiffies
 * in the frame's first 8 bytes. */
SEC("xdp")
int rvs_clock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u64 *j = data;
	if ((void *)(j + 1) > end)
		return XDP_DROP;
	*j = bpf_jiffies64();
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
