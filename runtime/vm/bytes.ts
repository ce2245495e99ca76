// Byte-buffer operations the VM needs, written with TypedArray.set and views. @types/node 20.9's
// Buffer is not assignable to TypeScript 5.9's Uint8Array<ArrayBufferLike>, so Buffer methods
// that take a Uint8Array (copy, equals, Buffer.from(buffer), Buffer.concat) do not type-check
// on a Buffer argument; these take the same arguments and do.

/** A copy of `src` in a new Buffer. */
export function clone(src: ArrayLike<number>): Buffer {
  const out = Buffer.alloc(src.length);
  out.set(src);
  return out;
}

/** Copy `src` into `dst` at `at` (Buffer#copy with the target first). */
export function copyInto(dst: Buffer, at: number, src: Buffer): void {
  dst.set(src, at);
}

export function equal(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The same bytes as a plain Uint8Array view (for APIs typed on ArrayBufferView). */
export const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);

export function concat(parts: readonly Buffer[]): Buffer {
  const out = Buffer.alloc(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
