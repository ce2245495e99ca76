// BPF_MAP_* commands. Keys and values are Buffers of the map's exact sizes; per-CPU maps take and
// return round_up(value_size, 8) × possibleCpus() bytes (see perCpuValueSize).
import { readFileSync } from 'node:fs';
import {
  BPF_ANY,
  BPF_MAP_CREATE,
  BPF_MAP_DELETE_BATCH,
  BPF_MAP_DELETE_ELEM,
  BPF_MAP_FREEZE,
  BPF_MAP_GET_NEXT_KEY,
  BPF_MAP_LOOKUP_AND_DELETE_ELEM,
  BPF_MAP_LOOKUP_BATCH,
  BPF_MAP_LOOKUP_ELEM,
  BPF_MAP_UPDATE_BATCH,
  BPF_MAP_UPDATE_ELEM,
  BPF_OBJ_NAME_LEN,
} from './constants.ts';
import { BpfError } from './errors.ts';
import { FD, fdValue, type FdLike } from './fd.ts';
import { bpf, writePointer } from './syscall.ts';

export interface MapCreateOptions {
  type: number; // bpf_map_type
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number; // BPF_F_NO_PREALLOC, BPF_F_RDONLY_PROG, …
  name?: string; // ≤ 15 bytes of [A-Za-z0-9_.]
  innerMapFd?: FdLike; // map-in-map: a template for the inner maps
  numaNode?: number; // with BPF_F_NUMA_NODE
  ifindex?: number; // offload
  btfFd?: FdLike;
  btfKeyTypeId?: number;
  btfValueTypeId?: number;
  btfVmlinuxValueTypeId?: number; // struct_ops
  mapExtra?: bigint; // bloom filter: number of hash functions in the low 4 bits
}

/** Write an object name (map or program) into a char[BPF_OBJ_NAME_LEN] field. The kernel accepts
 *  alphanumerics, '_' and '.', at most 15 bytes plus the NUL; anything else is EINVAL, which
 *  would not say which field, so it is refused here. */
export function writeObjectName(attr: Buffer, offset: number, name: string | undefined): void {
  if (!name) return;
  if (!/^[A-Za-z0-9_.]*$/.test(name)) throw new RangeError(`BPF object name ${JSON.stringify(name)}: only [A-Za-z0-9_.] allowed`);
  attr.write(name.slice(0, BPF_OBJ_NAME_LEN - 1), offset, 'latin1');
}

/** BPF_MAP_CREATE. */
export function mapCreate(o: MapCreateOptions): FD {
  const attr = Buffer.alloc(72);
  attr.writeUInt32LE(o.type, 0); //                              map_type
  attr.writeUInt32LE(o.keySize, 4); //                           key_size
  attr.writeUInt32LE(o.valueSize, 8); //                         value_size
  attr.writeUInt32LE(o.maxEntries, 12); //                       max_entries
  attr.writeUInt32LE(o.flags ?? 0, 16); //                       map_flags
  attr.writeUInt32LE(o.innerMapFd === undefined ? 0 : fdValue(o.innerMapFd), 20); // inner_map_fd
  attr.writeUInt32LE(o.numaNode ?? 0, 24); //                    numa_node
  writeObjectName(attr, 28, o.name); //                          map_name[16]
  attr.writeUInt32LE(o.ifindex ?? 0, 44); //                     map_ifindex
  attr.writeUInt32LE(o.btfFd === undefined ? 0 : fdValue(o.btfFd), 48); // btf_fd
  attr.writeUInt32LE(o.btfKeyTypeId ?? 0, 52); //                btf_key_type_id
  attr.writeUInt32LE(o.btfValueTypeId ?? 0, 56); //              btf_value_type_id
  attr.writeUInt32LE(o.btfVmlinuxValueTypeId ?? 0, 60); //       btf_vmlinux_value_type_id
  attr.writeBigUInt64LE(o.mapExtra ?? 0n, 64); //                map_extra
  return new FD(bpf(BPF_MAP_CREATE, attr));
}

// attr for BPF_MAP_*_ELEM:
//	 0 map_fd u32 | 4 pad | 8 key u64 | 16 value / next_key u64 | 24 flags u64 | 32
function elemAttr(map: FdLike, key: Buffer | null, value: Buffer | null, flags: bigint | number): Buffer {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(fdValue(map), 0);
  writePointer(attr, 8, key);
  writePointer(attr, 16, value);
  attr.writeBigUInt64LE(BigInt(flags), 24);
  return attr;
}

const isNoEntry = (e: unknown): boolean => e instanceof BpfError && e.code === 'ENOENT';

/** BPF_MAP_LOOKUP_ELEM: the value, or null when the key is absent. `flags` may be BPF_F_LOCK. */
export function mapLookup(map: FdLike, key: Buffer | null, valueSize: number, flags = 0): Buffer | null {
  const value = Buffer.alloc(valueSize);
  try {
    bpf(BPF_MAP_LOOKUP_ELEM, elemAttr(map, key, value, flags));
  } catch (e) {
    if (isNoEntry(e)) return null;
    throw e;
  }
  return value;
}

/** BPF_MAP_UPDATE_ELEM with BPF_ANY, BPF_NOEXIST or BPF_EXIST (optionally | BPF_F_LOCK). */
export function mapUpdate(map: FdLike, key: Buffer | null, value: Buffer, flags: number = BPF_ANY): void {
  bpf(BPF_MAP_UPDATE_ELEM, elemAttr(map, key, value, flags));
}

