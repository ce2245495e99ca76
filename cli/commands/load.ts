// `ebpf-ts load OBJ [--pin-dir DIR]`: open → prepare → load, then pin every program and map under
// the object's pin directory so they outlive this process (attach, map and status find them there).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_PIN_ROOT, objectNameOf, openObject, ProgramLoadError, requireCapabilities, unload } from '../../runtime/loader/index.ts';
import { runCommand, UsageError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('load')
    .description('load an ELF object (ours or clang\'s) into the kernel and pin its programs and maps')
    .argument('<obj>', 'ELF object file')
    .option('--pin-dir <dir>', `bpffs directory for the object (default ${DEFAULT_PIN_ROOT}/<object>)`)
    .option('--name <name>', 'object name (default: the file name without .o)')
    .option('--verbose', 'print the whole verifier log when a program is refused')
    .option('--log-level <n>', 'verifier log level for successful loads too (1 or 2)')
    .action((file: string, opts: { pinDir?: string; name?: string; verbose?: boolean; logLevel?: string }) =>
      runCommand(() => {
        requireCapabilities('load', ['CAP_BPF']);
        const name = opts.name ?? objectNameOf(file);
        const pinDir = opts.pinDir ?? join(DEFAULT_PIN_ROOT, name);
        if (existsSync(join(pinDir, 'progs'))) throw new UsageError(`${name} is already loaded at ${pinDir}; run ebpf-ts detach --pin-dir ${pinDir} first`, 1);
        const obj = openObject(file, { name });
        try {
          obj.prepare({ pinDir }).load({ logLevel: opts.logLevel ? Number(opts.logLevel) : undefined });
          obj.pinPrograms();
          obj.pinMaps();
        } catch (e) {
          obj.close();
          unload(pinDir); // nothing half-loaded stays pinned
          if (e instanceof ProgramLoadError && !opts.verbose) throw new UsageError(e.tail(), 1);
          throw e;
        }
        for (const w of obj.warnings) process.stderr.write(`ebpf-ts: warning: ${w}\n`);
        const lines = [`loaded ${name} at ${pinDir}`];
        for (const [n, p] of obj.programs) lines.push(`  program ${n}: id ${p.info().id}, ${p.linked.instructions.length} instructions`);
        for (const [n, m] of obj.maps) lines.push(`  map ${n}: id ${m.info.id}, pinned at ${m.pinnedAt}`);
        console.log(lines.join('\n'));
        obj.close();
      }),
    );
}
