// engine/l4csum.ts (completing CHECKSUM_PARTIAL TCP/UDP checksums before egress encrypts) three
// ways: the DSL source in Node, the compiled program in our VM, and in the kernel through
// BPF_PROG_TEST_RUN (real verifier). The test program returns the code and leaves the packet as
// the function did; each world must give the code and bytes this file's reference predicts.

import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompileResult } from '../compiler/compile.ts';
import * as dsl from '../compiler/dsl/index.ts';
import { openObject } from '../runtime/loader/index.ts';
import { VmObject } from '../runtime/vm/object.ts';
import { compileOrThrow } from './compiler/harness.ts';
import { describeWith, kernelBpf } from './support/env.ts';
import {
  L4CSUM_BAD,
  L4CSUM_COMPLETE,
  L4CSUM_COMPLETED,
  L4CSUM_MALFORMED,
  L4CSUM_MAX_LEN,
  L4CSUM_NOT_APPLICABLE,
  L4CSUM_TOO_BIG,
} from '../engine/l4csum.ts';

const SOURCE = new URL('../engine/l4csum.ts', import.meta.url).pathname;
const PROGRAM = 'l4csum_test';
const TCP = 6;
const UDP = 17;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// ---------------------------------------------------------------------------------------------
// Reference (RFC 768 / RFC 793 / RFC 1071), written from the RFCs, byte by byte, network order.

/** Sum of the big-endian 16-bit words of b[start, end), an odd last byte padded with zero. */
function wordSum(b: Uint8Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  return s;
}
/** Ones-complement fold to 1…0xffff (0 only for 0). */
function fold(x: number): number {
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 0x10000);
  return x;
}

interface Layout {
  l4: number; // offset of the L4 header in the frame
  l4Len: number; // bytes the checksum covers
  proto: number;
  checkAt: number; // offset of the check field in the frame
}

function layoutOf(f: Uint8Array): Layout {
  const ihl = (f[14]! & 15) * 4;
  const totLen = (f[16]! << 8) | f[17]!;
  const proto = f[23]!;
  const l4 = 14 + ihl;
  const l4Len = proto === UDP ? (f[l4 + 4]! << 8) | f[l4 + 5]! : totLen - ihl;
  return { l4, l4Len, proto, checkAt: l4 + (proto === UDP ? 6 : 16) };
}

function pseudoSum(f: Uint8Array, lay: Layout): number {
  return wordSum(f, 26, 34) + lay.proto + lay.l4Len;
}
/** The partial seed Linux leaves for the device: ~csum_tcpudp_magic(saddr, daddr, len, proto, 0). */
const seedOf = (f: Uint8Array): number => fold(pseudoSum(f, layoutOf(f)));
/** The full checksum: complement of pseudo header + L4 with check = 0 (UDP: 0 is sent as 0xffff). */
function fullOf(f: Uint8Array): number {
  const lay = layoutOf(f);
  const g = new Uint8Array(f);
  g[lay.checkAt] = 0;
  g[lay.checkAt + 1] = 0;
  const c = ~fold(pseudoSum(g, lay) + wordSum(g, lay.l4, lay.l4 + lay.l4Len)) & 0xffff;
  return lay.proto === UDP && c === 0 ? 0xffff : c;
}
/** What a receiver checks: pseudo header + L4 with the check field sums to 0 (ones complement). */
function verifies(f: Uint8Array): boolean {
  const lay = layoutOf(f);
  return fold(pseudoSum(f, lay) + wordSum(f, lay.l4, lay.l4 + lay.l4Len)) === 0xffff;
}
function withCheck(f: Uint8Array, v: number): Uint8Array {
  const g = new Uint8Array(f);
  const at = layoutOf(g).checkAt;
  g[at] = v >> 8;
  g[at + 1] = v & 0xff;
  return g;
}

// ---------------------------------------------------------------------------------------------
// Frames

/** Deterministic bytes (xorshift32), so failures reproduce. */
function prng(seed: number): (n: number) => Uint8Array {
  let x = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}

