// The JavaScript a DSL file compiles to (issue 3, "one source file gives two things"): programs
// become references to their object, map declarations typed userspace handles that bind to a VM
// map or a kernel map and encode/decode keys and values from the same struct descriptors.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileFile } from '../compiler/compile.ts';
import type { MapHandle, ProgramRef } from '../compiler/dsl/userspace.ts';
import { openObject } from '../runtime/loader/index.ts';
import { VmObject } from '../runtime/vm/object.ts';
import { kernelBpf } from './support/env.ts';

const corpus = join(fileURLToPath(new URL('.', import.meta.url)), 'compiler', 'corpus');
const kernel = kernelBpf();

async function emitted(file: string): Promise<{ mod: Record<string, unknown>; compiled: ReturnType<typeof compileFile> }> {
  const compiled = compileFile(join(corpus, file), { elf: true });
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-js-'));
  const path = join(dir, file.replace(/\.ts$/, '.mjs'));
  writeFileSync(path, compiled.js);
  return { mod: (await import(pathToFileURL(path).href)) as Record<string, unknown>, compiled };
}

const frame = (proto: number, len = 60): Buffer => {
  const b = Buffer.alloc(len, 0x11);
  b.writeUInt16BE(proto, 12);
  return b;
};

describe('emitted JavaScript', () => {
  it('programs are object references, maps typed handles over a VM map', async () => {
    const { mod, compiled } = await emitted('count-by-proto.ts');
    expect(mod.classify).toEqual({ object: 'bpf-out/count-by-proto.o', program: 'classify' } satisfies ProgramRef);
    const counters = mod.counters as MapHandle<never, never>;
    expect(counters.kind).toBe('hash');
    expect(counters.maxEntries).toBe(64);
    const vm = new VmObject(compiled.object, { seed: 1 });
    const bound = counters.bind(vm.maps.get('counters')!);
    vm.runProgram('classify', { packet: frame(0x0800) });
    vm.runProgram('classify', { packet: frame(0x0800, 100) });
    expect(bound.get(0x0800 as never)).toEqual({ packets: 2n, bytes: 160n });
    // Userspace writes through the handle; the program reads what it wrote.
    bound.set(0x86dd as never, { packets: 10n, bytes: 1n } as never);
    vm.runProgram('classify', { packet: frame(0x86dd, 64) });
    expect(bound.get(0x86dd as never)).toEqual({ packets: 11n, bytes: 65n });
    expect([...bound.entries()].length).toBe(2);
    expect(bound.delete(0x86dd as never)).toBe(true);
    expect(bound.get(0x86dd as never)).toBeNull();
  });

  it('per-CPU, LPM and array handles; imported maps stay the library module', async () => {
    const { mod, compiled } = await emitted('percpu-forof.ts');
    expect(mod.percpu).toEqual({ object: 'bpf-out/percpu-forof.o', program: 'percpu' });
    const vm = new VmObject(compiled.object, { seed: 1 });
    vm.runProgram('percpu', { packet: frame(0x0800) });
    const stats = (mod.stats as MapHandle<never, never>).bind(vm.maps.get('stats')!);
    expect(stats.get(0 as never)).toEqual({ packets: 1n, bytes: 60n, last: 60 });
    const lpm = await emitted('lpm-ringbuf.ts');
    const routes = lpm.mod.routes as MapHandle<never, never>;
    expect(routes.kind).toBe('lpm_trie');
    expect(routes.flags & 1).toBe(1); // BPF_F_NO_PREALLOC
    expect((lpm.mod.events as MapHandle<never, never>).kind).toBe('ringbuf');
  });

  it.skipIf(!kernel.ok)('a handle binds to a kernel map (runtime/loader MapHandle)', async () => {
    const { mod, compiled } = await emitted('count-by-proto.ts');
    const obj = openObject(compiled.elf!, { name: 'handles' }).prepare({ pinning: false });
    try {
      obj.load();
      const bound = (mod.counters as MapHandle<never, never>).bind(obj.map('counters'));
      bound.set(7 as never, { packets: 3n, bytes: 4n } as never);
      expect(bound.get(7 as never)).toEqual({ packets: 3n, bytes: 4n });
      obj.program('classify').run({ dataIn: frame(7, 60) });
      expect(bound.get(7 as never)).toEqual({ packets: 4n, bytes: 64n });
    } finally {
      obj.close();
    }
  });
});
