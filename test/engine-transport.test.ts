// ESP transport mode (RFC 4303 §3.1.1, IPv4): eth | IPv4 (protocol 50) | SPI | seq | IV |
// E(L4 ‖ padding ‖ pad length ‖ next header = the L4 protocol) | ICV. The engine (engine/esp.ts
// `seal` and `ingress`) against runtime/esp/esp.ts for the same SA state: the DSL source in Node,
// the compiled object in the VM and in the kernel (real verifier, BPF_PROG_TEST_RUN); scapy
// (test/support/scapy/esp.py) opens the engine's packets and builds packets the engine opens.
// One world holds a transport-mode SA pair (test/engine-world.ts, mode 'transport').

import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompileResult } from '../compiler/compile.ts';
import * as dsl from '../compiler/dsl/index.ts';
import { EspReceiver, EspSa, EspSender, espDecapFrame, espEncapFrame } from '../runtime/esp/esp.ts';
import { gcmSeal } from '../runtime/esp/gcm.ts';
import { compileOrThrow } from './compiler/harness.ts';
import {
  type MakeWorld,
  type SaCase,
  type World,
  NODE_IP,
  OUTER_SRC,
  POD_DST,
  SOURCE,
  innerFrame,
  kernelWorld,
  nodeWorld,
  referenceReceiver,
  referenceSa,
  referenceSender,
  vmWorld,
} from './engine-world.ts';
import { describeWith, kernelBpf } from './support/env.ts';
import { hasScapy, scapyBatch, type ScapyRequest, type ScapySa } from './support/scapy.ts';
import * as E from '../engine/esp.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const TCP = 6;
const UDP = 17;
const ICMP = 1;
const PROTOS = [UDP, TCP, ICMP] as const;
const PROTO_NAME: Record<number, string> = { 6: 'TCP', 17: 'UDP', 1: 'ICMP' };

/** RFC 1071 sum (not yet complemented) of `b`, plus `init`. */
function sum16(b: Uint8Array, init = 0): number {
  let s = init;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export interface L4Options {
  proto: number;
  /** Bytes after the L4 header. */
  payload: number;
  src?: string;
  dst?: string;
  tos?: number;
  id?: number;
  /** flags ‖ fragment offset. */
  frag?: number;
  ttl?: number;
  /** IPv4 option bytes (a multiple of 4). */
  options?: number;
}

/** Ethernet + IPv4 + a real UDP (8), TCP (20) or ICMP echo (8) header with correct checksums
 *  + `payload` bytes. */
export function l4Frame(o: L4Options): Uint8Array {
  const src = (o.src ?? '10.1.0.9').split('.').map(Number);
  const dst = (o.dst ?? POD_DST.join('.')).split('.').map(Number);
  const opt = o.options ?? 0;
  const ihl = 20 + opt;
  const l4h = o.proto === TCP ? 20 : 8;
  const l4 = new Uint8Array(l4h + o.payload);
  for (let i = 0; i < o.payload; i++) l4[l4h + i] = (i * 29 + o.proto) & 0xff;
  const v = new DataView(l4.buffer);
  if (o.proto === UDP) {
    v.setUint16(0, 40000);
    v.setUint16(2, 4789);
    v.setUint16(4, l4.length);
  } else if (o.proto === TCP) {
    v.setUint16(0, 40001);
    v.setUint16(2, 443);
    v.setUint32(4, 0x01020304);
    v.setUint32(8, 0x0a0b0c0d);
    l4[12] = 5 << 4;
    l4[13] = 0x18; // PSH ACK
    v.setUint16(14, 64240);
  } else {
    l4[0] = 8; // echo request
    v.setUint16(4, 0x4242);
    v.setUint16(6, 7);
  }
  const ckOff = o.proto === TCP ? 16 : o.proto === UDP ? 6 : 2;
  const pseudo = o.proto === ICMP ? 0 : sum16(new Uint8Array([...src, ...dst, 0, o.proto, l4.length >> 8, l4.length & 0xff]));
  const ck = ~sum16(l4, pseudo) & 0xffff;
  v.setUint16(ckOff, o.proto === UDP && ck === 0 ? 0xffff : ck);

  const total = ihl + l4.length;
  const f = new Uint8Array(14 + total);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
  const frag = o.frag ?? 0x4000;
  const id = o.id ?? 0x1234;
  f.set([0x40 | (ihl / 4), o.tos ?? 0, total >> 8, total & 0xff, id >> 8, id & 0xff, frag >> 8, frag & 0xff, o.ttl ?? 61, o.proto, 0, 0, ...src, ...dst], 14);
  for (let i = 0; i < opt; i++) f[34 + i] = 1; // NOP options
  const c = ~sum16(f.subarray(14, 14 + ihl)) & 0xffff;
  f[24] = c >> 8;
  f[25] = c & 0xff;
  f.set(l4, 14 + ihl);
  return f;
}

/** A frame the transport world's own ingress SA covers: OUTER_SRC → NODE_IP. */
const toNode = (o: L4Options): Uint8Array => l4Frame({ src: OUTER_SRC, dst: NODE_IP, ...o });

const caseOf = (over: Partial<SaCase> = {}): SaCase => ({
  key: new Uint8Array(randomBytes(16)), salt: new Uint8Array(randomBytes(4)), spi: 0x7e5, seq: 1n, seqLimit: 0xffffffffn, df: 0, ifindex: 0, mode: 'transport', ...over,
});

function sealRef(sender: EspSender, f: Uint8Array): Uint8Array {
  const r = espEncapFrame(sender, f);
  if (!r.ok) throw new Error(`reference dropped: ${r.reason}`);
  return r.frame;
}

/** Payload sizes after the L4 header: every residue mod 16 at the small end, then a stride. */
const SIZES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 13, 16, 17, 31, 100, 511, 1000, 1400];

