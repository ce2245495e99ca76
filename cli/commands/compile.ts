// `ebpf-ts compile SRC.ts -o OUT.o`: a thin wrapper over the compiler's entry point
// (compiler/compile.ts): diagnostics to stderr, the ELF object to OUT.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { runCommand, UsageError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('compile')
    .description('compile a TypeScript DSL program into a BPF ELF object')
    .argument('<src>', 'TypeScript source')
    .option('-o, --output <obj>', 'output object (default: bpf-out/<name>.o)')
    .option('--listing', 'also write the text listing (with source lines) beside the object, as <obj>.lst')
    .action((src: string, opts: { output?: string; listing?: boolean }) =>
      runCommand(async () => {
        const { compileFile, formatDiagnostic } = await import('../../compiler/compile.ts');
        const result = compileFile(src, { elf: true });
        for (const d of result.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
        if (result.failed || !result.elf) {
          const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
          throw new UsageError(`${src}: ${errors} error${errors === 1 ? '' : 's'}; no object written`, 1);
        }
        const out = opts.output ?? join('bpf-out', basename(src).replace(/\.ts$/, '') + '.o');
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, new Uint8Array(result.elf.buffer, result.elf.byteOffset, result.elf.length));
        if (opts.listing) {
          const { formatListing } = await import('../../compiler/asm/listing.ts');
          const sections = [...result.object.programs.map((p) => ({ title: `section ${p.section}: ${p.name}`, insns: p.instructions })), ...result.object.functions.map((f) => ({ title: `.text: ${f.name}`, insns: f.instructions }))];
          const text = sections.map((s) => `; ${s.title}\n${formatListing(s.insns)}`).join('\n\n');
          writeFileSync(`${out}.lst`, `; ${basename(out)}: compiled by ebpf-ts from ${basename(src)}\n${text}\n`);
        }
        console.log(`wrote ${out} (${result.object.programs.length} program${result.object.programs.length === 1 ? '' : 's'}, ${result.object.maps.length} map${result.object.maps.length === 1 ? '' : 's'})`);
      }),
    );
}
