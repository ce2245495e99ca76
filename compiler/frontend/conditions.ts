// Conditions lower to branches, not values: `if (a < b && p !== null)` becomes two conditional
// jumps. Integer comparisons are unsigned when both sides are known non-negative (the verifier
// learns more from unsigned bounds), signed when both fit in int64, and a diagnostic otherwise.

import ts from 'typescript';
import { diag } from '../diagnostics.ts';
import type { Block, CmpName } from '../ir/ir.ts';
import type { Lowering } from './context.ts';
import { type Val, skipParens, TWO63 } from './types.ts';

const MIRROR: Record<string, CmpName> = { ult: 'ugt', ule: 'uge', ugt: 'ult', uge: 'ule', slt: 'sgt', sle: 'sge', sgt: 'slt', sge: 'sle', eq: 'eq', ne: 'ne' };

function relational(kind: ts.SyntaxKind, unsigned: boolean): CmpName | undefined {
  switch (kind) {
    case ts.SyntaxKind.EqualsEqualsEqualsToken:
      return 'eq';
    case ts.SyntaxKind.ExclamationEqualsEqualsToken:
      return 'ne';
    case ts.SyntaxKind.LessThanToken:
      return unsigned ? 'ult' : 'slt';
    case ts.SyntaxKind.LessThanEqualsToken:
      return unsigned ? 'ule' : 'sle';
    case ts.SyntaxKind.GreaterThanToken:
      return unsigned ? 'ugt' : 'sgt';
    case ts.SyntaxKind.GreaterThanEqualsToken:
      return unsigned ? 'uge' : 'sge';
  }
  return undefined;
}

export function condition(cx: Lowering, node: ts.Expression, whenTrue: Block, whenFalse: Block): void {
  const e = skipParens(node);
  if (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.ExclamationToken) {
    cx.cond(e.operand, whenFalse, whenTrue);
    return;
  }
  if (ts.isBinaryExpression(e)) {
    const op = e.operatorToken.kind;
    if (op === ts.SyntaxKind.AmpersandAmpersandToken || op === ts.SyntaxKind.BarBarToken) {
      const mid = cx.newBlock();
      if (op === ts.SyntaxKind.AmpersandAmpersandToken) cx.cond(e.left, mid, whenFalse);
      else cx.cond(e.left, whenTrue, mid);
      cx.setBlock(mid);
      cx.cond(e.right, whenTrue, whenFalse);
      return;
    }
    if (op === ts.SyntaxKind.EqualsEqualsToken || op === ts.SyntaxKind.ExclamationEqualsToken) {
      cx.report(diag.looseEquality(e.operatorToken, op === ts.SyntaxKind.EqualsEqualsToken ? '==' : '!='));
      cx.jump(whenFalse);
      return;
    }
    if (relational(op, false)) {
      comparison(cx, e, whenTrue, whenFalse);
      return;
    }
  }
  // Any other expression: its truthiness.
  const v = cx.expr(e);
  if (v.k === 'bad') return cx.jump(whenFalse);
  if (v.k === 'bool' && v.c !== undefined) return cx.jump(v.c ? whenTrue : whenFalse);
  if (v.k === 'int' || v.k === 'bool') {
    if (v.k === 'int' && v.range.wrapped) cx.report(diag.wrappingBigint(e));
    return cx.branch('ne', v.reg, { imm: 0n }, whenTrue, whenFalse);
  }
  if (v.k === 'ptr') {
    if ('slot' in v.base || !v.nullable) return cx.jump(whenTrue);
    return cx.branch('ne', v.base.reg, { imm: 0n }, whenTrue, whenFalse);
  }
  if (v.k === 'kptr') return cx.branch('ne', v.reg, { imm: 0n }, whenTrue, whenFalse);
  if (v.k === 'null') return cx.jump(whenFalse);
  cx.report(diag.unsupportedSyntax(e));
  cx.jump(whenFalse);
}

function comparison(cx: Lowering, e: ts.BinaryExpression, whenTrue: Block, whenFalse: Block): void {
  const op = e.operatorToken.kind;
  let a = cx.expr(e.left);
  let b = cx.expr(e.right);
  if (a.k === 'bad' || b.k === 'bad') return cx.jump(whenFalse);
  const equality = op === ts.SyntaxKind.EqualsEqualsEqualsToken || op === ts.SyntaxKind.ExclamationEqualsEqualsToken;
  // null checks
  if (equality && (a.k === 'null' || b.k === 'null')) {
    if (a.k === 'null') [a, b] = [b, a];
    const isEq = op === ts.SyntaxKind.EqualsEqualsEqualsToken;
    if (a.k === 'null') return cx.jump(isEq ? whenTrue : whenFalse);
    if (a.k === 'kptr') return cx.branch(isEq ? 'eq' : 'ne', a.reg, { imm: 0n }, whenTrue, whenFalse);
    if (a.k !== 'ptr') {
      cx.report(diag.unsupportedOperator(e.operatorToken, '=== null'));
      return cx.jump(whenFalse);
    }
    if ('slot' in a.base || !a.nullable) return cx.jump(isEq ? whenFalse : whenTrue);
    return cx.branch(isEq ? 'eq' : 'ne', a.base.reg, { imm: 0n }, whenTrue, whenFalse);
  }
  if (a.k === 'bool' && b.k === 'bool' && equality) {
    return cx.branch(op === ts.SyntaxKind.EqualsEqualsEqualsToken ? 'eq' : 'ne', a.reg, { reg: b.reg }, whenTrue, whenFalse);
  }
  if (a.k !== 'int' || b.k !== 'int') {
    cx.report(diag.unsupportedOperator(e.operatorToken, ts.tokenToString(op) ?? '?'));
    return cx.jump(whenFalse);
  }
  if (a.range.wrapped || b.range.wrapped) {
    cx.report(diag.wrappingBigint(a.range.wrapped ? e.left : e.right));
    return cx.jump(whenFalse);
  }
  const unsigned = a.range.lo >= 0n && b.range.lo >= 0n;
  if (!unsigned && (a.range.hi >= TWO63 || b.range.hi >= TWO63)) {
    cx.report(diag.mixedSignedness(e));
    return cx.jump(whenFalse);
  }
  let cmp = relational(op, unsigned)!;
  // Constant on the right, where the instruction has its immediate.
  if (a.c !== undefined && b.c === undefined) {
    [a, b] = [b, a];
    cmp = MIRROR[cmp]!;
  }
  cx.branch(cmp, a.reg, cx.operand(b), whenTrue, whenFalse);
}
