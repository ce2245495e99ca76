// The ternary operator: both arms write one result register.

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Lowering } from '../context.ts';
import { type Range, type Val, exact } from '../types.ts';

export function conditionalExpression(cx: Lowering, node: ts.ConditionalExpression): Val {
  const t = cx.newBlock();
  const f = cx.newBlock();
  const join = cx.newBlock();
  const result = cx.newReg();
  cx.cond(node.condition, t, f);
  cx.setBlock(t);
  const a = cx.expr(node.whenTrue);
  if (a.k === 'int' || a.k === 'bool') cx.emit({ op: 'mov', dst: result, src: a.reg });
  cx.jump(join);
  cx.setBlock(f);
  const b = cx.expr(node.whenFalse);
  if (b.k === 'int' || b.k === 'bool') cx.emit({ op: 'mov', dst: result, src: b.reg });
  cx.jump(join);
  cx.setBlock(join);
  if (a.k === 'bad' || b.k === 'bad') return { k: 'bad' };
  if (a.k === 'int' && b.k === 'int') {
    const range: Range =
      a.range.wrapped || b.range.wrapped
        ? { ...a.range, wrapped: true }
        : exact(a.range.big, a.range.lo < b.range.lo ? a.range.lo : b.range.lo, a.range.hi > b.range.hi ? a.range.hi : b.range.hi);
    return { k: 'int', reg: result, range };
  }
  if (a.k === 'bool' && b.k === 'bool') return { k: 'bool', reg: result };
  return cx.report(diag.unsupportedSyntax(node));
}
