// runtime/sys against the in-memory fake: attr layouts, the verifier-log protocol, error messages.
// No root needed: every bpf() goes to FakeBpf through overrideSyscall.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encode, type Instruction } from '../compiler/asm/instruction.ts';
import * as C from '../runtime/sys/constants.ts';
import {
  BpfError,
  FakeBpf,
  LOG_INITIAL_SIZE,
  LOG_MAX_SIZE,
  VerifierError,
  linkCreate,
  linkInfo,
  mapCreate,
  mapDelete,
  mapGetNextKey,
  mapInfo,
  mapKeys,
  mapLookup,
  mapLookupAndDelete,
  mapUpdate,
  objGet,
  objPin,
  progGetFdById,
  progInfo,
  progLoad,
  progTestRun,
  ids,
  summarizeLog,
  syscallOverridden,
  bpf,
  btfLoad,
} from '../runtime/sys/index.ts';

const insn = (opcode: number, dst = 0, src = 0, offset = 0, imm = 0): Instruction => ({ opcode, dst, src, offset, imm });
const RETURN_3 = encode([insn(0xb7, 0, 0, 0, 3), insn(0x95)]); // r0 = 3; exit
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

let fake: FakeBpf;
beforeEach(() => {
  fake = new FakeBpf({ cpus: 2 }).install();
});
afterEach(() => {
  fake.uninstall();
});

describe('override mechanism', () => {
  it('routes bpf() to the fake and back', () => {
    expect(syscallOverridden()).toBe(true);
    mapCreate({ type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 4, maxEntries: 1 });
    expect(fake.calls.map((c) => c.cmd)).toEqual([C.BPF_MAP_CREATE]);
    fake.uninstall();
    expect(syscallOverridden()).toBe(false);
  });

  it('closes FDs through the backend, once', () => {
    const m = mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
    expect(fake.openFds).toContain(m.value);
    m.close();
    m.close(); // idempotent: the second close must not reach close(2)
    expect(fake.openFds).toEqual([]);
    expect(() => m.value).toThrow(/closed/);
  });
});

