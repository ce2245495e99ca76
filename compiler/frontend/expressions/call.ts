// Calls: DSL methods (packet views, map operations), the JavaScript built-ins with a BPF meaning
// (Math.imul/min/max, BigInt.asUintN/asIntN, Number, BigInt), and user functions (inlined).

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import { HELPERS, KERNEL_CALLS, type HelperEntry, type KernelCallEntry, helper } from '../helpers.ts';
import type { Binding, Lowering } from '../context.ts';
import { INLINE_LIMIT, type ParamShape } from '../module.ts';
import { asN, fits, type IntVal } from '../arith.ts';
import { isSpinLock } from '../../dsl/index.ts';
import { type Base, type DType, type Val, TWO53, annotationType, dslName, exact, resolveSymbol, skipParens, typeRange, within } from '../types.ts';
import { containsKptr, containsLock, copyMemory } from './access.ts';
import { PACKET_POINTERS } from './access.ts';

const isGlobal = (sym: ts.Symbol | undefined, name: string): boolean =>
  !!sym && sym.name === name && !!sym.declarations?.some((d) => /[\\/]typescript[\\/]lib[\\/]lib\./.test(d.getSourceFile().fileName));

export function callExpression(cx: Lowering, node: ts.CallExpression): Val {
  const callee = skipParens(node.expression);
  if (ts.isPropertyAccessExpression(callee)) {
    const method = callee.name.text;
    const targetSym = ts.isIdentifier(callee.expression) ? resolveSymbol(cx.checker, callee.expression) : undefined;
    if (isGlobal(targetSym, 'Math')) return mathCall(cx, node, method);
    if (isGlobal(targetSym, 'BigInt')) return bigintCall(cx, node, method);
    const obj = cx.expr(callee.expression);
    if (obj.k === 'bad') return obj;
    if (obj.k === 'map') return mapCall(cx, node, obj.map, method);
    if (obj.k === 'ctx' && method === 'header' && obj.ctx !== 'syscall') return headerCall(cx, node, { ...obj, ctx: obj.ctx });
    if (obj.k === 'ctx' && method === 'args' && obj.ctx === 'syscall') return argsCall(cx, node, obj);
    return cx.report(diag.unsupportedCall(node, callee.getText()));
  }
  if (ts.isIdentifier(callee)) {
    const sym = resolveSymbol(cx.checker, callee);
    if (isGlobal(sym, 'Number')) return numberCall(cx, node);
    if (isGlobal(sym, 'BigInt')) return toBigint(cx, node);
    const dslFn = dslName(sym);
    if (dslFn !== undefined) {
      const entry = HELPERS[dslFn];
      if (entry) return helperCall(cx, node, dslFn, entry);
      if (dslFn === 'local') return localCall(cx, node);
      if (dslFn === 'fetchAdd') return fetchAddCall(cx, node);
      if (dslFn === 'kptrXchg') return kptrXchgCall(cx, node);
      if (dslFn === 'spinLock' || dslFn === 'spinUnlock') return spinLockCall(cx, node, dslFn);
      if (dslFn === 'bpfLoop') return bpfLoopCall(cx, node);
      const kernel = KERNEL_CALLS[dslFn];
      if (kernel) return kernelCall(cx, node, dslFn, kernel);
    }
    const fn = sym && cx.module.functions.get(sym);
    if (fn) return wantsCall(fn) ? subprogramCall(cx, node, fn) : inlineCall(cx, node, fn);
  }
  return cx.report(diag.unsupportedCall(node, callee.getText()));
}

function intArgs(cx: Lowering, node: ts.CallExpression, n: number): IntVal[] | undefined {
  if (node.arguments.length !== n) {
    cx.report(diag.badArgument(node, `expected ${n} arguments`));
    return undefined;
  }
  const vals = node.arguments.map((a) => cx.expr(a));
  if (vals.some((v) => v.k === 'bad')) return undefined;
  for (let i = 0; i < n; i++) {
    if (vals[i]!.k !== 'int') {
      cx.report(diag.badArgument(node.arguments[i]!, 'an integer is expected'));
      return undefined;
    }
  }
  return vals as IntVal[];
}

function mathCall(cx: Lowering, node: ts.CallExpression, method: string): Val {
  if (method === 'imul') {
    const args = intArgs(cx, node, 2);
    if (!args) return { k: 'bad' };
    // ToInt32(a) * ToInt32(b) mod 2^32, read as int32: a 32-bit multiply of the low words.
    const r = cx.alu('mul', 32, args[0]!.reg, cx.operand(args[1]!));
    const d = cx.newReg();
    cx.emit({ op: 'sext', bits: 32, dst: d, a: r });
    return { k: 'int', reg: d, range: typeRange({ kind: 'int', name: 'i32', size: 4, signed: true, bigEndian: false }) };
  }
  if (method === 'min' || method === 'max') {
    const args = intArgs(cx, node, 2);
    if (!args) return { k: 'bad' };
    const [a, b] = args as [IntVal, IntVal];
    if (a.range.big || b.range.big) return cx.report(diag.unsupportedCall(node, `Math.${method} on bigint`));
    const unsigned = a.range.lo >= 0n && b.range.lo >= 0n;
    const r = cx.copy(a.reg);
    const take = cx.newBlock();
    const join = cx.newBlock();
    cx.branch(method === 'min' ? (unsigned ? 'ugt' : 'sgt') : unsigned ? 'ult' : 'slt', a.reg, { reg: b.reg }, take, join);
    cx.setBlock(take);
    cx.emit({ op: 'mov', dst: r, src: b.reg });
    cx.jump(join);
    cx.setBlock(join);
    const pick = (x: bigint, y: bigint, m: 'min' | 'max'): bigint => ((m === 'min' ? x < y : x > y) ? x : y);
    return { k: 'int', reg: r, range: exact(false, pick(a.range.lo, b.range.lo, method), pick(a.range.hi, b.range.hi, method)) };
  }
  return cx.report(diag.unsupportedCall(node, `Math.${method}`));
}

