// Count packets and bytes per EtherType; drop frames whose destination MAC bytes sum high.
import { type i32, u32, TC_ACT_OK, TC_ACT_SHOT, TcContext, array, be16, hashMap, struct, u8, u64 } from '../../compiler/dsl/index.ts';

export const EthHdr = struct({ dst: array(u8, 6), src: array(u8, 6), proto: be16 }, { name: 'ethhdr' });
export const Counter = struct({ packets: u64, bytes: u64 }, { name: 'counter' });
export const counters = hashMap({ key: u32, value: Counter, maxEntries: 64 });

export function count_proto(skb: TcContext): i32 {
  const eth = skb.header(EthHdr, 0);
  if (eth === null) return TC_ACT_OK;
  let sum: u32 = 0;
  for (let i = 0; i < 6; i++) sum = (sum + eth.dst[i]) >>> 0;
  const key: u32 = eth.proto;
  const c = counters.lookup(key);
  if (c !== null) {
    c.packets += 1n;
    c.bytes += BigInt(skb.len);
  } else {
    counters.update(key, { packets: 1n, bytes: BigInt(skb.len) });
  }
  return sum > 600 ? TC_ACT_SHOT : TC_ACT_OK;
}
