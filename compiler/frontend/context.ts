// The state of lowering one BPF program (with every function it inlines) from the typed TS AST
// to IR: the current block, scopes, loop targets, and the helpers visitors use to emit code.
// Visitors for each syntax family live in expressions/ and statements/ and are found through the
// tables in visitors.ts; a visitor that meets something outside the subset reports a diagnostic
// and returns a placeholder value, so lowering always continues.

import ts from 'typescript';
import type { SourceLocation } from '../asm/instruction.ts';
import { diag, type Diagnostic } from '../diagnostics.ts';
import { Block, IrFunction, type AluName, type Insn, type Operand, type Reg, type Terminator, type Width } from '../ir/ir.ts';
import type { ModuleInfo } from './module.ts';
import { type Base, type ContextKind, type DType, type Space, type IntType, type Range, type Val, constRange, exact, typeRange, TWO31 } from './types.ts';

export type Binding =
  /** Immutable: the value itself (a const, a parameter never assigned). */
  | { kind: 'value'; val: Val }
  /** A mutable local: a register whose contents stay within `type`. */
  | { kind: 'int'; reg: Reg; type: IntType; name: string; readRange?: Range; storeRange?: Range }
  | { kind: 'bool'; reg: Reg; name: string }
  | { kind: 'ptr'; reg: Reg; to: DType; space: Space; cell: boolean; name: string; generation?: number };

export interface LoopTarget {
  breakTo: Block;
  continueTo?: Block;
}
export interface InlineFrame {
  exit: Block;
  result: Reg;
  returnType: IntType | 'bool' | 'void';
  fn: ts.FunctionDeclaration;
}

export type ExprVisitor<N extends ts.Node = any> = (cx: Lowering, node: N) => Val;
export type StmtVisitor<N extends ts.Node = any> = (cx: Lowering, node: N) => void;

export interface VisitorTables {
  expressions: Map<ts.SyntaxKind, ExprVisitor>;
  statements: Map<ts.SyntaxKind, StmtVisitor>;
  condition: (cx: Lowering, node: ts.Expression, whenTrue: Block, whenFalse: Block) => void;
}

export class Lowering {
  readonly fn: IrFunction;
  readonly checker: ts.TypeChecker;
  readonly module: ModuleInfo;
  readonly scope = new Map<ts.Symbol, Binding>();
  readonly loops: LoopTarget[] = [];
  readonly inlineStack: InlineFrame[] = [];
  private current: Block;
  private loc: SourceLocation | undefined;
  private readonly tables: VisitorTables;
  /** The program's context register (r1 at entry, kept in a virtual register). */
  ctxReg: Reg = -1;
  ctxKind: ContextKind = 'tc';
  returnType: IntType | 'bool' | 'void' = 'void';
  /** A narrower range the returned value must have (a bpf_loop callback returns 0 or 1). */
  returnRange: Range | undefined;
  /** Bumped by every helper that may move packet data: packet views from before are invalid
   *  (the verifier forgets them too), which EBPF1409 reports at their next use. */
  packetGeneration = 0;

  constructor(name: string, module: ModuleInfo, tables: VisitorTables) {
    this.fn = new IrFunction(name);
    this.module = module;
    this.checker = module.checker;
    this.tables = tables;
    this.current = this.fn.entry;
  }

  report(d: Diagnostic): Val {
    this.module.diagnostics.push(d);
    return { k: 'bad' };
  }

  // -- dispatch ---------------------------------------------------------------------------------

  expr(node: ts.Expression): Val {
    const visitor = this.tables.expressions.get(node.kind);
    if (!visitor) return this.report(diag.unsupportedSyntax(node));
    const saved = this.loc;
    this.loc = this.locationOf(node);
    try {
      return visitor(this, node);
    } finally {
      this.loc = saved;
    }
  }

  stmt(node: ts.Statement): void {
    const visitor = this.tables.statements.get(node.kind);
    if (!visitor) {
      this.report(diag.unsupportedStatement(node));
      return;
    }
    const saved = this.loc;
    this.loc = this.locationOf(node);
    try {
      visitor(this, node);
    } finally {
      this.loc = saved;
    }
  }

  cond(node: ts.Expression, whenTrue: Block, whenFalse: Block): void {
    const saved = this.loc;
    this.loc = this.locationOf(node);
    try {
      this.tables.condition(this, node, whenTrue, whenFalse);
    } finally {
      this.loc = saved;
    }
  }

  locationOf(node: ts.Node): SourceLocation {
    const sf = node.getSourceFile();
    const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    const lineStart = sf.getLineStarts()[line]!;
    const lineEnd = sf.getLineEndOfPosition(lineStart);
    return { file: sf.fileName, line: line + 1, column: character + 1, text: sf.text.slice(lineStart, lineEnd) };
  }

  // -- blocks -----------------------------------------------------------------------------------

