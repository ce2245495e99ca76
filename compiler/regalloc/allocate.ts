// Register allocation by graph colouring onto r0–r9.
//
// Passes: (1) liveness over the CFG (bitsets, worklist); (2) a sparse interference graph whose
// nodes are virtual registers; machine registers are not nodes but a per-register mask of the
// machine registers it must avoid (call arguments, r0 results, call clobbers of r0–r5, so values
// live across a helper call land in r6–r9); (3) greedy colouring in order of first definition
// along the reverse post-order (for straight-line code the live ranges are intervals and this
// order colours them with no more registers than are live at once), preferring the colour of a
// move partner so the move disappears; (4) a register that cannot be coloured is spilled to an
// 8-byte stack slot: every definition stores it, every use reloads it into a fresh short-lived
// register (a `mov` from or to it becomes the load or store itself), and allocation runs again.
// Spill temporaries are never spilled again: when one cannot be coloured, the long-lived
// neighbour holding a usable colour is spilled instead. Spill slots hold whole 64-bit
// registers, so the verifier keeps tracking spilled pointers.
//
// Everything is linear in the size of the code plus the number of interference edges; spilling
// rewrites the function once per round, for all spilled registers together.

import { type Insn, type IrFunction, type Reg, type Terminator, FIRST_VIRTUAL, defs, isVirtual, mapRegs, uses } from '../ir/ir.ts';
import { bitForEach, livenessBits } from '../opt/liveness.ts';

const COLOURS = [1, 2, 3, 4, 5, 0, 6, 7, 8, 9];

export interface Allocation {
  spills: number;
  rounds: number;
}

interface Graph {
  /** Virtual neighbours of each register (indexed by register number). */
  adj: Reg[][];
  /** Machine registers each register must avoid, as a bit mask. */
  forbid: Int32Array;
  /** Move partners (virtual or machine) of each register. */
  moves: Reg[][];
  /** Registers that occur in the code, in order of first occurrence along the layout. */
  order: Reg[];
  first: Int32Array;
  last: Int32Array;
  /** Number of uses and definitions. */
  occurrences: Int32Array;
}

export function allocateRegisters(f: IrFunction): Allocation {
  let spills = 0;
  const temps = new Set<Reg>();
  for (let round = 1; round <= 32; round++) {
    const g = interference(f);
    const colour = new Int32Array(f.regCount).fill(-1);
    const spilled = new Set<Reg>();
    const weight = (r: Reg): number => g.occurrences[r]! / (g.last[r]! - g.first[r]! + 1);
    for (const v of g.order) {
      let taken = g.forbid[v]!;
      for (const n of g.adj[v]!) if (colour[n]! >= 0) taken |= 1 << colour[n]!;
      let pick = -1;
      for (const p of g.moves[v]!) {
        const c = isVirtual(p) ? colour[p]! : p;
        if (c >= 0 && c <= 9 && !(taken & (1 << c))) {
          pick = c;
          break;
        }
      }
      if (pick < 0) for (const c of COLOURS) if (!(taken & (1 << c))) { pick = c; break; }
      if (pick >= 0) {
        colour[v] = pick;
        continue;
      }
      // No colour left: spill v, or free a colour by spilling the neighbours that hold it,
      // whichever costs less (fewest uses per instruction of live range).
      let best = -1;
      let bestCost = temps.has(v) ? Infinity : weight(v);
      for (const c of COLOURS) {
        if (g.forbid[v]! & (1 << c)) continue;
        let cost = 0;
        for (const n of g.adj[v]!) {
          if (colour[n] !== c) continue;
          if (temps.has(n)) cost = Infinity;
          else cost += weight(n);
        }
        if (cost < bestCost) {
          bestCost = cost;
          best = c;
        }
      }
      if (best < 0) {
        if (temps.has(v)) throw new Error(`register allocation: no register for a spill reload in ${f.name}`);
        spilled.add(v);
        continue;
      }
      for (const n of g.adj[v]!) {
        if (colour[n] === best) {
          colour[n] = -1;
          spilled.add(n);
        }
      }
      colour[v] = best;
    }
    if (spilled.size === 0) {
      const map = (r: Reg): Reg => (isVirtual(r) && colour[r]! >= 0 ? colour[r]! : r);
      for (const b of f.blocks) {
        b.insns = b.insns.map((i) => mapRegs(i, map, map)).filter((i) => !(i.op === 'mov' && i.dst === i.src));
        if (b.term) b.term = mapRegs(b.term, map, map);
      }
      return { spills, rounds: round };
    }
    spill(f, spilled, temps);
    spills += spilled.size;
  }
  throw new Error(`register allocation did not converge for ${f.name}`);
}

/** Blocks in reverse post-order (then any unreachable ones): the order live ranges are numbered in. */
function layout(f: IrFunction): IrFunction['blocks'] {
  const order = f.reversePostOrder();
  const seen = new Set(order);
  for (const b of f.blocks) if (!seen.has(b)) order.push(b);
  return order;
}

