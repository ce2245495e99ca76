// Policies in the DSL (issue 5): each examples/policy-*.ts is compiled on its own into an engine
// object (its egress + the engine's ingress and crypto_setup, re-exported) and run in Node (the
// DSL source), the VM and the kernel (real verifier, BPF_PROG_TEST_RUN) with the same map state:
// packets the policy encrypts must open under runtime/esp with the SA the policy chose (its SPI,
// key and outer addresses) to the original frame; packets it passes come out unchanged; packets
// it drops (by rule, or fail closed without an SA) are counted under their reason. The per-rule
// counters (policy_audit) and the per-SA counters must say the same.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompileResult } from '../compiler/compile.ts';
import * as dsl from '../compiler/dsl/index.ts';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { auditJson, formatAudit, readAudit, readPolicyAudit, ruleNamesOf } from '../runtime/audit.ts';
import { EspReceiver, EspSa, espDecapFrame } from '../runtime/esp/esp.ts';
import { ghashTableBytes, ghashTableForKey } from '../runtime/esp/ghash.ts';
import { openObject } from '../runtime/loader/index.ts';
import { VmObject } from '../runtime/vm/object.ts';
import { objPin } from '../runtime/sys/index.ts';
import * as E from '../engine/esp.ts';
import { combinePerCpu, compileOrThrow } from './compiler/harness.ts';
import { kernelBpf } from './support/env.ts';

const ROOT = join(new URL('.', import.meta.url).pathname, '..');
const LOCAL_NODE = '10.0.0.1';
const ipNum = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0) >>> 0;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// ---------------------------------------------------------------------------------------------
// Frames

interface FrameSpec {
  src: string;
  dst: string;
  proto?: number;
  dport?: number;
  payload?: number;
}
/** Ethernet + IPv4 (checksummed) + an 8-byte UDP/TCP-ish header (ports) + payload. */
function frame(f: FrameSpec): Uint8Array {
  const payload = f.payload ?? 40;
  const total = 20 + 8 + payload;
  const b = new Uint8Array(14 + total);
  b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
  const s = ipNum(f.src);
  const d = ipNum(f.dst);
  b.set([0x45, 0, total >> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, f.proto ?? 17, 0, 0, s >>> 24, (s >> 16) & 255, (s >> 8) & 255, s & 255, d >>> 24, (d >> 16) & 255, (d >> 8) & 255, d & 255], 14);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (b[14 + i]! << 8) | b[15 + i]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  b[24] = (~sum >> 8) & 0xff;
  b[25] = ~sum & 0xff;
  const port = f.dport ?? 8080;
  b.set([0x9c, 0x40, port >> 8, port & 0xff, (8 + payload) >> 8, (8 + payload) & 0xff, 0, 0], 34);
  for (let i = 0; i < payload; i++) b[42 + i] = (i * 13 + 5) & 0xff;
  return b;
}

// ---------------------------------------------------------------------------------------------
// SAs: two key slots (different AES keys), SAs under policy-chosen encrypt_sa keys

interface Sa {
  /** The encrypt_sa key the policy must choose. */
  kind: number;
  words: number[];
  spi: number;
  slot: 1 | 2;
  peer: string;
}
const SLOT_KEYS = { 1: new Uint8Array(randomBytes(16)), 2: new Uint8Array(randomBytes(32)) } as const;
const SALTS = { 1: new Uint8Array(randomBytes(4)), 2: new Uint8Array(randomBytes(4)) } as const;

function saKey(kind: number, words: number[]): Uint8Array {
  const selector = new Uint8Array(16);
  const v = new DataView(selector.buffer);
  words.forEach((w, i) => v.setUint32(4 * i, w >>> 0));
  return dsl.encode(E.EncryptKey, { kind, selector });
}
function saValue(sa: Sa): Uint8Array {
  return dsl.encode(E.EncryptSa, {
    seq: 1n, seqLimit: 0xffffffffn, packets: 0n, bytes: 0n, key: SLOT_KEYS[sa.slot], salt: SALTS[sa.slot], spi: sa.spi,
    outerSrc: ipNum(LOCAL_NODE), outerDst: ipNum(sa.peer), ifindex: 0, keyLength: SLOT_KEYS[sa.slot].length, icvLength: 16,
    mode: E.MODE_TUNNEL, offload: 0, keyIndex: sa.slot, ttl: 64, df: E.DF_COPY, esn: 0, dropped: 0n,
  });
}
const referenceSa = (sa: Sa): EspSa =>
  new EspSa({ spi: sa.spi, key: SLOT_KEYS[sa.slot], salt: SALTS[sa.slot], icvLength: 16, mode: 'tunnel', tunnel: { src: LOCAL_NODE, dst: sa.peer } });

