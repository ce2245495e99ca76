// Run one DSL program three ways — as TypeScript in Node, compiled in our VM, compiled in the
// kernel through BPF_PROG_TEST_RUN — and collect what each observed: the return value, the
// packet afterwards, and every map's contents. Differential tests compare the three.

import { pathToFileURL } from 'node:url';
import { encode, wideConstant, type Instruction } from '../../compiler/asm/instruction.ts';
import { formatListing } from '../../compiler/asm/listing.ts';
import { compileFile, formatDiagnostic, type CompileResult } from '../../compiler/compile.ts';
import * as dsl from '../../compiler/dsl/index.ts';
import type { ObjectSpec, ProgramSpec } from '../../compiler/elf/spec.ts';
import { mapCreate, mapGetNextKey, mapLookup, progLoad, progTestRun } from '../../runtime/sys/index.ts';
import { Machine } from '../../runtime/vm/machine.ts';
import { createMap, type VmMap } from '../../runtime/vm/maps.ts';
import { buildCode } from '../../runtime/vm/program.ts';
import { helpers } from '../../runtime/vm/helpers.ts';

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
  const maps: Record<string, string[]> = {};
  for (const [name, v] of Object.entries(mod)) {
    if (v instanceof dsl.BpfMap) maps[name] = sortEntries(v.dump().map((e) => [e.key, e.value]));
  }
  return { retval, packet: Buffer.from(bytes).toString('hex'), maps };
}

function relocate(prog: ProgramSpec, resolve: (symbol: string) => number): Instruction[] {
  const insns = prog.instructions.map((i) => ({ ...i }));
  for (const r of prog.relocations) {
    if (r.kind !== 'map') throw new Error(`harness: relocation kind ${r.kind} not handled`);
    insns[r.insn]!.imm = resolve(r.symbol);
  }
  return insns;
}

/** The kernel: create the maps, patch their fds into the code, load, test-run, read the maps. */
export function runKernel(object: ObjectSpec, program: string, packet: Uint8Array): Observation {
  const prog = object.programs.find((p) => p.name === program)!;
  const fds = new Map(object.maps.map((m) => [m.name, mapCreate({ type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags, name: m.name.slice(0, 15) })]));
  try {
    const insns = relocate(prog, (s) => fds.get(s)!.value);
    let loaded;
    try {
      loaded = progLoad({ type: prog.progType, insns: encode(insns), license: object.license, name: prog.name.slice(0, 15), expectedAttachType: prog.attachType || undefined });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${formatListing(prog.instructions)}`);
    }
    try {
      const run = progTestRun(loaded.fd, { dataIn: Buffer.from(packet), dataSizeOut: packet.length + 256 });
      const maps: Record<string, string[]> = {};
      for (const m of object.maps) {
        const entries: [Uint8Array, Uint8Array][] = [];
        const fd = fds.get(m.name)!;
        let key: Buffer | null = null;
        for (;;) {
          key = mapGetNextKey(fd, key, m.keySize);
          if (!key) break;
          entries.push([new Uint8Array(key), new Uint8Array(mapLookup(fd, key, m.valueSize)!)]);
        }
        maps[m.name] = sortEntries(entries);
      }
      return { retval: run.retval >>> 0, packet: run.dataOut.toString('hex'), maps };
    } finally {
      loaded.fd.close();
    }
  } finally {
    for (const fd of fds.values()) fd.close();
  }
}

/** Our VM: the same relocated code, maps from runtime/vm. */
export function runVm(object: ObjectSpec, program: string, packet: Uint8Array): Observation {
  const prog = object.programs.find((p) => p.name === program)!;
  const m = new Machine({ seed: 1 });
  const maps = new Map<string, VmMap>(object.maps.map((d) => [d.name, createMap({ name: d.name, type: d.type, keySize: d.keySize, valueSize: d.valueSize, maxEntries: d.maxEntries, flags: d.flags })]));
  const code = buildCode(m, prog.name, prog.instructions, {
    wide: (insn) => (insn.src === 0 ? wideConstant(insn) : insn.reference && maps.has(insn.reference) ? m.mapPointer(maps.get(insn.reference)!) : `unknown symbol ${insn.reference}`),
    helper: (id) => helpers.get(id),
    kfunc: (insn) => `no kfunc ${insn.reference}`,
  });
  const run = m.runCode(code, prog.progType === 6 ? 'xdp' : 'tc', { packet });
  const out: Record<string, string[]> = {};
  for (const [name, map] of maps) {
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
