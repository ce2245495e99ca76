// The ELF writer and reader: round trips of a hand-built ObjectSpec, the error path format, and
// the written object loaded by the real tools (bpftool prog loadall, iproute2 tc in a netns).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Instruction, SourceLocation } from '../compiler/asm/instruction.ts';
import { Btf } from '../compiler/btf/btf.ts';
import { addFunc, addPtr } from '../compiler/btf/builders.ts';
import { Linkage } from '../compiler/btf/types.ts';
import { ObjectError } from '../compiler/elf/errors.ts';
import { readObject } from '../compiler/elf/reader.ts';
import { sectionDef, ProgType, AttachType } from '../compiler/elf/sections.ts';
import type { ObjectSpec, ProgramSpec } from '../compiler/elf/spec.ts';
import { linesFromSource, writeObject } from '../compiler/elf/writer.ts';
import { all, describeWith, hasTool, kernelBpf } from './support/env.ts';

// Raw instructions, so these tests do not depend on the assembler.
const insn = (opcode: number, dst = 0, src = 0, offset = 0, imm = 0, extra: Partial<Instruction> = {}): Instruction => ({ opcode, dst, src, offset, imm, ...extra });
const lddw = (dst: number, src: number, reference: string): Instruction => ({ opcode: 0x18, dst, src, offset: 0, imm: 0, imm2: 0, reference });
const at = (line: number, text: string): SourceLocation => ({ file: 'counter.ts', line, column: 3, text });
const MOV64_REG = 0xbf, MOV64_IMM = 0xb7, ADD64_IMM = 0x07, STXW = 0x63, LDXW = 0x61, ATOMIC_ADD_DW = 0xdb;
const CALL = 0x85, EXIT = 0x95, JEQ_IMM = 0x15;

/**
 * A tc program that looks up a hash map, calls a static .text function, and touches .data,
 * .rodata and .bss; a second program in the same section. With BTF for maps, funcs and globals.
 */
