// `ebpf-ts conformance-plugin`: the plugin protocol of the public bpf_conformance suite (as ubpf,
// rbpf and PREVAIL speak it). The program comes as hex bytes on stdin, the memory as one argument.
import type { Command } from 'commander';
import { conformancePlugin } from '../../runtime/vm/conformance.ts';

export function register(program: Command): void {
  program
    .command('conformance-plugin')
    .description('run a program in the VM per the bpf_conformance plugin protocol (program hex on stdin)')
    .argument('[memory]', 'memory r1 points to, as hex bytes separated by whitespace')
    .option('--elf', 'stdin is a hex-encoded ELF object whose program is the function "main"')
    .allowUnknownOption(false)
    .action(async (memory: string | undefined, opts: { elf?: boolean }) => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      const argv = [...(memory !== undefined ? [memory] : []), ...(opts.elf ? ['--elf'] : [])];
      const r = conformancePlugin(argv, Buffer.concat(chunks).toString('utf8'));
      if (r.stdout) process.stdout.write(r.stdout.endsWith('\n') ? r.stdout : `${r.stdout}\n`);
      if (r.stderr) process.stderr.write(r.stderr.endsWith('\n') ? r.stderr : `${r.stderr}\n`);
      process.exitCode = r.exitCode;
    });
}
