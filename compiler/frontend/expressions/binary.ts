// Binary expressions: arithmetic, comparison, logical operators, assignment and compound
// assignment. Comparisons and logical operators in value position are materialised as 0/1
// through the condition lowering (conditions.ts), which is also what if/while use directly.

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Lowering } from '../context.ts';
import { arith, truncatedDivision, type ArithOp, type IntVal } from '../arith.ts';
import { type Val, skipParens } from '../types.ts';
import { placeOf, readPlace, storePlace } from './access.ts';

const ARITH: Partial<Record<ts.SyntaxKind, ArithOp>> = {
  [ts.SyntaxKind.PlusToken]: '+',
  [ts.SyntaxKind.MinusToken]: '-',
  [ts.SyntaxKind.AsteriskToken]: '*',
  [ts.SyntaxKind.SlashToken]: '/',
  [ts.SyntaxKind.PercentToken]: '%',
  [ts.SyntaxKind.AmpersandToken]: '&',
  [ts.SyntaxKind.BarToken]: '|',
  [ts.SyntaxKind.CaretToken]: '^',
  [ts.SyntaxKind.LessThanLessThanToken]: '<<',
  [ts.SyntaxKind.GreaterThanGreaterThanToken]: '>>',
  [ts.SyntaxKind.GreaterThanGreaterThanGreaterThanToken]: '>>>',
};
const COMPOUND: Partial<Record<ts.SyntaxKind, ArithOp>> = {
  [ts.SyntaxKind.PlusEqualsToken]: '+',
  [ts.SyntaxKind.MinusEqualsToken]: '-',
  [ts.SyntaxKind.AsteriskEqualsToken]: '*',
  [ts.SyntaxKind.SlashEqualsToken]: '/',
  [ts.SyntaxKind.PercentEqualsToken]: '%',
  [ts.SyntaxKind.AmpersandEqualsToken]: '&',
  [ts.SyntaxKind.BarEqualsToken]: '|',
  [ts.SyntaxKind.CaretEqualsToken]: '^',
  [ts.SyntaxKind.LessThanLessThanEqualsToken]: '<<',
  [ts.SyntaxKind.GreaterThanGreaterThanEqualsToken]: '>>',
  [ts.SyntaxKind.GreaterThanGreaterThanGreaterThanEqualsToken]: '>>>',
};
export const CONDITIONAL_OPERATORS = new Set<ts.SyntaxKind>([
  ts.SyntaxKind.EqualsEqualsEqualsToken,
  ts.SyntaxKind.ExclamationEqualsEqualsToken,
  ts.SyntaxKind.LessThanToken,
  ts.SyntaxKind.LessThanEqualsToken,
  ts.SyntaxKind.GreaterThanToken,
  ts.SyntaxKind.GreaterThanEqualsToken,
  ts.SyntaxKind.AmpersandAmpersandToken,
  ts.SyntaxKind.BarBarToken,
]);

/** 0/1 from a condition. */
export function materialise(cx: Lowering, node: ts.Expression): Val {
  const r = cx.newReg();
  const t = cx.newBlock();
  const f = cx.newBlock();
  const join = cx.newBlock();
  cx.cond(node, t, f);
  cx.setBlock(t);
  cx.emit({ op: 'const', dst: r, value: 1n });
  cx.jump(join);
  cx.setBlock(f);
  cx.emit({ op: 'const', dst: r, value: 0n });
  cx.jump(join);
  cx.setBlock(join);
  return { k: 'bool', reg: r };
}

export function binaryExpression(cx: Lowering, node: ts.BinaryExpression): Val {
  const op = node.operatorToken.kind;
  if (op === ts.SyntaxKind.EqualsEqualsToken || op === ts.SyntaxKind.ExclamationEqualsToken)
    return cx.report(diag.looseEquality(node.operatorToken, op === ts.SyntaxKind.EqualsEqualsToken ? '==' : '!='));
  if (op === ts.SyntaxKind.AmpersandAmpersandToken || op === ts.SyntaxKind.BarBarToken) {
    // In value position JavaScript returns one of the operands: only booleans give 0/1.
    if (!(cx.checker.getTypeAtLocation(node).flags & ts.TypeFlags.BooleanLike)) return cx.report(diag.notBoolean(node));
  }
  if (CONDITIONAL_OPERATORS.has(op)) return materialise(cx, node);
  if (op === ts.SyntaxKind.EqualsToken) return assignment(cx, node);
  const compound = COMPOUND[op];
  if (compound) return compoundAssignment(cx, node, compound);
  const a = ARITH[op];
  if (!a) return cx.report(diag.unsupportedOperator(node.operatorToken, ts.tokenToString(op) ?? ts.SyntaxKind[op]!));

  // (x / y) >>> 0 and (x / y) | 0: the only forms of number division.
  const left = skipParens(node.left);
  if ((a === '>>>' || a === '|') && isZeroLiteral(node.right) && ts.isBinaryExpression(left) && left.operatorToken.kind === ts.SyntaxKind.SlashToken) {
    const x = cx.expr(left.left);
    const y = cx.expr(left.right);
    if (x.k === 'bad' || y.k === 'bad') return { k: 'bad' };
    if (x.k !== 'int' || y.k !== 'int' || x.range.big) return cx.report(diag.unsupportedOperator(left.operatorToken, '/'));
    return truncatedDivision(cx, left, x, y, a === '>>>');
  }
  const x = cx.expr(node.left);
  const y = cx.expr(node.right);
  if (x.k === 'bad' || y.k === 'bad') return { k: 'bad' };
  if (x.k !== 'int' || y.k !== 'int') return cx.report(diag.unsupportedOperator(node.operatorToken, a));
  return arith(cx, node, a, x, y);
}

const isZeroLiteral = (e: ts.Expression): boolean => {
  e = skipParens(e);
  return ts.isNumericLiteral(e) && Number(e.text) === 0;
};

function assignment(cx: Lowering, node: ts.BinaryExpression): Val {
  const place = placeOf(cx, node.left);
  const v = cx.expr(node.right);
  storePlace(cx, place, v, node.right);
  return v;
}

function compoundAssignment(cx: Lowering, node: ts.BinaryExpression, op: ArithOp): Val {
  const place = placeOf(cx, node.left);
  const old = readPlace(cx, place);
  const rhs = cx.expr(node.right);
  if (old.k === 'bad' || rhs.k === 'bad') return { k: 'bad' };
  if (old.k !== 'int' || rhs.k !== 'int') return cx.report(diag.unsupportedOperator(node.operatorToken, op));
  const v = arith(cx, node, op, old as IntVal, rhs);
  storePlace(cx, place, v, node);
  return v;
}

export function commaExpression(cx: Lowering, node: ts.BinaryExpression): Val {
  return cx.report(diag.unsupportedOperator(node.operatorToken, ','));
}