describe('runtime/esp transport decap (the reference)', () => {
  it('updates the header checksum incrementally: a header damaged in flight stays detectably damaged', () => {
    const c = caseOf();
    const f = toNode({ proto: TCP, payload: 77, ttl: 33 });
    const esp = sealRef(referenceSender(c), f);
    esp[14 + 8] = 7; // TTL, checksum left alone
    const r = espDecapFrame(referenceReceiver(c), esp);
    const want = Uint8Array.from(f);
    want[22] = 7;
    expect(r.ok && hex(r.frame)).toBe(hex(want));
    expect(sum16(want.subarray(14, 34))).not.toBe(0xffff); // the IP stack's check fails
    expect(sum16(f.subarray(14, 34))).toBe(0xffff);
  });
});

let compiled: CompileResult;
beforeAll(() => {
  compiled = compileOrThrow(SOURCE);
}, 120_000);

function suite(name: string, make: () => MakeWorld): void {
  describe(`transport mode in ${name}`, () => {
    let mk: MakeWorld;
    beforeAll(() => {
      mk = make();
    });
    const withWorld = async (c: SaCase, body: (w: World) => Promise<void> | void): Promise<void> => {
      const w = await mk(c);
      try {
        expect(w.setup, 'crypto_setup').toBe(0);
        await body(w);
      } finally {
        w.close();
      }
    };

    it('egress: byte-for-byte runtime/esp transport mode (TCP/UDP/ICMP, payloads 0..1400, AES-128/256)', async () => {
      for (const proto of PROTOS) {
        for (const keyLength of [16, 32] as const) {
          const c = caseOf({ key: new Uint8Array(randomBytes(keyLength)), seq: proto === TCP ? 0x12345n : 1n });
          const sender = referenceSender(c);
          await withWorld(c, (w) => {
            SIZES.forEach((payload, i) => {
              const what = `${PROTO_NAME[proto]} payload ${payload}, AES-${keyLength * 8}`;
              const f = l4Frame({ proto, payload, tos: (i * 4) | (i % 4), id: 0x100 + i, ttl: 30 + i, frag: i % 3 === 0 ? 0 : 0x4000 });
              const got = w.run('egress', f);
              expect(got.retval, what).toBe(dsl.TC_ACT_OK);
              const want = sealRef(sender, f);
              expect(got.frame, what).toBe(hex(want));
              // Transport mode keeps the header: TOS (ECN too), ID, flags, TTL, addresses.
              const out = Buffer.from(got.frame, 'hex');
              expect(out[14 + 9], what).toBe(50);
              expect(hex(out.subarray(15, 16)) + hex(out.subarray(18, 23)) + hex(out.subarray(26, 34)), what).toBe(hex(f.subarray(15, 16)) + hex(f.subarray(18, 23)) + hex(f.subarray(26, 34)));
              expect(out.length, what).toBe(f.length + 16 + ((4 - ((f.length - 34 + 2) % 4)) % 4) + 2 + 16);
            });
            expect(w.audit()[E.AUDIT_ENCRYPTED]).toBe(BigInt(SIZES.length));
          });
        }
      }
    });

    it('egress: the largest datagram fits (IPv4 1534 B), one more is TOO_BIG; options and fragments are UNSUPPORTED; nothing consumes a seq', async () => {
      const c = caseOf();
      const sender = referenceSender(c);
      await withWorld(c, (w) => {
        const expected = new Array<bigint>(E.AUDIT_REASONS).fill(0n);
        const step = (what: string, f: Uint8Array, reason: number): void => {
          const got = w.run('egress', f);
          expected[reason]! += 1n;
          if (reason === E.AUDIT_ENCRYPTED) {
            expect(got.retval, what).toBe(dsl.TC_ACT_OK);
            expect(got.frame, what).toBe(hex(sealRef(sender, f)));
          } else expect(got.retval, what).toBe(dsl.TC_ACT_SHOT);
          expect(w.audit(), what).toEqual(expected);
        };
        step('IPv4 1500 B (UDP 1472)', l4Frame({ proto: UDP, payload: 1472 }), E.AUDIT_ENCRYPTED);
        step('IPv4 1534 B', l4Frame({ proto: UDP, payload: 1506 }), E.AUDIT_ENCRYPTED);
        step('IPv4 1535 B', l4Frame({ proto: UDP, payload: 1507 }), E.AUDIT_TOO_BIG);
        step('IPv4 options', l4Frame({ proto: TCP, payload: 10, options: 4 }), E.AUDIT_UNSUPPORTED);
        step('fragment (MF)', l4Frame({ proto: UDP, payload: 10, frag: 0x2000 }), E.AUDIT_UNSUPPORTED);
        step('fragment (offset)', l4Frame({ proto: UDP, payload: 10, frag: 0x0010 }), E.AUDIT_UNSUPPORTED);
        step('after the drops: the next seq', l4Frame({ proto: ICMP, payload: 56 }), E.AUDIT_ENCRYPTED);
        step('Ethernet padding past the datagram (not encrypted)', new Uint8Array([...l4Frame({ proto: UDP, payload: 2 }), ...new Uint8Array(16)]), E.AUDIT_ENCRYPTED);
      });
    });

    it('ingress: opens runtime/esp transport packets to the original frame (TCP/UDP/ICMP, every padding, AES-128/256)', async () => {
      for (const keyLength of [16, 32] as const) {
        const c = caseOf({ key: new Uint8Array(randomBytes(keyLength)) });
        const sender = referenceSender(c);
        const receiver = referenceReceiver(c);
        await withWorld(c, (w) => {
          let n = 0n;
          for (const proto of PROTOS) {
            for (const payload of SIZES) {
              const what = `${PROTO_NAME[proto]} payload ${payload}`;
              const f = toNode({ proto, payload, tos: 0x03, ttl: 9 });
              const esp = sealRef(sender, f);
              const got = w.run('ingress', esp);
              expect(got.retval, what).toBe(dsl.TC_ACT_OK);
              expect(got.frame, what).toBe(hex(f));
              const ref = espDecapFrame(receiver, esp);
              expect(ref.ok && hex(ref.frame), what).toBe(got.frame);
              n++;
            }
          }
          expect(w.audit()[E.AUDIT_DECRYPTED]).toBe(n);
          expect(w.ingressSa().packets).toBe(n);
        });
      }
    });

    it('ingress opens its own egress output', async () => {
      await withWorld(caseOf(), (w) => {
        for (const proto of PROTOS) {
          for (const payload of [0, 5, 64, 700, 1400]) {
            const f = toNode({ proto, payload, tos: 0x10 });
            const out = w.run('egress', f);
            expect(out.retval).toBe(dsl.TC_ACT_OK);
            expect(out.frame).not.toBe(hex(f));
            const back = w.run('ingress', Buffer.from(out.frame, 'hex'));
            expect(back.retval, `${PROTO_NAME[proto]} ${payload}`).toBe(dsl.TC_ACT_OK);
            expect(back.frame, `${PROTO_NAME[proto]} ${payload}`).toBe(hex(f));
          }
        }
      });
    });

    it('ingress: replay, ICV, padding and next-header handling as in tunnel mode, each drop counted', async () => {
      const c = caseOf();
      const sender = referenceSender(c);
      const sa = referenceSa(c);
      const seal = (seq: bigint, payload = 20, proto: number = UDP): Uint8Array => {
        sender.nextSeq = seq;
        return sealRef(sender, toNode({ proto, payload }));
      };
      /** An authentic transport packet carrying `plain` (payload ‖ padding ‖ pad length ‖ next
       *  header, wrong on purpose where a case wants it) from OUTER_SRC to NODE_IP. */
      const espFrame = (seq: number, plain: Uint8Array): Uint8Array => {
        const head = new Uint8Array(16);
        const v = new DataView(head.buffer);
        v.setUint32(0, c.spi);
        v.setUint32(4, seq);
        v.setUint32(12, seq);
        const { ciphertext, tag } = gcmSeal(sa.gcm, sa.nonce(head.subarray(8, 16)), head.subarray(0, 8), plain, 16);
        const ip = toNode({ proto: UDP, payload: 0 }).subarray(0, 34);
        const total = 20 + 16 + ciphertext.length + 16;
        const f = new Uint8Array(14 + total);
        f.set(ip);
        f[16] = total >> 8;
        f[17] = total & 0xff;
        f[23] = 50;
        f[24] = 0;
        f[25] = 0;
        const ck = ~sum16(f.subarray(14, 34)) & 0xffff;
        f[24] = ck >> 8;
        f[25] = ck & 0xff;
        f.set(head, 34);
        f.set(ciphertext, 50);
        f.set(tag, 50 + ciphertext.length);
        return f;
      };
      const udp = (n: number): Uint8Array => toNode({ proto: UDP, payload: n }).subarray(34);
      const trailer = (payload: Uint8Array, pad: number[], padLen: number, nextHeader: number): Uint8Array => new Uint8Array([...payload, ...pad, padLen, nextHeader]);
      /** What transport decap of `l4` with protocol `proto` delivers. */
      const delivered = (l4: Uint8Array, proto: number): Uint8Array => {
        const f = toNode({ proto: UDP, payload: 0 }).subarray(0, 34);
        const out = new Uint8Array([...f, ...l4]);
        const total = 20 + l4.length;
        out[16] = total >> 8;
        out[17] = total & 0xff;
        out[23] = proto;
        out[24] = 0;
        out[25] = 0;
        const ck = ~sum16(out.subarray(14, 34)) & 0xffff;
        out[24] = ck >> 8;
        out[25] = ck & 0xff;
        return out;
      };
      await withWorld(c, (w) => {
        const expected = new Array<bigint>(E.AUDIT_REASONS).fill(0n);
        const step = (what: string, f: Uint8Array, reason: number, deliver?: Uint8Array): void => {
          const got = w.run('ingress', f);
          expected[reason]! += 1n;
          if (deliver) {
            expect(got.retval, what).toBe(dsl.TC_ACT_OK);
            expect(got.frame, what).toBe(hex(deliver));
          } else expect(got.retval, what).toBe(dsl.TC_ACT_SHOT);
          expect(w.audit(), what).toEqual(expected);
        };
        const p1 = seal(1n);
        step('seq 1', p1, E.AUDIT_DECRYPTED, toNode({ proto: UDP, payload: 20 }));
        step('seq 1 replayed', p1, E.AUDIT_REPLAY);
        const p2 = seal(2n, 40, TCP);
        const bad2 = new Uint8Array(p2);
        bad2[60]! ^= 0x01;
        step('seq 2 ciphertext flipped', bad2, E.AUDIT_BAD_ICV);
        step('seq 2 (the forgery did not move the window)', p2, E.AUDIT_DECRYPTED, toNode({ proto: TCP, payload: 40 }));
        const p3 = seal(3n, 3, ICMP);
        const icv = new Uint8Array(p3);
        icv[icv.length - 1]! ^= 0x80;
        step('seq 3 ICV flipped', icv, E.AUDIT_BAD_ICV);
        const hdr = new Uint8Array(p3);
        hdr[14 + 8] = 1; // TTL changed in flight, checksum not: the header is not covered by ESP
        // Delivered with it, and the checksum updated incrementally (RFC 1624), so it stays wrong
        // and the IP stack drops the packet, as it would have without ESP.
        const hdrOut = toNode({ proto: ICMP, payload: 3 });
        hdrOut[22] = 1;
        step('seq 3 with a corrupted IPv4 header (not authenticated in transport mode)', hdr, E.AUDIT_DECRYPTED, hdrOut);
        step('seq 3 again', p3, E.AUDIT_REPLAY);
        step('truncated', seal(4n).subarray(0, 60), E.AUDIT_MALFORMED);
        step('seq 10', seal(10n), E.AUDIT_DECRYPTED, toNode({ proto: UDP, payload: 20 }));
        step('seq 9 late', seal(9n, 33), E.AUDIT_DECRYPTED, toNode({ proto: UDP, payload: 33 }));
        step('seq 3000', seal(3000n), E.AUDIT_DECRYPTED, toNode({ proto: UDP, payload: 20 }));
        step('seq 1900: left of the window', seal(1900n), E.AUDIT_REPLAY);
        step('padding bytes 1, 7', espFrame(4000, trailer(udp(0), [1, 7], 2, UDP)), E.AUDIT_BAD_PADDING);
        step('pad length past the payload', espFrame(4001, trailer(udp(0), [1, 2], 200, UDP)), E.AUDIT_BAD_PADDING);
        step('padding 1…10 (long, correct)', espFrame(4002, trailer(udp(0), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 10, UDP)), E.AUDIT_DECRYPTED, toNode({ proto: UDP, payload: 0 }));
        step('next header 59 (TFC dummy): discarded', espFrame(4003, trailer(udp(0), [1, 2], 2, 59)), E.AUDIT_UNSUPPORTED);
        step('next header 41: delivered as protocol 41', espFrame(4004, trailer(udp(0), [1, 2], 2, 41)), E.AUDIT_DECRYPTED, delivered(udp(0), 41));
        const ipip = innerFrame(8).subarray(14);
        step('next header 4 on a transport SA: delivered as IP-in-IP (protocol 4)', espFrame(4005, trailer(ipip, [1, 2], 2, 4)), E.AUDIT_DECRYPTED, delivered(ipip, 4));
        step('empty payload', espFrame(4006, trailer(new Uint8Array(0), [1, 2], 2, UDP)), E.AUDIT_DECRYPTED, delivered(new Uint8Array(0), UDP));
        step('bad padding did not move the window', espFrame(4000, trailer(udp(0), [1, 2], 2, UDP)), E.AUDIT_DECRYPTED, toNode({ proto: UDP, payload: 0 }));
        const plain = toNode({ proto: UDP, payload: 10 });
        step('plaintext', plain, E.AUDIT_PLAINTEXT, plain);
        const s = w.ingressSa();
        expect(s.top).toBe(4006n);
        expect(s.replayDrops).toBe(expected[E.AUDIT_REPLAY]);
        expect(s.icvDrops).toBe(expected[E.AUDIT_BAD_ICV]);
        expect(s.packets).toBe(expected[E.AUDIT_DECRYPTED]);
      });
    });

    it('a tunnel-mode SA drops transport packets (UNSUPPORTED, counted) and still opens tunnel packets', async () => {
      const t = caseOf({ mode: 'tunnel' });
      const transportSender = new EspSender(new EspSa({ spi: t.spi, key: t.key, salt: t.salt, icvLength: 16, mode: 'transport' }));
      const tunnelSender = referenceSender(t);
      await withWorld(t, (w) => {
        const expected = new Array<bigint>(E.AUDIT_REASONS).fill(0n);
        for (const proto of PROTOS) {
          const f = toNode({ proto, payload: 30 });
          const got = w.run('ingress', sealRef(transportSender, f));
          expect(got.retval, PROTO_NAME[proto]).toBe(dsl.TC_ACT_SHOT);
          expected[E.AUDIT_UNSUPPORTED]! += 1n;
          expect(w.audit(), PROTO_NAME[proto]).toEqual(expected);
        }
        tunnelSender.nextSeq = 4n;
        const inner = innerFrame(30);
        const got = w.run('ingress', sealRef(tunnelSender, inner));
        expect(got.retval).toBe(dsl.TC_ACT_OK);
        expect(got.frame).toBe(hex(inner));
        expected[E.AUDIT_DECRYPTED]! += 1n;
        expect(w.audit()).toEqual(expected);
        // Its egress is tunnel mode, as before.
        const out = w.run('egress', innerFrame(30));
        expect(out.retval).toBe(dsl.TC_ACT_OK);
        expect(out.frame).toBe(hex(sealRef(referenceSender(t), innerFrame(30))));
      });
    });
  });
}

