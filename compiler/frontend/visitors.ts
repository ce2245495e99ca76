// The visitor tables, keyed by ts.SyntaxKind: one entry per supported syntax form, implemented
// in one file per syntax family. Anything not listed is reported by Lowering as unsupported.

import ts from 'typescript';
import type { ExprVisitor, StmtVisitor, VisitorTables } from './context.ts';
import { condition } from './conditions.ts';
import { elementAccess, propertyAccess } from './expressions/access.ts';
import { binaryExpression } from './expressions/binary.ts';
import { callExpression } from './expressions/call.ts';
import { conditionalExpression } from './expressions/conditional.ts';
import * as primary from './expressions/primary.ts';
import { postfixUnary, prefixUnary } from './expressions/unary.ts';
import * as control from './statements/control.ts';
import * as loops from './statements/loops.ts';
import { switchStatement } from './statements/switch.ts';
import { variableStatement } from './statements/variable.ts';

const K = ts.SyntaxKind;

const expressions = new Map<ts.SyntaxKind, ExprVisitor>([
  [K.NumericLiteral, primary.numericLiteral],
  [K.BigIntLiteral, primary.bigintLiteral],
  [K.TrueKeyword, primary.trueLiteral],
  [K.FalseKeyword, primary.falseLiteral],
  [K.NullKeyword, primary.nullLiteral],
  [K.Identifier, primary.identifier],
  [K.ParenthesizedExpression, primary.parenthesized],
  [K.NonNullExpression, primary.nonNull],
  [K.AsExpression, primary.typeAssertion],
  [K.SatisfiesExpression, primary.typeAssertion],
  [K.BinaryExpression, binaryExpression],
  [K.PrefixUnaryExpression, prefixUnary],
  [K.PostfixUnaryExpression, postfixUnary],
  [K.ConditionalExpression, conditionalExpression],
  [K.CallExpression, callExpression],
  [K.PropertyAccessExpression, propertyAccess],
  [K.ElementAccessExpression, elementAccess],
  // Values BPF has no representation for (literals where a key/value is expected are handled by
  // the map and helper calls before they get here).
  [K.StringLiteral, primary.noValue],
  [K.NoSubstitutionTemplateLiteral, primary.noValue],
  [K.TemplateExpression, primary.noValue],
  [K.ObjectLiteralExpression, primary.noValue],
  [K.ArrayLiteralExpression, primary.noValue],
]);

const statements = new Map<ts.SyntaxKind, StmtVisitor>([
  [K.Block, control.block],
  [K.ExpressionStatement, control.expressionStatement],
  [K.EmptyStatement, control.emptyStatement],
  [K.IfStatement, control.ifStatement],
  [K.ReturnStatement, control.returnStatement],
  [K.VariableStatement, variableStatement],
  [K.ForStatement, loops.forStatement],
  [K.WhileStatement, loops.whileStatement],
  [K.DoStatement, loops.doStatement],
  [K.BreakStatement, loops.breakStatement],
  [K.ContinueStatement, loops.continueStatement],
  [K.ForInStatement, loops.unsupportedLoop],
  [K.ForOfStatement, loops.forOfStatement],
  [K.SwitchStatement, switchStatement],
  [K.LabeledStatement, loops.labelled],
]);

export const visitors: VisitorTables = { expressions, statements, condition };