  get block(): Block {
    return this.current;
  }
  /** Whether code emitted now can run (the current block has no terminator yet). */
  get open(): boolean {
    return this.current.term === undefined;
  }
  newBlock(): Block {
    return this.fn.newBlock();
  }
  setBlock(b: Block): void {
    this.current = b;
  }
  emit(i: Insn): void {
    if (this.current.term) this.current = this.fn.newBlock(); // unreachable code gets a dead block, pruned later
    this.current.insns.push({ ...i, loc: this.loc });
  }
  terminate(t: Terminator): void {
    if (this.current.term) this.current = this.fn.newBlock();
    this.current.term = { ...t, loc: this.loc };
  }
  jump(target: Block): void {
    this.terminate({ op: 'jmp', target });
  }
  branch(cmp: Extract<Terminator, { op: 'br' }>['cmp'], a: Reg, b: Operand, then: Block, otherwise: Block, width: Width = 64): void {
    this.terminate({ op: 'br', cmp, width, a, b, then, else: otherwise });
  }

  // -- registers and constants ------------------------------------------------------------------

  newReg(): Reg {
    return this.fn.newReg();
  }
  constant(value: bigint, big: boolean): Val {
    const reg = this.newReg();
    this.emit({ op: 'const', dst: reg, value: BigInt.asIntN(64, value) });
    return { k: 'int', reg, range: constRange(big, value), c: value };
  }
  bool(value: boolean): Val {
    const reg = this.newReg();
    this.emit({ op: 'const', dst: reg, value: value ? 1n : 0n });
    return { k: 'bool', reg, c: value };
  }
  alu(alu: AluName, width: Width, a: Reg, b: Operand): Reg {
    const dst = this.newReg();
    this.emit({ op: 'alu', alu, width, dst, a, b });
    return dst;
  }
  /** An operand for `v`: its constant when it fits an imm32, else its register. */
  operand(v: Extract<Val, { k: 'int' }>): Operand {
    return v.c !== undefined && v.c >= -TWO31 && v.c < TWO31 ? { imm: v.c } : { reg: v.reg };
  }
  /** Emit a mov into a fresh register (so later writes to `r` do not change the copy). */
  copy(r: Reg): Reg {
    const dst = this.newReg();
    this.emit({ op: 'mov', dst, src: r });
    return dst;
  }

  // -- memory -----------------------------------------------------------------------------------

  /** A register holding the address `base + off`. */
  address(base: Base, off: number): Reg {
    if ('slot' in base) {
      const r = this.newReg();
      this.emit({ op: 'addr', dst: r, slot: base.slot });
      return off === 0 ? r : this.alu('add', 64, r, { imm: BigInt(off) });
    }
    return off === 0 ? base.reg : this.alu('add', 64, base.reg, { imm: BigInt(off) });
  }

  loadInt(base: Base, off: number, t: IntType): Val {
    const dst = this.newReg();
    this.emit({ op: 'load', size: t.size, signed: false, dst, base, off });
    let reg = dst;
    if (t.bigEndian) {
      reg = this.newReg();
      this.emit({ op: 'bswap', bits: (t.size * 8) as 16 | 32, dst: reg, a: dst });
    }
    if (t.signed && t.size < 8) {
      const s = this.newReg();
      this.emit({ op: 'sext', bits: (t.size * 8) as 8 | 16 | 32, dst: s, a: reg });
      reg = s;
    }
    return { k: 'int', reg, range: typeRange(t) };
  }

  storeInt(base: Base, off: number, t: IntType, v: Extract<Val, { k: 'int' }>): void {
    let value: Operand = this.operand(v);
    if (t.bigEndian) {
      const r = this.newReg();
      if ('imm' in value) {
        const bits = BigInt(t.size * 8);
        const x = BigInt.asUintN(Number(bits), value.imm);
        let swapped = 0n;
        for (let i = 0n; i < bits / 8n; i++) swapped |= ((x >> (8n * i)) & 0xffn) << (bits - 8n - 8n * i);
        value = { imm: BigInt.asIntN(32, swapped) };
      } else {
        this.emit({ op: 'bswap', bits: (t.size * 8) as 16 | 32, dst: r, a: value.reg });
        value = { reg: r };
      }
    } else if ('imm' in value && t.size < 8) {
      // A narrow store keeps the low bits; the imm field is sign-extended, so normalise it.
      value = { imm: BigInt.asIntN(32, BigInt.asUintN(t.size * 8, value.imm)) };
    }
    this.emit({ op: 'store', size: t.size, base, off, value });
  }

  /** Zero `size` bytes at a stack slot (initialised stack for keys and values). */
  zeroSlot(slot: number, size: number): void {
    let off = 0;
    while (off < size) {
      const n = size - off >= 8 && off % 8 === 0 ? 8 : size - off >= 4 && off % 4 === 0 ? 4 : size - off >= 2 && off % 2 === 0 ? 2 : 1;
      this.emit({ op: 'store', size: n as 1 | 2 | 4 | 8, base: { slot }, off, value: { imm: 0n } });
      off += n;
    }
  }

  intVal(reg: Reg, t: IntType): Val {
    return { k: 'int', reg, range: typeRange(t) };
  }
  rangeVal(reg: Reg, range: Range): Val {
    return { k: 'int', reg, range };
  }
  exactVal(reg: Reg, big: boolean, lo: bigint, hi: bigint): Val {
    return { k: 'int', reg, range: exact(big, lo, hi) };
  }
}
