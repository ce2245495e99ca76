// Extended sequence numbers (RFC 4303 §2.2.1, RFC 4106 §5) in engine/esp.ts against
// runtime/esp/esp.ts, in Node (the DSL source), the VM and the kernel (real verifier).
// Egress with ESN: AAD = SPI ‖ seq_hi ‖ seq_lo, the ESP header carries seq_lo, the IV is the
// 64-bit seq, the limit is the SA's seqLimit below 2⁶³ — byte for byte espEncapFrame (which goes
// on to 2⁶⁴ − 1: the engine's counter advances on drops too, so it stops where it cannot wrap).
// Ingress with ESN: seq_hi inferred from the window's top (Appendix A2, W = 1024), the replay
// check and advance on the 64-bit number — the same verdict, bytes and top as espDecapFrame
// across the 2³² boundary. Without ESN nothing past 2³² − 1 is sent, whatever seqLimit says.

import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompileResult } from '../compiler/compile.ts';
import * as dsl from '../compiler/dsl/index.ts';
import { espDecapFrame, espEncapFrame } from '../runtime/esp/esp.ts';
import { compileOrThrow } from './compiler/harness.ts';
import { type MakeWorld, type SaCase, NODE_IP, OUTER_SRC, SOURCE, innerFrame, kernelWorld, nodeWorld, referenceReceiver, referenceSender, vmWorld } from './engine-world.ts';
import { describeWith, kernelBpf } from './support/env.ts';
import { hasScapy, scapyBatch, type ScapySa } from './support/scapy.ts';
import * as E from '../engine/esp.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const esnCase = (over: Partial<SaCase> = {}): SaCase => ({
  key: new Uint8Array(randomBytes(16)), salt: new Uint8Array(randomBytes(4)), spi: 0xe5a, seq: 1n, seqLimit: 0xffffffffffffffffn, df: 0, ifindex: 0, esn: true, ...over,
});
const REASONS: Record<string, number> = { replay: E.AUDIT_REPLAY, 'bad-icv': E.AUDIT_BAD_ICV, 'seq-exhausted': E.AUDIT_SEQ_EXHAUSTED };
const SEQS = [1n, 0xfffffffen, 0xffffffffn, 0x100000000n, 0x100000001n, 0x1_fffffffen, 0x7fffffff_00000005n, 0x7fffffff_fffffffdn];

