// Blocks, expression statements, if/else and return.

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Lowering } from '../context.ts';
import { fits } from '../arith.ts';
import { typeRange } from '../types.ts';

export function block(cx: Lowering, node: ts.Block): void {
  for (const s of node.statements) cx.stmt(s);
}

export function expressionStatement(cx: Lowering, node: ts.ExpressionStatement): void {
  cx.expr(node.expression);
}

export function emptyStatement(): void {}

export function ifStatement(cx: Lowering, node: ts.IfStatement): void {
  const then = cx.newBlock();
  const join = cx.newBlock();
  const otherwise = node.elseStatement ? cx.newBlock() : join;
  cx.cond(node.expression, then, otherwise);
  cx.setBlock(then);
  cx.stmt(node.thenStatement);
  if (cx.open) cx.jump(join);
  if (node.elseStatement) {
    cx.setBlock(otherwise);
    cx.stmt(node.elseStatement);
    if (cx.open) cx.jump(join);
  }
  cx.setBlock(join);
}

export function returnStatement(cx: Lowering, node: ts.ReturnStatement): void {
  const frame = cx.inlineStack[cx.inlineStack.length - 1];
  const type = frame ? frame.returnType : cx.returnType;
  if (!node.expression) {
    if (type !== 'void') cx.report(diag.badArgument(node, 'a return value is expected'));
    if (frame) cx.jump(frame.exit);
    else {
      const r = cx.constant(0n, false);
      if (r.k === 'int') cx.terminate({ op: 'ret', value: r.reg });
    }
    return;
  }
  const v = cx.expr(node.expression);
  if (v.k === 'bad') {
    if (frame) cx.jump(frame.exit);
    return;
  }
  if (type === 'void') return void cx.report(diag.badArgument(node, 'this function returns nothing'));
  if (type === 'bool') {
    if (v.k !== 'bool') return void cx.report(diag.badArgument(node.expression, 'a boolean is expected'));
  } else {
    if (v.k !== 'int') return void cx.report(diag.badArgument(node.expression, 'an integer is expected'));
    const range = !frame && cx.returnRange ? cx.returnRange : typeRange(type);
    if (!fits(v, range)) return void cx.report(diag.doesNotFit(node.expression, !frame && cx.returnRange ? `${type.name} (a bpf_loop callback returns 0 to continue, 1 to stop)` : type.name, v.range.lo, v.range.hi));
  }
  if (frame) {
    cx.emit({ op: 'mov', dst: frame.result, src: v.reg });
    cx.jump(frame.exit);
  } else cx.terminate({ op: 'ret', value: v.reg });
}
