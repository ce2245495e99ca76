// let/const declarations. A const binds the value itself (with its exact range); a let gets a
// register that keeps the declared type's range for its whole life (assignments are checked).

import ts from 'typescript';
import { diag } from '../../diagnostics.ts';
import type { Lowering } from '../context.ts';
import { fits } from '../arith.ts';
import { type IntType, annotationType, typeRange, within, I32, U32, DSL_INTS } from '../types.ts';

export function variableStatement(cx: Lowering, node: ts.VariableStatement): void {
  variableDeclarationList(cx, node.declarationList);
}

export function variableDeclarationList(cx: Lowering, list: ts.VariableDeclarationList): void {
  const isConst = (list.flags & ts.NodeFlags.Const) !== 0;
  for (const d of list.declarations) declaration(cx, d, isConst);
}

function declaration(cx: Lowering, d: ts.VariableDeclaration, isConst: boolean): void {
  if (!ts.isIdentifier(d.name)) return void cx.report(diag.unsupportedSyntax(d.name));
  const name = d.name.text;
  const sym = cx.checker.getSymbolAtLocation(d.name);
  if (!sym) return;
  if (!d.initializer) return void cx.report(diag.missingType(d, name));
  const annotated = d.type && annotationType(cx.checker, d.type);
  if (d.type && !annotated && !ts.isTypeReferenceNode(d.type) && !ts.isUnionTypeNode(d.type)) return void cx.report(diag.unsupportedType(d.type, d.type.getText()));
  const v = cx.expr(d.initializer);
  if (v.k === 'bad') {
    // Keep later uses silent: bind a placeholder.
    cx.scope.set(sym, { kind: 'value', val: v });
    return;
  }
  if (v.k === 'int') {
    let type: IntType | undefined = annotated && annotated !== 'bool' ? annotated : undefined;
    if (isConst && !type) {
      cx.scope.set(sym, { kind: 'value', val: v });
      return;
    }
    if (!type) {
      if (v.range.big) type = v.range.lo >= 0n ? DSL_INTS.u64 : DSL_INTS.i64;
      else if (within(v.range, I32)) type = DSL_INTS.i32;
      else if (within(v.range, U32)) type = DSL_INTS.u32;
      else return void cx.report(diag.missingType(d, name));
    }
    if (!fits(v, typeRange(type!))) return void cx.report(diag.doesNotFit(d.initializer, type!.name, v.range.lo, v.range.hi));
    if (isConst) {
      cx.scope.set(sym, { kind: 'value', val: { ...v, range: v.range } });
      return;
    }
    const reg = cx.newReg();
    cx.emit({ op: 'mov', dst: reg, src: v.reg });
    cx.scope.set(sym, { kind: 'int', reg, type: type!, name });
    return;
  }
  if (v.k === 'bool') {
    if (isConst) return void cx.scope.set(sym, { kind: 'value', val: v });
    const reg = cx.newReg();
    cx.emit({ op: 'mov', dst: reg, src: v.reg });
    cx.scope.set(sym, { kind: 'bool', reg, name });
    return;
  }
  if (v.k === 'ptr') {
    if (isConst) return void cx.scope.set(sym, { kind: 'value', val: v });
    const reg = cx.newReg();
    cx.emit({ op: 'mov', dst: reg, src: cx.address(v.base, v.off) });
    cx.scope.set(sym, { kind: 'ptr', reg, to: v.to, space: v.space, cell: v.cell, name, generation: v.generation });
    return;
  }
  if (v.k === 'map' || v.k === 'desc' || v.k === 'ctx' || v.k === 'kptr' || v.k === 'dynptr') {
    if (!isConst) return void cx.report(diag.assignToConst(d, name));
    cx.scope.set(sym, { kind: 'value', val: v });
    return;
  }
  cx.report(diag.missingType(d, name));
}
