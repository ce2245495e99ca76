// runtime/sys against the running kernel (root, bpffs, BTF). Every object is closed and every
// pin removed, so runs do not accumulate state in the kernel.
import { mkdirSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encode, type Instruction } from '../compiler/asm/instruction.ts';
import * as C from '../runtime/sys/constants.ts';
import {
  BpfError,
  FD,
  VerifierError,
  btfInfo,
  btfLoad,
  ids,
  mapCreate,
  mapDelete,
  mapGetNextKey,
  mapInfo,
  mapKeys,
  mapLookup,
  mapUpdate,
  objGet,
  objPin,
  perCpuValueSize,
  possibleCpus,
  progGetFdById,
  progInfo,
  progLoad,
  progTestRun,
} from '../runtime/sys/index.ts';
import { describeWith, kernelBpf } from './support/env.ts';

const insn = (opcode: number, dst = 0, src = 0, offset = 0, imm = 0): Instruction => ({ opcode, dst, src, offset, imm });
const MOV64_IMM = 0xb7;
const MOV64_REG = 0xbf;
const CALL = 0x85;
const EXIT = 0x95;
const RETURN_3 = encode([insn(MOV64_IMM, 0, 0, 0, 3), insn(EXIT)]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** The smallest valid BTF: the header and one type, `int` (4 bytes, signed, 32 bits). */
function minimalBtf(): Buffer {
  const strings = Buffer.from('\0int\0', 'latin1');
  const types = Buffer.alloc(16);
  types.writeUInt32LE(1, 0); //                      name_off → "int"
  types.writeUInt32LE(1 << 24, 4); //                info: kind INT (1), vlen 0
  types.writeUInt32LE(4, 8); //                      size
  types.writeUInt32LE((1 << 24) | 32, 12); //       encoding SIGNED, offset 0, bits 32
  const header = Buffer.alloc(24);
  header.writeUInt16LE(0xeb9f, 0); //               magic
  header.writeUInt8(1, 2); //                       version
  header.writeUInt32LE(24, 4); //                   hdr_len
  header.writeUInt32LE(0, 8); //                    type_off
  header.writeUInt32LE(types.length, 12); //        type_len
  header.writeUInt32LE(types.length, 16); //        str_off
  header.writeUInt32LE(strings.length, 20); //      str_len
  return Buffer.concat([header, types, strings].map((b) => new Uint8Array(b.buffer, b.byteOffset, b.length)));
}

describeWith(kernelBpf(), 'runtime/sys on the kernel', () => {
  const open: FD[] = [];
  const own = <T extends FD>(fd: T): T => {
    open.push(fd);
    return fd;
  };
  const pinDir = `/sys/fs/bpf/ebpf-ts-sys-${process.pid}`;
  beforeAll(() => mkdirSync(pinDir));
  afterAll(() => {
    for (const fd of open) fd.close();
    rmSync(pinDir, { recursive: true, force: true });
  });

  it('hash map: update, lookup, next key from null, delete', () => {
    const m = own(mapCreate({ type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 4, name: 'sys_hash' }));
    mapUpdate(m, u32(10), Buffer.alloc(8, 0xaa));
    mapUpdate(m, u32(20), Buffer.alloc(8, 0xbb), C.BPF_NOEXIST);
    expect(() => mapUpdate(m, u32(20), Buffer.alloc(8), C.BPF_NOEXIST)).toThrow('bpf(BPF_MAP_UPDATE_ELEM): file exists — the key exists (BPF_NOEXIST)');
    expect(mapLookup(m, u32(10), 8)).toEqual(Buffer.alloc(8, 0xaa));
    expect(mapLookup(m, u32(30), 8)).toBeNull();
    expect(mapGetNextKey(m, null, 4)).not.toBeNull();
    expect([...mapKeys(m, 4)].map((k) => k.readUInt32LE(0)).sort()).toEqual([10, 20]);
    expect(mapDelete(m, u32(10))).toBe(true);
    expect(mapDelete(m, u32(10))).toBe(false);
    expect([...mapKeys(m, 4)].map((k) => k.readUInt32LE(0))).toEqual([20]);
    expect(mapInfo(m)).toMatchObject({ type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 4, name: 'sys_hash' });
  });

  it('array map: preallocated, next key walks indexes, delete is EINVAL', () => {
    const m = own(mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 3 }));
    expect(mapLookup(m, u32(2), 4)).toEqual(u32(0));
    mapUpdate(m, u32(1), u32(77));
    expect(mapLookup(m, u32(1), 4)).toEqual(u32(77));
    expect(mapLookup(m, u32(3), 4)).toBeNull();
    expect([...mapKeys(m, 4)].map((k) => k.readUInt32LE(0))).toEqual([0, 1, 2]);
    expect(() => mapDelete(m, u32(1))).toThrow(/bpf\(BPF_MAP_DELETE_ELEM\): invalid argument/);
  });

  it('per-CPU array: one 8-aligned slot per possible CPU', () => {
    const m = own(mapCreate({ type: C.BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 }));
    const size = perCpuValueSize(4);
    expect(size).toBe(8 * possibleCpus());
    const v = Buffer.alloc(size);
    for (let cpu = 0; cpu < possibleCpus(); cpu++) v.writeUInt32LE(100 + cpu, 8 * cpu);
    mapUpdate(m, u32(0), v);
    expect(mapLookup(m, u32(0), size)).toEqual(v);
  });

  it('loads a minimal BTF blob, and rejects a broken one with the checker log', () => {
    const { fd } = btfLoad(minimalBtf());
    own(fd);
    expect(btfInfo(fd).size).toBe(minimalBtf().length);
    const broken = minimalBtf();
    broken.writeUInt32LE((1 << 24) | 64, 24 + 12); // the int's encoding word: 64 bits in a 4-byte int
    let e: unknown;
    try {
      own(btfLoad(broken).fd);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(VerifierError);
    expect((e as VerifierError).command).toBe('BPF_BTF_LOAD');
    expect((e as VerifierError).message).toMatch(/^bpf\(BPF_BTF_LOAD\): invalid argument — .*nr_bits exceeds type_size$/);
  });

  it('loads a socket filter and a tc program', () => {
    const sk = own(progLoad({ type: C.BPF_PROG_TYPE_SOCKET_FILTER, insns: RETURN_3, license: 'GPL', name: 'sys_sk' }).fd);
    const tc = own(progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: RETURN_3, license: 'GPL', name: 'sys_tc' }).fd);
    expect(progInfo(sk)).toMatchObject({ type: C.BPF_PROG_TYPE_SOCKET_FILTER, name: 'sys_sk', gplCompatible: true });
    const info = progInfo(tc);
    expect(info).toMatchObject({ type: C.BPF_PROG_TYPE_SCHED_CLS, name: 'sys_tc', xlatedProgLen: 16, mapIds: [] });
    expect(info.tag).toMatch(/^[0-9a-f]{16}$/);
    expect(info.id).toBeGreaterThan(0);
  });

  it('a rejected program throws VerifierError with the log and its last lines as message', () => {
    let e: unknown;
    try {
      own(progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: encode([insn(EXIT)]), license: 'GPL', name: 'sys_bad' }).fd);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(VerifierError);
    const v = e as VerifierError;
    expect(v.code).toBe('EACCES');
    expect(v.log).toContain('R0 !read_ok');
    expect(v.log.at(-1)).toMatch(/^processed \d+ insns/);
    expect(v.message).toBe('bpf(BPF_PROG_LOAD): permission denied — program sys_bad: 0: (95) exit: R0 !read_ok');
  });

  it('test run of a tc program: retval 3, the packet back', () => {
    const tc = own(progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: RETURN_3, license: 'GPL' }).fd);
    const packet = Buffer.alloc(64);
    for (let i = 0; i < 64; i++) packet[i] = i;
    const r = progTestRun(tc, { dataIn: packet, repeat: 1 });
    expect(r.retval).toBe(3);
    expect(r.dataOut).toEqual(packet);
  });

  it('test run of a program that grows the packet with bpf_skb_change_tail', () => {
    // r1 = ctx; r2 = 128; r3 = 0; call bpf_skb_change_tail; r0 = 3; exit
    const grow = encode([
      insn(MOV64_IMM, 2, 0, 0, 128),
      insn(MOV64_IMM, 3, 0, 0, 0),
      insn(CALL, 0, 0, 0, C.BPF_FUNC_skb_change_tail),
      insn(MOV64_IMM, 0, 0, 0, 3),
      insn(EXIT),
    ]);
    const tc = own(progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: grow, license: 'GPL', name: 'sys_grow' }).fd);
    const packet = Buffer.alloc(64, 0x5a);
    const r = progTestRun(tc, { dataIn: packet });
    expect(r.retval).toBe(3);
    expect(r.dataOut.length).toBe(128);
    expect(r.dataOut.subarray(0, 64)).toEqual(packet);
    // With room for only the input, the kernel says ENOSPC and the retry gets the whole packet.
    expect(progTestRun(tc, { dataIn: packet, dataSizeOut: 64 }).dataOut.length).toBe(128);
  });

  it('pins under bpffs, gets the pin back, and explains bad pin paths', () => {
    const m = own(mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 1, name: 'sys_pinned' }));
    const path = `${pinDir}/map`;
    objPin(m, path);
    const again = own(objGet(path));
    expect(mapInfo(again).id).toBe(mapInfo(m).id);
    const ro = own(objGet(path, C.BPF_F_RDONLY));
    expect(() => mapUpdate(ro, u32(0), u32(1))).toThrow(BpfError);
    expect(() => objPin(m, path)).toThrow(`bpf(BPF_OBJ_PIN): file exists — ${path}: already pinned`);
    expect(() => objGet(`${pinDir}/absent`)).toThrow(`bpf(BPF_OBJ_GET): no such file or directory — ${pinDir}/absent: nothing pinned there`);
    expect(() => objGet(`${pinDir}/no/such/dir`)).toThrow(`— ${pinDir}/no/such/dir: directory ${pinDir}/no/such does not exist`);
    expect(() => objGet('/tmp/ebpf-ts-not-bpffs')).toThrow('bpf(BPF_OBJ_GET): no such file or directory — /tmp/ebpf-ts-not-bpffs: /tmp is not on a bpf filesystem');
  });

  it('next-id iteration finds our program, and its fd by id is the same program', () => {
    const tc = own(progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: RETURN_3, license: 'GPL', name: 'sys_iter' }).fd);
    const { id } = progInfo(tc);
    expect([...ids('prog')]).toContain(id);
    const byId = own(progGetFdById(id));
    expect(progInfo(byId)).toMatchObject({ id, name: 'sys_iter' });
    const m = own(mapCreate({ type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 4, maxEntries: 1 }));
    expect([...ids('map')]).toContain(mapInfo(m).id);
  });

  it('a program that uses a map lists its id', () => {
    const m = own(mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 }));
    // r1 = map (LD_IMM64, BPF_PSEUDO_MAP_FD); r0 = 0; exit
    const prog = encode([
      { opcode: 0x18, dst: 1, src: C.BPF_PSEUDO_MAP_FD, offset: 0, imm: m.value, imm2: 0 },
      insn(MOV64_REG, 6, 1),
      insn(MOV64_IMM, 0, 0, 0, 0),
      insn(EXIT),
    ]);
    const p = own(progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: prog, license: 'GPL' }).fd);
    expect(progInfo(p).mapIds).toEqual([mapInfo(m).id]);
  });
});