describe('attr layouts', () => {
  it('BPF_MAP_CREATE puts every field at its offset', () => {
    const btf = btfLoad(Buffer.alloc(24)).fd.value; // the fake does not check BTF
    mapCreate({
      type: C.BPF_MAP_TYPE_LRU_HASH, keySize: 8, valueSize: 24, maxEntries: 1000, flags: C.BPF_F_NO_COMMON_LRU,
      name: 'sa_map', btfFd: btf, btfKeyTypeId: 3, btfValueTypeId: 7, mapExtra: 5n, numaNode: 0,
    });
    const attr = fake.calls.at(-1)!.attr;
    expect(attr.length).toBe(72);
    expect(attr.readUInt32LE(0)).toBe(C.BPF_MAP_TYPE_LRU_HASH);
    expect(attr.readUInt32LE(4)).toBe(8);
    expect(attr.readUInt32LE(8)).toBe(24);
    expect(attr.readUInt32LE(12)).toBe(1000);
    expect(attr.readUInt32LE(16)).toBe(C.BPF_F_NO_COMMON_LRU);
    expect(attr.toString('latin1', 28, 44)).toBe('sa_map'.padEnd(16, '\0'));
    expect(attr.readUInt32LE(48)).toBe(btf);
    expect(attr.readUInt32LE(52)).toBe(3);
    expect(attr.readUInt32LE(56)).toBe(7);
    expect(attr.readBigUInt64LE(64)).toBe(5n);
  });

  it('truncates names to 15 bytes and refuses characters the kernel refuses', () => {
    mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 1, name: 'a_very_long_map_name' });
    expect(fake.calls.at(-1)!.attr.toString('latin1', 28, 44)).toBe('a_very_long_map\0');
    expect(() => mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 1, name: 'sa-map' })).toThrow(/only \[A-Za-z0-9_.\]/);
  });

  it('BPF_PROG_LOAD: the kernel sees our bytecode, license and fields', () => {
    const { fd } = progLoad({
      type: C.BPF_PROG_TYPE_SCHED_CLS, insns: RETURN_3, license: 'Dual MIT/GPL', name: 'egress',
      flags: C.BPF_F_SLEEPABLE, expectedAttachType: C.BPF_TCX_EGRESS, attachBtfId: 42,
    });
    const prog = fake.programs()[0];
    expect(prog.insns).toEqual(RETURN_3);
    expect(prog.license).toBe('Dual MIT/GPL');
    expect(prog.name).toBe('egress');
    const attr = fake.calls.at(-1)!.attr;
    expect(attr.length).toBe(144);
    expect(attr.readUInt32LE(0)).toBe(C.BPF_PROG_TYPE_SCHED_CLS);
    expect(attr.readUInt32LE(4)).toBe(2); // insn_cnt counts 8-byte slots
    expect(attr.readUInt32LE(24)).toBe(0); // first try: no log
    expect(attr.readBigUInt64LE(32)).toBe(0n);
    expect(attr.readUInt32LE(44)).toBe(C.BPF_F_SLEEPABLE);
    expect(attr.readUInt32LE(68)).toBe(C.BPF_TCX_EGRESS);
    expect(attr.readUInt32LE(108)).toBe(42);
    expect(progInfo(fd).name).toBe('egress');
  });

  it('BPF_PROG_LOAD: func_info, line_info and fd_array carry counts and record sizes', () => {
    const funcInfo = Buffer.alloc(16); // two bpf_func_info records
    const lineInfo = Buffer.alloc(48); // three bpf_line_info records
    progLoad({ type: C.BPF_PROG_TYPE_XDP, insns: RETURN_3, license: 'GPL', funcInfo, lineInfo, btfFd: 9, fdArray: [11, 12] });
    const attr = fake.calls.at(-1)!.attr;
    expect(attr.readUInt32LE(72)).toBe(9);
    expect([attr.readUInt32LE(76), attr.readUInt32LE(88)]).toEqual([8, 2]);
    expect([attr.readUInt32LE(92), attr.readUInt32LE(104)]).toEqual([16, 3]);
    expect(attr.readBigUInt64LE(80)).not.toBe(0n);
    expect(attr.readBigUInt64LE(96)).not.toBe(0n);
    expect(attr.readBigUInt64LE(120)).not.toBe(0n);
  });

  it('refuses bytecode that is not whole instructions', () => {
    expect(() => progLoad({ type: C.BPF_PROG_TYPE_XDP, insns: Buffer.alloc(12), license: 'GPL' })).toThrow(/multiple of 8/);
  });

  it('BPF_LINK_CREATE for tcx: ifindex, attach type, placement', () => {
    const { fd } = progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: RETURN_3, license: 'GPL' });
    const link = linkCreate({ prog: fd, target: 7, attachType: C.BPF_TCX_INGRESS, flags: 1 << 3, placement: { relativeId: 99, expectedRevision: 4n } });
    const attr = fake.calls.at(-1)!.attr;
    expect([attr.readUInt32LE(0), attr.readUInt32LE(4), attr.readUInt32LE(8), attr.readUInt32LE(12), attr.readUInt32LE(16)]).toEqual([fd.value, 7, C.BPF_TCX_INGRESS, 8, 99]);
    expect(attr.readBigUInt64LE(24)).toBe(4n);
    expect(linkInfo(link)).toMatchObject({ type: C.BPF_LINK_TYPE_TCX, ifindex: 7, attachType: C.BPF_TCX_INGRESS, progId: progInfo(fd).id });
  });
});

