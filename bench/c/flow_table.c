#include "common.h"

struct iphdr { __u8 vihl, tos; __be16 len, id, frag; __u8 ttl, proto; __be16 csum; __be32 src, dst; };
struct tcphdr_min { __be16 sport, dport; __be32 seq, ack; __u8 off, flags; __be16 win; };
struct flow_key { __be32 saddr, daddr; __be16 sport, dport; __u8 proto, pad; __u16 pad2; };
struct flow { __u64 packets, bytes; __u32 firstLen, flags; };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct flow_key);
	__type(value, struct flow);
	__uint(max_entries, 1024);
} flows SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} totals SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} protoBytes SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 2);
} config SEC(".maps");

static __always_inline void total(__u32 k)
{
	__u64 *t = bpf_map_lookup_elem(&totals, &k);
	if (t)
		*t += 1;
}

SEC("tc")
int flow_table(struct __sk_buff *skb)
{
	struct iphdr *ip = HEADER(skb, struct iphdr, 14);
	if (!ip)
		return TC_ACT_OK;
	if (ip->vihl != 0x45)
		return TC_ACT_OK;
	total(0);
	__u32 pk = ip->proto;
	__u64 *pb = bpf_map_lookup_elem(&protoBytes, &pk);
	if (pb) {
		*pb += skb->len;
	} else {
		__u64 len = skb->len;
		bpf_map_update_elem(&protoBytes, &pk, &len, BPF_ANY);
	}
	if (ip->proto != 6 && ip->proto != 17)
		return TC_ACT_OK;
	struct tcphdr_min *tcp = HEADER(skb, struct tcphdr_min, 34);
	if (!tcp)
		return TC_ACT_OK;
	struct flow_key key = {};
	key.saddr = ip->src;
	key.daddr = ip->dst;
	key.sport = tcp->sport;
	key.dport = tcp->dport;
	key.proto = ip->proto;
	__u32 flags = ip->proto == 6 ? tcp->flags : 0;
	if (flags & 5) {
		if (bpf_map_delete_elem(&flows, &key) == 0)
			total(3);
		return TC_ACT_OK;
	}
	struct flow *f = bpf_map_lookup_elem(&flows, &key);
	if (f) {
		f->packets += 1;
		f->bytes += skb->len;
		f->flags |= flags;
		return TC_ACT_OK;
	}
	__u32 zero = 0;
	__u32 *limit = bpf_map_lookup_elem(&config, &zero);
	if (limit && *limit != 0 && skb->len > *limit)
		return TC_ACT_SHOT;
	struct flow n = { 1, skb->len, skb->len, flags };
	if (bpf_map_update_elem(&flows, &key, &n, BPF_NOEXIST) == 0)
		total(1);
	else
		total(2);
	return TC_ACT_OK;
}