const lpmKey = (prefix: string): Uint8Array => {
  const [addr, len] = prefix.split('/');
  return dsl.encode(E.IpcacheKey, { prefixlen: Number(len), addr: ipNum(addr!) });
};
const ipcacheEntry = (identity: number, node: string | null, keyIndex: number): Uint8Array => dsl.encode(E.IpcacheEntry, { identity, tunnelEndpoint: node ? ipNum(node) : 0, keyIndex });

// ---------------------------------------------------------------------------------------------
// The examples: map state and packets with what must happen to each

type Expect =
  | { verdict: 'encrypt'; sa: Sa }
  | { verdict: 'pass' }
  | { verdict: 'drop'; reason: number };
interface PacketCase {
  name: string;
  frame: Uint8Array;
  rule: number;
  expect: Expect;
}
interface Example {
  file: string;
  /** A second map state for the same file. */
  label?: string;
  /** [map, key, value] written before the packets (besides crypto state and SAs). */
  entries: [string, Uint8Array, Uint8Array][];
  sas: Sa[];
  packets: PacketCase[];
}

const ipc = (prefix: string, identity: number, node: string | null, keyIndex: number): [string, Uint8Array, Uint8Array] => ['ipcache', lpmKey(prefix), ipcacheEntry(identity, node, keyIndex)];

// Per node pair: node 10.0.0.2 hosts 10.2.0.0/16, node 10.0.0.3 hosts 10.3.0.0/16 (and a /32
// inside it moved to 10.0.0.2: the longest prefix wins); 10.4.0.0/16 has a key index but no SA.
const NODE2: Sa = { kind: E.ENCRYPT_KEY_NODE, words: [ipNum('10.0.0.2')], spi: 0x201, slot: 1, peer: '10.0.0.2' };
const NODE3: Sa = { kind: E.ENCRYPT_KEY_NODE, words: [ipNum('10.0.0.3')], spi: 0x301, slot: 2, peer: '10.0.0.3' };
const nodeRoutes: [string, Uint8Array, Uint8Array][] = [
  ipc('10.2.0.0/16', 1000, '10.0.0.2', 1),
  ipc('10.3.0.0/16', 1001, '10.0.0.3', 2),
  ipc('10.3.9.9/32', 1002, '10.0.0.2', 1),
  ipc('10.4.0.0/16', 1003, '10.0.0.4', 1),
  ipc('10.5.0.0/16', 1004, '10.0.0.5', 0),
];
const nodePairPackets = (): PacketCase[] => [
  { name: 'to a pod on node 2', frame: frame({ src: '10.1.0.5', dst: '10.2.7.1' }), rule: 2, expect: { verdict: 'encrypt', sa: NODE2 } },
  { name: 'to a pod on node 3 (the other SA, AES-256)', frame: frame({ src: '10.1.0.5', dst: '10.3.1.1', payload: 333 }), rule: 2, expect: { verdict: 'encrypt', sa: NODE3 } },
  { name: 'to a /32 inside node 3\'s /16 that lives on node 2 (longest prefix)', frame: frame({ src: '10.1.0.5', dst: '10.3.9.9' }), rule: 2, expect: { verdict: 'encrypt', sa: NODE2 } },
  { name: 'outside the ipcache', frame: frame({ src: '10.1.0.5', dst: '192.168.1.1' }), rule: 1, expect: { verdict: 'pass' } },
  { name: 'ipcache entry without a key index', frame: frame({ src: '10.1.0.5', dst: '10.5.0.1' }), rule: 1, expect: { verdict: 'pass' } },
  { name: 'key index but no SA for node 4: fail closed', frame: frame({ src: '10.1.0.5', dst: '10.4.0.1' }), rule: 2, expect: { verdict: 'drop', reason: E.AUDIT_NO_SA } },
];

