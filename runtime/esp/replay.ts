// ESP anti-replay window, RFC 4303 §3.4.3 and Appendix A (A2 for extended sequence numbers).
//
// The window is a ring bitmap of W bits indexed by seq mod W, plus T, the highest sequence number
// accepted so far (0: none yet). W is a power of two so "mod W" is a mask in BPF, and ≥ 32 so the
// bitmap is whole u32 words; Cilium runs with 1024, the engine's default.
//
// Two steps, because the window may only move for packets whose ICV verified (§3.4.3):
//   check(seq)    before decryption — cheap rejection of duplicates and too-old packets;
//   advance(seq)  after the ICV (and the rest of ESP processing) succeeded — re-checks, since on
//                 a multi-CPU datapath another packet with the same seq may have been accepted
//                 in between (Linux does the same: xfrm_replay_recheck before advance).
//
// With ESN only the low 32 bits travel in the packet; inferSeqHi (Appendix A2.2) guesses the high
// 32 bits from the window. A wrong guess makes the ICV fail, because seq_hi is part of the AAD.

export const DEFAULT_REPLAY_WINDOW = 1024;

export class ReplayWindow {
  readonly size: number;
  /** Highest accepted sequence number (64-bit with ESN); 0n before the first packet. */
  top = 0n;
  readonly #bits: Uint32Array;

  constructor(size = DEFAULT_REPLAY_WINDOW) {
    if (!Number.isInteger(size) || size < 32 || (size & (size - 1)) !== 0) throw new RangeError(`replay window must be a power of two ≥ 32, got ${size}`);
    this.size = size;
    this.#bits = new Uint32Array(size / 32);
  }

  #bit(seq: bigint): [number, number] {
    const i = Number(seq & BigInt(this.size - 1));
    return [i >>> 5, 1 << (i & 31)];
  }

  /** True when seq may be new: not 0, not left of the window, not already seen. */
  check(seq: bigint): boolean {
    if (seq === 0n) return false; // the first packet of an SA carries 1; 0 is never sent
    if (seq > this.top) return true;
    if (this.top - seq >= BigInt(this.size)) return false;
    const [w, m] = this.#bit(seq);
    return (this.#bits[w] & m) === 0;
  }

  /** Marks seq as received (call only after the ICV verified). False if it became a replay meanwhile. */
  advance(seq: bigint): boolean {
    if (!this.check(seq)) return false;
    if (seq > this.top) {
      const shift = seq - this.top;
      if (shift >= BigInt(this.size)) this.#bits.fill(0);
      else for (let s = this.top + 1n; s < seq; s++) this.#clear(s);
      this.top = seq;
    }
    const [w, m] = this.#bit(seq);
    this.#bits[w] |= m;
    return true;
  }

  #clear(seq: bigint): void {
    const [w, m] = this.#bit(seq);
    this.#bits[w] &= ~m;
  }

  /**
   * RFC 4303 Appendix A2.2: the high 32 bits for a received low half, from the window's top T
   * (Th ‖ Tl) and bottom B = T − W + 1.
   *   Case A, Tl ≥ W − 1 (window within one 2³² block): Seql ≥ Tl − W + 1 → Th, else Th + 1.
   *   Case B, Tl < W − 1 (window straddles a block edge): Seql ≥ Tl − W + 1 (mod 2³²) → Th − 1,
   *   else Th.
   */
  inferSeqHi(seqLo: number): number {
    const th = Number(this.top >> 32n);
    const tl = Number(this.top & 0xffffffffn);
    const w = this.size;
    const bottom = (tl - w + 1) >>> 0;
    if (tl >= w - 1) return seqLo >= bottom ? th : (th + 1) >>> 0;
    // With Th = 0 there is no block below: such a Seql is far ahead in block 0, not behind.
    return seqLo >= bottom && th > 0 ? th - 1 : th;
  }
}
