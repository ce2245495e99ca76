// The codegen benchmark's plumbing: each program exists twice, bench/dsl/NAME.ts (our compiler)
// and bench/c/NAME.c (clang-19 -O2 -g -target bpf). Both objects go through the same linker
// (runtime/loader linkProgram: the program plus every .text function it calls), so
// "instructions" are counted identically: 8-byte slots of the linked program (LD_IMM64 = 2).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { encode } from '../compiler/asm/instruction.ts';
import { compileFile, formatDiagnostic } from '../compiler/compile.ts';
import { readObject } from '../compiler/elf/reader.ts';
import type { ObjectSpec } from '../compiler/elf/spec.ts';
import { linkProgram } from '../runtime/loader/relocate.ts';
import { loadObject, type BpfObject } from '../runtime/loader/object.ts';

export const BENCH = import.meta.dirname;
export const CLANG = 'clang-19';

/** Every benchmark program: NAME with bench/dsl/NAME.ts and bench/c/NAME.c (the program is NAME). */
export function benchNames(): string[] {
  const c = new Set(readdirSync(join(BENCH, 'c')).filter((f) => f.endsWith('.c')).map((f) => basename(f, '.c')));
  return readdirSync(join(BENCH, 'dsl'))
    .filter((f) => f.endsWith('.ts') && c.has(basename(f, '.ts')))
    .map((f) => basename(f, '.ts'))
    .sort();
}

export const dslPath = (name: string): string => join(BENCH, 'dsl', `${name}.ts`);
export const cPath = (name: string): string => join(BENCH, 'c', `${name}.c`);

export function compileDsl(name: string): { object: ObjectSpec; ms: number } {
  const t0 = performance.now();
  const r = compileFile(dslPath(name));
  const ms = performance.now() - t0;
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(`compiling ${name}.ts:\n${errors.map(formatDiagnostic).join('\n')}`);
  return { object: r.object, ms };
}

