/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rvs_xdp.h - the layout of every map shared between the xdp engine's BPF
 * program (rvs_xdp.bpf.c) and its loader (crates/rvs-xdp/src/maps.rs).
 * All multi-byte fields are host order unless their name ends in _be;
 * addresses are in network order, IPv4 in the first 4 bytes of 16.
 * The Rust side encodes and decodes these structs byte by byte: change both.
 */
#ifndef RVS_XDP_H
#define RVS_XDP_H

#define RVS_MAX_SERVICES 4096
#define RVS_MAX_DESTS 65536
#define RVS_RING_SLOTS (1 << 20)
#define RVS_PUNT_MAX 2048

/* Address families as the maps store them. */
#define RVS_AF_INET 4
#define RVS_AF_INET6 6

/* Forwarding methods: the kernel's IP_VS_CONN_F_* values. */
#define RVS_FWD_MASQ 0
#define RVS_FWD_TUNNEL 2
#define RVS_FWD_ROUTE 3

/* Tunnel types: the kernel's IP_VS_CONN_F_TUNNEL_TYPE_*. */
#define RVS_TUN_IPIP 0
#define RVS_TUN_GUE 1
#define RVS_TUN_GRE 2

/* struct rvs_config.flags */
#define RVS_CFG_EXPIRE_NODEST (1u << 0)
#define RVS_CFG_CONN_REUSE (1u << 1)
#define RVS_CFG_MARKS (1u << 2) /* rvs_marks has entries: classify first packets */
#define RVS_CFG_SECURE_TCP (1u << 3) /* the secure_tcp defence is active: its TCP table */
#define RVS_CFG_JIFFIES (1u << 4) /* entries' `seen` is in jiffies (set by every
				   * loader since; maps pinned without it hold
				   * another clock's values: rewritten at load) */

/* A virtual service, keyed by address, port and protocol. A firewall-mark
 * service has protocol 0, port 0 and the mark (network order) in the
 * first 4 bytes of addr, as the kernel keys fwmark templates. */
struct rvs_svc_key {
	__u8 addr[16];
	__u16 port_be;
	__u8 proto;
	__u8 af;
};

/* struct rvs_svc.flags */
#define RVS_SVC_RING (1u << 0) /* new flows are scheduled from the ring */
#define RVS_SVC_PUNT (1u << 1) /* new flows go to userspace */

struct rvs_svc {
	__u32 id; /* index into svc_pos */
	__u32 flags;
	__u32 ring_off; /* the service's slice of ring[] */
	__u32 ring_len;
};

/* A real server slot. */
#define RVS_DEST_AVAILABLE (1u << 0) /* in its service (not in the trash) */
#define RVS_DEST_WEIGHT0 (1u << 1)

struct rvs_dest {
	__u8 addr[16];
	__u8 tun_src[16]; /* outer source address of tunnel packets */
	__u8 af;
	__u8 fwd;
	__u8 tun_type;
	__u8 flags;
	__u16 port_be; /* 0: the packet's own port */
	__u16 tun_port_be;
	__u32 svc; /* service id */
	/* The real server's port as configured (DR and tunnels ignore it):
	 * with svc and addr, what a restarted loader finds its slot by. */
	__u16 id_port_be;
	__u16 pad;
};

/* The next hop toward a real server, filled by the program from the FIB
 * (valid == 0: look it up); userspace zeroes it to force a refresh. */
struct rvs_nh {
	__u8 dmac[6];
	__u8 smac[6];
	__u32 ifindex;
	__u16 valid;
	__u16 mtu; /* the route's MTU toward the real server (0: unknown) */
};

/* Firewall-mark classification, what an iptables/nft MARK rule does for
 * LVS (XDP runs before netfilter, so there is no skb mark): an LPM trie
 * keyed by family, protocol and destination network; the value lists the
 * destination port ranges of that network (those of every covering
 * network included, so the longest match holds all that apply) with
 * their marks. Consulted for first packets before the address services,
 * as the kernel looks a marked packet's fwmark service up first. */
#define RVS_MAX_MARK_NETS 4096
#define RVS_MARK_RANGES 16

struct rvs_mark_key {
	__u32 prefixlen; /* 32 + the network's prefix length */
	__u8 af;
	__u8 proto;
	__u8 pad[2];
	__u8 addr[16];
};

struct rvs_mark_range {
	__u16 lo; /* destination ports, host order, inclusive */
	__u16 hi;
	__u32 mark;
};

struct rvs_marks {
	__u32 n;
	struct rvs_mark_range r[RVS_MARK_RANGES];
};

