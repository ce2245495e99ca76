// The engine's ingress accepts ESP packets that scapy produced (an independent implementation:
// python3-scapy over python3-cryptography, test/support/scapy/esp.py). scapy encrypts tunnel-mode
// ESP (AES-GCM-128 and -256, ICV 16, payloads 0..1400, random IVs) for the SA that the engine's
// ingress_sa map holds (test/engine-world.ts); each packet, as an Ethernet frame, goes to the
// compiled `ingress` program in the VM and in the kernel (real verifier, BPF_PROG_TEST_RUN), and
// must come out as exactly the inner packet (TC_ACT_OK) with the audit 'decrypted' counter moving.
// A tampered copy of each packet, sent first, must be dropped and counted as a bad ICV, and must
// not move the replay window. Keys are random per case and never printed.

import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompileResult } from '../compiler/compile.ts';
import * as dsl from '../compiler/dsl/index.ts';
import { compileOrThrow } from './compiler/harness.ts';
import { type MakeWorld, type SaCase, NODE_IP, OUTER_SRC, SOURCE, innerFrame, kernelWorld, nodeWorld, vmWorld } from './engine-world.ts';
import { describeWith, kernelBpf } from './support/env.ts';
import { hasScapy, scapyBatch, type ScapyRequest, type ScapySa } from './support/scapy.ts';
import * as E from '../engine/esp.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** The Ethernet header innerFrame() uses; the engine keeps the outer frame's on decap. */
const ETH = innerFrame(0).subarray(0, 14);
const withEth = (ip: Uint8Array): Uint8Array => new Uint8Array([...ETH, ...ip]);

/** Payload sizes 0..1400: all of 0..19 (every padding residue, block edges), then a stride. */
const SIZES = [...Array.from({ length: 20 }, (_, i) => i), 31, 32, 33, 63, 64, 100, 255, 256, 511, 700, 1000, 1023, 1399, 1400];

interface Built {
  payload: number;
  seq: number;
  /** The inner Ethernet frame the engine must deliver. */
  inner: Uint8Array;
  /** scapy's ESP packet as an Ethernet frame. */
  esp: Uint8Array;
  tampered: Uint8Array;
}

/** The engine's SA case and scapy's view of the same SA: random key and salt, never printed. */
function saPair(keyLength: 16 | 32): { c: SaCase; scapy: ScapySa } {
  const key = new Uint8Array(randomBytes(keyLength));
  const salt = new Uint8Array(randomBytes(4));
  const spi = 0x5c000000 + keyLength;
  return {
    c: { key, salt, spi, seq: 1n, seqLimit: 0xffffffffn, df: 0, ifindex: 0 },
    scapy: { spi, key, salt, icv: 16, mode: 'tunnel' },
  };
}

/** scapy's tunnel-mode ESP for every size, increasing (gapped) sequence numbers, random IVs. */
function scapyPackets(scapy: ScapySa): Built[] {
  const requests: ScapyRequest[] = [];
  const plan = SIZES.map((payload, i) => {
    const inner = innerFrame(payload, (i % 4) << 2); // DSCP bits only: ECN stays Not-ECT
    const seq = 1 + i * 3 + (i % 2);
    requests.push({
      op: 'encrypt',
      sa: scapy,
      inner: inner.subarray(14),
      seq,
      iv: new Uint8Array(randomBytes(8)),
      outer: { src: OUTER_SRC, dst: NODE_IP, ttl: 64, tos: 0, id: i, flags: 2 },
    });
    return { payload, seq, inner };
  });
  return scapyBatch(requests).map((r, i) => {
    const { payload, seq, inner } = plan[i]!;
    if (!r.ok) throw new Error(`scapy refused payload ${payload}: ${r.error}`);
    if (!('packet' in r)) throw new Error('not an encrypt reply');
    const esp = withEth(new Uint8Array(Buffer.from(r.packet, 'hex')));
    // One bit past Ethernet, IPv4, SPI and seq: in the IV, the ciphertext or the ICV.
    const tampered = Uint8Array.from(esp);
    const from = 14 + 20 + 8;
    tampered[from + ((i * 37) % (esp.length - from))]! ^= 1 << (i % 8);
    return { payload, seq, inner, esp, tampered };
  });
}

function suite(name: string, make: () => MakeWorld): void {
  describe(`engine ingress on scapy's ESP in ${name}`, () => {
    let mk: MakeWorld;
    beforeAll(() => {
      mk = make();
    });
    for (const keyLength of [16, 32] as const) {
      it(`AES-${keyLength * 8}-GCM, ICV 16, tunnel, payloads 0..1400, random IVs: delivers the inner packet; tampered copies drop as bad ICV`, async () => {
        const { c, scapy } = saPair(keyLength);
        const packets = scapyPackets(scapy);
        // Sanity on what scapy built: outer IPv4 to NODE_IP carrying ESP with our SPI and seq.
        for (const p of packets) {
          const v = new DataView(p.esp.buffer, p.esp.byteOffset);
          expect(p.esp[14 + 9], `payload ${p.payload}: protocol`).toBe(50);
          expect(v.getUint32(34), `payload ${p.payload}: SPI`).toBe(c.spi);
          expect(v.getUint32(38), `payload ${p.payload}: seq`).toBe(p.seq);
        }
        const w = await mk(c);
        try {
          expect(w.setup, 'crypto_setup').toBe(0);
          const expected = new Array<bigint>(E.AUDIT_REASONS).fill(0n);
          for (const p of packets) {
            const what = `payload ${p.payload}, seq ${p.seq}`;
            const bad = w.run('ingress', p.tampered);
            expect(bad.retval, `${what}, tampered`).toBe(dsl.TC_ACT_SHOT);
            expected[E.AUDIT_BAD_ICV]! += 1n;
            expect(w.audit(), `${what}, tampered`).toEqual(expected);

            const got = w.run('ingress', p.esp);
            expect(got.retval, what).toBe(dsl.TC_ACT_OK);
            expect(got.frame, what).toBe(hex(p.inner));
            expected[E.AUDIT_DECRYPTED]! += 1n;
            expect(w.audit(), what).toEqual(expected);
          }
          // Replayed scapy packet: now dropped as a replay, not delivered twice.
          const last = packets[packets.length - 1]!;
          expect(w.run('ingress', last.esp).retval, 'replayed').toBe(dsl.TC_ACT_SHOT);
          expected[E.AUDIT_REPLAY]! += 1n;
          expect(w.audit(), 'replayed').toEqual(expected);
          const sa = w.ingressSa();
          expect(sa.packets).toBe(BigInt(packets.length));
          expect(sa.icvDrops).toBe(BigInt(packets.length));
          expect(sa.replayDrops).toBe(1n);
          expect(sa.top).toBe(BigInt(last.seq));
        } finally {
          w.close();
        }
      }, 120_000);
    }
  });
}

describeWith(hasScapy(), 'engine ingress accepts ESP that scapy produced', () => {
  let compiled: CompileResult;
  beforeAll(() => {
    compiled = compileOrThrow(SOURCE);
  }, 120_000);

  suite('Node (the DSL source)', () => nodeWorld);
  suite('the VM (compiled)', () => vmWorld(compiled));
  describeWith(kernelBpf(), 'engine ingress on scapy ESP in the kernel', () => {
    suite('the kernel (real verifier)', () => kernelWorld(compiled));
  });
});
