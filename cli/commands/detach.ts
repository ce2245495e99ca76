// `ebpf-ts detach`: undo recorded attachments. With no --dev/--direction/--prog filter it removes
// everything of the object: attachments, device settings, then every pin (programs, maps, links),
// so no program, link or pin stays behind. --keep-pins detaches but leaves the object loaded.
import type { Command } from 'commander';
import { detach, requireCapabilities, resolvePinDir, unload, type Direction } from '../../runtime/loader/index.ts';
import { runCommand, UsageError } from '../errors.ts';

interface Options {
  object?: string;
  pinDir?: string;
  dev?: string;
  direction?: string;
  netns?: string;
  prog?: string;
  keepPins?: boolean;
}

export function register(program: Command): void {
  program
    .command('detach')
    .description('detach what attach did; without filters also unpin the object (programs, maps, links)')
    .option('--object <name>', 'loaded object (default: the only one)')
    .option('--pin-dir <dir>', 'pin directory of the loaded object')
    .option('--dev <dev>', 'only attachments on this device')
    .option('--direction <dir>', 'only this direction (ingress or egress)')
    .option('--netns <name>', 'only attachments in this network namespace')
    .option('--prog <name>', 'only attachments of this program')
    .option('--keep-pins', 'leave the object loaded (pinned)')
    .action((opts: Options) =>
      runCommand(() => {
        requireCapabilities('detach', ['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
        if (opts.direction !== undefined && opts.direction !== 'ingress' && opts.direction !== 'egress') throw new UsageError('--direction: expected ingress or egress');
        const pinDir = resolvePinDir(opts);
        const filtered = opts.dev !== undefined || opts.direction !== undefined || opts.netns !== undefined || opts.prog !== undefined;
        const filter = { device: opts.dev, direction: opts.direction as Direction | undefined, netns: opts.netns, program: opts.prog };
        const result = filtered || opts.keepPins ? detach(pinDir, filter) : unload(pinDir);
        for (const r of result.detached) console.log(`detached ${r.id}`);
        for (const r of result.stale) console.log(`removed stale record ${r.id} (already gone)`);
        if (!filtered && !opts.keepPins) console.log(`unpinned ${pinDir}`);
      }),
    );
}
