// engine/esp.ts against runtime/esp/esp.ts for the same SA state and input: the DSL source in
// Node, the compiled object in the VM, and in the kernel (real verifier, BPF_PROG_TEST_RUN). Each
// world (test/engine-world.ts): ipcache, encrypt_sa, ingress_sa, ghash_tables, crypto_keys filled;
// crypto_setup (syscall) run for keyIndex 1. Egress: byte-for-byte espEncapFrame. Ingress: decap
// of runtime/esp packets and of egress output, and every drop counted under its reason.

import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompileResult } from '../compiler/compile.ts';
import * as dsl from '../compiler/dsl/index.ts';
import { espDecapFrame, espEncapFrame } from '../runtime/esp/esp.ts';
import { gcmSeal } from '../runtime/esp/gcm.ts';
import { compileOrThrow } from './compiler/harness.ts';
import {
  type MakeWorld,
  type SaCase,
  type World,
  NODE_IP,
  OUTER_SRC,
  SOURCE,
  innerFrame,
  ipNum,
  kernelWorld,
  nodeWorld,
  referenceReceiver,
  referenceSa,
  referenceSender,
  vmWorld,
} from './engine-world.ts';
import { describeWith, kernelBpf } from './support/env.ts';
import * as E from '../engine/esp.ts';

type Case = SaCase;
const frame = (payload: number, tos = 0, frag = 0x4000): Uint8Array => innerFrame(payload, tos, frag);
type Egress = (c: Case, f: Uint8Array) => Promise<{ retval: number; frame: string; setup: number }>;

function reference(c: Case, f: Uint8Array): string {
  const r = espEncapFrame(referenceSender(c), f);
  if (!r.ok) throw new Error(`reference dropped: ${r.reason}`);
  return Buffer.from(r.frame).toString('hex');
}

/** One fresh world per packet: egress from the case's sequence number. */
const egressIn =
  (mk: MakeWorld): Egress =>
  async (c, f) => {
    const w = await mk(c);
    try {
      return { ...w.run('egress', f), setup: w.setup };
    } finally {
      w.close();
    }
  };

const baseCase = (over: Partial<Case> = {}): Case => ({
  key: new Uint8Array(randomBytes(16)), salt: new Uint8Array(randomBytes(4)), spi: 3, seq: 1n, seqLimit: 0xffffffffn, df: 0, ifindex: 0, ...over,
});

function suite(name: string, make: () => Egress): void {
  describe(`engine egress in ${name}`, () => {
    let run: Egress;
    beforeAll(() => {
      run = make();
    });
    it('encrypts like runtime/esp for payloads 0..1400 (every padding), AES-128 and AES-256', async () => {
      for (const [payload, keyLen, seq] of [[0, 16, 1n], [1, 16, 7n], [2, 32, 1n], [3, 16, 0x1234n], [13, 16, 5n], [100, 32, 0xfffffffen], [511, 16, 9n], [1400, 16, 2n], [1472, 16, 3n]] as const) {
        const c = baseCase({ key: new Uint8Array(randomBytes(keyLen)), seq });
        const f = frame(payload, 0x03);
        const got = await run(c, f);
        expect(got.setup, 'crypto_setup').toBe(0);
        expect(got.retval, `payload ${payload}`).toBe(dsl.TC_ACT_OK);
        expect(got.frame, `payload ${payload}`).toBe(reference(c, f));
      }
    });
    it('DF set/clear/copy and redirect to the bound ifindex', async () => {
      for (const df of [0, 1, 2]) {
        const c = baseCase({ df });
        const f = frame(64, 0x10, df === 2 ? 0x4000 : 0);
        expect((await run(c, f)).frame).toBe(reference(c, f));
      }
      expect((await run(baseCase({ ifindex: 1 }), frame(10))).retval).toBe(dsl.TC_ACT_REDIRECT);
    });
    it('passes non-matching traffic unchanged, fails closed without an SA, stops at seqLimit', async () => {
      const other = frame(20);
      other[14 + 19] = 99; // another destination: no ipcache entry
      const r1 = await run(baseCase(), other);
      expect(r1.retval).toBe(dsl.TC_ACT_OK);
      expect(r1.frame).toBe(Buffer.from(other).toString('hex'));
      const noSa = await run(baseCase({ spi: 3 }), frame(20)).then(() => run({ ...baseCase(), seq: 5n, seqLimit: 4n }, frame(20)));
      expect(noSa.retval).toBe(dsl.TC_ACT_SHOT);
    });
  });
}

let compiled: CompileResult;
beforeAll(() => {
  compiled = compileOrThrow(SOURCE);
}, 120_000);

suite('Node (the DSL source)', () => egressIn(nodeWorld));
suite('the VM (compiled)', () => egressIn(vmWorld(compiled)));
describeWith(kernelBpf(), 'engine egress in the kernel', () => {
  suite('the kernel (real verifier)', () => egressIn(kernelWorld(compiled)));
});

// =============================================================================================
// Ingress: decap of runtime/esp packets and of our own egress output, and every drop counted
// under its reason. One stateful world per case (test/engine-world.ts); the same expectations in
// Node, the VM and the kernel make the three identical.