function bigintCall(cx: Lowering, node: ts.CallExpression, method: string): Val {
  if (method !== 'asUintN' && method !== 'asIntN') return cx.report(diag.unsupportedCall(node, `BigInt.${method}`));
  if (node.arguments.length !== 2) return cx.report(diag.badArgument(node, 'expected (bits, value)'));
  const bits = cx.module.constantValue(node.arguments[0]!);
  if (bits === undefined || bits < 1n || bits > 64n) return cx.report(diag.badArgument(node.arguments[0]!, 'the bit count must be a constant in 1..64'));
  const v = cx.expr(node.arguments[1]!);
  if (v.k === 'bad') return v;
  if (v.k !== 'int' || !v.range.big) return cx.report(diag.badArgument(node.arguments[1]!, 'a bigint is expected'));
  return asN(cx, v, Number(bits), method === 'asIntN');
}

function numberCall(cx: Lowering, node: ts.CallExpression): Val {
  const args = intArgs(cx, node, 1);
  if (!args) return { k: 'bad' };
  const v = args[0]!;
  if (!v.range.big) return v;
  if (v.range.wrapped || v.range.lo <= -TWO53 || v.range.hi >= TWO53) return cx.report(diag.lossyNumber(node));
  return { k: 'int', reg: v.reg, range: { ...v.range, big: false } };
}

function toBigint(cx: Lowering, node: ts.CallExpression): Val {
  const args = intArgs(cx, node, 1);
  if (!args) return { k: 'bad' };
  const v = args[0]!;
  return { k: 'int', reg: v.reg, range: { ...v.range, big: true }, c: v.c };
}

/** ctx.header(T, offset): a view of T at offset, or null when the packet is shorter. */
function headerCall(cx: Lowering, node: ts.CallExpression, ctx: Extract<Val, { k: 'ctx' }> & { ctx: 'tc' | 'xdp' }): Val {
  if (node.arguments.length !== 2) return cx.report(diag.badArgument(node, 'expected (type, offset)'));
  const type = cx.module.descriptors.evaluate(node.arguments[0]!);
  if (!type || type.kind === 'int') return cx.report(diag.notAStruct(node.arguments[0]!));
  const off = cx.expr(node.arguments[1]!);
  if (off.k === 'bad') return off;
  if (off.k !== 'int' || off.range.big) return cx.report(diag.badArgument(node.arguments[1]!, 'the offset is a number'));
  if (!within(off.range, exact(false, 0n, 0xffffn))) return cx.report(diag.badArgument(node.arguments[1]!, `the offset must be in 0..65535 (it is in ${off.range.lo}..${off.range.hi})`));
  const pp = PACKET_POINTERS[ctx.ctx];
  const data = cx.newReg();
  const end = cx.newReg();
  cx.emit({ op: 'load', size: 4, signed: false, dst: data, base: { reg: ctx.reg }, off: pp.data });
  cx.emit({ op: 'load', size: 4, signed: false, dst: end, base: { reg: ctx.reg }, off: pp.dataEnd });
  const start = cx.alu('add', 64, data, cx.operand(off));
  const limit = cx.alu('add', 64, start, { imm: BigInt(type.size) });
  const result = cx.newReg();
  const ok = cx.newBlock();
  const fail = cx.newBlock();
  const join = cx.newBlock();
  cx.branch('ugt', limit, { reg: end }, fail, ok);
  cx.setBlock(ok);
  cx.emit({ op: 'mov', dst: result, src: start });
  cx.jump(join);
  cx.setBlock(fail);
  cx.emit({ op: 'const', dst: result, value: 0n });
  cx.jump(join);
  cx.setBlock(join);
  return { k: 'ptr', base: { reg: result }, off: 0, to: type, space: 'packet', nullable: true, cell: false, generation: cx.packetGeneration };
}

/** Lay out a value of `type` from an expression: a literal is written in place, a view copied. */
export function storeInit(cx: Lowering, base: Base, off: number, type: DType, expr: ts.Expression): void {
  const e = skipParens(expr);
  if (type.kind === 'struct' && ts.isObjectLiteralExpression(e)) {
    for (const p of e.properties) {
      if (ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) {
        const f = type.layout.find((x) => x.name === (p.name as ts.Identifier).text);
        if (f) storeInit(cx, base, off + f.offset, f.type, p.initializer);
        else cx.report(diag.badArgument(p, `'${p.name.text}' is not a field of ${type.name}`));
      } else if (ts.isShorthandPropertyAssignment(p)) {
        const f = type.layout.find((x) => x.name === p.name.text);
        if (f) storeInit(cx, base, off + f.offset, f.type, p.name);
        else cx.report(diag.badArgument(p, `'${p.name.text}' is not a field of ${type.name}`));
      } else cx.report(diag.unsupportedSyntax(p));
    }
    return;
  }
  if (type.kind === 'kptr' || (ts.isObjectLiteralExpression(e) && containsKptr(type) && type.kind !== 'struct')) return void cx.report(diag.kptrStore(e));
  if (type.kind === 'array' && ts.isStringLiteral(e) && type.element.kind === 'int' && type.element.size === 1) {
    if (e.text.length > type.length || /[^\x00-\xff]/.test(e.text)) return void cx.report(diag.badArgument(e, `'${e.text}' does not fit in ${type.length} Latin-1 bytes`));
    // Whole words where possible; the rest of the array is zero (the slot is zeroed first).
    const bytes = Buffer.alloc(type.length);
    bytes.write(e.text, 'latin1');
    for (let i = 0; i < e.text.length; ) {
      const n = e.text.length - i >= 4 && (off + i) % 4 === 0 ? 4 : 1;
      const value = n === 4 ? BigInt(bytes.readInt32LE(i)) : BigInt(bytes[i]!);
      cx.emit({ op: 'store', size: n, base, off: off + i, value: { imm: value } });
      i += n;
    }
    return;
  }
  if (type.kind === 'array' && ts.isArrayLiteralExpression(e)) {
    if (e.elements.length > type.length) cx.report(diag.badArgument(e, `at most ${type.length} elements`));
    e.elements.slice(0, type.length).forEach((el, i) => storeInit(cx, base, off + i * type.element.size, type.element, el));
    return;
  }
  const v = cx.expr(e);
  if (v.k === 'bad') return;
  if (type.kind === 'int') {
    if (v.k !== 'int') return void cx.report(diag.badArgument(e, 'an integer is expected'));
    cx.storeInt(base, off, type, v);
    return;
  }
  if (v.k === 'ptr' && containsLock(v.to)) return void cx.report(diag.badLockUse(e, 'memory holding a bpf_spin_lock cannot be copied'));
  if (v.k === 'ptr' && v.to.size === type.size) return copyMemory(cx, base, off, v.base, v.off, type.size);
  cx.report(diag.badArgument(e, `a ${type.kind} is expected`));
}

