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
export async function runNode(path: string, program: string, packet: Uint8Array, kind: 'tc' | 'xdp' = 'tc'): Promise<Observation> {
  const mod = (await import(`${pathToFileURL(path).href}?run=${++generation}`)) as Record<string, unknown>;
  const fn = mod[program] as (ctx: dsl.TcContext | dsl.XdpContext) => number;
  const bytes = new Uint8Array(packet);
  const ctx = kind === 'xdp' ? new dsl.XdpContext(bytes) : new dsl.TcContext(bytes);
  const retval = fn(ctx) >>> 0;
  const after = ctx.packet; // helpers may have resized it
  const maps: Record<string, string[]> = {};
  for (const [name, v] of Object.entries(mod)) {
    if (v instanceof dsl.BpfMap) maps[name] = sortEntries(v.dump().map((e) => [e.key, e.value]));
  }
  return { retval, packet: Buffer.from(after).toString('hex'), maps };
}

/** The kernel: the loader (runtime/loader) creates maps and global data, links .text functions,
 *  applies every relocation and loads with BTF func/line info; then a test run, then the maps. */
export function runKernel(object: ObjectSpec, program: string, packet: Uint8Array): Observation {
  const obj = openObject(object, { name: 'corpus' }).prepare({ pinning: false });
  try {
    try {
      obj.load({ programs: [program] });
    } catch (e) {
      const prog = object.programs.find((p) => p.name === program)!;
      throw new Error(`${(e as Error).message}\n${(e as { log?: string[] }).log?.slice(-30).join('\n') ?? ''}\n${formatListing(prog.instructions)}`);
    }
    const run = obj.program(program).run({ dataIn: Buffer.from(packet), dataSizeOut: packet.length + 4096 });
    const maps: Record<string, string[]> = {};
    for (const m of object.maps) {
      if (m.section) continue; // global data is not a map in Node
      const handle = obj.map(m.name);
      const entries: [Uint8Array, Uint8Array][] = [];
      for (const key of handle.keys()) entries.push([new Uint8Array(key), new Uint8Array(handle.lookup(key)!)]);
      maps[m.name] = sortEntries(entries);
    }
    return { retval: run.retval >>> 0, packet: run.dataOut.toString('hex'), maps };
  } finally {
    obj.close();
  }
}

/** Our VM: the same ObjectSpec through runtime/vm's loader (maps, global data, calls, kfuncs). */
export function runVm(object: ObjectSpec, program: string, packet: Uint8Array): Observation {
  const vm = new VmObject(object, { seed: 1 });
  const run = vm.runProgram(program, { packet });
  const out: Record<string, string[]> = {};
  for (const [name, map] of vm.maps) {
    if (object.maps.find((m) => m.name === name)?.section) continue;
    const entries: [Uint8Array, Uint8Array][] = [];
    let key: Buffer | undefined;
    for (;;) {
      key = map.nextKey(key);
      if (!key) break;
      entries.push([new Uint8Array(key), new Uint8Array(map.lookup(key)!)]);
    }
    out[name] = sortEntries(entries);
  }
  return { retval: Number(BigInt.asUintN(32, run.retval)), packet: run.packet.toString('hex'), maps: out };
}
