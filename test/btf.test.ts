// BTF: the wire format (all 19 kinds), lookups and layouts, .BTF.ext, the libbpf-shaped builders,
// and decoding the running kernel's BTF, checked against bpftool.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Btf } from '../compiler/btf/btf.ts';
import { addKfuncDeclaration, addKptr, addMapDefinition, parseMapDefinition } from '../compiler/btf/builders.ts';
import { decodeBtfWithExt, encodeBtfWithExt, type BtfExt } from '../compiler/btf/ext.ts';
import { IntEncoding, Linkage, type BtfType } from '../compiler/btf/types.ts';
import { describeWith, hasTool, hasVmlinuxBtf } from './support/env.ts';

/** One type of every kind, with the kind_flag variants. Ids in comments. */
function everyKind(): Btf {
  const btf = new Btf();
  const u32 = btf.add({ kind: 'int', name: 'unsigned int', size: 4, encoding: 0, bitOffset: 0, bits: 32 }); // 1
  const s64 = btf.add({ kind: 'int', name: 'long long', size: 8, encoding: IntEncoding.SIGNED, bitOffset: 0, bits: 64 }); // 2
  const ptr = btf.add({ kind: 'ptr', type: u32 }); // 3
  const arr = btf.add({ kind: 'array', type: u32, indexType: u32, nelems: 7 }); // 4
  btf.add({
    kind: 'struct', // 5: bitfields need kind_flag
    name: 'flags',
    size: 8,
    members: [
      { name: 'a', type: u32, bitOffset: 0, bitfieldSize: 3 },
      { name: 'b', type: u32, bitOffset: 3, bitfieldSize: 29 },
      { name: 'c', type: u32, bitOffset: 32 },
    ],
  });
  btf.add({ kind: 'union', name: 'u', size: 8, members: [{ name: 'x', type: s64, bitOffset: 0 }, { name: 'y', type: arr, bitOffset: 0 }] }); // 6
  btf.add({ kind: 'enum', name: 'e', size: 4, signed: true, values: [{ name: 'NEG', value: -5n }, { name: 'POS', value: 9n }] }); // 7
  btf.add({ kind: 'enum64', name: 'e64', size: 8, signed: false, values: [{ name: 'BIG', value: 0xfedcba9876543210n }] }); // 8
  btf.add({ kind: 'fwd', name: 'opaque', union: true }); // 9
  const td = btf.add({ kind: 'typedef', name: 'u32_t', type: u32 }); // 10
  const vol = btf.add({ kind: 'volatile', type: td }); // 11
  const cst = btf.add({ kind: 'const', type: vol }); // 12
  btf.add({ kind: 'restrict', type: ptr }); // 13
  const proto = btf.add({ kind: 'func_proto', returnType: s64, params: [{ name: 'p', type: ptr }, { name: '', type: cst }] }); // 14
  const fn = btf.add({ kind: 'func', name: 'f', type: proto, linkage: Linkage.GLOBAL }); // 15
  const v = btf.add({ kind: 'var', name: 'v', type: cst, linkage: Linkage.GLOBAL }); // 16
  btf.add({ kind: 'datasec', name: '.rodata', size: 4, vars: [{ type: v, offset: 0, size: 4 }] }); // 17
  btf.add({ kind: 'float', name: 'double', size: 8 }); // 18
  btf.add({ kind: 'decl_tag', name: 'arg:ctx', type: fn, componentIdx: 0 }); // 19
  btf.add({ kind: 'decl_tag', name: 'whole', type: fn, componentIdx: -1, kindFlag: true }); // 20
  btf.add({ kind: 'type_tag', name: 'kptr', type: u32 }); // 21
  return btf;
}

