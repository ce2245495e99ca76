// Backward liveness over the CFG: which registers are live into and out of each block.
//
// Sets are bitsets over register numbers (one Uint32Array per block) solved with a worklist in
// post-order, so the cost is O(blocks × registers / 32) per visit and only blocks whose
// successors changed are revisited. `liveness` gives the same answer as Sets for callers that
// want them; `livenessBits` is what the optimiser and the register allocator use.

import { type Block, type IrFunction, type Reg, defs, uses } from '../ir/ir.ts';

export interface Liveness {
  liveIn: Map<Block, Set<Reg>>;
  liveOut: Map<Block, Set<Reg>>;
}

export interface LiveBits {
  /** Words per set. */
  words: number;
  liveIn: Map<Block, Uint32Array>;
  liveOut: Map<Block, Uint32Array>;
}

export const bitHas = (s: Uint32Array, r: number): boolean => (s[r >>> 5]! & (1 << (r & 31))) !== 0;
export const bitAdd = (s: Uint32Array, r: number): void => {
  s[r >>> 5]! |= 1 << (r & 31);
};
export const bitDel = (s: Uint32Array, r: number): void => {
  s[r >>> 5]! &= ~(1 << (r & 31));
};
/** Calls `fn` for every member of the set, in increasing order. */
export function bitForEach(s: Uint32Array, fn: (r: number) => void): void {
  for (let w = 0; w < s.length; w++) {
    let x = s[w]!;
    while (x !== 0) {
      const low = x & -x;
      fn(w * 32 + (31 - Math.clz32(low)));
      x ^= low;
    }
  }
}

export function livenessBits(f: IrFunction): LiveBits {
  const words = (f.regCount + 31) >>> 5;
  const liveIn = new Map<Block, Uint32Array>();
  const liveOut = new Map<Block, Uint32Array>();
  const gen = new Map<Block, Uint32Array>();
  const kill = new Map<Block, Uint32Array>();
  const preds = new Map<Block, Block[]>();
  for (const b of f.blocks) preds.set(b, []);
  for (const b of f.blocks) {
    const g = new Uint32Array(words);
    const k = new Uint32Array(words);
    const visit = (i: Parameters<typeof uses>[0]): void => {
      for (const u of uses(i)) if (!bitHas(k, u)) bitAdd(g, u);
      for (const d of defs(i)) bitAdd(k, d);
    };
    for (const i of b.insns) visit(i);
    if (b.term) visit(b.term);
    gen.set(b, g);
    kill.set(b, k);
    liveIn.set(b, g.slice());
    liveOut.set(b, new Uint32Array(words));
    for (const s of b.successors()) {
      let p = preds.get(s);
      if (!p) preds.set(s, (p = []));
      p.push(b);
    }
  }
  // Post-order first: most blocks see their successors' final sets on the first visit.
  const order = f.reversePostOrder().reverse();
  const queued = new Set<Block>(order);
  for (const b of f.blocks) if (!queued.has(b)) (order.push(b), queued.add(b));
  const work = order.slice().reverse(); // popped from the end: post-order
  while (work.length > 0) {
    const b = work.pop()!;
    queued.delete(b);
    const out = liveOut.get(b)!;
    for (const s of b.successors()) {
      const si = liveIn.get(s);
      if (!si) continue;
      for (let w = 0; w < words; w++) out[w]! |= si[w]!;
    }
    const inn = liveIn.get(b)!;
    const g = gen.get(b)!;
    const k = kill.get(b)!;
    let changed = false;
    for (let w = 0; w < words; w++) {
      const v = (g[w]! | (out[w]! & ~k[w]!)) >>> 0;
      if (v !== inn[w]) {
        inn[w] = v;
        changed = true;
      }
    }
    if (changed) {
      for (const p of preds.get(b) ?? []) {
        if (!queued.has(p)) {
          queued.add(p);
          work.push(p);
        }
      }
    }
  }
  return { words, liveIn, liveOut };
}

export function liveness(f: IrFunction): Liveness {
  const bits = livenessBits(f);
  const toSet = (s: Uint32Array): Set<Reg> => {
    const r = new Set<Reg>();
    bitForEach(s, (x) => r.add(x));
    return r;
  };
  const liveIn = new Map<Block, Set<Reg>>();
  const liveOut = new Map<Block, Set<Reg>>();
  for (const [b, s] of bits.liveIn) liveIn.set(b, toSet(s));
  for (const [b, s] of bits.liveOut) liveOut.set(b, toSet(s));
  return { liveIn, liveOut };
}
