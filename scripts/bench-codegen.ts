// npm run bench:codegen — code size of our compiler against clang: every program in bench/ is
// written in the DSL (bench/dsl/NAME.ts) and in C (bench/c/NAME.c, clang-19 -O2 -g -target bpf).
// Prints, per program, instruction slots (program + linked functions, LD_IMM64 = 2) and the
// verifier's processed-instruction count (verified_insns; needs root), each with ours/clang; then
// the cold compile time of the largest DSL program (a fresh process), and last the line
// `total instructions ours/clang: R`.
//
//	tsx scripts/bench-codegen.ts [--no-verifier] [NAME...]
//	tsx scripts/bench-codegen.ts --compile-one NAME   (internal: one cold compile, prints ms)
import { execFileSync } from 'node:child_process';
import { benchNames, compileC, compileDsl, slots, verifiedInsns } from '../bench/harness.ts';

const args = process.argv.slice(2);
if (args[0] === '--compile-one') {
  const { ms } = compileDsl(args[1]!);
  console.log(ms.toFixed(0));
  process.exit(0);
}

const noVerifier = args.includes('--no-verifier') || process.getuid?.() !== 0;
const only = args.filter((a) => !a.startsWith('--'));
const names = benchNames().filter((n) => only.length === 0 || only.includes(n));
const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : '-');
const pad = (s: string | number, n: number): string => String(s).padStart(n);

if (noVerifier) console.log('verified_insns: skipped (needs root and bpf(2); or --no-verifier given)');
console.log(`${'program'.padEnd(14)} ${pad('ours', 6)} ${pad('clang', 6)} ${pad('ratio', 6)}   ${pad('v.ours', 7)} ${pad('v.clang', 7)} ${pad('ratio', 6)}`);
let totalOurs = 0;
let totalClang = 0;
let vOurs = 0;
let vClang = 0;
let largest = { name: '', slots: -1 };
const failures: string[] = [];
for (const name of names) {
  const dsl = compileDsl(name).object;
  const c = compileC(name).object;
  const a = slots(dsl, name);
  const b = slots(c, name);
  totalOurs += a;
  totalClang += b;
  if (a > largest.slots) largest = { name, slots: a };
  let va = '-';
  let vb = '-';
  let vr = '-';
  if (!noVerifier) {
    const verified = (o: typeof dsl, side: string): number | undefined => {
      try {
        return verifiedInsns(o, name);
      } catch (e) {
        failures.push(`${name} (${side}): ${(e as Error).message.split('\n')[0]}`);
        return undefined;
      }
    };
    const x = verified(dsl, 'dsl');
    const y = verified(c, 'clang');
    if (x !== undefined && y !== undefined) {
      vOurs += x;
      vClang += y;
    }
    [va, vb, vr] = [String(x ?? 'FAIL'), String(y ?? 'FAIL'), x !== undefined && y !== undefined ? ratio(x, y) : '-'];
  }
  console.log(`${name.padEnd(14)} ${pad(a, 6)} ${pad(b, 6)} ${pad(ratio(a, b), 6)}   ${pad(va, 7)} ${pad(vb, 7)} ${pad(vr, 6)}`);
}
console.log(`${'total'.padEnd(14)} ${pad(totalOurs, 6)} ${pad(totalClang, 6)} ${pad(ratio(totalOurs, totalClang), 6)}   ${pad(noVerifier ? '-' : vOurs, 7)} ${pad(noVerifier ? '-' : vClang, 7)} ${pad(noVerifier ? '-' : ratio(vOurs, vClang), 6)}`);

for (const f of failures) console.log(`verifier refused ${f}`);

// Cold compile: a fresh process, so the TypeScript compiler API and our modules start cold.
const t0 = performance.now();
const inner = execFileSync(process.execPath, [...process.execArgv, import.meta.filename, '--compile-one', largest.name], { encoding: 'utf8' }).trim();
const wall = performance.now() - t0;
console.log(`cold compile of the largest program (${largest.name}, ${largest.slots} insns): ${inner} ms in compileFile, ${wall.toFixed(0)} ms wall for the whole process`);
console.log(`total instructions ours/clang: ${ratio(totalOurs, totalClang)}`);