/** A pointer to a value of `type` for a helper argument: a view is passed as is, anything else
 *  is written to a zeroed stack slot (hash keys compare padding bytes too). */
function argumentPointer(cx: Lowering, type: DType, expr: ts.Expression, what: string): Base | undefined {
  const e = skipParens(expr);
  if (!ts.isObjectLiteralExpression(e) && !ts.isArrayLiteralExpression(e) && type.kind !== 'int') {
    const v = cx.expr(e);
    if (v.k === 'bad') return undefined;
    if (v.k === 'ptr' && v.space === 'map' && containsLock(v.to)) {
      cx.report(diag.badLockUse(e, 'a helper may not read a map value holding a bpf_spin_lock (copy the fields you need)'));
      return undefined;
    }
    if (v.k === 'ptr' && v.to.size === type.size) return 'slot' in v.base && v.off === 0 ? v.base : { reg: cx.address(v.base, v.off) };
    cx.report(diag.badArgument(e, `a ${type.kind === 'struct' ? type.name : 'view'} is expected`));
    return undefined;
  }
  const slot = cx.fn.newSlot(type.size, type.kind === 'int' ? type.size : type.align, what);
  cx.zeroSlot(slot, type.size);
  storeInit(cx, { slot }, 0, type, e);
  return { slot };
}

function pointerRegister(cx: Lowering, base: Base, target: number): void {
  if ('slot' in base) cx.emit({ op: 'addr', dst: target, slot: base.slot });
  else cx.emit({ op: 'mov', dst: target, src: base.reg });
}

function mapCall(cx: Lowering, node: ts.CallExpression, map: import('../types.ts').MapInfo, method: string): Val {
  const args = node.arguments;
  if (map.kind === 'ringbuf') return cx.report(diag.badArgument(node, `a ring buffer is written with ringbufOutput(${map.name}, data), not ${method}()`));
  const expect = (n: number[]): boolean => {
    if (n.includes(args.length)) return true;
    cx.report(diag.badArgument(node, `${method} takes ${n.join(' or ')} arguments`));
    return false;
  };
  if (method === 'lookup') {
    if (!expect([1])) return { k: 'bad' };
    const key = argumentPointer(cx, map.key, args[0]!, `${map.name} key`);
    if (!key) return { k: 'bad' };
    cx.emit({ op: 'map', dst: 1, map: map.name });
    pointerRegister(cx, key, 2);
    cx.emit({ op: 'call', ...helper('map_lookup_elem'), argc: 2 });
    const r = cx.copy(0);
    return { k: 'ptr', base: { reg: r }, off: 0, to: map.value, space: 'map', nullable: true, cell: map.value.kind === 'int' };
  }
  if (method === 'update') {
    if (!expect([2, 3])) return { k: 'bad' };
    const key = argumentPointer(cx, map.key, args[0]!, `${map.name} key`);
    const value = argumentPointer(cx, map.value, args[1]!, `${map.name} value`);
    const flags = args[2] ? cx.expr(args[2]) : cx.constant(0n, true);
    if (!key || !value || flags.k !== 'int') return { k: 'bad' };
    cx.emit({ op: 'mov', dst: 4, src: flags.reg });
    cx.emit({ op: 'map', dst: 1, map: map.name });
    pointerRegister(cx, key, 2);
    pointerRegister(cx, value, 3);
    cx.emit({ op: 'call', ...helper('map_update_elem'), argc: 4 });
    return { k: 'int', reg: cx.copy(0), range: exact(true, -4095n, 0n) };
  }
  if (method === 'delete') {
    if (!expect([1])) return { k: 'bad' };
    const key = argumentPointer(cx, map.key, args[0]!, `${map.name} key`);
    if (!key) return { k: 'bad' };
    cx.emit({ op: 'map', dst: 1, map: map.name });
    pointerRegister(cx, key, 2);
    cx.emit({ op: 'call', ...helper('map_delete_elem'), argc: 2 });
    return { k: 'int', reg: cx.copy(0), range: exact(true, -4095n, 0n) };
  }
  return cx.report(diag.unsupportedCall(node, `${map.name}.${method}`));
}

const annotated = (fn: ts.FunctionDeclaration, tag: string): boolean => ts.getJSDocTags(fn).some((t) => t.tagName.text === tag);
const nodeCount = (n: ts.Node): number => {
  let c = 1;
  n.forEachChild((k) => void (c += nodeCount(k)));
  return c;
};
const sizeCache = new WeakMap<ts.FunctionDeclaration, number>();

