// Buffer helpers. With TypeScript 5.7+ and @types/node 20, Buffer is not assignable to
// Uint8Array<ArrayBuffer>, which Buffer.concat() and Buffer#copy() expect; these copy by set().

export function concatBytes(parts: readonly Buffer[], length?: number): Buffer {
  const total = length ?? parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.alloc(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function copyBytes(src: Buffer): Buffer {
  const out = Buffer.alloc(src.length);
  out.set(src);
  return out;
}
