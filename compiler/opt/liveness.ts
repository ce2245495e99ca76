// Backward liveness over the CFG: which registers are live into and out of each block.

import { type Block, type IrFunction, type Reg, defs, uses } from '../ir/ir.ts';

export interface Liveness {
  liveIn: Map<Block, Set<Reg>>;
  liveOut: Map<Block, Set<Reg>>;
}

export function liveness(f: IrFunction): Liveness {
  const liveIn = new Map<Block, Set<Reg>>();
  const liveOut = new Map<Block, Set<Reg>>();
  const gen = new Map<Block, Set<Reg>>();
  const kill = new Map<Block, Set<Reg>>();
  for (const b of f.blocks) {
    const g = new Set<Reg>();
    const k = new Set<Reg>();
    for (const i of [...b.insns, ...(b.term ? [b.term] : [])]) {
      for (const u of uses(i)) if (!k.has(u)) g.add(u);
      for (const d of defs(i)) k.add(d);
    }
    gen.set(b, g);
    kill.set(b, k);
    liveIn.set(b, new Set(g));
    liveOut.set(b, new Set());
  }
  const order = f.reversePostOrder().reverse();
  let changed = true;
  while (changed) {
    changed = false;
    for (const b of order) {
      const out = liveOut.get(b)!;
      for (const s of b.successors()) for (const r of liveIn.get(s) ?? []) out.add(r);
      const inn = liveIn.get(b)!;
      const k = kill.get(b)!;
      for (const r of out) {
        if (!k.has(r) && !inn.has(r)) {
          inn.add(r);
          changed = true;
        }
      }
    }
  }
  return { liveIn, liveOut };
}
