// Loader logic without a kernel: every bpf() goes to FakeBpf, so stages, relocation, BTF ids,
// pinning and error mapping are checked by what the loader asked the "kernel" to do.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assemble } from '../compiler/asm/assembler.ts';
import { decode as decodeInsns, slotOffsets, type Instruction } from '../compiler/asm/instruction.ts';
import { formatListing } from '../compiler/asm/listing.ts';
import { CallSrc, PseudoSrc } from '../compiler/asm/opcode.ts';
import { Btf } from '../compiler/btf/btf.ts';
import { addFunc, addInt, addKfuncDeclaration } from '../compiler/btf/builders.ts';
import { Linkage } from '../compiler/btf/types.ts';
import { ProgType } from '../compiler/elf/sections.ts';
import { Pinning, type ObjectSpec, type Relocation } from '../compiler/elf/spec.ts';
import { readObject } from '../compiler/elf/reader.ts';
import { writeObject } from '../compiler/elf/writer.ts';
import { attachTc, detach, readRecords } from '../runtime/loader/attach.ts';
import { decode, encode } from '../runtime/loader/codec.ts';
import { LoaderError, ProgramLoadError } from '../runtime/loader/errors.ts';
import { openObject } from '../runtime/loader/object.ts';
import { BPF_F_SLEEPABLE, BPF_LINK_CREATE, BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_TCX_INGRESS } from '../runtime/sys/constants.ts';
import { FakeBpf, mapCreate, objPin, type FakeOptions } from '../runtime/sys/index.ts';

const KFUNC_ID = 4242;

/** vmlinux stand-in: bpf_rcu_read_lock at a known id. */
function kernelBtf(): Btf {
  const btf = new Btf();
  while (btf.types.length < KFUNC_ID - 1) btf.add({ kind: 'int', name: `pad${btf.types.length}`, size: 4, encoding: 0, bitOffset: 0, bits: 32 });
  const proto = btf.add({ kind: 'func_proto', returnType: 0, params: [] });
  expect(btf.types.length).toBe(KFUNC_ID);
  btf.add({ kind: 'func', name: 'bpf_rcu_read_lock', type: proto, linkage: Linkage.GLOBAL });
  return btf;
}

const asm = (text: string, file: string): Instruction[] => assemble(text, { file, allowExternal: true }).insns;

/** A tc program that uses a map, a .rodata variable, a .text function and a kfunc, plus a
 *  sleepable syscall program; relocations as the ELF reader records them. */
function objectSpec(): ObjectSpec {
  const btf = new Btf();
  const u32 = addInt(btf, 'unsigned int', 4, false);
  const u64 = addInt(btf, 'unsigned long long', 8, false);
  const counter = btf.add({ kind: 'struct', name: 'counter', size: 16, members: [{ name: 'packets', type: u64, bitOffset: 0 }, { name: 'bytes', type: u64, bitOffset: 64 }] });
  const entryFunc = addFunc(btf, 'entry', addInt(btf, 'int', 4, true), [], Linkage.GLOBAL);
  addKfuncDeclaration(btf, kernelBtf(), 'bpf_rcu_read_lock'); // the extern FUNC clang emits
  const entry = asm('entry:\n  r1 = counts ll\n  r2 = rodata ll\n  call helper\n  call bpf_rcu_read_lock\n  r0 = 0\n  exit\n', 'prog.ts');
  const reloc = (insn: number, kind: Relocation['kind'], symbol: string, offset?: number): Relocation => ({ insn, kind, symbol, ...(offset === undefined ? {} : { offset }) });
  return {
    license: 'GPL',
    btf,
    programs: [
      {
        name: 'entry', section: 'tc', progType: ProgType.SCHED_CLS, attachType: 0, sleepable: false, instructions: entry,
        relocations: [reloc(0, 'map', 'counts'), reloc(1, 'global', '.rodata', 4), reloc(2, 'call', 'helper'), reloc(3, 'kfunc', 'bpf_rcu_read_lock')],
        funcInfo: [{ insnOff: 0, typeId: entryFunc }], lineInfo: [],
      },
      { name: 'setup', section: 'syscall', progType: ProgType.SYSCALL, attachType: 0, sleepable: true, instructions: asm('setup:\n  r0 = 0\n  exit\n', 'setup.ts'), relocations: [], funcInfo: [], lineInfo: [] },
    ],
    functions: [{ name: 'helper', instructions: asm('helper:\n  r0 = 1\n  r0 += 2\n  exit\n', 'helper.ts'), relocations: [], funcInfo: [], lineInfo: [] }],
    maps: [
      { name: 'counts', type: 1, keySize: 4, valueSize: 16, maxEntries: 8, flags: 0, pinning: Pinning.NONE, keyTypeId: u32, valueTypeId: counter },
      { name: 'shared', type: 2, keySize: 4, valueSize: 8, maxEntries: 2, flags: 0, pinning: Pinning.BY_NAME, keyTypeId: u32, valueTypeId: u64 },
      { name: '.rodata', type: 2, keySize: 4, valueSize: 8, maxEntries: 1, flags: 0x80, pinning: 0, keyTypeId: 0, valueTypeId: 0, section: '.rodata', initialValue: Buffer.from([1, 0, 0, 0, 9, 0, 0, 0]), readOnly: true },
    ],
    variables: [],
  };
}

