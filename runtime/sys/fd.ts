// An owned BPF file descriptor: a map, program, BTF object or link stays alive in the kernel while
// some fd (or pin, or attachment) refers to it, so ownership is explicit and close() is idempotent.
import { closeFd } from './syscall.ts';

export class FD {
  #fd: number;

  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`not a file descriptor: ${fd}`);
    this.#fd = fd;
  }

  /** The number, for attr fields. Throws after close(): a closed fd's number may belong to
   *  something else by now. */
  get value(): number {
    if (this.#fd < 0) throw new Error('use of a closed BPF fd');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    closeFd(fd);
  }

  toString(): string {
    return this.#fd < 0 ? 'fd(closed)' : `fd(${this.#fd})`;
  }
}

/** Wrappers take either an FD or a raw number (an fd from elsewhere, or 0 for "none"). */
export type FdLike = FD | number;

export function fdValue(fd: FdLike): number {
  return typeof fd === 'number' ? fd : fd.value;
}