/** `@noinline`, or a body over INLINE_LIMIT nodes (unless `@inline`): a BPF-to-BPF call. */
function wantsCall(fn: ts.FunctionDeclaration): boolean {
  if (annotated(fn, 'noinline')) return true;
  if (annotated(fn, 'inline') || !fn.body || fn.parameters.length > 5) return false;
  let size = sizeCache.get(fn);
  if (size === undefined) sizeCache.set(fn, (size = nodeCount(fn.body)));
  return size > INLINE_LIMIT;
}

/** The shape of an argument for a .text function's parameter, or a diagnostic. */
function paramShape(cx: Lowering, p: ts.ParameterDeclaration, v: Val, arg: ts.Node): ParamShape | undefined {
  if (v.k === 'int') {
    const t = p.type && annotationType(cx.checker, p.type);
    if (!t || t === 'bool') return void cx.report(diag.missingType(p, p.name.getText()));
    if (!fits(v, typeRange(t))) return void cx.report(diag.doesNotFit(arg, t.name, v.range.lo, v.range.hi));
    return { kind: 'int', type: t };
  }
  if (v.k === 'bool') return { kind: 'bool' };
  if (v.k === 'ctx') return { kind: 'ctx', ctx: v.ctx };
  if (v.k === 'ptr' && v.space !== 'ctx') {
    // After `if (v === null) return`, TypeScript's narrowing is what proves the view non-null.
    const t = cx.checker.getTypeAtLocation(arg);
    const mayBeNull = (x: ts.Type): boolean => (x.flags & ts.TypeFlags.Null) !== 0 || (x.isUnion() && x.types.some(mayBeNull));
    if (v.nullable && mayBeNull(t)) return void cx.report(diag.nullableUse(arg));
    return { kind: 'ptr', to: v.to, space: v.space, cell: v.cell };
  }
  return void cx.report(diag.badArgument(arg, 'a called (@noinline) function takes integers, booleans, views and the program context'));
}

/** Arguments into r1..r5 and CALL src=1 to the function's .text copy. */
function subprogramCall(cx: Lowering, node: ts.CallExpression, fn: ts.FunctionDeclaration): Val {
  const name = fn.name?.text ?? 'function';
  if (!fn.body) return cx.report(diag.unsupportedCall(node, name));
  if (fn.parameters.length > 5) return cx.report(diag.badArgument(node, `a called function takes at most 5 parameters (r1–r5); ${name} has ${fn.parameters.length}`));
  if (node.arguments.length !== fn.parameters.length) return cx.report(diag.badArgument(node, `${name} takes ${fn.parameters.length} arguments`));
  const returnType = fn.type ? (fn.type.kind === ts.SyntaxKind.VoidKeyword ? 'void' : annotationType(cx.checker, fn.type)) : undefined;
  if (returnType === undefined) return cx.report(diag.missingType(fn, `${name}'s return value`));
  const args = node.arguments.map((a) => cx.expr(a));
  if (args.some((a) => a.k === 'bad')) return { k: 'bad' };
  const shapes: ParamShape[] = [];
  for (let i = 0; i < args.length; i++) {
    const s = paramShape(cx, fn.parameters[i]!, args[i]!, node.arguments[i]!);
    if (!s) return { k: 'bad' };
    shapes.push(s);
  }
  const regs = args.map((v) => (v.k === 'ptr' ? cx.address(v.base, v.off) : (v as { reg: number }).reg));
  const sub = cx.module.subprogram(node, fn, cx.ctxKind, shapes, returnType);
  if (!sub) return { k: 'bad' };
  regs.forEach((r, k) => cx.emit({ op: 'mov', dst: k + 1, src: r }));
  cx.emit({ op: 'call_local', name: sub.name, argc: regs.length });
  // The callee may have called a helper that moves the packet.
  if (args.some((a) => a.k === 'ctx')) cx.packetGeneration++;
  if (returnType === 'void') return { k: 'void' };
  if (returnType === 'bool') return { k: 'bool', reg: cx.copy(0) };
  return { k: 'int', reg: cx.copy(0), range: typeRange(returnType) };
}

const BPF_MAX_LOOPS = 1n << 23n;

/** bpfLoop(count, callback, ctx): bpf_loop(count, &callback, ctx, 0). The callback is a module
 *  function `(index: u32, ctx: T) => 0 | 1` compiled as a static .text function; ctx must be
 *  stack memory (a local(T)) or null. Returns the number of iterations run (or -E2BIG). */
