// CFG simplification: thread jumps through empty blocks, turn branches with equal targets into
// jumps, merge a block into its only predecessor, and drop unreachable blocks.

import { type Block, type IrFunction } from '../ir/ir.ts';

export function simplifyCfg(f: IrFunction): boolean {
  let changed = false;
  // Jump threading through blocks that only jump.
  const forward = (b: Block): Block => {
    const seen = new Set<Block>();
    while (b.insns.length === 0 && b.term?.op === 'jmp' && !seen.has(b) && b.term.target !== b) {
      seen.add(b);
      b = b.term.target;
    }
    return b;
  };
  for (const b of f.blocks) {
    const t = b.term;
    if (!t) continue;
    if (t.op === 'jmp') {
      const n = forward(t.target);
      if (n !== t.target) {
        b.term = { ...t, target: n };
        changed = true;
      }
    } else if (t.op === 'br') {
      const th = forward(t.then);
      const el = forward(t.else);
      if (th === el) {
        b.term = { op: 'jmp', target: th, loc: t.loc };
        changed = true;
      } else if (th !== t.then || el !== t.else) {
        b.term = { ...t, then: th, else: el };
        changed = true;
      }
    }
  }
  if (f.entry.insns.length === 0 && f.entry.term?.op === 'jmp' && f.entry.term.target !== f.entry) {
    // keep the entry block as is: it anchors the function
  }
  f.prune();
  // Merge straight-line pairs.
  const preds = new Map<Block, number>();
  for (const b of f.blocks) for (const s of b.successors()) preds.set(s, (preds.get(s) ?? 0) + 1);
  for (const b of f.blocks) {
    for (;;) {
      const t = b.term;
      if (!t || t.op !== 'jmp') break;
      const s = t.target;
      if (s === b || s === f.entry || preds.get(s) !== 1) break;
      b.insns.push(...s.insns);
      b.term = s.term;
      s.insns = [];
      s.term = { op: 'jmp', target: s }; // orphaned; pruned below
      preds.set(s, 0);
      changed = true;
    }
  }
  f.prune();
  return changed;
}
