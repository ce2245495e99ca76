// The compiler's view of DSL types and values.
//
// Layouts come from the DSL's own descriptor functions (struct/array in compiler/dsl), evaluated
// here on the statically known arguments, so Node and BPF share one layout computation.
//
// Integer expressions carry an interval [lo, hi] of their exact (mathematical) value. A register
// holds that value as a 64-bit two's-complement pattern, so a value is representable when
// lo ≥ -2^63, hi < 2^64 and not (lo < 0 and hi ≥ 2^63). A bigint that is only known modulo 2^64
// (after a wrapping +, -, * or <<) is `wrapped`: fine for ring operations and stores, refused
// where the exact value matters (comparison, division, right shift, Number()).

import ts from 'typescript';
import * as dsl from '../dsl/index.ts';
import type { Reg } from '../ir/ir.ts';

export type IntType = dsl.IntType;
export type DType = dsl.Type;

export interface Range {
  /** bigint (u64/i64) or number (8–32-bit) in JavaScript. */
  big: boolean;
  lo: bigint;
  hi: bigint;
  /** Only the value modulo 2^64 is known (bigint only). */
  wrapped: boolean;
}

export const TWO53 = 1n << 53n;
export const TWO63 = 1n << 63n;
export const TWO64 = 1n << 64n;
export const TWO32 = 1n << 32n;
export const TWO31 = 1n << 31n;

export function typeRange(t: IntType): Range {
  const bits = BigInt(t.size * 8);
  const lo = t.signed ? -(1n << (bits - 1n)) : 0n;
  const hi = t.signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  return { big: t.size === 8, lo, hi, wrapped: false };
}
export const exact = (big: boolean, lo: bigint, hi: bigint): Range => ({ big, lo, hi, wrapped: false });
export const constRange = (big: boolean, c: bigint): Range => exact(big, c, c);
export const I32: Range = exact(false, -TWO31, TWO31 - 1n);
export const U32: Range = exact(false, 0n, TWO32 - 1n);

