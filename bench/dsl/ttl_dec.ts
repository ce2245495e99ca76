// Router step: drop IPv4 with TTL ≤ 1, else decrement the TTL and fix the header checksum with
// bpf_l3_csum_replace; count forwarded and expired packets.
import { type i32, u32, TC_ACT_OK, TC_ACT_SHOT, TcContext, arrayMap, be16, be32, l3CsumReplace, struct, u8 } from '../../compiler/dsl/index.ts';

export const Ip4 = struct({ vihl: u8, tos: u8, len: be16, id: be16, frag: be16, ttl: u8, proto: u8, csum: be16, src: be32, dst: be32 }, { name: 'iphdr' });
export const stats = arrayMap({ value: u32, maxEntries: 2 });

export function ttl_dec(skb: TcContext): i32 {
  const ip = skb.header(Ip4, 14);
  if (ip === null) return TC_ACT_OK;
  if (ip.ttl <= 1) {
    const c = stats.lookup(1);
    if (c !== null) c.value = (c.value + 1) >>> 0;
    return TC_ACT_SHOT;
  }
  const old: u32 = (ip.ttl | (ip.proto << 8)) >>> 0;
  const next: u32 = ((ip.ttl - 1) | (ip.proto << 8)) >>> 0;
  ip.ttl = ip.ttl - 1;
  if (l3CsumReplace(skb, 24, old, next, 2n) !== 0) return TC_ACT_SHOT;
  const c = stats.lookup(0);
  if (c !== null) c.value = (c.value + 1) >>> 0;
  return TC_ACT_OK;
}