function bpfLoopCall(cx: Lowering, node: ts.CallExpression): Val {
  const [countArg, cbArg, ctxArg] = node.arguments;
  if (!countArg || !cbArg || !ctxArg || node.arguments.length !== 3) return cx.report(diag.badArgument(node, 'bpfLoop takes (count, callback, ctx)'));
  const count = cx.expr(countArg);
  if (count.k === 'bad') return count;
  if (count.k !== 'int' || !fits(count, typeRange({ kind: 'int', name: 'u32', size: 4, signed: false, bigEndian: false }))) return cx.report(diag.badArgument(countArg, 'the count is a u32'));
  const cbSym = ts.isIdentifier(cbArg) ? resolveSymbol(cx.checker, cbArg) : undefined;
  const fn = cbSym && cx.module.functions.get(cbSym);
  if (!fn || !fn.body) return cx.report(diag.badArgument(cbArg, 'the callback is a function declared in this module'));
  if (fn.parameters.length !== 2) return cx.report(diag.badArgument(cbArg, 'the callback takes (index, ctx)'));
  const v = cx.expr(ctxArg);
  if (v.k === 'bad') return v;
  if (v.k !== 'null' && (v.k !== 'ptr' || v.space !== 'stack')) return cx.report(diag.badArgument(ctxArg, 'bpf_loop passes stack memory only: a local(T) or null'));
  const idxType = fn.parameters[0]!.type && annotationType(cx.checker, fn.parameters[0]!.type!);
  if (!idxType || idxType === 'bool' || idxType.size !== 4 || idxType.signed) return cx.report(diag.badArgument(fn.parameters[0]!, 'the index parameter is a u32'));
  const maxCount = count.range.hi > BPF_MAX_LOOPS ? BPF_MAX_LOOPS : count.range.hi;
  const idx: ParamShape = { kind: 'int', type: idxType, range: exact(false, 0n, maxCount > 0n ? maxCount - 1n : 0n) };
  const ctxShape: ParamShape = v.k === 'ptr' ? { kind: 'ptr', to: v.to, space: 'stack', cell: v.cell } : { kind: 'int', type: { kind: 'int', name: 'u64', size: 8, signed: false, bigEndian: false }, range: exact(true, 0n, 0n) };
  const rt = fn.type && annotationType(cx.checker, fn.type);
  if (!rt || rt === 'bool') return cx.report(diag.missingType(fn, `${fn.name?.text}'s return value (0 or 1)`));
  const sub = cx.module.subprogram(node, fn, cx.ctxKind, [idx, ctxShape], rt, exact(rt.size === 8, 0n, 1n));
  if (!sub) return { k: 'bad' };
  const ctxReg = v.k === 'ptr' ? cx.address(v.base, v.off) : (cx.constant(0n, true) as { reg: number }).reg;
  const fnReg = cx.newReg();
  cx.emit({ op: 'func_addr', dst: fnReg, name: sub.name });
  cx.emit({ op: 'mov', dst: 1, src: count.reg });
  cx.emit({ op: 'mov', dst: 2, src: fnReg });
  cx.emit({ op: 'mov', dst: 3, src: ctxReg });
  cx.emit({ op: 'const', dst: 4, value: 0n });
  cx.emit({ op: 'call', ...helper('loop'), argc: 4 });
  return { k: 'int', reg: cx.copy(0), range: exact(false, -7n, maxCount) };
}

/** Inline a module function: parameters become locals, `return` jumps to the exit block. */
function inlineCall(cx: Lowering, node: ts.CallExpression, fn: ts.FunctionDeclaration): Val {
  const name = fn.name?.text ?? 'function';
  if (cx.inlineStack.some((f) => f.fn === fn)) return cx.report(diag.recursion(node, name));
  if (!fn.body) return cx.report(diag.unsupportedCall(node, name));
  if (node.arguments.length !== fn.parameters.length) return cx.report(diag.badArgument(node, `${name} takes ${fn.parameters.length} arguments`));
  const args = node.arguments.map((a) => cx.expr(a));
  if (args.some((a) => a.k === 'bad')) return { k: 'bad' };
  const saved: [ts.Symbol, Binding | undefined][] = [];
  for (let i = 0; i < fn.parameters.length; i++) {
    const p = fn.parameters[i]!;
    const sym = cx.checker.getSymbolAtLocation(p.name);
    if (!sym || !ts.isIdentifier(p.name)) return cx.report(diag.unsupportedSyntax(p));
    const v = args[i]!;
    saved.push([sym, cx.scope.get(sym)]);
    const t = p.type && annotationType(cx.checker, p.type);
    if (v.k === 'int') {
      if (!t || t === 'bool') return cx.report(diag.missingType(p, p.name.text));
      if (!fits(v, typeRange(t))) return cx.report(diag.doesNotFit(node.arguments[i]!, t.name, v.range.lo, v.range.hi));
      const reg = cx.copy(v.reg);
      cx.scope.set(sym, { kind: 'int', reg, type: t, name: p.name.text });
    } else if (v.k === 'bool') {
      cx.scope.set(sym, { kind: 'bool', reg: cx.copy(v.reg), name: p.name.text });
    } else {
      cx.scope.set(sym, { kind: 'value', val: v });
    }
  }
  const returnType = fn.type ? (fn.type.kind === ts.SyntaxKind.VoidKeyword ? 'void' : annotationType(cx.checker, fn.type)) : undefined;
  if (returnType === undefined) return cx.report(diag.missingType(fn, `${name}'s return value`));
  const exit = cx.newBlock();
  const result = cx.newReg();
  cx.inlineStack.push({ exit, result, returnType, fn });
  for (const s of fn.body.statements) cx.stmt(s);
  cx.inlineStack.pop();
  if (cx.open) {
    if (returnType !== 'void') cx.report(diag.unreachableEnd(fn));
    cx.jump(exit);
  }
  cx.setBlock(exit);
  for (const [sym, b] of saved) {
    if (b) cx.scope.set(sym, b);
    else cx.scope.delete(sym);
  }
  if (returnType === 'void') return { k: 'void' };
  if (returnType === 'bool') return { k: 'bool', reg: result };
  return { k: 'int', reg: result, range: typeRange(returnType) };
}

/** Helpers that may move or resize packet data (bpf_helper_changes_pkt_data in net/core/filter.c). */
const CHANGES_PACKET = new Set(['skb_store_bytes', 'l3_csum_replace', 'l4_csum_replace', 'skb_change_tail', 'skb_pull_data', 'skb_adjust_room']);

