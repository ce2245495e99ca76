// The pieces of LLVM BPF assembly syntax shared by the disassembler and the assembler: number
// formatting, the lexer, and the template language of the form table (table.ts).
//
// A template is literal text with placeholders in braces:
//	{rd} {wd}   dst as r or w register          {rs} {ws}   src as r or w register
//	{imm}       imm, signed hex (-0x5)          {uimm}      imm, unsigned hex (ld_pseudo)
//	{imm64}     imm + imm2 as a signed 64-bit constant, or a symbol (lddw)
//	{off}       memory offset " + 0x8" / " - 0x8"
//	{joff}      jump by offset "+0x3", or a label       {jimm}  the same from imm (gotol)
//	{ctarget}   local call target "pc+0x3", or a label
//	{optoff}    ", 0x1" when offset ≠ 0 (kfunc BTF fd index)
//	{optimm}    " + 0x5" when imm ≠ 0 (ld_ind)          {optimm2}  ", 0x8" when imm2 ≠ 0 (ld_pseudo)
// Whitespace in a template only matters for printing; the assembler compares tokens.

export type Placeholder = 'rd' | 'wd' | 'rs' | 'ws' | 'imm' | 'uimm' | 'imm64' | 'off' | 'joff' | 'jimm' | 'ctarget' | 'optoff' | 'optimm' | 'optimm2';

export type TemplatePart = { text: string } | { hole: Placeholder };

const PLACEHOLDERS = new Set<string>(['rd', 'wd', 'rs', 'ws', 'imm', 'uimm', 'imm64', 'off', 'joff', 'jimm', 'ctarget', 'optoff', 'optimm', 'optimm2']);

const templateCache = new Map<string, TemplatePart[]>();

/** Split a template into literal text and placeholders. */
export function parseTemplate(template: string): TemplatePart[] {
  let parts = templateCache.get(template);
  if (parts) return parts;
  parts = [];
  const re = /\{(\w+)\}/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (!PLACEHOLDERS.has(m[1]!)) throw new Error(`template "${template}": unknown placeholder {${m[1]}}`);
    if (m.index > last) parts.push({ text: template.slice(last, m.index) });
    parts.push({ hole: m[1] as Placeholder });
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push({ text: template.slice(last) });
  templateCache.set(template, parts);
  return parts;
}

/** LLVM's immediate style: 0x3, -0x5, 0x0. */
export function hex(value: number | bigint): string {
  if (typeof value === 'bigint') return value < 0n ? `-0x${(-value).toString(16)}` : `0x${value.toString(16)}`;
  return value < 0 ? `-0x${(-value).toString(16)}` : `0x${value.toString(16)}`;
}

/** A signed hex with its sign always written: +0x3, -0x3 (jump offsets). */
export function signedHex(value: number): string {
  return value < 0 ? hex(value) : `+${hex(value)}`;
}

export interface Token {
  kind: 'ident' | 'num' | 'punct';
  text: string;
  /** 1-based column in the line. */
  col: number;
  /** num only. */
  value?: bigint;
}

// Longest first. LLVM spells the signed operators with a leading s (s/=, s>>=, s<).
const PUNCT = ['s>>=', '<<=', '>>=', 's/=', 's%=', 's>=', 's<=', 's>', 's<', '+=', '-=', '*=', '/=', '%=', '|=', '&=', '^=', '==', '!=', '>=', '<=', '>', '<', '=', '&', '*', '(', ')', '[', ']', ',', '+', '-', ':'];

export class LexError extends Error {
  constructor(
    message: string,
    readonly col: number,
  ) {
    super(message);
  }
}

/** Tokenize one line (comments already removed). */
export function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    const punct = PUNCT.find((p) => line.startsWith(p, i));
    // "s<" is an operator, "s8" and "skb" are identifiers.
    if (punct && (punct[0] !== 's' || punct.length > 1)) {
      tokens.push({ kind: 'punct', text: punct, col: i + 1 });
      i += punct.length;
      continue;
    }
    const num = /^(0[xX][0-9a-fA-F]+|[0-9]+)/.exec(line.slice(i));
    if (num) {
      if (/[A-Za-z_]/.test(line[i + num[0].length] ?? '')) throw new LexError(`malformed number '${line.slice(i).split(/[\s,)\]]/)[0]}'`, i + 1);
      tokens.push({ kind: 'num', text: num[0], col: i + 1, value: BigInt(num[0]) });
      i += num[0].length;
      continue;
    }
    const ident = /^[A-Za-z_.$][\w.$]*/.exec(line.slice(i));
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0], col: i + 1 });
      i += ident[0].length;
      continue;
    }
    throw new LexError(`unexpected character '${c}'`, i + 1);
  }
  return tokens;
}

/** The tokens of a template's literal text (cached). */
const literalCache = new Map<string, Token[]>();
export function literalTokens(text: string): Token[] {
  let t = literalCache.get(text);
  if (!t) literalCache.set(text, (t = tokenize(text)));
  return t;
}

/** rN / wN → register number, or undefined. */
export function parseRegister(text: string, prefix: 'r' | 'w'): number | undefined {
  const m = /^([rw])(\d+)$/.exec(text);
  if (!m || m[1] !== prefix) return undefined;
  const n = Number(m[2]);
  return n <= 10 && String(n) === m[2] ? n : undefined;
}
