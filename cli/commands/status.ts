// `ebpf-ts status [--json]`: our loaded objects (one directory each under the pin root), their
// programs, maps with entry counts, and attachments (tcx/XDP links, cls_bpf filters, device
// settings), read back from bpffs and the kernel.
import type { Command } from 'commander';
import { ProgType } from '../../compiler/elf/sections.ts';
import { DEFAULT_PIN_ROOT, loadedObjects, objectStatus, requireCapabilities } from '../../runtime/loader/index.ts';
import { join } from 'node:path';
import { runCommand } from '../errors.ts';

const progTypeNames = new Map<number, string>(Object.entries(ProgType).map(([k, v]) => [v, k.toLowerCase()]));

export function register(program: Command): void {
  program
    .command('status')
    .description('show loaded programs, maps (with entry counts), links and devices')
    .option('--json', 'machine-readable output')
    .option('--pin-dir <dir>', 'only this object')
    .action((opts: { json?: boolean; pinDir?: string }) =>
      runCommand(() => {
        requireCapabilities('status', ['CAP_BPF']);
        const dirs = opts.pinDir ? [opts.pinDir] : loadedObjects().map((n) => join(DEFAULT_PIN_ROOT, n));
        const objects = dirs.map((d) => objectStatus(d));
        if (opts.json) {
          const devices = objects.flatMap((o) => o.attachments.map((a) => ({ object: o.name, device: a.record.device, netns: a.record.netns ?? null, ...('direction' in a.record ? { direction: a.record.direction } : {}), kind: a.record.kind })));
          console.log(JSON.stringify({
            objects: objects.map((o) => ({
              name: o.name,
              pinDir: o.pinDir,
              programs: o.programs.map((p) => ({ ...p, typeName: progTypeNames.get(p.type) ?? String(p.type) })),
              maps: o.maps,
              links: o.attachments.filter((a) => a.record.kind !== 'device').map((a) => ({ ...a.record, live: a.live })),
              devices: o.attachments.filter((a) => a.record.kind === 'device').map((a) => a.record),
            })),
            devices,
          }, null, 2));
          return;
        }
        if (objects.length === 0) {
          console.log(`nothing loaded under ${DEFAULT_PIN_ROOT}`);
          return;
        }
        const out: string[] = [];
        for (const o of objects) {
          out.push(`${o.name} (${o.pinDir})`);
          for (const p of o.programs) out.push(`  program ${p.name}: id ${p.id}, ${progTypeNames.get(p.type) ?? p.type}, tag ${p.tag}`);
          for (const m of o.maps) out.push(`  map ${m.name}: id ${m.id}, ${m.entries}/${m.maxEntries} entries, key ${m.keySize} B, value ${m.valueSize} B`);
          for (const a of o.attachments) {
            const r = a.record;
            const where = `${r.device}${r.netns ? ` (netns ${r.netns})` : ''}`;
            if (r.kind === 'device') out.push(`  device ${where}: ${JSON.stringify(r.applied)} (was ${JSON.stringify(r.previous)})`);
            else out.push(`  ${r.kind} ${'direction' in r ? `${r.direction} ` : ''}${where}: program ${r.program}${a.live ? '' : ' [detached]'}`);
          }
        }
        console.log(out.join('\n'));
      }),
    );
}
