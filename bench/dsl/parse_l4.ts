// Packet parser: Ethernet → IPv4 (variable IHL) / IPv6 → TCP/UDP ports; per-class counters,
// the last destination port, and drop telnet.
import { type i32, u16, u32, TC_ACT_OK, TC_ACT_SHOT, TcContext, array, arrayMap, be16, be32, struct, u8 } from '../../compiler/dsl/index.ts';

export const Eth = struct({ dst: array(u8, 6), src: array(u8, 6), proto: be16 }, { name: 'ethhdr' });
export const Ip4 = struct({ vihl: u8, tos: u8, len: be16, id: be16, frag: be16, ttl: u8, proto: u8, csum: be16, src: be32, dst: be32 }, { name: 'iphdr' });
export const Ip6 = struct({ vtc: be32, plen: be16, next: u8, hops: u8, src: array(u8, 16), dst: array(u8, 16) }, { name: 'ipv6hdr' });
export const Ports = struct({ sport: be16, dport: be16 }, { name: 'ports' });
export const classes = arrayMap({ value: u32, maxEntries: 8 });
export const lastPort = arrayMap({ value: u32, maxEntries: 2 });

function bump(k: u32): void {
  const c = classes.lookup(k);
  if (c !== null) c.value = (c.value + 1) >>> 0;
}

export function parse_l4(skb: TcContext): i32 {
  const eth = skb.header(Eth, 0);
  if (eth === null) {
    bump(7);
    return TC_ACT_OK;
  }
  let proto: u8 = 0;
  let off: u16 = 14;
  let base: u8 = 0;
  if (eth.proto === 0x0800) {
    const ip = skb.header(Ip4, 14);
    if (ip === null) {
      bump(7);
      return TC_ACT_OK;
    }
    const ihl = ip.vihl & 15;
    if (ihl < 5) {
      bump(7);
      return TC_ACT_SHOT;
    }
    if ((ip.frag & 0x3fff) !== 0) {
      bump(3);
      return TC_ACT_OK;
    }
    proto = ip.proto;
    off = 14 + ihl * 4;
    base = 1;
  } else if (eth.proto === 0x86dd) {
    const ip6 = skb.header(Ip6, 14);
    if (ip6 === null) {
      bump(7);
      return TC_ACT_OK;
    }
    proto = ip6.next;
    off = 54;
    base = 4;
  } else {
    bump(0);
    return TC_ACT_OK;
  }
  if (proto !== 6 && proto !== 17) {
    bump(base + 2);
    return TC_ACT_OK;
  }
  const l4 = skb.header(Ports, off);
  if (l4 === null) {
    bump(7);
    return TC_ACT_OK;
  }
  bump(proto === 6 ? base : base + 1);
  lastPort.update(proto === 6 ? 0 : 1, l4.dport);
  return l4.dport === 23 ? TC_ACT_SHOT : TC_ACT_OK;
}
