// Local simplification per basic block, one forward walk each (linear in the block):
//
//  * constant folding and copy propagation (BPF semantics, see fold.ts), commuting a constant
//    first operand of add/mul/and/or/xor into the immediate;
//  * known bits: bits proven zero in a register (from masks, shifts, zero-extending loads and
//    ops, constants). An AND whose mask keeps every bit that may be set is a move, so a bounds
//    mask on an index that is already in range disappears (the verifier's tnums see the same
//    bits, since they come from the same instructions). Facts of registers with one definition
//    in the function hold at every use; others only within the block;
//  * strength reduction: mul/udiv by 2^k become shifts; shifts of shifts combine; a left shift
//    of a value masked to the bits the shift keeps drops the mask;
//  * reassociation of constant offsets: (x + c) << k is (x << k) + (c << k), base + (x + c) is
//    (base + x) + c, and a load/store from (p + c) addresses [p + c] directly, so the two table
//    loads of one index share their address;
//  * local value numbering: a pure instruction computing what a register in the block already
//    holds becomes a move;
//  * memory: a load from [base+off] that a store (or load) of the same size in the block already
//    holds becomes a move. A store to a register base forgets everything that may alias (other
//    register bases, overlapping bytes of the same base); stack slots do not alias registers or
//    each other unless their address was taken; calls and atomics forget everything.
//
// The IR is not in SSA form, so each register carries a version (bumped on every definition)
// and every remembered fact names the versions it was computed from.

import { type AluName, type Block, type Insn, type IrFunction, type Operand, type Reg, defs, isVirtual, mapRegs, uses } from '../ir/ir.ts';
import { mayAlias, pointerOrigins } from './alias.ts';
import { evalAlu, evalCmp } from './fold.ts';

const M64 = (1n << 64n) - 1n;
const fitsImm = (v: bigint): boolean => v >= -(1n << 31n) && v < 1n << 31n;
const fitsOff = (v: number): boolean => v >= -32768 && v <= 32767;
const COMMUTATIVE = new Set<AluName>(['add', 'mul', 'and', 'or', 'xor']);
const log2 = (v: bigint): number => {
  if (v <= 0n || (v & (v - 1n)) !== 0n) return -1;
  return v.toString(2).length - 1;
};

/** Bits that may be set in the value of an instruction's result, given its operands' (64-bit). */
type MaySet = (r: Reg) => bigint;

function maySetOf(i: Insn, may: MaySet): bigint {
  const opnd = (o: Operand): bigint => ('imm' in o ? BigInt.asUintN(64, o.imm) : may(o.reg));
  const below = (x: bigint): bigint => (x === 0n ? 0n : (1n << BigInt(x.toString(2).length)) - 1n); // all bits up to x's top
  switch (i.op) {
    case 'const':
      return BigInt.asUintN(64, i.value);
    case 'mov':
      return may(i.src);
    case 'zext32':
      return may(i.a) & 0xffffffffn;
    case 'bswap':
      return i.bits === 64 ? M64 : (1n << BigInt(i.bits)) - 1n;
    case 'load':
      return i.signed || i.size === 8 ? M64 : (1n << BigInt(i.size * 8)) - 1n;
    case 'alu': {
      const a = may(i.a);
      const b = opnd(i.b);
      const w = i.width === 32 ? 0xffffffffn : M64;
      const imm = 'imm' in i.b ? BigInt.asUintN(i.width, i.b.imm) : undefined;
      switch (i.alu) {
        case 'and': return a & b & w;
        case 'or':
        case 'xor': return (a | b) & w;
        case 'add': return (a & b) === 0n ? (a | b) & w : below(a) + below(b) <= w ? below(below(a) + below(b)) : w;
        case 'mul': return imm !== undefined && below(a) * imm <= w ? below(below(a) * imm) : w;
        case 'lsh': return imm !== undefined ? (a << (imm & BigInt(i.width - 1))) & w : w;
        case 'rsh': return imm !== undefined ? (a & w) >> (imm & BigInt(i.width - 1)) : a & w;
        default: return w;
      }
    }
    default:
      return M64;
  }
}