const encap = espEncapFrame;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const saCase = (over: Partial<SaCase> = {}): SaCase => ({
  key: new Uint8Array(randomBytes(16)), salt: new Uint8Array(randomBytes(4)), spi: 0x1234, seq: 1n, seqLimit: 0xffffffffn, df: 0, ifindex: 0, ...over,
});

/** An ESP frame from OUTER_SRC to NODE_IP carrying `plain` (payload ‖ padding ‖ pad length ‖
 *  next header, built by the caller: wrong padding on purpose), authentic under the case's key. */
function espFrame(c: SaCase, seq: number, plain: Uint8Array): Uint8Array {
  const sa = referenceSa(c);
  const head = new Uint8Array(16);
  const v = new DataView(head.buffer);
  v.setUint32(0, c.spi);
  v.setUint32(4, seq);
  v.setUint32(12, seq); // IV = be64(seq)
  const { ciphertext, tag } = gcmSeal(sa.gcm, sa.nonce(head.subarray(8, 16)), head.subarray(0, 8), plain, 16);
  const total = 20 + 16 + ciphertext.length + 16;
  const f = new Uint8Array(14 + total);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
  const o = ipNum(OUTER_SRC);
  const d = ipNum(NODE_IP);
  f.set([0x45, 0, total >> 8, total & 0xff, 0, 0, 0x40, 0, 64, 50, 0, 0, o >>> 24, (o >> 16) & 255, (o >> 8) & 255, o & 255, d >>> 24, (d >> 16) & 255, (d >> 8) & 255, d & 255], 14);
  f.set(head, 34);
  f.set(ciphertext, 50);
  f.set(tag, 50 + ciphertext.length);
  return f;
}
/** payload ‖ pad bytes ‖ pad length ‖ next header. */
const trailer = (payload: Uint8Array, pad: number[], padLen = pad.length, nextHeader = 4): Uint8Array => new Uint8Array([...payload, ...pad, padLen, nextHeader]);
const innerIp = (payload: number): Uint8Array => innerFrame(payload).subarray(14);

