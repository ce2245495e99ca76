// Differential tests of the DSL compiler: every program in the corpus runs as TypeScript in
// Node, compiled in our VM, and compiled in the kernel (BPF_PROG_TEST_RUN), on the same packets;
// return value, packet bytes and map contents must be identical.

import { fileURLToPath } from 'node:url';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelBpf } from './support/env.ts';
import { compileOrThrow, runKernel, runNode, runVm, setupPrograms } from './compiler/harness.ts';

const corpusDir = join(fileURLToPath(new URL('.', import.meta.url)), 'compiler', 'corpus');
const corpus = readdirSync(corpusDir).filter((f) => f.endsWith('.ts')).sort();
const kernel = kernelBpf();
if (!kernel.ok) console.warn(`SKIP kernel runs of the compiler corpus: ${kernel.reason}`);

/** Deterministic test packets: Ethernet frames of several sizes and EtherTypes. */
export function testPackets(): Uint8Array[] {
  let x = 0x12345678;
  const rnd = (): number => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
  const frame = (len: number, ethertype: number): Uint8Array => {
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = rnd() & 0xff;
    b[12] = ethertype >> 8;
    b[13] = ethertype & 0xff;
    if (ethertype === 0x0800 && len >= 34) b[14] = 0x45;
    return b;
  };
  return [frame(34, 0x0800), frame(42, 0x0806), frame(60, 0x0800), frame(64, 0x86dd), frame(128, 0x0800), frame(300, 0x0800)];
}

describe('compiler corpus: Node vs VM vs kernel', () => {
  for (const file of corpus) {
    it(file, async () => {
      const path = join(corpusDir, file);
      const compiled = compileOrThrow(path);
      expect(compiled.object.programs.length).toBeGreaterThan(0);
      const setup = setupPrograms(compiled.object);
      for (const prog of compiled.object.programs) {
        if (setup.includes(prog.name)) continue; // syscall programs run before each packet program
        const kind = prog.progType === 6 ? 'xdp' : 'tc';
        for (const [n, packet] of testPackets().entries()) {
          const where = `${file}: ${prog.name}: packet ${n} (${packet.length} bytes)`;
          const node = await runNode(path, prog.name, packet, kind, setup, compiled);
          const vm = runVm(compiled.object, prog.name, packet);
          expect(vm, `${where}: VM vs Node`).toEqual(node);
          if (kernel.ok) expect(runKernel(compiled.object, prog.name, packet), `${where}: kernel vs Node`).toEqual(node);
        }
      }
    });
  }
});

// Programs whose helpers the VM does not model as this kernel does yet: Node vs kernel only.
const kernelOnlyDir = join(fileURLToPath(new URL('.', import.meta.url)), 'compiler', 'kernel-only');
describe.skipIf(!kernel.ok)('compiler: Node vs kernel (helpers the VM lags on)', () => {
  for (const file of readdirSync(kernelOnlyDir).filter((f) => f.endsWith('.ts')).sort()) {
    it(file, async () => {
      const path = join(kernelOnlyDir, file);
      const compiled = compileOrThrow(path);
      for (const prog of compiled.object.programs) {
        for (const [n, packet] of testPackets().entries()) {
          const node = await runNode(path, prog.name, packet);
          expect(runKernel(compiled.object, prog.name, packet), `${file}: ${prog.name}: packet ${n}: kernel vs Node`).toEqual(node);
        }
      }
    });
  }
});
