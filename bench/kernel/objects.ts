// The bench's own BPF objects (bench/kernel/*.c): built with clang-19, loaded through
// runtime/loader as private instances (no pinning), and timed with BPF_PROG_TEST_RUN.
// Shared by scripts/bench.ts and test/bench.test.ts.
//
//   noop.o      noop                                   — a tc program that returns TC_ACT_OK
//   aes_call.o  setup_ctx (syscall, sleepable)         — creates a crypto ctx into ctx_map[slot]
//               aes_<N>, aes_generic_<N> (tc)          — one bpf_crypto_encrypt over N bytes of
//                                                        scratch_map (per-CPU {in[1408], out[1408]})
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadObject, type BpfObject } from '../../runtime/loader/index.ts';
import { progTestRun } from '../../runtime/sys/prog.ts';
import { possibleCpus } from '../../runtime/sys/map.ts';

export const KERNEL_DIR = dirname(fileURLToPath(import.meta.url));

/** Packet sizes of issue 5's bench. */
export const PACKET_SIZES = [64, 512, 1400] as const;
/** Bytes the engine encrypts for a packet of `bytes`: rounded up to the AES block (16). */
export const roundToBlock = (bytes: number): number => Math.ceil(bytes / 16) * 16;
/** Largest N aes_call.c has a program for (its SCRATCH_BYTES). */
export const SCRATCH_BYTES = 1408;

/** The algorithms aes_call.c keeps a context for: slot → crypto API name. */
export const ALGOS = { aes: { slot: 0, algo: 'ecb(aes)' }, aes_generic: { slot: 1, algo: 'ecb(aes-generic)' } } as const;
export type AlgoName = keyof typeof ALGOS;
/** Program name in aes_call.o for one bare call of `algo` over `n` bytes (n ∈ 64, 512, 1408). */
export const bareCallProgram = (algo: AlgoName, n: number): string => `${algo}_${n}`;

/** A fixed, non-secret benchmark key (AES-128). */
export const BENCH_KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

const multiarch = (): string => `/usr/include/${execFileSync('uname', ['-m']).toString().trim()}-linux-gnu`;

/** clang-19 -O2 -g -target bpf; returns the paths of noop.o and aes_call.o under outDir. */
export function buildBenchObjects(outDir: string): { noop: string; aesCall: string } {
  mkdirSync(outDir, { recursive: true });
  const build = (name: string): string => {
    const out = join(outDir, `bench-${name}.o`);
    try {
      execFileSync('clang-19', ['-O2', '-g', '-Wall', '-target', 'bpf', `-I${multiarch()}`, '-c', join(KERNEL_DIR, `${name}.c`), '-o', out], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`clang-19 ${name}.c: ${err.stderr?.toString().trim() || err.message}`);
    }
    return out;
  };
  return { noop: build('noop'), aesCall: build('aes_call') };
}

/** struct setup_args of aes_call.c: algo[32] | key[32] | key_len u32 | slot u32 | err s32 | pad. */
function setupArgs(algo: string, key: Buffer, slot: number): Buffer {
  const b = Buffer.alloc(80);
  if (algo.length > 31) throw new Error(`algo name too long: ${algo}`);
  b.write(algo, 0, 'latin1');
  if (key.length > 32) throw new Error(`key too long: ${key.length} bytes`);
  key.copy(b as Uint8Array, 32);
  b.writeUInt32LE(key.length, 64);
  b.writeUInt32LE(slot, 68);
  return b;
}

/** Create the ctx for `algo` in aes_call.o's ctx_map through the sleepable syscall program. */
export function createCryptoCtx(obj: BpfObject, algo: AlgoName, key: Buffer = BENCH_KEY): void {
  const { slot, algo: name } = ALGOS[algo];
  const args = setupArgs(name, key, slot);
  obj.program('setup_ctx').run({ ctxIn: args });
  const err = args.readInt32LE(72);
  if (err !== 0) throw new Error(`bpf_crypto_ctx_create(skcipher, ${name}): errno ${-err}`);
}

