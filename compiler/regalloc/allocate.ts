// Register allocation by graph colouring (Chaitin style) onto r0–r9.
//
// Passes: (1) liveness over the CFG; (2) an interference graph whose nodes are virtual registers
// plus the pre-coloured machine registers (call arguments, r0 results, call clobbers of r0–r5, so
// values live across a helper call land in r6–r9); (3) greedy colouring, most-constrained
// first, preferring the colour of a move partner so the move disappears; (4) a register that
// gets no colour is spilled to an 8-byte stack slot: every definition stores it, every use
// reloads it into a fresh short-lived register, and allocation runs again. Spill slots hold
// whole 64-bit registers, so the verifier keeps tracking spilled pointers.

import { type Insn, type IrFunction, type Reg, type Terminator, FIRST_VIRTUAL, defs, isVirtual, mapRegs, uses } from '../ir/ir.ts';
import { liveness } from '../opt/liveness.ts';

const COLOURS = [1, 2, 3, 4, 5, 0, 6, 7, 8, 9];

export interface Allocation {
  spills: number;
  rounds: number;
}

export function allocateRegisters(f: IrFunction): Allocation {
  let spills = 0;
  for (let round = 1; round <= 32; round++) {
    const { graph, moves } = interference(f);
    const colour = new Map<Reg, number>();
    const virtuals = [...graph.keys()].filter(isVirtual);
    virtuals.sort((a, b) => graph.get(b)!.size - graph.get(a)!.size || a - b);
    const spilled: Reg[] = [];
    for (const v of virtuals) {
      const taken = new Set<number>();
      for (const n of graph.get(v)!) {
        if (!isVirtual(n)) taken.add(n);
        else if (colour.has(n)) taken.add(colour.get(n)!);
      }
      let pick: number | undefined;
      for (const partner of moves.get(v) ?? []) {
        const c = isVirtual(partner) ? colour.get(partner) : partner;
        if (c !== undefined && c <= 9 && !taken.has(c)) {
          pick = c;
          break;
        }
      }
      pick ??= COLOURS.find((c) => !taken.has(c));
      if (pick === undefined) spilled.push(v);
      else colour.set(v, pick);
    }
    if (spilled.length === 0) {
      for (const b of f.blocks) {
        b.insns = b.insns.map((i) => mapRegs(i, (r) => colour.get(r) ?? r, (r) => colour.get(r) ?? r)).filter((i) => !(i.op === 'mov' && i.dst === i.src));
        if (b.term) b.term = mapRegs(b.term, (r) => colour.get(r) ?? r, (r) => colour.get(r) ?? r);
      }
      return { spills, rounds: round };
    }
    for (const v of spilled) spill(f, v);
    spills += spilled.length;
  }
  throw new Error(`register allocation did not converge for ${f.name}`);
}

function interference(f: IrFunction): { graph: Map<Reg, Set<Reg>>; moves: Map<Reg, Reg[]> } {
  const { liveOut } = liveness(f);
  const graph = new Map<Reg, Set<Reg>>();
  const moves = new Map<Reg, Reg[]>();
  const node = (r: Reg): Set<Reg> => {
    let s = graph.get(r);
    if (!s) graph.set(r, (s = new Set()));
    return s;
  };
  const edge = (a: Reg, b: Reg): void => {
    if (a === b || (!isVirtual(a) && !isVirtual(b))) return;
    node(a).add(b);
    node(b).add(a);
  };
  for (const b of f.blocks) {
    const live = new Set(liveOut.get(b));
    const all: (Insn | Terminator)[] = [...b.insns, ...(b.term ? [b.term] : [])];
    for (let k = all.length - 1; k >= 0; k--) {
      const i = all[k]!;
      const d = defs(i);
      for (const r of [...d, ...uses(i)]) if (isVirtual(r)) node(r);
      const moveSrc = i.op === 'mov' ? i.src : undefined;
      if (i.op === 'mov') {
        (moves.get(i.dst) ?? moves.set(i.dst, []).get(i.dst)!).push(i.src);
        (moves.get(i.src) ?? moves.set(i.src, []).get(i.src)!).push(i.dst);
      }
      // `ret v` wants v in r0: a move hint, so the final mov disappears.
      if (i.op === 'ret' && isVirtual(i.value)) (moves.get(i.value) ?? moves.set(i.value, []).get(i.value)!).push(0);
      for (const x of d) for (const l of live) if (l !== moveSrc) edge(x, l);
      // Registers defined together (a call's clobbers) must differ from each other too.
      for (const x of d) live.delete(x);
      for (const u of uses(i)) live.add(u);
    }
  }
  return { graph, moves };
}

/** Give `v` a stack slot: store after each definition, reload before each use. */
function spill(f: IrFunction, v: Reg): void {
  const slot = f.newSlot(8, 8, `spill %${v - FIRST_VIRTUAL}`);
  for (const b of f.blocks) {
    const out: Insn[] = [];
    for (const i of b.insns) {
      let useReg: Reg | undefined;
      let defReg: Reg | undefined;
      if (uses(i).includes(v)) {
        useReg = f.newReg();
        out.push({ op: 'load', size: 8, signed: false, dst: useReg, base: { slot }, off: 0, loc: i.loc });
      }
      const rewritten = mapRegs(i, (r) => (r === v ? useReg! : r), (r) => (r === v ? (defReg = f.newReg()) : r));
      out.push(rewritten);
      if (defReg !== undefined) out.push({ op: 'store', size: 8, base: { slot }, off: 0, value: { reg: defReg }, loc: i.loc });
    }
    b.insns = out;
    if (b.term && uses(b.term).includes(v)) {
      const r = f.newReg();
      b.insns.push({ op: 'load', size: 8, signed: false, dst: r, base: { slot }, off: 0, loc: b.term.loc });
      b.term = mapRegs(b.term, (x) => (x === v ? r : x), (x) => x);
    }
  }
}

/** Lay out stack slots below r10; returns the frame size in bytes. */
export function layoutFrame(f: IrFunction): number {
  let size = 0;
  for (const s of f.slots) {
    size = Math.ceil((size + s.size) / s.align) * s.align;
    s.offset = size;
  }
  return size;
}
