// `ebpf-ts run OBJ --prog NAME`: run one program of an ELF object in the userspace VM, with the
// contract of BPF_PROG_TEST_RUN (packet in → verdict and packet out).
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { readObject } from '../../compiler/elf/reader.ts';
import { loadObject } from '../../runtime/vm/index.ts';
import { parseCount, parseHex, runCommand, UsageError } from '../errors.ts';

/** tc/xdp verdict names, for people reading the output. */
const TC_VERDICTS: Record<number, string> = { [-1]: 'TC_ACT_UNSPEC', 0: 'TC_ACT_OK', 1: 'TC_ACT_RECLASSIFY', 2: 'TC_ACT_SHOT', 3: 'TC_ACT_PIPE', 4: 'TC_ACT_STOLEN', 7: 'TC_ACT_REDIRECT' };
const XDP_VERDICTS: Record<number, string> = { 0: 'XDP_ABORTED', 1: 'XDP_DROP', 2: 'XDP_PASS', 3: 'XDP_TX', 4: 'XDP_REDIRECT' };

export function register(program: Command): void {
  program
    .command('run')
    .description('run a program of an ELF object in the userspace VM over a packet')
    .argument('<obj>', 'ELF object file (ours or clang\'s)')
    .option('--prog <name>', 'program to run (default: the only one)')
    .option('--packet <hex|@file>', 'input packet as hex bytes, or @FILE for raw bytes', '')
    .option('--repeat <n>', 'run N times and report ns/run', '1')
    .option('--json', 'print the result as JSON')
    .action((file: string, opts: { prog?: string; packet: string; repeat: string; json?: boolean }) =>
      runCommand(async () => {
        const repeat = parseCount('--repeat', opts.repeat);
        if (repeat < 1) throw new UsageError('--repeat: must be at least 1');
        const packet = opts.packet.startsWith('@') ? await readBytes(opts.packet.slice(1)) : parseHex('--packet', opts.packet);
        let spec;
        try {
          spec = readObject(await readBytes(file));
        } catch (err) {
          if (err instanceof UsageError) throw err;
          throw new UsageError(`${file}: ${(err as Error).message}`, 1);
        }
        const names = spec.programs.map((p) => p.name);
        const name = opts.prog ?? (names.length === 1 ? names[0] : undefined);
        if (name === undefined) throw new UsageError(`${file} has ${names.length} programs; pick one with --prog (${names.join(', ')})`);
        const prog = spec.programs.find((p) => p.name === name);
        if (!prog) throw new UsageError(`${file}: no program "${name}" (have: ${names.join(', ') || 'none'})`);
        const vm = loadObject(spec);
        const r = vm.runProgram(name, { packet, repeat });
        const retval = Number(BigInt.asIntN(32, r.retval));
        const verdicts = prog.section.startsWith('xdp') ? XDP_VERDICTS : prog.section.startsWith('tc') || prog.section === 'classifier' ? TC_VERDICTS : {};
        const result = {
          program: name,
          retval,
          verdict: verdicts[retval],
          packet: r.packet.toString('hex'),
          redirect: r.redirect,
          instructions: r.instructions,
          nsPerRun: repeat > 1 ? Math.round(r.durationNs) : undefined,
          trace: r.trace.length > 0 ? r.trace : undefined,
        };
        if (opts.json) {
          console.log(JSON.stringify(result, null, 2));
          return;
        }
        console.log(`program:  ${name} (section ${prog.section})`);
        console.log(`retval:   ${retval}${result.verdict ? ` (${result.verdict})` : ''}`);
        if (r.redirect) console.log(`redirect: ifindex ${r.redirect.ifindex}${r.redirect.neigh ? ' via neighbour' : ''}`);
        console.log(`packet:   ${result.packet || '(empty)'} (${r.packet.length} bytes)`);
        if (repeat > 1) console.log(`time:     ${result.nsPerRun} ns/run over ${repeat} runs`);
        for (const line of r.trace) console.log(`trace:    ${line}`);
      }),
    );
}

async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    throw new UsageError(`${path}: cannot read the file`, 1);
  }
}
