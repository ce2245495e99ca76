// The reader over objects from clang-19 -O2 -g -target bpf (test/fixtures/c), cross-checked with
// llvm-readelf; then those objects rewritten by our writer and loaded with bpftool.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { INSN_SIZE, slotOffsets } from '../compiler/asm/instruction.ts';
import { CallSrc, PseudoSrc } from '../compiler/asm/opcode.ts';
import { Linkage } from '../compiler/btf/types.ts';
import { readObject } from '../compiler/elf/reader.ts';
import { ProgType } from '../compiler/elf/sections.ts';
import type { ObjectSpec } from '../compiler/elf/spec.ts';
import { writeObject } from '../compiler/elf/writer.ts';
import { all, describeWith, hasTool, kernelBpf } from './support/env.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/c', import.meta.url));
const multiarch = `/usr/include/${arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;

describeWith(all(hasTool('clang-19'), hasTool('llvm-readelf-19')), 'reader over clang-19 objects', () => {
  let dir = '';
  const objects: Record<string, string> = {};
  const compile = (name: string): string => {
    const out = join(dir, `${name}.o`);
    execFileSync('clang-19', ['-O2', '-g', '-target', 'bpf', `-I${multiarch}`, '-c', join(FIXTURES, `${name}.c`), '-o', out]);
    return out;
  };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'elf-clang-'));
    for (const name of ['tc_counter', 'kfunc_call', 'legacy_maps']) objects[name] = compile(name);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const read = (name: string): ObjectSpec => readObject(readFileSync(objects[name]!));

  /** "section → [byte offset, symbol]" of every REL entry on code, as llvm-readelf prints them. */
  function readelfRelocations(obj: string): Map<string, [number, string][]> {
    const out = new Map<string, [number, string][]>();
    let section = '';
    for (const line of execFileSync('llvm-readelf-19', ['-r', obj]).toString().split('\n')) {
      const head = /^Relocation section '\.rel(.*)'/.exec(line);
      if (head) section = head[1]!;
      const rel = /^([0-9a-f]{16})\s+[0-9a-f]{16}\s+R_BPF_64_(?:64|32)\s+[0-9a-f]{16}\s+(\S+)/.exec(line);
      if (rel && !section.startsWith('.')) out.set(section, [...(out.get(section) ?? []), [parseInt(rel[1]!, 16), rel[2]!]]);
    }
    return out;
  }

  it('reads BTF-defined maps and global data with initial values and variables', () => {
    const spec = read('tc_counter');
    const btf = spec.btf!;
    expect(spec.license).toBe('GPL');
    const byProto = spec.maps.find((m) => m.name === 'by_proto')!;
    expect(byProto).toMatchObject({ type: 1, keySize: 4, valueSize: 16, maxEntries: 64, flags: 0 });
    expect(btf.describe(byProto.keyTypeId)).toBe('__u32');
    expect(btf.describe(byProto.valueTypeId)).toBe('struct counter');
    expect(spec.maps.find((m) => m.name === 'totals')).toMatchObject({ type: 2, keySize: 4, valueSize: 8, maxEntries: 4 });
    const globals = Object.fromEntries(spec.maps.filter((m) => m.section).map((m) => [m.section, m]));
    expect(globals['.rodata']).toMatchObject({ readOnly: true, valueSize: 4, initialValue: Buffer.from([1, 0, 0, 0]) });
    expect(globals['.data']).toMatchObject({ readOnly: false, initialValue: Buffer.from([7, 0, 0, 0, 0, 0, 0, 0]) });
    expect(globals['.bss']).toMatchObject({ valueSize: 4, initialValue: Buffer.alloc(4) });
    expect(btf.get(globals['.data']!.valueTypeId)).toMatchObject({ kind: 'datasec', name: '.data', size: 8 });
    expect(spec.variables.map((v) => [v.name, v.section, v.offset, v.size])).toEqual([
      ['sample_rate', '.rodata', 0, 4],
      ['seen', '.data', 0, 8],
      ['last_len', '.bss', 0, 4],
    ]);
  });

  it('splits code into programs and .text functions, with relocations where llvm-readelf has them', () => {
    const spec = read('tc_counter');
    expect(spec.programs.map((p) => [p.name, p.section, p.progType])).toEqual([
      ['count_packets', 'tc', ProgType.SCHED_CLS],
      ['pass_all', 'xdp', ProgType.XDP],
    ]);
    expect(spec.functions.map((f) => f.name)).toEqual(['account']);
    const expected = readelfRelocations(objects['tc_counter']!);
    for (const p of spec.programs) {
      const slots = slotOffsets(p.instructions);
      const ours = p.relocations.map((r) => [slots[r.insn]! * INSN_SIZE, r.kind === 'global' ? r.symbol : r.symbol === 'account' ? '.text' : r.symbol]);
      // clang relocates globals against the variable's symbol; we name the section.
      const theirs = expected.get(p.section)!.map(([off, sym]) => [off, ({ last_len: '.bss', sample_rate: '.rodata', seen: '.data' } as Record<string, string>)[sym] ?? sym]);
      expect(ours, p.name).toEqual(theirs);
    }
    const count = spec.programs[0]!;
    const kinds = count.relocations.map((r) => r.kind);
    expect(kinds.filter((k) => k === 'map')).toHaveLength(4);
    expect(kinds.filter((k) => k === 'global')).toHaveLength(3);
    const call = count.relocations.find((r) => r.kind === 'call')!;
    expect(call.symbol).toBe('account');
    expect(count.instructions[call.insn]).toMatchObject({ src: CallSrc.LOCAL, imm: -1, reference: 'account' });
    const global = count.relocations.find((r) => r.kind === 'global')!;
    expect(count.instructions[global.insn]).toMatchObject({ src: PseudoSrc.MAP_VALUE, reference: global.symbol });
  });

  it('splits func and line info per function, rebased to its start', () => {
    const spec = read('tc_counter');
    const btf = spec.btf!;
    const [count, pass] = spec.programs;
    expect(count!.funcInfo).toHaveLength(1);
    expect(btf.get(count!.funcInfo[0]!.typeId)).toMatchObject({ kind: 'func', name: 'count_packets', linkage: Linkage.GLOBAL });
    expect(btf.get(pass!.funcInfo[0]!.typeId)).toMatchObject({ name: 'pass_all' });
    const account = spec.functions[0]!;
    expect(btf.get(account.funcInfo[0]!.typeId)).toMatchObject({ name: 'account', linkage: Linkage.STATIC });
    expect(account.lineInfo[0]).toMatchObject({ insnOff: 0, fileName: join(FIXTURES, 'tc_counter.c') });
    expect(count!.lineInfo.some((l) => l.lineText.includes('last_len = skb->len;'))).toBe(true);
    expect(count!.instructions.some((i) => i.source?.text?.includes('seen += sample_rate;'))).toBe(true);
  });

  it('reads kfunc calls against undefined symbols and kptr fields', () => {
    const spec = read('kfunc_call');
    const btf = spec.btf!;
    const prog = spec.programs[0]!;
    expect(prog).toMatchObject({ name: 'drop_ctx', section: 'syscall', progType: ProgType.SYSCALL, sleepable: true });
    const kfunc = prog.relocations.find((r) => r.kind === 'kfunc')!;
    expect(kfunc.symbol).toBe('bpf_crypto_ctx_release');
    expect(prog.instructions[kfunc.insn]).toMatchObject({ src: CallSrc.KFUNC, imm: -1 });
    const holder = spec.maps.find((m) => m.name === 'ctx_map')!.valueTypeId;
    expect(btf.describe(btf.member(holder, 'ctx')!.type)).toBe('struct bpf_crypto_ctx __tag(kptr) *');
    expect(btf.find('.ksyms', 'datasec')).toBeDefined();
  });

  it('reads legacy struct bpf_map_def maps', () => {
    const spec = read('legacy_maps');
    expect(spec.maps).toEqual([{ name: 'legacy', type: 2, keySize: 4, valueSize: 8, maxEntries: 3, flags: 0, pinning: 0, keyTypeId: 0, valueTypeId: 0 }]);
    const prog = spec.programs[0]!;
    expect(prog.relocations.find((r) => r.kind === 'map')?.symbol).toBe('legacy');
    expect(prog.progType).toBe(ProgType.SOCKET_FILTER);
  });

  describeWith(all(kernelBpf(), hasTool('bpftool')), 'rewritten by our writer, loaded by bpftool', () => {
    const pins: string[] = [];
    afterAll(() => {
      for (const p of pins) rmSync(p, { recursive: true, force: true });
    });
    for (const [name, progs] of [['tc_counter', ['count_packets', 'pass_all']], ['kfunc_call', ['drop_ctx']]] as const) {
      it(`${name}: clang → reader → writer → bpftool prog loadall`, () => {
        const file = join(dir, `${name}.rewritten.o`);
        writeFileSync(file, new Uint8Array(writeObject(read(name))));
        const pin = `/sys/fs/bpf/ebpfts_clang_${process.pid}_${name}`;
        pins.push(pin);
        execFileSync('bpftool', ['prog', 'loadall', file, pin], { stdio: ['ignore', 'pipe', 'pipe'] });
        expect(readdirSync(pin).sort()).toEqual([...progs]);
      });
    }
  });
});
