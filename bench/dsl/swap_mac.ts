// Reflect a frame: swap the Ethernet addresses, and for IPv4 the IP addresses; redirect.
import { type i32, TC_ACT_OK, TcContext, array, be16, be32, redirect, struct, u8 } from '../../compiler/dsl/index.ts';

export const Eth = struct({ dst: array(u8, 6), src: array(u8, 6), proto: be16 }, { name: 'ethhdr' });
export const Ip4 = struct({ vihl: u8, tos: u8, len: be16, id: be16, frag: be16, ttl: u8, proto: u8, csum: be16, src: be32, dst: be32 }, { name: 'iphdr' });

export function swap_mac(skb: TcContext): i32 {
  const eth = skb.header(Eth, 0);
  if (eth === null) return TC_ACT_OK;
  for (let i = 0; i < 6; i++) {
    const t = eth.dst[i];
    eth.dst[i] = eth.src[i];
    eth.src[i] = t;
  }
  if (eth.proto === 0x0800) {
    const ip = skb.header(Ip4, 14);
    if (ip === null) return TC_ACT_OK;
    const t = ip.src;
    ip.src = ip.dst;
    ip.dst = t;
  }
  return redirect(1);
}
