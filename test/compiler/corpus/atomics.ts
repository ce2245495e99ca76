// Atomic fetch-and-add on map values and globals: a 64-bit sequence counter (as the ESP engine's),
// a 32-bit counter, and a signed field; the old values are returned and stored.
import { type i32, i32 as I32, u32, u64, TC_ACT_OK, TcContext, arrayMap, fetchAdd, global, hashMap, struct } from '../../../compiler/dsl/index.ts';

export const Sa = struct({ seq: u64, packets: u32, delta: I32 }, { name: 'sa' });
export const sas = hashMap({ key: u32, value: Sa, maxEntries: 4 });
export const total = global(u64, 0xfffffffffffffffen);
export const seen = arrayMap({ value: u64, maxEntries: 4 });

export function atomics(skb: TcContext): i32 {
  sas.update(1, { seq: 0xfffffffffffffff0n, packets: 0xfffffffe, delta: -5 });
  const sa = sas.lookup(1);
  if (sa === null) return TC_ACT_OK;
  let last: u64 = 0n;
  for (let i = 0; i < 4; i++) last = fetchAdd(sa, 'seq', 8n);
  const oldPackets = fetchAdd(sa, 'packets', 3);
  const oldDelta = fetchAdd(sa, 'delta', -(skb.len & 7));
  const oldTotal = fetchAdd(total, 'value', BigInt(skb.len));
  seen.update(0, last);
  seen.update(1, BigInt(oldPackets));
  seen.update(2, BigInt.asUintN(64, BigInt(oldDelta)));
  seen.update(3, BigInt.asUintN(64, oldTotal + total.value));
  return oldDelta < 0 ? 1 : TC_ACT_OK;
}
