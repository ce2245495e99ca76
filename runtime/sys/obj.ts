// Object-level commands: pinning in bpffs, ids, fds by id, and BPF_ENABLE_STATS.
import { existsSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  BPF_ENABLE_STATS,
  BPF_LINK_GET_FD_BY_ID,
  BPF_LINK_GET_NEXT_ID,
  BPF_MAP_GET_FD_BY_ID,
  BPF_MAP_GET_NEXT_ID,
  BPF_OBJ_GET,
  BPF_OBJ_PIN,
  BPF_PROG_GET_FD_BY_ID,
  BPF_PROG_GET_NEXT_ID,
  BPF_BTF_GET_FD_BY_ID,
  BPF_BTF_GET_NEXT_ID,
} from './constants.ts';
import { BpfError } from './errors.ts';
import { FD, fdValue, type FdLike } from './fd.ts';
import { bpf, syscallOverridden, writePointer } from './syscall.ts';

const BPF_FS_MAGIC = 0xcafe4a11; // include/uapi/linux/magic.h
export const BPFFS_ROOT = '/sys/fs/bpf';

/** Why a pin path failed with ENOENT (or EPERM/EINVAL from a non-bpffs directory): the parent
 *  is missing, or it is not on a bpf filesystem. The fake has no filesystem, so no diagnosis. */
function diagnosePinPath(error: BpfError, path: string): BpfError {
  if (syscallOverridden()) return error.withDetail(`${path}`);
  let dir = dirname(path);
  while (!existsSync(dir) && dir !== dirname(dir)) dir = dirname(dir);
  let onBpffs = false;
  try {
    onBpffs = statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    /* unreadable: say nothing about the filesystem */
  }
  if (!onBpffs) {
    const mountHint = path.startsWith(`${BPFFS_ROOT}/`) ? `bpffs not mounted at ${BPFFS_ROOT} (mount -t bpf bpf ${BPFFS_ROOT})` : `${dir} is not on a bpf filesystem`;
    return error.withDetail(`${path}: ${mountHint}`);
  }
  if (dir !== dirname(path)) return error.withDetail(`${path}: directory ${dirname(path)} does not exist`);
  if (error.code === 'ENOENT') return error.withDetail(`${path}: nothing pinned there`);
  if (error.code === 'EEXIST') return error.withDetail(`${path}: already pinned`);
  return error.withDetail(path);
}

// attr for BPF_OBJ_*: 0 pathname u64 | 8 bpf_fd u32 | 12 file_flags u32 | 16
function objAttr(path: string, fd: number, fileFlags: number): Buffer {
  const attr = Buffer.alloc(16);
  writePointer(attr, 0, Buffer.from(`${path}\0`, 'utf8'));
  attr.writeUInt32LE(fd, 8);
  attr.writeUInt32LE(fileFlags, 12);
  return attr;
}

function onPath<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof BpfError && ['ENOENT', 'EPERM', 'EEXIST', 'EINVAL'].includes(e.code)) {
      // EPERM from a non-bpffs path is the VFS refusing, not a missing capability; tell which.
      if (e.code === 'EPERM' && !syscallOverridden() && process.getuid?.() === 0) throw diagnosePinPath(e, path);
      if (e.code !== 'EPERM') throw diagnosePinPath(e, path);
    }
    throw e;
  }
}

/** BPF_OBJ_PIN: make `path` (in bpffs) refer to the object. */
export function objPin(fd: FdLike, path: string): void {
  onPath(path, () => bpf(BPF_OBJ_PIN, objAttr(path, fdValue(fd), 0)));
}

/** BPF_OBJ_GET: an fd for a pinned object. fileFlags: BPF_F_RDONLY / BPF_F_WRONLY. */
export function objGet(path: string, fileFlags = 0): FD {
  return new FD(onPath(path, () => bpf(BPF_OBJ_GET, objAttr(path, 0, fileFlags))));
}

// attr for BPF_*_GET_NEXT_ID / BPF_*_GET_FD_BY_ID:
//	0 start_id / prog_id / map_id / btf_id / link_id u32 | 4 next_id u32 (out) | 8 open_flags u32 | 12
function idAttr(id: number, openFlags = 0): Buffer {
  const attr = Buffer.alloc(12);
  attr.writeUInt32LE(id, 0);
  attr.writeUInt32LE(openFlags, 8);
  return attr;
}

function nextId(cmd: number, start: number): number | null {
  const attr = idAttr(start);
  try {
    bpf(cmd, attr);
  } catch (e) {
    if (e instanceof BpfError && e.code === 'ENOENT') return null;
    throw e;
  }
  return attr.readUInt32LE(4);
}

/** The first id above `start` (0: the smallest), null past the last. */
export const progGetNextId = (start: number): number | null => nextId(BPF_PROG_GET_NEXT_ID, start);
export const mapGetNextId = (start: number): number | null => nextId(BPF_MAP_GET_NEXT_ID, start);
export const linkGetNextId = (start: number): number | null => nextId(BPF_LINK_GET_NEXT_ID, start);
export const btfGetNextId = (start: number): number | null => nextId(BPF_BTF_GET_NEXT_ID, start);

/** Every id of one kind, ascending. Objects may vanish between steps; that is expected. */
export function* ids(kind: 'prog' | 'map' | 'link' | 'btf'): Generator<number> {
  const next = { prog: progGetNextId, map: mapGetNextId, link: linkGetNextId, btf: btfGetNextId }[kind];
  for (let id = next(0); id !== null; id = next(id)) yield id;
}

export const progGetFdById = (id: number): FD => new FD(bpf(BPF_PROG_GET_FD_BY_ID, idAttr(id)));
/** openFlags: BPF_F_RDONLY / BPF_F_WRONLY. */
export const mapGetFdById = (id: number, openFlags = 0): FD => new FD(bpf(BPF_MAP_GET_FD_BY_ID, idAttr(id, openFlags)));
export const linkGetFdById = (id: number): FD => new FD(bpf(BPF_LINK_GET_FD_BY_ID, idAttr(id)));
export const btfGetFdById = (id: number): FD => new FD(bpf(BPF_BTF_GET_FD_BY_ID, idAttr(id)));

/** BPF_ENABLE_STATS (BPF_STATS_RUN_TIME): run_time_ns/run_cnt are counted while the fd is open. */
export function enableStats(type: number): FD {
  const attr = Buffer.alloc(4);
  attr.writeUInt32LE(type, 0); // enable_stats.type
  return new FD(bpf(BPF_ENABLE_STATS, attr));
}
