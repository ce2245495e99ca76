// Dead-code elimination: drop pure instructions whose result is never read, until nothing changes.

import { type IrFunction, defs, isPure, isVirtual, uses } from '../ir/ir.ts';
import { liveness } from './liveness.ts';

export function eliminateDeadCode(f: IrFunction): boolean {
  let any = false;
  for (;;) {
    const { liveOut } = liveness(f);
    let changed = false;
    for (const b of f.blocks) {
      const live = new Set(liveOut.get(b));
      if (b.term) for (const u of uses(b.term)) live.add(u);
      const kept = [];
      for (let k = b.insns.length - 1; k >= 0; k--) {
        const i = b.insns[k]!;
        const d = defs(i);
        const dead = isPure(i) && d.length > 0 && d.every((r) => isVirtual(r) && !live.has(r));
        const selfMove = i.op === 'mov' && i.dst === i.src;
        if (dead || selfMove) {
          changed = true;
          continue;
        }
        for (const r of d) live.delete(r);
        for (const u of uses(i)) live.add(u);
        kept.push(i);
      }
      b.insns = kept.reverse();
    }
    if (!changed) return any;
    any = true;
  }
}