describe('BTF wire format', () => {
  it('round-trips every kind, kind_flag included', () => {
    const btf = everyKind();
    const kinds = new Set(btf.types.slice(1).map((t) => t.kind));
    expect(kinds.size).toBe(19);
    const decoded = Btf.decode(btf.encode());
    // Decoding marks kind_flag structs explicitly; everything else is identical.
    expect(decoded.types[5]).toMatchObject({ kindFlag: true });
    delete (decoded.types[5] as { kindFlag?: boolean }).kindFlag;
    expect(decoded.types).toEqual(btf.types);
    expect(decoded.encode()).toEqual(btf.encode());
  });

  it('stores each distinct string once', () => {
    const btf = new Btf();
    for (let i = 0; i < 10; i++) btf.add({ kind: 'int', name: 'same', size: 4, encoding: 0, bitOffset: 0, bits: 32 });
    const buf = btf.encode();
    expect(buf.readUInt32LE(20)).toBe('\0same\0'.length); // str_len
    const nameOffs = new Set([0, 1, 2].map((i) => buf.readUInt32LE(24 + 16 * i)));
    expect([...nameOffs]).toEqual([1]);
  });

  it('rejects bad input with the type at fault', () => {
    expect(() => Btf.decode(Buffer.from('not btf at all, definitely not'))).toThrow(/bad magic/);
    const buf = everyKind().encode();
    buf.writeUInt32LE((buf.readUInt32LE(24 + 4) & ~0x1f000000) | (30 << 24), 24 + 4); // type 1: kind 30
    expect(() => Btf.decode(buf)).toThrow(/type \[1\]: unknown kind 30/);
    expect(() => Btf.decode(everyKind().encode().subarray(0, 40))).toThrow(/runs past the end/);
  });
});

describe('Btf lookups', () => {
  const btf = everyKind();
  it('resolves through typedef/const/volatile/type_tag and sizes types', () => {
    expect(btf.resolve(12)).toBe(1);
    expect(btf.resolve(21)).toBe(1);
    expect(btf.sizeof(12)).toBe(4);
    expect(btf.sizeof(4)).toBe(28);
    expect(btf.sizeof(16)).toBe(4); // a VAR's size is its type's
    expect(btf.alignof(6)).toBe(8);
    expect(() => btf.sizeof(15)).toThrow(/has no size/);
  });
  it('finds by name and kind, and members through anonymous members', () => {
    expect(btf.findFunc('f')).toBe(15);
    expect(btf.find('u32_t', 'typedef')).toBe(10);
    expect(btf.find('u32_t', 'struct')).toBeUndefined();
    const inner = btf.add({ kind: 'struct', name: '', size: 8, members: [{ name: 'deep', type: 2, bitOffset: 0 }] });
    const outer = btf.add({ kind: 'struct', name: 'outer', size: 16, members: [{ name: 'h', type: 2, bitOffset: 0 }, { name: '', type: inner, bitOffset: 64 }] });
    expect(btf.member(outer, 'deep')).toEqual({ name: 'deep', type: 2, bitOffset: 64 });
    expect(btf.findStruct('outer')).toBe(outer); // the name index follows add()
    expect(btf.describe(14)).toBe('long long (unsigned int *, const volatile u32_t)');
  });
});

describe('.BTF.ext', () => {
  it('round-trips func_info, line_info and CO-RE records over the shared string table', () => {
    const btf = everyKind();
    const ext: BtfExt = {
      funcInfo: new Map([['tc', [{ insnOff: 0, typeId: 15 }, { insnOff: 64, typeId: 15 }]], ['.text', [{ insnOff: 0, typeId: 15 }]]]),
      lineInfo: new Map([['tc', [{ insnOff: 8, fileName: 'a.ts', lineText: 'let x = 1;', line: 4000000, column: 1023 }]]]),
      coreRelos: new Map([['tc', [{ insnOff: 16, typeId: 5, accessString: '0:2', kind: 0 }]]]),
    };
    const enc = encodeBtfWithExt(btf, ext);
    const dec = decodeBtfWithExt(enc.btf, enc.ext);
    expect(dec.ext).toEqual(ext);
    expect(dec.btf.findFunc('f')).toBe(15);
  });
  it('refuses a line number that does not fit 22 bits', () => {
    const ext: BtfExt = { funcInfo: new Map(), lineInfo: new Map([['tc', [{ insnOff: 0, fileName: 'a', lineText: '', line: 1 << 22, column: 0 }]]]), coreRelos: new Map() };
    expect(() => encodeBtfWithExt(new Btf(), ext)).toThrow(/does not fit 22 bits/);
  });
});

