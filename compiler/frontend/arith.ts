// Integer operators with JavaScript's meaning, and the code that computes the same in BPF.
//
// number (8–32-bit types): + - * are exact in a 64-bit register while the result stays within
// ±2^53 (checked on the interval, else EBPF1201); & | ^ << >> ~ act on ToInt32 of the operands
// and give an int32, i.e. a 32-bit ALU operation followed by sign extension when the result can
// be negative; >>> gives a uint32 (32-bit ALU, zero-extended); `/` exists only truncated.
// bigint (u64/i64): exact while representable, else known modulo 2^64 (`wrapped`); the modular
// operations (+ - * & | ^ <<) accept wrapped operands, the others need exact ones.

import ts from 'typescript';
import { diag } from '../diagnostics.ts';
import type { AluName } from '../ir/ir.ts';
import type { Lowering } from './context.ts';
import { type Range, type Val, allOnes, bigResult, exact, I32, representable, safeNumber, TWO31, TWO32, TWO63, TWO64, U32, within } from './types.ts';

export type IntVal = Extract<Val, { k: 'int' }>;

const min = (...v: bigint[]): bigint => v.reduce((a, b) => (b < a ? b : a));
const max = (...v: bigint[]): bigint => v.reduce((a, b) => (b > a ? b : a));

/** The range of ToInt32(x). */
const toInt32Range = (r: Range): Range => (within(r, I32) ? r : I32);

function numberResult(cx: Lowering, node: ts.Node, reg: number, lo: bigint, hi: bigint): Val {
  const range = exact(false, lo, hi);
  if (!safeNumber(range)) return cx.report(diag.unsafeNumber(node, lo, hi));
  return { k: 'int', reg, range };
}

/** ToInt32 of a register holding an exact value: sign-extend its low 32 bits. */
export function toInt32(cx: Lowering, v: IntVal): IntVal {
  if (within(v.range, I32)) return v;
  const dst = cx.newReg();
  cx.emit({ op: 'sext', bits: 32, dst, a: v.reg });
  return { k: 'int', reg: dst, range: I32 };
}
/** ToUint32: zero-extend the low 32 bits. */
export function toUint32(cx: Lowering, v: IntVal): IntVal {
  if (within(v.range, U32)) return v;
  const dst = cx.newReg();
  cx.emit({ op: 'zext32', dst, a: v.reg });
  return { k: 'int', reg: dst, range: U32 };
}

/** A 32-bit ALU result (zero-extended low word) read as int32: sign-extend unless known ≥ 0. */
function int32Result(cx: Lowering, reg: number, lo: bigint, hi: bigint): IntVal {
  if (lo >= 0n) return { k: 'int', reg, range: exact(false, lo, hi) };
  const dst = cx.newReg();
  cx.emit({ op: 'sext', bits: 32, dst, a: reg });
  return { k: 'int', reg: dst, range: exact(false, lo, hi) };
}

/** A shift count as JavaScript uses it on numbers: the low 5 bits. */
function shiftCount(cx: Lowering, b: IntVal): { operand: { imm: bigint } | { reg: number }; lo: bigint; hi: bigint } {
  if (b.c !== undefined) {
    const s = BigInt.asUintN(5, b.c);
    return { operand: { imm: s }, lo: s, hi: s };
  }
  if (b.range.lo >= 0n && b.range.hi <= 31n) return { operand: { reg: b.reg }, lo: b.range.lo, hi: b.range.hi };
  return { operand: { reg: cx.alu('and', 64, b.reg, { imm: 31n }) }, lo: 0n, hi: 31n };
}

function bitwiseRange(op: '&' | '|' | '^', a: Range, b: Range, lo: bigint, hi: bigint): [bigint, bigint] {
  if (a.lo >= 0n && b.lo >= 0n) {
    if (op === '&') return [0n, min(a.hi, b.hi)];
    // x | y ≥ max(x, y) for non-negative operands; x ^ y can be 0.
    return [op === '|' ? max(a.lo, b.lo) : 0n, allOnes(max(a.hi, b.hi))];
  }
  if (op === '&' && a.lo >= 0n) return [0n, a.hi];
  if (op === '&' && b.lo >= 0n) return [0n, b.hi];
  return [lo, hi];
}

