// loadObject: maps created from MapSpecs, global data initialised, functions linked through
// 'call' and 'func_addr' relocations, map and global relocations resolved.
import { describe, expect, it } from 'vitest';
import { assemble } from '../compiler/asm/assembler.ts';
import type { MapSpec, ObjectSpec, ProgramSpec, Relocation } from '../compiler/elf/spec.ts';
import { bpf_func_id as F, bpf_map_type as T, bpf_prog_type as P } from '../runtime/sys/constants.ts';
import { loadObject, VmLoadError } from '../runtime/vm/index.ts';

const insnsOf = (text: string) => assemble(text, { allowExternal: true }).insns;
const map = (m: Partial<MapSpec> & Pick<MapSpec, 'name' | 'type' | 'keySize' | 'valueSize' | 'maxEntries'>): MapSpec => ({ flags: 0, pinning: 0, keyTypeId: 0, valueTypeId: 0, ...m });
const program = (name: string, text: string, relocations: Relocation[], progType: number = P.BPF_PROG_TYPE_SCHED_CLS): ProgramSpec => ({
  name, section: 'tc', progType, attachType: 0, sleepable: false, instructions: insnsOf(text), relocations, funcInfo: [], lineInfo: [],
});

function spec(): ObjectSpec {
  const rodata = Buffer.alloc(8);
  rodata.writeUInt32LE(1000, 4);
  // egress: r0 = add(.rodata[4], packet length) + bpf_loop(3, count) + counters[0]++
  const egress = program('egress', `
      r6 = r1
      r1 = 0 ll
      r1 = *(u32 *)(r1 + 0)
      r2 = *(u32 *)(r6 + 0)
      call -1
      r7 = r0
      r1 = 3
      ld_pseudo r2, 0x4, 0x0
      r3 = 0
      r4 = 0
      call ${F.BPF_FUNC_loop}
      r7 += r0
      *(u32 *)(r10 - 4) = 0
      r1 = 0 ll
      r2 = r10
      r2 += -4
      call ${F.BPF_FUNC_map_lookup_elem}
      if r0 == 0 goto out
      r1 = 1
      lock *(u64 *)(r0 + 0) += r1
    out:
      r0 = r7
      exit`, [
    { insn: 1, kind: 'global', symbol: '.rodata', offset: 4 },
    { insn: 4, kind: 'call', symbol: 'add' },
    { insn: 7, kind: 'func_addr', symbol: 'tick' },
    { insn: 13, kind: 'map', symbol: 'counters' },
  ]);
  const fn = (name: string, text: string) => ({ name, instructions: insnsOf(text), relocations: [], funcInfo: [], lineInfo: [] });
  return {
    license: 'GPL',
    programs: [egress],
    functions: [fn('add', 'r0 = r1\nr0 += r2\nexit'), fn('tick', 'r0 = 0\nexit')],
    maps: [
      map({ name: 'counters', type: T.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 1 }),
      map({ name: '.rodata', type: T.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 1, section: '.rodata', initialValue: rodata, readOnly: true }),
    ],
    variables: [],
  };
}

describe('loadObject', () => {
  it('links functions, resolves relocations and keeps map state between runs', () => {
    const object = loadObject(spec());
    const packet = Buffer.alloc(60);
    const first = object.runProgram('egress', { packet });
    expect(first.retval).toBe(1000n + 60n + 3n);
    object.runProgram('egress', { packet, repeat: 4 });
    expect(object.map('counters').lookup(Buffer.alloc(4))!.readBigUInt64LE(0)).toBe(5n);
    // the linked program is the program plus both functions
    expect(object.program('egress').code.insns.length).toBe(spec().programs[0]!.instructions.length + 3 + 2);
  });

  it('.rodata is read-only to programs and frozen to userspace', () => {
    const s = spec();
    s.programs.push(program('poke', 'r1 = 0 ll\n*(u32 *)(r1 + 0) = 1\nr0 = 0\nexit', [{ insn: 0, kind: 'global', symbol: '.rodata', offset: 0 }]));
    const object = loadObject(s);
    expect(() => object.runProgram('poke', { packet: Buffer.alloc(14) })).toThrow(/write to read-only memory at PC 2/);
    expect(() => object.map('.rodata').update(Buffer.alloc(4), Buffer.alloc(8))).toThrow(/frozen/);
  });

  it('names the program and instruction of a relocation it cannot resolve', () => {
    const s = spec();
    s.programs[0]!.relocations[3] = { insn: 13, kind: 'map', symbol: 'nope' };
    expect(() => loadObject(s)).toThrow(VmLoadError);
    expect(() => loadObject(s)).toThrow(/program egress: insn 13: relocating: unknown map "nope"/);
    const t = spec();
    t.programs[0]!.relocations[1] = { insn: 4, kind: 'call', symbol: 'missing' };
    expect(() => loadObject(t)).toThrow(/unknown function "missing"/);
  });

  it('an unknown kfunc is refused at load', () => {
    const s = spec();
    s.programs.push(program('k', 'call kfunc 0x0\nr0 = 0\nexit', [{ insn: 0, kind: 'kfunc', symbol: 'bpf_no_such_kfunc' }]));
    expect(() => loadObject(s)).toThrow(/kfunc bpf_no_such_kfunc is not provided by the VM/);
  });
});
