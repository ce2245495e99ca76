// One program per diagnostic code: compiling it reports that code (and never throws).

import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileFile } from '../compiler/compile.ts';

const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-diag-'));
const dsl = relative(dir, resolve(fileURLToPath(new URL('.', import.meta.url)), '../compiler/dsl/index.ts'));
const header = `import { type i32, u8, u32, u64, TcContext, XdpContext, SyscallContext, array, struct, hashMap, arrayMap, rodata, global, local, fetchAdd, loadBytes, storeBytes, kptr, kptrXchg, bpfLoop, CryptoCtx, CryptoParams, cryptoCtxCreate, cryptoCtxAcquire, dynptrFromMem, lpmTrieMap, ringbufMap, ringbufOutput, redirectNeigh, bpfSpinLock, spinLock, spinUnlock, ktimeGetNs } from '${dsl}';\n`;
const sys = (body: string, extra = ''): string => `${header}${extra}\nexport function p(ctx: SyscallContext): i32 {\n${body}\n}\n`;
const holder = `const H = struct({ c: kptr(CryptoCtx) }); const m = arrayMap({ value: H, maxEntries: 1 });`;
const locked = `const L = struct({ n: u32, lock: bpfSpinLock }); const lm = hashMap({ key: u32, value: L, maxEntries: 2 });`;
const prog = (body: string, extra = ''): string => `${header}${extra}\nexport function p(skb: TcContext): i32 {\n${body}\n}\n`;

