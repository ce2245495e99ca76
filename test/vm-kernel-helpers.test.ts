// Differential test of helpers, maps and calls: hand-written tc programs run in the kernel
// (BPF_PROG_TEST_RUN, maps from runtime/sys) and in the VM over the same frames, one after the
// other on the same maps. After every frame the return value, the output packet and the
// contents of every map (ring buffers: the records) must be identical.
//
// Helper results that a program wants compared are stored into the `out` array (save(i) below),
// so a wrong errno shows up as a map difference with its index, not as a folded number.
import { expect, it } from 'vitest';
import { assemble } from '../compiler/asm/assembler.ts';
import { encode, isWide, slotOffsets, type Instruction } from '../compiler/asm/instruction.ts';
import { resolve } from '../compiler/asm/labels.ts';
import { formatListing } from '../compiler/asm/listing.ts';
import { CallSrc, PseudoSrc } from '../compiler/asm/opcode.ts';
import { Btf } from '../compiler/btf/btf.ts';
import { addFunc, addInt } from '../compiler/btf/builders.ts';
import { Linkage } from '../compiler/btf/types.ts';
import { bpf_func_id, bpf_map_type as T, BPF_F_NO_PREALLOC } from '../runtime/sys/constants.ts';
import { btfLoad, progLoad, progTestRun, VerifierError, type FD } from '../runtime/sys/index.ts';
import { runInstructions } from '../runtime/vm/index.ts';
import { describeWith, kernelBpf } from './support/env.ts';
import {
  createKernelMaps,
  createVmMaps,
  dumpKernelMap,
  dumpVmMap,
  inetChecksum,
  ipv4Frame,
  ipv6Frame,
  type MapDecl,
  type MapDump,
} from './fixtures/diff/harness.ts';

const SCHED_CLS = 3;
/** Frames in run order; sizes repeat so map state from an earlier run is exercised. */
const SIZES = [60, 64, 128, 1500, 60, 64];

interface Case {
  name: string;
  text: string;
  maps?: MapDecl[];
  frame?: (size: number) => Buffer;
  sizes?: number[];
  /** Extra checks on the (agreed) output, independent of both implementations. */
  check?: (outcome: Outcome, input: Buffer) => void;
}

interface Outcome {
  retval?: number;
  packet?: string;
  maps?: Record<string, MapDump>;
  error?: string;
}

// ---- program text ---------------------------------------------------------------------------------

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, n));
  return b;
};
const ip4 = (a: string): Buffer => Buffer.from(a.split('.').map(Number));
const lpmKey = (len: number, a: string): Buffer => Buffer.concat([u32(len), ip4(a)] as Uint8Array[]);

const OUT: MapDecl = { name: 'out', type: T.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 16 };

/** out[index] = r0 (clobbers r1–r5 and the stack at r10-64..r10-49). */
const save = (index: number): string => `
  *(u64 *)(r10 - 56) = r0
  *(u32 *)(r10 - 60) = ${index}
  r1 = out ll
  r2 = r10
  r2 += -60
  r3 = r10
  r3 += -56
  r4 = 0
  call bpf_map_update_elem`;

/** r2 = data, r3 = data_end from the __sk_buff in r6; exit with TC_ACT_SHOT unless `need` bytes are there. */
const packet = (need: number, fail = 'shot'): string => `
  r2 = *(u32 *)(r6 + 76)
  r3 = *(u32 *)(r6 + 80)
  r4 = r2
  r4 += ${need}
  if r4 > r3 goto ${fail}`;

const SHOT = `
shot:
  r0 = 2
  exit`;

// bpf_skb_adjust_room flags (linux/bpf.h)
const ADJ = { FIXED_GSO: 1, ENCAP_L3_IPV4: 2, ENCAP_L3_IPV6: 4, ENCAP_L4_GRE: 8, ENCAP_L4_UDP: 16, NO_CSUM_RESET: 32, ENCAP_L2_ETH: 64, DECAP_L3_IPV4: 128, DECAP_L3_IPV6: 256 };
const l2Len = (n: number): bigint => BigInt(n) << 56n;
const NET = 0;
const MAC = 1;

/** adjust_room(ctx, diff, mode, flags) then save(index). */
const adjust = (index: number, diff: number, mode: number, flags: bigint | number): string => `
  r1 = r6
  r2 = ${diff}
  r3 = ${mode}
  r4 = ${BigInt(flags)} ll
  call bpf_skb_adjust_room${save(index)}`;

/** Replace `call bpf_<helper>` by the helper id, so programs read like C. */
function helperIds(text: string): string {
  return text.replace(/call bpf_(\w+)/g, (all, name: string) => {
    const id = (bpf_func_id as Record<string, number>)[`BPF_FUNC_${name}`];
    if (id === undefined) throw new Error(`unknown helper ${name}`);
    return `call ${id}`;
  });
}

/** Assemble; `rX = label ll` on a label of the text becomes a function pointer (ld_pseudo src 4). */
function build(text: string): Instruction[] {
  const { insns, labels } = assemble(helperIds(text), { allowExternal: true });
  const marked = insns.map((insn) => (isWide(insn) && insn.reference !== undefined && labels.has(insn.reference) ? { ...insn, src: PseudoSrc.FUNC } : insn));
  return resolve(marked, labels);
}

/** Slots where functions start: the entry, local call targets and function pointers. */
function functionStarts(insns: readonly Instruction[]): number[] {
  const slots = slotOffsets(insns);
  const starts = new Set([0]);
  insns.forEach((insn, i) => {
    const local = insn.opcode === 0x85 && insn.src === CallSrc.LOCAL;
    if (local || (isWide(insn) && insn.src === PseudoSrc.FUNC)) starts.add(slots[i]! + insn.imm + 1);
  });
  return [...starts].sort((a, b) => a - b);
}

