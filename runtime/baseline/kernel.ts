// The guest kernel: Debian's linux-image-6.12*-amd64-unsigned from bookworm-backports, fetched
// with apt's ordinary client under a private configuration, unpacked once into the cache, and the
// module closure a scenario needs resolved on the host (the guest has no modprobe).
//
// Why that package: it has esp4, gcm, AES-NI, cls_bpf and the bpf_crypto kfuncs, and it is what
// a Debian host would run. Why "unsigned": the image is the same kernel without the Secure Boot
// signature wrapper, which a direct -kernel boot does not need.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface GuestKernel {
  /** Debian package name, e.g. linux-image-6.12.95+deb12-amd64-unsigned */
  package: string;
  /** Package version, e.g. 6.12.95-1~bpo12+1 */
  version: string;
  /** uname -r of the guest, e.g. 6.12.95+deb12-amd64 */
  release: string;
  vmlinuz: string;
  /** Directory holding lib/modules/<release>, depmod already run (modprobe -d root). */
  root: string;
}

export class KernelUnavailable extends Error {}

/** $EBPF_TS_CACHE, else $XDG_CACHE_HOME/ebpf-ts, else ~/.cache/ebpf-ts; always outside the tree. */
export function cacheDir(): string {
  const base =
    process.env.EBPF_TS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ebpf-ts');
  return join(base, 'baseline');
}

const SUITE = 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main';
// The package name pattern; EBPF_TS_BASELINE_KERNEL pins an exact package instead.
const PACKAGE = /^linux-image-(6\.12\.(\d+)\+deb12)-amd64-unsigned$/;

function sh(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, {
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 300_000,
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    }).toString();
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    const detail = err.stderr?.toString().trim().split('\n').slice(-3).join('; ') || err.message;
    throw new KernelUnavailable(`${cmd} ${args.slice(-2).join(' ')}: ${detail}`);
  }
}

/**
 * apt's ordinary client with every path it writes moved into the cache: the machine's sources,
 * lists, package cache and archives stay untouched. The keyring and apt.conf.d (proxies) are the
 * machine's, on purpose.
 */
function aptOptions(aptDir: string): string[] {
  return [
    '-q',
    '-o', `Dir::Etc::sourcelist=${join(aptDir, 'sources.list')}`,
    '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::Cache=${join(aptDir, 'cache')}`,
    '-o', `Dir::Cache::Archives=${join(aptDir, 'archives')}`,
  ];
}

function prepareApt(aptDir: string): string[] {
  for (const d of ['lists/partial', 'cache', 'archives/partial', 'debs']) mkdirSync(join(aptDir, d), { recursive: true });
  writeFileSync(join(aptDir, 'sources.list'), SUITE + '\n');
  return aptOptions(aptDir);
}

function pickPackage(names: string[]): string {
  const pinned = process.env.EBPF_TS_BASELINE_KERNEL;
  if (pinned) {
    if (!names.includes(pinned)) throw new KernelUnavailable(`EBPF_TS_BASELINE_KERNEL=${pinned} is not in bookworm-backports`);
    return pinned;
  }
  const candidates = names
    .map((n) => ({ n, m: PACKAGE.exec(n) }))
    .filter((c) => c.m)
    .sort((a, b) => Number(b.m![2]) - Number(a.m![2]));
  if (candidates.length === 0) throw new KernelUnavailable('no linux-image-6.12.*-amd64-unsigned in bookworm-backports');
  return candidates[0].n;
}

export interface EnsureKernelOptions {
  /** Fetch the newest package even when a kernel is cached. */
  refresh?: boolean;
  log?: (line: string) => void;
}

function cachedKernel(current: string): GuestKernel | null {
  if (!existsSync(current)) return null;
  const k = JSON.parse(readFileSync(current, 'utf8')) as GuestKernel;
  return existsSync(k.vmlinuz) && existsSync(join(k.root, 'lib/modules', k.release, 'modules.dep')) ? k : null;
}

/**
 * Serialises cache updates between processes (the test suite and `npm run baseline` may start
 * together): a lock directory holding the owner's pid, taken over when that process is gone.
 */
function withCacheLock<T>(dir: string, fn: () => T): T {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'lock');
  const deadline = Date.now() + 20 * 60_000;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(existsSync(join(lock, 'pid')) ? readFileSync(join(lock, 'pid'), 'utf8') : NaN);
      let alive = true;
      try {
        if (Number.isInteger(owner)) process.kill(owner, 0);
      } catch {
        alive = false;
      }
      if (!alive) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new KernelUnavailable(`cache lock ${lock} held by pid ${owner} for 20 minutes`);
      else Atomics.wait(sleeper, 0, 0, 500);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Returns the cached guest kernel, downloading and unpacking it first when needed. */