/** BPF_MAP_DELETE_ELEM: false when the key was absent. */
export function mapDelete(map: FdLike, key: Buffer): boolean {
  try {
    bpf(BPF_MAP_DELETE_ELEM, elemAttr(map, key, null, 0));
    return true;
  } catch (e) {
    if (isNoEntry(e)) return false;
    throw e;
  }
}

/** BPF_MAP_GET_NEXT_KEY: the key after `key`, the first key for null, null at the end. */
export function mapGetNextKey(map: FdLike, key: Buffer | null, keySize: number): Buffer | null {
  const next = Buffer.alloc(keySize);
  try {
    bpf(BPF_MAP_GET_NEXT_KEY, elemAttr(map, key, next, 0));
  } catch (e) {
    if (isNoEntry(e)) return null;
    throw e;
  }
  return next;
}

/** Every key, by BPF_MAP_GET_NEXT_KEY from the start. Concurrent deletes can restart a hash
 *  walk from the first key; that is the kernel's contract, not hidden here. */
export function* mapKeys(map: FdLike, keySize: number): Generator<Buffer> {
  for (let k = mapGetNextKey(map, null, keySize); k !== null; k = mapGetNextKey(map, k, keySize)) yield k;
}

/** BPF_MAP_LOOKUP_AND_DELETE_ELEM: key null for queue and stack maps; null when empty/absent. */
export function mapLookupAndDelete(map: FdLike, key: Buffer | null, valueSize: number, flags = 0): Buffer | null {
  const value = Buffer.alloc(valueSize);
  try {
    bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM, elemAttr(map, key, value, flags));
  } catch (e) {
    if (isNoEntry(e)) return null;
    throw e;
  }
  return value;
}

/** BPF_MAP_FREEZE: no more writes from user space (BPF_F_RDONLY_PROG-style .rodata). */
export function mapFreeze(map: FdLike): void {
  bpf(BPF_MAP_FREEZE, elemAttr(map, null, null, 0));
}

// ---- batch ---------------------------------------------------------------------------------------
// attr.batch:
//	 0 in_batch u64 | 8 out_batch u64 | 16 keys u64 | 24 values u64
//	32 count u32 | 36 map_fd u32 | 40 elem_flags u64 | 48 flags u64 | 56

export interface BatchResult {
  /** Elements processed. */
  count: number;
  /** Opaque position to pass as `inBatch` next (lookup only). */
  outBatch: Buffer;
  /** The walk reached the end (the kernel said ENOENT). */
  done: boolean;
}

function batchAttr(map: FdLike, inBatch: Buffer | null, outBatch: Buffer | null, keys: Buffer | null, values: Buffer | null, count: number, elemFlags: number): Buffer {
  const attr = Buffer.alloc(56);
  writePointer(attr, 0, inBatch);
  writePointer(attr, 8, outBatch);
  writePointer(attr, 16, keys);
  writePointer(attr, 24, values);
  attr.writeUInt32LE(count, 32);
  attr.writeUInt32LE(fdValue(map), 36);
  attr.writeBigUInt64LE(BigInt(elemFlags), 40);
  return attr;
}

/** BPF_MAP_LOOKUP_BATCH: fill `keys`/`values` (count = keys.length / keySize) from position
 *  `inBatch` (null: the start). `batchSize` is the key size for hash maps, 4 for arrays. */
export function mapLookupBatch(map: FdLike, inBatch: Buffer | null, keys: Buffer, values: Buffer, keySize: number, batchSize: number, elemFlags = 0): BatchResult {
  const outBatch = Buffer.alloc(batchSize);
  const attr = batchAttr(map, inBatch, outBatch, keys, values, Math.floor(keys.length / keySize), elemFlags);
  let done = false;
  try {
    bpf(BPF_MAP_LOOKUP_BATCH, attr);
  } catch (e) {
    if (!isNoEntry(e)) throw e;
    done = true; // ENOENT: the last batch; count still says how many were copied
  }
  return { count: attr.readUInt32LE(32), outBatch, done };
}

/** BPF_MAP_UPDATE_BATCH: `count` pairs from `keys`/`values`. Returns how many were applied. */
export function mapUpdateBatch(map: FdLike, keys: Buffer, values: Buffer, count: number, elemFlags = 0): number {
  const attr = batchAttr(map, null, null, keys, values, count, elemFlags);
  bpf(BPF_MAP_UPDATE_BATCH, attr);
  return attr.readUInt32LE(32);
}

/** BPF_MAP_DELETE_BATCH: `count` keys. Returns how many were deleted. */
export function mapDeleteBatch(map: FdLike, keys: Buffer, count: number, elemFlags = 0): number {
  const attr = batchAttr(map, null, null, keys, null, count, elemFlags);
  bpf(BPF_MAP_DELETE_BATCH, attr);
  return attr.readUInt32LE(32);
}

// ---- per-CPU values ------------------------------------------------------------------------------

let cpus: number | undefined;

/** Possible CPUs (not online ones): the kernel sizes per-CPU values by cpu_possible_mask. */
export function possibleCpus(): number {
  if (cpus === undefined) {
    const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
    let max = -1;
    for (const range of text.split(',')) max = Math.max(max, Number(range.split('-').pop()));
    cpus = max + 1;
  }
  return cpus;
}

/** Bytes user space passes for one element of a per-CPU map: each CPU's copy is 8-aligned. */
export function perCpuValueSize(valueSize: number, nrCpus = possibleCpus()): number {
  return Math.ceil(valueSize / 8) * 8 * nrCpus;
}