describe('loader through the fake syscall layer', () => {
  let fake: FakeBpf;
  const install = (o: FakeOptions = {}): FakeBpf => (fake = new FakeBpf(o).install());
  beforeEach(() => install());
  afterEach(() => fake.uninstall());
  const pinDir = '/sys/fs/bpf/test-fake';

  it('opens without a kernel: relocations recorded, no syscall made', () => {
    const obj = openObject(writeObject(objectSpec()), { name: 'fake' });
    expect(obj.stage).toBe('opened');
    expect(fake.calls).toHaveLength(0);
    const entry = obj.spec.programs.find((p) => p.name === 'entry')!;
    expect(entry.relocations.map((r) => [r.insn, r.kind, r.symbol])).toEqual([[0, 'map', 'counts'], [1, 'global', '.rodata'], [2, 'call', 'helper'], [3, 'kfunc', 'bpf_rcu_read_lock']]);
    expect(() => obj.map('counts')).toThrow(/only opened .*prepare/);
  });

  it('relocates map, global, call and kfunc references in one place, and appends .text callees', () => {
    const obj = openObject(objectSpec(), { name: 'fake' }).prepare({ pinDir, kernelBtf: kernelBtf() }).load();
    const loaded = fake.programs().find((p) => p.name === 'entry')!;
    const insns = decodeInsns(loaded.insns);
    const listing = formatListing(insns);
    const slots = slotOffsets(insns);
    // entry is 6 instructions (8 slots); helper is appended at slot 8.
    expect(insns, listing).toHaveLength(9);
    expect(insns[0], listing).toMatchObject({ src: PseudoSrc.MAP_FD, imm: obj.map('counts').fd.value });
    expect(insns[1], listing).toMatchObject({ src: PseudoSrc.MAP_VALUE, imm: obj.map('.rodata').fd.value, imm2: 4 });
    expect(insns[2], listing).toMatchObject({ src: CallSrc.LOCAL, imm: 8 - (slots[2]! + 1) });
    expect(insns[3], listing).toMatchObject({ src: CallSrc.KFUNC, imm: KFUNC_ID, offset: 0 });
    expect(insns.slice(6).map((i) => i.imm), listing).toEqual([1, 2, 0]);
    expect(loaded.mapIds).toEqual([obj.map('counts').info.id, obj.map('.rodata').info.id]);
    obj.close();
  });

  it('creates maps with BTF key/value ids, initialises and freezes .rodata, loads syscall programs sleepable', () => {
    const obj = openObject(objectSpec(), { name: 'fake' }).prepare({ pinDir, kernelBtf: kernelBtf() }).load();
    const creates = fake.calls.filter((c) => c.cmd === BPF_MAP_CREATE);
    const counts = creates.find((c) => c.attr.toString('latin1', 28, 34) === 'counts')!;
    const spec = objectSpec().maps[0]!;
    expect([counts.attr.readUInt32LE(52), counts.attr.readUInt32LE(56)]).toEqual([spec.keyTypeId, spec.valueTypeId]);
    expect(counts.attr.readUInt32LE(48)).toBeGreaterThan(0); // btf_fd
    const rodata = obj.map('.rodata');
    expect(rodata.info.name).toBe('fake.rodata');
    expect(rodata.lookup(Buffer.alloc(4))).toEqual(Buffer.from([1, 0, 0, 0, 9, 0, 0, 0]));
    expect(() => rodata.update(Buffer.alloc(4), Buffer.alloc(8))).toThrow(/operation not permitted/); // frozen
    expect(fake.programs().find((p) => p.name === 'setup')!.flags).toBe(BPF_F_SLEEPABLE);
    expect(fake.programs().find((p) => p.name === 'entry')!.flags).toBe(0);
    // func_info for entry and its appended helper (synthesised FUNC), line info from the sources.
    const load = fake.calls.find((c) => c.cmd === BPF_PROG_LOAD && c.attr.toString('latin1', 48, 53) === 'entry')!;
    expect(load.attr.readUInt32LE(88)).toBe(2); // func_info_cnt
    expect(load.attr.readUInt32LE(104)).toBe(9); // line_info_cnt: one per instruction with a source line
    expect(obj.program('entry').sourceOf(8)).toMatchObject({ file: 'helper.ts', line: 2 });
    obj.close();
    expect(fake.openFds).toEqual([]);
  });

  it('pins by-name maps, reuses a compatible pin and names the difference of an incompatible one', () => {
    const first = openObject(objectSpec(), { name: 'fake' }).prepare({ pinDir, kernelBtf: kernelBtf() });
    const id = first.map('shared').info.id;
    expect(fake.pins.has(`${pinDir}/shared`)).toBe(true);
    // (first stays open: the fake resolves a map's BTF through the creator's fd number)
    const again = openObject(objectSpec(), { name: 'fake' }).prepare({ pinDir, kernelBtf: kernelBtf() });
    expect(again.map('shared').info.id).toBe(id);
    expect(again.map('counts').info.id).not.toBe(first.map('counts').info.id);
    again.close();
    first.close();
    fake.unpin(`${pinDir}/shared`);
    objPin(mapCreate({ type: 2, keySize: 4, valueSize: 16, maxEntries: 2 }), `${pinDir}/shared`);
    expect(() => openObject(objectSpec(), { name: 'fake' }).prepare({ pinDir, kernelBtf: kernelBtf() })).toThrow(
      `object fake: map shared: pinned map ${pinDir}/shared is incompatible (value size 16 ≠ 8); remove it (rm ${pinDir}/shared) or rename the map`,
    );
  });

  it('maps a verifier refusal back to the source line of the failing instruction', () => {
    fake.uninstall();
    install({
      verifier: (p) => (p.name === 'entry' ? { errno: 13, log: "0: R1=ctx() R10=fp0\n4: (85) call pc+3\n8: (b7) r0 = 1\n9: (07) r0 += 2\nR0 pointer arithmetic prohibited\nprocessed 4 insns (limit 1000000)" } : { log: '' }),
    });
    let error: unknown;
    try {
      openObject(objectSpec(), { name: 'fake' }).load({});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProgramLoadError);
    const e = error as ProgramLoadError;
    expect(e.message).toBe('object fake: program entry: load: R0 pointer arithmetic prohibited (insn 9 at helper.ts:3:3: r0 += 2)');
    expect(e.location).toMatchObject({ file: 'helper.ts', line: 3 });
    expect(e.details).toContain('-- BEGIN PROG LOAD LOG --\n0: R1=ctx() R10=fp0  ; prog.ts:2:3\n');
    expect(e.details).toContain('9: (07) r0 += 2  ; helper.ts:3:3');
    expect(e.tail(2)).toBe(`${e.message}\n  R0 pointer arithmetic prohibited\n  processed 4 insns (limit 1000000)`);
    expect(fake.openFds).toEqual([]); // a failed load closes what prepare made
  });

  it('says which kfunc the kernel lacks', () => {
    const kernel = new Btf();
    expect(() => openObject(objectSpec(), { name: 'fake' }).prepare({ kernelBtf: kernel }).relocate()).toThrow(
      'object fake: program entry: insn 3: relocating: kfunc bpf_rcu_read_lock is not in the kernel\'s BTF (kernel too old, or the function lives in a module)',
    );
  });

  it('reads a clang-style object back and loads it the same way', () => {
    const obj = openObject(readObject(writeObject(objectSpec())), { name: 'fake' }).load();
    expect([...obj.programs.keys()]).toEqual(['entry', 'setup']);
    obj.close();
  });
});

