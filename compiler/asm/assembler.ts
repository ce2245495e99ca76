// A text assembler for the LLVM BPF syntax that llvm-mc-19 accepts and llvm-objdump-19 prints.
//
//	; comment, # comment, // comment
//	entry:                      a label (the first label of an instruction becomes its symbol)
//	  r0 = 0x0
//	  if r1 s> -5 goto out      jumps, gotol and `call name` may name labels
//	  r1 = my_map ll            a symbol in a 64-bit load becomes a reference for the loader
//	out:
//	  exit
//
// Each line is tokenized and matched against the templates of the form table (table.ts); the
// first template that matches every token wins. When none does, the error points at the
// furthest token any template reached, which is where the line stops making sense.
// Every error of the text is reported at once, as `file:line:col: message`.
// The assembler checks syntax and encodability, not the verifier rules of table.ts:
// validation is a separate step (validate/validateProgram), so invalid programs stay writable
// for tests.

import type { Instruction } from './instruction.ts';
import { splitWide } from './instruction.ts';
import { resolve, LinkError } from './labels.ts';
import { FORMS, type Form } from './table.ts';
import { LexError, literalTokens, parseRegister, parseTemplate, tokenize, type Placeholder, type Token } from './syntax.ts';

export interface AssembleOptions {
  /** File name for errors and source locations. */
  file?: string;
  /**
   * Leave `call name` and `r1 = name ll` to unknown names as references for a linker instead of
   * reporting them. Jumps must always land on a label of the same text.
   */
  allowExternal?: boolean;
}

export interface Assembled {
  insns: Instruction[];
  /** Every label and the index of the instruction it marks. */
  labels: Map<string, number>;
}

export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
}