const KEY_SUBNETS = 3;
const KEY_IDENTITY = 4;
const SUBNET_AB: Sa = { kind: KEY_SUBNETS, words: [ipNum('10.1.0.0'), ipNum('10.2.0.0')], spi: 0x1002, slot: 1, peer: '10.0.0.2' };
const SUBNET_AC: Sa = { kind: KEY_SUBNETS, words: [ipNum('10.1.0.0'), ipNum('10.3.0.0')], spi: 0x1003, slot: 2, peer: '10.0.0.3' };
const subnetEntry = (prefix: string): [string, Uint8Array, Uint8Array] => {
  const v = new Uint8Array(4);
  new DataView(v.buffer).setUint32(0, ipNum(prefix.split('/')[0]!));
  return ['subnets', lpmKey(prefix), v];
};

const ID_DB: Sa = { kind: KEY_IDENTITY, words: [5001], spi: 0x5001, slot: 2, peer: '10.0.0.3' };
const ID_WEB: Sa = { kind: KEY_IDENTITY, words: [5002], spi: 0x5002, slot: 1, peer: '10.0.0.2' };

const EXAMPLES: Example[] = [
  { file: 'policy-node-pair.ts', entries: nodeRoutes, sas: [NODE2, NODE3], packets: nodePairPackets() },
  {
    file: 'policy-port-exempt.ts',
    entries: nodeRoutes,
    sas: [NODE2, NODE3],
    packets: [
      ...nodePairPackets(),
      { name: 'UDP to the exempt port 4240', frame: frame({ src: '10.1.0.5', dst: '10.2.7.1', dport: 4240 }), rule: 3, expect: { verdict: 'pass' } },
      { name: 'TCP to the exempt port 4240', frame: frame({ src: '10.1.0.5', dst: '10.3.1.1', proto: 6, dport: 4240 }), rule: 3, expect: { verdict: 'pass' } },
      { name: 'UDP to port 4241: encrypted', frame: frame({ src: '10.1.0.5', dst: '10.2.7.1', dport: 4241 }), rule: 2, expect: { verdict: 'encrypt', sa: NODE2 } },
      { name: 'ICMP (protocol 1) with 4240 where a port would be: encrypted', frame: frame({ src: '10.1.0.5', dst: '10.2.7.1', proto: 1, dport: 4240 }), rule: 2, expect: { verdict: 'encrypt', sa: NODE2 } },
    ],
  },
  {
    file: 'policy-subnet.ts',
    // Subnets 10.1/16, 10.2/16, 10.3/16 are listed; 10.9/16 is not. No SA for 10.2 → 10.1.
    entries: [subnetEntry('10.1.0.0/16'), subnetEntry('10.2.0.0/16'), subnetEntry('10.3.0.0/16')],
    sas: [SUBNET_AB, SUBNET_AC],
    packets: [
      { name: '10.1 → 10.2: the 10.1/10.2 pair SA', frame: frame({ src: '10.1.4.4', dst: '10.2.0.9' }), rule: 2, expect: { verdict: 'encrypt', sa: SUBNET_AB } },
      { name: '10.1 → 10.3: the 10.1/10.3 pair SA', frame: frame({ src: '10.1.200.1', dst: '10.3.3.3', payload: 1000 }), rule: 2, expect: { verdict: 'encrypt', sa: SUBNET_AC } },
      { name: '10.2 → 10.1: a listed pair without an SA, fail closed', frame: frame({ src: '10.2.0.9', dst: '10.1.4.4' }), rule: 2, expect: { verdict: 'drop', reason: E.AUDIT_NO_SA } },
      { name: 'to a subnet not listed: plaintext', frame: frame({ src: '10.1.4.4', dst: '10.9.0.1' }), rule: 1, expect: { verdict: 'pass' } },
      { name: 'from a subnet not listed: plaintext', frame: frame({ src: '172.16.0.1', dst: '10.2.0.9' }), rule: 1, expect: { verdict: 'pass' } },
    ],
  },
  {
    file: 'policy-identity.ts',
    entries: [
      ipc('0.0.0.0/0', 2, null, 0), // world
      ipc('10.2.0.0/16', 5002, '10.0.0.2', 1),
      ipc('10.3.5.0/24', 5001, '10.0.0.3', 2),
      ipc('10.3.6.0/24', 5003, '10.0.0.3', 2),
    ],
    sas: [ID_DB, ID_WEB],
    packets: [
      { name: 'identity 5002 (web)', frame: frame({ src: '10.1.0.5', dst: '10.2.1.1' }), rule: 3, expect: { verdict: 'encrypt', sa: ID_WEB } },
      { name: 'identity 5001 (db)', frame: frame({ src: '10.1.0.5', dst: '10.3.5.7', payload: 700 }), rule: 3, expect: { verdict: 'encrypt', sa: ID_DB } },
      { name: 'identity 5003 without an SA: fail closed', frame: frame({ src: '10.1.0.5', dst: '10.3.6.1' }), rule: 3, expect: { verdict: 'drop', reason: E.AUDIT_NO_SA } },
      { name: 'the world (0.0.0.0/0, identity 2): plaintext', frame: frame({ src: '10.1.0.5', dst: '8.8.8.8' }), rule: 2, expect: { verdict: 'pass' } },
    ],
  },
  {
    file: 'policy-identity.ts',
    label: 'policy-identity.ts without a world entry',
    entries: [ipc('10.2.0.0/16', 5002, '10.0.0.2', 1)],
    sas: [ID_WEB],
    packets: [
      { name: 'a destination the ipcache does not know: dropped by the policy', frame: frame({ src: '10.1.0.5', dst: '8.8.8.8' }), rule: 1, expect: { verdict: 'drop', reason: E.AUDIT_POLICY_DROP } },
      { name: 'identity 5002 still encrypted', frame: frame({ src: '10.1.0.5', dst: '10.2.1.1' }), rule: 3, expect: { verdict: 'encrypt', sa: ID_WEB } },
    ],
  },
];