function suite(name: string, make: () => MakeWorld): void {
  describe(`engine ESN in ${name}`, () => {
    let mk: MakeWorld;
    beforeAll(() => {
      mk = make();
    });

    it('egress: byte-identical to runtime/esp around 2³² and up to 2⁶³ − 1 (AES-128/256)', async () => {
      for (const seq of SEQS) {
        for (const keyLen of [16, 32]) {
          const c = esnCase({ key: new Uint8Array(randomBytes(keyLen)), seq });
          const w = await mk(c);
          try {
            expect(w.setup, 'crypto_setup').toBe(0);
            for (const payload of [0, 13, 700]) {
              const f = innerFrame(payload, 0x02);
              const sender = referenceSender({ ...c, seq: c.seq + BigInt(payload === 0 ? 0 : payload === 13 ? 1 : 2) });
              const ref = espEncapFrame(sender, f);
              if (!ref.ok) throw new Error(`reference dropped: ${ref.reason}`);
              const got = w.run('egress', f);
              expect(got.retval, `seq ${seq} payload ${payload}`).toBe(dsl.TC_ACT_OK);
              expect(got.frame, `seq ${seq} payload ${payload}`).toBe(hex(ref.frame));
            }
          } finally {
            w.close();
          }
        }
      }
    });

    it('egress: ESN stops at seqLimit and 2⁶³; without ESN nothing past 2³² − 1 even under a larger seqLimit', async () => {
      for (const [esn, seq, seqLimit, ok] of [
        [true, 0x100000005n, 0x100000005n, true],
        [true, 0x100000006n, 0x100000005n, false],
        [true, 0x7fffffff_ffffffffn, 0xffffffff_ffffffffn, true],
        [true, 0x80000000_00000000n, 0xffffffff_ffffffffn, false],
        [true, 0xffffffff_ffffffffn, 0xffffffff_ffffffffn, false],
        [false, 0xffffffffn, 0xffffffffn, true],
        [false, 0x100000000n, 0xffffffffn, false],
        [false, 0xffffffffn, 0xffffffffffffffffn, true],
        [false, 0x100000000n, 0xffffffffffffffffn, false],
        [false, 0x100000001n, 0xffffffffffffffffn, false],
      ] as const) {
        const c = esnCase({ esn, seq, seqLimit });
        const w = await mk(c);
        try {
          const f = innerFrame(20);
          const got = w.run('egress', f);
          const ref = espEncapFrame(referenceSender(c), f);
          expect(ref.ok, `esn ${esn} seq ${seq}`).toBe(ok || !esn ? ok : true);
          if (ok) {
            expect(got.retval, `esn ${esn} seq ${seq}`).toBe(dsl.TC_ACT_OK);
            expect(ref.ok && hex(ref.frame)).toBe(got.frame);
          } else {
            expect(got.retval, `esn ${esn} seq ${seq}`).toBe(dsl.TC_ACT_SHOT);
            expect(w.audit()[E.AUDIT_SEQ_EXHAUSTED]).toBe(1n);
          }
        } finally {
          w.close();
        }
      }
    });

    it('ingress: opens runtime/esp ESN packets across 2³², rejects replays and old-epoch packets like runtime/esp', async () => {
      // [seq the sender used, what both sides must do]
      const script: bigint[] = [
        0xfffffff0n, 0xffffffffn, 0x100000000n, 0x100000001n,
        0xfffffffen, // late, in the window, previous epoch (A2 case B: Th − 1)
        0x100000000n, 0xffffffffn, 0xfffffff0n, // replays on both sides of the edge
        0xfffff000n, // old epoch, left of the window: read as 0x1_fffff000, ICV fails
        0x000000005n, // hi 0 ← inferred 1: ICV fails
        0x100000400n, 0x100000401n, // top moves on: Tl ≥ W − 1 (case A)
        0x100000002n, // in the window
        0x100000001n, // left of the window now (Tl − W + 1 = 2 > Seql): read as 0x2_00000001, ICV fails
        0x1_ffffffffn, // far ahead in epoch 1: fine
        0x2_00000003n, // next epoch, Seql < bottom: Th + 1
        0x1_fffffff9n, // back across the edge (case B)
        0x1_fffffff9n, // replay
      ];
      const c = esnCase({ top: 0xffffff00n });
      const sender = referenceSender(c);
      const receiver = referenceReceiver(c);
      receiver.window.top = c.top!;
      const w = await mk(c);
      try {
        expect(w.setup, 'crypto_setup').toBe(0);
        const expected = new Array<bigint>(E.AUDIT_REASONS).fill(0n);
        let i = 0;
        for (const seq of script) {
          sender.nextSeq = seq;
          const f = innerFrame(30 + (i++ % 7), 0x01);
          const r = espEncapFrame(sender, f);
          if (!r.ok) throw new Error(r.reason);
          const ref = espDecapFrame(receiver, r.frame);
          const got = w.run('ingress', r.frame);
          const what = `seq 0x${seq.toString(16)}`;
          if (ref.ok) {
            expect(got.retval, what).toBe(dsl.TC_ACT_OK);
            expect(got.frame, what).toBe(hex(ref.frame));
            expect(got.frame, what).toBe(hex(f));
            expected[E.AUDIT_DECRYPTED]! += 1n;
          } else {
            expect(got.retval, `${what} (${ref.reason})`).toBe(dsl.TC_ACT_SHOT);
            expected[REASONS[ref.reason]!]! += 1n;
          }
          expect(w.audit(), what).toEqual(expected);
          expect(w.ingressSa().top, what).toBe(receiver.window.top);
        }
        expect(w.ingressSa().top).toBe(0x2_00000003n);
        expect(expected[E.AUDIT_DECRYPTED]).toBe(11n);
        expect(expected[E.AUDIT_REPLAY]).toBe(4n);
        expect(expected[E.AUDIT_BAD_ICV]).toBe(3n);
      } finally {
        w.close();
      }
    });

    it('ingress: opens its own ESN egress output across 2³²; a non-ESN receiver fails it (seq_hi in the AAD)', async () => {
      const c = esnCase({ seq: 0xfffffffdn, top: 0xfffffff0n });
      const w = await mk(c);
      const plain = await mk({ ...c, esn: false });
      try {
        for (let k = 0; k < 6; k++) {
          const f = innerFrame(50 + k);
          const out = w.run('egress', f);
          expect(out.retval).toBe(dsl.TC_ACT_OK);
          const back = w.run('ingress', Buffer.from(out.frame, 'hex'));
          expect(back.retval, `packet ${k}`).toBe(dsl.TC_ACT_OK);
          expect(back.frame, `packet ${k}`).toBe(hex(f));
          // seq_hi 0 (the first three): the AADs differ in length → BAD_ICV; seq_hi 1: seq_lo
          // 0, 1, 2 are replays for a non-ESN window at 0xfffffff0
          expect(plain.run('ingress', Buffer.from(out.frame, 'hex')).retval, `packet ${k}`).toBe(dsl.TC_ACT_SHOT);
        }
        expect(w.ingressSa().top).toBe(0x100000002n);
        expect(plain.audit()[E.AUDIT_BAD_ICV]).toBe(3n);
        expect(plain.audit()[E.AUDIT_REPLAY]).toBe(3n);
      } finally {
        w.close();
        plain.close();
      }
    });
  });
}