export function ensureKernel(opts: EnsureKernelOptions = {}): GuestKernel {
  const dir = cacheDir();
  const current = join(dir, 'kernel', 'current.json');
  if (!opts.refresh) {
    const k = cachedKernel(current);
    if (k) return k;
  }
  return withCacheLock(dir, () => {
    // Another process may have finished the download while we waited for the lock.
    const k = opts.refresh ? null : cachedKernel(current);
    return k ?? fetchKernel(dir, current, opts.log ?? (() => {}));
  });
}

function fetchKernel(dir: string, current: string, log: (line: string) => void): GuestKernel {
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'depmod']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new KernelUnavailable(`${tool} not found (a Debian host with apt and kmod is needed)`);
    }
  }
  const aptDir = join(dir, 'apt');
  const apt = prepareApt(aptDir);
  log(`apt-get update (bookworm-backports, private lists in ${aptDir})`);
  sh('apt-get', [...apt, 'update']);
  const names = sh('apt-cache', [...apt, 'pkgnames', 'linux-image-6.12']).split('\n').filter(Boolean);
  const pkg = pickPackage(names);
  const version = sh('apt-cache', [...apt, 'show', '--no-all-versions', pkg])
    .split('\n')
    .find((l) => l.startsWith('Version: '))!
    .slice('Version: '.length);
  const debs = join(aptDir, 'debs');
  for (const f of readdirSync(debs)) rmSync(join(debs, f), { force: true });
  log(`apt-get download ${pkg} ${version}`);
  // apt verifies the download against the signed index; the _apt sandbox warning on a root-owned
  // directory is harmless (the file lands in our own cache).
  sh('apt-get', [...apt, 'download', `${pkg}=${version}`], { cwd: debs, timeoutMs: 900_000 });
  const deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) throw new KernelUnavailable(`apt-get download ${pkg} produced no .deb`);

  const kernelDir = join(dir, 'kernel');
  mkdirSync(kernelDir, { recursive: true });
  const stage = mkdtempSync(join(kernelDir, 'stage-'));
  try {
    log(`unpacking ${deb}`);
    sh('dpkg-deb', ['-x', join(debs, deb), stage]);
    const vmlinuz = readdirSync(join(stage, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new KernelUnavailable(`${deb} has no boot/vmlinuz-*`);
    const release = vmlinuz.slice('vmlinuz-'.length);
    // bookworm packages ship /lib/modules; later ones /usr/lib/modules.
    const modules = [join(stage, 'lib/modules', release), join(stage, 'usr/lib/modules', release)].find(existsSync);
    if (!modules) throw new KernelUnavailable(`${deb} has no modules for ${release}`);
    const root = join(kernelDir, release);
    rmSync(root, { recursive: true, force: true });
    mkdirSync(join(root, 'lib/modules'), { recursive: true });
    renameSync(join(stage, 'boot', vmlinuz), join(root, 'vmlinuz'));
    renameSync(modules, join(root, 'lib/modules', release));
    // The package's postinst runs depmod; we unpacked without installing, so run it here.
    log(`depmod ${release}`);
    sh('depmod', ['-b', root, release]);
    const k: GuestKernel = { package: pkg, version, release, vmlinuz: join(root, 'vmlinuz'), root };
    writeFileSync(current, JSON.stringify(k, null, 2) + '\n');
    return k;
  } finally {
    rmSync(stage, { recursive: true, force: true });
    rmSync(join(debs, deb), { force: true });
  }
}

export interface ModuleClosure {
  /** Module files in load order (each after its dependencies), deduplicated. */
  files: string[];
  /** Requested names that are built into this kernel. */
  builtin: string[];
}

/** kmod resolves dependencies on the host: `modprobe -d ROOT -S RELEASE --show-depends NAME`. */
export function resolveModules(k: GuestKernel, names: readonly string[]): ModuleClosure {
  const files: string[] = [];
  const builtin: string[] = [];
  for (const name of names) {
    const out = sh('modprobe', ['-d', k.root, '-S', k.release, '--show-depends', name]);
    for (const line of out.split('\n')) {
      const insmod = /^insmod (\S+)/.exec(line);
      if (insmod && !files.includes(insmod[1])) files.push(insmod[1]);
      if (line.startsWith('builtin ')) builtin.push(name);
    }
  }
  return { files, builtin };
}

/** A module file as the guest's insmod takes it: busybox passes the bytes to init_module(2),
 *  which does not decompress. */
export function readModule(file: string): Buffer {
  if (file.endsWith('.ko')) return readFileSync(file);
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : file.endsWith('.gz') ? 'gzip' : null;
  if (!tool) throw new KernelUnavailable(`${file}: unknown module compression`);
  return execFileSync(tool, ['-dc', file], { maxBuffer: 256 << 20 });
}