export interface BenchObjects {
  noop: BpfObject;
  aesCall: BpfObject;
  close(): void;
}

/** Load both objects (private instances: pinning off, nothing left in bpffs) and create the
 *  ecb(aes) and ecb(aes-generic) contexts. The caller closes them. */
export function loadBenchObjects(paths: { noop: string; aesCall: string }, key: Buffer = BENCH_KEY): BenchObjects {
  const noop = loadObject(paths.noop, { pinning: false });
  let aesCall: BpfObject | undefined;
  try {
    aesCall = loadObject(paths.aesCall, { pinning: false });
    for (const algo of Object.keys(ALGOS) as AlgoName[]) createCryptoCtx(aesCall, algo, key);
  } catch (e) {
    aesCall?.close();
    noop.close();
    throw e;
  }
  const a = aesCall;
  return {
    noop,
    aesCall: a,
    close() {
      a.close();
      noop.close();
    },
  };
}

/** Value bytes of scratch_map for every CPU: `input` in in[0..), zeros elsewhere. */
export function scratchValue(input: Buffer): Buffer {
  const stride = Math.ceil((2 * SCRATCH_BYTES) / 8) * 8;
  const all = Buffer.alloc(stride * possibleCpus());
  for (let cpu = 0; cpu < possibleCpus(); cpu++) input.copy(all as Uint8Array, cpu * stride, 0, Math.min(input.length, SCRATCH_BYTES));
  return all;
}

/** scratch_map's per-CPU values, split as {in, out} per CPU. */
export function readScratch(obj: BpfObject): { in: Buffer; out: Buffer }[] {
  const m = obj.map('scratch_map');
  const v = m.lookup(Buffer.alloc(4));
  if (!v) throw new Error('scratch_map[0] missing');
  const stride = Math.ceil(m.valueSize / 8) * 8;
  return Array.from({ length: v.length / stride }, (_, cpu) => ({
    in: v.subarray(cpu * stride, cpu * stride + SCRATCH_BYTES),
    out: v.subarray(cpu * stride + SCRATCH_BYTES, cpu * stride + 2 * SCRATCH_BYTES),
  }));
}

/** A minimal Ethernet + IPv4 + UDP frame of exactly `bytes` (≥ 42), payload a counting pattern.
 *  The bare-call and no-op programs ignore it; it is what BPF_PROG_TEST_RUN hands them. */
export function benchFrame(bytes: number): Buffer {
  const f = Buffer.alloc(Math.max(bytes, 42));
  Buffer.from('02000000000202000000000108004500', 'hex').copy(f as Uint8Array, 0);
  f.writeUInt16BE(f.length - 14, 16); // IPv4 total length
  f[22] = 64; // TTL
  f[23] = 17; // UDP
  Buffer.from([10, 251, 1, 2, 10, 251, 2, 2]).copy(f as Uint8Array, 26);
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(5201, 36);
  f.writeUInt16BE(f.length - 34, 38);
  for (let i = 42; i < f.length; i++) f[i] = i & 0xff;
  return f;
}

export interface Timing {
  /** Mean ns per run over `repeat` runs, best of `rounds` (the kernel averages each round). */
  ns: number;
  retval: number;
}

/** BPF_PROG_TEST_RUN with repeat: the best (lowest) kernel-averaged ns/run over `rounds` rounds.
 *  Throws when the program's return value is not `expectRetval` (it would time a bail-out). */
export function timeProgram(obj: BpfObject, program: string, dataIn: Buffer, repeat: number, rounds = 3, expectRetval = 0): Timing {
  const fd = obj.program(program).fd;
  let best = Infinity;
  let retval = 0;
  for (let r = 0; r < rounds; r++) {
    const res = progTestRun(fd, { dataIn, repeat, dataSizeOut: dataIn.length + 256 });
    retval = res.retval;
    if (retval !== expectRetval) throw new Error(`${program}: returned ${retval}, expected ${expectRetval}`);
    best = Math.min(best, res.duration);
  }
  return { ns: best, retval };
}
