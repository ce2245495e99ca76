// Run one DSL program three ways — as TypeScript in Node, compiled in our VM, compiled in the
// kernel through BPF_PROG_TEST_RUN — and collect what each observed: the return value, the
// packet afterwards, and every map's contents. Differential tests compare the three.

import { pathToFileURL } from 'node:url';
import { formatListing } from '../../compiler/asm/listing.ts';
import { compileFile, formatDiagnostic, type CompileResult } from '../../compiler/compile.ts';
import * as dsl from '../../compiler/dsl/index.ts';
import type { ObjectSpec } from '../../compiler/elf/spec.ts';
import { openObject } from '../../runtime/loader/index.ts';
import { VmObject } from '../../runtime/vm/object.ts';

export interface Observation {
  retval: number; // low 32 bits, unsigned (what the kernel's test run reports)
  packet: string; // hex
  maps: Record<string, string[]>; // sorted "key=value" hex pairs
  /** The syscall programs run first (in source order): their return values and buffers after. */
  setup?: { retval: number; ctx: string }[];
}

/** The ctx_in buffer each syscall program of a corpus file runs on: 64 deterministic bytes. */
export function syscallArgs(): Buffer {
  return Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff));
}

/** Syscall programs of an object: the setup that runs before each packet program. */
export const setupPrograms = (object: ObjectSpec): string[] => object.programs.filter((p) => p.progType === 31).map((p) => p.name);

/** Byte ranges of kptr fields in a map's value (from the object's BTF): the kernel shows them to
 *  userspace as zeros, Node keeps them beside the bytes, the VM stores its addresses there. */
function kptrRanges(object: ObjectSpec, mapName: string): number[] {
  const btf = object.btf;
  const m = object.maps.find((x) => x.name === mapName);
  if (!btf || !m || !m.valueTypeId) return [];
  const out: number[] = [];
  const walk = (id: number, base: number): void => {
    const t = btf.get(btf.resolve(id));
    if (t.kind === 'struct') for (const mem of t.members) walk(mem.type, base + mem.bitOffset / 8);
    else if (t.kind === 'ptr') {
      const tag = btf.get(t.type);
      if (tag.kind === 'type_tag' && tag.name === 'kptr') out.push(base);
    }
  };
  walk(m.valueTypeId, 0);
  return out;
}

export function compileOrThrow(path: string): CompileResult {
  const r = compileFile(path);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(`compiling ${path}:\n${errors.map(formatDiagnostic).join('\n')}`);
  return r;
}

const sortEntries = (e: [Uint8Array, Uint8Array][]): string[] =>
  e.map(([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`).sort();

let generation = 0;
/** Node: import a fresh copy of the module (fresh maps) and call the program. */
export async function runNode(path: string, program: string, packet: Uint8Array, kind: 'tc' | 'xdp' = 'tc', setup: string[] = []): Promise<Observation> {
  const mod = (await import(`${pathToFileURL(path).href}?run=${++generation}`)) as Record<string, unknown>;
  const ran = setup.map((name) => {
    const ctx = new dsl.SyscallContext(new Uint8Array(syscallArgs()));
    const retval = (mod[name] as (c: dsl.SyscallContext) => number)(ctx) >>> 0;
    return { retval, ctx: Buffer.from(ctx.bytes).toString('hex') };
  });
  const fn = mod[program] as (ctx: dsl.TcContext | dsl.XdpContext) => number;
  const bytes = new Uint8Array(packet);
  const ctx = kind === 'xdp' ? new dsl.XdpContext(bytes) : new dsl.TcContext(bytes);
  const retval = fn(ctx) >>> 0;
  const after = ctx.packet; // helpers may have resized it
  const maps: Record<string, string[]> = {};
  for (const [name, v] of Object.entries(mod)) {
    if (v instanceof dsl.BpfMap) maps[name] = sortEntries(v.dump().map((e) => [e.key, e.value]));
  }
  return { retval, packet: Buffer.from(after).toString('hex'), maps, ...(setup.length ? { setup: ran } : {}) };
}

/** The kernel: the loader (runtime/loader) creates maps and global data, links .text functions,
 *  applies every relocation and loads with BTF func/line info; then a test run, then the maps. */
export function runKernel(object: ObjectSpec, program: string, packet: Uint8Array): Observation {
  const obj = openObject(object, { name: 'corpus' }).prepare({ pinning: false });
  const setup = setupPrograms(object);
  try {
    try {
      obj.load({ programs: [...setup, program] });
    } catch (e) {
      const prog = object.programs.find((p) => p.name === program)!;
      throw new Error(`${(e as Error).message}\n${(e as { log?: string[] }).log?.slice(-30).join('\n') ?? ''}\n${formatListing(prog.instructions)}`);
    }
    const ran = setup.map((name) => {
      const ctxIn = syscallArgs();
      const r = obj.program(name).run({ ctxIn });
      return { retval: r.retval >>> 0, ctx: ctxIn.toString('hex') };
    });
    const run = obj.program(program).run({ dataIn: Buffer.from(packet), dataSizeOut: packet.length + 4096 });
    const maps: Record<string, string[]> = {};
    for (const m of object.maps) {
      if (m.section) continue; // global data is not a map in Node
      const handle = obj.map(m.name);
      const entries: [Uint8Array, Uint8Array][] = [];
      for (const key of handle.keys()) entries.push([new Uint8Array(key), new Uint8Array(handle.lookup(key)!)]);
      maps[m.name] = sortEntries(entries);
    }
    return { retval: run.retval >>> 0, packet: run.dataOut.toString('hex'), maps, ...(setup.length ? { setup: ran } : {}) };
  } finally {
    obj.close();
  }
}

/** Our VM: the same ObjectSpec through runtime/vm's loader (maps, global data, calls, kfuncs). */
export function runVm(object: ObjectSpec, program: string, packet: Uint8Array): Observation {
  const vm = new VmObject(object, { seed: 1 });
  const setup = setupPrograms(object);
  const ran = setup.map((name) => {
    const r = vm.runProgram(name, { ctx: syscallArgs() });
    return { retval: Number(BigInt.asUintN(32, r.retval)), ctx: (r.ctx ?? Buffer.alloc(0)).toString('hex') };
  });
  const run = vm.runProgram(program, { packet });
  const out: Record<string, string[]> = {};
  for (const [name, map] of vm.maps) {
    if (object.maps.find((m) => m.name === name)?.section) continue;
    const entries: [Uint8Array, Uint8Array][] = [];
    let key: Buffer | undefined;
    for (;;) {
      key = map.nextKey(key);
      if (!key) break;
      const value = new Uint8Array(map.lookup(key)!);
      for (const off of kptrRanges(object, name)) value.fill(0, off, off + 8);
      entries.push([new Uint8Array(key), value]);
    }
    out[name] = sortEntries(entries);
  }
  return { retval: Number(BigInt.asUintN(32, run.retval)), packet: run.packet.toString('hex'), maps: out, ...(setup.length ? { setup: ran } : {}) };
}
