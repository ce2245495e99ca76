// for / while / do-while loops with break and continue. The verifier bounds loops itself; for
// large counts use bpf_loop.

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Lowering } from '../context.ts';
import { exact } from '../types.ts';
import { variableDeclarationList } from './variable.ts';

/** Whether `body` may assign the variable `sym`. */
function assigns(cx: Lowering, body: ts.Node, sym: ts.Symbol): boolean {
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

export function unsupportedLoop(cx: Lowering, node: ts.Node): void {
  cx.report(diag.unsupportedLoop(node));
}

export function labelled(cx: Lowering, node: ts.LabeledStatement): void {
  cx.report(diag.labelledStatement(node));
}