// ---------------------------------------------------------------------------------------------
// Worlds: Node, VM, kernel, with the same map state

interface PolicyWorld {
  setup(slot: number): number;
  update(map: string, k: Uint8Array, v: Uint8Array): void;
  /** A map value (per-CPU values summed into one). */
  read(map: string, k: Uint8Array): Uint8Array | null;
  run(frame: Uint8Array): { retval: number; frame: Uint8Array };
  close(): void;
}
const u32 = (n: number): Uint8Array => dsl.encode(dsl.u32, n);
const setupArgs = (slot: number): Uint8Array => dsl.encode(E.CryptoSetupArgs, { keyIndex: slot, err: 0 });
const PERCPU = new Set(['audit', 'policy_audit', 'scratch']);

let gen = 0;
async function nodeWorld(path: string, compiled: CompileResult): Promise<PolicyWorld> {
  const maps = new Map<string, dsl.BpfMap<dsl.Type, dsl.Type>>();
  for (const file of compiled.files.slice(1)) {
    const lib = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const [name, v] of Object.entries(lib)) {
      dsl.resetState(v);
      // The first file declaring a name is the one the object's map comes from (engine/ghash.ts
      // has a test map of its own called ghash_tables, which no policy reaches).
      if (v instanceof dsl.BpfMap && !maps.has(name)) maps.set(name, v);
    }
  }
  const mod = (await import(`${pathToFileURL(path).href}?policy=${++gen}`)) as Record<string, unknown>;
  for (const [name, v] of Object.entries(mod)) if (v instanceof dsl.BpfMap) maps.set(name, v);
  const map = (name: string) => maps.get(name)!;
  return {
    setup: (slot) => (mod.crypto_setup as (c: dsl.SyscallContext) => number)(new dsl.SyscallContext(setupArgs(slot))),
    update(name, k, v) {
      const m = map(name);
      const key = dsl.view(m instanceof dsl.ArrayMap ? dsl.u32 : m.options.key, k);
      expect(m.update(key as never, dsl.view(m.options.value, v) as never), `${name} ${String(key)} ${m.constructor.name}`).toBe(0n);
    },
    read(name, k) {
      const m = map(name);
      const e = m.dump().find((x) => hex(x.key) === hex(k));
      return e ? new Uint8Array(e.value) : null;
    },
    run(f) {
      const ctx = new dsl.TcContext(new Uint8Array(f));
      const retval = (mod.egress as (c: dsl.TcContext) => number)(ctx) >>> 0;
      return { retval, frame: new Uint8Array(ctx.packet) };
    },
    close() {},
  };
}

