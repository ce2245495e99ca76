// Every DSL program under examples/ compiles without diagnostics, goes through the ELF writer and
// back, and passes the real kernel verifier through the loader (BTF, func info and line info).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileFile, formatDiagnostic } from '../compiler/compile.ts';
import { openObject } from '../runtime/loader/index.ts';
import { kernelBpf } from './support/env.ts';

const examplesDir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'examples');
const examples = readdirSync(examplesDir).filter((f) => f.endsWith('.ts')).sort();
const kernel = kernelBpf();
if (!kernel.ok) console.warn(`SKIP kernel verification of examples/: ${kernel.reason}`);

describe('examples/: compile and pass the kernel verifier', () => {
  it('has examples', () => expect(examples.length).toBeGreaterThan(0));
  for (const file of examples) {
    it(file, () => {
      const r = compileFile(join(examplesDir, file), { elf: true });
      expect(r.diagnostics.map(formatDiagnostic)).toEqual([]);
      expect(r.object.programs.length).toBeGreaterThan(0);
      if (!kernel.ok) return;
      const obj = openObject(r.elf!, { name: file.replace(/\.ts$/, '') }).prepare({ pinning: false });
      try {
        expect(obj.warnings, 'the kernel must take the object BTF').toEqual([]);
        obj.load();
        for (const p of r.object.programs) {
          const handle = obj.program(p.name);
          expect(handle.ext.funcInfo, `${p.name}: func info`).toBeTruthy();
          expect(handle.ext.lineInfo, `${p.name}: line info`).toBeTruthy();
        }
      } finally {
        obj.close();
      }
    });
  }
});