/* Connection keys: the client side (client address and port, virtual
 * address and port). */
struct rvs_conn4_key {
	__u32 caddr;
	__u32 vaddr;
	__u16 cport_be;
	__u16 vport_be;
	__u8 proto;
	__u8 pad[3];
};

struct rvs_conn6_key {
	__u8 caddr[16];
	__u8 vaddr[16];
	__u16 cport_be;
	__u16 vport_be;
	__u8 proto;
	__u8 pad[3];
};

/* struct rvs_conn.flags */
#define RVS_CONN_NOOUTPUT (1u << 0) /* DR/TUN: the INPUT_ONLY table */
#define RVS_CONN_USER (1u << 1)     /* installed by userspace (counted there) */
#define RVS_CONN_GEN_SHIFT 4        /* bits 4-7: reuse generation */

struct rvs_conn {
	__u16 dest;
	__u8 state;
	__u8 flags;
	__u32 seen; /* jiffies (low 32 bits) of the last packet */
};

/* NAT replies: real server side -> the virtual address and port. */
struct rvs_nat4_key {
	__u32 raddr;
	__u32 caddr;
	__u16 rport_be;
	__u16 cport_be;
	__u8 proto;
	__u8 pad[3];
};

struct rvs_nat4 {
	__u32 vaddr;
	__u16 vport_be;
	__u16 pad;
};

struct rvs_nat6_key {
	__u8 raddr[16];
	__u8 caddr[16];
	__u16 rport_be;
	__u16 cport_be;
	__u8 proto;
	__u8 pad[3];
};

struct rvs_nat6 {
	__u8 vaddr[16];
	__u16 vport_be;
	__u16 pad;
};

/* Per real server counters (per CPU). */
struct rvs_stats {
	__u64 conns;
	__u64 inpkts;
	__u64 outpkts;
	__u64 inbytes;
	__u64 outbytes;
};

struct rvs_config {
	__u32 flags;
	__u32 punt_budget; /* first packets sent to userspace per CPU per second */
};

/* The MAC address of the interface the program is attached to (map
 * rvs_ifmac, not pinned: userspace writes it at every start and when it
 * changes). Frames for any other destination are passed untouched. */
struct rvs_ifmac {
	__u8 addr[6];
	__u16 set; /* 0: not set, every frame is examined */
};

/* The address pre-filter (map rvs_addrs): two bits per hashed address,
 * RVS_ADDR_VIP for the virtual address of a service or of a connection
 * entry, RVS_ADDR_NATRS for the address of a NAT real server. A frame
 * whose destination has no VIP bit and whose source has no NATRS bit is
 * none of ours (one inlined array read each instead of four hash
 * lookups); a bit set may be another address's (then the lookups decide).
 * Position of an address: h = (w * 0x9e3779b1) >> 16 with w its first
 * 32-bit word as loaded (IPv6: the four words xored); word h >> 5, bits
 * (h & 31) * 2. Userspace (maps::addr_filter_pos) computes the same. */
#define RVS_FILTER_WORDS 2048
#define RVS_ADDR_VIP 1u
#define RVS_ADDR_NATRS 2u

/* Ring buffer events. */
#define RVS_EV_PUNT 1  /* a first packet for userspace to schedule */
#define RVS_EV_NEIGH 2 /* no neighbour entry for a real server: resolve it */
#define RVS_EV_XMIT 3  /* a NAT reply (rewritten) whose next hop toward the
			* client has no neighbour entry: userspace sends it
			* through the kernel, which resolves the neighbour */
#define RVS_EV_TOOBIG 4 /* a tunnel packet over the route's MTU (DF or
			 * IPv6): the client's packet as received (at most
			 * RVS_PUNT_MAX bytes), dest = the MTU left for it;
			 * userspace answers "fragmentation needed" / "packet
			 * too big" */
#define RVS_EV_FRAG 6 /* an IPv4 packet without DF too big for the tunnel
		      * (TTL decremented; at most RVS_PUNT_MAX bytes, larger
		      * ones are dropped), dest = the real-server slot:
		      * userspace sends it through the kernel's tunnel
		      * sockets, which fragment the tunnel packet */
#define RVS_EV_TUNICMP 5 /* an ICMP error about one of our tunnel packets
			  * (at most RVS_PUNT_MAX bytes): userspace sends the
			  * client the error about its own packet */

struct rvs_event {
	__u32 kind;
	__u32 len;
	__u32 ifindex;
	__u32 dest;
	__u8 data[RVS_PUNT_MAX];
};

#endif