function ingressSuite(name: string, make: () => MakeWorld): void {
  describe(`engine ingress in ${name}`, () => {
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

    it('decapsulates runtime/esp packets to the original frame (every padding, AES-128/256, ECN)', async () => {
      for (const keyLen of [16, 32]) {
        const c = saCase({ key: new Uint8Array(randomBytes(keyLen)) });
        const sender = referenceSender(c);
        const receiver = referenceReceiver(c);
        await withWorld(c, (w) => {
          for (const payload of [0, 1, 2, 3, 13, 100, 511, 1400, 1472]) {
            const f = innerFrame(payload, 0x03);
            const r = encap(sender, f);
            if (!r.ok) throw new Error(r.reason);
            const got = w.run('ingress', r.frame);
            expect(got.retval, `payload ${payload}`).toBe(dsl.TC_ACT_OK);
            expect(got.frame, `payload ${payload}`).toBe(hex(f));
            const ref = espDecapFrame(receiver, r.frame);
            expect(ref.ok && hex(ref.frame)).toBe(got.frame);
          }
          // Outer CE onto an ECT(0) inner packet: inner becomes CE, its checksum follows.
          const f = innerFrame(40, 0x02);
          const r = encap(sender, f);
          if (!r.ok) throw new Error(r.reason);
          const ce = new Uint8Array(r.frame);
          ce[15]! |= 3;
          const got = w.run('ingress', ce);
          const ref = espDecapFrame(receiver, ce);
          expect(got.retval).toBe(dsl.TC_ACT_OK);
          expect(ref.ok && hex(ref.frame)).toBe(got.frame);
          expect(got.frame).not.toBe(hex(f));
          expect(w.audit()[E.AUDIT_DECRYPTED]).toBe(10n);
          expect(w.ingressSa().packets).toBe(10n);
        });
      }
    });

    it('decapsulates its own egress output', async () => {
      await withWorld(saCase(), (w) => {
        for (const payload of [0, 5, 64, 700, 1472]) {
          const f = innerFrame(payload, 0x10);
          const out = w.run('egress', f);
          expect(out.retval).toBe(dsl.TC_ACT_OK);
          const back = w.run('ingress', Buffer.from(out.frame, 'hex'));
          expect(back.retval, `payload ${payload}`).toBe(dsl.TC_ACT_OK);
          expect(back.frame, `payload ${payload}`).toBe(hex(f));
        }
      });
    });

    it('drops tampered, replayed, truncated, forged and badly padded packets, each counted under its reason', async () => {
      const c = saCase();
      const sender = referenceSender(c);
      const seal = (seq: bigint, payload = 20): Uint8Array => {
        sender.nextSeq = seq;
        const r = encap(sender, innerFrame(payload));
        if (!r.ok) throw new Error(r.reason);
        return r.frame;
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
        step('seq 1', p1, E.AUDIT_DECRYPTED, innerFrame(20));
        step('seq 1 replayed', p1, E.AUDIT_REPLAY);
        const p2 = seal(2n);
        const bad2 = new Uint8Array(p2);
        bad2[60]! ^= 0x01; // ciphertext
        step('seq 2 ciphertext flipped', bad2, E.AUDIT_BAD_ICV);
        step('seq 2 (the forgery did not move the window)', p2, E.AUDIT_DECRYPTED, innerFrame(20));
        const p3 = seal(3n);
        const icv = new Uint8Array(p3);
        icv[icv.length - 1]! ^= 0x80;
        step('seq 3 ICV flipped', icv, E.AUDIT_BAD_ICV);
        const iv = new Uint8Array(p3);
        iv[45]! ^= 0x01;
        step('seq 3 IV flipped', iv, E.AUDIT_BAD_ICV);
        const seqChanged = new Uint8Array(p3);
        seqChanged[41] = 9;
        step('seq field changed to 9', seqChanged, E.AUDIT_BAD_ICV);
        const spi = new Uint8Array(p3);
        spi[37]! ^= 0xff;
        step('unknown SPI', spi, E.AUDIT_UNKNOWN_SPI);
        const src = new Uint8Array(p3);
        src[29] = 77;
        step('SPI from another source', src, E.AUDIT_UNKNOWN_SPI);
        step('truncated', p3.subarray(0, p3.length - 10), E.AUDIT_MALFORMED);
        step('only the ESP header', p3.subarray(0, 50), E.AUDIT_MALFORMED);
        const frag = new Uint8Array(p3);
        frag[20] = 0x20; // MF
        step('fragment', frag, E.AUDIT_MALFORMED);
        const forged = new Uint8Array(p3);
        forged.set(randomBytes(forged.length - 42), 42);
        step('forged body, seq 3', forged, E.AUDIT_BAD_ICV);
        step('seq 3', p3, E.AUDIT_DECRYPTED, innerFrame(20));
        // Re-ordered within the window, then too old.
        step('seq 10', seal(10n), E.AUDIT_DECRYPTED, innerFrame(20));
        const p8 = seal(8n);
        step('seq 8 late', p8, E.AUDIT_DECRYPTED, innerFrame(20));
        step('seq 9 late', seal(9n, 33), E.AUDIT_DECRYPTED, innerFrame(33));
        step('seq 8 again', p8, E.AUDIT_REPLAY);
        step('seq 3000', seal(3000n), E.AUDIT_DECRYPTED, innerFrame(20));
        step('seq 1900: left of the window', seal(1900n), E.AUDIT_REPLAY);
        step('seq 1977: the window\'s left edge', seal(1977n), E.AUDIT_DECRYPTED, innerFrame(20));
        step('seq 1976: just past it', seal(1976n), E.AUDIT_REPLAY);
        step('seq 2999', seal(2999n), E.AUDIT_DECRYPTED, innerFrame(20));
        step('seq 3000 again', seal(3000n), E.AUDIT_REPLAY);
        step('seq 3065 (a shift of 65)', seal(3065n), E.AUDIT_DECRYPTED, innerFrame(20));
        step('seq 2999 again after the shift', seal(2999n), E.AUDIT_REPLAY);
        step('seq 3001 after the shift', seal(3001n), E.AUDIT_DECRYPTED, innerFrame(20));
        // Authentic, but the trailer is wrong.
        step('padding bytes 1, 7', espFrame(c, 4000, trailer(innerIp(0), [1, 7])), E.AUDIT_BAD_PADDING);
        step('pad length past the payload', espFrame(c, 4001, trailer(innerIp(0), [1, 2], 200)), E.AUDIT_BAD_PADDING);
        step('padding 1…10 (long, correct)', espFrame(c, 4002, trailer(innerIp(0), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])), E.AUDIT_DECRYPTED, innerFrame(0));
        step('next header 41', espFrame(c, 4003, trailer(innerIp(0), [1, 2], 2, 41)), E.AUDIT_UNSUPPORTED);
        step('payload not IPv4', espFrame(c, 4004, trailer(new Uint8Array(28).fill(0x60), [1, 2])), E.AUDIT_MALFORMED);
        step('bad padding does not move the window', espFrame(c, 4000, trailer(innerIp(0), [1, 2])), E.AUDIT_DECRYPTED, innerFrame(0));
        // Not ESP: up the stack untouched.
        const udp = innerFrame(10);
        step('plaintext', udp, E.AUDIT_PLAINTEXT, udp);
        const sa = w.ingressSa();
        expect(sa.top).toBe(4004n);
        expect(sa.replayDrops).toBe(expected[E.AUDIT_REPLAY]);
        expect(sa.icvDrops).toBe(expected[E.AUDIT_BAD_ICV]);
        expect(sa.packets).toBe(expected[E.AUDIT_DECRYPTED]);
      });
    });
  });
}

ingressSuite('Node (the DSL source)', () => nodeWorld);
ingressSuite('the VM (compiled)', () => vmWorld(compiled));
describeWith(kernelBpf(), 'engine ingress in the kernel', () => {
  ingressSuite('the kernel (real verifier)', () => kernelWorld(compiled));
});
