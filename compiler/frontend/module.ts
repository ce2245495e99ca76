// Module-level lowering: collect the declarations of one source file (struct descriptors, maps,
// constants, functions, programs) and lower each program to an IR function.

import ts from 'typescript';
import * as dsl from '../dsl/index.ts';
import { diag, type Diagnostic } from '../diagnostics.ts';
import type { IrFunction } from '../ir/ir.ts';
import { bpf_attach_type, bpf_map_type, bpf_prog_type } from '../../runtime/sys/constants.ts';
import { Lowering } from './context.ts';
import { DSL_FILE, type ContextKind, type DType, type GlobalInfo, type IntType, type MapInfo, type Range, type Space, Descriptors, annotationType, dslName, resolveSymbol, skipParens, typeRange } from './types.ts';
import { visitors } from './visitors.ts';

export interface ProgramInfo {
  name: string;
  section: string;
  progType: number;
  attachType: number;
  context: ContextKind;
  decl: ts.FunctionDeclaration;
}

export interface LoweredProgram {
  info: ProgramInfo;
  ir: IrFunction;
}

/** A module function compiled as a BPF-to-BPF function in .text (`@noinline`, too big to inline,
 *  or a bpf_loop callback): lowered once per program type and argument shape. */
export interface Subprogram {
  name: string;
  key: string;
  fn: ts.FunctionDeclaration;
  /** The caller-side shape of each parameter (ints: the declared type; pointers: what they point to). */
  params: ParamShape[];
  returnType: IntType | 'bool' | 'void';
  ir?: IrFunction;
}
export type ParamShape =
  | { kind: 'int'; type: IntType; range?: Range }
  | { kind: 'bool' }
  | { kind: 'ptr'; to: DType; space: Space; cell: boolean }
  | { kind: 'ctx'; ctx: ContextKind };

/** Functions bigger than this (AST nodes in the body) are called, not inlined, when every
 *  parameter is an integer, a view or the context. */
export const INLINE_LIMIT = 600;

const MAP_KINDS: Record<string, { kind: MapInfo['kind']; type: number }> = {
  hashMap: { kind: 'hash', type: bpf_map_type.BPF_MAP_TYPE_HASH },
  perCpuHashMap: { kind: 'percpu_hash', type: bpf_map_type.BPF_MAP_TYPE_PERCPU_HASH },
  arrayMap: { kind: 'array', type: bpf_map_type.BPF_MAP_TYPE_ARRAY },
  perCpuArrayMap: { kind: 'percpu_array', type: bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY },
  lpmTrieMap: { kind: 'lpm_trie', type: bpf_map_type.BPF_MAP_TYPE_LPM_TRIE },
  ringbufMap: { kind: 'ringbuf', type: bpf_map_type.BPF_MAP_TYPE_RINGBUF },
};
const BPF_F_NO_PREALLOC = 1;
export const mapTypeNumber = (kind: MapInfo['kind']): number => Object.values(MAP_KINDS).find((m) => m.kind === kind)!.type;

const CONTEXTS: Record<string, { context: ContextKind; section: string; progType: number; attachType: number }> = {
  TcContext: { context: 'tc', section: 'tc', progType: bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS, attachType: 0 },
  XdpContext: { context: 'xdp', section: 'xdp', progType: bpf_prog_type.BPF_PROG_TYPE_XDP, attachType: bpf_attach_type.BPF_XDP },
  SyscallContext: { context: 'syscall', section: 'syscall', progType: bpf_prog_type.BPF_PROG_TYPE_SYSCALL, attachType: 0 },
};

