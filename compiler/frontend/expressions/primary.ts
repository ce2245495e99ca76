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
/** `v!` asserts nothing in BPF: a NULL view would fault in Node and be refused by the verifier. */
export const nonNull = (cx: Lowering, node: ts.NonNullExpression): Val => {
  const v = cx.expr(node.expression);
  if (v.k === 'ptr' && v.nullable && !('slot' in v.base)) return cx.report(diag.nullableUse(node));
  return v;
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
        return b.val.k === 'ptr' ? checkGeneration(cx, node, b.val) : b.val;
      case 'int':
        // A copy: a later assignment to the variable must not change a value already read.
        return { k: 'int', reg: cx.copy(b.reg), range: b.readRange ?? typeRange(b.type) };
      case 'bool':
        return { k: 'bool', reg: cx.copy(b.reg) };
      case 'ptr':
        return checkGeneration(cx, node, { k: 'ptr', base: { reg: cx.copy(b.reg) }, off: 0, to: b.to, space: b.space, nullable: true, cell: b.cell, generation: b.generation });
    }
  }
  return moduleValue(cx, node, sym);
}

/** A module-level name: a map, a descriptor, a constant (here or exported by the DSL). */
export function moduleValue(cx: Lowering, node: ts.Node, sym: ts.Symbol): Val {
  const m = cx.module;
  const map = m.maps.get(sym);
  if (map) return { k: 'map', map };
  const g = m.globals.get(sym);
  if (g) {
    // Global data: LD_IMM64 of the section's value address (PTR_TO_MAP_VALUE) plus the offset.
    const reg = cx.newReg();
    cx.emit({ op: 'global', dst: reg, section: g.section, offset: g.offset });
    return { k: 'ptr', base: { reg }, off: 0, to: g.type, space: g.section === '.rodata' ? 'rodata' : 'global', nullable: false, cell: g.type.kind === 'int' };
  }
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

/** A packet view from before a helper that may move the packet is stale (EBPF1409). */
export function checkGeneration(cx: Lowering, node: ts.Node, v: Extract<Val, { k: 'ptr' }>): Val {
  if (v.space === 'packet' && v.generation !== undefined && v.generation !== cx.packetGeneration) return cx.report(diag.stalePacketView(node));
  return v;
}

export const noValue = (cx: Lowering, node: ts.Expression): Val => cx.report(diag.stringOrObject(node));
