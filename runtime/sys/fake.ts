// An in-memory bpf(): enough of the kernel's object model to test loader logic without root.
// It reads attr exactly as the kernel does (pointers are dereferenced with memoryAt), so tests of
// the fake also test the attr layouts the wrappers write.
//
//   const fake = new FakeBpf();
//   fake.install();          // overrideSyscall(fake)
//   …                        // mapCreate, progLoad, objPin … now land here
//   fake.uninstall();        // restoreSyscall()
//
// Semantics follow the kernel where tests can observe them: hash maps (BPF_ANY/NOEXIST/EXIST,
// E2BIG when full, get_next_key from a missing key restarts), arrays (preallocated zeroed values,
// EINVAL on delete), per-CPU values sized round_up(value_size, 8) × cpus, queue/stack via
// lookup/lookup_and_delete, pins as a dictionary, ids and fds by id, info by fd. Programs are
// recorded, not verified; a `verifier` hook can reject them with a log, which the fake writes
// into the caller's buffer with the kernel's ENOSPC and log_true_size behaviour.
import { createHash } from 'node:crypto';
import { constants } from 'node:os';
import * as C from './constants.ts';
import { cStringAt, memoryAt, overrideSyscall, restoreSyscall, type SyscallBackend } from './syscall.ts';

const E = constants.errno;

interface FakeMap {
  kind: 'map';
  id: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  btfFd: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  mapExtra: bigint;
  frozen: boolean;
  /** hex(key) → value, in insertion order (the hash walk order here). Arrays: index → value. */
  entries: Map<string, Buffer>;
  /** queue / stack */
  items: Buffer[];
}

export interface FakeProgram {
  kind: 'prog';
  id: number;
  type: number;
  insns: Buffer;
  license: string;
  name: string;
  flags: number;
  expectedAttachType: number;
  btfFd: number;
  attachBtfId: number;
  mapIds: number[];
  tag: Buffer;
}

interface FakeBtf {
  kind: 'btf';
  id: number;
  blob: Buffer;
}

interface FakeLink {
  kind: 'link';
  id: number;
  type: number;
  progId: number;
  target: number;
  attachType: number;
  detached: boolean;
}

type FakeObject = FakeMap | FakeProgram | FakeBtf | FakeLink;

export interface VerifierVerdict {
  /** Reject with this errno (EACCES, EINVAL, …); undefined accepts. */
  errno?: number;
  /** The log the kernel would write (lines joined by \n). */
  log: string;
}

export interface FakeOptions {
  /** false: every command fails with EPERM, as for a process without CAP_BPF. */
  privileged?: boolean;
  /** Possible CPUs, for per-CPU value sizes. */
  cpus?: number;
  /** Judge a program at BPF_PROG_LOAD. Default: accept with an empty log. */
  verifier?: (prog: FakeProgram) => VerifierVerdict;
  /** Run a program at BPF_PROG_TEST_RUN. Default: ENOTSUPP (the kernel's answer for types
   *  without test_run). */
  testRun?: (prog: FakeProgram, dataIn: Buffer) => { retval: number; dataOut: Buffer };
}

export interface RecordedCall {
  cmd: number;
  /** A copy of attr as passed (before the fake wrote outputs into it). */
  attr: Buffer;
  result: number;
}

const HASH_TYPES = new Set<number>([C.BPF_MAP_TYPE_HASH, C.BPF_MAP_TYPE_LRU_HASH, C.BPF_MAP_TYPE_PERCPU_HASH, C.BPF_MAP_TYPE_LRU_PERCPU_HASH, C.BPF_MAP_TYPE_LPM_TRIE]);
const ARRAY_TYPES = new Set<number>([C.BPF_MAP_TYPE_ARRAY, C.BPF_MAP_TYPE_PERCPU_ARRAY, C.BPF_MAP_TYPE_PROG_ARRAY, C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, C.BPF_MAP_TYPE_ARRAY_OF_MAPS]);
const PERCPU_TYPES = new Set<number>([C.BPF_MAP_TYPE_PERCPU_HASH, C.BPF_MAP_TYPE_LRU_PERCPU_HASH, C.BPF_MAP_TYPE_PERCPU_ARRAY]);
// fd arrays hold fds written from user space but cannot be read back (the kernel: EOPNOTSUPP).
const FD_ARRAY_TYPES = new Set<number>([C.BPF_MAP_TYPE_PROG_ARRAY, C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, C.BPF_MAP_TYPE_ARRAY_OF_MAPS]);
const QUEUE_TYPES = new Set<number>([C.BPF_MAP_TYPE_QUEUE, C.BPF_MAP_TYPE_STACK]);

