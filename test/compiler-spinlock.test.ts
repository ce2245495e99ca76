// bpf_spin_lock in the DSL (G5): the BTF the kernel looks for, the verifier's acceptance of the
// compiled program and its refusal of the same program without the compiler's guarantees (so the
// lock is really the kernel's), the Node semantics and the userspace encoding. The differential
// Node/VM/kernel runs are test/compiler/corpus/spin-lock.ts (and dynptr-length.ts for G7);
// the diagnostics EBPF1415–1417 are in test/compiler-diagnostics.test.ts.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Instruction } from '../compiler/asm/instruction.ts';
import * as dsl from '../compiler/dsl/index.ts';
import { decode } from '../compiler/dsl/userspace.ts';
import type { ObjectSpec } from '../compiler/elf/spec.ts';
import { openObject } from '../runtime/loader/index.ts';
import { bpf_func_id as F } from '../runtime/sys/constants.ts';
import { VmObject } from '../runtime/vm/object.ts';
import { compileOrThrow } from './compiler/harness.ts';
import { kernelBpf } from './support/env.ts';

const kernel = kernelBpf();
const corpus = join(fileURLToPath(new URL('.', import.meta.url)), 'compiler', 'corpus');
const compiled = compileOrThrow(join(corpus, 'spin-lock.ts'));

const isCall = (i: Instruction, id: number): boolean => i.opcode === 0x85 && i.src === 0 && i.imm === id;

/** The object with the program's instructions changed by `edit` (and the .text functions as they are). */
function patched(edit: (insns: Instruction[]) => Instruction[]): ObjectSpec {
  const o = compiled.object;
  return { ...o, programs: o.programs.map((p) => ({ ...p, instructions: edit([...p.instructions]) })) };
}

function loadError(object: ObjectSpec): string {
  const obj = openObject(object, { name: 'spinlock' }).prepare({ pinning: false });
  try {
    obj.load({ programs: ['spin'] });
    return '';
  } catch (e) {
    return `${(e as Error).message}\n${((e as { log?: string[] }).log ?? []).join('\n')}`;
  } finally {
    obj.close();
  }
}

describe('spin locks: layout and BTF', () => {
  it('bpfSpinLock is struct bpf_spin_lock { u32 val }: 4 bytes, aligned 4, in the value BTF', () => {
    expect(dsl.bpfSpinLock.size).toBe(4);
    expect(dsl.bpfSpinLock.align).toBe(4);
    const W = compiled.object.maps.find((m) => m.name === 'windows')!;
    expect(W.valueSize).toBe(24);
    const btf = compiled.object.btf!;
    const value = btf.get(btf.resolve(W.valueTypeId));
    expect(value.kind).toBe('struct');
    const lock = value.kind === 'struct' ? value.members.find((m) => m.name === 'lock') : undefined;
    expect(lock?.bitOffset).toBe(32);
    const t = btf.get(btf.resolve(lock!.type));
    expect(t).toMatchObject({ kind: 'struct', name: 'bpf_spin_lock', size: 4 });
  });

  it('userspace encodes the lock as zero and decodes values without it', () => {
    const bytes = dsl.encode(compiledWindow(), { top: 7, bits: 3n, hits: 1 });
    expect(Buffer.from(bytes).toString('hex')).toBe('07000000000000000300000000000000' + '0100000000000000');
    bytes[4] = 1; // a lock word as a held lock would leave it: not part of the value
    expect(decode(compiledWindow(), bytes)).toEqual({ top: 7, bits: 3n, hits: 1 });
  });
});

/** The corpus's Window descriptor, from the object's map (same layout as the DSL source). */
function compiledWindow(): dsl.StructType {
  return dsl.struct({ top: dsl.u32, lock: dsl.bpfSpinLock, bits: dsl.u64, hits: dsl.u32 }, { name: 'window' });
}

describe('spin locks in Node', () => {
  it('a lock is taken once and released once; a second take or a stray release throws', () => {
    const m = dsl.hashMap({ key: dsl.u32, value: compiledWindow(), maxEntries: 2 });
    m.update(1, { top: 0, bits: 0n, hits: 0 });
    const v = m.lookup(1)! as unknown as { lock: dsl.SpinLock };
    dsl.spinLock(v, 'lock');
    expect(() => dsl.spinLock(v, 'lock')).toThrow(/already held/);
    dsl.spinUnlock(v, 'lock');
    expect(() => dsl.spinUnlock(v, 'lock')).toThrow(/not held/);
    expect(() => dsl.spinLock(v as never, 'top' as never)).toThrow(/not a bpfSpinLock field/);
  });
});

describe('spin locks in the VM', () => {
  it('the compiled program runs and leaves every lock word released', () => {
    const vm = new VmObject(compiled.object, { seed: 1 });
    for (const len of [60, 130, 61, 130]) vm.runProgram('spin', { packet: Buffer.alloc(len) });
    for (const name of ['windows', 'pairs']) {
      const map = vm.maps.get(name)!;
      for (let k = map.nextKey(undefined); k; k = map.nextKey(k)) expect(map.lookup(k)!.readUInt32LE(name === 'windows' ? 4 : 0)).toBe(0);
    }
  });
});

describe.skipIf(!kernel.ok)('spin locks in the kernel verifier', () => {
  it('accepts the compiled program (a @noinline call under the lock included)', () => {
    expect(loadError(compiled.object)).toBe('');
  });

  it('refuses it without an unlock, with a helper call under the lock, or with two locks', () => {
    // The first unlock dropped: the verifier finds the lock still held at the next helper call.
    const noUnlock = patched((insns) => {
      const at = insns.findIndex((i) => isCall(i, F.BPF_FUNC_spin_unlock));
      insns[at] = { ...insns[at]!, opcode: 0xb7, src: 0, dst: 0, offset: 0, imm: 0 }; // r0 = 0
      return insns;
    });
    expect(loadError(noUnlock)).toMatch(/function calls are not allowed while holding a lock|bpf_spin_unlock is missing/);
    // The first unlock replaced by a helper (bpf_get_prandom_u32) while locked.
    const call = patched((insns) => {
      const at = insns.findIndex((i) => isCall(i, F.BPF_FUNC_spin_unlock));
      insns[at] = { ...insns[at]!, imm: F.BPF_FUNC_get_prandom_u32 };
      return insns;
    });
    expect(loadError(call)).toMatch(/function calls are not allowed while holding a lock/);
    // The first unlock replaced by a second lock.
    const twice = patched((insns) => {
      const at = insns.findIndex((i) => isCall(i, F.BPF_FUNC_spin_unlock));
      insns[at] = { ...insns[at]!, imm: F.BPF_FUNC_spin_lock };
      return insns;
    });
    expect(loadError(twice)).toMatch(/Locking two bpf_spin_locks are not allowed|function calls are not allowed while holding a lock/);
  });

  it('the map carries the value BTF (the kernel finds the lock) and userspace reads it as zero', () => {
    const obj = openObject(compiled.object, { name: 'spinlock' }).prepare({ pinning: false });
    try {
      obj.load({ programs: ['spin'] });
      const run = obj.program('spin').run({ dataIn: Buffer.alloc(130), dataSizeOut: 130 + 256 });
      expect(run.retval).toBe(1);
      const windows = obj.map('windows');
      const v = windows.lookup(Buffer.from([1, 0, 0, 0]))!;
      expect(v.readUInt32LE(4)).toBe(0);
      expect(v.readUInt32LE(0)).toBe(10);
    } finally {
      obj.close();
    }
  });
});