let compiled: CompileResult;
beforeAll(() => {
  compiled = compileOrThrow(SOURCE);
}, 120_000);

suite('Node (the DSL source)', () => nodeWorld);
suite('the VM (compiled)', () => vmWorld(compiled));
describeWith(kernelBpf(), 'engine ESN in the kernel', () => {
  suite('the kernel (real verifier)', () => kernelWorld(compiled));
});

// scapy (SecurityAssociation(..., esn_en=True, esn=seq_hi)) as the independent side: it opens our
// ESN egress across 2³² only under the right seq_hi, and our ingress opens its ESN packets.
function scapySuite(name: string, make: () => MakeWorld): void {
  describe(`engine ESN against scapy in ${name}`, () => {
    it('scapy decrypts our ESN packets under their seq_hi (not another), we open scapy\'s', async () => {
      const c = esnCase({ seq: 0xfffffffen, top: 0xfffffff0n });
      const world = await make()(c);
      try {
        const sa = (seqHi: number): ScapySa => ({ spi: c.spi, key: c.key, salt: c.salt, icv: 16, esn: true, seqHi, mode: 'tunnel' });
        const ours: { seq: bigint; inner: Uint8Array; ip: Uint8Array }[] = [];
        for (let k = 0; k < 4; k++) {
          const f = innerFrame(40 + k * 37);
          const out = world.run('egress', f);
          expect(out.retval).toBe(dsl.TC_ACT_OK);
          ours.push({ seq: c.seq + BigInt(k), inner: f.subarray(14), ip: Buffer.from(out.frame, 'hex').subarray(14) });
        }
        const replies = scapyBatch(
          ours.flatMap((o) => [
            { op: 'decrypt' as const, sa: sa(Number(o.seq >> 32n)), packet: o.ip },
            { op: 'decrypt' as const, sa: sa(Number(o.seq >> 32n) ^ 1), packet: o.ip },
          ]),
        );
        ours.forEach((o, k) => {
          const good = replies[2 * k]!;
          expect(good.ok && 'inner' in good && good.inner, `seq 0x${o.seq.toString(16)}`).toBe(hex(o.inner));
          expect(good.ok && 'seq' in good && good.seq).toBe(Number(o.seq & 0xffffffffn));
          expect(replies[2 * k + 1]!.ok, `seq 0x${o.seq.toString(16)}, wrong seq_hi`).toBe(false);
        });
        // scapy → our ingress (top 0xfffffff0): seq_lo 0xfffffff8 (hi 0), then 3 and 4 (hi 1).
        const plan = [[0, 0xfffffff8], [1, 3], [1, 4]] as const;
        const made = scapyBatch(
          plan.map(([hi, lo], k) => ({
            op: 'encrypt' as const, sa: sa(hi), inner: innerFrame(20 + k).subarray(14), seq: lo, iv: new Uint8Array(randomBytes(8)),
            outer: { src: OUTER_SRC, dst: NODE_IP, ttl: 64, tos: 0, id: 0, flags: 2 },
          })),
        );
        plan.forEach(([hi, lo], k) => {
          const m = made[k]!;
          if (!m.ok || !('packet' in m)) throw new Error('scapy could not encrypt');
          const frame = new Uint8Array([...innerFrame(0).subarray(0, 14), ...Buffer.from(m.packet, 'hex')]);
          const got = world.run('ingress', frame);
          expect(got.retval, `scapy seq ${hi}:${lo}`).toBe(dsl.TC_ACT_OK);
          expect(got.frame).toBe(hex(innerFrame(20 + k)));
        });
        expect(world.ingressSa().top).toBe(0x100000004n);
      } finally {
        world.close();
      }
    });
  });
}
describeWith(hasScapy(), 'engine ESN against scapy', () => {
  scapySuite('the VM (compiled)', () => vmWorld(compiled));
});
describeWith(kernelBpf(), 'engine ESN against scapy in the kernel', () => {
  describeWith(hasScapy(), 'scapy', () => scapySuite('the kernel (real verifier)', () => kernelWorld(compiled)));
});
