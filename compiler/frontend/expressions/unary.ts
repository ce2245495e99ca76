// Prefix and postfix operators: - ~ ! + and ++/-- on variables, fields and elements.

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Lowering } from '../context.ts';
import { arith, bitNot, negate } from '../arith.ts';
import type { Val } from '../types.ts';
import { placeOf, readPlace, storePlace } from './access.ts';
import { materialise } from './binary.ts';

export function prefixUnary(cx: Lowering, node: ts.PrefixUnaryExpression): Val {
  switch (node.operator) {
    case ts.SyntaxKind.ExclamationToken:
      return materialise(cx, node);
    case ts.SyntaxKind.PlusPlusToken:
    case ts.SyntaxKind.MinusMinusToken:
      return increment(cx, node, node.operand, node.operator === ts.SyntaxKind.PlusPlusToken, true);
  }
  // -5 is a literal, not a negation (it keeps an exact constant range).
  if (node.operator === ts.SyntaxKind.MinusToken && (ts.isNumericLiteral(node.operand) || ts.isBigIntLiteral(node.operand))) {
    const v = cx.expr(node.operand);
    if (v.k === 'int' && v.c !== undefined) return cx.constant(-v.c, v.range.big);
  }
  const v = cx.expr(node.operand);
  if (v.k === 'bad') return v;
  if (v.k !== 'int') return cx.report(diag.unsupportedOperator(node, ts.tokenToString(node.operator) ?? '?'));
  switch (node.operator) {
    case ts.SyntaxKind.MinusToken:
      return negate(cx, node, v);
    case ts.SyntaxKind.TildeToken:
      return bitNot(cx, v);
    case ts.SyntaxKind.PlusToken:
      if (v.range.big) return cx.report(diag.unsupportedOperator(node, '+'));
      return v;
  }
  return cx.report(diag.unsupportedOperator(node, ts.tokenToString(node.operator) ?? '?'));
}

export function postfixUnary(cx: Lowering, node: ts.PostfixUnaryExpression): Val {
  return increment(cx, node, node.operand, node.operator === ts.SyntaxKind.PlusPlusToken, false);
}

function increment(cx: Lowering, node: ts.Node, operand: ts.Expression, up: boolean, prefix: boolean): Val {
  const place = placeOf(cx, operand);
  const old = readPlace(cx, place);
  if (old.k === 'bad') return old;
  if (old.k !== 'int') return cx.report(diag.unsupportedOperator(node, up ? '++' : '--'));
  const one = cx.constant(1n, old.range.big) as Extract<Val, { k: 'int' }>;
  const v = arith(cx, node, up ? '+' : '-', old, one);
  storePlace(cx, place, v, node);
  return prefix ? v : old;
}