const cases: [code: number, source: string][] = [
  [1001, prog(`  const f = () => 1; return 0;`)],
  [1106, prog(`  const s = 'text'; return 0;`)],
  [1002, prog(`  try { return 0; } catch { return 1; }`)],
  [1005, prog(`  const a: u32 = skb.len; if (a == 3) return 1; return 0;`)],
  [1007, prog(`  for (const k in skb) { } return 0;`)],
  [1008, prog(`  outer: for (let i = 0; i < 2; i++) { break outer; } return 0;`)],
  [1201, prog(`  const a: u32 = skb.len; const b: u32 = skb.mark; return (a * b * a) > 5 ? 1 : 0;`)],
  [1202, prog(`  let x: u8 = 0; x = skb.len; return x;`)],
  [1203, prog(`  const a = BigInt(skb.len); const w = a * a * a * a * a; return w > 5n ? 1 : 0;`)],
  [1204, prog(`  const a: u32 = skb.len; return a / 3;`)],
  [1205, prog(`  const a: u32 = skb.len; const b: u32 = skb.mark; return (a % b) | 0;`)],
  [1206, prog(`  const a = BigInt(skb.len); return a << a > 0n ? 1 : 0;`)],
  [1207, prog(`  const a = BigInt.asUintN(64, BigInt(skb.len) - 5n); const b = BigInt(skb.mark) - 7n; return a < b ? 1 : 0;`)],
  [1208, prog(`  const a = BigInt.asUintN(64, BigInt(skb.len) << 40n); return Number(a) | 0;`)],
  [1209, prog(`  const h = skb.header(B, 0); if (h === null) return 0; const i: u32 = skb.mark; return h.b[i];`, `const B = struct({ b: array(u8, 8) });`)],
  [1210, prog(`  const a: u32 = skb.len; return a && 1;`)],
  [1301, prog(`  return 0;`, `const m = hashMap({ key: u32, value: u32 });`)],
  [1302, `${header}export function p(skb: TcContext, x: u32): i32 { return 0; }\n`],
  [1303, prog(`  return 0;`, `let counter = 0;`)],
  [1304, `${header}export const X = 1;\n`],
  [1401, prog(`  const v = m.lookup({ b: [] }); return v === null ? 0 : 1;`, `const Big = struct({ b: array(u8, 600) }); const m = hashMap({ key: Big, value: u32, maxEntries: 4 });`)],
  [1402, prog(`  return f(3);`, `function f(n: u32): u32 { return n === 0 ? 0 : f(0); }`)],
  [1403, prog(`  const a: u32 = 1; a = 2; return a;`)],
  [1404, prog(`  const a: u32 = skb.len; if (a > 3) return 1;`)],
  [1003, prog(`  return Date.now() > 0 ? 1 : 0;`)],
  [1004, prog(`  const h = skb.header(B, 0); if (h === null) return 0; return h < 3 ? 1 : 0;`, `const B = struct({ b: u8 });`)],
  [1006, prog(`  return parseInt('3');`)],
  [1101, prog(`  let x: symbol = Symbol(); return 0;`)],
  [1102, prog(`  let x = null; return 0;`)],
  [1103, prog(`  const x = 1.5; return 0;`)],
  [1104, prog(`  const v = local(m as never); return 0;`, `const m = arrayMap({ value: u32, maxEntries: 1 });`)],
  [1105, prog(`  return 0;`, `const S = struct({ a: 'x' as unknown as typeof u8 });`)],
  [1405, `${header}export function p(skb: TcContext): i32 {\n  if (skb.len > 3) break;\n  return 0;\n}\n`],
  [1406, prog(`  const h = skb.header(B, 0); return h!.b;`, `const B = struct({ b: u8 });`)],
  [1407, prog(`  const v = m.lookup(1); if (v === null) return 0; fetchAdd(v, 'a', 1n); return 0;`, `const V = struct({ a: u32 }); const m = hashMap({ key: u32, value: V, maxEntries: 2 });`)],
  [1408, prog(`  const h = skb.header(B, 0); if (h === null) return 0; h.b.length = 3; return 0;`, `const B = struct({ b: array(u8, 4) });`)],
  [1409, prog(`  const h = skb.header(B, 0); if (h === null) return 0; const s = local(B); storeBytes(skb, 0, s); return h.b;`, `const B = struct({ b: u8 });`)],
  [1410, prog(`  T[0] = 3; return 0;`, `const T = rodata(array(u8, 2), [1, 2]);`)],
  [1411, `${header}const B = struct({ b: array(u8, 4) });\nexport function p(ctx: XdpContext): i32 {\n  const s = local(B); return loadBytes(ctx as never, 0, s);\n}\n`],
  [1412, prog(`  const h = m.lookup(0); if (h === null) return 0; (h as { c: unknown }).c = null; return 0;`, holder)],
  [1413, prog(`  const err = local(u32 as never); cryptoCtxCreate(local(CryptoParams), err as never); return 0;`)],
  [1414, sys(`  const a = ctx.args(B); const i: u32 = a.b[0] & 3; return a.b[i];`, `const B = struct({ b: array(u8, 4) });`)],
  [1407, sys(`  const h = m.lookup(0); if (h === null) return 0; const c = h.c; if (c === null) return 0; kptrXchg(h, 'c', c); return 0;`, holder)],
  [1411, prog(`  const h = m.lookup(0); if (h === null) return 0; const c = h.c; if (c === null) return 0; const x = cryptoCtxAcquire(c); return x === null ? 0 : 1;`, holder)],
  [1407, prog(`  const b = local(B); dynptrFromMem(b); return 0;`, `const B = struct({ b: array(u8, 16) });`)],
  [1402, prog(`  return f(3) & 1;`, `\n/** @noinline */\nfunction f(n: u32): u32 { return n === 0 ? 0 : f(0); }`)],
  [1407, prog(`  const v = m.lookup(0); if (v === null) return 0; return bpfLoop(4, cb, v);`, `const S = struct({ a: u32 }); const m = arrayMap({ value: S, maxEntries: 1 }); function cb(i: u32, s: { a: number }): i32 { return 0; }`)],
  [1202, prog(`  const s = local(S); return bpfLoop(4, cb, s);`, `const S = struct({ a: u32 }); function cb(i: u32, s: { a: number }): i32 { return 2; }`)],
  [1406, prog(`  const v = m.lookup(0); return f(v) & 1;`, `const S = struct({ a: u32 }); const m = arrayMap({ value: S, maxEntries: 1 });\n/** @noinline */\nfunction f(s: { a: number } | null): u32 { return 0; }`)],
  [1501, prog(`  const a: string = 5; return 0;`)],
  [1301, prog(`  return 0;`, `const K = struct({ addr: u32, prefixlen: u32 }); const m = lpmTrieMap({ key: K, value: u32, maxEntries: 4 });`)],
  [1301, prog(`  return 0;`, `const rb = ringbufMap({ maxEntries: 5000 });`)],
  [1407, prog(`  const v = (rb as unknown as { lookup(k: number): null }).lookup(0); return 0;`, `const rb = ringbufMap({ maxEntries: 4096 });`)],
  [1407, prog(`  const b = local(B); return ringbufOutput(m as never, b);`, `const B = struct({ b: u32 }); const m = arrayMap({ value: u32, maxEntries: 1 });`)],
  [1407, prog(`  const b = local(B); return redirectNeigh(1, b as never, 0);`, `const B = struct({ b: u32 });`)],
  [1106, prog(`  let s: u32 = 0; for (const x of [1, 2]) s = s + x; return s;`)],
  [1007, prog(`  let s: u32 = 0; for (const x of skb as unknown as number[]) s = (s + x) >>> 0; return s;`)],
  [1409, prog(`  const h = skb.header(B, 0); if (h === null) return 0; let s: u32 = 0; for (const x of h.b) { s = (s + x) >>> 0; storeBytes(skb, 0, local(B)); } return s;`, `const B = struct({ b: array(u8, 4) });`)],
  [1209, prog(`  const h = skb.header(B, 0); if (h === null) return 0; const i: u32 = skb.mark; if (i <= h.b.length) return h.b[i]; return 0;`, `const B = struct({ b: array(u8, 8) });`)],
  // Spin locks (G5): a call under the lock (a helper; a function that calls one), an exit or a
  // join with the lock held, and misuse (two locks, unlock without lock, the lock as data).
  [1415, prog(`  const v = lm.lookup(1); if (v === null) return 0; spinLock(v, 'lock'); lm.update(2, { n: 1 }); spinUnlock(v, 'lock'); return 0;`, locked)],
  [1415, prog(`  const v = lm.lookup(1); if (v === null) return 0; spinLock(v, 'lock'); v.n = f(v.n); spinUnlock(v, 'lock'); return 0;`, `${locked}\n/** @noinline */\nfunction f(x: u32): u32 { return (x + Number(ktimeGetNs() & 1n)) >>> 0; }`)],
  [1416, prog(`  const v = lm.lookup(1); if (v === null) return 0; spinLock(v, 'lock'); if (skb.len > 3) return 1; spinUnlock(v, 'lock'); return 0;`, locked)],
  [1416, prog(`  const v = lm.lookup(1); if (v === null) return 0; if (skb.len > 3) spinLock(v, 'lock'); v.n = 2; spinUnlock(v, 'lock'); return 0;`, locked)],
  [1417, prog(`  const v = lm.lookup(1); const w = lm.lookup(2); if (v === null || w === null) return 0; spinLock(v, 'lock'); spinLock(w, 'lock'); spinUnlock(w, 'lock'); spinUnlock(v, 'lock'); return 0;`, locked)],
  [1417, prog(`  const v = lm.lookup(1); if (v === null) return 0; spinUnlock(v, 'lock'); return 0;`, locked)],
  [1417, prog(`  const v = lm.lookup(1); if (v === null) return 0; return (v.lock as unknown as { val: u32 }).val;`, locked)],
  [1417, prog(`  const v = lm.lookup(1); if (v === null) return 0; const c = local(L, v); return c.n;`, locked)],
  [1417, prog(`  return 0;`, `const L = struct({ n: u32, lock: bpfSpinLock }); const pm = lpmTrieMap({ key: struct({ prefixlen: u32, a: u32 }), value: L, maxEntries: 2 });`)],
  [1417, prog(`  return 0;`, `const L = struct({ n: u32, inner: struct({ lock: bpfSpinLock }) }); const nm = hashMap({ key: u32, value: L, maxEntries: 2 });`)],
  [1202, prog(`  const v = m.lookup(0); if (v === null) return 0; const d = dynptrFromMem(v, skb.len & 0x3f); return 0;`, `const B = struct({ b: array(u8, 32) }); const m = arrayMap({ value: B, maxEntries: 1 });`)],
];

describe('diagnostics: one program per code', () => {
  for (const [n, [code, source]] of cases.entries()) {
    it(`EBPF${code} (#${n})`, () => {
      const path = join(dir, `diag-${n}-${code}.ts`);
      writeFileSync(path, source);
      const r = compileFile(path);
      const codes = r.diagnostics.map((d) => d.code);
      expect(codes, r.diagnostics.map((d) => `EBPF${d.code} ${d.message}`).join('\n')).toContain(code);
      for (const d of r.diagnostics) expect(d.line).toBeGreaterThan(0);
    });
  }
});
