/* Shared by the C side of the codegen benchmark; bench/dsl holds the same programs in the DSL. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DATA(skb) ((void *)(long)(skb)->data)
#define DATA_END(skb) ((void *)(long)(skb)->data_end)
/* What the DSL's skb.header(T, off) does: a view of T at off, or NULL past data_end. */
#define HEADER(skb, T, off) ((void *)((char *)DATA(skb) + (off) + sizeof(T)) > DATA_END(skb) ? (T *)0 : (T *)((char *)DATA(skb) + (off)))

char LICENSE[] SEC("license") = "GPL";
