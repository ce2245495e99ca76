// Imports across files (gap G1): maps, descriptors, constants, rodata tables and functions
// declared in other DSL files are part of the object that uses them; library files without
// programs compile on their own; a name used twice across files is EBPF1305.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileFile, formatDiagnostic } from '../compiler/compile.ts';
import { openObject } from '../runtime/loader/index.ts';
import { kernelBpf } from './support/env.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const corpus = join(here, 'compiler', 'corpus');
const root = resolve(here, '..');
const kernel = kernelBpf();
const errors = (r: ReturnType<typeof compileFile>): string[] => r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);

describe('imports across files', () => {
  it('one map per declaration, only the maps a program reaches', () => {
    const r = compileFile(join(corpus, 'imports.ts'));
    expect(errors(r)).toEqual([]);
    const names = r.object.maps.map((m) => m.name);
    expect(names.filter((n) => n === 'encrypt_sa')).toHaveLength(1); // imported by imports.ts and lib/mix.ts
    expect(names).toContain('stats');
    expect(names).not.toContain('unused_lib_map');
    expect(r.object.functions.map((f) => f.name)).toEqual(['mixBlock']);
    expect(r.files.map((f) => relative(corpus, f))).toEqual(['imports.ts', 'lib/sa.ts', 'lib/mix.ts']);
  });

  it('a library file (no programs) compiles alone: maps only, a warning', () => {
    const r = compileFile(join(corpus, 'lib', 'sa.ts'), { elf: true });
    expect(errors(r)).toEqual([]);
    expect(r.diagnostics.map((d) => d.code)).toEqual([1304]);
    expect(r.object.maps.map((m) => m.name)).toContain('unused_lib_map');
    expect(r.elf).toBeDefined();
  });

  it('the engine files are importable (encrypt_sa, ghash_tables, scratch, ghashBlock)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-imports-'));
    const rel = (p: string): string => relative(dir, join(root, p));
    const path = join(dir, 'probe.ts');
    writeFileSync(
      path,
      `import { type i32, TC_ACT_OK, TcContext, local } from '${rel('compiler/dsl/index.ts')}';
import { encrypt_sa, ghash_tables, scratch, MODE_TUNNEL } from '${rel('engine/maps.ts')}';
import { ghashBlock, GhashState } from '${rel('engine/ghash.ts')}';
export function esp_probe(skb: TcContext): i32 {
  const sa = encrypt_sa.lookup({ kind: 1, selector: [] });
  if (sa === null) return TC_ACT_OK;
  const t = ghash_tables.lookup(sa.keyIndex);
  const s = scratch.lookup(0);
  if (t === null || s === null) return TC_ACT_OK;
  const st = local(GhashState);
  ghashBlock(t, st, sa.seq, BigInt(sa.mode === MODE_TUNNEL ? 1 : 0));
  return st.hi === 0n ? TC_ACT_OK : 2;
}
`,
    );
    const r = compileFile(path, { elf: true });
    expect(errors(r)).toEqual([]);
    expect(r.object.maps.map((m) => m.name).sort()).toEqual(['encrypt_sa', 'ghash_tables', 'scratch']);
    if (!kernel.ok) return;
    const obj = openObject(r.elf!, { name: 'probe' }).prepare({ pinning: false });
    try {
      obj.load();
    } finally {
      obj.close();
    }
  });

  it('EBPF1305: two files declare a map of the same name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-imports-'));
    const dsl = relative(dir, join(root, 'compiler/dsl/index.ts'));
    writeFileSync(join(dir, 'a.ts'), `import { hashMap, u32 } from '${dsl}';\nexport const counts = hashMap({ key: u32, value: u32, maxEntries: 4 });\n`);
    writeFileSync(
      join(dir, 'main.ts'),
      `import { type i32, TcContext, arrayMap, u32 } from '${dsl}';\nimport { counts as other } from './a.ts';\nconst counts = arrayMap({ value: u32, maxEntries: 1 });\nexport function p(skb: TcContext): i32 {\n  counts.update(0, 1);\n  other.update(1, 2);\n  return 0;\n}\n`,
    );
    const r = compileFile(join(dir, 'main.ts'));
    expect(r.diagnostics.map((d) => d.code)).toContain(1305);
    expect(r.diagnostics.every((d) => d.line > 0)).toBe(true);
  });
  it('`export { prog } from` makes an imported program a program of this object; @inline ctx functions are functions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-imports-'));
    const dsl = relative(dir, join(root, 'compiler/dsl/index.ts'));
    writeFileSync(
      join(dir, 'lib.ts'),
      `import { type i32, type u32, TC_ACT_OK, TC_ACT_SHOT, TcContext, arrayMap, u32 as U32 } from '${dsl}';
export const hits = arrayMap({ value: U32, maxEntries: 4 });
/** @inline */
export function verdict(skb: TcContext, rule: u32): i32 {
  const h = hits.lookup(rule & 3);
  if (h !== null) h.value = h.value + 1;
  return skb.len > 100 ? TC_ACT_SHOT : TC_ACT_OK;
}
/** @section tc/ingress */
export function lib_in(skb: TcContext): i32 {
  return verdict(skb, 1);
}
export function lib_other(skb: TcContext): i32 {
  return verdict(skb, 2);
}
`,
    );
    writeFileSync(
      join(dir, 'policy.ts'),
      `import { type i32, TcContext } from '${dsl}';
import { verdict } from './lib.ts';
export { lib_in, lib_in as lib_in2, hits } from './lib.ts';
/** @section tc/egress */
export function out(skb: TcContext): i32 {
  return verdict(skb, 0);
}
`,
    );
    const r = compileFile(join(dir, 'policy.ts'), { elf: true });
    expect(errors(r)).toEqual([]);
    expect(r.object.programs.map((p) => [p.name, p.section])).toEqual([
      ['out', 'tc/egress'],
      ['lib_in', 'tc/ingress'],
      ['lib_in2', 'tc/ingress'],
    ]);
    expect(r.object.maps.map((m) => m.name)).toEqual(['hits']);
    // The userspace module: the re-exported programs are references into this object.
    // (a CommonJS or ES module, by the nearest package.json)
    expect(r.js).toContain('lib_in2 = Object.freeze({ object: "bpf-out/policy.o", program: "lib_in2" })');
    expect(r.js).toMatch(/lib_in = Object\.freeze\(\{ object: "bpf-out\/policy\.o", program: "lib_in" \}\)/);
    expect(r.js).toMatch(/hits.*lib\.ts|lib\.ts[^\n]*\n[^\n]*hits/);
    // Compiled alone, the library's 2-parameter @inline function is not a program.
    const lib = compileFile(join(dir, 'lib.ts'));
    expect(errors(lib)).toEqual([]);
    expect(lib.object.programs.map((p) => p.name)).toEqual(['lib_in', 'lib_other']);
    if (!kernel.ok) return;
    const obj = openObject(r.elf!, { name: 'policy' }).prepare({ pinning: false });
    try {
      obj.load();
      expect(obj.program('lib_in2').run({ dataIn: Buffer.alloc(64) }).retval).toBe(0);
    } finally {
      obj.close();
    }
  });
});