function counterSpec(): ObjectSpec {
  const btf = new Btf();
  const u32 = btf.add({ kind: 'int', name: 'unsigned int', size: 4, encoding: 0, bitOffset: 0, bits: 32 });
  const u64 = btf.add({ kind: 'int', name: 'unsigned long long', size: 8, encoding: 0, bitOffset: 0, bits: 64 });
  const int = btf.add({ kind: 'int', name: 'int', size: 4, encoding: 1, bitOffset: 0, bits: 32 });
  const long = btf.add({ kind: 'int', name: 'long', size: 8, encoding: 1, bitOffset: 0, bits: 64 });
  const count = addFunc(btf, 'count', int, [{ name: 'ctx', type: addPtr(btf, 0) }], Linkage.GLOBAL);
  const peek = addFunc(btf, 'peek', int, [{ name: 'ctx', type: addPtr(btf, 0) }], Linkage.GLOBAL);
  const account = addFunc(btf, 'account', long, [{ name: 'slot', type: addPtr(btf, u64) }], Linkage.STATIC);

  const countInsns: Instruction[] = [
    insn(MOV64_REG, 6, 1, 0, 0, { symbol: 'count', source: at(10, 'count(skb) {') }),
    insn(MOV64_IMM, 1, 0, 0, 0, { source: at(11, 'const key = 0;') }),
    insn(STXW, 10, 1, -4),
    insn(MOV64_REG, 2, 10),
    insn(ADD64_IMM, 2, 0, 0, -4, { source: at(12, 'const slot = counts.lookup(key);') }),
    lddw(1, 1, 'counts'),
    insn(CALL, 0, 0, 0, 1),
    insn(JEQ_IMM, 0, 0, 2, 0, { source: at(13, 'if (slot) account(slot);') }),
    insn(MOV64_REG, 1, 0),
    insn(CALL, 0, 1, 0, -1, { reference: 'account' }),
    { ...lddw(1, 2, '.data'), source: at(14, 'hits++;') },
    insn(MOV64_IMM, 2, 0, 0, 1),
    insn(ATOMIC_ADD_DW, 1, 2),
    { ...lddw(1, 2, '.rodata'), source: at(15, 'return verdict;') },
    insn(LDXW, 0, 1),
    insn(EXIT),
  ];
  const peekInsns: Instruction[] = [
    { ...lddw(1, 2, '.bss'), symbol: 'peek', source: at(20, 'peek() { scratch; return 0; }') },
    insn(LDXW, 2, 1),
    insn(MOV64_IMM, 0, 0, 0, 0),
    insn(EXIT),
  ];
  const accountInsns: Instruction[] = [
    insn(MOV64_IMM, 2, 0, 0, 1, { symbol: 'account', source: at(30, 'account(slot) { slot.value += 1; }') }),
    insn(ATOMIC_ADD_DW, 1, 2),
    insn(MOV64_IMM, 0, 0, 0, 0),
    insn(EXIT),
  ];
  const tc = { section: 'tc', progType: ProgType.SCHED_CLS, attachType: 0, sleepable: false };
  return {
    license: 'GPL',
    programs: [
      {
        name: 'count',
        ...tc,
        instructions: countInsns,
        relocations: [
          { insn: 5, kind: 'map', symbol: 'counts' },
          { insn: 9, kind: 'call', symbol: 'account' },
          { insn: 10, kind: 'global', symbol: '.data', offset: 8 },
          { insn: 13, kind: 'global', symbol: '.rodata', offset: 0 },
        ],
        funcInfo: [{ insnOff: 0, typeId: count }],
        lineInfo: linesFromSource(countInsns),
      },
      {
        name: 'peek',
        ...tc,
        instructions: peekInsns,
        relocations: [{ insn: 0, kind: 'global', symbol: '.bss', offset: 0 }],
        funcInfo: [{ insnOff: 0, typeId: peek }],
        lineInfo: linesFromSource(peekInsns),
      },
    ],
    functions: [{ name: 'account', instructions: accountInsns, relocations: [], funcInfo: [{ insnOff: 0, typeId: account }], lineInfo: linesFromSource(accountInsns) }],
    maps: [
      { name: 'counts', type: 1, keySize: 4, valueSize: 8, maxEntries: 16, flags: 0, pinning: 0, keyTypeId: u32, valueTypeId: u64 },
      { name: 'stats', type: 2, keySize: 4, valueSize: 8, maxEntries: 4, flags: 0, pinning: 0, keyTypeId: 0, valueTypeId: 0 },
      { name: '.rodata', type: 2, keySize: 4, valueSize: 4, maxEntries: 1, flags: 0x80, pinning: 0, keyTypeId: 0, valueTypeId: 0, section: '.rodata', initialValue: Buffer.from([2, 0, 0, 0]), readOnly: true },
      { name: '.data', type: 2, keySize: 4, valueSize: 16, maxEntries: 1, flags: 0, pinning: 0, keyTypeId: 0, valueTypeId: 0, section: '.data', initialValue: Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]), readOnly: false },
      { name: '.bss', type: 2, keySize: 4, valueSize: 4, maxEntries: 1, flags: 0, pinning: 0, keyTypeId: 0, valueTypeId: 0, section: '.bss', initialValue: Buffer.alloc(4), readOnly: false },
    ],
    variables: [
      { name: 'verdict', section: '.rodata', offset: 0, size: 4, typeId: u32 },
      { name: 'flags', section: '.data', offset: 0, size: 4, typeId: u32 },
      { name: 'hits', section: '.data', offset: 8, size: 8, typeId: u64 },
      { name: 'scratch', section: '.bss', offset: 0, size: 4, typeId: u32 },
    ],
    btf,
  };
}

/** counterSpec plus a sleepable syscall program with a kfunc call and a callback address. */
function fullSpec(): ObjectSpec {
  const spec = counterSpec();
  const btf = spec.btf!;
  const ctx = btf.add({ kind: 'struct', name: 'bpf_crypto_ctx', size: 0, members: [] });
  addFunc(btf, 'bpf_crypto_ctx_release', 0, [{ name: 'ctx', type: addPtr(btf, ctx) }], Linkage.EXTERN);
  const insns: Instruction[] = [
    { ...lddw(2, 4, 'account'), symbol: 'sys' },
    insn(CALL, 0, 2, 0, -1, { reference: 'bpf_crypto_ctx_release' }),
    insn(MOV64_IMM, 0, 0, 0, 0),
    insn(EXIT),
  ];
  spec.programs.push({
    name: 'sys',
    section: 'syscall',
    progType: ProgType.SYSCALL,
    attachType: 0,
    sleepable: true,
    instructions: insns,
    relocations: [
      { insn: 0, kind: 'func_addr', symbol: 'account' },
      { insn: 1, kind: 'kfunc', symbol: 'bpf_crypto_ctx_release' },
    ],
    funcInfo: [{ insnOff: 0, typeId: addFunc(btf, 'sys', 0, [], Linkage.GLOBAL) }],
    lineInfo: [],
  });
  return spec;
}

/** What the reader gives back for global-data maps: their DATASEC as value type. */
function withDatasecs(spec: ObjectSpec, btf: Btf): ObjectSpec {
  return { ...spec, btf, maps: spec.maps.map((m) => (m.section ? { ...m, valueTypeId: btf.find(m.section, 'datasec')! } : m)) };
}