/** BTF with one static `int fn(int)` per function and its func_info: the verifier wants it for
 *  callbacks (bpf_loop says "missing btf func_info" otherwise, Linux 6.18). */
function funcInfoFor(insns: readonly Instruction[]): { btf: FD; funcInfo: Buffer } | undefined {
  const starts = functionStarts(insns);
  if (starts.length === 1) return undefined;
  const btf = new Btf();
  const int = addInt(btf, 'int', 4, true);
  const funcInfo = Buffer.alloc(8 * starts.length);
  starts.forEach((slot, i) => {
    funcInfo.writeUInt32LE(slot, 8 * i);
    funcInfo.writeUInt32LE(addFunc(btf, `f${i}`, int, [{ name: 'a', type: int }], i === 0 ? Linkage.GLOBAL : Linkage.STATIC), 8 * i + 4);
  });
  return { btf: btfLoad(btf.encode()).fd, funcInfo };
}

// ---- running both ways ----------------------------------------------------------------------------

function inKernel(c: Case, insns: Instruction[], frames: Buffer[]): Outcome[] {
  const maps = createKernelMaps(c.maps ?? []);
  try {
    const patched = insns.map((insn) => {
      const map = insn.reference === undefined ? undefined : maps.get(insn.reference);
      return isWide(insn) && map ? { ...insn, src: PseudoSrc.MAP_FD, imm: map.fd.value, imm2: 0 } : insn;
    });
    let loaded;
    const info = funcInfoFor(insns);
    try {
      loaded = progLoad({ type: SCHED_CLS, insns: encode(patched), license: 'GPL', name: 'ets_helpers', btfFd: info?.btf, funcInfo: info?.funcInfo });
    } catch (err) {
      const log = err instanceof VerifierError ? `\n${err.log.slice(-25).join('\n')}` : '';
      throw new Error(`kernel rejected "${c.name}": ${(err as Error).message}${log}\n${formatListing(insns)}`);
    } finally {
      info?.btf.close();
    }
    try {
      return frames.map((frame) => {
        const r = progTestRun(loaded.fd, { dataIn: frame });
        const dumps: Record<string, MapDump> = {};
        for (const [name, m] of maps) dumps[name] = dumpKernelMap(m);
        return { retval: r.retval >>> 0, packet: r.dataOut.toString('hex'), maps: dumps };
      });
    } finally {
      loaded.fd.close();
    }
  } finally {
    for (const m of maps.values()) m.fd.close();
  }
}

function inVm(c: Case, insns: Instruction[], frames: Buffer[]): Outcome[] {
  const maps = createVmMaps(c.maps ?? []);
  return frames.map((frame) => {
    try {
      const r = runInstructions(insns, { kind: 'tc', packet: frame, maps });
      const dumps: Record<string, MapDump> = {};
      for (const [name, m] of maps) dumps[name] = dumpVmMap(m);
      return { retval: Number(r.retval & 0xffffffffn), packet: r.packet.toString('hex'), maps: dumps };
    } catch (e) {
      return { error: (e as Error).message };
    }
  });
}

function differential(c: Case): void {
  const insns = build(c.text);
  const sizes = c.sizes ?? SIZES;
  const frames = sizes.map((size) => (c.frame ?? ipv4Frame)(size));
  const kernel = inKernel(c, insns, frames);
  const vm = inVm(c, insns, frames);
  for (let i = 0; i < frames.length; i++) {
    expect(vm[i], `${c.name}: frame ${i} (${sizes[i]} bytes), VM (received) vs kernel (expected)\n${formatListing(insns)}`).toEqual(kernel[i]);
    c.check?.(kernel[i]!, frames[i]!);
  }
}

// ---- the programs -----------------------------------------------------------------------------------

