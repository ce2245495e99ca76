// A stateful engine under test, in one of three worlds: the DSL source in Node, the compiled
// object in the VM, or the kernel (real verifier, BPF_PROG_TEST_RUN). One world holds one SA pair
// (encrypt_sa to NODE_IP, ingress_sa from OUTER_SRC to NODE_IP), its keys, GHASH table and the
// crypto context, and keeps map state (sequence counter, replay window, audit) across packets.
// Used by test/engine-esp.test.ts, test/engine-fuzz.test.ts and test/engine-transport.test.ts
// (SaCase.mode: 'transport').

import { pathToFileURL } from 'node:url';
import type { CompileResult } from '../compiler/compile.ts';
import * as dsl from '../compiler/dsl/index.ts';
import { EspReceiver, EspSa, EspSender } from '../runtime/esp/esp.ts';
import { ghashTableBytes, ghashTableForKey } from '../runtime/esp/ghash.ts';
import { openObject } from '../runtime/loader/index.ts';
import { VmObject } from '../runtime/vm/object.ts';
import * as E from '../engine/esp.ts';

export const SOURCE = new URL('../engine/esp.ts', import.meta.url).pathname;
export const OUTER_SRC = '10.0.0.1';
export const NODE_IP = '10.0.0.2';
export const POD_DST = [10, 1, 2, 3];
export const ipNum = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);

export interface SaCase {
  key: Uint8Array;
  salt: Uint8Array;
  spi: number;
  /** encrypt_sa's next sequence number. */
  seq: bigint;
  seqLimit: bigint;
  df: number;
  ifindex: number;
  /** Both SAs' mode; tunnel when not given. Transport also routes NODE_IP itself to the SA
   *  (a second ipcache entry), so a frame OUTER_SRC → NODE_IP is encrypted by egress and opened
   *  by the same world's ingress. */
  mode?: 'tunnel' | 'transport';
  /** Extended sequence numbers on both SAs (RFC 4303 §2.2.1); off when not given. */
  esn?: boolean;
  /** ingress_sa's replay top at the start (0 when not given). */
  top?: bigint;
}

export function engineMaps(c: SaCase): [string, Uint8Array, Uint8Array][] {
  const transport = c.mode === 'transport';
  const routes: [string, Uint8Array, Uint8Array][] = transport
    ? [['ipcache', dsl.encode(E.IpcacheKey, { prefixlen: 32, addr: ipNum(NODE_IP) }), dsl.encode(E.IpcacheEntry, { identity: 43, tunnelEndpoint: ipNum(NODE_IP), keyIndex: 1 })]]
    : [];
  return [
    ['ipcache', dsl.encode(E.IpcacheKey, { prefixlen: 32, addr: ipNum(POD_DST.join('.')) }), dsl.encode(E.IpcacheEntry, { identity: 42, tunnelEndpoint: ipNum(NODE_IP), keyIndex: 1 })],
    ...routes,
    [
      'encrypt_sa',
      dsl.encode(E.EncryptKey, { kind: 2, selector: [10, 0, 0, 2] }),
      dsl.encode(E.EncryptSa, {
        seq: c.seq, seqLimit: c.seqLimit, packets: 0n, bytes: 0n, key: c.key, salt: c.salt, spi: c.spi,
        outerSrc: ipNum(OUTER_SRC), outerDst: ipNum(NODE_IP), ifindex: c.ifindex, keyLength: c.key.length, icvLength: 16,
        mode: transport ? E.MODE_TRANSPORT : E.MODE_TUNNEL, offload: 0, keyIndex: 1, ttl: 64, df: c.df, esn: c.esn ? 1 : 0, dropped: 0n,
      }),
    ],
    [
      'ingress_sa',
      dsl.encode(E.IngressKey, { spi: c.spi, src: ipNum(OUTER_SRC), dst: ipNum(NODE_IP) }),
      dsl.encode(E.IngressSa, {
        top: c.top ?? 0n, window: [], packets: 0n, bytes: 0n, replayDrops: 0n, icvDrops: 0n, key: c.key, salt: c.salt,
        keyLength: c.key.length, icvLength: 16, keyIndex: 1, esn: c.esn ? 1 : 0, mode: transport ? E.MODE_TRANSPORT : E.MODE_TUNNEL,
      }),
    ],
    ['ghash_tables', dsl.encode(dsl.u32, 1), ghashTableBytes(ghashTableForKey(c.key))],
    ['crypto_keys', dsl.encode(dsl.u32, 1), dsl.encode(E.CryptoKey, { key: c.key, keyLength: c.key.length, algo: 0 })],
  ];
}