/** A call of a helper from the table: arguments checked against its signature, placed in r1..r5. */
function helperCall(cx: Lowering, node: ts.CallExpression, name: string, entry: HelperEntry): Val {
  const ctx = cx.ctxKind;
  if (!entry.contexts.includes(ctx)) return cx.report(diag.wrongContext(node, name, ctx));
  const required = entry.args.filter((a) => !(a.kind === 'int' && a.default !== undefined)).length;
  if (node.arguments.length < required || node.arguments.length > entry.args.length)
    return cx.report(diag.badArgument(node, `${name} takes ${required === entry.args.length ? required : `${required} to ${entry.args.length}`} arguments`));
  const regs: number[] = [];
  let failed = false;
  entry.args.forEach((a, i) => {
    const e = node.arguments[i];
    if (a.kind === 'ctx') {
      const v = e && cx.expr(e);
      if (v?.k !== 'ctx') {
        if (v?.k !== 'bad') cx.report(diag.badArgument(e ?? node, 'the program context is expected'));
        failed = true;
        return;
      }
      regs.push(v.reg);
    } else if (a.kind === 'int') {
      const v = e ? cx.expr(e) : cx.constant(a.default!, a.type.size === 8);
      if (v.k !== 'int') {
        if (v.k !== 'bad') cx.report(diag.badArgument(e!, `${a.type.name} is expected`));
        failed = true;
        return;
      }
      if (!fits(v, typeRange(a.type))) {
        cx.report(diag.doesNotFit(e!, a.type.name, v.range.lo, v.range.hi));
        failed = true;
        return;
      }
      regs.push(v.reg);
    } else if (a.kind === 'null') {
      const v = e && cx.expr(e);
      if (v?.k !== 'null') {
        if (v?.k !== 'bad') cx.report(diag.badArgument(e ?? node, '`null` is expected'));
        failed = true;
        return;
      }
      regs.push((cx.constant(0n, false) as { reg: number }).reg);
    } else if (a.kind === 'map') {
      const v = e && cx.expr(e);
      if (v?.k !== 'map' || v.map.kind !== a.map) {
        if (v?.k !== 'bad') cx.report(diag.badArgument(e ?? node, `a ${a.map} map is expected`));
        failed = true;
        return;
      }
      const r = cx.newReg();
      cx.emit({ op: 'map', dst: r, map: v.map.name });
      regs.push(r);
    } else {
      const v = e && cx.expr(e);
      // Nullability is TypeScript's to check (strict null checks reject `T | null` for `object`).
      if (v?.k !== 'ptr') {
        if (v?.k !== 'bad') cx.report(diag.badArgument(e ?? node, 'a view or local() buffer is expected'));
        failed = true;
        return;
      }
      if (v.space === 'rodata' && (entry.kernel === 'skb_load_bytes')) {
        cx.report(diag.readOnlyGlobal(e!));
        failed = true;
        return;
      }
      regs.push(cx.address(v.base, v.off));
      if (a.sized) regs.push((cx.constant(BigInt(v.to.size), false) as { reg: number }).reg);
    }
  });
  if (failed) return { k: 'bad' };
  if (regs.length > 5) throw new Error(`helper ${entry.kernel}: more than 5 arguments`);
  regs.forEach((r, k) => cx.emit({ op: 'mov', dst: k + 1, src: r }));
  cx.emit({ op: 'call', ...helper(entry.kernel), argc: regs.length });
  if (CHANGES_PACKET.has(entry.kernel)) cx.packetGeneration++;
  return { k: 'int', reg: cx.copy(0), range: entry.result.range };
}

/** local(T): a zeroed stack buffer (a Cell for an integer type). */
function localCall(cx: Lowering, node: ts.CallExpression): Val {
  if (node.arguments.length !== 1 && node.arguments.length !== 2) return cx.report(diag.badArgument(node, 'local takes a descriptor and an optional initial value'));
  const type = cx.module.descriptors.evaluate(node.arguments[0]!);
  if (!type || type.kind === 'kptr' || containsKptr(type)) return cx.report(diag.notAStruct(node.arguments[0]!));
  const slot = cx.fn.newSlot(type.size, type.kind === 'int' ? type.size : type.align, `local ${type.kind === 'struct' ? type.name : type.kind}`);
  cx.zeroSlot(slot, type.size);
  if (node.arguments[1]) storeInit(cx, { slot }, 0, type, node.arguments[1]);
  return { k: 'ptr', base: { slot }, off: 0, to: type, space: 'stack', nullable: false, cell: type.kind === 'int' };
}

/** ctx.args(T) in a syscall program: the ctx_in buffer as a view of T (r1 is PTR_TO_CTX; the
 *  kernel checks ctx_size_in against the largest offset the program reads). */
function argsCall(cx: Lowering, node: ts.CallExpression, ctx: Extract<Val, { k: 'ctx' }>): Val {
  if (node.arguments.length !== 1) return cx.report(diag.badArgument(node, 'expected (type)'));
  const type = cx.module.descriptors.evaluate(node.arguments[0]!);
  if (!type || type.kind === 'int' || type.kind === 'kptr' || containsKptr(type)) return cx.report(diag.notAStruct(node.arguments[0]!));
  return { k: 'ptr', base: { reg: ctx.reg }, off: 0, to: type, space: 'ctx', nullable: false, cell: false };
}

/** kptrXchg(view, 'field', ptr | null): bpf_kptr_xchg(&view->field, ptr); the old pointer is an
 *  owned reference (or null). */
function kptrXchgCall(cx: Lowering, node: ts.CallExpression): Val {
  const [objArg, fieldArg, ptrArg] = node.arguments;
  if (!objArg || !fieldArg || !ptrArg || node.arguments.length !== 3) return cx.report(diag.badArgument(node, "kptrXchg takes (view, 'field', ptr | null)"));
  if (!ts.isStringLiteral(fieldArg)) return cx.report(diag.badArgument(fieldArg, 'the field is a string literal'));
  const obj = cx.expr(objArg);
  if (obj.k === 'bad') return obj;
  if (obj.k !== 'ptr' || obj.space !== 'map') return cx.report(diag.badArgument(objArg, 'kptr fields live in map values: a looked-up value is expected'));
  const f = obj.to.kind === 'struct' ? obj.to.layout.find((x) => x.name === fieldArg.text) : undefined;
  if (!f || f.type.kind !== 'kptr') return cx.report(diag.badArgument(fieldArg, `'${fieldArg.text}' is not a kptr field`));
  const target = f.type.target;
  const v = cx.expr(ptrArg);
  if (v.k === 'bad') return v;
  let value: number;
  if (v.k === 'null') value = (cx.constant(0n, true) as { reg: number }).reg;
  else if (v.k === 'kptr' && v.target === target && v.owned) value = v.reg;
  else return cx.report(diag.badArgument(ptrArg, `an owned ${target} reference (from create, acquire or kptrXchg) or null is expected`));
  const field = cx.address(obj.base, obj.off + f.offset);
  cx.emit({ op: 'mov', dst: 1, src: field });
  cx.emit({ op: 'mov', dst: 2, src: value });
  cx.emit({ op: 'call', ...helper('kptr_xchg'), argc: 2 });
  return { k: 'kptr', reg: cx.copy(0), target, nullable: true, owned: true };
}

