// Randomly generated DSL programs, run three ways (Node, VM, kernel). A failure names the seed;
// regenerate it with generateProgram(seed) from test/compiler/generate.ts.

import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelBpf } from './support/env.ts';
import { compileOrThrow, runKernel, runNode, runVm } from './compiler/harness.ts';
import { generateProgram, rng } from './compiler/generate.ts';

const COUNT = Number(process.env.EBPF_TS_RANDOM_PROGRAMS ?? 150);
const BASE_SEED = Number(process.env.EBPF_TS_SEED ?? 20240601);
const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-gen-'));
const dsl = relative(dir, resolve(fileURLToPath(new URL('.', import.meta.url)), '../compiler/dsl/index.ts'));
const kernel = kernelBpf();
if (!kernel.ok) console.warn(`SKIP kernel runs of generated programs: ${kernel.reason}`);

function packet(seed: number): Uint8Array {
  const r = rng(seed ^ 0x5bd1e995);
  const b = new Uint8Array(96);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
  b[12] = 0x08; // IPv4 EtherType: the test run needs a plausible frame
  b[13] = 0x00;
  b[14] = 0x45;
  return b;
}

describe('generated programs: Node vs VM vs kernel', () => {
  for (let n = 0; n < COUNT; n++) {
    const seed = BASE_SEED + n;
    it(`seed ${seed}`, async () => {
      const path = join(dir, `gen-${seed}.ts`);
      writeFileSync(path, generateProgram(seed, dsl));
      const compiled = compileOrThrow(path);
      const input = packet(seed);
      const node = await runNode(path, 'generated', input);
      expect(runVm(compiled.object, 'generated', input), `seed ${seed}: VM vs Node (${path})`).toEqual(node);
      if (kernel.ok) expect(runKernel(compiled.object, 'generated', input), `seed ${seed}: kernel vs Node (${path})`).toEqual(node);
    });
  }
});