const LAYOUTS: Record<string, [dsl.Type, dsl.Type]> = {
  ipcache: [E.IpcacheKey, E.IpcacheEntry],
  encrypt_sa: [E.EncryptKey, E.EncryptSa],
  ingress_sa: [E.IngressKey, E.IngressSa],
  ghash_tables: [dsl.u32, E.GhashTable],
  crypto_keys: [dsl.u32, E.CryptoKey],
};

const setupArgs = (): Buffer => Buffer.from(dsl.encode(E.CryptoSetupArgs, { keyIndex: 1, err: 0 }));

/** The runtime/esp SA matching a case (the reference implementation). */
export function referenceSa(c: SaCase): EspSa {
  const df = c.df === 1 ? 'set' : c.df === 2 ? 'clear' : 'copy';
  const esn = c.esn ?? false;
  if (c.mode === 'transport') return new EspSa({ spi: c.spi, key: c.key, salt: c.salt, icvLength: 16, esn, mode: 'transport' });
  return new EspSa({ spi: c.spi, key: c.key, salt: c.salt, icvLength: 16, esn, mode: 'tunnel', tunnel: { src: OUTER_SRC, dst: NODE_IP, ttl: 64, df } });
}
export const referenceSender = (c: SaCase): EspSender => {
  const s = new EspSender(referenceSa(c));
  s.nextSeq = c.seq;
  return s;
};
export const referenceReceiver = (c: SaCase): EspReceiver => new EspReceiver(referenceSa(c));

export interface Run {
  retval: number;
  frame: string;
}

export interface World {
  readonly setup: number;
  run(prog: 'egress' | 'ingress', frame: Uint8Array): Run;
  /** Packets counted per audit reason (all CPUs). */
  audit(): bigint[];
  /** The ingress SA's counters and replay top. */
  ingressSa(): { top: bigint; packets: bigint; replayDrops: bigint; icvDrops: bigint };
  close(): void;
}
export type MakeWorld = (c: SaCase) => Promise<World>;

const saKey = (c: SaCase): Uint8Array => dsl.encode(E.IngressKey, { spi: c.spi, src: ipNum(OUTER_SRC), dst: ipNum(NODE_IP) });
const readSa = (v: Uint8Array) => {
  const sa = dsl.view(E.IngressSa, v) as unknown as { top: bigint; packets: bigint; replayDrops: bigint; icvDrops: bigint };
  return { top: sa.top, packets: sa.packets, replayDrops: sa.replayDrops, icvDrops: sa.icvDrops };
};
/** Sums the packet counters of a per-CPU audit value (16-byte slots). */
const sumPerCpu = (b: Uint8Array): bigint => {
  let n = 0n;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let o = 0; o + 16 <= b.length; o += 16) n += v.getBigUint64(o, true);
  return n;
};
const u32key = (i: number): Buffer => Buffer.from(dsl.encode(dsl.u32, i));

