// `ebpf-ts attach --prog NAME --dev DEV --direction ingress|egress [--netns NS]`: attach a loaded
// program (pinned by `load`) through a pinned tcx/XDP link, or clsact + cls_bpf where tcx is
// missing. Optional device settings (--mtu, --gso, --gso-max-size) are recorded and restored
// by detach.
import { join } from 'node:path';
import type { Command } from 'commander';
import { ProgType } from '../../compiler/elf/sections.ts';
import { attachTc, attachXdp, configureDevice, requireCapabilities, resolvePinDir, type Attachment } from '../../runtime/loader/index.ts';
import { objGet, progInfo } from '../../runtime/sys/index.ts';
import { parseCount, runCommand, UsageError } from '../errors.ts';

interface Options {
  prog: string;
  dev: string;
  direction?: string;
  netns?: string;
  object?: string;
  pinDir?: string;
  mode: string;
  mtu?: string;
  gso?: string;
  gsoMaxSize?: string;
}

export function register(program: Command): void {
  program
    .command('attach')
    .description('attach a loaded program to a device (tcx or XDP link, pinned; clsact/cls_bpf fallback)')
    .requiredOption('--prog <name>', 'program name')
    .requiredOption('--dev <dev>', 'network device')
    .option('--direction <dir>', 'ingress or egress (tc programs)')
    .option('--netns <name>', 'network namespace of the device (/run/netns/NAME)')
    .option('--object <name>', 'loaded object (default: the only one)')
    .option('--pin-dir <dir>', 'pin directory of the loaded object')
    .option('--mode <mode>', 'tc: auto, tcx or tc (clsact + cls_bpf); xdp: auto, native or generic', 'auto')
    .option('--mtu <bytes>', 'set the device MTU (restored on detach)')
    .option('--gso <on|off>', 'turn GSO on or off (restored on detach)')
    .option('--gso-max-size <bytes>', 'bound GSO packets (restored on detach)')
    .action((opts: Options) =>
      runCommand(() => {
        requireCapabilities('attach', opts.netns ? ['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN'] : ['CAP_BPF', 'CAP_NET_ADMIN']);
        const pinDir = resolvePinDir(opts);
        let fd;
        try {
          fd = objGet(join(pinDir, 'progs', opts.prog));
        } catch {
          throw new UsageError(`no program "${opts.prog}" loaded at ${pinDir}`, 1);
        }
        const records: Attachment[] = [];
        try {
          if (opts.mtu !== undefined || opts.gso !== undefined || opts.gsoMaxSize !== undefined) {
            if (opts.gso !== undefined && !['on', 'off'].includes(opts.gso)) throw new UsageError(`--gso: expected on or off, got "${opts.gso}"`);
            records.push(configureDevice({
              device: opts.dev,
              netns: opts.netns,
              pinDir,
              mtu: opts.mtu === undefined ? undefined : parseCount('--mtu', opts.mtu),
              gso: opts.gso === undefined ? undefined : opts.gso === 'on',
              gsoMaxSize: opts.gsoMaxSize === undefined ? undefined : parseCount('--gso-max-size', opts.gsoMaxSize),
            }));
          }
          if (progInfo(fd).type === ProgType.XDP) {
            if (!['auto', 'native', 'generic'].includes(opts.mode)) throw new UsageError(`--mode: XDP takes auto, native or generic, not "${opts.mode}"`);
            records.push(attachXdp(fd, { device: opts.dev, netns: opts.netns, pinDir, program: opts.prog, mode: opts.mode as 'auto' }));
          } else {
            if (opts.direction !== 'ingress' && opts.direction !== 'egress') throw new UsageError('--direction: expected ingress or egress');
            if (!['auto', 'tcx', 'tc'].includes(opts.mode)) throw new UsageError(`--mode: tc takes auto, tcx or tc, not "${opts.mode}"`);
            records.push(attachTc(fd, { device: opts.dev, direction: opts.direction, netns: opts.netns, pinDir, program: opts.prog, mode: opts.mode as 'auto' }));
          }
        } finally {
          fd.close();
        }
        for (const r of records) console.log(`attached ${r.id}${r.kind === 'tc' ? ` (clsact/cls_bpf, prio ${r.priority} handle ${r.handle})` : r.kind === 'device' ? ` (${JSON.stringify(r.applied)})` : ''}`);
      }),
    );
}