export class ModuleInfo {
  readonly diagnostics: Diagnostic[] = [];
  readonly maps = new Map<ts.Symbol, MapInfo>();
  readonly functions = new Map<ts.Symbol, ts.FunctionDeclaration>();
  readonly programs: ProgramInfo[] = [];
  readonly descriptors: Descriptors;
  readonly mapOrder: MapInfo[] = [];
  readonly globals = new Map<ts.Symbol, GlobalInfo>();
  /** .text functions, in the order they were first called. */
  readonly subprograms: Subprogram[] = [];
  private readonly lowering = new Set<ts.FunctionDeclaration>();
  /** The files collected (this one first, then what it imports), and whether each was imported. */
  readonly files: ts.SourceFile[] = [];
  private readonly fileOf = new Map<ts.SourceFile, boolean>();
  /** Programs of imported files that the compiled file re-exports by name
   *  (`export { ingress } from './engine.ts'`): programs of this object, under the exported name. */
  private readonly reexported = new Map<ts.FunctionDeclaration, ts.ExportSpecifier[]>();

  constructor(
    readonly checker: ts.TypeChecker,
    readonly sourceFile: ts.SourceFile,
  ) {
    this.descriptors = new Descriptors(checker, (node, why) => this.diagnostics.push(diag.badStruct(node, why)), (e) => this.constantValue(e));
  }

  descriptor(sym: ts.Symbol): DType | undefined {
    const decl = sym.valueDeclaration;
    if (!decl || !ts.isVariableDeclaration(decl) || !decl.initializer || !ts.isIdentifier(decl.name)) return undefined;
    const init = skipParens(decl.initializer);
    if (!ts.isCallExpression(init)) return undefined;
    const callee = dslName(resolveSymbol(this.checker, init.expression));
    if (callee !== 'struct' && callee !== 'array') return undefined;
    return this.descriptors.evaluate(decl.name);
  }

  /** A module-level `const NAME = <constant expression>`. */
  constantOf(sym: ts.Symbol): { value: bigint; big: boolean } | undefined {
    const decl = sym.valueDeclaration;
    if (!decl || !ts.isVariableDeclaration(decl) || !decl.initializer) return undefined;
    if (!(ts.getCombinedNodeFlags(decl) & ts.NodeFlags.Const)) return undefined;
    if (!ts.isSourceFile(decl.parent.parent.parent)) return undefined;
    const value = this.constantValue(decl.initializer);
    if (value === undefined) return undefined;
    const t = this.checker.getTypeAtLocation(decl.initializer);
    return { value, big: (t.flags & (ts.TypeFlags.BigInt | ts.TypeFlags.BigIntLiteral)) !== 0 };
  }

  /** Evaluate a constant expression (literals, module constants, DSL constants, + - * << | & ~). */
  constantValue(e: ts.Expression, depth = 0): bigint | undefined {
    if (depth > 32) return undefined;
    e = skipParens(e);
    if (ts.isNumericLiteral(e)) return /^[0-9xXa-fA-FoObB_]+$/.test(e.text) ? BigInt(e.text.replace(/_/g, '')) : undefined;
    if (ts.isBigIntLiteral(e)) return BigInt(e.text.replace(/_/g, '').slice(0, -1));
    if (ts.isPrefixUnaryExpression(e)) {
      const v = this.constantValue(e.operand, depth + 1);
      if (v === undefined) return undefined;
      if (e.operator === ts.SyntaxKind.MinusToken) return -v;
      if (e.operator === ts.SyntaxKind.PlusToken) return v;
      return undefined;
    }
    if (ts.isBinaryExpression(e)) {
      const a = this.constantValue(e.left, depth + 1);
      const b = this.constantValue(e.right, depth + 1);
      if (a === undefined || b === undefined) return undefined;
      switch (e.operatorToken.kind) {
        case ts.SyntaxKind.PlusToken:
          return a + b;
        case ts.SyntaxKind.MinusToken:
          return a - b;
        case ts.SyntaxKind.AsteriskToken:
          return a * b;
        case ts.SyntaxKind.LessThanLessThanToken:
          return b >= 0n && b < 32n && a >= 0n && a << b < 1n << 31n ? a << b : undefined;
        case ts.SyntaxKind.SlashToken: // exact quotients only (a number division may not be an integer)
          return b !== 0n && a % b === 0n ? a / b : undefined;
        case ts.SyntaxKind.PercentToken: // JavaScript's % truncates like bigint's
          return b !== 0n ? a % b : undefined;
      }
      // Bitwise operators on non-negative 31-bit values: the same in number and bigint arithmetic.
      const small = (v: bigint): boolean => v >= 0n && v < 1n << 31n;
      if (!small(a) || !small(b)) return undefined;
      switch (e.operatorToken.kind) {
        case ts.SyntaxKind.AmpersandToken:
          return a & b;
        case ts.SyntaxKind.BarToken:
          return a | b;
        case ts.SyntaxKind.CaretToken:
          return a ^ b;
        case ts.SyntaxKind.GreaterThanGreaterThanToken:
          return b < 32n ? a >> b : undefined;
      }
      return undefined;
    }
    if (ts.isIdentifier(e)) {
      const sym = resolveSymbol(this.checker, e);
      const name = dslName(sym);
      if (name) {
        const v = (dsl as Record<string, unknown>)[name];
        return typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : typeof v === 'bigint' ? v : undefined;
      }
      const decl = sym?.valueDeclaration;
      if (decl && ts.isVariableDeclaration(decl) && decl.initializer && ts.getCombinedNodeFlags(decl) & ts.NodeFlags.Const)
        return this.constantValue(decl.initializer, depth + 1);
    }
    return undefined;
  }