const multiarch = (): string => `/usr/include/${arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;

export function compileC(name: string): { object: ObjectSpec; elf: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'bench-c-'));
  try {
    const out = join(dir, `${name}.o`);
    execFileSync(CLANG, ['-O2', '-g', '-target', 'bpf', `-I${multiarch()}`, '-c', cPath(name), '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    const elf = readFileSync(out);
    return { object: readObject(elf), elf };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Slots of the program `name` with its linked .text functions. */
export function slots(object: ObjectSpec, name: string): number {
  const prog = object.programs.find((p) => p.name === name);
  if (!prog) throw new Error(`no program ${name} (has ${object.programs.map((p) => p.name).join(', ')})`);
  const linked = linkProgram(object, prog);
  return encode(linked.instructions).length / 8;
}

/** Load into the kernel (private maps, no pinning). */
export function load(object: ObjectSpec, name: string): BpfObject {
  return loadObject(object, { name: `bench_${name}`.slice(0, 15), pinning: false, programs: [name] });
}

/** The verifier's processed-instruction count (bpf_prog_info.verified_insns). */
export function verifiedInsns(object: ObjectSpec, name: string): number {
  const o = load(object, name);
  try {
    return o.program(name).info().verifiedInsns;
  } finally {
    o.close();
  }
}

/** What one test run observed: return value, packet afterwards, every map's contents (per-CPU
 *  values summed over CPUs as u64 lanes, so the CPU the run landed on does not matter). */
export interface Observation {
  retval: number;
  packet: string;
  maps: Record<string, string[]>;
}

export function observe(o: BpfObject, name: string, packet: Uint8Array): Observation {
  const run = o.program(name).run({ dataIn: Buffer.from(packet), dataSizeOut: packet.length + 256 });
  const maps: Record<string, string[]> = {};
  for (const [mapName, m] of o.maps) {
    if (mapName.startsWith('.')) continue;
    const rows: string[] = [];
    for (const [k, v] of m.entries()) {
      let value = v;
      if (m.perCpu) {
        const size = m.valueSize;
        const stride = Math.ceil(size / 8) * 8;
        const sum = Buffer.alloc(stride);
        for (let off = 0; off + stride <= v.length; off += stride) {
          for (let lane = 0; lane + 8 <= stride; lane += 8) sum.writeBigUInt64LE(BigInt.asUintN(64, sum.readBigUInt64LE(lane) + v.readBigUInt64LE(off + lane)), lane);
        }
        value = sum.subarray(0, size);
      }
      if (value.every((b) => b === 0)) continue; // arrays: untouched slots
      rows.push(`${k.toString('hex')}=${value.toString('hex')}`);
    }
    maps[mapName] = rows.sort();
  }
  return { retval: run.retval >>> 0, packet: run.dataOut.toString('hex'), maps };
}

// ---- packets for the equivalence check

const mac = (n: number): number[] => [0x02, 0, 0, 0, 0, n];
function ipv4(proto: number, l4: number[], o: { ttl?: number; ihl?: number; frag?: number; badCsum?: boolean } = {}): number[] {
  const ihl = o.ihl ?? 5;
  const total = ihl * 4 + l4.length;
  const h = [0x40 | ihl, 0, total >> 8, total & 255, 0x12, 0x34, (o.frag ?? 0x4000) >> 8, (o.frag ?? 0x4000) & 255, o.ttl ?? 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
  while (h.length < ihl * 4) h.push(1, 0, 0, 0);
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += (h[i]! << 8) | h[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff ^ (o.badCsum ? 1 : 0);
  h[10] = c >> 8;
  h[11] = c & 255;
  return [...h, ...l4];
}
const eth = (proto: number, payload: number[], tags: number[] = []): Uint8Array =>
  new Uint8Array([...mac(1), ...mac(2), ...vlanBytes(tags, proto), ...payload]);
function vlanBytes(tags: number[], proto: number): number[] {
  if (tags.length === 0) return [proto >> 8, proto & 255];
  const out = [0x88, 0xa8];
  tags.forEach((t, i) => out.push(t >> 8, t & 255, ...(i === tags.length - 1 ? [proto >> 8, proto & 255] : [0x81, 0x00])));
  return out;
}
const tcp = (sport: number, dport: number, flags: number, payload = 24): number[] => [sport >> 8, sport & 255, dport >> 8, dport & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0, ...Array.from({ length: payload }, (_, i) => (i * 37 + 11) & 255)];
const udp = (sport: number, dport: number, payload = 40): number[] => [sport >> 8, sport & 255, dport >> 8, dport & 255, 0, payload + 8, 0, 0, ...Array.from({ length: payload }, (_, i) => (i * 53 + 7) & 255)];
const ipv6 = (next: number, l4: number[]): number[] => [0x60, 0, 0, 0, l4.length >> 8, l4.length & 255, next, 64, ...Array.from({ length: 32 }, (_, i) => i), ...l4];

/** A few packets that take different paths through the programs. */
export const PACKETS: Record<string, Uint8Array> = {
  tcp4: eth(0x0800, ipv4(6, tcp(40000, 443, 0x18))),
  udp4: eth(0x0800, ipv4(17, udp(5353, 53))),
  telnet: eth(0x0800, ipv4(6, tcp(40001, 23, 0x02))),
  fin4: eth(0x0800, ipv4(6, tcp(40000, 443, 0x11))),
  opts4: eth(0x0800, ipv4(17, udp(1000, 2000), { ihl: 7 })),
  ttl1: eth(0x0800, ipv4(17, udp(1, 2), { ttl: 1 })),
  badsum: eth(0x0800, ipv4(1, Array.from({ length: 40 }, (_, i) => i), { badCsum: true })),
  udp6: eth(0x86dd, ipv6(17, udp(3000, 4000))),
  vlan2: eth(0x0800, ipv4(6, tcp(5, 6, 0x10)), [0x0123, 0x0456]),
  arp: eth(0x0806, Array.from({ length: 46 }, (_, i) => i * 3)),
  short: new Uint8Array([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xb5, 1, 2, 3, 4]), // shorter than most headers (test runs refuse IPv4 without a full IP header)
  bareip: eth(0x0800, ipv4(6, [])), // IPv4 header, no L4 header
};