export function simplifyLocal(f: IrFunction): boolean {
  let changed = false;
  // Registers defined once in the whole function: their facts hold at every use.
  const defCount = new Int32Array(f.regCount);
  for (const b of f.blocks) for (const i of b.insns) for (const d of defs(i)) defCount[d]!++;
  const single = (r: Reg): boolean => isVirtual(r) && defCount[r] === 1;
  const globalMay = new Map<Reg, bigint>();
  const globalConst = new Map<Reg, bigint>();
  let slotsEscape = false;
  for (const b of f.blocks) for (const i of b.insns) if (i.op === 'addr' || uses(i).includes(10)) slotsEscape = true;
  const origins = pointerOrigins(f);
  for (const b of f.reversePostOrder()) if (simplifyBlock(f, b, single, globalMay, globalConst, slotsEscape, origins)) changed = true;
  return changed;
}

interface Def {
  insn: Insn;
  /** Versions of the registers it read. */
  vers: number[];
}

function simplifyBlock(f: IrFunction, b: Block, single: (r: Reg) => boolean, globalMay: Map<Reg, bigint>, globalConst: Map<Reg, bigint>, slotsEscape: boolean, origins: Map<Reg, string>): boolean {
  let changed = false;
  const ver = new Map<Reg, number>();
  const v = (r: Reg): number => ver.get(r) ?? 0;
  const consts = new Map<Reg, bigint>(); // key: reg, valid while version unchanged (cleared on def)
  const copies = new Map<Reg, { src: Reg; ver: number }>();
  const mayLocal = new Map<Reg, bigint>();
  const defsOf = new Map<Reg, Def>();
  const values = new Map<string, { reg: Reg; ver: number }>(); // value numbering: expression key → holder
  const memory = new Map<string, { reg: Reg; ver: number; imm?: bigint; base: string; baseKind: 'reg' | 'slot'; baseReg?: Reg; off: number; size: number }>();

  const constOf = (r: Reg): bigint | undefined => consts.get(r) ?? globalConst.get(r);
  const may = (r: Reg): bigint => mayLocal.get(r) ?? globalMay.get(r) ?? M64;
  const resolve = (r: Reg): Reg => {
    const c = copies.get(r);
    return c && v(c.src) === c.ver ? c.src : r;
  };
  const defOf = (r: Reg): Insn | undefined => {
    const d = defsOf.get(r);
    if (!d) return undefined;
    const rs = uses(d.insn);
    for (let k = 0; k < rs.length; k++) if (v(rs[k]!) !== d.vers[k]) return undefined;
    return d.insn;
  };
  const opnd = (o: Operand): Operand => {
    if ('imm' in o) return o;
    const r = resolve(o.reg);
    const c = constOf(r);
    return c !== undefined && fitsImm(c) ? { imm: c } : { reg: r };
  };
  const regKey = (r: Reg): string => `${r}@${v(r)}`;
  const baseKey = (i: { base: { reg: Reg } | { slot: number } }): string => ('reg' in i.base ? `r${regKey(i.base.reg)}` : `s${i.base.slot}`);
  const exprKey = (i: Insn): string | undefined => {
    const o = (x: Operand): string => ('imm' in x ? `#${x.imm}` : regKey(x.reg));
    switch (i.op) {
      case 'alu': {
        let a = regKey(i.a);
        let bb = o(i.b);
        if (COMMUTATIVE.has(i.alu) && 'reg' in i.b && bb < a) [a, bb] = [bb, a];
        return `${i.alu}${i.width} ${a} ${bb}`;
      }
      case 'neg': return `neg${i.width} ${regKey(i.a)}`;
      case 'sext': return `sext${i.bits} ${regKey(i.a)}`;
      case 'zext32': return `zext ${regKey(i.a)}`;
      case 'bswap': return `bswap${i.bits} ${regKey(i.a)}`;
      default: return undefined;
    }
  };
  const forgetMemory = (keep: (e: { baseKind: 'reg' | 'slot'; base: string; baseReg?: Reg; off: number; size: number }) => boolean): void => {
    for (const [k, e] of memory) if (!keep(e)) memory.delete(k);
  };

  const out: Insn[] = [];
  const emit = (i: Insn): void => {
    // Record facts about the result, then the instruction.
    const ds = defs(i);
    const maySet = ds.length === 1 ? maySetOf(i, may) : M64;
    const key = exprKey(i);
    for (const d of ds) {
      ver.set(d, v(d) + 1);
      consts.delete(d);
      copies.delete(d);
      mayLocal.delete(d);
      defsOf.delete(d);
    }
    if (ds.length === 1) {
      const d = ds[0]!;
      if (maySet !== M64) mayLocal.set(d, maySet);
      if (single(d) && maySet !== M64) globalMay.set(d, maySet);
      if (i.op === 'const') {
        consts.set(d, i.value);
        if (single(d)) globalConst.set(d, i.value);
      }
      if (i.op === 'mov' && isVirtual(d) && isVirtual(i.src) && i.src !== d) {
        copies.set(d, { src: i.src, ver: v(i.src) });
        const c = constOf(i.src);
        if (c !== undefined) consts.set(d, c);
      }
      const us = uses(i);
      if (!us.includes(d)) {
        defsOf.set(d, { insn: i, vers: us.map(v) });
        if (key !== undefined && isVirtual(d)) values.set(key, { reg: d, ver: v(d) });
      }
    }
    if (i.op === 'call' || i.op === 'call_local' || i.op === 'call_kfunc' || i.op === 'atomic_add' || i.op === 'fetch_add') memory.clear();
    else if (i.op === 'addr') forgetMemory((e) => e.baseKind !== 'slot' || e.base !== `s${i.slot}`);
    else if (i.op === 'store') {
      const bk = baseKey(i);
      const isSlot = 'slot' in i.base;
      forgetMemory((e) => {
        if (e.base === bk) return e.off + e.size <= i.off || i.off + i.size <= e.off;
        if (isSlot && e.baseKind === 'slot') return true;
        if (!slotsEscape && (isSlot || e.baseKind === 'slot')) return true;
        if (!isSlot && e.baseReg !== undefined && !mayAlias(origins.get((i.base as { reg: Reg }).reg), origins.get(e.baseReg))) return true;
        return false;
      });
      const entry = { base: bk, baseKind: (isSlot ? 'slot' : 'reg') as 'slot' | 'reg', baseReg: 'reg' in i.base ? i.base.reg : undefined, off: i.off, size: i.size };
      if ('reg' in i.value && i.size === 8) memory.set(`${bk}+${i.off}/${i.size}`, { ...entry, reg: i.value.reg, ver: v(i.value.reg) });
      else if ('imm' in i.value) memory.set(`${bk}+${i.off}/${i.size}`, { ...entry, reg: -1, ver: 0, imm: BigInt.asIntN(64, BigInt.asUintN(i.size * 8, i.value.imm)) });
    }
    if (i.op === 'load' && !ds.includes(('reg' in i.base ? i.base.reg : -1) as Reg)) {
      const bk = baseKey(i);
      if (!i.signed) memory.set(`${bk}+${i.off}/${i.size}`, { reg: i.dst, ver: v(i.dst), base: bk, baseKind: 'slot' in i.base ? 'slot' : 'reg', baseReg: 'reg' in i.base ? i.base.reg : undefined, off: i.off, size: i.size });
    }
    out.push(i);
  };

  /** Rewrite one instruction; may emit helper instructions first. */
  const simplify = (orig: Insn): Insn => {
    let i = mapRegs(orig, resolve, (r) => r);
    if (i.op === 'alu') {
      let bo = opnd(i.b);
      // Constant first operand of a commutative op: swap it into the immediate.
      const ca = constOf(i.a);
      if (ca !== undefined && 'reg' in bo && constOf(bo.reg) === undefined && COMMUTATIVE.has(i.alu) && fitsImm(ca)) {
        i = { ...i, a: bo.reg };
        bo = { imm: ca };
      }
      i = { ...i, b: bo };
    }
    if (i.op === 'store') i = { ...i, value: opnd(i.value) };
    const cst = (dst: Reg, value: bigint): Insn => ({ op: 'const', dst, value, loc: orig.loc });
    const mov = (dst: Reg, src: Reg): Insn => ({ op: 'mov', dst, src, loc: orig.loc });
    if (i.op === 'alu') {
      const a = constOf(i.a);
      const bv = 'imm' in i.b ? i.b.imm : constOf(i.b.reg);
      if (a !== undefined && bv !== undefined) return cst(i.dst, evalAlu(i.alu, i.width, a, bv));
      if (bv !== undefined && i.width === 64) {
        const u = BigInt.asUintN(64, bv);
        if (u === 0n && (i.alu === 'add' || i.alu === 'sub' || i.alu === 'or' || i.alu === 'xor' || i.alu === 'lsh' || i.alu === 'rsh' || i.alu === 'arsh')) return mov(i.dst, i.a);
        if (u === 1n && (i.alu === 'mul' || i.alu === 'udiv' || i.alu === 'sdiv')) return mov(i.dst, i.a);
        if (u === 0n && (i.alu === 'and' || i.alu === 'mul')) return cst(i.dst, 0n);
        const k = log2(u);
        if (k > 0 && i.alu === 'mul') return simplify({ ...i, alu: 'lsh', b: { imm: BigInt(k) } });
        if (k > 0 && i.alu === 'udiv') return simplify({ ...i, alu: 'rsh', b: { imm: BigInt(k) } });
        if (i.alu === 'and' && (may(i.a) & ~u & M64) === 0n) return mov(i.dst, i.a);
        if (i.alu === 'lsh' || i.alu === 'rsh') {
          const s = Number(u & 63n);
          const d = defOf(i.a);
          // (x op c1) op c2 = x op (c1 + c2) for the same direction.
          if (d?.op === 'alu' && d.width === 64 && d.alu === i.alu && 'imm' in d.b && d.dst !== d.a) {
            const t = Number(BigInt.asUintN(64, d.b.imm) & 63n) + s;
            if (t < 64) return simplify({ ...i, a: d.a, b: { imm: BigInt(t) } });
          }
          if (i.alu === 'lsh' && d?.op === 'alu' && d.width === 64 && 'imm' in d.b && d.dst !== d.a) {
            const keep = M64 >> BigInt(s); // the bits that survive the shift
            // (x & m) << s = x << s when m keeps every surviving bit.
            if (d.alu === 'and' && (BigInt.asUintN(64, d.b.imm) & keep) === keep) return simplify({ ...i, a: d.a });
            // (x + c) << s = (x << s) + (c << s).
            if (d.alu === 'add' && d.b.imm >= 0n && may(d.a) >> BigInt(63 - s) === 0n) {
              const c = BigInt.asIntN(64, BigInt.asUintN(64, d.b.imm) << BigInt(s));
              if (fitsImm(c) && c >= 0n) {
                const t = f.newReg();
                emit(simplify({ ...i, dst: t, a: d.a }));
                return simplify({ ...i, alu: 'add', a: t, b: { imm: c } });
              }
            }
          }
        }
        // (x + c1) + c2 = x + (c1 + c2)
        if (i.alu === 'add') {
          const d = defOf(i.a);
          if (d?.op === 'alu' && d.width === 64 && d.alu === 'add' && 'imm' in d.b && d.dst !== d.a) {
            const c = BigInt.asIntN(64, d.b.imm + bv);
            if (fitsImm(c)) return simplify({ ...i, a: d.a, b: { imm: c } });
          }
        }
      }
      // base + (x + c) = (base + x) + c: the constant ends in a load/store offset.
      if (i.alu === 'add' && i.width === 64 && 'reg' in i.b) {
        const d = defOf(i.b.reg);
        if (d?.op === 'alu' && d.width === 64 && d.alu === 'add' && 'imm' in d.b && d.dst !== d.a && d.b.imm >= 0n && d.b.imm < 32768n && may(d.a) >> 31n === 0n) {
          const t = f.newReg();
          emit(simplify({ ...i, dst: t, b: { reg: d.a } }));
          return simplify({ ...i, a: t, b: { imm: d.b.imm } });
        }
      }
    } else if (i.op === 'neg' || i.op === 'sext' || i.op === 'zext32' || i.op === 'bswap') {
      const a = constOf(i.a);
      if (a !== undefined) {
        const r = evalUnary(i, a);
        if (r !== undefined) return cst(i.dst, r);
      }
      if (i.op === 'zext32' && (may(i.a) & ~0xffffffffn & M64) === 0n) return mov(i.dst, i.a);
    } else if (i.op === 'mov') {
      const c = constOf(i.src);
      if (c !== undefined) return cst(i.dst, c);
    } else if (i.op === 'load' || i.op === 'store') {
      // [ (p + c) + off ] = [ p + (c + off) ]
      if ('reg' in i.base) {
        const d = defOf(i.base.reg);
        if (d?.op === 'alu' && d.width === 64 && d.alu === 'add' && 'imm' in d.b && d.dst !== d.a && d.b.imm >= 0n && d.b.imm < 32768n && fitsOff(i.off + Number(d.b.imm))) {
          return simplify({ ...i, base: { reg: d.a }, off: i.off + Number(d.b.imm) } as Insn);
        }
      }
      if (i.op === 'load' && !i.signed) {
        const e = memory.get(`${baseKey(i)}+${i.off}/${i.size}`);
        if (e?.imm !== undefined) return cst(i.dst, e.imm);
        if (e && v(e.reg) === e.ver) return mov(i.dst, e.reg);
      }
    }
    // Value numbering of pure computations.
    const key = exprKey(i);
    if (key !== undefined) {
      const h = values.get(key);
      const dst = (i as { dst: Reg }).dst;
      if (h && v(h.reg) === h.ver && h.reg !== dst) return mov(dst, h.reg);
    }
    return i;
  };

  for (const orig of b.insns) {
    const i = simplify(orig);
    if (i !== orig && !sameInsn(i, orig)) changed = true;
    emit(i);
  }
  if (out.length !== b.insns.length) changed = true;
  b.insns = out;
  const t = b.term;
  if (t && t.op === 'br') {
    const a = resolve(t.a);
    const bo = opnd(t.b);
    const av = constOf(a);
    const bv = 'imm' in bo ? bo.imm : constOf(bo.reg);
    if (av !== undefined && bv !== undefined) {
      b.term = { op: 'jmp', target: evalCmp(t.cmp, t.width, av, bv) ? t.then : t.else, loc: t.loc };
      changed = true;
    } else if (a !== t.a || !sameOperand(bo, t.b)) {
      b.term = { ...t, a, b: bo };
      changed = true;
    }
  } else if (t && t.op === 'ret') {
    const r = resolve(t.value);
    if (r !== t.value) {
      b.term = { ...t, value: r };
      changed = true;
    }
  }
  return changed;
}

