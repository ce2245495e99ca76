// The VM against the ubpf-style data files in test/vm/: each file holds a program (`-- asm` in
// LLVM syntax, or `-- raw` hex bytes), optional memory (`-- mem`, hex) and either the expected
// r0 (`-- result`) or a substring of the expected error (`-- error`). Programs run in memory
// mode: r1 points to the memory, r2 holds its length.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assemble } from '../compiler/asm/assembler.ts';
import { decode, type Instruction } from '../compiler/asm/instruction.ts';
import { formatInstruction } from '../compiler/asm/disassembler.ts';
import { formatListing } from '../compiler/asm/listing.ts';
import { runInstructions } from '../runtime/vm/index.ts';

const DIR = fileURLToPath(new URL('vm', import.meta.url));

interface DataFile {
  asm?: string;
  raw?: string;
  mem?: string;
  result?: string;
  error?: string;
}

function parse(text: string): DataFile {
  const out: Record<string, string> = {};
  let section: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^-- (\w+)\s*$/.exec(line);
    if (m) {
      section = m[1]!;
      out[section] = '';
    } else if (section) out[section] += `${line}\n`;
  }
  return out as DataFile;
}

const hexBytes = (text: string): Buffer => Buffer.from(text.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');

function program(data: DataFile): Instruction[] {
  if (data.raw !== undefined) return decode(new Uint8Array(hexBytes(data.raw)));
  return assemble(data.asm ?? '').insns;
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.data')).sort();

describe('VM data files', () => {
  it('has data files', () => expect(files.length).toBeGreaterThan(50));
  for (const file of files) {
    it(file, () => {
      const data = parse(readFileSync(join(DIR, file), 'utf8'));
      expect(data.result === undefined, `${file} needs exactly one of -- result / -- error`).toBe(data.error !== undefined);
      const mem = data.mem ? hexBytes(data.mem) : Buffer.alloc(0);
      let retval: bigint | undefined;
      let error: string | undefined;
      let insns: Instruction[] = [];
      try {
        insns = program(data);
        retval = runInstructions(insns, { kind: 'memory', packet: mem }).retval;
      } catch (e) {
        error = (e as Error).message;
      }
      const listing = insns.length ? `\n${formatListing(insns)}` : '';
      if (data.error !== undefined) {
        expect(error, `expected an error${listing}`).toBeDefined();
        expect(error).toContain(data.error.trim());
      } else {
        expect(error, `unexpected error${listing}`).toBeUndefined();
        expect(`0x${retval!.toString(16)}`, listing).toBe(data.result!.trim());
      }
    });
  }

  it('assembled data files survive assemble → disassemble → assemble', () => {
    const fields = (insns: Instruction[]) => insns.map(({ opcode, dst, src, offset, imm, imm2 }) => ({ opcode, dst, src, offset, imm, imm2 }));
    for (const file of files) {
      const data = parse(readFileSync(join(DIR, file), 'utf8'));
      if (data.asm === undefined || data.error !== undefined) continue;
      const insns = assemble(data.asm).insns;
      const text = insns.map((insn) => formatInstruction(insn)).join('\n');
      expect(fields(assemble(text).insns), `${file}\n${text}`).toEqual(fields(insns));
    }
  });
});
