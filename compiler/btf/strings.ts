// The BTF string section: NUL-terminated strings, offset 0 is the empty string. Shared by .BTF
// (type and member names) and .BTF.ext (section names, file names, source lines), so both are
// encoded against one StringTable.

import { concatBytes } from './bytes.ts';

/** Builds a string section; identical strings share one offset. */
export class StringTable {
  private readonly offsets = new Map<string, number>([['', 0]]);
  private readonly chunks: Buffer[] = [Buffer.alloc(1)];
  private length = 1;

  add(s: string): number {
    let off = this.offsets.get(s);
    if (off === undefined) {
      off = this.length;
      const bytes = Buffer.from(s + '\0', 'utf8');
      this.chunks.push(bytes);
      this.length += bytes.length;
      this.offsets.set(s, off);
    }
    return off;
  }

  get size(): number {
    return this.length;
  }

  encode(): Buffer {
    return concatBytes(this.chunks, this.length);
  }
}

/** Reads strings out of a string section by offset; caches, since vmlinux repeats names a lot. */
export class StringReader {
  private readonly cache = new Map<number, string>();
  constructor(private readonly bytes: Buffer) {}

  get(off: number): string {
    let s = this.cache.get(off);
    if (s === undefined) {
      if (off < 0 || off >= this.bytes.length) throw new RangeError(`string offset ${off} outside string section of ${this.bytes.length} bytes`);
      const end = this.bytes.indexOf(0, off);
      if (end < 0) throw new RangeError(`string at offset ${off} is not NUL-terminated`);
      s = this.bytes.toString('utf8', off, end);
      this.cache.set(off, s);
    }
    return s;
  }
}