suite('Node (the DSL source)', () => nodeWorld);
suite('the VM (compiled)', () => vmWorld(compiled));
describeWith(kernelBpf(), 'transport mode in the kernel', () => {
  suite('the kernel (real verifier)', () => kernelWorld(compiled));
});

// =============================================================================================
// scapy: an independent implementation on both sides.

const scapySa = (c: SaCase): ScapySa => ({ spi: c.spi, key: c.key, salt: c.salt, icv: 16, mode: 'transport' });

describeWith(hasScapy(), 'transport mode against scapy', () => {
  it("scapy opens the engine's transport packets (Node, VM, kernel) to the original datagram", async () => {
    const worlds: [string, MakeWorld][] = [['Node', nodeWorld], ['VM', vmWorld(compiled)]];
    if (kernelBpf().ok) worlds.push(['kernel', kernelWorld(compiled)]);
    const out: { c: SaCase; plain: Uint8Array; esp: Uint8Array }[] = [];
    for (const [, mk] of worlds) {
      for (const keyLength of [16, 32] as const) {
        const c = caseOf({ key: new Uint8Array(randomBytes(keyLength)) });
        const w = await mk(c);
        try {
          SIZES.forEach((payload, i) => {
            const plain = l4Frame({ proto: PROTOS[i % 3]!, payload, tos: i, id: i, ttl: 64 - i });
            const r = w.run('egress', plain);
            expect(r.retval).toBe(dsl.TC_ACT_OK);
            out.push({ c, plain, esp: Buffer.from(r.frame, 'hex') });
          });
        } finally {
          w.close();
        }
      }
    }
    const replies = scapyBatch(out.map((o) => ({ op: 'decrypt', sa: scapySa(o.c), packet: o.esp.subarray(14) }) satisfies ScapyRequest));
    replies.forEach((r, i) => {
      const o = out[i]!;
      const what = `packet ${i}, ${o.plain.length} B, protocol ${o.plain[23]}`;
      if (!r.ok) throw new Error(`${what}: scapy refused it: ${r.error}`);
      if (!('inner' in r)) throw new Error('not a decrypt reply');
      expect(r.via, what).toBe('scapy');
      expect(r.inner, what).toBe(hex(o.plain.subarray(14)));
      expect(r.nh, what).toBe(o.plain[23]);
      expect(r.pad_ok && r.aligned && r.outer_ok, what).toBe(true);
    });
  });

  /** scapy's transport ESP of TCP/UDP/ICMP datagrams OUTER_SRC → NODE_IP, random IVs. */
  function scapyPackets(c: SaCase): { plain: Uint8Array; esp: Uint8Array; tampered: Uint8Array; seq: number }[] {
    const plan: { plain: Uint8Array; seq: number }[] = [];
    const requests: ScapyRequest[] = [];
    SIZES.forEach((payload, i) => {
      const proto = PROTOS[i % 3]!;
      const plain = toNode({ proto, payload, tos: i << 2, id: 0x4000 + i, ttl: 64 });
      const seq = 1 + 2 * i;
      plan.push({ plain, seq });
      requests.push({ op: 'encrypt', sa: scapySa(c), inner: plain.subarray(14), seq, iv: new Uint8Array(randomBytes(8)) });
    });
    return scapyBatch(requests).map((r, i) => {
      const p = plan[i]!;
      if (!r.ok || !('packet' in r)) throw new Error(`scapy refused packet ${i}: ${r.ok ? 'not an encrypt reply' : r.error}`);
      const esp = new Uint8Array([...p.plain.subarray(0, 14), ...Buffer.from(r.packet, 'hex')]);
      const tampered = Uint8Array.from(esp);
      tampered[42 + ((i * 37) % (esp.length - 42))]! ^= 1 << (i % 8);
      return { ...p, esp, tampered };
    });
  }

  function scapySuite(name: string, make: () => MakeWorld): void {
    for (const keyLength of [16, 32] as const) {
      it(`${name}: ingress opens scapy's transport ESP (AES-${keyLength * 8}); tampered copies drop as bad ICV`, async () => {
        const c = caseOf({ key: new Uint8Array(randomBytes(keyLength)), spi: 0x5d000000 + keyLength });
        const packets = scapyPackets(c);
        const receiver = new EspReceiver(referenceSa(c));
        const w = await make()(c);
        try {
          expect(w.setup).toBe(0);
          const expected = new Array<bigint>(E.AUDIT_REASONS).fill(0n);
          for (const p of packets) {
            const what = `${p.plain.length} B, seq ${p.seq}`;
            expect(p.esp[23], what).toBe(50);
            expect(w.run('ingress', p.tampered).retval, `${what}, tampered`).toBe(dsl.TC_ACT_SHOT);
            expected[E.AUDIT_BAD_ICV]! += 1n;
            const got = w.run('ingress', p.esp);
            expect(got.retval, what).toBe(dsl.TC_ACT_OK);
            expect(got.frame, what).toBe(hex(p.plain));
            const ref = espDecapFrame(receiver, p.esp);
            expect(ref.ok && hex(ref.frame), what).toBe(got.frame);
            expected[E.AUDIT_DECRYPTED]! += 1n;
            expect(w.audit(), what).toEqual(expected);
          }
          expect(w.run('ingress', packets[0]!.esp).retval, 'replayed').toBe(dsl.TC_ACT_SHOT);
          expected[E.AUDIT_REPLAY]! += 1n;
          expect(w.audit()).toEqual(expected);
        } finally {
          w.close();
        }
      }, 120_000);
    }
  }
  scapySuite('Node', () => nodeWorld);
  scapySuite('the VM', () => vmWorld(compiled));
  describeWith(kernelBpf(), 'in the kernel', () => scapySuite('the kernel', () => kernelWorld(compiled)));
});
