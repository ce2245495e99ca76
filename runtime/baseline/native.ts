// --native: the same scenario scripts on the current kernel, without qemu, where that kernel has
// ESP — so the comparison runs unchanged on a distro kernel and on real hardware.
//
// The scripts only ever touch the four namespaces they create (refusing to start when any of
// those names exists) and delete them on exit; the host's own interfaces, SAs and policies are
// never read or changed.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ArchiveEntry } from './initramfs.ts';
import { buildNetprobe } from './tools.ts';
import type { GuestResult } from './qemu.ts';

const GUEST_DIR = new URL('./guest/', import.meta.url).pathname;

/**
 * Why the current kernel cannot run the scenarios natively, or null when it can. Probes by doing:
 * adds an rfc4106(gcm(aes)) SA in a throwaway namespace (autoloading esp4 and the AEAD where the
 * kernel is modular) and deletes the namespace again.
 */
export function nativeUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, xfrm)';
  const ns = `ebpf-ts-probe-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
  } catch (e) {
    return `ip netns add failed: ${(e as { stderr?: Buffer }).stderr?.toString().trim()}`;
  }
  try {
    execFileSync(
      'ip',
      ['-n', ns, 'xfrm', 'state', 'add', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '1',
        'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', `0x${'11'.repeat(20)}`, '128'],
      { stdio: 'pipe' },
    );
    return null;
  } catch (e) {
    const msg = (e as { stderr?: Buffer }).stderr?.toString().trim();
    return `this kernel cannot add an rfc4106(gcm(aes)) ESP SA (${msg}); ESP (CONFIG_INET_ESP) or GCM missing`;
  } finally {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** Runs a scenario's run.sh on the host; results come back in the shape of a guest run. */
export async function runNative(spec: { files: ArchiveEntry[]; deadlineS: number; onLog?: (l: string) => void }): Promise<GuestResult> {
  const work = mkdtempSync(join(tmpdir(), 'ebpf-ts-baseline-native-'));
  const dirs = { SCENARIO: join(work, 'scenario'), RESULTS: join(work, 'results'), SCRATCH: join(work, 'scratch') };
  for (const d of Object.values(dirs)) mkdirSync(d);
  for (const f of spec.files) {
    if (!f.path.startsWith('/scenario/')) throw new Error(`native: unexpected path ${f.path}`);
    const dst = join(dirs.SCENARIO, f.path.slice('/scenario/'.length));
    mkdirSync(dirname(dst), { recursive: true });
    writeFileSync(dst, f.data ?? new Uint8Array(), { mode: f.mode });
  }
  const result: GuestResult = {
    exitStatus: null,
    files: new Map(),
    log: [],
    moduleFailures: [],
    builtinModules: [],
    transportErrors: [],
    consoleTail: [],
    wallMs: 0,
    accel: 'native',
    kernel: { package: 'host kernel', version: '', release: execFileSync('uname', ['-r']).toString().trim(), vmlinuz: '', root: '' },
  };
  const started = Date.now();
  try {
    await new Promise<void>((resolve) => {
      const env = { ...process.env, ...dirs, BASELINE: GUEST_DIR.replace(/\/$/, ''), NETPROBE: buildNetprobe(), NODE_BIN: process.execPath };
      const script = `set -a; . "${dirs.SCENARIO}/env.sh"; set +a; exec sh "${dirs.SCENARIO}/run.sh"`;
      const child = spawn('timeout', ['-s', 'KILL', String(spec.deadlineS), 'sh', '-c', script], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let pending = '';
      const onData = (chunk: Buffer) => {
        pending += chunk.toString();
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          result.log.push(line);
          spec.onLog?.(line);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('close', (code) => {
        result.exitStatus = code;
        resolve();
      });
    });
    for (const name of readdirSync(dirs.RESULTS)) {
      const p = join(dirs.RESULTS, name);
      if (statSync(p).isFile()) result.files.set(name, readFileSync(p));
    }
  } finally {
    result.wallMs = Date.now() - started;
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}
