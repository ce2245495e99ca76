// Dead-code elimination: drop pure instructions whose result is never read, until nothing
// changes. One backward walk per block removes whole dead chains inside it (a dead instruction
// does not make its operands live); liveness (bitsets) is recomputed only while a removal in one
// block can make definitions in another dead.

import { type IrFunction, defs, isPure, isVirtual, uses } from '../ir/ir.ts';
import { bitAdd, bitDel, bitHas, livenessBits } from './liveness.ts';

export function eliminateDeadCode(f: IrFunction): boolean {
  let any = false;
  for (;;) {
    const { liveOut } = livenessBits(f);
    let changed = false;
    for (const b of f.blocks) {
      const live = liveOut.get(b)!.slice();
      if (b.term) for (const u of uses(b.term)) bitAdd(live, u);
      const kept = [];
      for (let k = b.insns.length - 1; k >= 0; k--) {
        const i = b.insns[k]!;
        const d = defs(i);
        const dead = isPure(i) && d.length > 0 && d.every((r) => isVirtual(r) && !bitHas(live, r));
        const selfMove = i.op === 'mov' && i.dst === i.src;
        if (dead || selfMove) {
          changed = true;
          continue;
        }
        for (const r of d) bitDel(live, r);
        for (const u of uses(i)) bitAdd(live, u);
        kept.push(i);
      }
      if (kept.length !== b.insns.length) b.insns = kept.reverse();
    }
    if (!changed) return any;
    any = true;
  }
}
