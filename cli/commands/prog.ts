// `ebpf-ts prog run OBJ --prog NAME --packet HEX`: run a program once in the kernel
// (BPF_PROG_TEST_RUN) on a packet, or on a context for syscall programs. OBJ is an ELF file
// (loaded privately for the run, maps not pinned) or the name of a loaded object.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_PIN_ROOT, openObject, ProgramLoadError, requireCapabilities } from '../../runtime/loader/index.ts';
import { ProgType } from '../../compiler/elf/sections.ts';
import { objGet, progInfo, progTestRun, type FD } from '../../runtime/sys/index.ts';
import { parseCount, parseHex, runCommand, UsageError } from '../errors.ts';

interface Options {
  prog: string;
  packet?: string;
  ctx?: string;
  repeat?: string;
  verbose?: boolean;
}

export function register(program: Command): void {
  const prog = program.command('prog').description('programs: run one in the kernel');
  prog
    .command('run')
    .description('run a program once with BPF_PROG_TEST_RUN and print its return value and output')
    .argument('<obj>', 'ELF object file, or the name of a loaded object')
    .requiredOption('--prog <name>', 'program name')
    .option('--packet <hex>', 'input packet (tc, XDP)')
    .option('--ctx <hex>', 'input context (syscall programs: their argument struct)')
    .option('--repeat <n>', 'run this many times (the duration is the mean)')
    .option('--verbose', 'print the whole verifier log when the program is refused')
    .action((obj: string, opts: Options) =>
      runCommand(() => {
        requireCapabilities('prog run', ['CAP_BPF']);
        const dataIn = opts.packet !== undefined ? parseHex('--packet', opts.packet) : undefined;
        const ctxIn = opts.ctx !== undefined ? parseHex('--ctx', opts.ctx) : undefined;
        const repeat = opts.repeat !== undefined ? parseCount('--repeat', opts.repeat) : undefined;
        const pinned = join(DEFAULT_PIN_ROOT, obj, 'progs', opts.prog);
        let fd: FD;
        let close: () => void;
        let syscall = false;
        if (!obj.includes('/') && !obj.endsWith('.o') && existsSync(pinned)) {
          fd = objGet(pinned);
          syscall = progInfo(fd).type === ProgType.SYSCALL;
          close = () => fd.close();
        } else {
          if (!existsSync(obj)) throw new UsageError(`${obj}: no such object file or loaded object`, 1);
          const o = openObject(obj);
          try {
            o.prepare({ pinning: false }).load({ programs: [opts.prog] });
          } catch (e) {
            if (e instanceof ProgramLoadError && !opts.verbose) throw new UsageError(e.tail(), 1);
            throw e;
          }
          fd = o.program(opts.prog).fd;
          syscall = o.program(opts.prog).type === ProgType.SYSCALL;
          close = () => o.close();
        }
        try {
          // Syscall programs take only a context, which they write back in place.
          const r = syscall ? progTestRun(fd, { ctxIn, dataSizeOut: 0, ctxSizeOut: 0 }) : progTestRun(fd, { dataIn, ctxIn, repeat });
          if (syscall && ctxIn) console.log(`ctx after: ${ctxIn.toString('hex')}`);
          console.log(`retval ${r.retval} (0x${(r.retval >>> 0).toString(16)}), duration ${r.duration} ns`);
          if (dataIn) console.log(`packet out (${r.dataOut.length} bytes): ${r.dataOut.toString('hex')}`);
          if (r.ctxOut && r.ctxOut.length > 0) console.log(`ctx out: ${r.ctxOut.toString('hex')}`);
        } finally {
          close();
        }
      }),
    );
}
