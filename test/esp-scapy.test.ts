// Interop with an independent ESP implementation: scapy's SecurityAssociation over OpenSSL
// (test/support/scapy/esp.py). Our packets must decrypt there to the same inner packet with a
// valid trailer and outer header, scapy's packets must decap here, our bytes must equal scapy's
// for the same SA, sequence number and IV, and tampered packets must fail on both sides.
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { EspReceiver, EspSa, EspSender, espDecapFrame, espEncapFrame, ipv4HeaderChecksum, type EspMode, type IcvLength } from '../runtime/esp/esp.ts';
import { describeWith } from './support/env.ts';
import { hasScapy, scapyBatch, type ScapyReply, type ScapyRequest, type ScapySa } from './support/scapy.ts';

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ETH = new Uint8Array([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
const TUNNEL = { src: '172.16.0.1', dst: '172.16.0.2' };

/** An IPv4 packet: UDP for even sizes, TCP-ish protocol 6 for odd ones, `n` payload bytes. */
function innerPacket(n: number, tos = 0): Uint8Array {
  const l4 = n % 2 === 0 ? 17 : 6;
  const l4Header = l4 === 17 ? 8 : 20;
  const total = 20 + l4Header + n;
  const ip = new Uint8Array(total);
  ip.set([0x45, tos, total >> 8, total & 0xff, (n * 7) & 0xff, n & 0xff, 0x40, 0, 64, l4, 0, 0, 10, 1, 0, 5, 10, 2, 0, 9]);
  const c = ipv4HeaderChecksum(ip.subarray(0, 20));
  ip[10] = c >> 8;
  ip[11] = c & 0xff;
  if (l4 === 17) ip.set([0x1f, 0x90, 0x00, 0x35, (8 + n) >> 8, (8 + n) & 0xff, 0, 0], 20);
  else ip.set([0x1f, 0x90, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x10, 0, 0, 0, 0, 0], 20);
  for (let i = 0; i < n; i++) ip[20 + l4Header + i] = (i * 13 + n) & 0xff;
  return ip;
}
const frameOf = (ip: Uint8Array): Uint8Array => new Uint8Array([...ETH, ...ip]);

interface Setup {
  sa: EspSa;
  scapy: ScapySa;
}
function setup(mode: EspMode, keyLength: 16 | 32, icv: IcvLength = 16, esn = false): Setup {
  const key = new Uint8Array(randomBytes(keyLength));
  const salt = new Uint8Array(randomBytes(4));
  const spi = 0x1000 + keyLength + icv;
  return {
    sa: new EspSa({ spi, key, salt, icvLength: icv, esn, mode, tunnel: mode === 'tunnel' ? TUNNEL : undefined }),
    scapy: { spi, key, salt, icv, esn, mode },
  };
}

function ok<T extends ScapyReply>(r: ScapyReply, what: string): asserts r is Extract<T, { ok: true }> {
  if (!r.ok) throw new Error(`scapy refused ${what}: ${r.error}`);
}

/** Sizes 0..1400: every size up to 96 (all padding residues, block edges), then a stride. */
const SIZES = [...Array.from({ length: 97 }, (_, i) => i), ...Array.from({ length: 94 }, (_, i) => 97 + i * 14 + (i % 4)), 1399, 1400];

describeWith(hasScapy(), 'ESP interop with scapy (python3-scapy over python3-cryptography)', () => {
  for (const mode of ['tunnel', 'transport'] as const) {
    for (const keyLength of [16, 32] as const) {
      it(`our ${mode} encap, AES-${keyLength * 8}, ICV 16, payloads 0..1400: scapy decrypts to the same inner packet`, () => {
        const { sa, scapy } = setup(mode, keyLength);
        const sender = new EspSender(sa);
        const inners = SIZES.map((n) => innerPacket(n, n % 3 === 0 ? 0xb8 : 0));
        const frames = inners.map((ip) => {
          const r = espEncapFrame(sender, frameOf(ip));
          if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
          return r.frame;
        });
        const replies = scapyBatch(frames.map((f) => ({ op: 'decrypt', sa: scapy, packet: f.subarray(14) })));
        replies.forEach((r, i) => {
          const ctx = `payload ${SIZES[i]} bytes`;
          ok(r, ctx);
          if (!('inner' in r)) throw new Error('not a decrypt reply');
          expect(r.via, ctx).toBe('scapy');
          expect(r.inner, ctx).toBe(toHex(inners[i]));
          expect(r.seq, ctx).toBe(i + 1);
          expect(r.iv, ctx).toBe((i + 1).toString(16).padStart(16, '0'));
          expect(r.nh, ctx).toBe(mode === 'tunnel' ? 4 : inners[i][9]);
          expect([r.pad_ok, r.aligned, r.outer_ok], ctx).toEqual([true, true, true]);
        });
      });
    }

    it(`${mode}: our bytes equal scapy's for the same SA, seq, IV and outer header`, () => {
      const { sa, scapy } = setup(mode, 32);
      const sender = new EspSender(sa);
      sender.nextSeq = 77n;
      const requests: ScapyRequest[] = [];
      const ours: Uint8Array[] = [];
      for (const n of [0, 1, 2, 3, 17, 64, 255, 1000, 1400]) {
        const ip = innerPacket(n, 0x28);
        const r = espEncapFrame(sender, frameOf(ip));
        if (!r.ok) throw new Error(r.detail);
        const out = r.frame.subarray(14);
        ours.push(out);
        const outer = { ...TUNNEL, ttl: out[8], tos: out[1], id: (out[4] << 8) | out[5], flags: out[6] >> 5 };
        // The IV follows the 20-byte IPv4 header and SPI ‖ seq: bytes 28..36 in both modes here.
        requests.push({ op: 'encrypt', sa: scapy, inner: ip, seq: Number(r.seq), iv: out.slice(28, 36), outer });
      }
      scapyBatch(requests).forEach((r, i) => {
        ok(r, `encrypt #${i}`);
        if (!('packet' in r)) throw new Error('not an encrypt reply');
        expect(r.packet, `packet #${i}`).toBe(toHex(ours[i]));
      });
    });

    it(`${mode}: scapy's encap (random IVs) decaps here; tampering is rejected by both`, () => {
      const { sa, scapy } = setup(mode, 16);
      const requests: ScapyRequest[] = SIZES.filter((_, i) => i % 4 === 0).map((n, i) => ({
        op: 'encrypt',
        sa: scapy,
        inner: innerPacket(n),
        seq: i + 1,
        iv: new Uint8Array(randomBytes(8)),
        outer: { ...TUNNEL, ttl: 64, tos: 0, id: i, flags: 2 },
      }));
      const built = scapyBatch(requests).map((r, i) => {
        ok(r, `encrypt #${i}`);
        if (!('packet' in r)) throw new Error('not an encrypt reply');
        return new Uint8Array(Buffer.from(r.packet, 'hex'));
      });
      const receiver = new EspReceiver(sa);
      built.forEach((pkt, i) => {
        const r = espDecapFrame(receiver, frameOf(pkt));
        if (!r.ok) throw new Error(`scapy packet #${i}: ${r.reason}: ${r.detail}`);
        const q = requests[i];
        expect(toHex(r.frame.subarray(14)), `packet #${i}`).toBe(toHex(q.op === 'encrypt' ? q.inner : new Uint8Array()));
      });

      // Tampered: one bit in the ESP part (past SPI and seq), at a position that moves with i.
      const tampered = built.map((pkt, i) => {
        const t = Uint8Array.from(pkt);
        const off = 20 + 8 + ((i * 29) % (t.length - 28));
        t[off] ^= 1 << (i % 8);
        return t;
      });
      const fresh = new EspReceiver(sa);
      tampered.forEach((t, i) => expect(espDecapFrame(fresh, frameOf(t)).ok, `tampered #${i} here`).toBe(false));
      scapyBatch(tampered.map((t) => ({ op: 'decrypt', sa: scapy, packet: t }))).forEach((r, i) => {
        expect(r.ok, `tampered #${i} in scapy`).toBe(false);
        if (!r.ok) expect(r.error, `tampered #${i} in scapy`).toMatch(/^integrity:/);
      });
    });
  }

  it('ICV 8 and 12 (Cilium\'s 64/96-bit options) and ESN, through cryptography\'s truncated-tag GCM', () => {
    for (const [icv, esn] of [
      [8, false],
      [12, false],
      [16, true],
      [12, true],
    ] as [IcvLength, boolean][]) {
      const { sa, scapy } = setup('tunnel', 32, icv, esn);
      const sender = new EspSender(sa);
      sender.nextSeq = esn ? (5n << 32n) | 0xfffffff0n : 1n;
      const inners = [0, 5, 64, 1400].map((n) => innerPacket(n));
      const frames = inners.map((ip) => {
        const r = espEncapFrame(sender, frameOf(ip));
        if (!r.ok) throw new Error(r.detail);
        return r;
      });
      const replies = scapyBatch(frames.map((f) => ({ op: 'decrypt', sa: { ...scapy, seqHi: Number(f.seq >> 32n) }, packet: f.frame.subarray(14) })));
      replies.forEach((r, i) => {
        const ctx = `ICV ${icv}${esn ? ', ESN' : ''}, packet #${i}`;
        ok(r, ctx);
        if (!('inner' in r)) throw new Error('not a decrypt reply');
        expect(r.via, ctx).toBe(icv === 16 ? 'scapy' : 'cryptography');
        expect(r.inner, ctx).toBe(toHex(inners[i]));
        expect([r.pad_ok, r.aligned, r.outer_ok], ctx).toEqual([true, true, true]);
      });
      // A wrong seq_hi must fail: it is authenticated although it never travels.
      if (esn) {
        const wrong = scapyBatch([{ op: 'decrypt', sa: { ...scapy, seqHi: 4 }, packet: frames[0].frame.subarray(14) }]);
        expect(wrong[0].ok).toBe(false);
      }
    }
  });
});