describe('ELF writer → reader', () => {
  it('round-trips programs, functions, maps, globals, relocations, BTF and func/line info', () => {
    const spec = fullSpec();
    const read = readObject(writeObject(spec));
    expect(read.btf!.types.slice(0, spec.btf!.types.length)).toEqual(spec.btf!.types); // the writer only appends
    expect(read).toEqual(withDatasecs(spec, read.btf!));
  });

  it('is a fixpoint: writing what it read gives the same bytes', () => {
    const once = writeObject(fullSpec());
    expect(writeObject(readObject(once))).toEqual(once);
  });

  it('describes maps in BTF as libbpf expects: .maps DATASEC of definition VARs', () => {
    const btf = readObject(writeObject(counterSpec())).btf!;
    const maps = btf.get(btf.find('.maps', 'datasec')!) as { vars: { type: number; offset: number; size: number }[] };
    expect(maps.vars.map((v) => [btf.nameOf(v.type), v.offset, v.size])).toEqual([
      ['counts', 0, 32],
      ['stats', 32, 32],
    ]);
    const ksyms = readObject(writeObject(fullSpec())).btf!;
    const sec = ksyms.get(ksyms.find('.ksyms', 'datasec')!) as { vars: { type: number }[] };
    expect(sec.vars.map((v) => ksyms.nameOf(v.type))).toEqual(['bpf_crypto_ctx_release']);
  });

  it('synthesizes func_info for code without it, and a DATASEC for untyped globals', () => {
    const spec = counterSpec();
    for (const p of [...spec.programs, ...spec.functions]) p.funcInfo = [];
    spec.variables.find((v) => v.name === 'scratch')!.typeId = 0;
    const read = readObject(writeObject(spec));
    const btf = read.btf!;
    expect(read.programs.map((p) => btf.describe(p.funcInfo[0]!.typeId))).toEqual(['count', 'peek']);
    expect(btf.get(read.functions[0]!.funcInfo[0]!.typeId)).toMatchObject({ kind: 'func', name: 'account', linkage: Linkage.STATIC });
    expect(btf.sizeof(read.maps.find((m) => m.name === '.bss')!.valueTypeId)).toBe(4);
    expect(read.variables.find((v) => v.name === 'scratch')).toMatchObject({ section: '.bss', offset: 0, size: 4 });
  });

  it('replaces a map definition that no longer matches its MapSpec', () => {
    const read = readObject(writeObject(counterSpec()));
    read.maps[0]!.maxEntries = 99;
    expect(readObject(writeObject(read)).maps[0]!.maxEntries).toBe(99);
  });

  it('wraps errors with the path to the fault', () => {
    const spec = counterSpec();
    const egress: ProgramSpec = { ...spec.programs[0]!, name: 'egress', relocations: [{ insn: 5, kind: 'map', symbol: 'sa_map' }] };
    spec.programs = [egress];
    const error = (() => {
      try {
        writeObject(spec);
      } catch (e) {
        return e as ObjectError;
      }
    })();
    expect(error).toBeInstanceOf(ObjectError);
    expect(error!.message).toBe('section "tc": symbol egress: insn 5: relocating: unknown map "sa_map"');
    expect(error!.path).toEqual(['section "tc"', 'symbol egress', 'insn 5', 'relocating']);
    egress.relocations = [{ insn: 6, kind: 'map', symbol: 'counts' }];
    expect(() => writeObject(spec)).toThrow('section "tc": symbol egress: insn 6: relocating: map relocation needs a 64-bit immediate load, found opcode 0x85');
    egress.relocations = [{ insn: 6, kind: 'kfunc', symbol: 'bpf_nope' }];
    expect(() => writeObject(spec)).toThrow('BTF: kfunc bpf_nope: no extern FUNC declaration in BTF');
    egress.relocations = [{ insn: 9, kind: 'call', symbol: 'peek' }];
    spec.programs.push({ ...spec.programs[0]!, name: 'peek', relocations: [] });
    spec.functions = [];
    expect(() => writeObject(spec)).toThrow('section "tc": symbol egress: insn 9: relocating: "peek" is a program, not a .text function');
    spec.btf = undefined;
    expect(() => writeObject(spec)).toThrow('map counts: key type [1] is not in the spec\'s BTF (1 types)');
  });

  it('refuses what is not a BPF object', () => {
    expect(() => readObject(Buffer.from('\x7fELF not really'))).toThrow();
    const x86 = writeObject(counterSpec());
    x86.writeUInt16LE(62, 18);
    expect(() => readObject(x86)).toThrow(/e_machine 62 is not EM_BPF/);
  });
});

