#include "common.h"

struct ethhdr { __u8 dst[6]; __u8 src[6]; __be16 proto; };
struct counter { __u64 packets; __u64 bytes; };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, 64);
} counters SEC(".maps");

SEC("tc")
int count_proto(struct __sk_buff *skb)
{
	struct ethhdr *eth = HEADER(skb, struct ethhdr, 0);
	if (!eth)
		return TC_ACT_OK;
	__u32 sum = 0;
	for (int i = 0; i < 6; i++)
		sum += eth->dst[i];
	__u32 key = bpf_ntohs(eth->proto);
	struct counter *c = bpf_map_lookup_elem(&counters, &key);
	if (c) {
		c->packets += 1;
		c->bytes += skb->len;
	} else {
		struct counter n = { 1, skb->len };
		bpf_map_update_elem(&counters, &key, &n, BPF_ANY);
	}
	return sum > 600 ? TC_ACT_SHOT : TC_ACT_OK;
}
