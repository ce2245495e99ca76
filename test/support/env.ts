// What a test needs from the machine, and a printed reason when it is missing: kernel-dependent
// tests skip visibly, never silently pass.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe } from 'vitest';

export interface Requirement {
  ok: boolean;
  reason: string;
}

const cache = new Map<string, boolean>();
function probe(key: string, fn: () => boolean): boolean {
  let v = cache.get(key);
  if (v === undefined) {
    try {
      v = fn();
    } catch {
      v = false;
    }
    cache.set(key, v);
  }
  return v;
}

export const isRoot = (): Requirement => ({
  ok: process.getuid?.() === 0,
  reason: 'needs root (CAP_BPF, CAP_NET_ADMIN)',
});

export const hasBpffs = (): Requirement => ({
  ok: probe('bpffs', () => execFileSync('stat', ['-f', '-c', '%T', '/sys/fs/bpf']).toString().trim() === 'bpf_fs'),
  reason: 'needs bpffs mounted at /sys/fs/bpf',
});

export const hasVmlinuxBtf = (): Requirement => ({
  ok: existsSync('/sys/kernel/btf/vmlinux'),
  reason: 'needs kernel BTF at /sys/kernel/btf/vmlinux',
});

export const hasTool = (tool: string): Requirement => ({
  ok: probe(`tool:${tool}`, () => {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  }),
  reason: `needs ${tool} on PATH`,
});

/** Linux version as [major, minor]. */
export function kernelVersion(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(execFileSync('uname', ['-r']).toString());
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

export const kernelAtLeast = (major: number, minor: number, what: string): Requirement => {
  const [a, b] = kernelVersion();
  return { ok: a > major || (a === major && b >= minor), reason: `requires Linux ${major}.${minor}: ${what}` };
};

export function all(...reqs: Requirement[]): Requirement {
  const missing = reqs.filter((r) => !r.ok);
  return { ok: missing.length === 0, reason: missing.map((r) => r.reason).join('; ') };
}

/** describe() that skips with a printed reason when a requirement is missing. */
export function describeWith(req: Requirement, name: string, fn: () => void): void {
  if (!req.ok) console.warn(`SKIP ${name}: ${req.reason}`);
  describe.skipIf(!req.ok)(name, fn);
}

/** Root, bpffs and kernel BTF: what every kernel BPF test needs. */
export const kernelBpf = (): Requirement => all(isRoot(), hasBpffs(), hasVmlinuxBtf());