  collect(): void {
    this.collectFile(this.sourceFile, false);
    if (this.programs.length === 0) this.diagnostics.push(diag.noPrograms(this.sourceFile));
    this.dropUnreachableImports();
  }

  /** Collect one file's declarations, then (depth first, once per file) the files it imports or
   *  re-exports from. Imported files give maps, globals, descriptors, constants and functions;
   *  their exported programs are not programs of this object, and statements outside the DSL are
   *  skipped there (they only matter if used, and then the use is the diagnostic). */
  private collectFile(sf: ts.SourceFile, imported: boolean): void {
    this.files.push(sf);
    this.fileOf.set(sf, imported);
    const imports: ts.SourceFile[] = [];
    for (const s of sf.statements) {
      if (ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) {
        if (!imported && ts.isExportDeclaration(s) && !s.isTypeOnly) this.noteReexports(s);
        const target = s.moduleSpecifier && this.importedFile(s.moduleSpecifier);
        if (target && !(ts.isImportDeclaration(s) && s.importClause?.isTypeOnly) && !(ts.isExportDeclaration(s) && s.isTypeOnly)) imports.push(target);
        continue;
      }
      if (ts.isTypeAliasDeclaration(s) || ts.isInterfaceDeclaration(s) || ts.isEmptyStatement(s)) continue;
      if (ts.isFunctionDeclaration(s)) {
        this.collectFunction(s, imported);
        continue;
      }
      if (ts.isVariableStatement(s)) {
        for (const d of s.declarationList.declarations) this.collectVariable(d, s, imported);
        continue;
      }
      if (!imported) this.diagnostics.push(diag.badGlobal(s, ts.SyntaxKind[s.kind]!));
    }
    for (const target of imports) if (!this.fileOf.has(target)) this.collectFile(target, true);
  }

  /** `export { a, b as c } [from '…']` in the compiled file: each name that is a program of an
   *  imported file makes it a program of this object (named as exported). `export *` does not. */
  private noteReexports(s: ts.ExportDeclaration): void {
    if (!s.exportClause || !ts.isNamedExports(s.exportClause)) return;
    for (const spec of s.exportClause.elements) {
      if (spec.isTypeOnly) continue;
      let sym = this.checker.getSymbolAtLocation(spec.name);
      if (sym && sym.flags & ts.SymbolFlags.Alias) sym = this.checker.getAliasedSymbol(sym);
      const decl = sym?.valueDeclaration;
      if (!decl || !ts.isFunctionDeclaration(decl) || decl.getSourceFile() === this.sourceFile) continue;
      this.reexported.set(decl, [...(this.reexported.get(decl) ?? []), spec]);
    }
  }

  /** The DSL source file an import's module specifier names (not the DSL itself, not a .d.ts). */
  private importedFile(spec: ts.Expression): ts.SourceFile | undefined {
    const decl = this.checker.getSymbolAtLocation(spec)?.valueDeclaration;
    if (!decl || !ts.isSourceFile(decl) || decl.isDeclarationFile || DSL_FILE.test(decl.fileName)) return undefined;
    if (/[\\/]node_modules[\\/]/.test(decl.fileName)) return undefined;
    return decl;
  }

