// The spin lock rules of the verifier (kernel/bpf/verifier.c, Linux 6.18), checked on the IR of
// each function after lowering, so a program the verifier would refuse for them is a diagnostic
// with a source line instead of a load error:
//   - while a bpf_spin_lock is held, no helper (but bpf_spin_unlock) and no kfunc may be called
//     ("function calls are not allowed while holding a lock"); a static (.text) function may be
//     called, and then it may call nothing either (EBPF1415);
//   - one lock at a time ("Locking two bpf_spin_locks are not allowed"), no unlock without a lock
//     (EBPF1417);
//   - every path releases the lock before returning ("bpf_spin_unlock is missing"), and paths
//     that meet hold it on all or none of them (EBPF1416).
// The last rule is stricter than the verifier, which follows each path on its own; a lock taken
// in a function is released in that function.

import ts from 'typescript';
import { diag, type Diagnostic } from '../diagnostics.ts';
import { isSpinLock } from '../dsl/index.ts';
import type { DType, MapInfo } from './types.ts';
import type { Block, IrFunction } from '../ir/ir.ts';
import { helper } from './helpers.ts';

const LOCK = helper('spin_lock').helper;
const UNLOCK = helper('spin_unlock').helper;

/** Whether a .text function (and everything it calls) makes no helper or kfunc call and takes no lock. */
function callFree(name: string, functions: ReadonlyMap<string, IrFunction>, memo: Map<string, boolean>): boolean {
  const hit = memo.get(name);
  if (hit !== undefined) return hit;
  memo.set(name, false); // recursion is refused elsewhere
  const f = functions.get(name);
  let ok = !!f;
  for (const b of f?.blocks ?? []) {
    for (const i of b.insns) {
      if (i.op === 'call' || i.op === 'call_kfunc') ok = false;
      else if (i.op === 'call_local' && !callFree(i.name, functions, memo)) ok = false;
    }
  }
  memo.set(name, ok);
  return ok;
}

/** Check one function: `functions` are the .text functions by name (for calls under the lock). */
export function checkSpinLocks(f: IrFunction, functions: ReadonlyMap<string, IrFunction>, memo = new Map<string, boolean>()): Diagnostic[] {
  const uses = f.blocks.some((b) => b.insns.some((i) => i.op === 'call' && (i.helper === LOCK || i.helper === UNLOCK)));
  if (!uses) return [];
  const out: Diagnostic[] = [];
  const reported = new Set<object>();
  const report = (at: object, d: Diagnostic): void => {
    if (reported.has(at)) return;
    reported.add(at);
    out.push(d);
  };
  // 1. The state at each block's entry: held (true) or not, 'mixed' where paths that differ meet
  //    (and everything reached from there, so one mistake is reported once).
  type State = boolean | 'mixed';
  const exitOf = (b: Block, held: boolean): boolean => {
    for (const i of b.insns) {
      if (i.op === 'call' && i.helper === LOCK) held = true;
      else if (i.op === 'call' && i.helper === UNLOCK) held = false;
    }
    return held;
  };
  const state = new Map<Block, State>([[f.entry, false]]);
  const work: Block[] = [f.entry];
  while (work.length) {
    const b = work.pop()!;
    const s = state.get(b)!;
    const next: State = s === 'mixed' ? 'mixed' : exitOf(b, s);
    for (const succ of b.successors()) {
      const old = state.get(succ);
      const merged: State = old === undefined ? next : old === next ? old : 'mixed';
      if (merged !== old) {
        state.set(succ, merged);
        work.push(succ);
      }
    }
  }
  // 2. Report, walking each block from its entry state.
  for (const b of f.blocks) {
    const s = state.get(b);
    if (s === undefined) continue; // unreachable
    if (s === 'mixed') {
      const origin = f.blocks.some((p) => p.successors().includes(b) && typeof state.get(p) === 'boolean');
      if (origin) report(b, diag.lockHeldAtExit(b.insns[0]?.loc ?? b.term?.loc, 'on some of the paths that meet here (lock and unlock on the same paths)'));
      continue;
    }
    let held = s;
    for (const i of b.insns) {
      if (i.op === 'call' && i.helper === LOCK) {
        if (held) report(i, diag.badLockUse(i.loc, 'a second spinLock while a lock is held (the verifier allows one lock at a time)'));
        held = true;
      } else if (i.op === 'call' && i.helper === UNLOCK) {
        if (!held) report(i, diag.badLockUse(i.loc, 'spinUnlock without a lock held on this path'));
        held = false;
      } else if (held && (i.op === 'call' || i.op === 'call_kfunc')) {
        report(i, diag.callWhileLocked(i.loc, i.name));
      } else if (held && i.op === 'call_local' && !callFree(i.name, functions, memo)) {
        report(i, diag.callWhileLocked(i.loc, i.name));
      }
    }
    if (b.term?.op === 'ret' && held) report(b.term, diag.lockHeldAtExit(b.term.loc, 'at this return'));
  }
  return out;
}

const holdsLock = (t: DType): boolean => isSpinLock(t) || (t.kind === 'array' ? holdsLock(t.element as DType) : t.kind === 'struct' && t.layout.some((f) => holdsLock(f.type)));

/** A bpf_spin_lock in a map value: only hash and array maps take one (map_check_btf: -EOPNOTSUPP
 *  for the others), only one, and as a top-level field (where the kernel and the VM look). */
export function checkLockMaps(maps: readonly MapInfo[], files: readonly ts.SourceFile[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const declaration = (name: string): ts.Node | undefined => {
    let found: ts.Node | undefined;
    const visit = (n: ts.Node): void => {
      if (found) return;
      if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name && n.initializer) found = n;
      else n.forEachChild(visit);
    };
    for (const f of files) for (const st of f.statements) if (ts.isVariableStatement(st)) visit(st);
    return found;
  };
  for (const m of maps) {
    if (m.kind === 'ringbuf' || !m.value || !holdsLock(m.value)) continue;
    const at = declaration(m.name) ?? files[0];
    const topLevel = m.value.kind === 'struct' ? m.value.layout.filter((f) => isSpinLock(f.type)).length : 0;
    if (m.kind !== 'hash' && m.kind !== 'array') out.push(diag.badLockUse(at, `a ${m.kind} map cannot hold a bpf_spin_lock (only hash and array maps)`));
    else if (topLevel !== 1 || m.value.kind !== 'struct' || m.value.layout.some((f) => !isSpinLock(f.type) && holdsLock(f.type)))
      out.push(diag.badLockUse(at, 'a map value holds one bpfSpinLock, as a field of the value struct itself (not nested, not in an array)'));
  }
  return out;
}