interface FrameSpec {
  proto: number;
  payload: number; // bytes after the 20-byte TCP / 8-byte UDP header
  ihl?: number; // 32-bit words, 5…15
  frag?: number; // the IPv4 flags/fragment-offset field
  udpLen?: number; // UDP length field (default: the whole IP payload)
  pad?: number; // bytes after the IP datagram (Ethernet padding)
  seed?: number;
}

function frame(s: FrameSpec): Uint8Array {
  const rnd = prng(s.seed ?? s.payload * 131 + s.proto * 7 + (s.ihl ?? 5));
  const ihl = (s.ihl ?? 5) * 4;
  const l4h = s.proto === TCP ? 20 : 8;
  const ipLen = l4h + s.payload;
  const totLen = ihl + ipLen;
  const f = new Uint8Array(14 + totLen + (s.pad ?? 0));
  f.set(rnd(12), 0);
  f[12] = 0x08; // IPv4
  f[14] = 0x40 | (ihl / 4);
  f[16] = totLen >> 8;
  f[17] = totLen & 0xff;
  f.set(rnd(2), 18);
  const frag = s.frag ?? 0x4000;
  f[20] = frag >> 8;
  f[21] = frag & 0xff;
  f[22] = 64;
  f[23] = s.proto;
  f.set(rnd(8), 26); // addresses
  for (let i = 34; i < 14 + ihl; i++) f[i] = 1; // IPv4 options: NOP
  const h = ~fold(wordSum(f, 14, 14 + ihl)) & 0xffff;
  f[24] = h >> 8;
  f[25] = h & 0xff;
  f.set(rnd(ipLen), 14 + ihl);
  if (s.proto === TCP) f[14 + ihl + 12] = 0x50; // data offset 5
  if (s.proto === UDP) {
    const ul = s.udpLen ?? ipLen;
    f[14 + ihl + 4] = ul >> 8;
    f[14 + ihl + 5] = ul & 0xff;
  }
  f.set(rnd(s.pad ?? 0), 14 + totLen);
  return f;
}

interface Case {
  name: string;
  frame: Uint8Array;
  code: number;
  out: Uint8Array; // the frame afterwards
}

/** (a) seed → completed, (b) complete → left, (c) corrupt → left, (d) UDP check 0 → left. */
function checksumCases(spec: FrameSpec, name: string): Case[] {
  return casesFor(frame(spec), name);
}
function casesFor(base: Uint8Array, name: string): Case[] {
  const seed = seedOf(base);
  const full = fullOf(base);
  const completed = withCheck(base, full);
  let bad = (full + 0x1234) & 0xffff;
  while (bad === seed || bad === 0 || verifies(withCheck(base, bad))) bad = (bad + 1) & 0xffff;
  const cases: Case[] = [
    { name: `${name} seed`, frame: withCheck(base, seed), code: full === seed ? L4CSUM_COMPLETE : L4CSUM_COMPLETED, out: completed },
    { name: `${name} complete`, frame: completed, code: L4CSUM_COMPLETE, out: completed },
    { name: `${name} corrupt`, frame: withCheck(base, bad), code: L4CSUM_BAD, out: withCheck(base, bad) },
  ];
  if (layoutOf(base).proto === UDP) cases.push({ name: `${name} no checksum`, frame: withCheck(base, 0), code: L4CSUM_NOT_APPLICABLE, out: withCheck(base, 0) });
  return cases;
}

/** Payload lengths: every one up to 40 (all tails), then a spread up to 1480, odd and even. */
const PAYLOADS = [...Array.from({ length: 41 }, (_, i) => i), 63, 64, 65, 100, 127, 255, 256, 257, 511, 512, 513, 999, 1000, 1023, 1024, 1025, 1399, 1400, 1459, 1460, 1471, 1472, 1473, 1479, 1480];