let gen = 0;
export const nodeWorld: MakeWorld = async (c) => {
  const mod = (await import(`${pathToFileURL(SOURCE).href}?engine-world=${++gen}`)) as typeof E;
  const maps = mod as unknown as Record<string, dsl.BpfMap<dsl.Type, dsl.Type>>;
  for (const [name, k, v] of engineMaps(c)) {
    const [kt, vt] = LAYOUTS[name]!;
    maps[name]!.update(dsl.view(kt, k) as never, dsl.view(vt, v) as never);
  }
  const setup = mod.crypto_setup(new dsl.SyscallContext(new Uint8Array(setupArgs())));
  return {
    setup,
    run(prog, f) {
      const ctx = new dsl.TcContext(new Uint8Array(f));
      const retval = mod[prog](ctx) >>> 0;
      return { retval, frame: Buffer.from(ctx.packet).toString('hex') };
    },
    audit() {
      return Array.from({ length: E.AUDIT_REASONS }, (_, i) => (mod.audit.lookup(i) as unknown as { packets: bigint } | null)?.packets ?? 0n);
    },
    ingressSa() {
      const v = mod.ingress_sa.lookup(dsl.view(E.IngressKey, saKey(c)) as never) as unknown as { top: bigint; packets: bigint; replayDrops: bigint; icvDrops: bigint };
      return { top: v.top, packets: v.packets, replayDrops: v.replayDrops, icvDrops: v.icvDrops };
    },
    close() {},
  };
};

export function vmWorld(compiled: CompileResult): MakeWorld {
  return async (c) => {
    const vm = new VmObject(compiled.object, { seed: 1 });
    for (const [name, k, v] of engineMaps(c)) vm.map(name).update(Buffer.from(k), Buffer.from(v));
    const s = vm.runProgram('crypto_setup', { ctx: setupArgs() });
    return {
      setup: Number(BigInt.asIntN(32, s.retval)),
      run(prog, f) {
        const r = vm.runProgram(prog, { packet: Buffer.from(f) });
        return { retval: Number(BigInt.asUintN(32, r.retval)), frame: r.packet.toString('hex') };
      },
      audit() {
        return Array.from({ length: E.AUDIT_REASONS }, (_, i) => sumPerCpu(vm.map('audit').lookup(u32key(i)) ?? new Uint8Array(16)));
      },
      ingressSa() {
        return readSa(vm.map('ingress_sa').lookup(Buffer.from(saKey(c)))!);
      },
      close() {},
    };
  };
}

export function kernelWorld(compiled: CompileResult): MakeWorld {
  return async (c) => {
    const obj = openObject(compiled.object, { name: 'engine' }).prepare({ pinning: false });
    try {
      obj.load();
      for (const [name, k, v] of engineMaps(c)) obj.map(name).update(Buffer.from(k), Buffer.from(v));
    } catch (e) {
      obj.close();
      throw e;
    }
    const s = obj.program('crypto_setup').run({ ctxIn: setupArgs() });
    return {
      setup: s.retval | 0,
      run(prog, f) {
        const r = obj.program(prog).run({ dataIn: Buffer.from(f), dataSizeOut: f.length + 4096 });
        return { retval: r.retval >>> 0, frame: r.dataOut.toString('hex') };
      },
      audit() {
        return Array.from({ length: E.AUDIT_REASONS }, (_, i) => sumPerCpu(obj.map('audit').lookup(u32key(i)) ?? new Uint8Array(16)));
      },
      ingressSa() {
        return readSa(obj.map('ingress_sa').lookup(Buffer.from(saKey(c)))!);
      },
      close() {
        obj.close();
      },
    };
  };
}

/** An Ethernet + IPv4 + UDP frame of `payload` bytes to POD_DST. */
export function innerFrame(payload: number, tos = 0, frag = 0x4000): Uint8Array {
  const f = new Uint8Array(14 + 28 + payload);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
  const total = 28 + payload;
  f.set([0x45, tos, total >> 8, total & 0xff, 0x12, 0x34, frag >> 8, frag & 0xff, 64, 17, 0, 0, 10, 1, 0, 9, ...POD_DST], 14);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (f[14 + i]! << 8) | f[15 + i]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const check = ~sum & 0xffff;
  f[24] = check >> 8;
  f[25] = check & 0xff;
  for (let i = 0; i < payload; i++) f[42 + i] = (i * 31 + 7) & 0xff;
  return f;
}
