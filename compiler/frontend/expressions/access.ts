// Property and element access: struct fields, array elements, Cell.value and context fields,
// read as values or resolved to places (lvalues) for assignment.
//
// Array indexes must be provably in bounds (EBPF1209): JavaScript would read undefined, BPF
// would read other memory. The bound the compiler proved is also made visible to the verifier
// with a mask (power-of-two lengths) or a clamp that never fires.

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Binding, Lowering } from '../context.ts';
import { type Base, type DType, type IntType, type Val, typeRange, representable, within, exact } from '../types.ts';
import { fits, type IntVal } from '../arith.ts';
import { isSpinLock } from '../../dsl/index.ts';

export type Place =
  | { kind: 'var'; binding: Extract<Binding, { kind: 'int' | 'bool' | 'ptr' }>; node: ts.Node }
  | { kind: 'mem'; base: Base; off: number; type: DType; node: ts.Node; readonly?: boolean }
  | { kind: 'none' };

/** Context fields: __sk_buff (tc) and xdp_md offsets (include/uapi/linux/bpf.h). */
export const CONTEXT_FIELDS: Record<'tc' | 'xdp' | 'syscall', Record<string, { off: number; writable: boolean }>> = {
  tc: { len: { off: 0, writable: false }, mark: { off: 8, writable: true }, priority: { off: 32, writable: true } },
  xdp: {},
  syscall: {},
};
export const PACKET_POINTERS: Record<'tc' | 'xdp', { data: number; dataEnd: number }> = {
  tc: { data: 76, dataEnd: 80 },
  xdp: { data: 0, dataEnd: 4 },
};

/** A memory place read as a value: integers load, aggregates stay pointers. */
export function readMem(cx: Lowering, base: Base, off: number, type: DType, space: Extract<Val, { k: 'ptr' }>['space']): Val {
  if (type.kind === 'int') return cx.loadInt(base, off, type);
  if (type.kind === 'kptr') {
    // A direct kptr load: RCU-protected and possibly NULL (the verifier's MEM_RCU | PTR_MAYBE_NULL).
    const reg = cx.newReg();
    cx.emit({ op: 'load', size: 8, signed: false, dst: reg, base, off });
    return { k: 'kptr', reg, target: type.target, nullable: true, owned: false };
  }
  return { k: 'ptr', base, off, to: type, space, nullable: false, cell: false };
}

export function propertyAccess(cx: Lowering, node: ts.PropertyAccessExpression): Val {
  if (node.name.text === 'length') {
    // A fixed-size array's length is a constant; any other `.length` is a field (or unsupported).
    const obj = cx.expr(node.expression);
    if (obj.k === 'ptr' && obj.to.kind === 'array') return cx.constant(BigInt(obj.to.length), false);
    const place = placeOfProperty(cx, node, false, obj);
    if (place.kind !== 'mem') return { k: 'bad' };
    return readMem(cx, place.base, place.off, place.type, spaceOf(cx, node));
  }
  const place = placeOfProperty(cx, node, false);
  if (place.kind !== 'mem') return { k: 'bad' };
  return readMem(cx, place.base, place.off, place.type, spaceOf(cx, node));
}

const spaces = new WeakMap<ts.Node, Extract<Val, { k: 'ptr' }>['space']>();
function spaceOf(_cx: Lowering, node: ts.Node): Extract<Val, { k: 'ptr' }>['space'] {
  return spaces.get(node) ?? 'map';
}

/** obj.name as a place. `forWrite` checks the context fields that may be written. */
export function placeOfProperty(cx: Lowering, node: ts.PropertyAccessExpression, forWrite: boolean, evaluated?: Val): Place {
  const obj = evaluated ?? cx.expr(node.expression);
  const name = node.name.text;
  if (obj.k === 'bad') return { kind: 'none' };
  if (obj.k === 'ctx') {
    const f = CONTEXT_FIELDS[obj.ctx][name];
    if (!f) {
      cx.report(diag.unsupportedSyntax(node));
      return { kind: 'none' };
    }
    if (forWrite && !f.writable) {
      cx.report(diag.assignToConst(node, `${obj.ctx} context field ${name}`));
      return { kind: 'none' };
    }
    return { kind: 'mem', base: { reg: obj.reg }, off: f.off, type: { kind: 'int', name: 'u32', size: 4, signed: false, bigEndian: false } as IntType, node };
  }
  if (obj.k !== 'ptr') {
    cx.report(diag.unsupportedSyntax(node));
    return { kind: 'none' };
  }
  spaces.set(node, obj.space);
  if (obj.cell) {
    if (name !== 'value') {
      cx.report(diag.unsupportedSyntax(node));
      return { kind: 'none' };
    }
    return { kind: 'mem', base: obj.base, off: obj.off, type: obj.to, node, readonly: obj.space === 'rodata' };
  }
  if (obj.to.kind === 'array' && name === 'length') {
    if (forWrite) cx.report(diag.notAssignable(node));
    return { kind: 'none' };
  }
  if (obj.to.kind !== 'struct') {
    cx.report(diag.unsupportedSyntax(node));
    return { kind: 'none' };
  }
  if (isSpinLock(obj.to)) {
    cx.report(diag.badLockUse(node, 'a bpf_spin_lock is not data: the verifier refuses loads and stores of it'));
    return { kind: 'none' };
  }
  const field = obj.to.layout.find((f) => f.name === name);
  if (!field) {
    cx.report(diag.unsupportedSyntax(node));
    return { kind: 'none' };
  }
  return { kind: 'mem', base: obj.base, off: obj.off + field.offset, type: field.type, node, readonly: obj.space === 'rodata' };
}