function vmWorld(compiled: CompileResult, keep?: (vm: VmObject) => void): PolicyWorld {
  const vm = new VmObject(compiled.object, { seed: 1 });
  keep?.(vm);
  return {
    setup: (slot) => Number(BigInt.asIntN(32, vm.runProgram('crypto_setup', { ctx: Buffer.from(setupArgs(slot)) }).retval)),
    update: (name, k, v) => vm.map(name).update(Buffer.from(k), Buffer.from(v)),
    read: (name, k) => vm.map(name).lookup(Buffer.from(k)) ?? null,
    run(f) {
      const r = vm.runProgram('egress', { packet: Buffer.from(f) });
      return { retval: Number(BigInt.asUintN(32, r.retval)), frame: new Uint8Array(r.packet) };
    },
    close() {},
  };
}

type KernelObject = ReturnType<ReturnType<typeof openObject>['prepare']>;
function kernelWorld(compiled: CompileResult, name: string, loaded?: (obj: KernelObject) => void): PolicyWorld {
  const obj = openObject(compiled.object, { name }).prepare({ pinning: false });
  try {
    obj.load();
  } catch (e) {
    obj.close();
    throw e;
  }
  loaded?.(obj);
  const size = (map: string): number => compiled.object.maps.find((m) => m.name === map)!.valueSize;
  return {
    setup: (slot) => obj.program('crypto_setup').run({ ctxIn: Buffer.from(setupArgs(slot)) }).retval | 0,
    update: (map, k, v) => obj.map(map).update(Buffer.from(k), Buffer.from(v)),
    read(map, k) {
      const raw = obj.map(map).lookup(Buffer.from(k));
      if (!raw) return null;
      return PERCPU.has(map) ? combinePerCpu(raw, size(map)) : raw;
    },
    run(f) {
      const r = obj.program('egress').run({ dataIn: Buffer.from(f), dataSizeOut: f.length + 4096 });
      return { retval: r.retval >>> 0, frame: new Uint8Array(r.dataOut) };
    },
    close: () => obj.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Running an example in a world

interface Counts {
  /** policy_audit[rule]: [encrypted, plaintext, dropped] × {packets, bytes}. */
  rules: Map<number, bigint[]>;
  reasons: Map<number, bigint>;
  saPackets: Map<number, bigint>;
}
const word = (b: Uint8Array, i: number): bigint => new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(8 * i, true);

async function runExample(ex: Example, w: PolicyWorld): Promise<void> {
  for (const slot of [1, 2] as const) {
    w.update('crypto_keys', u32(slot), dsl.encode(E.CryptoKey, { key: SLOT_KEYS[slot], keyLength: SLOT_KEYS[slot].length, algo: 0 }));
    w.update('ghash_tables', u32(slot), ghashTableBytes(ghashTableForKey(SLOT_KEYS[slot])));
    expect(w.setup(slot), `crypto_setup ${slot}`).toBe(0);
  }
  for (const [map, k, v] of ex.entries) w.update(map, k, v);
  for (const sa of ex.sas) w.update('encrypt_sa', saKey(sa.kind, sa.words), saValue(sa));

  const want: Counts = { rules: new Map(), reasons: new Map(), saPackets: new Map() };
  const add = <K>(m: Map<K, bigint>, k: K, n = 1n) => m.set(k, (m.get(k) ?? 0n) + n);
  const receivers = new Map(ex.sas.map((sa) => [sa.spi, new EspReceiver(referenceSa(sa))]));
  for (const p of ex.packets) {
    const got = w.run(p.frame);
    const len = BigInt(p.frame.length);
    const rule = want.rules.get(p.rule) ?? [0n, 0n, 0n, 0n, 0n, 0n];
    want.rules.set(p.rule, rule);
    if (p.expect.verdict === 'pass') {
      expect(got.retval, p.name).toBe(dsl.TC_ACT_OK);
      expect(hex(got.frame), p.name).toBe(hex(p.frame));
      rule[2]! += 1n;
      rule[3]! += len;
      add(want.reasons, E.AUDIT_PLAINTEXT);
    } else if (p.expect.verdict === 'drop') {
      expect(got.retval, p.name).toBe(dsl.TC_ACT_SHOT);
      rule[4]! += 1n;
      rule[5]! += len;
      add(want.reasons, p.expect.reason);
    } else {
      const sa = p.expect.sa;
      expect(got.retval, p.name).toBe(dsl.TC_ACT_OK);
      const out = got.frame;
      expect(out[14 + 9], `${p.name}: ESP`).toBe(50);
      expect(new DataView(out.buffer, out.byteOffset).getUint32(34), `${p.name}: the SPI of the SA the policy chose`).toBe(sa.spi);
      expect([...out.subarray(30, 34)].join('.'), `${p.name}: outer destination`).toBe(sa.peer);
      const opened = espDecapFrame(receivers.get(sa.spi)!, out);
      expect(opened.ok, `${p.name}: opens under the chosen SA's key`).toBe(true);
      if (opened.ok) expect(hex(opened.frame), `${p.name}: the original frame`).toBe(hex(p.frame));
      rule[0]! += 1n;
      rule[1]! += len;
      add(want.reasons, E.AUDIT_ENCRYPTED);
      add(want.saPackets, sa.spi);
    }
  }
  // policy_audit per rule and verdict, audit per reason, encrypt_sa per SA.
  for (let r = 0; r < 8; r++) {
    const v = w.read('policy_audit', u32(r));
    const got = [0, 1, 2, 3, 4, 5].map((i) => (v ? word(v, i) : 0n));
    expect(got, `${ex.file}: policy_audit[${r}]`).toEqual(want.rules.get(r) ?? [0n, 0n, 0n, 0n, 0n, 0n]);
  }
  for (let reason = 0; reason < E.AUDIT_REASONS; reason++) {
    const v = w.read('audit', u32(reason));
    expect(v ? word(v, 0) : 0n, `${ex.file}: audit reason ${reason}`).toBe(want.reasons.get(reason) ?? 0n);
  }
  for (const sa of ex.sas) {
    const v = w.read('encrypt_sa', saKey(sa.kind, sa.words))!;
    const view = dsl.view(E.EncryptSa, v) as unknown as { packets: bigint; seq: bigint };
    expect(view.packets, `${ex.file}: SA 0x${sa.spi.toString(16)} packets`).toBe(want.saPackets.get(sa.spi) ?? 0n);
    expect(view.seq, `${ex.file}: SA 0x${sa.spi.toString(16)} next seq`).toBe(1n + (want.saPackets.get(sa.spi) ?? 0n));
  }
}

// ---------------------------------------------------------------------------------------------

const kernel = kernelBpf();
if (!kernel.ok) console.warn(`SKIP kernel runs of the example policies: ${kernel.reason}`);
const compiled = new Map<string, CompileResult>();
const pathOf = (file: string): string => join(ROOT, 'examples', file);

beforeAll(() => {
  for (const ex of EXAMPLES) if (!compiled.has(ex.file)) compiled.set(ex.file, compileOrThrow(pathOf(ex.file)));
}, 120_000);

describe('example policies: one object each (egress from the policy, ingress and crypto_setup re-exported)', () => {
  for (const ex of EXAMPLES.filter((e) => !e.label)) {
    it(`${ex.file}: programs and maps`, () => {
      const c = compiled.get(ex.file)!;
      expect(c.object.programs.map((p) => `${p.name} ${p.section}`).sort()).toEqual(['crypto_setup syscall', 'egress tc/egress', 'ingress tc/ingress']);
      const maps = c.object.maps.map((m) => m.name);
      for (const m of ['encrypt_sa', 'ingress_sa', 'crypto_ctx', 'crypto_keys', 'ghash_tables', 'scratch', 'audit', 'policy_audit']) expect(maps).toContain(m);
      const lpm = c.object.maps.find((m) => m.name === (ex.file === 'policy-subnet.ts' ? 'subnets' : 'ipcache'))!;
      expect(lpm.type).toBe(11); // BPF_MAP_TYPE_LPM_TRIE
      expect(lpm.flags & 1).toBe(1); // BPF_F_NO_PREALLOC
    });
  }
});

for (const [label, make] of [
  ['Node (the DSL source)', (ex: Example) => nodeWorld(pathOf(ex.file), compiled.get(ex.file)!)],
  ['the VM', async (ex: Example) => vmWorld(compiled.get(ex.file)!)],
] as const) {
  describe(`example policies in ${label}`, () => {
    for (const ex of EXAMPLES) {
      it(ex.label ?? ex.file, async () => {
        const w = await make(ex);
        try {
          await runExample(ex, w);
        } finally {
          w.close();
        }
      });
    }
  });
}

describe.skipIf(!kernel.ok)('example policies in the kernel (real verifier, BPF_PROG_TEST_RUN)', () => {
  for (const ex of EXAMPLES) {
    it(ex.label ?? ex.file, async () => {
      const w = kernelWorld(compiled.get(ex.file)!, ex.file.replace(/\.ts$/, '').replace(/-/g, '_').slice(0, 15));
      try {
        await runExample(ex, w);
      } finally {
        w.close();
      }
    });
  }
});

describe('the audit per policy rule (runtime/audit.ts, `ebpf-ts audit`)', () => {
  it('reads policy_audit per rule and verdict, names rules from the policy source, and prints them', async () => {
    const ex = EXAMPLES.find((e) => e.file === 'policy-port-exempt.ts')!;
    let vm: VmObject | undefined;
    await runExample(ex, vmWorld(compiled.get(ex.file)!, (v) => (vm = v)));
    const lookup = (map: string) => ({ lookup: (k: Buffer) => { const v = vm!.map(map).lookup(k); return v ? Buffer.from(v) : null; } });
    const names = ruleNamesOf(readFileSync(pathOf(ex.file), 'utf8'));
    expect(names).toEqual({ 0: 'not ipv4', 1: 'no key', 2: 'node', 3: 'exempt port' });
    const rules = readPolicyAudit(lookup('policy_audit'), E.PolicyCounter.size, names);
    const rule = (n: number) => rules.find((r) => r.rule === n)!;
    expect(rules.map((r) => r.rule)).toEqual([0, 1, 2, 3]); // named rules are listed even at zero
    expect(rule(2)).toMatchObject({ name: 'node', encrypted: { packets: 5n }, dropped: { packets: 1n }, plaintext: { packets: 0n } });
    expect(rule(3)).toMatchObject({ name: 'exempt port', plaintext: { packets: 2n }, encrypted: { packets: 0n } });
    expect(rule(1).plaintext.packets).toBe(2n);
    const rows = readAudit(lookup('audit'));
    const text = formatAudit(rows, [], rules);
    expect(text).toContain('traffic by policy rule');
    expect(text).toMatch(/3 exempt port\s+0 \/ 0\s+2 \/ \d+\s+0 \/ 0/);
    expect(text).toMatch(/dropped: no SA \(fail closed\)\s+1\s/);
    const json = auditJson(rows, [], rules) as { rules: { rule: number; encrypted: { packets: number } }[] };
    expect(json.rules.find((r) => r.rule === 2)!.encrypted.packets).toBe(5);
    // Without rules (an engine object without policy_audit) the table is what it was.
    expect(formatAudit(rows, [])).not.toContain('policy rule');
  });
});

describe.skipIf(!kernel.ok)('`ebpf-ts audit --policy` on a policy object\'s pinned maps', () => {
  it('prints the rule table with the policy\'s rule names next to the verdicts and SAs', async () => {
    const ex = EXAMPLES.find((e) => e.file === 'policy-subnet.ts')!;
    const c = compiled.get(ex.file)!;
    const dir = `/sys/fs/bpf/ets-policy-audit-${process.pid}`;
    try {
      let pinMaps = (_dir: string): void => {};
      const world = kernelWorld(c, 'policy_subnet', (o) => {
        pinMaps = (d) => {
          for (const m of ['audit', 'policy_audit', 'encrypt_sa', 'ingress_sa']) objPin(o.map(m).fd, join(d, m));
        };
      });
      try {
        await runExample(ex, world);
        mkdirSync(dir, { recursive: true });
        pinMaps(dir);
      } finally {
        world.close(); // the pins keep the maps
      }
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/ebpf-ts.js'), 'audit', '--pin-dir', dir, '--policy', pathOf(ex.file)], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('traffic by policy rule');
      expect(r.stdout).toMatch(/2 subnet pair\s+2 \/ \d+\s+0 \/ 0\s+1 \/ \d+/);
      expect(r.stdout).toMatch(/1 outside\s+0 \/ 0\s+2 \/ \d+\s+0 \/ 0/);
      expect(r.stdout).toMatch(/egress\s+0x1002\s+10\.0\.0\.2\s+1\s/);
      const json = JSON.parse(spawnSync(process.execPath, [join(ROOT, 'bin/ebpf-ts.js'), 'audit', '--pin-dir', dir, '--json'], { encoding: 'utf8' }).stdout) as { rules: { rule: number; dropped: { packets: number } }[] };
      expect(json.rules.find((x) => x.rule === 2)!.dropped.packets).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
