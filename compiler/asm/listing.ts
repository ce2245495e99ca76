// Program listings for people: test failures, VM faults, loader errors.
//
//	entry:
//	     0: r1 = 0x0 ll                      ; prog.ts:4: const x = 0n
//	     2: if r1 == 0x0 goto +0x1 <entry+0x20>
//	     3: r0 = 0x1
//	=>   4: exit
//
// Numbers are slot indexes (a 64-bit load takes two), as in the kernel's verifier log and
// llvm-objdump. Jump targets are named like objdump names them: the nearest symbol at or before
// the target, plus the byte offset from it.

import { encode, slotOffsets, type Instruction } from './instruction.ts';
import { formatInstruction } from './disassembler.ts';
import { hex } from './syntax.ts';
import { matchForm } from './table.ts';

export interface ListingOptions {
  /** Show the encoded bytes of each instruction. */
  bytes?: boolean;
  /** Show the source line as a comment where an instruction has one (default true). */
  source?: boolean;
  /** Slot index to point at with `=>` (the faulting pc). */
  mark?: number;
  dialect?: 'lossless' | 'llvm';
}

const COMMENT_COLUMN = 44;

/** One line per instruction, `name:` headers for symbols. */
export function formatListing(insns: readonly Instruction[], opts: ListingOptions = {}): string {
  return listingLines(insns, opts).join('\n');
}

function listingLines(insns: readonly Instruction[], opts: ListingOptions): string[] {
  const slots = slotOffsets(insns);
  const total = slots[insns.length]!;
  // Symbols by slot, for naming jump targets objdump style.
  const symbols: Array<[number, string]> = [];
  insns.forEach((insn, i) => insn.symbol !== undefined && symbols.push([slots[i]!, insn.symbol]));
  const symbolize = (target: number): string | undefined => {
    if (target < 0 || target >= total) return undefined;
    let best: [number, string] | undefined;
    for (const s of symbols) if (s[0] <= target && (!best || s[0] >= best[0])) best = s;
    if (!best) return undefined;
    const delta = (target - best[0]) * 8;
    return delta === 0 ? best[1] : `${best[1]}+${hex(delta)}`;
  };
  const width = Math.max(4, String(total).length);
  const lines: string[] = [];
  let lastSource: string | undefined;
  insns.forEach((insn, i) => {
    if (insn.symbol !== undefined) lines.push(`${insn.symbol}:`);
    const pc = slots[i]!;
    let line = `${opts.mark === pc ? '=>' : '  '} ${String(pc).padStart(width)}: `;
    if (opts.bytes) {
      const hexBytes = encode([insn]).toString('hex').replace(/(..)(?=.)/g, '$1 ');
      line += `${hexBytes.padEnd(47)}  `;
    }
    line += formatInstruction(insn, { pc, symbolize, dialect: opts.dialect });
    const comments: string[] = [];
    if (insn.reference !== undefined && !line.includes(`<${insn.reference}`)) comments.push(`-> ${insn.reference}`);
    if (!matchForm(insn)) comments.push(`opcode ${hex(insn.opcode)} dst ${insn.dst} src ${insn.src} off ${insn.offset} imm ${hex(insn.imm)}`);
    if (opts.source !== false && insn.source) {
      const where = `${insn.source.file}:${insn.source.line}`;
      const key = `${where}:${insn.source.text ?? ''}`;
      if (key !== lastSource) comments.push(insn.source.text !== undefined ? `${where}: ${insn.source.text}` : where);
      lastSource = key;
    }
    if (comments.length) line = `${line.padEnd(COMMENT_COLUMN)} ; ${comments.join('; ')}`;
    lines.push(line.trimEnd());
  });
  return lines;
}

/**
 * undefined when both programs encode to the same bytes; otherwise both listings side by side,
 * lines that differ marked with `!`. For test failure messages.
 */
export function compareListings(expected: readonly Instruction[], actual: readonly Instruction[], opts: ListingOptions = {}): string | undefined {
  if (encode(expected).toString('hex') === encode(actual).toString('hex')) return undefined;
  const left = listingLines(expected, { ...opts, source: false });
  const right = listingLines(actual, { ...opts, source: false });
  const w = Math.max(8, ...left.map((l) => l.length));
  const rows = Array.from({ length: Math.max(left.length, right.length) }, (_, i) => [left[i] ?? '', right[i] ?? ''] as const);
  // Long programs: keep the differing rows and CONTEXT rows around each.
  const CONTEXT = 3;
  const differs = rows.map(([l, r]) => l !== r);
  const keep = rows.map((_, i) => rows.length <= 40 || differs.slice(Math.max(0, i - CONTEXT), i + CONTEXT + 1).some(Boolean));
  const out = [`bytecode differs`, `  ${'expected'.padEnd(w)} | actual`];
  rows.forEach(([l, r], i) => {
    if (keep[i]) out.push(`${differs[i] ? '!' : ' '} ${l.padEnd(w)} | ${r}`);
    else if (keep[i - 1]) out.push('  ...');
  });
  return out.join('\n');
}
