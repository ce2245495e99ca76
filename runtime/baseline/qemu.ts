// Runs one scenario in a throwaway qemu guest: files in (an initramfs), a shell script run by the
// guest's init (guest/init.sh), result files out over the serial console, power off.
//
// The guest has no network device (-nic none): everything it sends stays in namespaces inside it.
// Acceleration: TCG by default, because /dev/kvm here is kvm-pvm, on which stock Debian kernels
// crash while booting; `accel: 'kvm'` for a normal Linux host.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { binaryWithLibraries, mergeEntries, writeNewc, type ArchiveEntry } from './initramfs.ts';
import { readModule, resolveModules, type GuestKernel } from './kernel.ts';
import { buildNetprobe } from './tools.ts';

export type Accel = 'tcg' | 'kvm';
/** Where a scenario ran: a qemu guest (TCG or KVM) or the host kernel (--native). */
export type Execution = Accel | 'native';

const GUEST_DIR = new URL('./guest/', import.meta.url).pathname;

/**
 * Modules every scenario gets. esp4 and xfrm_user for ESP and `ip xfrm`; gcm, the AES-NI and
 * CLMUL drivers, seqiv/echainiv (IV generators) and ctr/ghash_generic as fallbacks, because
 * without modprobe the crypto API cannot load a missing template on demand and `ip xfrm state
 * add` fails with "Kernel was unable to initialize cryptographic operations". drbg and ecb are
 * asked for by name: loaded where modular, recorded as built in where not (6.12 builds them in).
 * veth, clsact (sch_ingress), u32 and skbedit for the topology and Cilium's marks; cls_bpf and
 * act_bpf for the engine.
 */
export const BASE_MODULES = [
  'xfrm_user', 'af_key', 'esp4', 'xfrm4_tunnel',
  'drbg', 'ecb', 'cbc', 'ctr', 'gcm', 'ghash_generic', 'seqiv', 'echainiv',
  'aesni_intel', 'ghash_clmulni_intel',
  'veth', 'sch_ingress', 'cls_u32', 'act_skbedit', 'act_mirred', 'cls_bpf', 'act_bpf',
] as const;

export type GuestBinary = string | { host: string; guest: string };

export interface GuestSpec {
  kernel: GuestKernel;
  /** Files of the scenario; `/scenario/run.sh` (sh) and `/scenario/env.sh` are required. */
  files: ArchiveEntry[];
  /** Extra host executables to copy with their shared libraries (e.g. a loader); `{ host, guest }`
   *  puts a host file (a stripped copy) at another path in the guest. */
  binaries?: GuestBinary[];
  /** Extra module names on top of BASE_MODULES. */
  modules?: string[];
  /** Seconds the guest gives run.sh before killing it and sending what results exist. */
  deadlineS: number;
  accel?: Accel;
  memoryMiB?: number;
  cpus?: number;
  /** Each line the scenario prints, as it arrives. */
  onLog?: (line: string) => void;
}

export interface GuestResult {
  /** run.sh's exit status; null when the guest never reported one (crash, host timeout). */
  exitStatus: number | null;
  files: Map<string, Buffer>;
  log: string[];
  moduleFailures: string[];
  builtinModules: string[];
  /** Protocol violations: a file whose length or SHA-256 did not match, a truncated record. */
  transportErrors: string[];
  /** The last console lines, for failure messages. */
  consoleTail: string[];
  wallMs: number;
  accel: Execution;
  kernel: GuestKernel;
}

/** Everything but the scenario: busybox, iproute2, netprobe, the module closure, init. */
export function baseEntries(kernel: GuestKernel, extraModules: readonly string[] = [], binaries: readonly GuestBinary[] = []) {
  const closure = resolveModules(kernel, [...BASE_MODULES, ...extraModules]);
  const modules: ArchiveEntry[] = closure.files.map((f, i) => ({
    path: `/lib/modules/baseline/${String(i).padStart(3, '0')}-${basename(f).replace(/\.(xz|zst|gz)$/, '')}`,
    mode: 0o644,
    data: readModule(f),
  }));
  const load = modules.map((m) => basename(m.path)).join('\n') + '\n';
  const entries = mergeEntries(
    [{ path: '/init', mode: 0o755, data: readFileSync(join(GUEST_DIR, 'init.sh')) }],
    binaryWithLibraries('/bin/busybox'),
    binaryWithLibraries('/usr/sbin/ip'),
    binaryWithLibraries('/usr/sbin/tc'),
    // ethtool: the pods' offloads off (lib.sh's pod_up), so they send complete checksums.
    ...(existsSync('/usr/sbin/ethtool') ? [binaryWithLibraries('/usr/sbin/ethtool')] : []),
    [{ path: '/usr/local/bin/netprobe', mode: 0o755, data: readFileSync(buildNetprobe()) }],
    [{ path: '/baseline/lib.sh', mode: 0o644, data: readFileSync(join(GUEST_DIR, 'lib.sh')) }],
    modules,
    [{ path: '/lib/modules/baseline/modules.load', mode: 0o644, data: Buffer.from(load) }],
    ...binaries.map((b) => (typeof b === 'string' ? binaryWithLibraries(b) : binaryWithLibraries(b.host, b.guest))),
  );
  return { entries, builtin: closure.builtin };
}

