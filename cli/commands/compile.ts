// `ebpf-ts compile SRC.ts -o OUT.o`: a thin wrapper over the compiler's entry point
// (compiler/compile.ts): diagnostics to stderr, the ELF object to OUT.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { runCommand, UsageError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('compile')
    .description('compile a TypeScript DSL program into a BPF ELF object')
    .argument('<src>', 'TypeScript source')
    .option('-o, --output <obj>', 'output object (default: SRC with .o)')
    .action((src: string, opts: { output?: string }) =>
      runCommand(async () => {
        const { compileFile, formatDiagnostic } = await import('../../compiler/compile.ts');
        const result = compileFile(src, { elf: true });
        for (const d of result.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
        if (result.failed || !result.elf) {
          const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
          throw new UsageError(`${src}: ${errors} error${errors === 1 ? '' : 's'}; no object written`, 1);
        }
        const out = opts.output ?? src.replace(/\.ts$/, '') + '.o';
        writeFileSync(out, new Uint8Array(result.elf.buffer, result.elf.byteOffset, result.elf.length));
        console.log(`wrote ${out} (${result.object.programs.length} program${result.object.programs.length === 1 ? '' : 's'}, ${result.object.maps.length} map${result.object.maps.length === 1 ? '' : 's'})`);
      }),
    );
}
