// Every diagnostic the compiler reports is built here, by one factory per code. Codes are stable:
// tests refer to them and users search for them. A diagnostic never stops compilation; the
// visitor that reports it emits a placeholder, so one run reports every error in a file.
//
//   file.ts(line,col): error EBPF1234: message. Hint: how to fix it.

import ts from 'typescript';

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  code: number;
  severity: Severity;
  message: string;
  hint?: string;
  file: string;
  line: number; // 1-based
  column: number; // 1-based
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}(${d.line},${d.column}): ${d.severity} EBPF${d.code}: ${d.message}${d.hint ? ` Hint: ${d.hint}` : ''}`;
}

function at(node: ts.Node, code: number, message: string, hint?: string, severity: Severity = 'error'): Diagnostic {
  const sf = node.getSourceFile();
  const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  return { code, severity, message, hint, file: sf.fileName, line: line + 1, column: character + 1 };
}

/** A source position without a node: an IR instruction's location (analyses after lowering). */
export type Loc = { file: string; line: number; column: number };
/** A diagnostic at a node or at an IR instruction's location. */
function atLoc(where: ts.Node | Loc | undefined, code: number, message: string, hint?: string): Diagnostic {
  if (where && typeof (where as ts.Node).getSourceFile === 'function') return at(where as ts.Node, code, message, hint);
  const loc = where as Loc | undefined;
  return { code, severity: 'error', message, hint, file: loc?.file ?? '', line: loc?.line ?? 0, column: loc?.column ?? 0 };
}

const kindName = (node: ts.Node): string => ts.SyntaxKind[node.kind] ?? String(node.kind);

/** The factory: one function per code. */
export const diag = {
  // 10xx: syntax outside the subset
  unsupportedSyntax: (node: ts.Node) =>
    at(node, 1001, `'${kindName(node)}' is not supported in BPF programs.`, 'Rewrite it with the constructs listed in compiler/dsl/README.md.'),
  unsupportedStatement: (node: ts.Node) =>
    at(node, 1002, `The statement '${kindName(node)}' is not supported in BPF programs.`, 'Use if/else, switch, for/while loops, break/continue and return.'),
  unknownIdentifier: (node: ts.Node, name: string) =>
    at(node, 1003, `'${name}' cannot be used here: it is not a local variable, a parameter, a map, a struct or a module-level constant.`, 'Declare it in the program or at module scope.'),
  unsupportedOperator: (node: ts.Node, op: string) =>
    at(node, 1004, `The operator '${op}' is not supported on these operands.`, 'See the operator table in compiler/dsl/README.md.'),
  looseEquality: (node: ts.Node, op: string) =>
    at(node, 1005, `'${op}' converts its operands in JavaScript.`, `Use '${op}='.`),
  unsupportedCall: (node: ts.Node, callee: string) =>
    at(node, 1006, `'${callee}' cannot be called from a BPF program.`, 'Call a DSL helper, a map method, Math.imul/min/max, BigInt.asUintN/asIntN, Number(), BigInt() or a function of this module.'),
  unsupportedLoop: (node: ts.Node) =>
    at(node, 1007, `This loop form is not supported.`, 'Use for (let i = 0; i < N; i++), while or do/while; for-of iterates over fixed-size arrays only.'),
  labelledStatement: (node: ts.Node) => at(node, 1008, `Labelled statements are not supported.`, 'Restructure the loop, e.g. with a flag variable.'),

  // 11xx: types
  unsupportedType: (node: ts.Node, what: string) =>
    at(node, 1101, `The type '${what}' has no BPF representation.`, 'Use u8…u64, i8…i64, be16/be32, boolean, or a struct/array descriptor.'),
  missingType: (node: ts.Node, name: string) =>
    at(node, 1102, `The type of '${name}' cannot be inferred.`, `Annotate it, e.g. 'let ${name}: u32 = …'.`),
  floatingPoint: (node: ts.Node) =>
    at(node, 1103, `This number literal is not an integer; BPF has no floating point.`, 'Use an integer literal.'),
  notAStruct: (node: ts.Node) =>
    at(node, 1104, `This is not a struct or array descriptor.`, "Pass a descriptor declared with struct({...}) or array(T, n) at module scope."),
  badStruct: (node: ts.Node, why: string) => at(node, 1105, `Invalid struct descriptor: ${why}.`, 'Fields are u8…u64, i8…i64, be16/be32, array(T, n) or another struct.'),
  stringOrObject: (node: ts.Node) =>
    at(node, 1106, `Strings, objects and arrays cannot be values in BPF programs.`, 'Use integers, or a struct descriptor for structured data.'),

  // 12xx: integer semantics (where JavaScript and BPF could disagree)
  unsafeNumber: (node: ts.Node, lo: bigint, hi: bigint) =>
    at(node, 1201, `This number expression may leave the exact range of a JavaScript number (its range is ${lo}..${hi}).`, "Wrap it to 32 bits with '>>> 0' or '| 0', use Math.imul for products, or compute in bigint (u64)."),
  doesNotFit: (node: ts.Node, type: string, lo: bigint, hi: bigint) =>
    at(node, 1202, `A value in ${lo}..${hi} may not fit in ${type}.`, `Wrap it explicitly: '>>> 0' (u32), '| 0' (i32), '& 0xff' (u8), BigInt.asUintN(64, …) (u64).`),
  wrappingBigint: (node: ts.Node) =>
    at(node, 1203, `This bigint is only known modulo 2^64 here, and this operation needs its exact value.`, 'Wrap the operand in BigInt.asUintN(64, …) or BigInt.asIntN(64, …).'),
  inexactDivision: (node: ts.Node) =>
    at(node, 1204, `'/' on numbers gives a fraction in JavaScript.`, "Truncate it: '(a / b) >>> 0' for u32 operands, '(a / b) | 0' for i32, or use bigint."),
  divisorMayBeZero: (node: ts.Node) =>
    at(node, 1205, `The divisor may be zero (JavaScript gives NaN or throws, BPF gives 0 or the dividend).`, "Check it first: 'if (b !== 0) …', or divide by a non-zero constant."),
  shiftRange: (node: ts.Node) =>
    at(node, 1206, `A bigint shift count must be in 0..63.`, "Mask it: 'n & 63n'."),
  mixedSignedness: (node: ts.Node) =>
    at(node, 1207, `One operand may be negative and the other may exceed 2^63: no 64-bit comparison gives the JavaScript result.`, 'Convert one side with BigInt.asIntN(64, …) or BigInt.asUintN(64, …).'),
  lossyNumber: (node: ts.Node) =>
    at(node, 1208, `Number() of this bigint may lose precision (its range exceeds 2^53).`, "Mask it first, e.g. 'Number(x & 0xffffffffn)'."),
  indexOutOfBounds: (node: ts.Node, lo: bigint, hi: bigint, length: number) =>
    at(node, 1209, `The index may be out of bounds: it is in ${lo}..${hi}, the array has ${length} elements.`, `Mask it ('i & ${length - 1}' for a power-of-two length) or check 'if (i < ${length})' first.`),
  notBoolean: (node: ts.Node) =>
    at(node, 1210, `'&&', '||' and '!' take booleans here; on integers JavaScript returns an operand, not a boolean.`, "Compare explicitly: 'x !== 0'."),

  // 13xx: module-level declarations
  badMap: (node: ts.Node, why: string) => at(node, 1301, `Invalid map declaration: ${why}.`, 'Declare maps at module scope: const m = hashMap({ key, value, maxEntries }).'),
  badProgram: (node: ts.Node, why: string) =>
    at(node, 1302, `Invalid program: ${why}.`, 'A program is an exported function taking a TcContext or XdpContext and returning a number.'),
  badGlobal: (node: ts.Node, why: string) => at(node, 1303, `Unsupported module-level declaration: ${why}.`, 'Module scope holds imports, struct descriptors, maps, constants and functions.'),
  nameClash: (node: ts.Node, name: string, otherFile: string) =>
    at(node, 1305, `'${name}' is also the name of a map or global in ${otherFile}; maps and global variables share one namespace in the object.`, 'Rename one of them.'),
  noPrograms: (node: ts.Node) => at(node, 1304, `This file exports no BPF program.`, 'Export a function whose first parameter is a TcContext or XdpContext.', 'warning'),

  // 14xx: code generation limits and checks
  stackLimit: (node: ts.Node, bytes: number) =>
    at(node, 1401, `The program needs ${bytes} bytes of stack; BPF allows 512.`, 'Move large buffers into a per-CPU array map.'),
  recursion: (node: ts.Node, name: string) => at(node, 1402, `'${name}' is recursive; BPF has no recursion.`, 'Rewrite it as a loop.'),
  assignToConst: (node: ts.Node, name: string) => at(node, 1403, `'${name}' cannot be assigned.`, 'Declare it with let.'),
  unreachableEnd: (node: ts.Node) =>
    at(node, 1404, `The function can reach its end without returning a value.`, 'Add a return statement at the end.'),
  breakOutsideLoop: (node: ts.Node) => at(node, 1405, `break/continue outside a loop or switch.`, 'Remove it.'),
  nullableUse: (node: ts.Node) =>
    at(node, 1406, `This value may be null here.`, "Check it first: 'if (v === null) return …'."),
  badArgument: (node: ts.Node, why: string) => at(node, 1407, `Invalid argument: ${why}.`, 'Check the DSL signature of the call.'),
  notAssignable: (node: ts.Node) => at(node, 1408, `This expression cannot be assigned to.`, 'Assign to a local variable, a struct field or an array element.'),
  stalePacketView: (node: ts.Node) =>
    at(node, 1409, `This packet view was taken before a helper that may move or resize the packet, so it is no longer valid.`, 'Take the view again with skb.header(...) after the call.'),
  readOnlyGlobal: (node: ts.Node) => at(node, 1410, `This is read-only data (rodata) and cannot be written.`, 'Declare it with global(T, init) to make it writable.'),
  kptrStore: (node: ts.Node) =>
    at(node, 1412, `A kptr field cannot be written with '=' (the verifier refuses plain stores of referenced pointers).`, "Use kptrXchg(view, 'field', ptrOrNull) and release the old pointer it returns."),
  sleepableOnly: (node: ts.Node, what: string) =>
    at(node, 1413, `'${what}' may sleep: only syscall programs (sleepable) may call it.`, 'Create crypto contexts in a syscall program and keep them in a map (kptr field).'),
  variableContextIndex: (node: ts.Node) =>
    at(node, 1414, `The syscall buffer (ctx.args) can only be indexed with constants: the verifier refuses a modified context pointer.`, 'Copy the field first (e.g. `dst.key = args.key`, or local(T, ctx.args(T))) and index the copy.'),
  callWhileLocked: (loc: ts.Node | Loc | undefined, what: string) =>
    atLoc(loc, 1415, `'${what}' is called while a spin lock is held: the verifier allows no helper, kfunc or global function call (nor a call of a function that makes one) before spinUnlock.`, 'Move the call out of the locked region: read what you need under the lock into locals, unlock, then call.'),
  lockHeldAtExit: (loc: ts.Node | Loc | undefined, why: string) =>
    atLoc(loc, 1416, `A spin lock may still be held ${why}.`, 'Call spinUnlock on every path before returning (the verifier refuses an exit with the lock held), and take and release it on the same paths.'),
  badLockUse: (loc: ts.Node | Loc | undefined, why: string) =>
    atLoc(loc, 1417, `Invalid spin lock use: ${why}.`, "Take one lock at a time with spinLock(view, 'field') and release it with spinUnlock(view, 'field'); a bpfSpinLock field is never read, written or copied."),
  wrongContext: (node: ts.Node, what: string, ctx: string) => at(node, 1411, `'${what}' cannot be called from a ${ctx} program.`, 'See the helper table in compiler/frontend/helpers.ts for the program types of each helper.'),

  // 15xx: TypeScript's own errors, passed through
  typescript: (d: ts.Diagnostic): Diagnostic => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file && d.start !== undefined) {
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      return { code: 1501, severity: 'error', message: `TS${d.code}: ${message}`, file: d.file.fileName, line: line + 1, column: character + 1 };
    }
    return { code: 1501, severity: 'error', message: `TS${d.code}: ${message}`, file: '', line: 0, column: 0 };
  },
};

export type DiagnosticCode = keyof typeof diag;