class Errno extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}
const fail = (errno: number): never => {
  throw new Errno(errno);
};

// @types/node 20's Buffer is not assignable to TS 5.9's Uint8Array<ArrayBufferLike>; go through a view.
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);
/** src[srcStart, srcEnd) → dst at dstOffset (Buffer.copy without the typing trouble). */
const copy = (src: Buffer, dst: Buffer, dstOffset = 0, srcStart = 0, srcEnd = src.length): void =>
  dst.set(bytes(src).subarray(srcStart, Math.min(srcEnd, srcStart + dst.length - dstOffset)), dstOffset);

const ptr = (attr: Buffer, off: number): bigint => attr.readBigUInt64LE(off);
const read = (attr: Buffer, off: number, len: number): Buffer => Buffer.from(bytes(memoryAt(ptr(attr, off), len))); // a copy
const cName = (buf: Buffer, off: number): string => {
  const field = buf.subarray(off, off + C.BPF_OBJ_NAME_LEN);
  const end = field.indexOf(0);
  return field.toString('latin1', 0, end < 0 ? field.length : end);
};

export class FakeBpf implements SyscallBackend {
  readonly options: FakeOptions;
  readonly calls: RecordedCall[] = [];
  readonly pins = new Map<string, FakeObject>();
  readonly objects = new Map<number, FakeObject>(); // fd → object
  /** Errnos to return for the next calls of a command, before doing anything (fault injection). */
  readonly failures = new Map<number, number[]>();
  #nextFd = 100; // clear of 0-2 and of small real fds, to catch an fd used with the wrong backend
  #nextId: Record<FakeObject['kind'], number> = { map: 1, prog: 1, btf: 1, link: 1 };
  #byId = new Map<string, FakeObject>(); // `${kind}:${id}`

  constructor(options: FakeOptions = {}) {
    this.options = options;
  }

  install(): this {
    overrideSyscall(this);
    return this;
  }

  uninstall(): void {
    restoreSyscall();
  }

  /** Make the next call(s) of `cmd` fail with these errnos, one per call. */
  failNext(cmd: number, ...errnos: number[]): void {
    this.failures.set(cmd, [...(this.failures.get(cmd) ?? []), ...errnos]);
  }

  /** Open fds, for leak checks. */
  get openFds(): number[] {
    return [...this.objects.keys()];
  }

  programs(): FakeProgram[] {
    return [...this.#byId.values()].filter((o): o is FakeProgram => o.kind === 'prog');
  }

  bpf(cmd: number, attr: Buffer): number {
    const snapshot = Buffer.from(bytes(attr));
    let result: number;
    try {
      result = this.#dispatch(cmd, attr);
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      result = -e.errno;
    }
    this.calls.push({ cmd, attr: snapshot, result });
    return result;
  }

  close(fd: number): number {
    return this.objects.delete(fd) ? 0 : -E.EBADF;
  }

  #dispatch(cmd: number, attr: Buffer): number {
    const injected = this.failures.get(cmd);
    if (injected && injected.length > 0) return -injected.shift()!;
    if (this.options.privileged === false) fail(E.EPERM);
    switch (cmd) {
      case C.BPF_MAP_CREATE: return this.#mapCreate(attr);
      case C.BPF_MAP_LOOKUP_ELEM: return this.#mapLookup(attr, false);
      case C.BPF_MAP_LOOKUP_AND_DELETE_ELEM: return this.#mapLookup(attr, true);
      case C.BPF_MAP_UPDATE_ELEM: return this.#mapUpdate(attr);
      case C.BPF_MAP_DELETE_ELEM: return this.#mapDelete(attr);
      case C.BPF_MAP_GET_NEXT_KEY: return this.#mapNextKey(attr);
      case C.BPF_MAP_FREEZE: this.#map(attr.readUInt32LE(0)).frozen = true; return 0;
      case C.BPF_PROG_LOAD: return this.#progLoad(attr);
      case C.BPF_BTF_LOAD: return attr.readUInt32LE(16) === 0 ? fail(E.EINVAL) : this.#open({ kind: 'btf', id: 0, blob: read(attr, 0, attr.readUInt32LE(16)) });
      case C.BPF_OBJ_PIN: return this.#pin(attr);
      case C.BPF_OBJ_GET: return this.#get(attr);
      case C.BPF_PROG_GET_NEXT_ID: return this.#nextIdOf('prog', attr);
      case C.BPF_MAP_GET_NEXT_ID: return this.#nextIdOf('map', attr);
      case C.BPF_LINK_GET_NEXT_ID: return this.#nextIdOf('link', attr);
      case C.BPF_BTF_GET_NEXT_ID: return this.#nextIdOf('btf', attr);
      case C.BPF_PROG_GET_FD_BY_ID: return this.#fdById('prog', attr);
      case C.BPF_MAP_GET_FD_BY_ID: return this.#fdById('map', attr);
      case C.BPF_LINK_GET_FD_BY_ID: return this.#fdById('link', attr);
      case C.BPF_BTF_GET_FD_BY_ID: return this.#fdById('btf', attr);
      case C.BPF_OBJ_GET_INFO_BY_FD: return this.#info(attr);
      case C.BPF_PROG_TEST_RUN: return this.#testRun(attr);
      case C.BPF_LINK_CREATE: return this.#linkCreate(attr);
      case C.BPF_LINK_DETACH: {
        const link = this.#object(attr.readUInt32LE(0));
        if (link.kind !== 'link') fail(E.EINVAL);
        (link as FakeLink).detached = true;
        return 0;
      }
      default:
        return fail(E.EINVAL); // the kernel's answer to an unknown command
    }
  }