  /** Maps and globals of imported files become part of the object only when a program reaches
   *  them (through its body and the functions it calls, across files). */
  private dropUnreachableImports(): void {
    const seen = new Set<ts.Symbol>();
    const walked = new Set<ts.Node>();
    const visit = (n: ts.Node): void => {
      if (ts.isIdentifier(n)) {
        const s = ts.isShorthandPropertyAssignment(n.parent) && n.parent.name === n ? this.checker.getShorthandAssignmentValueSymbol(n.parent) : resolveSymbol(this.checker, n);
        if (s && !seen.has(s)) {
          seen.add(s);
          const fn = this.functions.get(s);
          if (fn && !walked.has(fn)) {
            walked.add(fn);
            visit(fn);
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    for (const p of this.programs) visit(p.decl);
    const importedDecl = (sym: ts.Symbol): boolean => this.fileOf.get(sym.valueDeclaration!.getSourceFile()) === true;
    for (const [sym, m] of [...this.maps]) {
      if (!importedDecl(sym) || seen.has(sym)) continue;
      this.maps.delete(sym);
      this.mapOrder.splice(this.mapOrder.indexOf(m), 1);
    }
    for (const sym of [...this.globals.keys()]) if (importedDecl(sym) && !seen.has(sym)) this.globals.delete(sym);
    // One namespace in the object: maps by name, and global variables by name.
    const where = new Map<string, ts.Symbol>();
    for (const sym of [...this.maps.keys(), ...this.globals.keys()]) {
      const name = (this.maps.get(sym) ?? this.globals.get(sym))!.name;
      const other = where.get(name);
      if (other) this.diagnostics.push(diag.nameClash(sym.valueDeclaration!, name, other.valueDeclaration!.getSourceFile().fileName));
      else where.set(name, sym);
    }
  }

  private collectFunction(f: ts.FunctionDeclaration, imported = false): void {
    const sym = f.name && this.checker.getSymbolAtLocation(f.name);
    if (!sym || !f.name) return void this.diagnostics.push(diag.badGlobal(f, 'a function needs a name'));
    const exported = f.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    const first = f.parameters[0];
    const ctxName = first?.type && ts.isTypeReferenceNode(first.type) ? dslName(resolveSymbol(this.checker, first.type.typeName)) : undefined;
    const ctx = ctxName ? CONTEXTS[ctxName] : undefined;
    // `@inline` / `@noinline` say "a function": an exported one taking the context is a library
    // function for importing files (engine/esp.ts `encrypt(skb, key, rule)`), not a program.
    const library = ts.getJSDocTags(f).some((t) => t.tagName.text === 'inline' || t.tagName.text === 'noinline');
    if (exported && ctx && !library) {
      // A program of an imported file is not a program of this object, unless this file
      // re-exports it by name (then it is one, under each name it is exported as).
      const names = imported ? (this.reexported.get(f) ?? []).map((spec) => spec.name.text) : [f.name.text];
      if (names.length === 0) return;
      if (f.parameters.length !== 1) return void this.diagnostics.push(diag.badProgram(f, 'a program takes exactly one parameter, its context'));
      const tag = ts.getJSDocTags(f).find((t) => t.tagName.text === 'section');
      const section = typeof tag?.comment === 'string' ? tag.comment.trim() : ctx.section;
      for (const name of names) {
        if (this.programs.some((p) => p.name === name)) continue;
        this.programs.push({ name, section, progType: ctx.progType, attachType: ctx.attachType, context: ctx.context, decl: f });
      }
      return;
    }
    this.functions.set(sym, f);
  }

  private collectVariable(d: ts.VariableDeclaration, s: ts.VariableStatement, imported = false): void {
    if (!ts.isIdentifier(d.name)) return void this.diagnostics.push(diag.badGlobal(d, 'destructuring'));
    const isConst = (s.declarationList.flags & ts.NodeFlags.Const) !== 0;
    if (!isConst) return void this.diagnostics.push(diag.badGlobal(d, `'let ${d.name.text}' (module-level state is declared with global(T, init): a 'let' would not be shared with userspace)`));
    const init = d.initializer && skipParens(d.initializer);
    if (!init) return void this.diagnostics.push(diag.badGlobal(d, 'a constant needs a value'));
    const sym = this.checker.getSymbolAtLocation(d.name)!;
    if (ts.isCallExpression(init)) {
      const callee = dslName(resolveSymbol(this.checker, init.expression));
      if (callee && MAP_KINDS[callee]) return this.collectMap(d.name.text, sym, init, MAP_KINDS[callee]!.kind);
      if (callee === 'rodata' || callee === 'global') return this.collectGlobal(d.name.text, sym, init, callee);
      if (callee === 'struct' || callee === 'array') {
        this.descriptors.evaluate(d.name);
        return;
      }
    }
    if (this.constantValue(init) !== undefined || imported) return;
    this.diagnostics.push(diag.badGlobal(d, `'${d.name.text}' is neither a map, a descriptor nor a constant`));
  }

  private collectGlobal(name: string, sym: ts.Symbol, call: ts.CallExpression, kind: 'rodata' | 'global'): void {
    const [typeArg, initArg] = call.arguments;
    const type = typeArg && this.descriptors.evaluate(typeArg);
    if (!type) return void this.diagnostics.push(diag.notAStruct(typeArg ?? call));
    if (kind === 'rodata' && !initArg) return void this.diagnostics.push(diag.badGlobal(call, `rodata '${name}' needs an initial value`));
    let init: Uint8Array = new Uint8Array(type.size);
    if (initArg) {
      const value = this.literalValue(type, initArg);
      if (value === undefined) return;
      init = dsl.encode(type, value as never);
    }
    const section = kind === 'rodata' ? '.rodata' : initArg ? '.data' : '.bss';
    this.globals.set(sym, { name, section, type, init, offset: 0 });
  }

  /** The JavaScript value of a constant initialiser of `type` (for dsl.encode), or undefined after a diagnostic. */
  private literalValue(type: DType, e: ts.Expression): unknown {
    e = skipParens(e);
    if (type.kind === 'int') {
      const v = this.constantValue(e);
      const r = typeRange(type);
      if (v === undefined) return void this.diagnostics.push(diag.badGlobal(e, 'an initial value must be a constant expression'));
      if (v < r.lo || v > r.hi) return void this.diagnostics.push(diag.doesNotFit(e, type.name, v, v));
      return type.size === 8 ? v : Number(v);
    }
    if (type.kind === 'array') {
      if (ts.isStringLiteral(e) && type.element.kind === 'int' && type.element.size === 1) {
        if (e.text.length > type.length || /[^\x00-\xff]/.test(e.text)) return void this.diagnostics.push(diag.badGlobal(e, `'${e.text}' does not fit in ${type.length} Latin-1 bytes`));
        return e.text;
      }
      if (!ts.isArrayLiteralExpression(e)) return void this.diagnostics.push(diag.badGlobal(e, 'an array initial value must be an array literal'));
      if (e.elements.length > type.length) return void this.diagnostics.push(diag.badGlobal(e, `${e.elements.length} elements for an array of ${type.length}`));
      const out: unknown[] = [];
      for (const el of e.elements) {
        const v = this.literalValue(type.element, el);
        if (v === undefined) return undefined;
        out.push(v);
      }
      return out;
    }
    if (type.kind === 'kptr') return void this.diagnostics.push(diag.badGlobal(e, 'a kptr lives only in map values'));
    if (!ts.isObjectLiteralExpression(e)) return void this.diagnostics.push(diag.badGlobal(e, 'a struct initial value must be an object literal'));
    const out: Record<string, unknown> = {};
    for (const p of e.properties) {
      if (!ts.isPropertyAssignment(p) || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) return void this.diagnostics.push(diag.badGlobal(p, 'fields are `name: value`'));
      const f = type.layout.find((x) => x.name === (p.name as ts.Identifier).text);
      if (!f) return void this.diagnostics.push(diag.badGlobal(p, `'${p.name.text}' is not a field of ${type.name}`));
      const v = this.literalValue(f.type, p.initializer);
      if (v === undefined) return undefined;
      out[f.name] = v;
    }
    return out;
  }

  private collectMap(name: string, sym: ts.Symbol, call: ts.CallExpression, kind: MapInfo['kind']): void {
    const opts = call.arguments[0] && skipParens(call.arguments[0]);
    if (!opts || !ts.isObjectLiteralExpression(opts)) return void this.diagnostics.push(diag.badMap(call, 'the options must be an object literal'));
    const info: MapInfo = { name, kind, key: dsl.u32, value: dsl.u32, maxEntries: 0, flags: 0, pinning: 0 };
    let hasKey = kind === 'array' || kind === 'percpu_array' || kind === 'ringbuf';
    let hasValue = kind === 'ringbuf';
    for (const p of opts.properties) {
      if (!ts.isPropertyAssignment(p) || !ts.isIdentifier(p.name)) {
        this.diagnostics.push(diag.badMap(p, 'options are `name: value`'));
        continue;
      }
      const key = p.name.text;
      if (key === 'key' || key === 'value') {
        const t = this.descriptors.evaluate(p.initializer);
        if (!t) this.diagnostics.push(diag.badMap(p.initializer, `the ${key} is not a type descriptor`));
        else if (key === 'key') {
          info.key = t;
          hasKey = true;
        } else {
          info.value = t;
          hasValue = true;
        }
      } else if (key === 'maxEntries' || key === 'flags') {
        const v = this.constantValue(p.initializer);
        if (v === undefined || v < 0n || v >= 1n << 32n) this.diagnostics.push(diag.badMap(p.initializer, `${key} must be a constant u32`));
        else info[key] = Number(v);
      } else if (key === 'pinning') {
        if (ts.isStringLiteral(p.initializer) && (p.initializer.text === 'name' || p.initializer.text === 'none')) info.pinning = p.initializer.text === 'name' ? 1 : 0;
        else this.diagnostics.push(diag.badMap(p.initializer, "pinning is 'name' or 'none'"));
      } else this.diagnostics.push(diag.badMap(p, `unknown option '${key}'`));
    }
    if (kind === 'ringbuf') {
      // The data area: a power of two, whole pages (ringbuf_map_alloc); no key, no value.
      info.key = info.value = dsl.u8;
      if (info.maxEntries < 4096 || info.maxEntries & (info.maxEntries - 1)) return void this.diagnostics.push(diag.badMap(call, 'a ring buffer size (maxEntries) is a power of two of at least 4096 bytes'));
    }
    if (!hasKey || !hasValue || info.maxEntries === 0) return void this.diagnostics.push(diag.badMap(call, 'key, value and maxEntries > 0 are required'));
    if (kind === 'lpm_trie') {
      // trie_alloc: key = { u32 prefixlen; u8 data[1..256] }, and BPF_F_NO_PREALLOC.
      const first = info.key.kind === 'struct' ? info.key.layout[0] : undefined;
      if (!first || first.name !== 'prefixlen' || first.offset !== 0 || first.type.kind !== 'int' || first.type.size !== 4 || first.type.signed || first.type.bigEndian || info.key.size <= 4 || info.key.size > 4 + 256)
        return void this.diagnostics.push(diag.badMap(call, 'an LPM trie key is a struct whose first field is `prefixlen: u32`, then 1 to 256 bytes of data (be32, byte arrays)'));
      info.flags |= BPF_F_NO_PREALLOC;
    }
    this.maps.set(sym, info);
    this.mapOrder.push(info);
  }

  /** The .text function for `fn` called with these parameter shapes from a `ctx` program:
   *  lowered on first use. Undefined (after a diagnostic) for recursion. */
  subprogram(node: ts.Node, fn: ts.FunctionDeclaration, ctx: ContextKind, params: ParamShape[], returnType: IntType | 'bool' | 'void', returnRange?: Range): Subprogram | undefined {
    const shape = (p: ParamShape): string => (p.kind === 'int' ? `${p.type.name}${p.range ? `[${p.range.lo},${p.range.hi}]` : ''}` : p.kind === 'ptr' ? `${p.space}:${JSON.stringify(p.to)}` : p.kind);
    const key = `${ctx}(${params.map(shape).join(',')})${returnRange ? `->[${returnRange.lo},${returnRange.hi}]` : ''}`;
    const base = fn.name!.text;
    if (this.lowering.has(fn)) {
      this.diagnostics.push(diag.recursion(node, base)); // the verifier refuses recursive calls
      return undefined;
    }
    const existing = this.subprograms.find((s) => s.fn === fn && s.key === key);
    if (existing) return existing;
    // Unique .text symbols: a second shape of `fn`, or a function of the same name in another file.
    let name = base;
    for (let n = 1; this.subprograms.some((s) => s.name === name); n++) name = `${base}__${n}`;
    const sub: Subprogram = { name, key, fn, params, returnType };
    this.subprograms.push(sub);
    this.lowering.add(fn);
    try {
      const cx = new Lowering(sub.name, this, visitors);
      cx.ctxKind = ctx;
      cx.returnType = returnType;
      cx.returnRange = returnRange;
      fn.parameters.forEach((p, i) => {
        const sym = this.checker.getSymbolAtLocation(p.name)!;
        const shapeOf = params[i]!;
        const reg = cx.copy(i + 1);
        const name = ts.isIdentifier(p.name) ? p.name.text : `arg${i}`;
        if (shapeOf.kind === 'int') cx.scope.set(sym, { kind: 'int', reg, type: shapeOf.type, name, readRange: shapeOf.range, storeRange: undefined });
        else if (shapeOf.kind === 'bool') cx.scope.set(sym, { kind: 'bool', reg, name });
        else if (shapeOf.kind === 'ctx') {
          cx.ctxReg = reg;
          cx.scope.set(sym, { kind: 'value', val: { k: 'ctx', reg, ctx: shapeOf.ctx } });
        } else cx.scope.set(sym, { kind: 'value', val: { k: 'ptr', base: { reg }, off: 0, to: shapeOf.to, space: shapeOf.space, nullable: false, cell: shapeOf.cell, generation: shapeOf.space === 'packet' ? 0 : undefined } });
      });
      if (fn.body) for (const st of fn.body.statements) cx.stmt(st);
      if (cx.open) {
        if (returnType !== 'void') this.diagnostics.push(diag.unreachableEnd(fn));
        const r = cx.constant(0n, false);
        if (r.k === 'int') cx.terminate({ op: 'ret', value: r.reg });
      }
      cx.fn.prune();
      sub.ir = cx.fn;
    } finally {
      this.lowering.delete(fn);
    }
    return sub;
  }

  lowerProgram(p: ProgramInfo): LoweredProgram {
    const cx = new Lowering(p.name, this, visitors);
    const f = p.decl;
    const ctxSym = this.checker.getSymbolAtLocation(f.parameters[0]!.name)!;
    cx.ctxReg = cx.copy(1);
    cx.ctxKind = p.context;
    cx.scope.set(ctxSym, { kind: 'value', val: { k: 'ctx', reg: cx.ctxReg, ctx: p.context } });
    const rt = f.type && annotationType(this.checker, f.type);
    if (!rt || rt === 'bool' || rt.size === 8) this.diagnostics.push(diag.badProgram(f.type ?? f, 'the return type must be a 32-bit integer type (i32 or u32)'));
    cx.returnType = rt && rt !== 'bool' && rt.size !== 8 ? rt : dsl.i32;
    if (f.body) for (const s of f.body.statements) cx.stmt(s);
    if (cx.open) {
      this.diagnostics.push(diag.unreachableEnd(f));
      const r = cx.constant(0n, false);
      if (r.k === 'int') cx.terminate({ op: 'ret', value: r.reg });
    }
    cx.fn.prune();
    return { info: p, ir: cx.fn };
  }
}