export function elementAccess(cx: Lowering, node: ts.ElementAccessExpression): Val {
  const place = placeOfElement(cx, node);
  if (place.kind !== 'mem') return { k: 'bad' };
  return readMem(cx, place.base, place.off, place.type, spaces.get(node) ?? 'map');
}

export function placeOfElement(cx: Lowering, node: ts.ElementAccessExpression): Place {
  const obj = cx.expr(node.expression);
  const idx = cx.expr(node.argumentExpression);
  if (obj.k === 'bad' || idx.k === 'bad') return { kind: 'none' };
  if (obj.k !== 'ptr' || obj.to.kind !== 'array' || idx.k !== 'int') {
    cx.report(diag.unsupportedSyntax(node));
    return { kind: 'none' };
  }
  spaces.set(node, obj.space);
  const arr = obj.to;
  const el = arr.element as DType;
  if (idx.c !== undefined) {
    if (idx.c < 0n || idx.c >= BigInt(arr.length)) {
      cx.report(diag.indexOutOfBounds(node.argumentExpression, idx.c, idx.c, arr.length));
      return { kind: 'none' };
    }
    return { kind: 'mem', base: obj.base, off: obj.off + Number(idx.c) * el.size, type: el, node, readonly: obj.space === 'rodata' };
  }
  if (obj.space === 'ctx') {
    cx.report(diag.variableContextIndex(node.argumentExpression));
    return { kind: 'none' };
  }
  if (!within(idx.range, exact(idx.range.big, 0n, BigInt(arr.length - 1)))) {
    cx.report(diag.indexOutOfBounds(node.argumentExpression, idx.range.lo, idx.range.hi, arr.length));
    return { kind: 'none' };
  }
  const bounded = boundIndex(cx, idx, arr.length);
  const addr = elementAddress(cx, cx.address(obj.base, obj.off), bounded, el, obj.space);
  return { kind: 'mem', base: { reg: addr }, off: 0, type: el, node, readonly: obj.space === 'rodata' };
}

/** start + index × size. In packet memory the verifier forgets the checked range of a pointer
 *  once a variable is added to it, so the element's end is compared with data_end again; the
 *  branch never taken (the view was checked whole) points at the array's first element. */
export function elementAddress(cx: Lowering, start: number, bounded: number, el: DType, space: Extract<Val, { k: 'ptr' }>['space']): number {
  const scaled = el.size === 1 ? bounded : cx.alu('mul', 64, bounded, { imm: BigInt(el.size) });
  const addr = cx.alu('add', 64, start, { reg: scaled });
  if (space !== 'packet' || cx.ctxReg < 0 || (cx.ctxKind !== 'tc' && cx.ctxKind !== 'xdp')) return addr;
  const end = cx.newReg();
  cx.emit({ op: 'load', size: 4, signed: false, dst: end, base: { reg: cx.ctxReg }, off: PACKET_POINTERS[cx.ctxKind].dataEnd });
  const limit = cx.alu('add', 64, addr, { imm: BigInt(el.size) });
  const fix = cx.newBlock();
  const join = cx.newBlock();
  cx.branch('ugt', limit, { reg: end }, fix, join);
  cx.setBlock(fix);
  cx.emit({ op: 'mov', dst: addr, src: start });
  cx.jump(join);
  cx.setBlock(join);
  return addr;
}

/** An index register whose bound the verifier can see: a mask or a clamp (semantically no-ops). */
export function boundIndex(cx: Lowering, idx: IntVal, length: number): number {
  const n = BigInt(length);
  if ((n & (n - 1n)) === 0n) return cx.alu('and', 64, idx.reg, { imm: n - 1n });
  // Clamp: idx = idx > n-1 ? n-1 : idx — never taken, since the index is proved < n.
  const r = cx.copy(idx.reg);
  const clamp = cx.newBlock();
  const join = cx.newBlock();
  cx.branch('ugt', r, { imm: n - 1n }, clamp, join);
  cx.setBlock(clamp);
  cx.emit({ op: 'const', dst: r, value: n - 1n });
  cx.jump(join);
  cx.setBlock(join);
  return r;
}