  // ---- objects, fds, ids

  #open(o: FakeObject): number {
    if (o.id === 0) o.id = this.#nextId[o.kind]++;
    this.#byId.set(`${o.kind}:${o.id}`, o);
    return this.#fdFor(o);
  }

  #fdFor(o: FakeObject): number {
    const fd = this.#nextFd++;
    this.objects.set(fd, o);
    return fd;
  }

  #object(fd: number): FakeObject {
    return this.objects.get(fd) ?? fail(E.EBADF);
  }

  #map(fd: number): FakeMap {
    const o = this.#object(fd);
    return o.kind === 'map' ? o : fail(E.EINVAL);
  }

  #nextIdOf(kind: FakeObject['kind'], attr: Buffer): number {
    const start = attr.readUInt32LE(0);
    const next = [...this.#byId.values()].filter((o) => o.kind === kind && o.id > start).map((o) => o.id).sort((a, b) => a - b)[0];
    if (next === undefined) fail(E.ENOENT);
    attr.writeUInt32LE(next, 4);
    return 0;
  }

  #fdById(kind: FakeObject['kind'], attr: Buffer): number {
    const o = this.#byId.get(`${kind}:${attr.readUInt32LE(0)}`) ?? fail(E.ENOENT);
    return this.#fdFor(o);
  }

  // ---- maps

  #userValueSize(m: FakeMap): number {
    return PERCPU_TYPES.has(m.type) ? Math.ceil(m.valueSize / 8) * 8 * (this.options.cpus ?? 1) : m.valueSize;
  }

  #mapCreate(attr: Buffer): number {
    const m: FakeMap = {
      kind: 'map',
      id: 0,
      type: attr.readUInt32LE(0),
      keySize: attr.readUInt32LE(4),
      valueSize: attr.readUInt32LE(8),
      maxEntries: attr.readUInt32LE(12),
      flags: attr.readUInt32LE(16),
      name: cName(attr, 28),
      btfFd: attr.readUInt32LE(48),
      btfKeyTypeId: attr.readUInt32LE(52),
      btfValueTypeId: attr.readUInt32LE(56),
      mapExtra: attr.length >= 72 ? attr.readBigUInt64LE(64) : 0n,
      frozen: false,
      entries: new Map(),
      items: [],
    };
    if (m.maxEntries === 0) fail(E.EINVAL);
    if (!/^[A-Za-z0-9_.]*$/.test(m.name)) fail(E.EINVAL);
    if (QUEUE_TYPES.has(m.type)) {
      if (m.keySize !== 0) fail(E.EINVAL);
    } else if (m.type !== C.BPF_MAP_TYPE_RINGBUF && (m.keySize === 0 || m.valueSize === 0)) fail(E.EINVAL);
    if (ARRAY_TYPES.has(m.type)) {
      if (m.keySize !== 4) fail(E.EINVAL);
      for (let i = 0; i < m.maxEntries && i < 1 << 16; i++) m.entries.set(String(i), Buffer.alloc(this.#userValueSize(m)));
    }
    if (m.btfFd !== 0 && this.#object(m.btfFd).kind !== 'btf') fail(E.EINVAL);
    return this.#open(m);
  }

  #arrayIndex(m: FakeMap, key: Buffer): number {
    return key.readUInt32LE(0);
  }

  #mapLookup(attr: Buffer, andDelete: boolean): number {
    const m = this.#map(attr.readUInt32LE(0));
    const size = this.#userValueSize(m);
    const out = memoryAt(ptr(attr, 16), size);
    if (QUEUE_TYPES.has(m.type)) {
      if (m.items.length === 0) fail(E.ENOENT);
      // queue: FIFO, stack: LIFO; lookup peeks, lookup_and_delete pops
      const item = m.type === C.BPF_MAP_TYPE_QUEUE ? m.items[0] : m.items[m.items.length - 1];
      if (andDelete) m.type === C.BPF_MAP_TYPE_QUEUE ? m.items.shift() : m.items.pop();
      copy(item, out);
      return 0;
    }
    if (FD_ARRAY_TYPES.has(m.type)) fail(E.EOPNOTSUPP);
    const key = read(attr, 8, m.keySize);
    if (ARRAY_TYPES.has(m.type)) {
      if (andDelete) fail(E.EINVAL);
      const i = this.#arrayIndex(m, key);
      if (i >= m.maxEntries) fail(E.ENOENT);
      copy(m.entries.get(String(i)) ?? Buffer.alloc(size), out);
      return 0;
    }
    const hex = key.toString('hex');
    const value = m.entries.get(hex) ?? fail(E.ENOENT);
    copy(value, out);
    if (andDelete) m.entries.delete(hex);
    return 0;
  }

  #mapUpdate(attr: Buffer): number {
    const m = this.#map(attr.readUInt32LE(0));
    if (m.frozen) fail(E.EPERM);
    const flags = Number(attr.readBigUInt64LE(24) & 0xffffffffn);
    const op = flags & ~C.BPF_F_LOCK;
    if (op > C.BPF_EXIST) fail(E.EINVAL);
    const value = read(attr, 16, FD_ARRAY_TYPES.has(m.type) ? 4 : this.#userValueSize(m));
    if (QUEUE_TYPES.has(m.type)) {
      if (m.items.length >= m.maxEntries) {
        if (op !== C.BPF_EXIST) fail(E.E2BIG);
        m.type === C.BPF_MAP_TYPE_QUEUE ? m.items.shift() : m.items.shift(); // BPF_EXIST: drop the oldest
      }
      m.items.push(value);
      return 0;
    }
    const key = read(attr, 8, m.keySize);
    if (ARRAY_TYPES.has(m.type)) {
      const i = this.#arrayIndex(m, key);
      if (i >= m.maxEntries) fail(E.E2BIG);
      if (op === C.BPF_NOEXIST) fail(E.EEXIST); // every element of an array exists
      m.entries.set(String(i), value);
      return 0;
    }
    const hex = key.toString('hex');
    const exists = m.entries.has(hex);
    if (op === C.BPF_NOEXIST && exists) fail(E.EEXIST);
    if (op === C.BPF_EXIST && !exists) fail(E.ENOENT);
    if (!exists && m.entries.size >= m.maxEntries) {
      // LRU maps evict the least recently inserted; plain hashes are full.
      if (m.type === C.BPF_MAP_TYPE_LRU_HASH || m.type === C.BPF_MAP_TYPE_LRU_PERCPU_HASH) m.entries.delete(m.entries.keys().next().value!);
      else fail(E.E2BIG);
    }
    m.entries.set(hex, value);
    return 0;
  }

  #mapDelete(attr: Buffer): number {
    const m = this.#map(attr.readUInt32LE(0));
    if (m.frozen) fail(E.EPERM);
    if (ARRAY_TYPES.has(m.type) && !FD_ARRAY_TYPES.has(m.type)) fail(E.EINVAL);
    const key = read(attr, 8, m.keySize);
    if (FD_ARRAY_TYPES.has(m.type)) return m.entries.delete(String(key.readUInt32LE(0))) ? 0 : fail(E.ENOENT);
    return m.entries.delete(key.toString('hex')) ? 0 : fail(E.ENOENT);
  }

  #mapNextKey(attr: Buffer): number {
    const m = this.#map(attr.readUInt32LE(0));
    if (QUEUE_TYPES.has(m.type)) fail(E.EINVAL);
    const key = ptr(attr, 8) === 0n ? null : read(attr, 8, m.keySize);
    const out = memoryAt(ptr(attr, 16), m.keySize);
    if (ARRAY_TYPES.has(m.type)) {
      const i = key === null ? -1 : key.readUInt32LE(0);
      // An index out of range restarts at 0, like the kernel's array_map_get_next_key.
      const next = i < 0 || i >= m.maxEntries ? 0 : i + 1;
      if (next >= m.maxEntries) fail(E.ENOENT);
      out.writeUInt32LE(next, 0);
      return 0;
    }
    const keys = [...m.entries.keys()];
    if (keys.length === 0) fail(E.ENOENT);
    const at = key === null ? -1 : keys.indexOf(key.toString('hex'));
    // A key that is not there restarts the walk from the first, as htab_map_get_next_key does.
    const next = at < 0 ? keys[0] : keys[at + 1];
    if (next === undefined) fail(E.ENOENT);
    copy(Buffer.from(next, 'hex'), out);
    return 0;
  }

  // ---- programs

  #progLoad(attr: Buffer): number {
    const insnCnt = attr.readUInt32LE(4);
    if (insnCnt === 0) fail(E.EINVAL);
    const insns = read(attr, 8, insnCnt * 8);
    const prog: FakeProgram = {
      kind: 'prog',
      id: 0,
      type: attr.readUInt32LE(0),
      insns,
      license: cStringAt(ptr(attr, 16), 128),
      name: cName(attr, 48),
      flags: attr.readUInt32LE(44),
      expectedAttachType: attr.readUInt32LE(68),
      btfFd: attr.readUInt32LE(72),
      attachBtfId: attr.readUInt32LE(108),
      mapIds: [],
      // The kernel's tag is a SHA-1 over the program with map fds blanked; a hash of the bytes
      // is enough for a fake: equal programs, equal tags.
      tag: createHash('sha1').update(bytes(insns)).digest().subarray(0, 8),
    };
    // Map references: LD_IMM64 with src BPF_PSEUDO_MAP_FD/VALUE carries a map fd in imm.
    for (let i = 0; i < insns.length; i += 8) {
      const src = insns[i + 1] >> 4;
      if (insns[i] === 0x18 && (src === C.BPF_PSEUDO_MAP_FD || src === C.BPF_PSEUDO_MAP_VALUE)) {
        const m = this.#map(insns.readInt32LE(i + 4));
        if (!prog.mapIds.includes(m.id)) prog.mapIds.push(m.id);
      }
      if (insns[i] === 0x18) i += 8;
    }
    const verdict = this.options.verifier?.(prog) ?? { log: '' };
    const level = attr.readUInt32LE(24);
    const size = attr.readUInt32LE(28);
    if (level > 0) {
      if (size < 128 || ptr(attr, 32) === 0n) fail(E.EINVAL); // the kernel's minimum log size
      const text = Buffer.from(verdict.log, 'utf8');
      const buf = memoryAt(ptr(attr, 32), size);
      if (attr.length >= 144) attr.writeUInt32LE(text.length + 1, 140); // log_true_size
      if (text.length + 1 > size) {
        // 6.4+ rotating log: the tail is kept, NUL-terminated, and the load reports ENOSPC.
        copy(text, buf, 0, text.length - (size - 1));
        buf[size - 1] = 0;
        fail(E.ENOSPC);
      }
      copy(text, buf);
      buf[text.length] = 0;
    }
    if (verdict.errno !== undefined) fail(verdict.errno);
    return this.#open(prog);
  }

  #testRun(attr: Buffer): number {
    const prog = this.#object(attr.readUInt32LE(0));
    if (prog.kind !== 'prog') fail(E.EINVAL);
    if (!this.options.testRun) fail(524 /* ENOTSUPP */);
    const dataIn = read(attr, 16, attr.readUInt32LE(8));
    const { retval, dataOut } = this.options.testRun!(prog as FakeProgram, dataIn);
    const room = attr.readUInt32LE(12);
    attr.writeUInt32LE(retval >>> 0, 4);
    attr.writeUInt32LE(1, 36); // duration
    attr.writeUInt32LE(dataOut.length, 12);
    if (ptr(attr, 24) !== 0n) {
      copy(dataOut, memoryAt(ptr(attr, 24), room));
      if (dataOut.length > room) fail(E.ENOSPC);
    }
    return 0;
  }

  // ---- pins, links, info

  #pin(attr: Buffer): number {
    const path = cStringAt(ptr(attr, 0));
    const o = this.#object(attr.readUInt32LE(8));
    if (this.pins.has(path)) fail(E.EEXIST);
    this.pins.set(path, o);
    return 0;
  }

  #get(attr: Buffer): number {
    const path = cStringAt(ptr(attr, 0));
    return this.#fdFor(this.pins.get(path) ?? fail(E.ENOENT));
  }

  /** Remove a pin, as unlink(2) on bpffs would. */
  unpin(path: string): boolean {
    return this.pins.delete(path);
  }

  #linkCreate(attr: Buffer): number {
    const prog = this.#object(attr.readUInt32LE(0));
    if (prog.kind !== 'prog') fail(E.EINVAL);
    const attachType = attr.readUInt32LE(8);
    const type =
      attachType === C.BPF_TCX_INGRESS || attachType === C.BPF_TCX_EGRESS ? C.BPF_LINK_TYPE_TCX
      : attachType === C.BPF_XDP ? C.BPF_LINK_TYPE_XDP
      : attachType === C.BPF_NETKIT_PRIMARY || attachType === C.BPF_NETKIT_PEER ? C.BPF_LINK_TYPE_NETKIT
      : fail(E.EINVAL);
    return this.#open({ kind: 'link', id: 0, type, progId: prog.id, target: attr.readUInt32LE(4), attachType, detached: false });
  }

  #info(attr: Buffer): number {
    const o = this.#object(attr.readUInt32LE(0));
    const len = attr.readUInt32LE(4);
    const info = memoryAt(ptr(attr, 8), len);
    const full = Buffer.alloc(Math.max(len, 256));
    copy(info, full); // in/out fields (nr_map_ids, map_ids) come from the caller
    switch (o.kind) {
      case 'prog': {
        full.writeUInt32LE(o.type, 0);
        full.writeUInt32LE(o.id, 4);
        copy(o.tag, full, 8);
        full.writeUInt32LE(0, 16); // jited_prog_len: nothing is JITed here
        full.writeUInt32LE(o.insns.length, 20);
        const room = full.readUInt32LE(52);
        if (room > 0 && ptr(full, 56) !== 0n) {
          const ids = memoryAt(ptr(full, 56), 4 * room);
          o.mapIds.slice(0, room).forEach((id, i) => ids.writeUInt32LE(id, 4 * i));
        }
        full.writeUInt32LE(o.mapIds.length, 52);
        full.fill(0, 64, 80);
        full.write(o.name, 64, 'latin1');
        full.writeUInt32LE(o.license === 'GPL' ? 1 : 0, 84);
        full.writeUInt32LE(o.btfFd !== 0 ? (this.#object(o.btfFd).id) : 0, 128);
        full.writeUInt32LE(o.attachBtfId, 224);
        break;
      }
      case 'map':
        full.writeUInt32LE(o.type, 0);
        full.writeUInt32LE(o.id, 4);
        full.writeUInt32LE(o.keySize, 8);
        full.writeUInt32LE(o.valueSize, 12);
        full.writeUInt32LE(o.maxEntries, 16);
        full.writeUInt32LE(o.flags, 20);
        full.fill(0, 24, 40);
        full.write(o.name, 24, 'latin1');
        full.writeUInt32LE(o.btfFd !== 0 ? this.#object(o.btfFd).id : 0, 64);
        full.writeUInt32LE(o.btfKeyTypeId, 68);
        full.writeUInt32LE(o.btfValueTypeId, 72);
        full.writeBigUInt64LE(o.mapExtra, 80);
        break;
      case 'link':
        full.writeUInt32LE(o.type, 0);
        full.writeUInt32LE(o.id, 4);
        full.writeUInt32LE(o.progId, 8);
        full.writeUInt32LE(o.target, 16);
        if (o.type !== C.BPF_LINK_TYPE_XDP) full.writeUInt32LE(o.attachType, 20);
        break;
      case 'btf':
        full.writeUInt32LE(o.blob.length, 8);
        full.writeUInt32LE(o.id, 12);
        break;
    }
    copy(full, info, 0, 0, len);
    return 0;
  }
}