export type ArithOp = '+' | '-' | '*' | '&' | '|' | '^' | '<<' | '>>' | '>>>' | '/' | '%';

/** a op b for two integers of the same JavaScript type (TypeScript has already checked that). */
export function arith(cx: Lowering, node: ts.Node, op: ArithOp, a: IntVal, b: IntVal): Val {
  return a.range.big ? bigArith(cx, node, op, a, b) : numberArith(cx, node, op, a, b);
}

function numberArith(cx: Lowering, node: ts.Node, op: ArithOp, a: IntVal, b: IntVal): Val {
  const ra = a.range;
  const rb = b.range;
  switch (op) {
    case '+':
      return numberResult(cx, node, cx.alu('add', 64, a.reg, cx.operand(b)), ra.lo + rb.lo, ra.hi + rb.hi);
    case '-':
      return numberResult(cx, node, cx.alu('sub', 64, a.reg, cx.operand(b)), ra.lo - rb.hi, ra.hi - rb.lo);
    case '*': {
      const p = [ra.lo * rb.lo, ra.lo * rb.hi, ra.hi * rb.lo, ra.hi * rb.hi];
      return numberResult(cx, node, cx.alu('mul', 64, a.reg, cx.operand(b)), min(...p), max(...p));
    }
    case '&':
    case '|':
    case '^': {
      const x = toInt32Range(ra);
      const y = toInt32Range(rb);
      const alu: AluName = op === '&' ? 'and' : op === '|' ? 'or' : 'xor';
      const [lo, hi] = bitwiseRange(op, x, y, -TWO31, TWO31 - 1n);
      return int32Result(cx, cx.alu(alu, 32, a.reg, cx.operand(b)), lo, hi);
    }
    case '<<': {
      const s = shiftCount(cx, b);
      const x = toInt32Range(ra);
      const reg = cx.alu('lsh', 32, a.reg, s.operand);
      if (x.lo >= 0n && x.hi << s.hi < TWO31) return int32Result(cx, reg, x.lo << s.lo, x.hi << s.hi);
      return int32Result(cx, reg, -TWO31, TWO31 - 1n);
    }
    case '>>': {
      const s = shiftCount(cx, b);
      const x = toInt32Range(ra);
      // ARSH32 shifts the low word with bit 31 as its sign: ToInt32(a) >> s.
      const reg = cx.alu('arsh', 32, a.reg, s.operand);
      if (x.lo >= 0n) return int32Result(cx, reg, x.lo >> s.hi, x.hi >> s.lo);
      return int32Result(cx, reg, min(x.lo >> s.lo, x.lo >> s.hi), max(x.hi >> s.lo, x.hi >> s.hi));
    }
    case '>>>': {
      const s = shiftCount(cx, b);
      if (s.hi === 0n && 'imm' in s.operand) return toUint32(cx, a);
      const reg = cx.alu('rsh', 32, a.reg, s.operand);
      const x = within(ra, U32) ? ra : U32;
      return { k: 'int', reg, range: exact(false, x.lo >> s.hi, x.hi >> s.lo) };
    }
    case '%': {
      if (rb.lo <= 0n && rb.hi >= 0n) return cx.report(diag.divisorMayBeZero(node));
      if (ra.lo >= 0n && rb.lo > 0n) return { k: 'int', reg: cx.alu('umod', 64, a.reg, cx.operand(b)), range: exact(false, 0n, min(ra.hi, rb.hi - 1n)) };
      // JavaScript's % takes the sign of the dividend, as SMOD does (truncated division).
      const m = max(-rb.lo, rb.hi) - 1n;
      return { k: 'int', reg: cx.alu('smod', 64, a.reg, cx.operand(b)), range: exact(false, ra.lo < 0n ? -m : 0n, ra.hi > 0n ? m : 0n) };
    }
    case '/':
      return cx.report(diag.inexactDivision(node));
  }
}

