// bpfLoop: bpf_loop (helper 181) with callbacks compiled as static .text functions whose address
// is loaded with LD_IMM64 src=4. The first loop XORs a 1400-byte map value 16 bytes per
// iteration (1400/16 = 87 calls, two 8-byte loads and stores each); the second stops early by
// returning 1; the callback context is a local(T) on the caller's stack.
import { type Infer, type i32, type u32, u32 as U32, u64, TC_ACT_OK, TcContext, array, arrayMap, bpfLoop, local, struct } from '../../../compiler/dsl/index.ts';

export const Buf = struct({ w: array(u64, 175) }, { name: 'buf1400' });
export const bufs = arrayMap({ value: Buf, maxEntries: 1 });
export const State = struct({ key: u64, count: U32, stopAt: U32 }, { name: 'loop_state' });
export const results = arrayMap({ value: U32, maxEntries: 4 });

function xorStep(i: u32, st: Infer<typeof State>): i32 {
  const b = bufs.lookup(0);
  if (b === null) return 1;
  const j = i * 2;
  b.w[j] = b.w[j]! ^ st.key;
  b.w[j + 1] = b.w[j + 1]! ^ BigInt.asUintN(64, st.key << 1n);
  st.count = (st.count + 1) >>> 0;
  return 0;
}

function until(i: u32, st: Infer<typeof State>): i32 {
  st.count = (st.count + i) >>> 0;
  return i === st.stopAt ? 1 : 0;
}

export function loops(skb: TcContext): i32 {
  const b = bufs.lookup(0);
  if (b === null) return TC_ACT_OK;
  b.w[3] = BigInt(skb.len);
  const st = local(State, { key: 0x0123456789abcdefn, count: 0, stopAt: skb.len & 63 });
  const n = bpfLoop((1400 / 16) >>> 0, xorStep, st);
  results.update(0, n);
  results.update(1, st.count);
  st.count = 0;
  const m = bpfLoop(100, until, st);
  results.update(2, m);
  results.update(3, st.count);
  return TC_ACT_OK;
}
