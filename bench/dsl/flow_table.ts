// Map-heavy: a 5-tuple flow table (hash), per-CPU totals, per-protocol byte counts (hash), a
// config array; TCP FIN/RST removes the flow.
import { type i32, u32, TC_ACT_OK, TC_ACT_SHOT, TcContext, BPF_NOEXIST, arrayMap, be16, be32, hashMap, perCpuArrayMap, local, struct, u16, u8, u64 } from '../../compiler/dsl/index.ts';

export const Ip4 = struct({ vihl: u8, tos: u8, len: be16, id: be16, frag: be16, ttl: u8, proto: u8, csum: be16, src: be32, dst: be32 }, { name: 'iphdr' });
export const Tcp = struct({ sport: be16, dport: be16, seq: be32, ack: be32, off: u8, flags: u8, win: be16 }, { name: 'tcphdr_min' });
export const FlowKey = struct({ saddr: be32, daddr: be32, sport: be16, dport: be16, proto: u8, pad: u8, pad2: u16 }, { name: 'flow_key' });
export const Flow = struct({ packets: u64, bytes: u64, firstLen: u32, flags: u32 }, { name: 'flow' });
export const flows = hashMap({ key: FlowKey, value: Flow, maxEntries: 1024 });
export const totals = perCpuArrayMap({ value: u64, maxEntries: 4 });
export const protoBytes = hashMap({ key: u32, value: u64, maxEntries: 256 });
export const config = arrayMap({ value: u32, maxEntries: 2 });

function total(k: u32): void {
  const t = totals.lookup(k);
  if (t !== null) t.value += 1n;
}

export function flow_table(skb: TcContext): i32 {
  const ip = skb.header(Ip4, 14);
  if (ip === null) return TC_ACT_OK;
  if (ip.vihl !== 0x45) return TC_ACT_OK;
  total(0);
  const pb = protoBytes.lookup(ip.proto);
  if (pb !== null) pb.value += BigInt(skb.len);
  else protoBytes.update(ip.proto, BigInt(skb.len));
  if (ip.proto !== 6 && ip.proto !== 17) return TC_ACT_OK;
  const tcp = skb.header(Tcp, 34);
  if (tcp === null) return TC_ACT_OK;
  const key = local(FlowKey);
  key.saddr = ip.src;
  key.daddr = ip.dst;
  key.sport = tcp.sport;
  key.dport = tcp.dport;
  key.proto = ip.proto;
  const flags: u32 = ip.proto === 6 ? tcp.flags : 0;
  if ((flags & 5) !== 0) {
    if (flows.delete(key) === 0n) total(3);
    return TC_ACT_OK;
  }
  const f = flows.lookup(key);
  if (f !== null) {
    f.packets += 1n;
    f.bytes += BigInt(skb.len);
    f.flags = (f.flags | flags) >>> 0;
    return TC_ACT_OK;
  }
  const limit = config.lookup(0);
  if (limit !== null && limit.value !== 0 && skb.len > limit.value) return TC_ACT_SHOT;
  if (flows.update(key, { packets: 1n, bytes: BigInt(skb.len), firstLen: skb.len, flags: flags }, BPF_NOEXIST) === 0n) total(1);
  else total(2);
  return TC_ACT_OK;
}
