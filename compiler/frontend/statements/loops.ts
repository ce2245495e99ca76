// for / while / do-while loops with break and continue. The verifier bounds loops itself; for
// large counts use bpf_loop.

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Lowering } from '../context.ts';
import { type DType, exact, typeRange } from '../types.ts';
import { boundIndex, elementAddress, readMem } from '../expressions/access.ts';
import { variableDeclarationList } from './variable.ts';

/** Whether `body` may assign the variable `sym`. */
export function assigns(cx: Lowering, body: ts.Node, sym: ts.Symbol): boolean {
  let found = false;
  const isSym = (e: ts.Expression): boolean => {
    while (ts.isParenthesizedExpression(e)) e = e.expression;
    return ts.isIdentifier(e) && cx.checker.getSymbolAtLocation(e) === sym;
  };
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment && isSym(n.left)) found = true;
    else if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken) && isSym(n.operand)) found = true;
    else ts.forEachChild(n, visit);
  };
  visit(body);
  return found;
}

/** `for (let i = C0; i < C1; i++)` (or <=, ++i, i += 1) with i not assigned in the body: the
 *  counter's exact range, so indexing with it needs no mask. */
function counterRange(cx: Lowering, node: ts.ForStatement): { sym: ts.Symbol; lo: bigint; last: bigint } | undefined {
  const init = node.initializer;
  if (!init || !ts.isVariableDeclarationList(init) || init.declarations.length !== 1) return undefined;
  const d = init.declarations[0]!;
  if (!ts.isIdentifier(d.name) || !d.initializer) return undefined;
  const sym = cx.checker.getSymbolAtLocation(d.name);
  const lo = cx.module.constantValue(d.initializer);
  const c = node.condition;
  if (!sym || lo === undefined || !c || !ts.isBinaryExpression(c) || !ts.isIdentifier(c.left) || cx.checker.getSymbolAtLocation(c.left) !== sym) return undefined;
  const bound = cx.module.constantValue(c.right);
  if (bound === undefined) return undefined;
  const op = c.operatorToken.kind;
  const last = op === ts.SyntaxKind.LessThanToken ? bound - 1n : op === ts.SyntaxKind.LessThanEqualsToken ? bound : undefined;
  const inc = node.incrementor;
  const step =
    inc &&
    (((ts.isPostfixUnaryExpression(inc) || ts.isPrefixUnaryExpression(inc)) && inc.operator === ts.SyntaxKind.PlusPlusToken && ts.isIdentifier(inc.operand) && cx.checker.getSymbolAtLocation(inc.operand) === sym) ||
      (ts.isBinaryExpression(inc) && inc.operatorToken.kind === ts.SyntaxKind.PlusEqualsToken && ts.isIdentifier(inc.left) && cx.checker.getSymbolAtLocation(inc.left) === sym && cx.module.constantValue(inc.right) === 1n));
  if (last === undefined || !step || last < lo || assigns(cx, node.statement, sym)) return undefined;
  return { sym, lo, last };
}

export function forStatement(cx: Lowering, node: ts.ForStatement): void {
  const counter = counterRange(cx, node);
  if (node.initializer) {
    if (ts.isVariableDeclarationList(node.initializer)) variableDeclarationList(cx, node.initializer);
    else cx.expr(node.initializer);
  }
  const binding = counter && cx.scope.get(counter.sym);
  const narrow = binding?.kind === 'int' ? binding : undefined;
  if (narrow && counter) {
    const big = narrow.type.size === 8;
    narrow.storeRange = exact(big, counter.lo, counter.last + 1n);
    narrow.readRange = narrow.storeRange;
  }
  const head = cx.newBlock();
  const body = cx.newBlock();
  const next = cx.newBlock();
  const exit = cx.newBlock();
  cx.jump(head);
  cx.setBlock(head);
  if (node.condition) cx.cond(node.condition, body, exit);
  else cx.jump(body);
  cx.setBlock(body);
  if (narrow && counter) narrow.readRange = exact(narrow.type.size === 8, counter.lo, counter.last);
  cx.loops.push({ breakTo: exit, continueTo: next });
  cx.stmt(node.statement);
  cx.loops.pop();
  if (cx.open) cx.jump(next);
  cx.setBlock(next);
  if (node.incrementor) cx.expr(node.incrementor);
  cx.jump(head);
  cx.setBlock(exit);
  if (narrow) narrow.readRange = narrow.storeRange;
}

export function whileStatement(cx: Lowering, node: ts.WhileStatement): void {
  const head = cx.newBlock();
  const body = cx.newBlock();
  const exit = cx.newBlock();
  cx.jump(head);
  cx.setBlock(head);
  cx.cond(node.expression, body, exit);
  cx.setBlock(body);
  cx.loops.push({ breakTo: exit, continueTo: head });
  cx.stmt(node.statement);
  cx.loops.pop();
  if (cx.open) cx.jump(head);
  cx.setBlock(exit);
}

