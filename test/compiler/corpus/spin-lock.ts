// bpf_spin_lock (G5): a 64-bit replay window in a hash map value whose check-and-set runs in one
// critical section, through a @noinline function (a static .text function without helper calls
// may be called while the lock is held); and an array map value with the lock first, released
// on both paths of a branch before helpers run again. The lock field sits between data fields
// (offset 4 in `window`); userspace sees it as zero in the kernel, the VM and Node.
import {
  type i32,
  type Infer,
  type u32,
  u32 as U32,
  u64,
  TC_ACT_OK,
  TC_ACT_SHOT,
  TcContext,
  arrayMap,
  bpfSpinLock,
  hashMap,
  spinLock,
  spinUnlock,
  struct,
} from '../../../compiler/dsl/index.ts';

export const Window = struct({ top: U32, lock: bpfSpinLock, bits: u64, hits: U32 }, { name: 'window' });
export const windows = hashMap({ key: U32, value: Window, maxEntries: 4 });
export const Pair = struct({ lock: bpfSpinLock, a: u64, b: u64 }, { name: 'pair' });
export const pairs = arrayMap({ value: Pair, maxEntries: 2 });
export const out = arrayMap({ value: U32, maxEntries: 4 });

/** 1 when seq is new (and marks it), 0 when seen or left of the 64-wide window. */
/** @noinline */
function accept(w: Infer<typeof Window>, seq: u32): u32 {
  const top: u32 = w.top;
  if (seq > top) {
    const d: u32 = (seq - top) & 127;
    w.bits = d >= 64 ? 1n : BigInt.asUintN(64, (w.bits << BigInt(d & 63)) | 1n);
    w.top = seq;
    return 1;
  }
  const k: u32 = (top - seq) & 0x7fffffff;
  if (k >= 64) return 0;
  const bit: u64 = 1n << BigInt(k & 63);
  if ((w.bits & bit) !== 0n) return 0;
  w.bits = w.bits | bit;
  return 1;
}

export function spin(skb: TcContext): i32 {
  if (windows.lookup(1) === null) windows.update(1, { top: 10, bits: 1n, hits: 0 });
  const w = windows.lookup(1);
  if (w === null) return TC_ACT_SHOT;
  const len: u32 = skb.len;
  spinLock(w, 'lock');
  const first: u32 = accept(w, len & 63);
  const again: u32 = accept(w, len & 63); // the same seq: refused
  const older: u32 = accept(w, (len >>> 2) & 15);
  w.hits = (w.hits + first + again + older) >>> 0;
  spinUnlock(w, 'lock');
  out.update(0, first);
  out.update(1, again);
  out.update(2, older);
  const p = pairs.lookup(len & 1);
  if (p === null) return TC_ACT_SHOT;
  spinLock(p, 'lock');
  if (len > 100) {
    p.a = BigInt.asUintN(64, p.a + BigInt(len));
    spinUnlock(p, 'lock');
    out.update(3, 1);
    return 1;
  }
  p.b = BigInt.asUintN(64, p.b + 1n);
  spinUnlock(p, 'lock');
  return TC_ACT_OK;
}
