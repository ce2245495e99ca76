// Dead-store elimination for stack slots within a block: a store to [slot+off, size) that is
// completely overwritten before anything can read the slot (a load from it, a helper call, or
// taking its address) is removed. This drops the zeroing of key/value buffers whose fields are
// all written afterwards, while padding bytes keep their zeros.

import type { Insn, IrFunction } from '../ir/ir.ts';

export function eliminateDeadStores(f: IrFunction): boolean {
  let changed = false;
  for (const b of f.blocks) {
    const dead = new Set<Insn>();
    b.insns.forEach((i, k) => {
      if (i.op !== 'store' || !('slot' in i.base)) return;
      const slot = i.base.slot;
      // Bytes of this store not yet overwritten.
      const pending = new Set<number>();
      for (let x = i.off; x < i.off + i.size; x++) pending.add(x);
      for (let n = k + 1; n < b.insns.length && pending.size > 0; n++) {
        const j = b.insns[n]!;
        if (j.op === 'call' || j.op === 'call_local' || j.op === 'call_kfunc' || (j.op === 'addr' && j.slot === slot) || (j.op === 'load' && 'slot' in j.base && j.base.slot === slot)) return;
        if (j.op === 'store' && 'slot' in j.base && j.base.slot === slot) for (let x = j.off; x < j.off + j.size; x++) pending.delete(x);
      }
      if (pending.size === 0) dead.add(i);
    });
    if (dead.size) {
      b.insns = b.insns.filter((i) => !dead.has(i));
      changed = true;
    }
  }
  return changed;
}
