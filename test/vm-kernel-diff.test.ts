// Differential test: the userspace VM against the kernel's BPF_PROG_TEST_RUN. Random programs
// (seed printed on failure) and hand-written ones must give identical return values and output
// packets in both.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encode, type Instruction } from '../compiler/asm/instruction.ts';
import { formatListing } from '../compiler/asm/listing.ts';
import { progLoad, progTestRun, VerifierError } from '../runtime/sys/index.ts';
import { runInstructions } from '../runtime/vm/index.ts';
import { describeWith, kernelBpf } from './support/env.ts';
import { randomPacket, randomProgram } from './support/random-programs.ts';

const SCHED_CLS = 3;
const RANDOM_PROGRAMS = 60;
const BASE_SEED = Number(process.env.EBPF_TS_SEED ?? 0x1f2e3d);

interface Outcome {
  retval: number;
  packet: string;
}

function inKernel(insns: Instruction[], packet: Buffer): Outcome {
  let loaded;
  try {
    loaded = progLoad({ type: SCHED_CLS, insns: encode(insns), license: 'GPL', name: 'ets_diff' });
  } catch (err) {
    const log = err instanceof VerifierError ? `\n${err.log.slice(-20).join('\n')}` : '';
    throw new Error(`kernel rejected the program: ${(err as Error).message}${log}\n${formatListing(insns)}`);
  }
  try {
    const r = progTestRun(loaded.fd, { dataIn: packet });
    return { retval: r.retval >>> 0, packet: r.dataOut.toString('hex') };
  } finally {
    loaded.fd.close();
  }
}

function inVm(insns: Instruction[], packet: Buffer): Outcome {
  const r = runInstructions(insns, { kind: 'tc', packet });
  return { retval: Number(r.retval & 0xffffffffn), packet: r.packet.toString('hex') };
}

describeWith(kernelBpf(), 'VM vs kernel BPF_PROG_TEST_RUN', () => {
  for (let i = 0; i < RANDOM_PROGRAMS; i++) {
    const seed = BASE_SEED + i;
    it(`random program, seed ${seed}`, () => {
      const insns = randomProgram(seed);
      const packet = randomPacket(seed);
      const kernel = inKernel(insns, packet);
      const vm = inVm(insns, packet);
      expect(vm, `seed ${seed} (rerun with EBPF_TS_SEED=${seed})\n${formatListing(insns)}`).toEqual(kernel);
    });
  }
});
