// Literals, names and wrappers that only change the static type (parentheses, `!`, `as`).

import ts from 'typescript';
import * as dsl from '../../dsl/index.ts';
import { diag } from '../../diagnostics.ts';
import type { Lowering } from '../context.ts';
import { type Val, dslName, resolveSymbol, typeRange } from '../types.ts';

export function numericLiteral(cx: Lowering, node: ts.NumericLiteral): Val {
  const text = node.text;
  if (!/^(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|\d+)$/.test(text.replace(/_/g, ''))) return cx.report(diag.floatingPoint(node));
  const v = BigInt(text.replace(/_/g, ''));
  if (v >= 1n << 53n) return cx.report(diag.unsafeNumber(node, v, v));
  return cx.constant(v, false);
}

export function bigintLiteral(cx: Lowering, node: ts.BigIntLiteral): Val {
  const v = BigInt(node.text.replace(/_/g, '').slice(0, -1));
  if (v >= 1n << 64n) return cx.report(diag.doesNotFit(node, 'u64', v, v));
  return cx.constant(v, true);
}

export const trueLiteral = (cx: Lowering): Val => cx.bool(true);
export const falseLiteral = (cx: Lowering): Val => cx.bool(false);
export const nullLiteral = (): Val => ({ k: 'null' });

export const parenthesized = (cx: Lowering, node: ts.ParenthesizedExpression): Val => cx.expr(node.expression);
export const nonNull = (cx: Lowering, node: ts.NonNullExpression): Val => {
  const v = cx.expr(node.expression);
  return v.k === 'ptr' ? { ...v, nullable: false } : v;
};
export const typeAssertion = (cx: Lowering, node: ts.AsExpression | ts.SatisfiesExpression): Val => cx.expr(node.expression);

export function identifier(cx: Lowering, node: ts.Identifier): Val {
  if (node.text === 'undefined') return cx.report(diag.unsupportedSyntax(node));
  const sym = resolveSymbol(cx.checker, node);
  if (!sym) return cx.report(diag.unknownIdentifier(node, node.text));
  const b = cx.scope.get(sym);
  if (b) {
    switch (b.kind) {
      case 'value':
        return b.val;
      case 'int':
        // A copy: a later assignment to the variable must not change a value already read.
        return { k: 'int', reg: cx.copy(b.reg), range: b.readRange ?? typeRange(b.type) };
      case 'bool':
        return { k: 'bool', reg: cx.copy(b.reg) };
      case 'ptr':
        return { k: 'ptr', base: { reg: cx.copy(b.reg) }, off: 0, to: b.to, space: b.space, nullable: true, cell: b.cell };
    }
  }
  return moduleValue(cx, node, sym);
}

/** A module-level name: a map, a descriptor, a constant (here or exported by the DSL). */
export function moduleValue(cx: Lowering, node: ts.Node, sym: ts.Symbol): Val {
  const m = cx.module;
  const map = m.maps.get(sym);
  if (map) return { k: 'map', map };
  const name = dslName(sym);
  if (name) {
    const v = (dsl as Record<string, unknown>)[name];
    if (typeof v === 'number' && Number.isInteger(v)) return cx.constant(BigInt(v), false);
    if (typeof v === 'bigint') return cx.constant(v, true);
  }
  const desc = m.descriptor(sym);
  if (desc) return { k: 'desc', type: desc };
  const c = m.constantOf(sym);
  if (c !== undefined) return cx.constant(c.value, c.big);
  return cx.report(diag.unknownIdentifier(node, sym.name));
}
