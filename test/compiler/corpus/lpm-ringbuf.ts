// An LPM trie (BPF_MAP_TYPE_LPM_TRIE, BPF_F_NO_PREALLOC) of IPv4 prefixes filled from the packet:
// longest-prefix lookups, deletes by a key with bits past the prefix;
// a ring buffer written with ringbufOutput (its status observed); redirectNeigh's verdict.
import { type i32, TC_ACT_OK, TcContext, array, arrayMap, be32, local, lpmTrieMap, redirectNeigh, ringbufMap, ringbufOutput, struct, u8, u32 } from '../../../compiler/dsl/index.ts';

export const Ip4Key = struct({ prefixlen: u32, addr: be32 }, { name: 'ip4_lpm_key' });
export const Route = struct({ ifindex: u32, hits: u32 }, { name: 'route' });
export const routes = lpmTrieMap({ key: Ip4Key, value: Route, maxEntries: 8 });
export const events = ringbufMap({ maxEntries: 4096 });
export const results = arrayMap({ value: u32, maxEntries: 8 });
const Ip = struct({ pad: array(u8, 12), src: be32, dst: be32 }, { name: 'ip_addrs' });
const Event = struct({ dst: be32, len: u32, ifindex: u32 }, { name: 'route_event' });

export function route(skb: TcContext): i32 {
  const ip = skb.header(Ip, 14);
  if (ip === null) return TC_ACT_OK;
  routes.update({ prefixlen: 0, addr: 0 }, { ifindex: 1, hits: 0 });
  routes.update({ prefixlen: 8, addr: (ip.dst & 0xff000000) >>> 0 }, { ifindex: 8, hits: 0 });
  routes.update({ prefixlen: 16, addr: ip.dst & 0xffff0000 }, { ifindex: 16, hits: 0 });
  routes.update({ prefixlen: 16, addr: (ip.dst & 0xffff0000) >>> 0 }, { ifindex: 17, hits: 0 });
  routes.update({ prefixlen: 24, addr: (ip.src & 0xffffff00) >>> 0 }, { ifindex: 24, hits: 0 });
  results.update(6, Number(routes.update({ prefixlen: 33, addr: 0 }, { ifindex: 0, hits: 0 }) + 100n));
  const r = routes.lookup({ prefixlen: 32, addr: ip.dst });
  if (r === null) return TC_ACT_OK;
  r.hits = (r.hits + 1) >>> 0;
  results.update(0, r.ifindex);
  const s = routes.lookup({ prefixlen: 32, addr: ip.src });
  results.update(1, s === null ? 0 : s.ifindex);
  // A /12 query: /16 and /24 entries are longer than the key and do not match.
  const q = routes.lookup({ prefixlen: 12, addr: ip.dst });
  results.update(2, q === null ? 0 : q.ifindex);
  results.update(3, Number(routes.delete({ prefixlen: 16, addr: ip.dst }) + 100n));
  results.update(4, Number(routes.delete({ prefixlen: 16, addr: ip.dst }) + 100n));
  const t = routes.lookup({ prefixlen: 32, addr: ip.dst });
  const ev = local(Event, { dst: ip.dst, len: skb.len, ifindex: t === null ? 0 : t.ifindex });
  results.update(5, (ringbufOutput(events, ev) + 100) >>> 0);
  if ((skb.len & 1) === 0) return redirectNeigh(t === null ? 1 : t.ifindex, null, 0);
  return redirectNeigh(2, null, 0, 1n);
}