export class AssemblyError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`).join('\n'));
  }
}

export function assemble(text: string, opts: AssembleOptions = {}): Assembled {
  const file = opts.file ?? '<asm>';
  const diagnostics: Diagnostic[] = [];
  const insns: Instruction[] = [];
  const labels = new Map<string, number>();
  const lineOf: number[] = [];
  const lines = text.split('\n');
  let pendingSymbol: string | undefined;

  lines.forEach((raw, n) => {
    const line = n + 1;
    const code = raw.replace(/(;|#|\/\/).*$/, '');
    let tokens: Token[];
    try {
      tokens = tokenize(code);
    } catch (e) {
      if (!(e instanceof LexError)) throw e;
      return void diagnostics.push({ file, line, col: e.col, message: e.message });
    }
    // Labels: `name:` at the start of the line, possibly several, possibly followed by code.
    while (tokens.length >= 2 && tokens[0]!.kind === 'ident' && tokens[1]!.text === ':') {
      const name = tokens[0]!.text;
      if (labels.has(name)) diagnostics.push({ file, line, col: tokens[0]!.col, message: `label "${name}" is already defined` });
      else labels.set(name, insns.length);
      pendingSymbol ??= name;
      tokens = tokens.slice(2);
    }
    if (tokens.length === 0) return;
    const result = matchLine(tokens);
    if ('error' in result) return void diagnostics.push({ file, line, col: result.col, message: result.error });
    const insn = result.insn;
    if (pendingSymbol !== undefined) insn.symbol = pendingSymbol;
    pendingSymbol = undefined;
    insn.source = { file, line, column: tokens[0]!.col, text: raw.trim() };
    insns.push(insn);
    lineOf.push(line);
  });
  for (const [name, index] of labels) {
    if (index === insns.length) diagnostics.push({ file, line: lines.length, col: 1, message: `label "${name}" is not followed by an instruction` });
  }

  let resolved = insns;
  if (diagnostics.length === 0) {
    try {
      resolved = resolve(insns, labels);
    } catch (e) {
      if (!(e instanceof LinkError)) throw e;
      const source = insns[e.index]!.source!;
      diagnostics.push({ file, line: source.line, col: source.column, message: e.reason });
    }
  }
  if (diagnostics.length === 0 && !opts.allowExternal) {
    resolved.forEach((insn) => {
      if (insn.reference !== undefined && !labels.has(insn.reference)) {
        diagnostics.push({ file, line: insn.source!.line, col: insn.source!.column, message: `undefined symbol "${insn.reference}" (pass allowExternal to leave it to the linker)` });
      }
    });
  }
  if (diagnostics.length) throw new AssemblyError(diagnostics);
  return { insns: resolved, labels };
}

type Failure = { at: number; col: number; error: string };

function matchLine(tokens: Token[]): { insn: Instruction } | { error: string; col: number } {
  let best: Failure | undefined;
  for (const form of FORMS) {
    for (const template of [form.syntax, ...(form.also ?? [])]) {
      const r = matchTemplate(tokens, template, form);
      if ('insn' in r) return r;
      if (!best || r.at > best.at) best = r;
    }
  }
  if (best!.at === 0) return { error: `unknown instruction '${tokens[0]!.text}'`, col: tokens[0]!.col };
  return best!;
}

/** Fields collected while matching a template. */
interface State {
  insn: Instruction;
  seen: Set<'dst' | 'src'>;
}

function matchTemplate(tokens: Token[], template: string, form: Form): { insn: Instruction } | Failure {
  const st: State = {
    insn: { opcode: form.opcode, dst: pinned(form.dst), src: pinned(form.src), offset: pinned(form.offset), imm: pinned(form.imm) },
    seen: new Set(),
  };
  if (form.imm2 !== undefined || form.opcode === 0x18) st.insn.imm2 = pinned(form.imm2 ?? 0);
  let pos = 0;
  const endCol = tokens.length ? tokens[tokens.length - 1]!.col + tokens[tokens.length - 1]!.text.length : 1;
  const fail = (at: number, error: string): Failure => ({ at, col: tokens[at]?.col ?? endCol, error });

  for (const part of parseTemplate(template)) {
    if ('text' in part) {
      for (const lit of literalTokens(part.text)) {
        const tok = tokens[pos];
        const same = tok && (lit.kind === 'num' ? tok.kind === 'num' && tok.value === lit.value : tok.text === lit.text);
        if (!same) return fail(pos, tok ? `unexpected '${tok.text}', expected '${lit.text}'` : `expected '${lit.text}' at end of line`);
        pos++;
      }
      continue;
    }
    const r = hole(part.hole, tokens, pos, st);
    if (typeof r !== 'number') return fail(r.at, r.error);
    pos = r;
  }
  if (pos < tokens.length) return fail(pos, `unexpected '${tokens[pos]!.text}' after the end of the instruction`);
  return { insn: st.insn };
}

const pinned = (spec: unknown): number => (typeof spec === 'number' ? spec : 0);

const INT32_MIN = -(2n ** 31n);
const UINT32_MAX = 2n ** 32n - 1n;

/** Consume one placeholder at pos: the position after it, or why it does not fit. */
function hole(h: Placeholder, tokens: Token[], pos: number, st: State): number | { at: number; error: string } {
  const tok = tokens[pos];
  const insn = st.insn;
  // A signed number: [-] num. Returns [value, next position].
  const number = (at: number, allowPlus: boolean): [bigint, number] | undefined => {
    let sign = 1n;
    let p = at;
    if (tokens[p]?.text === '-' || (allowPlus && tokens[p]?.text === '+')) sign = tokens[p++]!.text === '-' ? -1n : 1n;
    const t = tokens[p];
    return t?.kind === 'num' ? [sign * t.value!, p + 1] : undefined;
  };
  const inRange = (v: bigint, lo: bigint, hi: bigint, what: string, at: number): { at: number; error: string } | undefined =>
    v < lo || v > hi ? { at, error: `${what} ${v} is out of range ${lo}..${hi}` } : undefined;

  switch (h) {
    case 'rd':
    case 'wd':
    case 'rs':
    case 'ws': {
      const field = h[1] === 'd' ? 'dst' : 'src';
      const reg = tok?.kind === 'ident' ? parseRegister(tok.text, h[0] as 'r' | 'w') : undefined;
      if (reg === undefined) return { at: pos, error: tok ? `unexpected '${tok.text}', expected ${h[0] === 'r' ? 'an' : 'a'} ${h[0]} register (${h[0]}0–${h[0]}10)` : `expected a register at end of line` };
      if (st.seen.has(field) && insn[field] !== reg) return { at: pos, error: `${tok!.text} must be the same register as ${h[0]}${insn[field]}` };
      st.seen.add(field);
      insn[field] = reg;
      return pos + 1;
    }
    case 'imm':
    case 'uimm': {
      const n = number(pos, false);
      if (!n) return { at: pos, error: tok ? `unexpected '${tok.text}', expected an immediate` : 'expected an immediate at end of line' };
      const bad = inRange(n[0], INT32_MIN, UINT32_MAX, 'immediate', pos);
      if (bad) return bad;
      insn.imm = Number(BigInt.asIntN(32, n[0]));
      return n[1];
    }
    case 'imm64': {
      if (tok?.kind === 'ident' && parseRegister(tok.text, 'r') === undefined && parseRegister(tok.text, 'w') === undefined) {
        insn.reference = tok.text;
        insn.imm = 0;
        insn.imm2 = 0;
        return pos + 1;
      }
      const n = number(pos, false);
      if (!n) return { at: pos, error: tok ? `unexpected '${tok.text}', expected a 64-bit constant or a symbol` : 'expected a 64-bit constant at end of line' };
      const bad = inRange(n[0], -(2n ** 63n), 2n ** 64n - 1n, 'constant', pos);
      if (bad) return bad;
      Object.assign(insn, splitWide(n[0]));
      return n[1];
    }
    case 'off': {
      if (tok?.text !== '+' && tok?.text !== '-') return { at: pos, error: tok ? `unexpected '${tok.text}', expected '+ offset' or '- offset'` : `expected '+ offset' at end of line` };
      const n = number(pos, true);
      if (!n) return { at: pos + 1, error: 'expected an offset' };
      const bad = inRange(n[0], -0x8000n, 0x7fffn, 'offset', pos + 1);
      if (bad) return bad;
      insn.offset = Number(n[0]);
      return n[1];
    }
    case 'joff':
    case 'jimm':
    case 'ctarget': {
      let p = pos;
      if (h === 'ctarget') {
        // `call pc+0x5`, or `call name`.
        if (tokens[p]?.kind === 'ident' && tokens[p]!.text !== 'pc') {
          if (tokens[p]!.text === 'kfunc') return { at: p, error: `expected a call target` };
          insn.reference = tokens[p]!.text;
          return p + 1;
        }
        if (tokens[p]?.text !== 'pc') return { at: p, error: tokens[p] ? `unexpected '${tokens[p]!.text}', expected a function name or pc+offset` : 'expected a call target' };
        p++;
      } else if (tokens[p]?.kind === 'ident') {
        insn.reference = tokens[p]!.text;
        return p + 1;
      }
      const n = number(p, true);
      if (!n) return { at: p, error: tokens[p] ? `unexpected '${tokens[p]!.text}', expected a label or +offset` : 'expected a jump target' };
      const wide = h !== 'joff';
      const bad = wide ? inRange(n[0], INT32_MIN, 2n ** 31n - 1n, 'jump offset', p) : inRange(n[0], -0x8000n, 0x7fffn, 'jump offset', p);
      if (bad) return bad;
      if (wide) insn.imm = Number(n[0]);
      else insn.offset = Number(n[0]);
      return n[1];
    }
    case 'optoff':
    case 'optimm2': {
      if (tok?.text !== ',') return pos;
      const n = number(pos + 1, false);
      if (!n) return { at: pos + 1, error: 'expected a number' };
      if (h === 'optoff') {
        const bad = inRange(n[0], -0x8000n, 0x7fffn, 'offset', pos + 1);
        if (bad) return bad;
        insn.offset = Number(n[0]);
      } else {
        const bad = inRange(n[0], INT32_MIN, UINT32_MAX, 'immediate', pos + 1);
        if (bad) return bad;
        insn.imm2 = Number(BigInt.asIntN(32, n[0]));
      }
      return n[1];
    }
    case 'optimm': {
      if (tok?.text !== '+' && tok?.text !== '-') return pos;
      const n = number(pos, true);
      if (!n) return { at: pos + 1, error: 'expected a number' };
      const bad = inRange(n[0], INT32_MIN, 2n ** 31n - 1n, 'immediate', pos + 1);
      if (bad) return bad;
      insn.imm = Number(n[0]);
      return n[1];
    }
  }
}
