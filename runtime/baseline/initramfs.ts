// The guest's root filesystem: an uncompressed newc cpio archive built in memory.
//
// Uncompressed because the kernel unpacks it on an emulated CPU: a few tens of MB copy faster than
// gzip decompresses under TCG. Written here rather than with cpio(1) so ownership (root), modes
// and order are exact and no staging directory is needed.
//
// newc record (all numbers 8 ASCII hex digits):
//   "070701" ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
//   name NUL, padded to 4 bytes (counting the 110-byte header), then data padded to 4 bytes.
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export interface ArchiveEntry {
  /** Absolute path in the guest. */
  path: string;
  /** Permission bits (the type comes from data/symlink). */
  mode: number;
  data?: Uint8Array;
  symlink?: string;
  directory?: boolean;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function header(ino: number, mode: number, size: number, nameSize: number): string {
  const f = (n: number) => n.toString(16).padStart(8, '0');
  return ['070701', f(ino), f(mode), f(0), f(0), f(1), f(0), f(size), f(0), f(0), f(0), f(0), f(nameSize), f(0)].join('');
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** Serialises entries; parent directories are added where missing (the kernel needs them first). */
export function writeNewc(entries: readonly ArchiveEntry[]): Buffer {
  const seen = new Map<string, ArchiveEntry>();
  const ordered: ArchiveEntry[] = [];
  const addDirs = (path: string) => {
    const parent = dirname(path);
    if (parent === '/' || seen.has(parent)) return;
    addDirs(parent);
    const dir = { path: parent, mode: 0o755, directory: true };
    seen.set(parent, dir);
    ordered.push(dir);
  };
  for (const e of entries) {
    if (!e.path.startsWith('/')) throw new Error(`initramfs: path must be absolute: ${e.path}`);
    addDirs(e.path);
    const prior = seen.get(e.path);
    if (prior && !(prior.directory && e.directory)) throw new Error(`initramfs: ${e.path} added twice`);
    if (!prior) ordered.push(e);
    seen.set(e.path, e);
  }
  const chunks: Buffer[] = [];
  let ino = 1;
  const emit = (name: string, mode: number, data: Uint8Array) => {
    const nameBytes = Buffer.from(name + '\0');
    const head = Buffer.from(header(ino++, mode, data.length, nameBytes.length), 'ascii');
    chunks.push(head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length)));
    chunks.push(Buffer.from(data), Buffer.alloc(pad4(data.length)));
  };
  for (const e of ordered) {
    const name = e.path.slice(1);
    if (e.directory) emit(name, S_IFDIR | e.mode, new Uint8Array());
    else if (e.symlink !== undefined) emit(name, S_IFLNK | 0o777, Buffer.from(e.symlink));
    else emit(name, S_IFREG | e.mode, e.data ?? new Uint8Array());
  }
  emit('TRAILER!!!', 0, new Uint8Array());
  return Buffer.concat(chunks);
}

/**
 * A host executable and the shared objects ldd says it loads, each at its host path, so the
 * dynamic loader finds them in the guest as it would on the host.
 */
export function binaryWithLibraries(hostPath: string, guestPath = hostPath): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [{ path: guestPath, mode: 0o755, data: readFileSync(hostPath) }];
  let ldd: string;
  try {
    ldd = execFileSync('ldd', [hostPath], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch {
    return entries; // "not a dynamic executable": static, nothing more to copy
  }
  for (const line of ldd.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (!m) continue;
    const real = realpathSync(m[1]);
    entries.push({ path: m[1], mode: statSync(real).mode & 0o777, data: readFileSync(real) });
  }
  return entries;
}

/** Merges entry lists, keeping the first of identical shared libraries two binaries both need. */
export function mergeEntries(...lists: ArchiveEntry[][]): ArchiveEntry[] {
  const byPath = new Map<string, ArchiveEntry>();
  for (const e of lists.flat()) {
    const prior = byPath.get(e.path);
    if (!prior) byPath.set(e.path, e);
    else if (!(prior.data && e.data && Buffer.from(prior.data).equals(Buffer.from(e.data)))) {
      throw new Error(`initramfs: two different files for ${e.path}`);
    }
  }
  return [...byPath.values()];
}