function sweepCases(): Case[] {
  const out: Case[] = [];
  for (const proto of [TCP, UDP]) {
    const name = proto === TCP ? 'TCP' : 'UDP';
    for (const payload of PAYLOADS) {
      for (const ihl of [5, 6, 15]) {
        if (ihl === 15 && payload > 1440) continue; // totLen within 1500
        if (ihl === 6 && payload % 3 !== 0 && payload > 40) continue;
        out.push(...checksumCases({ proto, payload, ihl }, `${name} payload ${payload} ihl ${ihl}`));
      }
    }
  }
  return out;
}

/** Ethernet padding after the datagram, UDP shorter than the IP payload, the seed 0xffff, a full
 *  checksum of 0 (TCP sends 0, UDP 0xffff). */
function edgeCases(): Case[] {
  const out: Case[] = [];
  out.push(...checksumCases({ proto: TCP, payload: 0, pad: 6 }, 'TCP padded to 60'));
  out.push(...checksumCases({ proto: UDP, payload: 3, pad: 15 }, 'UDP padded'));
  out.push(...checksumCases({ proto: UDP, payload: 40, udpLen: 8 + 17 }, 'UDP length 25 inside 48'));
  for (const proto of [TCP, UDP]) {
    const name = proto === TCP ? 'TCP' : 'UDP';
    // Addresses whose pseudo header sums to a multiple of 0xffff: the seed is 0xffff.
    const f = frame({ proto, payload: 33, seed: 99 });
    const lay = layoutOf(f);
    const rest = fold(wordSum(f, 26, 32) + lay.proto + lay.l4Len);
    const low = 0xffff - rest;
    f[32] = low >> 8;
    f[33] = low & 0xff;
    expect(seedOf(f)).toBe(0xffff);
    out.push(...casesFor(f, `${name} seed 0xffff`));
    // A payload word chosen so that the full checksum is 0.
    const g = withCheck(frame({ proto, payload: 30, seed: 7 }), 0);
    const gl = layoutOf(g);
    const at = gl.l4 + gl.l4Len - 2;
    g[at] = 0;
    g[at + 1] = 0;
    const w = 0xffff - fold(pseudoSum(g, gl) + wordSum(g, gl.l4, gl.l4 + gl.l4Len));
    g[at] = w >> 8;
    g[at + 1] = w & 0xff;
    const full = fullOf(g);
    expect(full).toBe(proto === UDP ? 0xffff : 0);
    out.push({ name: `${name} full checksum 0`, frame: withCheck(g, seedOf(g)), code: L4CSUM_COMPLETED, out: withCheck(g, full) });
  }
  return out;
}

/** (e) left alone: fragments, other protocols, not IPv4; too long. */
function notApplicableCases(): Case[] {
  const same = (name: string, f: Uint8Array, code: number): Case => ({ name, frame: f, code, out: f });
  const out: Case[] = [];
  for (const proto of [TCP, UDP]) {
    const name = proto === TCP ? 'TCP' : 'UDP';
    for (const [what, frag] of [['MF', 0x2000], ['offset 8', 0x0001], ['MF + offset', 0x2010], ['DF + offset', 0x4100]] as const) {
      const f = frame({ proto, payload: 100, frag });
      out.push(same(`${name} fragment ${what} (seed check)`, withCheck(f, seedOf(f)), L4CSUM_NOT_APPLICABLE));
    }
  }
  for (const proto of [1, 4, 47, 50, 132]) out.push(same(`protocol ${proto}`, frame({ proto, payload: 64 }), L4CSUM_NOT_APPLICABLE));
  const v6 = frame({ proto: TCP, payload: 10 });
  v6[12] = 0x88;
  v6[13] = 0xb5; // not IPv4 (a local EtherType: the kernel's test run parses 0x0800 and 0x86dd)
  out.push(same('not IPv4', v6, L4CSUM_NOT_APPLICABLE));
  // L4 longer than the function sums (engine egress drops these as TOO_BIG anyway).
  const big = frame({ proto: TCP, payload: L4CSUM_MAX_LEN - 20 + 1 });
  out.push(same(`TCP L4 ${L4CSUM_MAX_LEN + 1} bytes`, withCheck(big, seedOf(big)), L4CSUM_TOO_BIG));
  out.push(...checksumCases({ proto: UDP, payload: L4CSUM_MAX_LEN - 8 }, `UDP L4 ${L4CSUM_MAX_LEN} bytes (the most)`));
  return out;
}

