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

const PERCPU = new Set([5, 6]); // BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY

/** A per-CPU value read from the kernel (round_up(valueSize, 8) bytes per possible CPU) as the one
 *  value Node and the VM hold: a test run executes on one CPU, so at most one slot is non-zero;
 *  should several be (a map touched on several CPUs), they are summed as little-endian u64
 *  counters. The result is valueSize bytes. */
export function combinePerCpu(raw: Uint8Array, valueSize: number): Buffer {
  const stride = Math.ceil(valueSize / 8) * 8;
  const slots: Buffer[] = [];
  for (let off = 0; off + stride <= raw.length; off += stride) slots.push(Buffer.from(raw.subarray(off, off + stride)));
  const used = slots.filter((b) => b.some((x) => x !== 0));
  if (used.length <= 1) return Buffer.from((used[0] ?? Buffer.alloc(stride)).subarray(0, valueSize));
  const sum = Buffer.alloc(stride);
  for (let w = 0; w < stride; w += 8) sum.writeBigUInt64LE(BigInt.asUintN(64, used.reduce((a, b) => a + b.readBigUInt64LE(w), 0n)), w);
  return sum.subarray(0, valueSize);
}
const RINGBUF = 27; // BPF_MAP_TYPE_RINGBUF: records are compared separately (ringbufRecords)

let generation = 0;
/** Node: import a fresh copy of the module (fresh maps) and call the program. Modules it imports
 *  (`compiled.files` after the first) stay loaded between runs: their maps and globals are reset
 *  before the run, and their maps that are in the object are observed after it. */
export async function runNode(path: string, program: string, packet: Uint8Array, kind: 'tc' | 'xdp' = 'tc', setup: string[] = [], compiled?: CompileResult): Promise<Observation> {
  const libs: Record<string, unknown>[] = [];
  for (const file of compiled?.files.slice(1) ?? []) {
    const lib = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const v of Object.values(lib)) dsl.resetState(v);
    libs.push(lib);
  }
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
  const inObject = new Set(compiled?.object.maps.map((m) => m.name));
  for (const lib of libs) {
    for (const [name, v] of Object.entries(lib)) {
      if (v instanceof dsl.BpfMap && inObject.has(name)) maps[name] = sortEntries(v.dump().map((e) => [e.key, e.value]));
    }
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
      if (m.section || m.type === RINGBUF) continue; // global data is not a map in Node; a ring buffer has no keys
      const handle = obj.map(m.name);
      const entries: [Uint8Array, Uint8Array][] = [];
      const perCpu = PERCPU.has(m.type);
      for (const key of handle.keys()) {
        const raw = handle.lookup(key)!;
        entries.push([new Uint8Array(key), new Uint8Array(perCpu ? combinePerCpu(raw, m.valueSize) : raw)]);
      }
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
    const spec = object.maps.find((m) => m.name === name);
    if (spec?.section || spec?.type === RINGBUF) continue;
    const entries: [Uint8Array, Uint8Array][] = [];
    let key: Buffer | undefined;
    for (;;) {
      key = map.nextKey(key);
      if (!key) break;
      // A per-CPU value is one 8-byte-aligned slot in the VM (one CPU): its first valueSize bytes.
      const value = new Uint8Array(map.lookup(key)!).slice(0, spec?.valueSize);
      for (const off of kptrRanges(object, name)) value.fill(0, off, off + 8);
      entries.push([new Uint8Array(key), value]);
    }
    out[name] = sortEntries(entries);
  }
  return { retval: Number(BigInt.asUintN(32, run.retval)), packet: run.packet.toString('hex'), maps: out, ...(setup.length ? { setup: ran } : {}) };
}
