// Encapsulation room and redirect: grow room after the IPv4 header (as ESP transport mode does),
// write a marker into it through a fresh view, shrink it again on odd lengths, then redirect.
import { type i32, u8, u32, TC_ACT_OK, TC_ACT_SHOT, TcContext, array, arrayMap, adjustRoom, redirect, struct, BPF_ADJ_ROOM_NET, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 } from '../../../compiler/dsl/index.ts';

export const Esp = struct({ spi: array(u8, 4), seq: array(u8, 4) }, { name: 'esp' });
export const status = arrayMap({ value: u32, maxEntries: 4 });

export function encap(skb: TcContext): i32 {
  const grow = adjustRoom(skb, 8, BPF_ADJ_ROOM_NET, 0n);
  status.update(0, grow >>> 0);
  if (grow !== 0) return TC_ACT_OK;
  const esp = skb.header(Esp, 34);
  if (esp === null) return TC_ACT_SHOT;
  for (let i = 0; i < 4; i++) esp.spi[i] = 0xa0 + i;
  esp.seq[3] = skb.len & 0xff;
  status.update(1, adjustRoom(skb, 4, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) >>> 0);
  status.update(2, adjustRoom(skb, 4, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) >>> 0);
  if ((skb.len & 1) === 1) status.update(3, adjustRoom(skb, -4, BPF_ADJ_ROOM_MAC, 0n) >>> 0);
  return redirect(skb.len, 0n);
}
