// The codegen benchmark compares equivalent programs: every bench/dsl/NAME.ts and bench/c/NAME.c
// pair compiles, both pass the kernel verifier, and BPF_PROG_TEST_RUN gives the same return value,
// packet and map contents for each of a few packets (run in sequence, so map state carries over).
import { expect, it } from 'vitest';
import { benchNames, compileC, compileDsl, load, observe, PACKETS, slots } from '../bench/harness.ts';
import { all, describeWith, hasTool, kernelBpf } from './support/env.ts';

const names = benchNames();

it('has at least ten benchmark pairs', () => {
  expect(names.length).toBeGreaterThanOrEqual(10);
});

describeWith(all(kernelBpf(), hasTool('clang-19')), 'bench pairs behave the same', () => {
  for (const name of names) {
    it(name, { timeout: 60_000 }, () => {
      const dsl = compileDsl(name).object;
      const c = compileC(name).object;
      expect(slots(dsl, name)).toBeGreaterThan(0);
      expect(slots(c, name)).toBeGreaterThan(0);
      const a = load(dsl, name);
      try {
        const b = load(c, name);
        try {
          for (const [label, packet] of Object.entries(PACKETS)) {
            expect(observe(a, name, packet), `${name} on ${label}`).toEqual(observe(b, name, packet));
          }
        } finally {
          b.close();
        }
      } finally {
        a.close();
      }
    });
  }
});
