// switch: a chain of comparisons against the discriminant (evaluated once), case bodies laid out
// in source order so fall-through is a jump to the next body.

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Block } from '../../ir/ir.ts';
import type { Lowering } from '../context.ts';

export function switchStatement(cx: Lowering, node: ts.SwitchStatement): void {
  const d = cx.expr(node.expression);
  const clauses = node.caseBlock.clauses;
  const bodies = clauses.map(() => cx.newBlock());
  const exit = cx.newBlock();
  if (d.k !== 'int') {
    if (d.k !== 'bad') cx.report(diag.unsupportedSyntax(node.expression));
    cx.jump(exit);
    cx.setBlock(exit);
    return;
  }
  let defaultBody: Block = exit;
  clauses.forEach((c, i) => {
    if (ts.isDefaultClause(c)) {
      defaultBody = bodies[i]!;
      return;
    }
    const v = cx.expr(c.expression);
    if (v.k !== 'int') {
      if (v.k !== 'bad') cx.report(diag.unsupportedSyntax(c.expression));
      return;
    }
    const next = cx.newBlock();
    cx.branch('eq', d.reg, cx.operand(v), bodies[i]!, next);
    cx.setBlock(next);
  });
  cx.jump(defaultBody);
  cx.loops.push({ breakTo: exit });
  clauses.forEach((c, i) => {
    cx.setBlock(bodies[i]!);
    for (const s of c.statements) cx.stmt(s);
    if (cx.open) cx.jump(bodies[i + 1] ?? exit);
  });
  cx.loops.pop();
  cx.setBlock(exit);
}