/** Is qemu-system-x86_64 on PATH? */
export function hasQemu(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v qemu-system-x86_64'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function qemuArgs(k: GuestKernel, initrd: string, accel: Accel, memoryMiB: number, cpus: number): string[] {
  return [
    ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    '-smp', String(cpus),
    '-m', `${memoryMiB}M`,
    '-nographic',
    '-nic', 'none',
    '-no-reboot',
    '-kernel', k.vmlinuz,
    '-initrd', initrd,
    // quiet + loglevel=1: kernel messages must not interleave with the result records.
    '-append', 'console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init',
  ];
}

/** Boots the guest, runs the scenario, collects its results. Never leaves a qemu or temp file. */
export async function runGuest(spec: GuestSpec): Promise<GuestResult> {
  const accel = spec.accel ?? 'tcg';
  const base = baseEntries(spec.kernel, spec.modules ?? [], spec.binaries ?? []);
  const scenario: ArchiveEntry[] = [
    ...spec.files,
    { path: '/scenario/deadline', mode: 0o644, data: Buffer.from(`${spec.deadlineS}\n`) },
  ];
  for (const required of ['/scenario/run.sh', '/scenario/env.sh']) {
    if (!scenario.some((e) => e.path === required)) throw new Error(`guest scenario lacks ${required}`);
  }
  const work = mkdtempSync(join(tmpdir(), 'ebpf-ts-baseline-'));
  const initrd = join(work, 'initrd.cpio');
  writeFileSync(initrd, writeNewc(mergeEntries(base.entries, scenario)));

  const result: GuestResult = {
    exitStatus: null,
    files: new Map(),
    log: [],
    moduleFailures: [],
    builtinModules: base.builtin,
    transportErrors: [],
    consoleTail: [],
    wallMs: 0,
    accel,
    kernel: spec.kernel,
  };
  // Boot (~5 s under TCG) and the transfer of results come on top of the guest's own deadline.
  const hostTimeoutMs = (spec.deadlineS + 60) * 1000;
  const started = Date.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        'qemu-system-x86_64',
        qemuArgs(spec.kernel, initrd, accel, spec.memoryMiB ?? 1024, spec.cpus ?? 2),
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const timer = setTimeout(() => {
        result.transportErrors.push(`guest did not power off within ${hostTimeoutMs / 1000} s; killed`);
        child.kill('SIGKILL');
      }, hostTimeoutMs);
      let pending = '';
      let file: { name: string; size: number; sha: string; lines: string[] } | null = null;
      const onLine = (raw: string) => {
        const line = raw.replace(/\r$/, '').replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, '');
        result.consoleTail.push(line);
        if (result.consoleTail.length > 40) result.consoleTail.shift();
        if (file) {
          if (line === `@@ENDFILE ${file.name}`) {
            const data = Buffer.from(file.lines.join(''), 'base64');
            const sha = createHash('sha256').update(data).digest('hex');
            if (data.length !== file.size || sha !== file.sha) {
              result.transportErrors.push(`${file.name}: got ${data.length} bytes sha256 ${sha}, expected ${file.size} ${file.sha}`);
            } else {
              result.files.set(file.name, data);
            }
            file = null;
          } else if (/^[A-Za-z0-9+/=]*$/.test(line)) {
            file.lines.push(line);
          } else {
            result.transportErrors.push(`${file.name}: stray console line inside the record: ${JSON.stringify(line)}`);
          }
          return;
        }
        let m: RegExpExecArray | null;
        // The firmware's terminal resets (ESC c, ESC [2J) can precede the first record on a line.
        const at = line.indexOf('@@');
        if (at > 0) return onLine(line.slice(at));
        if ((m = /^@@LOG (.*)$/.exec(line))) {
          result.log.push(m[1]);
          spec.onLog?.(m[1]);
        } else if ((m = /^@@FILE (\S+) (\d+) ([0-9a-f]{64})$/.exec(line))) {
          file = { name: m[1], size: Number(m[2]), sha: m[3], lines: [] };
        } else if ((m = /^@@MODULE-FAIL (\S+)$/.exec(line))) {
          result.moduleFailures.push(m[1]);
        } else if ((m = /^@@EXIT (\d+)$/.exec(line))) {
          result.exitStatus = Number(m[1]);
        }
      };
      child.stdout.on('data', (chunk: Buffer) => {
        pending += chunk.toString('latin1');
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          onLine(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (pending) onLine(pending);
        if (file) result.transportErrors.push(`${file.name}: console ended inside the record`);
        if (code !== 0 && result.exitStatus === null && stderr.trim()) {
          result.transportErrors.push(`qemu exited ${code}: ${stderr.trim().split('\n').slice(-3).join('; ')}`);
        }
        resolve();
      });
    });
  } finally {
    result.wallMs = Date.now() - started;
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}

/** A one-paragraph account of a failed guest run, for error messages. */
export function describeFailure(r: GuestResult): string {
  return [
    `guest exit status ${r.exitStatus ?? 'none'} after ${(r.wallMs / 1000).toFixed(1)} s (${r.accel})`,
    ...r.transportErrors.map((e) => `transport: ${e}`),
    ...r.moduleFailures.map((m) => `insmod failed: ${m}`),
    '--- scenario log (last 30 lines) ---',
    ...r.log.slice(-30),
    ...(r.log.length === 0 ? ['--- console (last lines) ---', ...r.consoleTail] : []),
  ].join('\n');
}
