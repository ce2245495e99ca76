// Blocks, expression statements, if/else and return.

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Lowering } from '../context.ts';
import { fits } from '../arith.ts';
import { type Range, resolveSymbol, skipParens, typeRange } from '../types.ts';
import { assigns } from './loops.ts';

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
  const guards = guardsOf(cx, node.expression);
  cx.cond(node.expression, then, otherwise);
  cx.setBlock(then);
  const undoThen = narrow(cx, guards.then, node.thenStatement);
  cx.stmt(node.thenStatement);
  undoThen();
  const thenFalls = cx.open;
  if (cx.open) cx.jump(join);
  if (node.elseStatement) {
    cx.setBlock(otherwise);
    const undoElse = narrow(cx, guards.else, node.elseStatement);
    cx.stmt(node.elseStatement);
    undoElse();
    if (cx.open) cx.jump(join);
  }
  cx.setBlock(join);
  // `if (i >= N) return …;` (no else): below it i < N. Kept for consts only: a `let` may be
  // assigned later in source order but earlier in a loop's next iteration.
  if (!thenFalls && !node.elseStatement) narrow(cx, guards.else.filter((g) => cx.scope.get(g.sym)?.kind === 'value'), undefined);
}

interface Guard {
  sym: ts.Symbol;
  range: Range;
}

/** Ranges a condition proves for integer variables compared with constants (`i < N`,
 *  `arr.length > i`, `a && b` for the then-branch): in the then- and in the else-branch. */
function guardsOf(cx: Lowering, e: ts.Expression): { then: Guard[]; else: Guard[] } {
  e = skipParens(e);
  if (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.ExclamationToken) {
    const g = guardsOf(cx, e.operand);
    return { then: g.else, else: g.then };
  }
  if (!ts.isBinaryExpression(e)) return { then: [], else: [] };
  const op = e.operatorToken.kind;
  if (op === ts.SyntaxKind.AmpersandAmpersandToken) return { then: [...guardsOf(cx, e.left).then, ...guardsOf(cx, e.right).then], else: [] };
  if (op === ts.SyntaxKind.BarBarToken) return { then: [], else: [...guardsOf(cx, e.left).else, ...guardsOf(cx, e.right).else] };
  const K = ts.SyntaxKind;
  // Normalise to `variable OP constant`.
  const flip: Partial<Record<ts.SyntaxKind, ts.SyntaxKind>> = { [K.LessThanToken]: K.GreaterThanToken, [K.LessThanEqualsToken]: K.GreaterThanEqualsToken, [K.GreaterThanToken]: K.LessThanToken, [K.GreaterThanEqualsToken]: K.LessThanEqualsToken };
  if (!(op in flip)) return { then: [], else: [] };
  let variable = skipParens(e.left);
  let other = skipParens(e.right);
  let cmp: ts.SyntaxKind = op;
  if (!ts.isIdentifier(variable)) {
    [variable, other] = [other, variable];
    cmp = flip[op]!;
  }
  if (!ts.isIdentifier(variable)) return { then: [], else: [] };
  const sym = resolveSymbol(cx.checker, variable);
  const b = sym && cx.scope.get(sym);
  const current = b?.kind === 'int' ? (b.readRange ?? typeRange(b.type)) : b?.kind === 'value' && b.val.k === 'int' ? b.val.range : undefined;
  const c = constantOf(cx, other);
  if (!sym || !current || current.wrapped || c === undefined) return { then: [], else: [] };
  // then: [lo, hi] of `v cmp c`; else: of its negation.
  const lt = (hi: bigint): Range => ({ ...current, hi: current.hi < hi ? current.hi : hi });
  const ge = (lo: bigint): Range => ({ ...current, lo: current.lo > lo ? current.lo : lo });
  const ranges: Record<number, [Range, Range]> = {
    [K.LessThanToken]: [lt(c - 1n), ge(c)],
    [K.LessThanEqualsToken]: [lt(c), ge(c + 1n)],
    [K.GreaterThanToken]: [ge(c + 1n), lt(c)],
    [K.GreaterThanEqualsToken]: [ge(c), lt(c - 1n)],
  };
  const [t, f] = ranges[cmp]!;
  const ok = (r: Range): Guard[] => (r.lo <= r.hi ? [{ sym, range: r }] : []);
  return { then: ok(t), else: ok(f) };
}

/** A constant operand: a constant expression, or `view.length` of a fixed-size array (no code). */
function constantOf(cx: Lowering, e: ts.Expression): bigint | undefined {
  const v = cx.module.constantValue(e);
  if (v !== undefined) return v;
  if (ts.isPropertyAccessExpression(e) && e.name.text === 'length') {
    const t = cx.checker.getTypeAtLocation(e.expression);
    // An ArrayView's static type does not carry its length: look at the descriptor behind the
    // expression only when evaluating it has no effects (names and field accesses).
    let x: ts.Expression = e.expression;
    while (ts.isPropertyAccessExpression(x) || ts.isNonNullExpression(x) || ts.isParenthesizedExpression(x)) x = x.expression;
    if (!ts.isIdentifier(x) || !t) return undefined;
    const v2 = cx.expr(e);
    return v2.k === 'int' ? v2.c : undefined;
  }
  return undefined;
}

/** Bind the narrowed ranges (where `body`, if given, does not assign the variable); the undo. */
function narrow(cx: Lowering, guards: Guard[], body: ts.Node | undefined): () => void {
  const undo: (() => void)[] = [];
  for (const g of guards) {
    const b = cx.scope.get(g.sym);
    if (!b) continue;
    // Intersect with what is known (several guards on one variable: `i >= 1 && i < 6`).
    const meet = (r: Range): Range => ({ ...r, lo: r.lo > g.range.lo ? r.lo : g.range.lo, hi: r.hi < g.range.hi ? r.hi : g.range.hi });
    if (b.kind === 'int') {
      if (!body || assigns(cx, body, g.sym)) continue;
      const saved = b.readRange;
      const r = meet(saved ?? typeRange(b.type));
      if (r.lo > r.hi) continue;
      b.readRange = r;
      undo.push(() => void (b.readRange = saved));
    } else if (b.kind === 'value' && b.val.k === 'int') {
      const saved = b.val;
      const r = meet(saved.range);
      if (r.lo > r.hi) continue;
      b.val = { ...saved, range: r };
      undo.push(() => void (b.val = saved));
    }
  }
  return () => undo.reverse().forEach((u) => u());
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