describe('map semantics through the wrappers', () => {
  it('hash: update flags, lookup, delete, next key from null', () => {
    const m = mapCreate({ type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 2 });
    mapUpdate(m, u32(1), Buffer.alloc(8, 1));
    expect(() => mapUpdate(m, u32(1), Buffer.alloc(8, 2), C.BPF_NOEXIST)).toThrow('bpf(BPF_MAP_UPDATE_ELEM): file exists — the key exists (BPF_NOEXIST)');
    expect(() => mapUpdate(m, u32(2), Buffer.alloc(8, 2), C.BPF_EXIST)).toThrow(/no such key \(BPF_EXIST\)/);
    mapUpdate(m, u32(2), Buffer.alloc(8, 2));
    expect(() => mapUpdate(m, u32(3), Buffer.alloc(8, 3))).toThrow(/the map is full/);
    expect(mapLookup(m, u32(2), 8)).toEqual(Buffer.alloc(8, 2));
    expect(mapLookup(m, u32(9), 8)).toBeNull();
    expect([...mapKeys(m, 4)].map((k) => k.readUInt32LE(0))).toEqual([1, 2]);
    expect(mapDelete(m, u32(1))).toBe(true);
    expect(mapDelete(m, u32(1))).toBe(false);
    expect(mapGetNextKey(m, u32(2), 4)).toBeNull();
  });

  it('per-CPU values are round_up(value_size, 8) × cpus bytes', () => {
    const m = mapCreate({ type: C.BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
    const v = Buffer.alloc(16);
    v.writeUInt32LE(5, 0);
    v.writeUInt32LE(6, 8);
    mapUpdate(m, u32(0), v);
    expect(mapLookup(m, u32(0), 16)).toEqual(v);
  });

  it('queue: lookup peeks, lookup-and-delete pops, FIFO', () => {
    const q = mapCreate({ type: C.BPF_MAP_TYPE_QUEUE, keySize: 0, valueSize: 4, maxEntries: 4 });
    mapUpdate(q, null, u32(1));
    mapUpdate(q, null, u32(2));
    expect(mapLookup(q, null, 4)).toEqual(u32(1));
    expect(mapLookupAndDelete(q, null, 4)).toEqual(u32(1));
    expect(mapLookupAndDelete(q, null, 4)).toEqual(u32(2));
    expect(mapLookupAndDelete(q, null, 4)).toBeNull();
  });

  it('map info reads back what was created', () => {
    const m = mapCreate({ type: C.BPF_MAP_TYPE_HASH, keySize: 16, valueSize: 32, maxEntries: 64, name: 'flows', flags: C.BPF_F_NO_PREALLOC });
    expect(mapInfo(m)).toMatchObject({ type: C.BPF_MAP_TYPE_HASH, keySize: 16, valueSize: 32, maxEntries: 64, name: 'flows', flags: C.BPF_F_NO_PREALLOC });
  });
});

describe('verifier log protocol', () => {
  const logOf = (calls: FakeBpf['calls']) =>
    calls.filter((c) => c.cmd === C.BPF_PROG_LOAD).map((c) => ({ level: c.attr.readUInt32LE(24), size: c.attr.readUInt32LE(28), result: c.result }));

  it('loads without a log first and asks for none when it succeeds', () => {
    const loaded = progLoad({ type: C.BPF_PROG_TYPE_SOCKET_FILTER, insns: RETURN_3, license: 'GPL' });
    expect(logOf(fake.calls)).toEqual([{ level: 0, size: 0, result: loaded.fd.value }]);
    expect(loaded.log).toEqual([]);
  });

  it('retries a failure with a log, grows it on ENOSPC, and throws VerifierError with every line', () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `${i}: (b7) r0 = ${i} ; R0_w=${i} padding-to-make-the-log-long`);
    lines.push('R0 !read_ok', 'processed 5000 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0');
    const text = `${lines.join('\n')}\n`;
    expect(text.length).toBeGreaterThan(LOG_INITIAL_SIZE);
    fake.options.verifier = () => ({ errno: 13, log: text });
    let error: unknown;
    try {
      progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: RETURN_3, license: 'GPL', name: 'big' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(VerifierError);
    const v = error as VerifierError;
    expect(v.errno).toBe(13);
    expect(v.log).toEqual(lines);
    expect(v.truncated).toBe(false);
    expect(v.message).toBe('bpf(BPF_PROG_LOAD): permission denied — program big: 4999: (b7) r0 = 4999 ; R0_w=4999 padding-to-make-the-log-long: R0 !read_ok');
    // level 0 → EACCES; level 1 at 64 KiB → ENOSPC; then ×4, or log_true_size when that is more.
    const tries = logOf(fake.calls);
    expect(tries.map((t) => [t.level, t.result])).toEqual([[0, -13], [1, -28], [1, -13]]);
    expect(tries[1].size).toBe(LOG_INITIAL_SIZE);
    expect(tries[2].size).toBe(Math.max(LOG_INITIAL_SIZE * 4, Buffer.byteLength(text) + 1));
    expect(v.formatLog().split('\n')[0]).toBe('-- BEGIN PROG LOAD LOG --');
  });

  it('stops growing at 16 MiB and keeps the log tail, marked truncated', () => {
    const tail = 'R1 type=scalar expected=ctx';
    const text = `${'x'.repeat(LOG_MAX_SIZE + 1000)}\n${tail}\n`;
    fake.options.verifier = () => ({ errno: 22, log: text });
    const e = (() => {
      try {
        progLoad({ type: C.BPF_PROG_TYPE_XDP, insns: RETURN_3, license: 'GPL' });
      } catch (err) {
        return err as VerifierError;
      }
      throw new Error('load succeeded');
    })();
    expect(e).toBeInstanceOf(VerifierError);
    expect(e.truncated).toBe(true);
    expect(e.log.at(-1)).toBe(tail);
    expect(Math.max(...logOf(fake.calls).map((t) => t.size))).toBe(LOG_MAX_SIZE);
  });

  it('keeps the log of a successful load when one is asked for', () => {
    fake.options.verifier = () => ({ log: 'processed 2 insns (limit 1000000)\n' });
    const { log } = progLoad({ type: C.BPF_PROG_TYPE_XDP, insns: RETURN_3, license: 'GPL', logLevel: 1 });
    expect(log).toEqual(['processed 2 insns (limit 1000000)']);
    expect(logOf(fake.calls).map((t) => t.level)).toEqual([1]);
  });

  it('retries EAGAIN', () => {
    fake.failNext(C.BPF_PROG_LOAD, 11, 11);
    const { fd } = progLoad({ type: C.BPF_PROG_TYPE_XDP, insns: RETURN_3, license: 'GPL' });
    expect(fd.value).toBeGreaterThan(0);
    expect(logOf(fake.calls).map((t) => t.result)).toEqual([-11, -11, fd.value]);
  });

  it('a failure without a log is a BpfError, not a VerifierError', () => {
    fake.failNext(C.BPF_PROG_LOAD, 22, 22);
    const e = (() => {
      try {
        progLoad({ type: 999, insns: RETURN_3, license: 'GPL' });
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(BpfError);
    expect(e).not.toBeInstanceOf(VerifierError);
    expect((e as BpfError).message).toBe('bpf(BPF_PROG_LOAD): invalid argument');
  });

  it('summarizes with the last meaningful lines, skipping the statistics', () => {
    expect(summarizeLog(['0: (95) exit', 'R0 !read_ok', 'processed 1 insns (limit 1000000) max_states_per_insn 0', ''])).toBe('0: (95) exit: R0 !read_ok');
    expect(summarizeLog(['only line'])).toBe('only line');
  });
});

describe('error messages', () => {
  it('EPERM names the capability, in one line', () => {
    fake.options.privileged = false;
    expect(() => mapCreate({ type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 4, maxEntries: 1 })).toThrow(
      new BpfError('BPF_MAP_CREATE', 1),
    );
    let e: unknown;
    try {
      progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: RETURN_3, license: 'GPL' });
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(BpfError);
    expect(e).not.toBeInstanceOf(VerifierError);
    expect((e as BpfError).message).toBe('bpf(BPF_PROG_LOAD): operation not permitted — needs CAP_BPF / root');
    expect((e as BpfError).message).not.toContain('\n');
    expect((e as BpfError).code).toBe('EPERM');
  });

  it('names unknown commands by number', () => {
    expect(() => bpf(200, Buffer.alloc(8))).toThrow('bpf(bpf_cmd 200): invalid argument');
  });
});

describe('pins, ids, info, test run', () => {
  it('pins and gets objects by path; a second pin on the same path says so', () => {
    const { fd } = progLoad({ type: C.BPF_PROG_TYPE_XDP, insns: RETURN_3, license: 'GPL', name: 'pinned' });
    objPin(fd, '/sys/fs/bpf/test/prog');
    expect(() => objPin(fd, '/sys/fs/bpf/test/prog')).toThrow('bpf(BPF_OBJ_PIN): file exists — /sys/fs/bpf/test/prog');
    const again = objGet('/sys/fs/bpf/test/prog');
    expect(progInfo(again).id).toBe(progInfo(fd).id);
    expect(() => objGet('/sys/fs/bpf/test/missing')).toThrow(/no such file or directory — \/sys\/fs\/bpf\/test\/missing/);
  });

  it('iterates ids and opens fds by id; info lists map ids from LD_IMM64 map references', () => {
    const m = mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
    const usesMap = encode([{ opcode: 0x18, dst: 1, src: C.BPF_PSEUDO_MAP_FD, offset: 0, imm: m.value, imm2: 0 }, insn(0xb7), insn(0x95)]);
    const a = progLoad({ type: C.BPF_PROG_TYPE_XDP, insns: RETURN_3, license: 'GPL' }).fd;
    const b = progLoad({ type: C.BPF_PROG_TYPE_XDP, insns: usesMap, license: 'GPL' }).fd;
    const [ia, ib] = [progInfo(a), progInfo(b)];
    expect([...ids('prog')]).toEqual([ia.id, ib.id]);
    expect(ib.mapIds).toEqual([mapInfo(m).id]);
    expect(ib.tag).not.toBe(ia.tag);
    expect(progInfo(progGetFdById(ib.id)).id).toBe(ib.id);
  });

  it('test run returns retval and lets the output outgrow the input', () => {
    fake.options.testRun = (_p, data) => ({ retval: 3, dataOut: Buffer.concat([data, Buffer.alloc(64, 0xee)].map((b) => new Uint8Array(b.buffer, b.byteOffset, b.length))) });
    const { fd } = progLoad({ type: C.BPF_PROG_TYPE_SCHED_CLS, insns: RETURN_3, license: 'GPL' });
    const r = progTestRun(fd, { dataIn: Buffer.alloc(64, 1) });
    expect(r.retval).toBe(3);
    expect(r.dataOut.length).toBe(128);
    // Too little room: ENOSPC, then one retry with the size the kernel reported.
    const small = progTestRun(fd, { dataIn: Buffer.alloc(64, 1), dataSizeOut: 70 });
    expect(small.dataOut.length).toBe(128);
    expect(fake.calls.filter((c) => c.cmd === C.BPF_PROG_TEST_RUN).map((c) => c.result)).toEqual([0, -28, 0]);
  });
});