/** Store `v` (already lowered from `node`) to a place. Variables keep their declared range. */
export function storePlace(cx: Lowering, place: Place, v: Val, node: ts.Node): void {
  if (place.kind === 'none' || v.k === 'bad') return;
  if (place.kind === 'mem' && place.readonly) return void cx.report(diag.readOnlyGlobal(place.node));
  if (place.kind === 'mem' && (place.type.kind === 'kptr' || containsKptr(place.type))) return void cx.report(diag.kptrStore(place.node));
  if (place.kind === 'mem' && containsLock(place.type)) return void cx.report(diag.badLockUse(place.node, 'memory holding a bpf_spin_lock cannot be assigned'));
  if (v.k === 'ptr' && containsLock(v.to) && place.kind === 'mem') return void cx.report(diag.badLockUse(node, 'memory holding a bpf_spin_lock cannot be copied'));
  if (place.kind === 'var') {
    const b = place.binding;
    if (b.kind === 'int') {
      if (v.k !== 'int') return void cx.report(diag.unsupportedSyntax(node));
      const target = b.storeRange ?? typeRange(b.type);
      if (!fits(v, target)) return void cx.report(diag.doesNotFit(node, b.storeRange ? `${b.name} (a loop counter in ${target.lo}..${target.hi})` : b.type.name, v.range.lo, v.range.hi));
      cx.emit({ op: 'mov', dst: b.reg, src: v.reg });
      b.readRange = b.storeRange; // a narrowed range (a guard, a parameter's shape) no longer holds
    } else if (b.kind === 'bool') {
      if (v.k !== 'bool') return void cx.report(diag.unsupportedSyntax(node));
      cx.emit({ op: 'mov', dst: b.reg, src: v.reg });
    } else {
      if (v.k === 'null') cx.emit({ op: 'const', dst: b.reg, value: 0n });
      else if (v.k === 'ptr' && v.to === b.to) cx.emit({ op: 'mov', dst: b.reg, src: cx.address(v.base, v.off) });
      else cx.report(diag.unsupportedSyntax(node));
    }
    return;
  }
  if (place.type.kind === 'int') {
    if (v.k !== 'int') return void cx.report(diag.unsupportedSyntax(node));
    if (!v.range.wrapped && !representable(v.range)) return void cx.report(diag.wrappingBigint(node));
    cx.storeInt(place.base, place.off, place.type, v);
    return;
  }
  if (v.k === 'ptr' && v.to.size === place.type.size) {
    copyMemory(cx, place.base, place.off, v.base, v.off, place.type.size);
    return;
  }
  cx.report(diag.unsupportedSyntax(node));
}

/** memcpy with the widest aligned accesses. */
export function copyMemory(cx: Lowering, dst: Base, dstOff: number, src: Base, srcOff: number, size: number): void {
  let off = 0;
  while (off < size) {
    const n = size - off >= 8 ? 8 : size - off >= 4 ? 4 : size - off >= 2 ? 2 : 1;
    const r = cx.newReg();
    cx.emit({ op: 'load', size: n, signed: false, dst: r, base: src, off: srcOff + off });
    cx.emit({ op: 'store', size: n, base: dst, off: dstOff + off, value: { reg: r } });
    off += n;
  }
}

/** Resolve an assignment target. */
export function placeOf(cx: Lowering, node: ts.Expression): Place {
  while (ts.isParenthesizedExpression(node)) node = node.expression;
  if (ts.isIdentifier(node)) {
    const sym = cx.checker.getSymbolAtLocation(node);
    const b = sym && cx.scope.get(sym);
    if (!b) {
      cx.report(diag.notAssignable(node));
      return { kind: 'none' };
    }
    if (b.kind === 'value') {
      cx.report(diag.assignToConst(node, node.text));
      return { kind: 'none' };
    }
    return { kind: 'var', binding: b, node };
  }
  if (ts.isPropertyAccessExpression(node)) return placeOfProperty(cx, node, true);
  if (ts.isElementAccessExpression(node)) return placeOfElement(cx, node);
  cx.report(diag.notAssignable(node));
  return { kind: 'none' };
}

/** Read the current value of a place (for compound assignment and ++/--). */
export function readPlace(cx: Lowering, place: Place): Val {
  if (place.kind === 'none') return { k: 'bad' };
  if (place.kind === 'var') {
    const b = place.binding;
    if (b.kind === 'int') return { k: 'int', reg: cx.copy(b.reg), range: b.readRange ?? typeRange(b.type) };
    if (b.kind === 'bool') return { k: 'bool', reg: cx.copy(b.reg) };
    return cx.report(diag.unsupportedSyntax(place.node));
  }
  return readMem(cx, place.base, place.off, place.type, 'map');
}

/** Whether a type holds a bpf_spin_lock (never loaded, stored, copied or passed to a helper as data). */
export function containsLock(t: DType): boolean {
  if (isSpinLock(t)) return true;
  if (t.kind === 'array') return containsLock(t.element as DType);
  if (t.kind === 'struct') return t.layout.some((f) => containsLock(f.type));
  return false;
}

/** Whether a type holds a kptr field (such memory is written only through kptrXchg). */
export function containsKptr(t: DType): boolean {
  if (t.kind === 'kptr') return true;
  if (t.kind === 'array') return containsKptr(t.element as DType);
  if (t.kind === 'struct') return t.layout.some((f) => containsKptr(f.type));
  return false;
}