function interference(f: IrFunction): Graph {
  const n = f.regCount;
  const { liveOut } = livenessBits(f);
  const adj: Reg[][] = Array.from({ length: n }, () => []);
  const moves: Reg[][] = Array.from({ length: n }, () => []);
  const forbid = new Int32Array(n);
  const first = new Int32Array(n).fill(-1);
  const last = new Int32Array(n);
  const occurrences = new Int32Array(n);
  const order: Reg[] = [];
  const edges = new Set<number>();
  const edge = (a: Reg, b: Reg): void => {
    if (a === b) return;
    const va = isVirtual(a);
    const vb = isVirtual(b);
    if (!va && !vb) return;
    if (!va) forbid[b] |= 1 << a;
    else if (!vb) forbid[a] |= 1 << b;
    else {
      const key = a < b ? a * n + b : b * n + a;
      if (edges.has(key)) return;
      edges.add(key);
      adj[a]!.push(b);
      adj[b]!.push(a);
    }
  };
  // Live set as a sparse set: O(1) add/delete, iteration over members only.
  const dense = new Int32Array(n);
  const sparse = new Int32Array(n);
  let size = 0;
  const has = (r: Reg): boolean => sparse[r]! < size && dense[sparse[r]!] === r;
  const add = (r: Reg): void => {
    if (has(r)) return;
    dense[size] = r;
    sparse[r] = size++;
  };
  const del = (r: Reg): void => {
    if (!has(r)) return;
    const k = sparse[r]!;
    const last = dense[--size]!;
    dense[k] = last;
    sparse[last] = k;
  };
  const blocks = layout(f);
  // Positions: first occurrences in layout order (the colouring order), extents for spill costs.
  let pos = 0;
  for (const b of blocks) {
    const all: (Insn | Terminator)[] = b.term ? [...b.insns, b.term] : b.insns;
    for (const i of all) {
      pos++;
      for (const r of [...uses(i), ...defs(i)]) {
        if (!isVirtual(r)) continue;
        occurrences[r]!++;
        if (first[r]! < 0) {
          first[r] = pos;
          order.push(r);
        }
        last[r] = pos;
      }
    }
  }
  for (const b of blocks) {
    size = 0;
    bitForEach(liveOut.get(b)!, add);
    const all: (Insn | Terminator)[] = b.term ? [...b.insns, b.term] : b.insns;
    for (let k = all.length - 1; k >= 0; k--) {
      const i = all[k]!;
      const d = defs(i);
      const moveSrc = i.op === 'mov' ? i.src : undefined;
      if (i.op === 'mov') {
        moves[i.dst]!.push(i.src);
        moves[i.src]!.push(i.dst);
      }
      // `ret v` wants v in r0: a move hint, so the final mov disappears.
      if (i.op === 'ret' && isVirtual(i.value)) moves[i.value]!.push(0);
      for (const x of d) for (let j = 0; j < size; j++) if (dense[j] !== moveSrc) edge(x, dense[j]!);
      for (const x of d) del(x);
      for (const u of uses(i)) add(u);
    }
  }
  // A live range that reaches the entry (used before any definition on some path) still
  // conflicts with the registers live there; nothing to add: edges come from definitions.
  return { adj, forbid, moves, order, first, last, occurrences };
}

/** Give each register of `spilled` a stack slot: store after each definition, reload before
 *  each use; the reload and store registers are recorded in `temps`. */
function spill(f: IrFunction, spilled: Set<Reg>, temps: Set<Reg>): void {
  const slots = new Map<Reg, number>();
  for (const v of spilled) slots.set(v, f.newSlot(8, 8, `spill %${v - FIRST_VIRTUAL}`));
  const temp = (): Reg => {
    const r = f.newReg();
    temps.add(r);
    return r;
  };
  for (const b of f.blocks) {
    const out: Insn[] = [];
    // A spilled register whose value the previous instruction left in a register (the store's
    // source): the next instruction reads that register instead of reloading.
    let avail = new Map<Reg, Reg>();
    for (const i of b.insns) {
      const loc = i.loc;
      const held = avail;
      avail = new Map();
      if (i.op === 'mov' && (spilled.has(i.src) || spilled.has(i.dst))) {
        let src = i.src;
        if (spilled.has(src)) {
          const d = spilled.has(i.dst) ? temp() : i.dst;
          out.push({ op: 'load', size: 8, signed: false, dst: d, base: { slot: slots.get(src)! }, off: 0, loc });
          src = d;
        }
        if (spilled.has(i.dst)) {
          out.push({ op: 'store', size: 8, base: { slot: slots.get(i.dst)! }, off: 0, value: { reg: src }, loc });
          avail.set(i.dst, src);
        }
        continue;
      }
      const us = uses(i).filter((r) => spilled.has(r));
      const ds = defs(i).filter((r) => spilled.has(r));
      if (us.length === 0 && ds.length === 0) {
        out.push(i);
        continue;
      }
      // One temporary per spilled register of the instruction, shared by its use and its
      // definition (two-address ALU and fetch_add need dst === source).
      const t = new Map<Reg, Reg>();
      for (const r of [...us, ...ds]) if (!t.has(r)) t.set(r, temp());
      for (const r of new Set(us)) {
        const h = held.get(r);
        if (h !== undefined) out.push({ op: 'mov', dst: t.get(r)!, src: h, loc });
        else out.push({ op: 'load', size: 8, signed: false, dst: t.get(r)!, base: { slot: slots.get(r)! }, off: 0, loc });
      }
      const m = (r: Reg): Reg => t.get(r) ?? r;
      out.push(mapRegs(i, m, m));
      for (const r of new Set(ds)) {
        out.push({ op: 'store', size: 8, base: { slot: slots.get(r)! }, off: 0, value: { reg: t.get(r)! }, loc });
        avail.set(r, t.get(r)!);
      }
    }
    b.insns = out;
    if (b.term) {
      const us = uses(b.term).filter((r) => spilled.has(r));
      if (us.length > 0) {
        const t = new Map<Reg, Reg>();
        for (const r of new Set(us)) {
          t.set(r, temp());
          b.insns.push({ op: 'load', size: 8, signed: false, dst: t.get(r)!, base: { slot: slots.get(r)! }, off: 0, loc: b.term.loc });
        }
        b.term = mapRegs(b.term, (x) => t.get(x) ?? x, (x) => x);
      }
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
