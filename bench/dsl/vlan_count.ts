// Strip up to two 802.1Q/802.1ad tags (parse only) and count packets and bytes per VLAN id.
import { type i32, u16, u32, TC_ACT_OK, TcContext, array, be16, hashMap, struct, u8, u64 } from '../../compiler/dsl/index.ts';

export const Eth = struct({ dst: array(u8, 6), src: array(u8, 6), proto: be16 }, { name: 'ethhdr' });
export const Vlan = struct({ tci: be16, proto: be16 }, { name: 'vlanhdr' });
export const VlanStats = struct({ packets: u64, bytes: u64 }, { name: 'vlan_stats' });
export const perVlan = hashMap({ key: u32, value: VlanStats, maxEntries: 4096 });

export function vlan_count(skb: TcContext): i32 {
  const eth = skb.header(Eth, 0);
  if (eth === null) return TC_ACT_OK;
  let proto: u16 = eth.proto;
  let vid: u32 = 0;
  let depth: u32 = 0;
  for (let i = 0; i < 2; i++) {
    if (proto !== 0x8100 && proto !== 0x88a8) break;
    const tag = skb.header(Vlan, 14 + i * 4);
    if (tag === null) return TC_ACT_OK;
    if (i === 0) vid = tag.tci & 0xfff;
    proto = tag.proto;
    depth = i + 1;
  }
  const key: u32 = (vid | (depth << 16)) >>> 0;
  const s = perVlan.lookup(key);
  if (s !== null) {
    s.packets += 1n;
    s.bytes += BigInt(skb.len);
  } else {
    perVlan.update(key, { packets: 1n, bytes: BigInt(skb.len) });
  }
  return proto === 0x0800 || proto === 0x86dd ? TC_ACT_OK : 2;
}