/** A kfunc (or the dynptr helper) from KERNEL_CALLS: kernel objects, dynptrs, error cells. */
function kernelCall(cx: Lowering, node: ts.CallExpression, name: string, entry: KernelCallEntry): Val {
  if (!entry.contexts.includes(cx.ctxKind)) return cx.report(entry.sleepable ? diag.sleepableOnly(node, name) : diag.wrongContext(node, name, cx.ctxKind));
  const regs: number[] = [];
  let dynptrSlot: number | undefined;
  let k = 0; // the next DSL argument
  const nextArg = (): ts.Expression | undefined => node.arguments[k++];
  for (const a of entry.args) {
    if (a.kind === 'zero') {
      regs.push((cx.constant(0n, false) as { reg: number }).reg);
      continue;
    }
    if (a.kind === 'newDynptr') {
      dynptrSlot = cx.fn.newSlot(16, 8, `dynptr for ${name}`);
      regs.push(cx.address({ slot: dynptrSlot }, 0));
      continue;
    }
    const e = nextArg();
    if (!e) return cx.report(diag.badArgument(node, `${name} takes more arguments`));
    const v = cx.expr(e);
    if (v.k === 'bad') return v;
    switch (a.kind) {
      case 'ctx':
        if (v.k !== 'ctx') return cx.report(diag.badArgument(e, 'the program context is expected'));
        regs.push(v.reg);
        break;
      case 'int':
        if (v.k !== 'int') return cx.report(diag.badArgument(e, `${a.type.name} is expected`));
        if (!fits(v, typeRange(a.type))) return cx.report(diag.doesNotFit(e, a.type.name, v.range.lo, v.range.hi));
        regs.push(v.reg);
        break;
      case 'buf':
        if (v.k !== 'ptr' || v.cell) return cx.report(diag.badArgument(e, 'a view or local() buffer is expected'));
        regs.push(cx.address(v.base, v.off));
        if (a.sized) regs.push((cx.constant(BigInt(v.to.size), false) as { reg: number }).reg);
        break;
      case 'mapMemory': {
        if (v.k !== 'ptr' || (v.space !== 'map' && v.space !== 'global')) return cx.report(diag.badArgument(e, 'a map value or writable global is expected (the kernel refuses stack and packet memory here)'));
        if (containsLock(v.to)) return cx.report(diag.badLockUse(e, 'a helper may not access memory holding a bpf_spin_lock'));
        const ptr = cx.address(v.base, v.off);
        // An optional length (ARG_CONST_SIZE_OR_ZERO): the next argument when the entry allows it.
        const lenArg = a.length && node.arguments.length > k ? nextArg() : undefined;
        if (!lenArg) {
          regs.push(ptr, (cx.constant(BigInt(v.to.size), false) as { reg: number }).reg);
          break;
        }
        const len = cx.expr(lenArg);
        if (len.k === 'bad') return len;
        if (len.k !== 'int' || len.range.big) return cx.report(diag.badArgument(lenArg, 'the length is a number'));
        if (!within(len.range, exact(false, 0n, BigInt(v.to.size)))) return cx.report(diag.doesNotFit(lenArg, `0..${v.to.size} (the size of the buffer)`, len.range.lo, len.range.hi));
        regs.push(ptr, len.c !== undefined ? len.reg : clampTo(cx, len.reg, BigInt(v.to.size)));
        break;
      }
      case 'errCell':
        if (v.k !== 'ptr' || !v.cell || v.to.kind !== 'int' || v.to.size !== 4 || v.space === 'rodata') return cx.report(diag.badArgument(e, 'a Cell<i32> (local(i32), or an i32 map value or global) is expected'));
        regs.push(cx.address(v.base, v.off));
        break;
      case 'kptr':
        if (v.k !== 'kptr' || v.target !== a.target) return cx.report(diag.badArgument(e, `a ${a.target} is expected`));
        if (a.release && !v.owned) return cx.report(diag.badArgument(e, `only an owned reference (from create, acquire or kptrXchg) can be released`));
        regs.push(v.reg);
        break;
      case 'dynptr':
        if (v.k === 'null' && a.nullable) regs.push((cx.constant(0n, false) as { reg: number }).reg);
        else if (v.k === 'dynptr') regs.push(cx.address({ slot: v.slot }, 0));
        else return cx.report(diag.badArgument(e, `a dynptr${a.nullable ? ' or null' : ''} is expected`));
        break;
    }
  }
  let sliceType: DType | undefined;
  if (entry.result.kind === 'slice') {
    const e = nextArg();
    sliceType = e && cx.module.descriptors.evaluate(e);
    if (!sliceType || sliceType.kind === 'int' || sliceType.kind === 'kptr' || containsKptr(sliceType)) return cx.report(diag.notAStruct(e ?? node));
    regs.push((cx.constant(BigInt(sliceType.size), false) as { reg: number }).reg);
  }
  if (k !== node.arguments.length) return cx.report(diag.badArgument(node, `${name} takes ${k} arguments`));
  regs.forEach((r, i) => cx.emit({ op: 'mov', dst: i + 1, src: r }));
  if (entry.helper) cx.emit({ op: 'call', ...helper(entry.kernel), argc: regs.length });
  else cx.emit({ op: 'call_kfunc', name: entry.kernel, argc: regs.length });
  const r = entry.result;
  switch (r.kind) {
    case 'int':
      return { k: 'int', reg: cx.copy(0), range: r.range };
    case 'kptr':
      return { k: 'kptr', reg: cx.copy(0), target: r.target, nullable: true, owned: r.owned };
    case 'void':
      return { k: 'void' };
    case 'dynptr':
      return { k: 'dynptr', slot: dynptrSlot! };
    case 'slice':
      return { k: 'ptr', base: { reg: cx.copy(0) }, off: 0, to: sliceType!, space: 'dynptr', nullable: true, cell: false };
  }
}

