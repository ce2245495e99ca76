// `ebpf-ts asm FILE`: assemble LLVM-syntax BPF assembly. Prints a listing, or with -o writes an
// ELF object (one program, in the section given) that bpftool, tc and our loader take.
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { assemble, AssemblyError } from '../../compiler/asm/assembler.ts';
import { encode } from '../../compiler/asm/instruction.ts';
import { formatListing } from '../../compiler/asm/listing.ts';
import { sectionDef } from '../../compiler/elf/sections.ts';
import { writeObject } from '../../compiler/elf/writer.ts';
import { runCommand, UsageError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('asm')
    .description('assemble BPF assembly (llvm-objdump syntax) into a listing or an ELF object')
    .argument('<file>', 'assembly source ("-" for stdin)')
    .option('-o, --output <obj>', 'write an ELF object instead of printing a listing')
    .option('--section <name>', 'ELF section of the program (libbpf naming)', 'tc')
    .option('--name <name>', 'program name (default: the file name)')
    .option('--license <text>', 'license string', 'GPL')
    .option('--hex', 'print the bytecode as hex bytes')
    .action((file: string, opts: { output?: string; section: string; name?: string; license: string; hex?: boolean }) =>
      runCommand(async () => {
        const text = file === '-' ? await readStdin() : await readText(file);
        let insns;
        try {
          insns = assemble(text, { file }).insns;
        } catch (err) {
          if (err instanceof AssemblyError) throw new UsageError(err.message, 1);
          throw err;
        }
        if (insns.length === 0) throw new UsageError(`${file}: no instructions`, 1);
        if (opts.hex) {
          console.log([...encode(insns)].map((b) => b.toString(16).padStart(2, '0')).join(' '));
          return;
        }
        if (!opts.output) {
          console.log(formatListing(insns, { bytes: true }));
          return;
        }
        const def = sectionDef(opts.section);
        if (!def) throw new UsageError(`--section: "${opts.section}" is not a program section libbpf knows (try tc, xdp, syscall, socket)`);
        const name = opts.name ?? (basename(file).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_]/g, '_') || 'prog');
        insns[0] = { ...insns[0]!, symbol: name };
        const elf = writeObject({
          license: opts.license,
          programs: [{ name, section: opts.section, ...def, instructions: insns, relocations: [], funcInfo: [], lineInfo: [] }],
          functions: [],
          maps: [],
          variables: [],
        });
        await writeFile(opts.output, elf);
        console.log(`${opts.output}: ${insns.length} instructions in section "${opts.section}", program ${name}`);
      }),
    );
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 1);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