/** (f) truncated or inconsistent: code MALFORMED, bytes unchanged. `kernel: false` for frames
 *  the kernel's test run refuses (EtherType 0x0800 needs a whole 20-byte IPv4 header). */
function malformedCases(): (Case & { kernel: boolean })[] {
  const bad = (name: string, f: Uint8Array, kernel = true): Case & { kernel: boolean } => ({ name, frame: f, code: L4CSUM_MALFORMED, out: f, kernel });
  const out: (Case & { kernel: boolean })[] = [];
  const tcp = frame({ proto: TCP, payload: 200 });
  const udp = frame({ proto: UDP, payload: 200 });
  for (const [name, f] of [['TCP', withCheck(tcp, seedOf(tcp))], ['UDP', withCheck(udp, seedOf(udp))]] as const) {
    for (const cut of [1, 2, 7, 100, 200]) out.push(bad(`${name} cut ${cut} bytes short of its total length`, f.subarray(0, f.length - cut)));
    out.push(bad(`${name} only the IPv4 header`, f.subarray(0, 34)));
    out.push(bad(`${name} IPv4 header + 4 bytes`, f.subarray(0, 38)));
    out.push(bad(`${name} Ethernet only`, f.subarray(0, 14), false));
    out.push(bad(`${name} half an IPv4 header`, f.subarray(0, 24), false));
    const v = new Uint8Array(f);
    v[14] = 0x65; // version 6
    out.push(bad(`${name} version 6 in an IPv4 EtherType`, v));
    const i = new Uint8Array(f);
    i[14] = 0x44; // IHL 4
    out.push(bad(`${name} IHL 4`, i));
    const t = new Uint8Array(f);
    t[16] = 0;
    t[17] = 19; // total length < IHL
    out.push(bad(`${name} total length 19`, t));
    const o = new Uint8Array(f);
    o[14] = 0x4f; // IHL 15: 60 bytes of header, more than the total length covers for a short packet
    o[16] = 0;
    o[17] = 40;
    out.push(bad(`${name} IHL 15, total length 40`, o));
  }
  // TCP shorter than its 20-byte header; UDP lengths outside 8…IP payload.
  const shortTcp = frame({ proto: UDP, payload: 11 }); // 19-byte IP payload
  shortTcp[23] = TCP;
  out.push(bad('TCP with 19 bytes of L4', shortTcp));
  for (const ul of [0, 7, 209]) {
    const f = frame({ proto: UDP, payload: 200, udpLen: ul });
    out.push(bad(`UDP length ${ul} in a 208-byte IP payload`, withCheck(f, 0x1234)));
  }
  return out;
}

function allCases(): { cases: Case[]; kernelOnlyNot: Set<string> } {
  const mal = malformedCases();
  return {
    cases: [...sweepCases(), ...edgeCases(), ...notApplicableCases(), ...mal],
    kernelOnlyNot: new Set(mal.filter((c) => !c.kernel).map((c) => c.name)),
  };
}

// ---------------------------------------------------------------------------------------------
// The three worlds

type Runner = (f: Uint8Array) => { code: number; out: string };

async function nodeRunner(): Promise<Runner> {
  const mod = (await import(`${pathToFileURL(SOURCE).href}?engine-l4csum`)) as typeof import('../engine/l4csum.ts');
  return (f) => {
    const ctx = new dsl.TcContext(new Uint8Array(f));
    const code = mod.l4csum_test(ctx) >>> 0;
    return { code, out: hex(ctx.packet) };
  };
}