const sameOperand = (x: Operand, y: Operand): boolean => ('imm' in x ? 'imm' in y && x.imm === y.imm : 'reg' in y && x.reg === y.reg);

function sameInsn(x: Insn, y: Insn): boolean {
  const kx = Object.keys(x);
  if (kx.length !== Object.keys(y).length) return false;
  for (const k of kx) {
    const a = (x as Record<string, unknown>)[k];
    const b = (y as Record<string, unknown>)[k];
    if (a === b) continue;
    if (typeof a === 'object' && a && typeof b === 'object' && b) {
      if ('imm' in a || 'reg' in a || 'slot' in a) {
        const ao = a as Record<string, unknown>, bo = b as Record<string, unknown>;
        if (ao.imm === bo.imm && ao.reg === bo.reg && ao.slot === bo.slot) continue;
      }
      if (k === 'loc') continue;
    }
    return false;
  }
  return true;
}

function evalUnary(i: Insn, a: bigint): bigint | undefined {
  switch (i.op) {
    case 'neg': return i.width === 64 ? BigInt.asIntN(64, -a) : BigInt.asIntN(64, BigInt.asUintN(32, -a));
    case 'sext': return BigInt.asIntN(i.bits, a);
    case 'zext32': return BigInt.asIntN(64, BigInt.asUintN(32, a));
    case 'bswap': {
      const n = i.bits / 8;
      let r = 0n;
      for (let k = 0; k < n; k++) r = (r << 8n) | ((BigInt.asUintN(64, a) >> BigInt(8 * k)) & 0xffn);
      return BigInt.asIntN(64, r);
    }
  }
  return undefined;
}