describe('attach records through the fake syscall layer', () => {
  let fake: FakeBpf;
  let dir: string;
  beforeEach(() => {
    fake = new FakeBpf().install();
    dir = mkdtempSync(join(tmpdir(), 'loader-attach-'));
  });
  afterEach(() => {
    fake.uninstall();
    rmSync(dir, { recursive: true, force: true });
  });

  it('attaches through a pinned tcx link, refuses a duplicate, and detach removes exactly it', () => {
    const obj = openObject(objectSpec(), { name: 'fake' }).prepare({ kernelBtf: kernelBtf() }).load();
    const prog = obj.program('entry');
    const rec = attachTc(prog.fd, { device: 'lo', direction: 'ingress', pinDir: dir, program: 'entry' });
    expect(rec.kind === "tcx" && rec.linkPin).toBe(`${dir}/links/tcx-ingress-lo@host`);
    expect(rec).toMatchObject({ kind: 'tcx', id: 'tcx-ingress-lo@host', ifindex: 1, linkPin: `${dir}/links/tcx-ingress-lo@host` });
    const create = fake.calls.find((c) => c.cmd === BPF_LINK_CREATE)!;
    expect([create.attr.readUInt32LE(4), create.attr.readUInt32LE(8)]).toEqual([1, BPF_TCX_INGRESS]);
    expect(fake.pins.has((rec as { linkPin: string }).linkPin)).toBe(true);
    expect(() => attachTc(prog.fd, { device: 'lo', direction: 'ingress', pinDir: dir, program: 'entry' })).toThrow('already attached (tcx-ingress-lo@host); detach it first');
    expect(readRecords(dir).map((r) => r.id)).toEqual(['tcx-ingress-lo@host']);
    const result = detach(dir, { direction: 'egress' });
    expect(result.detached).toEqual([]);
    expect(detach(dir).detached.map((r) => r.id)).toEqual(['tcx-ingress-lo@host']);
    expect(readRecords(dir)).toEqual([]);
    obj.close();
  });

  it('forced tcx mode reports the kernel refusal instead of falling back', () => {
    const obj = openObject(objectSpec(), { name: 'fake' }).prepare({ kernelBtf: kernelBtf() }).load();
    fake.failNext(BPF_LINK_CREATE, 22);
    expect(() => attachTc(obj.program('entry').fd, { device: 'lo', direction: 'egress', pinDir: dir, program: 'entry', mode: 'tcx' })).toThrow(/^attaching tcx egress on lo: bpf\(BPF_LINK_CREATE\): invalid argument/);
    expect(() => attachTc(obj.program('entry').fd, { device: 'nonexistent0', direction: 'egress', pinDir: dir, program: 'entry' })).toThrow('no device "nonexistent0"');
    expect(readRecords(dir)).toEqual([]);
    obj.close();
  });
});