function vmRunner(compiled: CompileResult): Runner {
  const vm = new VmObject(compiled.object, { seed: 1 });
  return (f) => {
    const r = vm.runProgram(PROGRAM, { packet: Buffer.from(f) });
    return { code: Number(BigInt.asUintN(32, r.retval)), out: r.packet.toString('hex') };
  };
}

function kernelRunner(compiled: CompileResult): { run: Runner; verified: number; close: () => void } {
  const obj = openObject(compiled.object, { name: 'l4csum' }).prepare({ pinning: false });
  try {
    obj.load({ programs: [PROGRAM] });
  } catch (e) {
    obj.close();
    throw new Error(`${(e as Error).message}\n${(e as { log?: string[] }).log?.slice(-30).join('\n') ?? ''}`);
  }
  const p = obj.program(PROGRAM);
  return {
    run: (f) => {
      const r = p.run({ dataIn: Buffer.from(f), dataSizeOut: f.length + 256 });
      return { code: r.retval >>> 0, out: r.dataOut.toString('hex') };
    },
    verified: p.info().verifiedInsns,
    close: () => obj.close(),
  };
}

let compiled: CompileResult;
beforeAll(() => {
  compiled = compileOrThrow(SOURCE);
}, 120_000);

describe('engine l4csum: the reference', () => {
  it('completes the checksum of a known TCP segment (RFC 1071 by hand) and every completed case verifies', () => {
    // 10.0.0.1 → 10.0.0.2, TCP, 20-byte header only, ports 1 → 2, all else 0.
    const f = new Uint8Array(54);
    f[12] = 0x08;
    f.set([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, TCP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
    f.set([0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0], 34);
    // pseudo: 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 20 = 0x141d; TCP: 1 + 2 + 0x5000 = 0x5003.
    expect(seedOf(f)).toBe(0x141d);
    expect(fullOf(f)).toBe(~(0x141d + 0x5003) & 0xffff);
    for (const c of sweepCases()) if (c.code === L4CSUM_COMPLETED || c.code === L4CSUM_COMPLETE) expect(verifies(c.out), c.name).toBe(true);
  });
});

function suite(name: string, make: () => Promise<{ run: Runner; close?: () => void }>, kernel = false): void {
  describe(`engine l4csum in ${name}`, () => {
    let r: { run: Runner; close?: () => void };
    beforeAll(async () => {
      r = await make();
      return () => r.close?.();
    });
    const check = (cases: Case[]) => {
      for (const c of cases) {
        const got = r.run(c.frame);
        expect({ name: c.name, code: got.code }).toEqual({ name: c.name, code: c.code });
        expect(got.out, c.name).toBe(hex(c.out));
      }
    };
    it('(a)–(d) TCP and UDP, payloads 0…1480, IHL 5/6/15: seed completed, complete/corrupt/no-checksum left', () => check(sweepCases()));
    it('padding after the datagram, UDP shorter than the IP payload, seed 0xffff, full checksum 0', () => check(edgeCases()));
    it('(e) fragments, other protocols, not IPv4, too long: left', () => check(notApplicableCases()));
    it('(f) truncated and inconsistent headers: MALFORMED, unchanged', () => {
      const { kernelOnlyNot } = allCases();
      check(malformedCases().filter((c) => !(kernel && kernelOnlyNot.has(c.name))));
    });
  });
}

suite('Node (the DSL source)', async () => ({ run: await nodeRunner() }));
suite('the VM (compiled)', async () => ({ run: vmRunner(compiled) }));
describeWith(kernelBpf(), 'engine l4csum in the kernel', () => {
  suite('the kernel (BPF_PROG_TEST_RUN, real verifier)', async () => kernelRunner(compiled), true);
  it('verifies in a modest number of instructions', () => {
    const k = kernelRunner(compiled);
    try {
      console.log(`l4csum_test: verifier processed ${k.verified} insns`);
      expect(k.verified).toBeLessThan(10_000);
    } finally {
      k.close();
    }
  });
});
