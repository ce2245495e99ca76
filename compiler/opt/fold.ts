// Constant folding and copy propagation within each block, and folding of branches whose
// operands are both known. Values are tracked per block because the IR is not in SSA form: a
// register may be assigned on several paths. Folding evaluates with BPF semantics (64-bit or
// 32-bit zero-extending ALU, division by zero gives 0, modulo by zero keeps the dividend).

import { type AluName, type CmpName, type Insn, type IrFunction, type Operand, type Reg, defs, isVirtual, mapRegs } from '../ir/ir.ts';

const M64 = (1n << 64n) - 1n;
const u64 = (x: bigint): bigint => x & M64;
const s64 = (x: bigint): bigint => BigInt.asIntN(64, x);

export function evalAlu(op: AluName, width: 32 | 64, a: bigint, b: bigint): bigint {
  const bits = BigInt(width);
  const ua = BigInt.asUintN(width, a);
  const ub = BigInt.asUintN(width, b);
  const sa = BigInt.asIntN(width, a);
  const sb = BigInt.asIntN(width, b);
  let r: bigint;
  switch (op) {
    case 'add': r = ua + ub; break;
    case 'sub': r = ua - ub; break;
    case 'mul': r = ua * ub; break;
    case 'udiv': r = ub === 0n ? 0n : ua / ub; break;
    case 'umod': r = ub === 0n ? ua : ua % ub; break;
    case 'sdiv': r = sb === 0n ? 0n : sa / sb; break;
    case 'smod': r = sb === 0n ? sa : sa % sb; break;
    case 'or': r = ua | ub; break;
    case 'and': r = ua & ub; break;
    case 'xor': r = ua ^ ub; break;
    case 'lsh': r = ua << (ub & (bits - 1n)); break;
    case 'rsh': r = ua >> (ub & (bits - 1n)); break;
    case 'arsh': r = sa >> (ub & (bits - 1n)); break;
  }
  return s64(BigInt.asUintN(width, r));
}

export function evalCmp(cmp: CmpName, width: 32 | 64, a: bigint, b: bigint): boolean {
  const ua = BigInt.asUintN(width, a), ub = BigInt.asUintN(width, b);
  const sa = BigInt.asIntN(width, a), sb = BigInt.asIntN(width, b);
  switch (cmp) {
    case 'eq': return ua === ub;
    case 'ne': return ua !== ub;
    case 'ugt': return ua > ub;
    case 'uge': return ua >= ub;
    case 'ult': return ua < ub;
    case 'ule': return ua <= ub;
    case 'sgt': return sa > sb;
    case 'sge': return sa >= sb;
    case 'slt': return sa < sb;
    case 'sle': return sa <= sb;
    case 'set': return (ua & ub) !== 0n;
  }
}

function evalUnary(i: Insn, a: bigint): bigint | undefined {
  switch (i.op) {
    case 'neg': return i.width === 64 ? s64(-a) : s64(BigInt.asUintN(32, -a));
    case 'sext': return BigInt.asIntN(i.bits, a);
    case 'zext32': return s64(BigInt.asUintN(32, a));
    case 'bswap': {
      const n = i.bits / 8;
      let r = 0n;
      for (let k = 0; k < n; k++) r = (r << 8n) | ((u64(a) >> BigInt(8 * k)) & 0xffn);
      return s64(r);
    }
  }
  return undefined;
}

const fitsImm = (v: bigint): boolean => v >= -(1n << 31n) && v < 1n << 31n;

export function foldBlocks(f: IrFunction): boolean {
  let changed = false;
  for (const b of f.blocks) {
    const consts = new Map<Reg, bigint>();
    const copies = new Map<Reg, Reg>();
    const kill = (r: Reg): void => {
      consts.delete(r);
      copies.delete(r);
      for (const [k, v] of copies) if (v === r) copies.delete(k);
    };
    const resolve = (r: Reg): Reg => copies.get(r) ?? r;
    const opnd = (o: Operand): Operand => {
      if ('imm' in o) return o;
      const r = resolve(o.reg);
      const c = consts.get(r);
      return c !== undefined && fitsImm(c) ? { imm: c } : { reg: r };
    };
    const out: Insn[] = [];
    for (const orig of b.insns) {
      let i = mapRegs(orig, resolve, (r) => r);
      if (i.op === 'alu') i = { ...i, b: opnd(i.b) };
      if (i.op === 'store') i = { ...i, value: opnd(i.value) };
      let folded: bigint | undefined;
      if (i.op === 'alu') {
        const a = consts.get(i.a);
        const bv = 'imm' in i.b ? i.b.imm : consts.get(i.b.reg);
        if (a !== undefined && bv !== undefined) folded = evalAlu(i.alu, i.width, a, bv);
        else if (bv !== undefined && i.width === 64 && ((bv === 0n && (i.alu === 'add' || i.alu === 'sub' || i.alu === 'or' || i.alu === 'xor' || i.alu === 'lsh' || i.alu === 'rsh' || i.alu === 'arsh')) || (bv === 1n && (i.alu === 'mul' || i.alu === 'udiv' || i.alu === 'sdiv')))) {
          i = { op: 'mov', dst: i.dst, src: i.a, loc: i.loc };
        }
      } else if (i.op === 'neg' || i.op === 'sext' || i.op === 'zext32' || i.op === 'bswap') {
        const a = consts.get(i.a);
        if (a !== undefined) folded = evalUnary(i, a);
      } else if (i.op === 'mov') {
        const c = consts.get(i.src);
        if (c !== undefined) folded = c;
      }
      if (folded !== undefined && i.op !== 'const') {
        i = { op: 'const', dst: (i as { dst: Reg }).dst, value: folded, loc: i.loc };
      }
      if (JSON.stringify(i, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) !== JSON.stringify(orig, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))) changed = true;
      for (const d of defs(i)) kill(d);
      if (i.op === 'const') consts.set(i.dst, i.value);
      else if (i.op === 'mov' && isVirtual(i.dst) && isVirtual(i.src) && i.src !== i.dst) {
        copies.set(i.dst, i.src);
        const c = consts.get(i.src);
        if (c !== undefined) consts.set(i.dst, c);
      }
      out.push(i);
    }
    b.insns = out;
    const t = b.term;
    if (t && t.op === 'br') {
      const a = resolve(t.a);
      const bo = opnd(t.b);
      const av = consts.get(a);
      const bv = 'imm' in bo ? bo.imm : consts.get(bo.reg);
      if (av !== undefined && bv !== undefined) {
        b.term = { op: 'jmp', target: evalCmp(t.cmp, t.width, av, bv) ? t.then : t.else, loc: t.loc };
        changed = true;
      } else if (a !== t.a || JSON.stringify(bo, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) !== JSON.stringify(t.b, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))) {
        b.term = { ...t, a, b: bo };
        changed = true;
      }
    } else if (t && t.op === 'ret') {
      b.term = { ...t, value: resolve(t.value) };
    }
  }
  return changed;
}