describe('libbpf-shaped builders', () => {
  it('map definitions: __uint as array length, __type as pointee', () => {
    const btf = new Btf();
    const key = btf.add({ kind: 'int', name: 'unsigned int', size: 4, encoding: 0, bitOffset: 0, bits: 32 });
    const v = addMapDefinition(btf, 'm', { type: 1, maxEntries: 128, flags: 1, pinning: 1, key: { typeId: key }, value: { size: 24 } });
    expect(btf.get(v)).toMatchObject({ kind: 'var', name: 'm', linkage: Linkage.GLOBAL });
    expect(parseMapDefinition(btf, v)).toEqual({ type: 1, maxEntries: 128, flags: 1, pinning: 1, keySize: 4, valueSize: 24, keyTypeId: key, valueTypeId: 0 });
  });
  it('kptr: PTR → TYPE_TAG "kptr" → STRUCT (never FWD)', () => {
    const btf = new Btf();
    const p = btf.get(addKptr(btf, 'bpf_crypto_ctx')) as Extract<BtfType, { kind: 'ptr' }>;
    const tag = btf.get(p.type) as Extract<BtfType, { kind: 'type_tag' }>;
    expect(tag).toMatchObject({ kind: 'type_tag', name: 'kptr' });
    expect(btf.get(tag.type)).toMatchObject({ kind: 'struct', name: 'bpf_crypto_ctx' });
  });
});

describeWith(hasVmlinuxBtf(), 'kernel BTF (/sys/kernel/btf/vmlinux)', () => {
  const raw = readFileSync('/sys/kernel/btf/vmlinux');
  it('decodes in under a second and finds kfuncs and struct layouts', () => {
    // Best of three, so a loaded CI machine (tests run in parallel) does not decide the result.
    let vmlinux = new Btf();
    let ms = Infinity;
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      vmlinux = Btf.decode(raw);
      ms = Math.min(ms, performance.now() - start);
    }
    expect(ms).toBeLessThan(1000);
    expect(vmlinux.types.length).toBeGreaterThan(10000);
    const skb = vmlinux.findStruct('__sk_buff')!;
    expect(vmlinux.member(skb, 'len')?.bitOffset).toBe(0);
    expect(vmlinux.member(skb, 'protocol')?.bitOffset).toBe(4 * 32); // uapi: len, pkt_type, mark, queue_mapping, protocol
    expect(vmlinux.sizeof(vmlinux.find('__u64', 'typedef')!)).toBe(8);
  });

  describeWith(hasTool('bpftool'), 'against bpftool', () => {
    it('gives kfunc ids that bpftool agrees with', () => {
      const vmlinux = Btf.decode(raw);
      const dump = execFileSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux'], { maxBuffer: 1 << 30 }).toString();
      for (const name of ['bpf_crypto_ctx_create', 'bpf_crypto_ctx_release', 'bpf_obj_drop_impl', 'bpf_map_lookup_elem']) {
        const m = new RegExp(`^\\[(\\d+)\\] FUNC '${name}' `, 'm').exec(dump);
        expect(vmlinux.findFunc(name), name).toBe(m ? Number(m[1]) : undefined);
      }
    });
    it('re-encodes vmlinux into BTF that bpftool reads type for type', () => {
      const dir = mkdtempSync(join(tmpdir(), 'btf-'));
      try {
        const vmlinux = Btf.decode(raw);
        const file = join(dir, 'vmlinux.btf');
        writeFileSync(file, new Uint8Array(vmlinux.encode()));
        const ours = execFileSync('bpftool', ['btf', 'dump', 'file', file], { maxBuffer: 1 << 30 }).toString();
        const theirs = execFileSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux'], { maxBuffer: 1 << 30 }).toString();
        expect(ours.length).toBe(theirs.length);
        expect(ours === theirs).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('copies a kfunc prototype with struct pointees as STRUCTs', () => {
    const vmlinux = Btf.decode(raw);
    const btf = new Btf();
    const id = addKfuncDeclaration(btf, vmlinux, 'bpf_crypto_ctx_create');
    const fn = btf.get(id) as Extract<BtfType, { kind: 'func' }>;
    expect(fn).toMatchObject({ name: 'bpf_crypto_ctx_create', linkage: Linkage.EXTERN });
    expect(btf.describe(fn.type)).toBe(vmlinux.describe((vmlinux.get(vmlinux.findFunc('bpf_crypto_ctx_create')!) as { type: number }).type));
    expect(addKfuncDeclaration(btf, vmlinux, 'bpf_crypto_ctx_create')).toBe(id);
    expect(() => addKfuncDeclaration(btf, vmlinux, 'no_such_kfunc')).toThrow(/not in kernel BTF/);
  });
});