describe('libbpf section names', () => {
  it('maps names to program and attach types', () => {
    expect(sectionDef('tc')).toEqual({ progType: ProgType.SCHED_CLS, attachType: 0, sleepable: false });
    expect(sectionDef('tcx/ingress')).toEqual({ progType: ProgType.SCHED_CLS, attachType: AttachType.TCX_INGRESS, sleepable: false });
    expect(sectionDef('tc/egress')?.attachType).toBe(AttachType.TCX_EGRESS);
    expect(sectionDef('classifier')?.progType).toBe(ProgType.SCHED_CLS);
    expect(sectionDef('xdp')).toEqual({ progType: ProgType.XDP, attachType: AttachType.XDP, sleepable: false });
    expect(sectionDef('syscall')).toEqual({ progType: ProgType.SYSCALL, attachType: 0, sleepable: true });
    expect(sectionDef('socket')?.progType).toBe(ProgType.SOCKET_FILTER);
    expect(sectionDef('kprobe/do_unlinkat')?.progType).toBe(ProgType.KPROBE);
    expect(sectionDef('fentry.s/bpf_fentry_test1')).toEqual({ progType: ProgType.TRACING, attachType: AttachType.TRACE_FENTRY, sleepable: true });
    expect(sectionDef('kprobex')).toBeUndefined();
    expect(sectionDef('.text')).toBeUndefined();
  });
});

const tools = all(kernelBpf(), hasTool('bpftool'), hasTool('tc'), hasTool('ip'));
describeWith(tools, 'written objects against the real tools', () => {
  const unique = `ebpfts_elf_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  let dir = '';
  let obj = '';
  const pins: string[] = [];
  const run = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'elf-'));
    obj = join(dir, 'counter.o');
    writeFileSync(obj, new Uint8Array(writeObject(counterSpec())));
  });
  afterAll(() => {
    for (const p of pins) rmSync(p, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('bpftool btf dump parses our .BTF', () => {
    const dump = run('bpftool', 'btf', 'dump', 'file', obj);
    expect(dump).toMatch(/DATASEC '\.maps' size=64 vlen=2/);
    expect(dump).toMatch(/FUNC 'count' type_id=\d+ linkage=global/);
    expect(dump).toMatch(/FUNC 'account' type_id=\d+ linkage=static/);
    expect(dump).toMatch(/DATASEC '\.data' size=16 vlen=2/);
  });

  it('bpftool prog loadall loads it with BTF maps, func info and line info', () => {
    const pin = `/sys/fs/bpf/${unique}`;
    pins.push(pin);
    run('bpftool', 'prog', 'loadall', obj, pin);
    expect(readdirSync(pin).sort()).toEqual(['count', 'peek']);
    const prog = JSON.parse(run('bpftool', 'prog', 'show', 'pinned', `${pin}/count`, '--json'));
    expect(prog.btf_id).toBeGreaterThan(0);
    const maps = (prog.map_ids as number[]).map((id) => JSON.parse(run('bpftool', 'map', 'show', 'id', String(id), '--json')));
    const counts = maps.find((m) => m.name === 'counts');
    expect(counts).toMatchObject({ type: 'hash', bytes_key: 4, bytes_value: 8, max_entries: 16 });
    expect(counts.btf_id).toBeGreaterThan(0);
    expect(maps.map((m) => m.name as string).filter((n) => n.includes('.')).length).toBe(2); // <obj>.rodata, <obj>.data
    const xlated = run('bpftool', 'prog', 'dump', 'xlated', 'pinned', `${pin}/count`);
    expect(xlated).toContain('int count(void * ctx):'); // func info
    expect(xlated).toContain('; const slot = counts.lookup(key);'); // line info
    expect(xlated).toContain('long account(unsigned long long * slot):');
  });

  describe('iproute2 tc', () => {
    const netns = `${unique}_ns`;
    afterAll(() => {
      try {
        run('ip', 'netns', 'del', netns);
      } catch {
        // never created
      }
    });
    it('attaches the written object as a direct-action classifier in a fresh netns', () => {
      run('ip', 'netns', 'add', netns);
      run('ip', '-n', netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1');
      run('ip', '-n', netns, 'link', 'set', 'eth0', 'up');
      run('ip', 'netns', 'exec', netns, 'tc', 'qdisc', 'add', 'dev', 'eth0', 'clsact');
      run('ip', 'netns', 'exec', netns, 'tc', 'filter', 'add', 'dev', 'eth0', 'ingress', 'bpf', 'da', 'obj', obj, 'sec', 'tc');
      const show = run('ip', 'netns', 'exec', netns, 'tc', 'filter', 'show', 'dev', 'eth0', 'ingress');
      expect(show).toMatch(/counter\.o:\[tc\] direct-action .* name count /);
    });
  });
});
