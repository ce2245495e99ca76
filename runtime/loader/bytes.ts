// @types/node 20's Buffer is not assignable to TS 5.9's Uint8Array<ArrayBufferLike>; these helpers
// go through a Uint8Array view so copies type-check without casts at every call.
export const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);

/** src → dst at offset (Buffer.copy). */
export function copyInto(src: Buffer, dst: Buffer, offset = 0): void {
  dst.set(view(src).subarray(0, Math.max(0, dst.length - offset)), offset);
}

/** `b` zero-padded (or cut) to `size` bytes. */
export function padTo(b: Buffer, size: number): Buffer {
  if (b.length === size) return b;
  const out = Buffer.alloc(size);
  copyInto(b.subarray(0, size), out);
  return out;
}
