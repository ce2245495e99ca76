// BPF-to-BPF calls: `@noinline` functions become static .text functions called with arguments
// in r1–r5 — scalars, views of stack buffers and map values, and the program context — and a
// function too big to inline is called the same way. Nested calls and calls from two programs
// share one copy.
import { type Infer, type i32, type u32, u8, u32 as U32, TC_ACT_OK, TcContext, array, arrayMap, loadBytes, local, struct } from '../../../compiler/dsl/index.ts';

export const Bytes = struct({ b: array(u8, 16) }, { name: 'bytes16' });
export const Counter = struct({ hits: U32, last: U32 }, { name: 'counter' });
export const counters = arrayMap({ value: Counter, maxEntries: 2 });
export const results = arrayMap({ value: U32, maxEntries: 4 });

/** @noinline */
function mix(a: u32, b: u32): u32 {
  return (Math.imul(a, 0x9e3779b1) ^ (b >>> 3)) >>> 0;
}

/** @noinline */
function sum(h: Infer<typeof Bytes>): u32 {
  let s: u32 = 0;
  for (let i = 0; i < 16; i++) s = mix(s, h.b[i]!);
  return s;
}

/** @noinline */
function bump(c: Infer<typeof Counter>, v: u32): void {
  c.hits = (c.hits + 1) >>> 0;
  c.last = v;
}

/** @noinline */
function fill(skb: TcContext, h: Infer<typeof Bytes>): i32 {
  return loadBytes(skb, 14, h);
}

/** @noinline */
function isEven(v: u32): boolean {
  return (v & 1) === 0;
}

export function calls(skb: TcContext): i32 {
  const h = local(Bytes);
  const r = fill(skb, h);
  const s = sum(h);
  const c = counters.lookup(0);
  if (c === null) return TC_ACT_OK;
  bump(c, s);
  results.update(0, s);
  results.update(1, (r + 100) >>> 0);
  results.update(2, isEven(s) ? 1 : 2);
  return isEven(skb.len) ? 1 : 0;
}

export function calls2(skb: TcContext): i32 {
  const c = counters.lookup(1);
  if (c === null) return TC_ACT_OK;
  bump(c, mix(skb.len, 7));
  bump(c, mix(skb.len, 9));
  return TC_ACT_OK;
}
