// PLACEHOLDER — being written (BTF encoder/decoder). API contract below.
import type { BtfType } from './types.ts';

export class Btf {
  /** types[0] is { kind: 'void' }; a type's id is its index. */
  readonly types: BtfType[] = [{ kind: 'void' }];
  add(type: BtfType): number {
    this.types.push(type);
    return this.types.length - 1;
  }
}