/** Dead stores through registers, per block: a store whose bytes are all overwritten later in the
 *  block, with no load that may read them (by pointer origin), no call or atomic in between and
 *  the base register unchanged, is removed. Stack slots are handled by stores.ts. */
export function eliminateDeadMemoryStores(f: IrFunction): boolean {
  const origins = pointerOrigins(f);
  let changed = false;
  for (const b of f.blocks) {
    const covered = new Map<Reg, [number, number][]>();
    const kept: Insn[] = [];
    for (let k = b.insns.length - 1; k >= 0; k--) {
      const i = b.insns[k]!;
      for (const d of defs(i)) covered.delete(d);
      if (i.op === 'call' || i.op === 'call_local' || i.op === 'call_kfunc' || i.op === 'atomic_add' || i.op === 'fetch_add') covered.clear();
      else if (i.op === 'load') {
        const o = 'reg' in i.base ? origins.get(i.base.reg) : 'stack';
        for (const r of [...covered.keys()]) if (('reg' in i.base && r === i.base.reg) || mayAlias(o, origins.get(r))) covered.delete(r);
      } else if (i.op === 'store' && 'reg' in i.base) {
        const ranges = covered.get(i.base.reg) ?? [];
        let all = true;
        for (let x = i.off; x < i.off + i.size && all; x++) if (!ranges.some(([o, s]) => x >= o && x < o + s)) all = false;
        if (all) {
          changed = true;
          continue;
        }
        ranges.push([i.off, i.size]);
        covered.set(i.base.reg, ranges);
      }
      kept.push(i);
    }
    if (kept.length !== b.insns.length) b.insns = kept.reverse();
  }
  return changed;
}
