// `npm run bench`'s own BPF programs (bench/kernel/*.c): they build with clang-19, load through
// runtime/loader, and the bare-call programs really compute AES — each one's output in the
// per-CPU scratch buffer equals node:crypto's aes-128-ecb of the same bytes, so what the bench
// times is the ecb(aes) / ecb(aes-generic) kfunc call. Also: the engine hook says "unavailable"
// (never a number) when no engine object is built.
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bareCallProgram,
  BENCH_KEY,
  benchFrame,
  buildBenchObjects,
  createCryptoCtx,
  loadBenchObjects,
  PACKET_SIZES,
  readScratch,
  roundToBlock,
  scratchValue,
  SCRATCH_BYTES,
  timeProgram,
  type BenchObjects,
} from '../bench/kernel/objects.ts';
import { engineBench } from '../scripts/bench-engine.ts';
import { all, describeWith, hasTool, kernelAtLeast, kernelBpf } from './support/env.ts';

const aes128ecb = (key: Buffer, data: Buffer): Buffer => createCipheriv('aes-128-ecb', key, null).setAutoPadding(false).update(data);

describe('bench helpers', () => {
  it('rounds packet sizes up to the AES block as the engine must', () => {
    expect(PACKET_SIZES.map(roundToBlock)).toEqual([64, 512, 1408]);
    expect(Math.max(...PACKET_SIZES.map(roundToBlock))).toBe(SCRATCH_BYTES);
  });

  it('builds frames of exactly the asked size', () => {
    for (const n of PACKET_SIZES) expect(benchFrame(n).length).toBe(n);
  });

});

describeWith(all(kernelBpf(), kernelAtLeast(6, 10, 'bpf_crypto kfuncs with the ctx as a kptr')), 'the engine hook of npm run bench', () => {
  it('measures egress and ingress per packet on packets the engine really encrypted and decrypted', { timeout: 120_000 }, async () => {
    const r = await engineBench({ sizes: PACKET_SIZES, time: () => 1, frame: benchFrame, root: join(import.meta.dirname, '..') });
    expect('unavailable' in r ? r.unavailable : '').toBe('');
    if ('egressNs' in r) {
      for (const n of PACKET_SIZES) {
        expect(r.egressNs[n]).toBeGreaterThan(0);
        expect(r.ingressNs[n]).toBeGreaterThan(0);
      }
      expect(typeof r.attach).toBe('function');
    }
  });
});

describeWith(all(kernelBpf(), kernelAtLeast(6, 10, 'bpf_crypto kfuncs with the ctx as a kptr'), hasTool('clang-19')), 'bench programs in the kernel', () => {
  let dir: string;
  let objs: BenchObjects | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-bench-'));
    objs = loadBenchObjects(buildBenchObjects(dir), BENCH_KEY);
  });
  afterAll(() => {
    objs?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the no-op program loads and returns TC_ACT_OK under repeat', () => {
    const t = timeProgram(objs!.noop, 'noop', benchFrame(64), 50, 1);
    expect(t.retval).toBe(0);
    expect(t.ns).toBeGreaterThanOrEqual(0);
  });

  for (const algo of ['aes', 'aes_generic'] as const) {
    for (const n of PACKET_SIZES.map(roundToBlock)) {
      const program = bareCallProgram(algo, n);
      it(`${program}: one bpf_crypto_encrypt over ${n} scratch bytes = node:crypto aes-128-ecb`, () => {
        const o = objs!;
        const input = randomBytes(SCRATCH_BYTES);
        o.aesCall.map('scratch_map').update(Buffer.alloc(4), scratchValue(input)); // out zeroed on every CPU
        const t = timeProgram(o.aesCall, program, benchFrame(64), 1, 1);
        expect(t.retval).toBe(0);
        const written = readScratch(o.aesCall).filter((c) => c.out.some((b) => b !== 0));
        expect(written).toHaveLength(1); // the CPU that ran it
        const [cpu] = written;
        expect(cpu.in.equals(input)).toBe(true); // input untouched
        expect(cpu.out.subarray(0, n).toString('hex')).toBe(aes128ecb(BENCH_KEY, input.subarray(0, n)).toString('hex'));
        expect(cpu.out.subarray(n).every((b) => b === 0)).toBe(true); // exactly n bytes, no more
        // and it runs under repeat (the bench's mode), still succeeding
        expect(timeProgram(o.aesCall, program, benchFrame(n === 1408 ? 1400 : n), 20, 1).retval).toBe(0);
      });
    }
  }

  it('a second setup_ctx replaces the context (the old one is released): SP 800-38A F.1.1 under the new key', () => {
    const o = objs!;
    const other = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');
    createCryptoCtx(o.aesCall, 'aes', other);
    try {
      const input = Buffer.from('6bc1bee22e409f96e93d7e117393172a', 'hex'); // FIPS-197 / SP 800-38A F.1.1
      o.aesCall.map('scratch_map').update(Buffer.alloc(4), scratchValue(input));
      expect(timeProgram(o.aesCall, 'aes_64', benchFrame(64), 1, 1).retval).toBe(0);
      const [cpu] = readScratch(o.aesCall).filter((c) => c.out.some((b) => b !== 0));
      expect(cpu.out.subarray(0, 16).toString('hex')).toBe('3ad77bb40d7a3660a89ecaf32466ef97');
    } finally {
      createCryptoCtx(o.aesCall, 'aes', BENCH_KEY);
    }
  });
});