/** `(a / b) >>> 0` and `(a / b) | 0`: truncated division of 32-bit operands, where JavaScript's
 *  double division is exact after truncation and division by zero gives 0 (as in BPF). */
export function truncatedDivision(cx: Lowering, node: ts.Node, a: IntVal, b: IntVal, unsigned: boolean): Val {
  if (within(a.range, U32) && within(b.range, U32)) {
    const q = cx.alu('udiv', 64, a.reg, cx.operand(b));
    const hi = b.range.lo > 0n ? a.range.hi / b.range.lo : a.range.hi;
    const v: IntVal = { k: 'int', reg: q, range: exact(false, 0n, hi) };
    return unsigned ? v : toInt32(cx, v);
  }
  if (within(a.range, I32) && within(b.range, I32)) {
    // Signed: SDIV truncates toward zero like JavaScript; x/0 is 0 in BPF and ±Infinity|0 = 0 in JS.
    const q = cx.alu('sdiv', 64, a.reg, cx.operand(b));
    const v: IntVal = { k: 'int', reg: q, range: exact(false, -TWO31, TWO31) };
    return unsigned ? toUint32(cx, v) : toInt32(cx, v);
  }
  return cx.report(diag.inexactDivision(node));
}

function bigArith(cx: Lowering, node: ts.Node, op: ArithOp, a: IntVal, b: IntVal): Val {
  const ra = a.range;
  const rb = b.range;
  const wrapped = ra.wrapped || rb.wrapped;
  const result = (reg: number, lo: bigint, hi: bigint): Val => ({ k: 'int', reg, range: wrapped ? bigResult(-TWO64, TWO64) : bigResult(lo, hi) });
  const needExact = (): Val | undefined => (wrapped ? cx.report(diag.wrappingBigint(node)) : undefined);
  switch (op) {
    case '+':
      return result(cx.alu('add', 64, a.reg, cx.operand(b)), ra.lo + rb.lo, ra.hi + rb.hi);
    case '-':
      return result(cx.alu('sub', 64, a.reg, cx.operand(b)), ra.lo - rb.hi, ra.hi - rb.lo);
    case '*': {
      const p = [ra.lo * rb.lo, ra.lo * rb.hi, ra.hi * rb.lo, ra.hi * rb.hi];
      return result(cx.alu('mul', 64, a.reg, cx.operand(b)), min(...p), max(...p));
    }
    case '&':
    case '|':
    case '^': {
      const alu: AluName = op === '&' ? 'and' : op === '|' ? 'or' : 'xor';
      const reg = cx.alu(alu, 64, a.reg, cx.operand(b));
      if (!wrapped) {
        const [lo, hi] = bitwiseRange(op, ra, rb, min(ra.lo, rb.lo, -TWO63), max(ra.hi, rb.hi));
        if (ra.lo >= 0n || rb.lo >= 0n || (ra.hi < TWO63 && rb.hi < TWO63)) return { k: 'int', reg, range: bigResult(lo < -TWO63 ? -TWO63 : lo, hi) };
      }
      return { k: 'int', reg, range: bigResult(-TWO64, TWO64) };
    }
    case '<<': {
      if (rb.wrapped || rb.lo < 0n || rb.hi > 63n) return cx.report(diag.shiftRange(node));
      const reg = cx.alu('lsh', 64, a.reg, cx.operand(b));
      return result(reg, min(ra.lo << rb.lo, ra.lo << rb.hi), max(ra.hi << rb.lo, ra.hi << rb.hi));
    }
    case '>>': {
      const bad = needExact();
      if (bad) return bad;
      if (rb.lo < 0n || rb.hi > 63n) return cx.report(diag.shiftRange(node));
      const reg = cx.alu(ra.lo >= 0n ? 'rsh' : 'arsh', 64, a.reg, cx.operand(b));
      return { k: 'int', reg, range: exact(true, min(ra.lo >> rb.lo, ra.lo >> rb.hi), max(ra.hi >> rb.lo, ra.hi >> rb.hi)) };
    }
    case '>>>':
      return cx.report(diag.unsupportedOperator(node, '>>>'));
    case '/':
    case '%': {
      const bad = needExact();
      if (bad) return bad;
      if (rb.lo <= 0n && rb.hi >= 0n) return cx.report(diag.divisorMayBeZero(node));
      const unsigned = ra.lo >= 0n && rb.lo >= 0n;
      if (!unsigned && (ra.hi >= TWO63 || rb.hi >= TWO63)) return cx.report(diag.mixedSignedness(node));
      if (op === '/') {
        const reg = cx.alu(unsigned ? 'udiv' : 'sdiv', 64, a.reg, cx.operand(b));
        const m = max(ra.hi < 0n ? -ra.lo : ra.hi, -ra.lo);
        return { k: 'int', reg, range: unsigned ? exact(true, 0n, ra.hi / rb.lo) : bigResult(-m, m) };
      }
      const reg = cx.alu(unsigned ? 'umod' : 'smod', 64, a.reg, cx.operand(b));
      const m = max(-rb.lo, rb.hi) - 1n;
      return { k: 'int', reg, range: unsigned ? exact(true, 0n, min(ra.hi, rb.hi - 1n)) : exact(true, ra.lo < 0n ? -m : 0n, ra.hi > 0n ? m : 0n) };
    }
  }
}

