#include "common.h"

struct bytes32 { __u8 b[32]; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 4);
} results SEC(".maps");

static __always_inline void put(__u32 k, __u32 v)
{
	bpf_map_update_elem(&results, &k, &v, BPF_ANY);
}

SEC("tc")
int fnv_hash(struct __sk_buff *skb)
{
	struct bytes32 *p = HEADER(skb, struct bytes32, 0);
	if (!p)
		return TC_ACT_OK;
	__u32 h = 0x811c9dc5;
	for (int i = 0; i < 32; i++)
		h = (h ^ p->b[i]) * 0x01000193;
	__u32 a = (__u32)p->b[0] << 24 | p->b[1] << 16 | p->b[2] << 8 | p->b[3];
	put(0, h);
	put(1, h ^ (h >> 16));
	put(2, a + h);
	put(3, h & 0xffff);
	return (h & 3) == 0 ? 2 : TC_ACT_OK;
}
