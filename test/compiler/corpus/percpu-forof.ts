// Per-CPU maps (array and hash; the kernel's per-CPU values are combined by the harness),
// `for (const x of fixedArray)` over packet, map and rodata arrays, and indexes bounded by
// `if (i < N)` / `if (i >= arr.length) return` guards instead of masks.
import { type i32, type u32, TC_ACT_OK, TcContext, array, arrayMap, perCpuArrayMap, perCpuHashMap, rodata, struct, u8, u16, u32 as U32, u64 } from '../../../compiler/dsl/index.ts';

export const Stats = struct({ packets: u64, bytes: u64, last: U32 }, { name: 'cpu_stats' }); // 20 bytes: 24 per CPU
export const stats = perCpuArrayMap({ value: Stats, maxEntries: 2 });
export const byProto = perCpuHashMap({ key: u16, value: u64, maxEntries: 16 });
export const out = arrayMap({ value: U32, maxEntries: 8 });
const Frame = struct({ dst: array(u8, 6), src: array(u8, 6), proto: array(u8, 2), body: array(u8, 12) }, { name: 'frame26' });
const WEIGHTS = rodata(array(U32, 5), [3, 5, 7, 11, 13]);
const Pairs = struct({ a: u8, b: u8 }, { name: 'pair' });
const Scratch = struct({ pairs: array(Pairs, 3), words: array(U32, 6) }, { name: 'scratch6' });
export const scratch = arrayMap({ value: Scratch, maxEntries: 1 });

export function percpu(skb: TcContext): i32 {
  const f = skb.header(Frame, 0);
  if (f === null) return TC_ACT_OK;
  const s = stats.lookup(skb.len & 1);
  if (s !== null) {
    s.packets += 1n;
    s.bytes += BigInt(skb.len);
    s.last = skb.len;
  }
  const proto: u32 = (f.proto[0] << 8) | f.proto[1];
  const c = byProto.lookup(proto & 0xffff);
  if (c === null) byProto.update(proto & 0xffff, 1n);
  else c.value += 1n;

  let sum: u32 = 0;
  for (const b of f.dst) sum = (sum + b) >>> 0;
  let weighted: u32 = 0;
  for (const w of WEIGHTS) weighted = (weighted + w * (sum & 0xff)) >>> 0;
  out.update(0, sum);
  out.update(1, weighted);

  const sc = scratch.lookup(0);
  if (sc === null) return TC_ACT_OK;
  for (const p of sc.pairs) {
    p.a = f.body[0] ^ p.b;
    p.b = (p.b + 1) & 0xff;
  }
  let words: u32 = 0;
  for (let w of sc.words) {
    w = (w + 1) >>> 0;
    words = (words + w) >>> 0;
  }
  out.update(2, words);
  for (const x of f.body) {
    if (x > 200) break;
    if ((x & 1) === 1) continue;
    sc.words[0] = (sc.words[0]! + x) >>> 0;
  }

  // Guards instead of masks.
  const i: u32 = (skb.len - 34) >>> 0;
  if (i < f.body.length) out.update(3, f.body[i]!);
  const j: u32 = f.body[0]!;
  if (j >= WEIGHTS.length) {
    out.update(4, 1000);
  } else out.update(4, WEIGHTS[j]!);
  const k: u32 = f.body[1]!;
  if (k >= 6) return TC_ACT_OK;
  out.update(5, sc.words[k]!);
  let m: u32 = f.body[2]! & 0x1f;
  if (m < 6 && m >= 1) out.update(6, sc.words[m]! + sc.words[m - 1]!);
  m = 0;
  return (sum & 1) === 0 ? TC_ACT_OK : 2;
}
