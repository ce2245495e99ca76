// A library file for the corpus (no programs): maps, struct descriptors, constants, a rodata
// table, a writable global and a function, imported by ../imports.ts and by ./mix.ts (one map
// per declaration in the object, however many files import it).
import { array, arrayMap, be32, global, hashMap, rodata, struct, u8, u32, u64, type u32 as U32 } from '../../../../compiler/dsl/index.ts';

export const SaKey = struct({ kind: u32, sel: u32 }, { name: 'sa_key' });
export const EncryptSa = struct({ seq: u64, packets: u64, spi: be32, keyIndex: u8 }, { name: 'encrypt_sa_value' });
export const encrypt_sa = hashMap({ key: SaKey, value: EncryptSa, maxEntries: 16 });
export const stats = arrayMap({ value: u64, maxEntries: 4 });
/** Not reached from any program: not a map of the objects that import this file. */
export const unused_lib_map = hashMap({ key: u32, value: u32, maxEntries: 4 });
export const SLOTS = 4;
export const SPI_BASE = 0x01020300;
export const SBOX = rodata(array(u8, 16), [0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76]);
export const calls = global(u32);

export function bump(slot: U32): void {
  const c = stats.lookup(slot & (SLOTS - 1));
  if (c !== null) c.value = BigInt.asUintN(64, c.value + 1n);
  calls.value = (calls.value + 1) >>> 0;
}