export function negate(cx: Lowering, node: ts.Node, a: IntVal): Val {
  const dst = cx.newReg();
  cx.emit({ op: 'neg', width: 64, dst, a: a.reg });
  if (!a.range.big) return numberResult(cx, node, dst, -a.range.hi, -a.range.lo);
  return { k: 'int', reg: dst, range: a.range.wrapped ? a.range : bigResult(-a.range.hi, -a.range.lo) };
}

export function bitNot(cx: Lowering, a: IntVal): Val {
  if (!a.range.big) {
    const x = toInt32Range(a.range);
    return int32Result(cx, cx.alu('xor', 32, a.reg, { imm: -1n }), -x.hi - 1n, -x.lo - 1n);
  }
  const reg = cx.alu('xor', 64, a.reg, { imm: -1n });
  return { k: 'int', reg, range: a.range.wrapped ? a.range : bigResult(-a.range.hi - 1n, -a.range.lo - 1n) };
}

/** BigInt.asUintN(n, x) / BigInt.asIntN(n, x). */
export function asN(cx: Lowering, x: IntVal, bits: number, signed: boolean): Val {
  const n = BigInt(bits);
  const target = signed ? exact(true, -(1n << (n - 1n)), (1n << (n - 1n)) - 1n) : exact(true, 0n, (1n << n) - 1n);
  if (within(x.range, target)) return x;
  if (bits === 64) return { k: 'int', reg: x.reg, range: target }; // same bits, new reading
  let reg: number;
  if (signed) {
    if (bits === 32 || bits === 16 || bits === 8) {
      reg = cx.newReg();
      cx.emit({ op: 'sext', bits, dst: reg, a: x.reg });
    } else reg = cx.alu('arsh', 64, cx.alu('lsh', 64, x.reg, { imm: 64n - n }), { imm: 64n - n });
  } else if (bits === 32) {
    reg = cx.newReg();
    cx.emit({ op: 'zext32', dst: reg, a: x.reg });
  } else if (bits < 32) {
    reg = cx.alu('and', 64, x.reg, { imm: (1n << n) - 1n });
  } else reg = cx.alu('rsh', 64, cx.alu('lsh', 64, x.reg, { imm: 64n - n }), { imm: 64n - n });
  return { k: 'int', reg, range: target };
}

/** Whether an integer value may be stored in a variable of range `target`. */
export function fits(v: IntVal, target: Range): boolean {
  return representable(v.range) && within(v.range, target);
}