export function doStatement(cx: Lowering, node: ts.DoStatement): void {
  const body = cx.newBlock();
  const test = cx.newBlock();
  const exit = cx.newBlock();
  cx.jump(body);
  cx.setBlock(body);
  cx.loops.push({ breakTo: exit, continueTo: test });
  cx.stmt(node.statement);
  cx.loops.pop();
  if (cx.open) cx.jump(test);
  cx.setBlock(test);
  cx.cond(node.expression, body, exit);
  cx.setBlock(exit);
}

export function breakStatement(cx: Lowering, node: ts.BreakStatement): void {
  if (node.label) return void cx.report(diag.labelledStatement(node));
  const t = cx.loops[cx.loops.length - 1];
  if (!t) return void cx.report(diag.breakOutsideLoop(node));
  cx.jump(t.breakTo);
}

export function continueStatement(cx: Lowering, node: ts.ContinueStatement): void {
  if (node.label) return void cx.report(diag.labelledStatement(node));
  const t = [...cx.loops].reverse().find((l) => l.continueTo);
  if (!t) return void cx.report(diag.breakOutsideLoop(node));
  cx.jump(t.continueTo!);
}

/** `for (const x of arr)` over a fixed-size array view (packet, map value, global, rodata,
 *  local): a counter loop 0..length-1 with the element read each iteration (an integer, or a
 *  view of a struct/array element). The index is shown to the verifier like `arr[i]`'s. */
export function forOfStatement(cx: Lowering, node: ts.ForOfStatement): void {
  const init = node.initializer;
  if (node.awaitModifier || !ts.isVariableDeclarationList(init) || init.declarations.length !== 1 || !ts.isIdentifier(init.declarations[0]!.name))
    return void cx.report(diag.unsupportedLoop(node));
  const decl = init.declarations[0]!;
  const name = (decl.name as ts.Identifier).text;
  const sym = cx.checker.getSymbolAtLocation(decl.name);
  const arr = cx.expr(node.expression);
  if (arr.k === 'bad' || !sym) return;
  if (arr.k !== 'ptr' || arr.to.kind !== 'array' || arr.nullable || arr.space === 'ctx') return void cx.report(diag.unsupportedLoop(node.expression));
  const isConst = (init.flags & ts.NodeFlags.Const) !== 0;
  const el = arr.to.element as DType;
  const length = arr.to.length;
  const generation = cx.packetGeneration;
  const start = cx.address(arr.base, arr.off);
  const i = cx.newReg();
  cx.emit({ op: 'const', dst: i, value: 0n });
  const head = cx.newBlock();
  const body = cx.newBlock();
  const next = cx.newBlock();
  const exit = cx.newBlock();
  cx.jump(head);
  cx.setBlock(head);
  cx.branch('ult', i, { imm: BigInt(length) }, body, exit);
  cx.setBlock(body);
  const idx = { k: 'int' as const, reg: i, range: exact(false, 0n, BigInt(length - 1)) };
  const bounded = boundIndex(cx, idx, length);
  const addr = elementAddress(cx, start, bounded, el, arr.space);
  const v = readMem(cx, { reg: addr }, 0, el, arr.space);
  if (v.k === 'int' && !isConst) {
    const reg = cx.copy(v.reg);
    cx.scope.set(sym, { kind: 'int', reg, type: el as Extract<DType, { kind: 'int' }>, name, readRange: typeRange(el as Extract<DType, { kind: 'int' }>) });
  } else if (v.k === 'ptr' && !isConst) {
    return void cx.report(diag.assignToConst(decl, name)); // a view element is a const binding
  } else cx.scope.set(sym, { kind: 'value', val: v.k === 'ptr' ? { ...v, generation: arr.generation } : v });
  cx.loops.push({ breakTo: exit, continueTo: next });
  cx.stmt(node.statement);
  cx.loops.pop();
  if (cx.open) cx.jump(next);
  cx.setBlock(next);
  cx.emit({ op: 'mov', dst: i, src: cx.alu('add', 64, i, { imm: 1n }) });
  cx.jump(head);
  cx.setBlock(exit);
  // The array's address was taken once, before the loop: a helper in the body that may move the
  // packet makes it stale for the next iteration.
  if (arr.space === 'packet' && cx.packetGeneration !== generation) cx.report(diag.stalePacketView(node.expression));
}

export function unsupportedLoop(cx: Lowering, node: ts.Node): void {
  cx.report(diag.unsupportedLoop(node));
}

export function labelled(cx: Lowering, node: ts.LabeledStatement): void {
  cx.report(diag.labelledStatement(node));
}