const CASES: Case[] = [
  {
    name: 'hash: count frames per length bucket (insert with BPF_NOEXIST, then atomic add)',
    maps: [{ name: 'counts', type: T.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 8 }],
    text: `
  r6 = r1
  r0 = *(u32 *)(r6 + 0)
  r0 >>= 6
  *(u32 *)(r10 - 4) = w0
  r1 = counts ll
  r2 = r10
  r2 += -4
  call bpf_map_lookup_elem
  if r0 != 0 goto have
  *(u64 *)(r10 - 16) = 1
  r1 = counts ll
  r2 = r10
  r2 += -4
  r3 = r10
  r3 += -16
  r4 = 1
  call bpf_map_update_elem
  r0 = 1
  exit
have:
  r1 = 1
  lock *(u64 *)(r0 + 0) += r1
  r0 = 2
  exit`,
  },
  {
    name: 'hash: update flags (NOEXIST, EXIST, F_LOCK, both) and delete errnos',
    maps: [{ name: 'h', type: T.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 8, entries: [[u32(7), u64(0x77n)]] }, OUT],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  *(u32 *)(r10 - 8) = w7
  *(u64 *)(r10 - 16) = r7
  r1 = h ll
  r2 = r10
  r2 += -8
  r3 = r10
  r3 += -16
  r4 = 1
  call bpf_map_update_elem${save(0)}
  r1 = h ll
  r2 = r10
  r2 += -8
  r3 = r10
  r3 += -16
  r4 = 1
  call bpf_map_update_elem${save(1)}
  w7 += 1
  *(u32 *)(r10 - 8) = w7
  r1 = h ll
  r2 = r10
  r2 += -8
  r3 = r10
  r3 += -16
  r4 = 2
  call bpf_map_update_elem${save(2)}
  r1 = h ll
  r2 = r10
  r2 += -8
  call bpf_map_delete_elem${save(3)}
  *(u32 *)(r10 - 8) = 7
  r1 = h ll
  r2 = r10
  r2 += -8
  call bpf_map_delete_elem${save(4)}
  r1 = h ll
  r2 = r10
  r2 += -8
  r3 = r10
  r3 += -16
  r4 = 4
  call bpf_map_update_elem${save(5)}
  r1 = h ll
  r2 = r10
  r2 += -8
  r3 = r10
  r3 += -16
  r4 = 3
  call bpf_map_update_elem${save(6)}
  r0 = 0
  exit`,
  },
  {
    name: 'hash: a full map answers -E2BIG; BPF_ANY on a present key still works',
    maps: [{ name: 'small', type: T.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 4, maxEntries: 3 }],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  *(u32 *)(r10 - 4) = w7
  *(u32 *)(r10 - 8) = w7
  r1 = small ll
  r2 = r10
  r2 += -4
  r3 = r10
  r3 += -8
  r4 = 0
  call bpf_map_update_elem
  exit`,
  },
  {
    name: 'array: index from the length, misses past max_entries, NOEXIST and out-of-range updates',
    maps: [{ name: 'arr', type: T.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 16, maxEntries: 3 }, OUT],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r8 = r7
  r8 %= 7
  *(u32 *)(r10 - 4) = w8
  r1 = arr ll
  r2 = r10
  r2 += -4
  call bpf_map_lookup_elem
  if r0 == 0 goto miss
  r1 = *(u64 *)(r0 + 0)
  r1 += r7
  *(u64 *)(r0 + 0) = r1
  r1 = *(u64 *)(r0 + 8)
  r1 += 1
  *(u64 *)(r0 + 8) = r1
  r0 = r8
  goto updates
miss:
  r0 = 0xdead
updates:${save(0)}
  *(u32 *)(r10 - 4) = 1
  *(u64 *)(r10 - 24) = r7
  *(u64 *)(r10 - 16) = 5
  r1 = arr ll
  r2 = r10
  r2 += -4
  r3 = r10
  r3 += -24
  r4 = 1
  call bpf_map_update_elem${save(1)}
  *(u32 *)(r10 - 4) = 3
  r1 = arr ll
  r2 = r10
  r2 += -4
  r3 = r10
  r3 += -24
  r4 = 0
  call bpf_map_update_elem${save(2)}
  *(u32 *)(r10 - 4) = 2
  r1 = arr ll
  r2 = r10
  r2 += -4
  r3 = r10
  r3 += -24
  r4 = 2
  call bpf_map_update_elem${save(3)}
  r1 = arr ll
  r2 = r10
  r2 += -4
  call bpf_map_delete_elem${save(4)}
  r0 = r8
  exit`,
  },
  {
    name: 'per-CPU array: packet and byte counters (compared as the sum over CPUs)',
    maps: [{ name: 'stats', type: T.BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, valueSize: 16, maxEntries: 2, entries: [[u32(1), Buffer.concat([u64(100n), u64(1n)] as Uint8Array[])]] }],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r8 = r7
  r8 &= 1
  *(u32 *)(r10 - 4) = w8
  r1 = stats ll
  r2 = r10
  r2 += -4
  call bpf_map_lookup_elem
  if r0 == 0 goto out
  r1 = *(u64 *)(r0 + 0)
  r1 += 1
  *(u64 *)(r0 + 0) = r1
  r1 = *(u64 *)(r0 + 8)
  r1 += r7
  *(u64 *)(r0 + 8) = r1
  r0 = *(u64 *)(r0 + 0)
out:
  exit`,
  },
  {
    name: 'LPM trie: longest prefix of dst and src, insert a /32 from the program, delete a /16',
    maps: [
      {
        name: 'routes',
        type: T.BPF_MAP_TYPE_LPM_TRIE,
        keySize: 8,
        valueSize: 4,
        maxEntries: 16,
        flags: BPF_F_NO_PREALLOC,
        entries: [
          [lpmKey(8, '10.0.0.0'), u32(1)],
          [lpmKey(16, '10.1.0.0'), u32(2)],
          [lpmKey(16, '192.168.0.0'), u32(3)],
          [lpmKey(24, '192.168.7.0'), u32(4)],
          [lpmKey(0, '0.0.0.0'), u32(5)],
        ],
      },
    ],
    frame: (size) => {
      const pairs: Record<number, [string, string]> = { 60: ['10.1.2.3', '192.168.1.1'], 64: ['10.9.9.9', '10.1.200.1'], 128: ['192.168.7.1', '8.8.8.8'], 1500: ['8.8.8.8', '10.1.2.3'] };
      const [dst, src] = pairs[size]!;
      return ipv4Frame(size, { dst, src });
    },
    text: `
  r6 = r1${packet(34)}
  r7 = *(u32 *)(r2 + 26)
  r8 = *(u32 *)(r2 + 30)
  *(u32 *)(r10 - 8) = 32
  *(u32 *)(r10 - 4) = w8
  r1 = routes ll
  r2 = r10
  r2 += -8
  call bpf_map_lookup_elem
  r9 = 0xff
  if r0 == 0 goto nodst
  r9 = *(u32 *)(r0 + 0)
nodst:
  *(u32 *)(r10 - 4) = w7
  r1 = routes ll
  r2 = r10
  r2 += -8
  call bpf_map_lookup_elem
  r1 = 0xff
  if r0 == 0 goto nosrc
  r1 = *(u32 *)(r0 + 0)
nosrc:
  r1 <<= 8
  r9 |= r1
  r1 = *(u32 *)(r6 + 0)
  *(u32 *)(r10 - 12) = w1
  r1 = routes ll
  r2 = r10
  r2 += -8
  r3 = r10
  r3 += -12
  r4 = 0
  call bpf_map_update_elem
  r0 &= 0xff
  r0 <<= 16
  r9 |= r0
  r1 = *(u32 *)(r6 + 0)
  if r1 < 100 goto done
  *(u32 *)(r10 - 8) = 16
  *(u32 *)(r10 - 4) = 0x10a
  r1 = routes ll
  r2 = r10
  r2 += -8
  call bpf_map_delete_elem
  r0 &= 0xff
  r0 <<= 24
  r9 |= r0
done:
  r0 = r9
  exit${SHOT}`,
  },
  {
    name: 'skb_load_bytes at fixed, end-relative and out-of-range offsets (dst zeroed on -EFAULT)',
    maps: [OUT],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r1 = r6
  r2 = 0
  r3 = r10
  r3 += -8
  r4 = 8
  call bpf_skb_load_bytes${save(0)}
  r0 = *(u64 *)(r10 - 8)${save(1)}
  r1 = r6
  r2 = 26
  r3 = r10
  r3 += -8
  r4 = 8
  call bpf_skb_load_bytes${save(2)}
  r0 = *(u64 *)(r10 - 8)${save(3)}
  r1 = r6
  r2 = r7
  r2 += -4
  r3 = r10
  r3 += -8
  r4 = 8
  call bpf_skb_load_bytes${save(4)}
  r0 = *(u64 *)(r10 - 8)${save(5)}
  r1 = r6
  r2 = r7
  r2 += -8
  r3 = r10
  r3 += -8
  r4 = 8
  call bpf_skb_load_bytes${save(6)}
  r0 = *(u64 *)(r10 - 8)${save(7)}
  r1 = r6
  r2 = 0x80000000 ll
  r3 = r10
  r3 += -8
  r4 = 1
  call bpf_skb_load_bytes${save(8)}
  r1 = r6
  r2 = r7
  r2 += -1
  r3 = r10
  r3 += -8
  r4 = 1
  call bpf_skb_load_bytes
  r0 = *(u8 *)(r10 - 8)
  exit`,
  },
  {
    name: 'skb_store_bytes: flags 0, INVALIDATE_HASH, RECOMPUTE_CSUM, bad flags, past the end',
    maps: [OUT],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r1 = 0x0102030405060708 ll
  *(u64 *)(r10 - 8) = r1
  r1 = r6
  r2 = 0
  r3 = r10
  r3 += -8
  r4 = 6
  r5 = 0
  call bpf_skb_store_bytes${save(0)}
  r1 = r6
  r2 = 6
  r3 = r10
  r3 += -8
  r4 = 6
  r5 = 2
  call bpf_skb_store_bytes${save(1)}
  r1 = r6
  r2 = 18
  r3 = r10
  r3 += -8
  r4 = 2
  r5 = 1
  call bpf_skb_store_bytes${save(2)}
  r1 = r6
  r2 = r7
  r2 += -4
  r3 = r10
  r3 += -8
  r4 = 8
  r5 = 0
  call bpf_skb_store_bytes${save(3)}
  r1 = r6
  r2 = 0
  r3 = r10
  r3 += -8
  r4 = 4
  r5 = 4
  call bpf_skb_store_bytes${save(4)}
  r1 = r6
  r2 = r7
  r2 += -8
  r3 = r10
  r3 += -8
  r4 = 8
  r5 = 3
  call bpf_skb_store_bytes${save(5)}
  r0 = *(u32 *)(r6 + 68)
  exit`,
  },
  {
    name: 'l3_csum_replace: TTL decrement (2 bytes), address rewrite (4), diff mode, errors',
    maps: [OUT],
    text: `
  r6 = r1${packet(34)}
  r7 = *(u16 *)(r2 + 22)
  r8 = r7
  r8 += -1
  *(u16 *)(r2 + 22) = w8
  r1 = r6
  r2 = 24
  r3 = r7
  r4 = r8
  r5 = 2
  call bpf_l3_csum_replace${save(0)}${packet(34)}
  r7 = *(u32 *)(r2 + 30)
  w8 = 0x0900000a
  *(u32 *)(r2 + 30) = w8
  r1 = r6
  r2 = 24
  r3 = r7
  r4 = r8
  r5 = 4
  call bpf_l3_csum_replace${save(1)}
  r1 = r6
  r2 = 24
  r3 = 0
  r4 = 0
  r5 = 0
  call bpf_l3_csum_replace${save(2)}
  r1 = r6
  r2 = 24
  r3 = 1
  r4 = 2
  r5 = 3
  call bpf_l3_csum_replace${save(3)}
  r1 = r6
  r2 = *(u32 *)(r6 + 0)
  r2 += -1
  r3 = 1
  r4 = 2
  r5 = 2
  call bpf_l3_csum_replace${save(4)}
  r1 = r6
  r2 = 24
  r3 = 1
  r4 = 2
  r5 = 0x12
  call bpf_l3_csum_replace${save(5)}
  r1 = r6
  r2 = 24
  r3 = 1
  r4 = 2
  r5 = 0
  call bpf_l3_csum_replace${save(6)}
  r0 = 0
  exit${SHOT}`,
    check: (o) => {
      const ip = Buffer.from(o.packet!, 'hex').subarray(14, 34);
      expect(inetChecksum(ip), 'IPv4 header checksum after TTL and address rewrite').toBe(0);
    },
  },
  {
    name: 'l4_csum_replace on UDP: port, pseudo-header address, MARK_MANGLED_0 on a zero checksum, errors',
    maps: [OUT],
    frame: (size) => ipv4Frame(size, { noUdpChecksum: size === 64 }),
    text: `
  r6 = r1${packet(42)}
  r7 = *(u16 *)(r2 + 36)
  w8 = 0x3412
  *(u16 *)(r2 + 36) = w8
  r1 = r6
  r2 = 40
  r3 = r7
  r4 = r8
  r5 = 0x22
  call bpf_l4_csum_replace${save(0)}${packet(42)}
  r7 = *(u32 *)(r2 + 26)
  w8 = 0x0101a8c0
  *(u32 *)(r2 + 26) = w8
  r1 = r6
  r2 = 40
  r3 = r7
  r4 = r8
  r5 = 0x34
  call bpf_l4_csum_replace${save(1)}
  r1 = r6
  r2 = 24
  r3 = r7
  r4 = r8
  r5 = 4
  call bpf_l3_csum_replace${save(2)}
  r1 = r6
  r2 = 40
  r3 = 0
  r4 = 0
  r5 = 0x60
  call bpf_l4_csum_replace${save(3)}
  r1 = r6
  r2 = 40
  r3 = 1
  r4 = 2
  r5 = 0x102
  call bpf_l4_csum_replace${save(4)}
  r1 = r6
  r2 = *(u32 *)(r6 + 0)
  r2 += -1
  r3 = 1
  r4 = 2
  r5 = 2
  call bpf_l4_csum_replace${save(5)}
  r1 = r6
  r2 = 40
  r3 = 1
  r4 = 2
  r5 = 3
  call bpf_l4_csum_replace${save(6)}
  r1 = r6
  r2 = 40
  r3 = 0x01020304
  r4 = 0x05060708
  r5 = 0x94
  call bpf_l4_csum_replace${save(7)}
  r0 = 0
  exit${SHOT}`,
  },
  {
    name: 'l4_csum_replace on TCP: port and pseudo-header rewrite keep the checksum valid',
    maps: [OUT],
    frame: (size) => ipv4Frame(size, { proto: 6 }),
    text: `
  r6 = r1${packet(54)}
  r7 = *(u16 *)(r2 + 34)
  w8 = 0xbb01
  *(u16 *)(r2 + 34) = w8
  r1 = r6
  r2 = 50
  r3 = r7
  r4 = r8
  r5 = 2
  call bpf_l4_csum_replace${save(0)}${packet(54)}
  r7 = *(u32 *)(r2 + 30)
  w8 = 0x6400a8c0
  *(u32 *)(r2 + 30) = w8
  r1 = r6
  r2 = 50
  r3 = r7
  r4 = r8
  r5 = 0x14
  call bpf_l4_csum_replace${save(1)}
  r1 = r6
  r2 = 24
  r3 = r7
  r4 = r8
  r5 = 4
  call bpf_l3_csum_replace${save(2)}
  r0 = 0
  exit${SHOT}`,
    check: (o) => {
      const f = Buffer.from(o.packet!, 'hex');
      expect(inetChecksum(f.subarray(14, 34)), 'IPv4 header checksum').toBe(0);
      const pseudo = Buffer.alloc(12);
      f.copy(pseudo, 0, 26, 34);
      pseudo[9] = 6;
      pseudo.writeUInt16BE(f.length - 34, 10);
      expect(inetChecksum(f.subarray(34), ~inetChecksum(pseudo) & 0xffff), 'TCP checksum').toBe(0);
    },
  },
  {
    name: 'csum_diff: from/to/seed combinations, empty sides, a size not a multiple of 4 (6.13+), over packet bytes',
    maps: [OUT],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r1 = 0x1122334455667788 ll
  *(u64 *)(r10 - 8) = r1
  r1 = 0x99aabbccddeeff00 ll
  *(u64 *)(r10 - 16) = r1
  r1 = 0x0f0e0d0c0b0a0908 ll
  *(u64 *)(r10 - 24) = r1
  r1 = r10
  r1 += -8
  r2 = 8
  r3 = r10
  r3 += -24
  r4 = 16
  r5 = r7
  call bpf_csum_diff${save(0)}
  r1 = 0
  r2 = 0
  r3 = r10
  r3 += -16
  r4 = 12
  r5 = 0
  call bpf_csum_diff${save(1)}
  r1 = r10
  r1 += -16
  r2 = 4
  r3 = 0
  r4 = 0
  r5 = 0xffff
  call bpf_csum_diff${save(2)}
  r1 = 0
  r2 = 0
  r3 = 0
  r4 = 0
  r5 = r7
  call bpf_csum_diff${save(3)}
  r1 = r10
  r1 += -8
  r2 = 6
  r3 = r10
  r3 += -24
  r4 = 8
  r5 = 0
  call bpf_csum_diff${save(4)}
  r1 = r10
  r1 += -24
  r2 = 24
  r3 = r10
  r3 += -24
  r4 = 20
  r5 = 0xffffffff ll
  call bpf_csum_diff${save(5)}${packet(42)}
  r1 = 0
  r3 = r2
  r2 = 0
  r3 += 14
  r4 = 28
  r5 = 0
  call bpf_csum_diff${save(6)}
  r0 = 0
  exit${SHOT}`,
  },
  {
    name: 'skb_change_tail: grow by 20 (new bytes zero), write the new tail; bad flags and too long',
    maps: [OUT],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r1 = r6
  r2 = r7
  r2 += 20
  r3 = 0
  call bpf_skb_change_tail${save(0)}
  r1 = r6
  r2 = r7
  r2 += 40
  r3 = 1
  call bpf_skb_change_tail${save(1)}
  r1 = r6
  r2 = 0x10000
  r3 = 0
  call bpf_skb_change_tail${save(2)}
  r0 = *(u32 *)(r6 + 0)${save(3)}
  if r7 > 2000 goto shot
  r2 = *(u32 *)(r6 + 76)
  r3 = *(u32 *)(r6 + 80)
  r2 += r7
  r4 = r2
  r4 += 20
  if r4 > r3 goto shot
  *(u8 *)(r2 + 0) = 0xcd
  *(u8 *)(r2 + 19) = 0xab
  r0 = 0
  exit${SHOT}`,
  },
  {
    name: 'skb_change_tail: shrink to 50, below the network header, to 34',
    maps: [OUT],
    text: `
  r6 = r1
  r1 = r6
  r2 = 13
  r3 = 0
  call bpf_skb_change_tail${save(0)}
  r1 = r6
  r2 = 50
  r3 = 0
  call bpf_skb_change_tail${save(1)}
  r0 = *(u32 *)(r6 + 0)${save(2)}
  r1 = r6
  r2 = 34
  r3 = 0
  call bpf_skb_change_tail${save(3)}
  r1 = r6
  r2 = 14
  r3 = 0
  call bpf_skb_change_tail${save(4)}
  r0 = *(u32 *)(r6 + 0)
  exit`,
  },
  {
    name: 'skb_pull_data: whole packet, one past the end, zero; then direct access',
    maps: [OUT],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r1 = r6
  r2 = r7
  call bpf_skb_pull_data${save(0)}
  r1 = r6
  r2 = r7
  r2 += 1
  call bpf_skb_pull_data${save(1)}
  r1 = r6
  r2 = 0
  call bpf_skb_pull_data${save(2)}${packet(60)}
  r0 = *(u64 *)(r2 + 52)
  r0 >>= 32
  exit${SHOT}`,
  },
  {
    name: 'skb_adjust_room NET grow with FIXED_GSO | ENCAP_L3_IPV4: an ESP header with a sequence from atomic fetch-add; change_tail after encap is -ENOTSUPP',
    maps: [{ name: 'seq', type: T.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 1, entries: [[u32(0), u64(0xfffffffen)]] }, OUT],
    text: `
  r6 = r1${adjust(0, 16, NET, ADJ.FIXED_GSO | ADJ.ENCAP_L3_IPV4)}
  *(u32 *)(r10 - 4) = 0
  r1 = seq ll
  r2 = r10
  r2 += -4
  call bpf_map_lookup_elem
  if r0 == 0 goto shot
  r1 = 1
  r1 = atomic_fetch_add((u64 *)(r0 + 0), r1)
  r1 += 1
  r8 = r1
  *(u32 *)(r10 - 24) = 0x01100000
  r1 = be32 r1
  *(u32 *)(r10 - 20) = w1
  *(u64 *)(r10 - 16) = r8
  r1 = r6
  r2 = 34
  r3 = r10
  r3 += -24
  r4 = 16
  r5 = 0
  call bpf_skb_store_bytes${save(1)}${packet(34)}
  r7 = *(u16 *)(r2 + 16)
  r8 = r7
  r8 = be16 r8
  r8 += 16
  r8 = be16 r8
  *(u16 *)(r2 + 16) = w8
  r1 = r6
  r2 = 24
  r3 = r7
  r4 = r8
  r5 = 2
  call bpf_l3_csum_replace${save(2)}${packet(34)}
  r7 = *(u16 *)(r2 + 22)
  r8 = r7
  r8 &= 0xff
  r8 |= 0x3200
  *(u16 *)(r2 + 22) = w8
  r1 = r6
  r2 = 24
  r3 = r7
  r4 = r8
  r5 = 2
  call bpf_l3_csum_replace${save(3)}
  r1 = r6
  r2 = *(u32 *)(r6 + 0)
  r2 += 4
  r3 = 0
  call bpf_skb_change_tail${save(4)}
  r0 = *(u32 *)(r6 + 16)
  exit${SHOT}`,
    check: (o, input) => {
      const f = Buffer.from(o.packet!, 'hex');
      expect(f.length).toBe(input.length + 16);
      expect(inetChecksum(f.subarray(14, 34)), 'outer IPv4 header checksum').toBe(0);
      expect(f.readUInt16BE(16)).toBe(input.length - 14 + 16);
      expect(f[23]).toBe(50);
      expect(f.subarray(50)).toEqual(input.subarray(34));
    },
  },
  {
    name: 'skb_adjust_room NET shrink by 8 (drop the UDP header), MAC grow by 4 and shrink by 8',
    maps: [OUT],
    text: `
  r6 = r1${adjust(0, -8, NET, 0)}${adjust(1, 4, MAC, 0)}${packet(18)}
  w1 = 0x64000081
  *(u32 *)(r2 + 14) = w1${adjust(2, -8, MAC, 0)}
  r0 = *(u32 *)(r6 + 0)
  exit${SHOT}`,
  },
  {
    name: 'skb_adjust_room errors: too large, bad mode, conflicting and unknown flags, encap on shrink, over-shrink',
    maps: [OUT],
    text: `
  r6 = r1${adjust(0, 0x1000, NET, 0)}${adjust(1, 8, 2, 0)}${adjust(2, 20, NET, ADJ.ENCAP_L3_IPV4 | ADJ.ENCAP_L3_IPV6)}${adjust(3, 20, NET, ADJ.ENCAP_L3_IPV4 | ADJ.ENCAP_L4_GRE | ADJ.ENCAP_L4_UDP)}${adjust(
      4,
      40,
      MAC,
      BigInt(ADJ.ENCAP_L3_IPV4 | ADJ.ENCAP_L2_ETH) | l2Len(10),
    )}${adjust(5, -4, NET, ADJ.ENCAP_L3_IPV4)}${adjust(6, 8, NET, 1 << 9)}${adjust(7, 8, NET, ADJ.DECAP_L3_IPV4)}${adjust(8, -2000, NET, 0)}${adjust(9, -20, NET, ADJ.DECAP_L3_IPV4 | ADJ.DECAP_L3_IPV6)}${adjust(10, 0, NET, 0)}
  r0 = *(u32 *)(r6 + 0)
  exit`,
  },
  {
    name: 'skb_adjust_room encapsulation state: L3 encap then -EALREADY; L4-only and L2 flags',
    maps: [OUT],
    text: `
  r6 = r1${adjust(0, 8, NET, ADJ.ENCAP_L4_GRE)}${adjust(1, 50, MAC, BigInt(ADJ.ENCAP_L3_IPV4 | ADJ.ENCAP_L4_UDP | ADJ.ENCAP_L2_ETH) | l2Len(16))}${adjust(2, 28, NET, ADJ.ENCAP_L3_IPV4 | ADJ.ENCAP_L4_UDP)}${adjust(3, 28, NET, ADJ.ENCAP_L3_IPV4)}${adjust(4, 4, NET, 0)}${adjust(5, 8, NET, l2Len(4))}${adjust(
      6,
      -4,
      NET,
      ADJ.NO_CSUM_RESET,
    )}
  r0 = *(u32 *)(r6 + 0)
  exit`,
  },
  {
    name: 'skb_adjust_room fresh L2 encap: ENCAP_L2_ETH with an inner MAC length of 14',
    maps: [OUT],
    text: `
  r6 = r1${adjust(0, 42, MAC, BigInt(ADJ.ENCAP_L3_IPV4 | ADJ.ENCAP_L4_UDP | ADJ.ENCAP_L2_ETH) | l2Len(14))}
  r0 = *(u32 *)(r6 + 16)
  exit`,
  },
  {
    name: 'skb_adjust_room switches skb->protocol: ENCAP_L3_IPV6 on IPv4, then DECAP_L3_IPV4',
    maps: [OUT],
    text: `
  r6 = r1${adjust(0, 40, MAC, ADJ.ENCAP_L3_IPV6)}
  r0 = *(u32 *)(r6 + 16)${save(1)}${adjust(2, -40, MAC, ADJ.DECAP_L3_IPV4)}
  r0 = *(u32 *)(r6 + 16)${save(3)}${adjust(4, 8, NET, 0)}
  r0 = *(u32 *)(r6 + 0)
  exit`,
  },
  {
    name: 'skb_adjust_room on IPv6 frames: NET grow and shrink (40-byte base), ENCAP_L3_IPV4 switches to IPv4',
    maps: [OUT],
    frame: ipv6Frame,
    sizes: [64, 128, 1500, 64],
    text: `
  r6 = r1${adjust(0, 8, NET, 0)}${adjust(1, -16, NET, 0)}${adjust(2, 20, MAC, ADJ.ENCAP_L3_IPV4)}
  r0 = *(u32 *)(r6 + 16)${save(3)}${adjust(4, -20, MAC, ADJ.DECAP_L3_IPV6)}
  r0 = *(u32 *)(r6 + 16)
  exit`,
  },
  {
    name: 'redirect: TC_ACT_REDIRECT for flags 0 and BPF_F_INGRESS, TC_ACT_SHOT for unknown flags',
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r1 = 1
  r2 = 0
  if r7 > 100 goto ingress
  call bpf_redirect
  exit
ingress:
  if r7 > 1000 goto bad
  r2 = 1
  call bpf_redirect
  exit
bad:
  r2 = 8
  call bpf_redirect
  exit`,
  },
  {
    name: 'bpf_loop: a callback over a stack context, stopping early by returning 1',
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  *(u64 *)(r10 - 8) = r7
  r1 = r7
  r1 &= 63
  r1 += 1
  r2 = body ll
  r3 = r10
  r3 += -8
  r4 = 0
  call bpf_loop
  r8 = r0
  r0 = *(u64 *)(r10 - 8)
  r0 <<= 8
  r0 |= r8
  exit
body:
  r3 = *(u64 *)(r2 + 0)
  r4 = r1
  r4 *= r1
  r3 += r4
  r3 ^= r1
  *(u64 *)(r2 + 0) = r3
  r0 = 0
  if r1 != 40 goto next
  r0 = 1
next:
  exit`,
  },
  {
    name: 'BPF-to-BPF calls four frames deep: callee stacks, pointers into caller frames, callee-saved registers, a helper in a callee',
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r8 = 0x5555
  r9 = 0x6666
  *(u64 *)(r10 - 8) = r7
  r1 = r10
  r1 += -8
  r2 = r6
  call f1
  r1 = *(u64 *)(r10 - 8)
  r0 ^= r1
  r0 += r8
  r0 += r9
  r0 += r7
  exit
f1:
  r6 = r1
  r7 = *(u64 *)(r1 + 0)
  r8 = 0x1111
  *(u64 *)(r10 - 16) = r7
  *(u64 *)(r10 - 8) = 3
  r1 = r10
  r1 += -16
  call f2
  r9 = *(u64 *)(r10 - 16)
  r1 = *(u64 *)(r10 - 8)
  r9 += r1
  *(u64 *)(r6 + 0) = r9
  r0 += r7
  r0 += r8
  exit
f2:
  r6 = r1
  r7 = r2
  r8 = 0x2222
  r1 = r7
  r2 = 26
  r3 = r10
  r3 += -8
  r4 = 8
  call bpf_skb_load_bytes
  r9 = *(u64 *)(r10 - 8)
  r1 = r10
  r1 += -8
  call f3
  r2 = *(u64 *)(r6 + 0)
  r2 += r9
  r2 += r0
  *(u64 *)(r6 + 0) = r2
  r0 = *(u64 *)(r10 - 8)
  r0 >>= 3
  r0 += r8
  exit
f3:
  r6 = 0x3333
  r2 = *(u64 *)(r1 + 0)
  r2 *= 3
  *(u64 *)(r1 + 0) = r2
  *(u64 *)(r10 - 32) = r2
  r0 = *(u64 *)(r10 - 32)
  r0 >>= 7
  r0 += r6
  exit`,
  },
  {
    name: 'LD_ABS / LD_IND: byte, half, word in network order; an out-of-bounds load ends the program with 0',
    text: `
  r6 = r1
  r0 = *(u8 *)skb[23]
  r7 = r0
  r0 = *(u16 *)skb[12]
  r7 <<= 16
  r7 |= r0
  r8 = 26
  r0 = *(u32 *)skb[r8 + 4]
  r7 ^= r0
  r9 = *(u32 *)(r6 + 0)
  r9 += -2
  r0 = *(u16 *)skb[r9]
  r7 += r0
  r0 = *(u32 *)skb[200]
  r7 ^= r0
  r0 = *(u8 *)skb[r9 + 1]
  r7 += r0
  r0 = r7
  exit`,
  },
  {
    name: 'atomics on a map value: 64-bit fetch-add across 2^32 (ESP sequence), 32-bit fetch-add, or/xor/and, xchg, cmpxchg',
    maps: [{ name: 'state', type: T.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 40, maxEntries: 1, entries: [[u32(0), Buffer.concat([u64(0xffffffffn), u64(0xfffffff0n), u64(0x0f0fn), u64(0n), u64(0n)] as Uint8Array[])]] }],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  *(u32 *)(r10 - 4) = 0
  r1 = state ll
  r2 = r10
  r2 += -4
  call bpf_map_lookup_elem
  if r0 == 0 goto out
  r9 = r0
  r1 = 1
  r1 = atomic_fetch_add((u64 *)(r9 + 0), r1)
  r8 = r1
  w2 = w7
  w2 = atomic_fetch_add((u32 *)(r9 + 8), w2)
  *(u32 *)(r9 + 12) = w2
  r3 = 0xf0
  r3 = atomic_fetch_or((u64 *)(r9 + 16), r3)
  lock *(u64 *)(r9 + 16) ^= r7
  r3 = 0xfff0
  lock *(u64 *)(r9 + 16) &= r3
  r4 = r7
  r4 = xchg_64(r9 + 24, r4)
  *(u64 *)(r9 + 32) = r4
  r0 = r8
  r5 = r8
  r5 += 1000
  r0 = cmpxchg_64(r9 + 0, r0, r5)
  r0 = r8
  r0 += 1
  r5 = r0
  r5 += 1000
  r0 = cmpxchg_64(r9 + 0, r0, r5)
  w1 = 5
  w1 = atomic_fetch_xor((u32 *)(r9 + 8), w1)
  r0 += r1
out:
  exit`,
  },
  {
    name: 'ktime_get_ns: nonzero and monotonic within a run',
    text: `
  call bpf_ktime_get_ns
  r6 = r0
  call bpf_ktime_get_ns
  r7 = r0
  r0 = 0
  if r6 == 0 goto no1
  r0 |= 1
no1:
  if r7 < r6 goto no2
  r0 |= 2
no2:
  exit`,
  },
  {
    name: 'ringbuf: output, reserve/submit, reserve/discard, an unaligned output',
    maps: [{ name: 'events', type: T.BPF_MAP_TYPE_RINGBUF, keySize: 0, valueSize: 0, maxEntries: 4096 }],
    text: `
  r6 = r1
  r1 = r6
  r2 = 26
  r3 = r10
  r3 += -16
  r4 = 8
  call bpf_skb_load_bytes
  r7 = *(u32 *)(r6 + 0)
  *(u64 *)(r10 - 8) = r7
  r1 = events ll
  r2 = r10
  r2 += -16
  r3 = 16
  r4 = 0
  call bpf_ringbuf_output
  r9 = r0
  r1 = events ll
  r2 = 24
  r3 = 0
  call bpf_ringbuf_reserve
  if r0 == 0 goto out
  *(u64 *)(r0 + 0) = r7
  r1 = 0xabcdef0123456789 ll
  *(u64 *)(r0 + 8) = r1
  *(u64 *)(r0 + 16) = r9
  r1 = r0
  r2 = 0
  call bpf_ringbuf_submit
  r1 = events ll
  r2 = 8
  r3 = 0
  call bpf_ringbuf_reserve
  if r0 == 0 goto out
  *(u64 *)(r0 + 0) = r7
  r1 = r0
  r2 = 0
  call bpf_ringbuf_discard
  r1 = events ll
  r2 = r10
  r2 += -16
  r3 = 12
  r4 = 1
  call bpf_ringbuf_output
  r9 |= r0
out:
  r0 = r9
  exit`,
  },
  {
    name: 'direct packet access: swap MAC addresses, flip the last byte through a bounded variable offset',
    text: `
  r6 = r1${packet(14)}
  r4 = *(u32 *)(r2 + 0)
  r5 = *(u16 *)(r2 + 4)
  r7 = *(u32 *)(r2 + 6)
  r8 = *(u16 *)(r2 + 10)
  *(u32 *)(r2 + 0) = w7
  *(u16 *)(r2 + 4) = w8
  *(u32 *)(r2 + 6) = w4
  *(u16 *)(r2 + 10) = w5
  r7 = *(u32 *)(r6 + 0)
  if r7 > 2000 goto shot
  if r7 < 14 goto shot
  r7 += -1
  r2 += r7
  r4 = r2
  r4 += 1
  if r4 > r3 goto shot
  r1 = *(u8 *)(r2 + 0)
  r1 ^= 0xff
  *(u8 *)(r2 + 0) = r1
  r0 = 0
  exit${SHOT}`,
  },
  {
    name: 'flow table: a 12-byte key from skb_load_bytes into a hash of {packets, bytes}',
    maps: [{ name: 'flows', type: T.BPF_MAP_TYPE_HASH, keySize: 12, valueSize: 16, maxEntries: 16 }],
    text: `
  r6 = r1
  r7 = *(u32 *)(r6 + 0)
  r1 = r6
  r2 = 26
  r3 = r10
  r3 += -12
  r4 = 12
  call bpf_skb_load_bytes
  if r0 != 0 goto shot
  r1 = flows ll
  r2 = r10
  r2 += -12
  call bpf_map_lookup_elem
  if r0 == 0 goto fresh
  r1 = 1
  lock *(u64 *)(r0 + 0) += r1
  lock *(u64 *)(r0 + 8) += r7
  r0 = 1
  exit
fresh:
  *(u64 *)(r10 - 32) = 1
  *(u64 *)(r10 - 24) = r7
  r1 = flows ll
  r2 = r10
  r2 += -12
  r3 = r10
  r3 += -32
  r4 = 1
  call bpf_map_update_elem
  exit${SHOT}`,
  },
];

describeWith(kernelBpf(), 'VM vs kernel: helpers, maps and calls (hand-written)', () => {
  it('has at least 25 programs', () => expect(CASES.length).toBeGreaterThanOrEqual(25));
  for (const c of CASES) it(c.name, () => differential(c));
});
