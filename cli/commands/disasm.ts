// `ebpf-ts disasm OBJ`: a listing of every program and function in an ELF object (ours or
// clang's), with sections, symbols, relocation targets and, where line info exists, source lines.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Instruction } from '../../compiler/asm/instruction.ts';
import { slotOffsets } from '../../compiler/asm/instruction.ts';
import { formatListing } from '../../compiler/asm/listing.ts';
import type { LineInfo } from '../../compiler/btf/types.ts';
import { readObject } from '../../compiler/elf/reader.ts';
import type { MapSpec, Relocation } from '../../compiler/elf/spec.ts';
import { runCommand, UsageError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('disasm')
    .description('disassemble an ELF object: sections, symbols, maps and source lines')
    .argument('<obj>', 'ELF object file')
    .option('--bytes', 'show the encoded bytes of each instruction')
    .option('--llvm', 'print exactly what llvm-objdump prints (loses some operands)')
    .action((file: string, opts: { bytes?: boolean; llvm?: boolean }) =>
      runCommand(async () => {
        let bytes: Buffer;
        try {
          bytes = await readFile(file);
        } catch {
          throw new UsageError(`${file}: cannot read the file`, 1);
        }
        let spec;
        try {
          spec = readObject(bytes);
        } catch (err) {
          throw new UsageError(`${file}: ${(err as Error).message}`, 1);
        }
        const out: string[] = [`${file}: license "${spec.license}"`];
        if (spec.maps.length > 0) {
          out.push('', 'maps:');
          for (const m of spec.maps) out.push(`  ${describeMap(m)}`);
        }
        const listing = (insns: Instruction[], relocs: Relocation[], lines: LineInfo[]) =>
          formatListing(annotate(insns, relocs, lines), { bytes: opts.bytes, dialect: opts.llvm ? 'llvm' : 'lossless' });
        for (const p of spec.programs) {
          out.push('', `Disassembly of section ${p.section} (${p.name}${p.sleepable ? ', sleepable' : ''}):`);
          out.push(listing(p.instructions, p.relocations, p.lineInfo));
        }
        for (const f of spec.functions) {
          out.push('', `Disassembly of function ${f.name} (.text):`);
          out.push(listing(f.instructions, f.relocations, f.lineInfo));
        }
        console.log(out.join('\n'));
      }),
    );
}

function describeMap(m: MapSpec): string {
  const where = m.section ? ` (${m.section})` : '';
  return `${m.name}${where}: type ${m.type}, key ${m.keySize} B, value ${m.valueSize} B, max_entries ${m.maxEntries}${m.flags ? `, flags 0x${m.flags.toString(16)}` : ''}`;
}

/** Attach line info as source locations, and relocation targets as references, for the listing. */
function annotate(insns: Instruction[], relocs: Relocation[], lines: LineInfo[]): Instruction[] {
  const slots = slotOffsets(insns);
  const bySlot = new Map<number, number>();
  slots.forEach((s, i) => i < insns.length && bySlot.set(s, i));
  const out = insns.map((i) => ({ ...i }));
  for (const l of lines) {
    const idx = bySlot.get(l.insnOff / 8);
    if (idx !== undefined && out[idx]!.source === undefined) {
      out[idx]!.source = { file: l.fileName, line: l.line, column: l.column, text: l.lineText };
    }
  }
  for (const r of relocs) {
    const insn = out[r.insn];
    if (insn && insn.reference === undefined) insn.reference = r.offset ? `${r.symbol}+${r.offset}` : r.symbol;
  }
  return out;
}