/** fetchAdd(obj, 'field', n): BPF_ATOMIC | BPF_FETCH | BPF_ADD on a 32/64-bit field of a map
 *  value, global or Cell; returns the old value. */
function fetchAddCall(cx: Lowering, node: ts.CallExpression): Val {
  const [objArg, fieldArg, nArg] = node.arguments;
  if (!objArg || !fieldArg || !nArg || node.arguments.length !== 3) return cx.report(diag.badArgument(node, "fetchAdd takes (view, 'field', n)"));
  if (!ts.isStringLiteral(fieldArg)) return cx.report(diag.badArgument(fieldArg, 'the field is a string literal'));
  const obj = cx.expr(objArg);
  if (obj.k === 'bad') return obj;
  if (obj.k !== 'ptr') return cx.report(diag.badArgument(objArg, 'a map value, global or Cell is expected'));
  if (obj.space !== 'map' && obj.space !== 'global') return cx.report(diag.badArgument(objArg, `atomics work on map values and writable globals, not ${obj.space === 'rodata' ? 'rodata' : `${obj.space} memory`}`));
  let off = obj.off;
  let type: DType = obj.to;
  if (obj.cell) {
    if (fieldArg.text !== 'value') return cx.report(diag.badArgument(fieldArg, "a Cell's field is 'value'"));
  } else {
    const f = type.kind === 'struct' ? type.layout.find((x) => x.name === fieldArg.text) : undefined;
    if (!f) return cx.report(diag.badArgument(fieldArg, `'${fieldArg.text}' is not a field`));
    off += f.offset;
    type = f.type;
  }
  if (type.kind !== 'int' || (type.size !== 4 && type.size !== 8) || type.bigEndian) return cx.report(diag.badArgument(fieldArg, 'atomics need a 32- or 64-bit host-order integer field'));
  if (off % type.size !== 0) return cx.report(diag.badArgument(fieldArg, 'the field is not naturally aligned'));
  const n = cx.expr(nArg);
  if (n.k === 'bad') return n;
  if (n.k !== 'int' || n.range.big !== (type.size === 8)) return cx.report(diag.badArgument(nArg, `${type.size === 8 ? 'a bigint' : 'a number'} is expected`));
  // The field wraps like a store: any value in the 64-bit register works for the ring addition.
  if (!n.range.wrapped && !fits(n, { big: n.range.big, lo: -(1n << 63n), hi: (1n << 64n) - 1n, wrapped: false })) return cx.report(diag.wrappingBigint(nArg));
  const dst = cx.newReg();
  const base: Base = 'slot' in obj.base ? obj.base : { reg: obj.base.reg };
  cx.emit({ op: 'fetch_add', size: type.size, dst, base, off, value: cx.copy(n.reg) });
  let result = dst;
  if (type.signed) {
    result = cx.newReg();
    cx.emit({ op: 'sext', bits: (type.size * 8) as 32, dst: result, a: dst });
  }
  return { k: 'int', reg: result, range: typeRange(type) };
}

/** A copy of `reg` the verifier sees as ≤ max: `if (r > max) r = max`, a branch never taken (the
 *  compiler proved the bound), for size arguments the verifier checks against the memory. */
function clampTo(cx: Lowering, reg: number, max: bigint): number {
  const r = cx.copy(reg);
  const clamp = cx.newBlock();
  const join = cx.newBlock();
  cx.branch('ugt', r, { imm: max }, clamp, join);
  cx.setBlock(clamp);
  cx.emit({ op: 'const', dst: r, value: max });
  cx.jump(join);
  cx.setBlock(join);
  return r;
}

/** spinLock(view, 'field') / spinUnlock(view, 'field'): bpf_spin_lock / bpf_spin_unlock with a
 *  pointer to a bpfSpinLock field of a map value (a constant offset, as the verifier requires).
 *  Whether the lock is held on every path is checked after lowering (compiler/frontend/locks.ts). */
function spinLockCall(cx: Lowering, node: ts.CallExpression, name: 'spinLock' | 'spinUnlock'): Val {
  const [objArg, fieldArg] = node.arguments;
  if (!objArg || !fieldArg || node.arguments.length !== 2) return cx.report(diag.badArgument(node, `${name} takes (view, 'field')`));
  if (!ts.isStringLiteral(fieldArg)) return cx.report(diag.badArgument(fieldArg, 'the field is a string literal'));
  const obj = cx.expr(objArg);
  if (obj.k === 'bad') return obj;
  if (obj.k !== 'ptr' || obj.space !== 'map' || obj.cell) return cx.report(diag.badArgument(objArg, 'spin locks live in map values: a looked-up value (hash or array map) is expected'));
  const f = obj.to.kind === 'struct' ? obj.to.layout.find((x) => x.name === fieldArg.text) : undefined;
  if (!f || !isSpinLock(f.type)) return cx.report(diag.badArgument(fieldArg, `'${fieldArg.text}' is not a bpfSpinLock field`));
  const field = cx.address(obj.base, obj.off + f.offset);
  cx.emit({ op: 'mov', dst: 1, src: field });
  cx.emit({ op: 'call', ...helper(name === 'spinLock' ? 'spin_lock' : 'spin_unlock'), argc: 1 });
  return { k: 'void' };
}