describe('BTF codec', () => {
  const btf = new Btf();
  const u8 = addInt(btf, 'unsigned char', 1, false);
  const u16 = addInt(btf, 'unsigned short', 2, false);
  const u64 = addInt(btf, 'unsigned long long', 8, false);
  const be16 = btf.add({ kind: 'typedef', name: '__be16', type: u16 });
  const char = btf.add({ kind: 'int', name: 'char', size: 1, encoding: 1, bitOffset: 0, bits: 8 });
  const idx = addInt(btf, '__ARRAY_SIZE_TYPE__', 4, false);
  const mac = btf.add({ kind: 'array', type: u8, indexType: idx, nelems: 6 });
  const name = btf.add({ kind: 'array', type: char, indexType: idx, nelems: 8 });
  const s = btf.add({
    kind: 'struct', name: 'sa', size: 32, members: [
      { name: 'proto', type: be16, bitOffset: 0 },
      { name: 'mac', type: mac, bitOffset: 16 },
      { name: 'name', type: name, bitOffset: 64 },
      { name: 'seq', type: u64, bitOffset: 128 },
      { name: 'flags', type: u8, bitOffset: 192 + 3, bitfieldSize: 2 },
    ],
  });

  it('decodes through BTF and encodes back to the same bytes', () => {
    const value = { proto: 0x0800, mac: '0a0b0c0d0e0f', name: 'esp', seq: '18446744073709551615', flags: 3 };
    const bytes = encode(btf, s, value, 32);
    expect(bytes.readUInt16BE(0)).toBe(0x0800);
    expect(bytes[24]).toBe(3 << 3);
    expect(decode(btf, s, bytes)).toEqual(value);
    expect(encode(btf, s, decode(btf, s, bytes), 32)).toEqual(bytes);
    expect(() => encode(btf, s, { nope: 1 }, 32)).toThrow('value: no field nope in struct sa');
    expect(decode(undefined, 0, Buffer.from([1, 2]))).toBe('0102');
  });
});

it('LoaderError is what the CLI prints as one line', () => {
  expect(new LoaderError('x').name).toBe('LoaderError');
});