/** Representable exactly in one 64-bit register (signed or unsigned reading). */
export const representable = (r: Range): boolean => !r.wrapped && r.lo >= -TWO63 && r.hi < TWO64 && !(r.lo < 0n && r.hi >= TWO63);
/** A number range JavaScript holds exactly. */
export const safeNumber = (r: Range): boolean => r.lo > -TWO53 && r.hi < TWO53;
export const within = (r: Range, outer: Range): boolean => !r.wrapped && r.lo >= outer.lo && r.hi <= outer.hi;
/** Normalise a bigint range: out of 64-bit representability means only the bits are known. */
export function bigResult(lo: bigint, hi: bigint): Range {
  const r = exact(true, lo, hi);
  return representable(r) ? r : { big: true, lo: -TWO63, hi: TWO64 - 1n, wrapped: true };
}
/** The smallest 2^k - 1 ≥ v (v ≥ 0). */
export function allOnes(v: bigint): bigint {
  let m = 0n;
  while (m < v) m = (m << 1n) | 1n;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Values of expressions during lowering.

export type Space = 'packet' | 'map' | 'stack' | 'global' | 'rodata' | 'ctx' | 'dynptr';
export type Base = { reg: Reg } | { slot: number };

export type Val =
  | { k: 'int'; reg: Reg; range: Range; c?: bigint }
  | { k: 'bool'; reg: Reg; c?: boolean }
  /** A pointer to memory of type `to` (a struct or array view, or a Cell of an integer). */
  | { k: 'ptr'; base: Base; off: number; to: DType; space: Space; nullable: boolean; cell: boolean; generation?: number }
  | { k: 'null' }
  | { k: 'map'; map: MapInfo }
  | { k: 'ctx'; reg: Reg; ctx: ContextKind }
  | { k: 'desc'; type: DType }
  /** A pointer to a kernel object (struct `target`): a kptr field read, a kfunc result. `owned`: a
   *  reference the program must release or store (acquire, create, kptrXchg). */
  | { k: 'kptr'; reg: Reg; target: string; nullable: boolean; owned: boolean }
  /** A struct bpf_dynptr in a 16-byte stack slot. */
  | { k: 'dynptr'; slot: number }
  | { k: 'void' }
  /** A placeholder after a diagnostic: any use is silent. */
  | { k: 'bad' };

export type ContextKind = 'tc' | 'xdp' | 'syscall';

/** A module-level `rodata(T, init)` / `global(T, init?)`: a variable in a global-data section. */
export interface GlobalInfo {
  name: string;
  section: '.rodata' | '.data' | '.bss';
  type: DType;
  init: Uint8Array;
  /** Byte offset in its section (set when the sections are laid out). */
  offset: number;
}

export interface MapInfo {
  name: string;
  kind: 'hash' | 'percpu_hash' | 'array' | 'percpu_array' | 'lpm_trie' | 'ringbuf';
  key: DType;
  value: DType;
  maxEntries: number;
  flags: number;
  pinning: number;
}

// ---------------------------------------------------------------------------------------------
// Resolving names to the DSL module.

export const DSL_FILE = /compiler[\\/]dsl[\\/]index\.ts$/;

/** The symbol behind an identifier, through import aliases. */
export function resolveSymbol(checker: ts.TypeChecker, node: ts.Node): ts.Symbol | undefined {
  let s = checker.getSymbolAtLocation(node);
  if (s && s.flags & ts.SymbolFlags.Alias) s = checker.getAliasedSymbol(s);
  return s;
}

/** If the symbol is an export of the DSL module, its name there. */
export function dslName(symbol: ts.Symbol | undefined): string | undefined {
  const decl = symbol?.declarations?.[0];
  if (!decl || !DSL_FILE.test(decl.getSourceFile().fileName)) return undefined;
  return symbol!.name;
}

export const DSL_INTS: Record<string, IntType> = {
  u8: dsl.u8,
  u16: dsl.u16,
  u32: dsl.u32,
  u64: dsl.u64,
  i8: dsl.i8,
  i16: dsl.i16,
  i32: dsl.i32,
  i64: dsl.i64,
  be16: dsl.be16,
  be32: dsl.be32,
};

/** The integer type named by a type annotation (u32, i64, number, bigint), if any. */
export function annotationType(checker: ts.TypeChecker, node: ts.TypeNode): IntType | 'bool' | undefined {
  if (ts.isTypeReferenceNode(node)) {
    const name = dslName(resolveSymbol(checker, node.typeName));
    return name ? DSL_INTS[name] : undefined;
  }
  if (node.kind === ts.SyntaxKind.NumberKeyword) return dsl.i32;
  if (node.kind === ts.SyntaxKind.BigIntKeyword) return dsl.i64;
  if (node.kind === ts.SyntaxKind.BooleanKeyword) return 'bool';
  return undefined;
}

/** Evaluate a descriptor expression (u8, array(u8, 6), struct({...}), or a name bound to one). */
export class Descriptors {
  private readonly cache = new Map<ts.Node, DType | undefined>();
  constructor(
    private readonly checker: ts.TypeChecker,
    private readonly report: (node: ts.Node, why: string) => void,
    private readonly constant: (node: ts.Expression) => bigint | undefined,
  ) {}

  evaluate(expr: ts.Expression, nameHint?: string): DType | undefined {
    expr = skipParens(expr);
    if (ts.isIdentifier(expr)) {
      const sym = resolveSymbol(this.checker, expr);
      const name = dslName(sym);
      if (name) {
        const exported = (dsl as Record<string, unknown>)[name];
        return DSL_INTS[name] ?? (isDescriptor(exported) ? exported : undefined);
      }
      const decl = sym?.valueDeclaration;
      if (decl && ts.isVariableDeclaration(decl) && decl.initializer && ts.isVariableDeclarationList(decl.parent) && decl.parent.flags & ts.NodeFlags.Const) {
        if (!this.cache.has(decl)) {
          this.cache.set(decl, undefined); // cycle guard
          this.cache.set(decl, this.evaluate(decl.initializer, ts.isIdentifier(decl.name) ? decl.name.text : undefined));
        }
        return this.cache.get(decl);
      }
      return undefined;
    }
    if (ts.isCallExpression(expr)) {
      const callee = dslName(resolveSymbol(this.checker, expr.expression));
      if (callee === 'array' && expr.arguments.length === 2) {
        const el = this.evaluate(expr.arguments[0]!);
        const n = this.constant(expr.arguments[1]!);
        if (!el) return this.fail(expr.arguments[0]!, 'the element is not a type');
        if (n === undefined || n <= 0n || n > 65536n) return this.fail(expr.arguments[1]!, 'the length must be a constant in 1..65536');
        return dsl.array(el, Number(n));
      }
      if (callee === 'kptr' && expr.arguments.length === 1) {
        const target = dslName(resolveSymbol(this.checker, expr.arguments[0]!));
        const cls = target ? (dsl as Record<string, unknown>)[target] : undefined;
        const btfName = typeof cls === 'function' ? (cls as { btfName?: unknown }).btfName : undefined;
        if (typeof btfName !== 'string') return this.fail(expr.arguments[0]!, 'kptr() takes a kernel object class of the DSL (CryptoCtx)');
        return dsl.kptr(cls as dsl.KernelObjectClass<object>);
      }
      if (callee === 'struct' && expr.arguments.length >= 1) {
        const lit = skipParens(expr.arguments[0]!);
        if (!ts.isObjectLiteralExpression(lit)) return this.fail(lit, 'the fields must be an object literal');
        const fields: Record<string, DType> = {};
        for (const p of lit.properties) {
          if (!ts.isPropertyAssignment(p) || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) return this.fail(p, 'each field is `name: type`');
          const t = this.evaluate(p.initializer);
          if (!t) return this.fail(p.initializer, `the type of field '${p.name.text}' is not a descriptor`);
          fields[p.name.text] = t;
        }
        let name = nameHint ?? 'anon';
        let packed = false;
        const opts = expr.arguments[1] && skipParens(expr.arguments[1]);
        if (opts) {
          if (!ts.isObjectLiteralExpression(opts)) return this.fail(opts, 'options must be an object literal');
          for (const p of opts.properties) {
            if (!ts.isPropertyAssignment(p) || !ts.isIdentifier(p.name)) return this.fail(p, 'unknown option');
            if (p.name.text === 'name' && ts.isStringLiteral(p.initializer)) name = p.initializer.text;
            else if (p.name.text === 'packed') packed = p.initializer.kind === ts.SyntaxKind.TrueKeyword;
            else return this.fail(p, `unknown option '${p.name.text}'`);
          }
        }
        if (Object.keys(fields).length === 0) return this.fail(lit, 'a struct needs at least one field');
        return dsl.struct(fields, { name, packed });
      }
    }
    return undefined;
  }

  private fail(node: ts.Node, why: string): undefined {
    this.report(node, why);
    return undefined;
  }
}

const isDescriptor = (v: unknown): v is DType =>
  typeof v === 'object' && v !== null && ['struct', 'array'].includes((v as { kind?: string }).kind ?? '');

export function skipParens(e: ts.Expression): ts.Expression {
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e) || ts.isSatisfiesExpression(e)) e = e.expression;
  return e;
}

export const intTypeName = (t: IntType): string => t.name;
